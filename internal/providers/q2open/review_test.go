package q2open_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/q2open"
)

// TestReview_UpdateWithoutClientIDDoesNotAddCardsAgain: sync_state can
// hold a Q2 customer active with no clientId (an intent an operator
// settled as delivered without --remote-id). The next run that sends it
// plans an update with an empty RemoteID; a sync with cards then adds
// every card a second time (Q2 dedups clients, not cards).
func TestReview_UpdateWithoutClientIDDoesNotAddCardsAgain(t *testing.T) {
	sb, srv := sandboxServer(t)
	c := newClient(t, srv.URL, token, nil)
	ctx := context.Background()
	op := mapOne(t, c, customer("C1"))
	if r := c.Send(ctx, []partner.Op{op}, nil)[0]; r.Outcome != partner.OK {
		t.Fatalf("create: %+v", r)
	}
	up := mapOne(t, c, customer("C1"))
	up.Kind, up.RemoteID = partner.Update, ""
	r := c.Send(ctx, []partner.Op{up}, nil)[0]
	cl, _ := sb.State().Find("C1")
	if len(cl.Cards) != 2 {
		t.Errorf("Q2 holds %d payment methods for C1's 2 cards after an update without a clientId (outcome %s)", len(cl.Cards), r.Outcome)
	}
}

// gateway504 runs the first n syncs through the sandbox (which commits
// them) and answers 504, as a gateway that gave up waiting does.
type gateway504 struct {
	h http.Handler
	n *atomic.Int32
}

func (g gateway504) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, q2open.SyncPath) && g.n.Add(-1) >= 0 {
		g.h.ServeHTTP(httptest.NewRecorder(), r)
		w.WriteHeader(http.StatusGatewayTimeout)
		return
	}
	g.h.ServeHTTP(w, r)
}

// TestReview_SyncWithCards504AfterCommit: a sync with cards is not
// idempotent (Q2 adds the cards again), and the client sends it with
// Idempotent false, but httpx retries every Retryable error whatever
// Idempotent says, and a 5xx is Retryable. A 504 after Q2 committed is
// resent: every card twice. When every attempt meets a 504 the result is
// Failed, which settles the intent, so the next run syncs with cards again.
func TestReview_SyncWithCards504AfterCommit(t *testing.T) {
	for _, n := range []int32{1, 3} {
		t.Run(fmt.Sprintf("%d gateway timeouts", n), func(t *testing.T) {
			sb := q2open.NewSandbox(q2open.SandboxOptions{Token: token, Clock: providertest.Clock()})
			left := &atomic.Int32{}
			left.Store(n)
			srv := httptest.NewServer(gateway504{sb, left})
			t.Cleanup(srv.Close)
			c := newClient(t, srv.URL, token, nil)
			r := c.Send(context.Background(), []partner.Op{mapOne(t, c, customer("C1"))}, nil)[0]
			if d := sb.State().Totals.DuplicatePaymentMethods; d != 0 {
				t.Errorf("a sync answered 504 after Q2 committed it: %d duplicate payment methods (outcome %s)", d, r.Outcome)
			}
			if r.Outcome != partner.OK && r.Outcome != partner.Uncertain {
				t.Errorf("outcome %s (%v) after a sync with cards that may have landed: the engine settles the intent of anything but uncertain", r.Outcome, r.Err)
			}
		})
	}
}
