package synctera_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/synctera"
)

// TestReview_ResolveAfterKeyExpiryAndRenameCreatesTwice: a create lands,
// its answer is lost (intent open). Before the rerun the customer marries:
// new last name and new e-mail (no phone on file). Resolve looks the
// customer up only with the current body's e-mail, phone and name, so it
// finds nothing; within Synctera's 7 days the noted key is refused as a
// reuse (uncertain, fine), but once Synctera forgot the key the create
// goes through: a second Synctera customer for the same entity.
func TestReview_ResolveAfterKeyExpiryAndRenameCreatesTwice(t *testing.T) {
	sb, srv := newSandbox(t, nil)
	c := newClient(t, srv.URL+synctera.BasePath, token, nil)
	orig := customer("C1")
	orig.Phone = ""
	key, id := lostCreate(t, c, orig)

	married := customer("C1")
	married.Phone = ""
	married.LastName, married.Email = "King", "ada.king@example.com"

	// Within the key's life the rerun is (rightly) uncertain ...
	op := createOp(t, married)
	op.Intent = key
	if r := c.Resolve(context.Background(), op, nil); r.Outcome == partner.OK && r.RemoteID != id {
		t.Fatalf("within 7 days Resolve made another customer %s (first %s)", r.RemoteID, id)
	}
	// ... and the nightly reruns stay uncertain until Synctera forgets
	// the key.
	sb.AdvanceClock(8 * 24 * time.Hour)
	r := c.Resolve(context.Background(), op, nil)
	if n := len(sb.State().Customers); n != 1 {
		t.Errorf("Synctera holds %d customers for entity %s after Resolve (outcome %s, remote id %s, first %s): created twice",
			n, op.EntityKey, r.Outcome, r.RemoteID, id)
	}
}

// TestReview_UpdateWithoutRemoteIDDoesNotCreate: an entity known to the
// ledger without a Synctera id (settled as delivered without --remote-id)
// is planned as an update with an empty RemoteID; it must be found, not
// created again.
func TestReview_UpdateWithoutRemoteIDDoesNotCreate(t *testing.T) {
	sb, srv := newSandbox(t, nil)
	c := newClient(t, srv.URL+synctera.BasePath, token, nil)
	_, id := lostCreate(t, c, customer("C1"))
	up := plan(t, createOp(t, moved("C1")), partner.Update, "")
	r := providertest.SendOne(t, c, up, nil)
	if n := len(sb.State().Customers); n != 1 || r.RemoteID != id {
		t.Errorf("update without a remote id: Synctera holds %d customers, result %+v (first %s)", n, r, id)
	}
}

// gateway504 runs every POST through the sandbox (which commits it) and
// answers 504, as a gateway that timed out waiting for Synctera does.
type gateway504 struct{ h http.Handler }

func (g gateway504) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		g.h.ServeHTTP(w, r)
		return
	}
	g.h.ServeHTTP(httptest.NewRecorder(), r)
	w.WriteHeader(http.StatusGatewayTimeout)
}

// TestReview_Create504AfterCommitIsUncertain: a 504 is an answer that
// proves nothing (the gateway gave up; Synctera may have committed), yet
// the Synctera client marks a call "maybe landed" only on transport
// errors. Every attempt of a create is answered 504 after Synctera
// committed it: the result is Failed, which settles the intent; the next
// run, once Synctera has forgotten the key (7 days), creates blind.
func TestReview_Create504AfterCommitIsUncertain(t *testing.T) {
	sb := synctera.NewSandbox(synctera.SandboxOptions{Token: token, Clock: providertest.Clock()})
	srv := httptest.NewServer(gateway504{sb})
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL+synctera.BasePath, token, nil)
	op := createOp(t, customer("C1"))
	r := providertest.SendOne(t, c, op, nil)
	if st := sb.State(); len(st.Customers) != 1 {
		t.Fatalf("setup: Synctera holds %d customers", len(st.Customers))
	}
	if r.Outcome != partner.Uncertain {
		t.Errorf("create answered 504 after Synctera committed it: outcome %s (%v), want uncertain: the engine settles the intent of anything else", r.Outcome, r.Err)
	}
	// What the next run does once the intent is settled and the key forgotten.
	sb.AdvanceClock(8 * 24 * time.Hour)
	plain := httptest.NewServer(sb)
	t.Cleanup(plain.Close)
	direct := newClient(t, plain.URL+synctera.BasePath, token, nil)
	if r.Outcome != partner.Uncertain {
		providertest.SendOne(t, direct, op, nil)
	}
	if n := len(sb.State().Customers); n != 1 {
		t.Errorf("Synctera holds %d customers for %s", n, op.EntityKey)
	}
}
