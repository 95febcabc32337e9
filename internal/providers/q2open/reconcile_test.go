package q2open_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/q2open"
)

// journal records the intents a client notes, in order.
type journal struct {
	mu    sync.Mutex
	notes []string
	err   error
}

func (j *journal) Note(_ context.Context, op partner.Op, detail string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	j.notes = append(j.notes, op.EntityKey.String()+" "+detail)
	return nil
}

// loseAnswers forwards to h; answers of requests that match are dropped
// after h committed, n times at most.
func loseAnswers(h http.Handler, n int32, match func(*http.Request) bool) http.Handler {
	var left atomic.Int32
	left.Store(n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if match(r) && left.Add(-1) >= 0 {
			h.ServeHTTP(&discard{h: http.Header{}}, r)
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		h.ServeHTTP(w, r)
	})
}

func isPost(path string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Path == path }
}

func noDuplicates(t *testing.T, st q2open.State) {
	t.Helper()
	if st.Totals.DuplicatePaymentMethods != 0 || st.Totals.DuplicateAdds != 0 || st.Totals.DuplicateClients != 0 {
		t.Fatalf("Q2 holds duplicates: %+v", st.Totals)
	}
}

// The run that sent a sync with cards was killed before it recorded the
// answer: the journal holds its intent, and the rerun resolves it. Run
// twice (a second crash during the resolve) it still adds nothing twice.
func TestResendAfterLostSyncAnswerCreatesNoDuplicatePaymentMethod(t *testing.T) {
	sb, srv := sandboxServer(t)
	c := newClient(t, srv.URL, token, nil)
	ctx := context.Background()
	var j journal
	op := mapOne(t, c, customer("C1"))
	first := c.Send(ctx, []partner.Op{op}, &j)[0]
	if first.Outcome != partner.OK {
		t.Fatalf("create: %+v", first)
	}
	// The crash: the engine saw no outcome, so it resolves the open intent.
	op.Intent = "sync-with-cards"
	for i := 0; i < 2; i++ {
		r := c.Resolve(ctx, op, &j)
		noDuplicates(t, sb.State())
		if r.Outcome != partner.OK || r.RemoteID != first.RemoteID || fmt.Sprint(children(r)) != fmt.Sprint(children(first)) {
			t.Fatalf("resolve %d: %+v, want the first sync's client and cards %v", i, r, children(first))
		}
	}
	if fmt.Sprint(j.notes) != "[customer/C1 sync-with-cards]" {
		t.Fatalf("notes %v: want the create's intent only", j.notes)
	}

	// Within one run: the answer of the sync with cards is lost. The sync
	// is not resent; the client is found and its list shows both cards.
	sb2, _ := sandboxServer(t)
	var posts atomic.Int32
	h := loseAnswers(sb2, 1, isPost(q2open.SyncPath))
	url := providertest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	c2 := newClient(t, url, token, nil)
	r := c2.Send(ctx, []partner.Op{mapOne(t, c2, customer("C1"))}, &journal{})[0]
	st := sb2.State()
	cl, _ := st.Find("C1")
	noDuplicates(t, st)
	if r.Outcome != partner.OK || len(cl.Cards) != 2 || posts.Load() != 2 || st.Totals.PaymentMethodsAdded != 2 {
		t.Fatalf("lost answer: %+v, %d posts, state %+v", r, posts.Load(), st)
	}
}

// A journal that cannot note the intent means no sync with cards goes out.
func TestNoSyncWithCardsWithoutADurableIntent(t *testing.T) {
	sb, srv := sandboxServer(t)
	c := newClient(t, srv.URL, token, nil)
	j := &journal{err: errors.New("ledger down")}
	r := c.Send(context.Background(), []partner.Op{mapOne(t, c, customer("C1"))}, j)[0]
	if r.Outcome != partner.Failed || httpx.KindOf(r.Err) != httpx.Retryable || sb.State().Totals.Requests != 0 {
		t.Fatalf("%+v, %d requests", r, sb.State().Totals.Requests)
	}
}

// seed creates C1 with K1 and K2 at the sandbox and returns the result.
func seed(t *testing.T, c *q2open.Client) partner.Result {
	t.Helper()
	r := c.Send(context.Background(), []partner.Op{mapOne(t, c, customer("C1"))}, nil)[0]
	if r.Outcome != partner.OK || len(r.Children) != 2 {
		t.Fatalf("seed: %+v", r)
	}
	return r
}

func update(t *testing.T, c *q2open.Client, cu *model.Customer, remoteID string) partner.Op {
	t.Helper()
	op := mapOne(t, c, cu)
	op.Kind, op.RemoteID = partner.Update, remoteID
	return op
}

// An update of a known client adds only the cards Q2 does not list,
// records every card's paymentMethodId, and sends no sync.
func TestUpdateOfKnownClientAddsOnlyMissingCards(t *testing.T) {
	sb, _ := sandboxServer(t)
	rec := providertest.NewRecorder(sb)
	c := newClient(t, providertest.Serve(t, rec), token, nil)
	created := seed(t, c)
	before := rec.Mark()

	cu := customer("C1")
	cu.Accounts[0].Cards = append(cu.Accounts[0].Cards, card("C1", "K7", "6011111111111117", "321", "credit", "discover"))
	r := c.Send(context.Background(), []partner.Op{update(t, c, cu, created.RemoteID)}, nil)[0]
	st := sb.State()
	cl, _ := st.Find("C1")
	got := children(r)
	noDuplicates(t, st)
	if r.Outcome != partner.OK || r.RemoteID != created.RemoteID || len(cl.Cards) != 3 || len(got) != 3 {
		t.Fatalf("update: %+v state %+v", r, st)
	}
	for _, k := range []string{"K1", "K2", "K7"} {
		if got[partner.CardKey("C1", k)] != cl.Method(k)[0].PaymentMethodID {
			t.Fatalf("child of %s is %q, Q2 holds %+v", k, got[partner.CardKey("C1", k)], cl.Method(k))
		}
	}
	for _, ch := range r.Children {
		if !strings.HasPrefix(ch.RequestID, "req-") {
			t.Fatalf("child %+v carries no Q2 request-id", ch)
		}
	}
	noDuplicates(t, st)
	// Two calls: the list, and the add of K7 with its code (the source has
	// one), none of them a sync.
	var sent [][]byte
	for _, e := range rec.Since(before) {
		sent = append(sent, e.Body)
	}
	if len(sent) != 2 || !bytes.Contains(sent[1], []byte(`"cardCode":"321"`)) || !bytes.Contains(sent[1], []byte(`"identifier":"K7"`)) ||
		!bytes.Contains(sent[1], []byte(`"paymentType":"card"`)) {
		t.Fatalf("update sent %d requests: %q", len(sent), sent)
	}

	// The same update again (a rerun after a crash) adds nothing.
	again := c.Send(context.Background(), []partner.Op{update(t, c, cu, created.RemoteID)}, nil)[0]
	if again.Outcome != partner.OK || fmt.Sprint(children(again)) != fmt.Sprint(got) || sb.State().Totals.PaymentMethodsAdded != 3 {
		t.Fatalf("repeated update: %+v, totals %+v", again, sb.State().Totals)
	}
}

// The add's answer is lost: the client lists before it adds again.
func TestLostAddAnswerIsListedNotAddedAgain(t *testing.T) {
	sb, srv := sandboxServer(t)
	created := seed(t, newClient(t, srv.URL, token, nil))
	c := newClient(t, providertest.Serve(t, loseAnswers(sb, 1, isPost(q2open.PaymentPath))), token, nil)
	cu := customer("C1")
	cu.Accounts[0].Cards = append(cu.Accounts[0].Cards, card("C1", "K7", "6011111111111117", "", "credit", "discover"))
	r := c.Send(context.Background(), []partner.Op{update(t, c, cu, created.RemoteID)}, nil)[0]
	st := sb.State()
	cl, _ := st.Find("C1")
	if r.Outcome != partner.OK || len(cl.Method("K7")) != 1 || children(r)["card/C1/K7"] != cl.Method("K7")[0].PaymentMethodID {
		t.Fatalf("%+v state %+v", r, st)
	}
	noDuplicates(t, st)
}

// A card closed at the bank is deleted at Q2 and its child marked
// removed. While it paid something in the last 24 hours Q2 refuses: the
// outcome is failed and retryable (the customer stays planned), and a run
// a day later deletes it.
func TestClosedCardIsDeletedAndTheDayRuleIsRetried(t *testing.T) {
	clock := providertest.Clock()
	sb := q2open.NewSandbox(q2open.SandboxOptions{Token: token, Clock: clock})
	c := newClient(t, providertest.Serve(t, sb), token, nil)
	created := seed(t, c)
	k2 := children(created)["card/C1/K2"]
	if !sb.MarkPaid(k2, providertest.T0.Add(-time.Hour)) {
		t.Fatal("MarkPaid: unknown method")
	}
	cu := customer("C1")
	cu.Accounts[0].Cards[1].Status = "CLOSED"
	op := update(t, c, cu, created.RemoteID)

	refused := c.Send(context.Background(), []partner.Op{op}, nil)[0]
	var he *httpx.Error
	if refused.Outcome != partner.Failed || !errors.As(refused.Err, &he) || he.Kind != httpx.Retryable || he.Code != "delete_refused" ||
		!strings.Contains(he.Message, "24 hours") || !strings.Contains(he.Message, k2) || refused.HTTPStatus != 400 {
		t.Fatalf("refused delete: %+v", refused)
	}
	// K1 is still confirmed, so the ledger keeps its paymentMethodId.
	if got := children(refused); len(got) != 1 || got["card/C1/K1"] != children(created)["card/C1/K1"] {
		t.Fatalf("children of the refused run: %+v", refused.Children)
	}
	if cl, _ := sb.State().Find("C1"); len(cl.Method("K2")) != 1 || sb.State().Totals.DeletesRefused != 1 {
		t.Fatalf("K2 deleted despite the 24-hour rule: %+v", cl)
	}

	clock.Advance(24 * time.Hour)
	r := c.Send(context.Background(), []partner.Op{op}, nil)[0]
	st := sb.State()
	cl, _ := st.Find("C1")
	if r.Outcome != partner.OK || len(cl.Cards) != 1 || cl.Cards[0].Identifier != "K1" || st.Totals.PaymentMethodsDeleted != 1 {
		t.Fatalf("delete a day later: %+v state %+v", r, st)
	}
	var removed partner.Child
	for _, ch := range r.Children {
		if ch.EntityKey == "card/C1/K2" {
			removed = ch
		}
	}
	if !removed.Removed || removed.RemoteID != k2 || !strings.HasPrefix(removed.RequestID, "req-") {
		t.Fatalf("K2's child %+v: want removed, with its paymentMethodId", removed)
	}
	// Gone already (say, deleted by a run killed before its ledger
	// write): a repeat deletes nothing and still marks K2 removed, so the
	// ledger does not keep it active.
	again := c.Send(context.Background(), []partner.Op{op}, nil)[0]
	if again.Outcome != partner.OK || sb.State().Totals.PaymentMethodsDeleted != 1 || len(again.Children) != 2 ||
		again.Children[1].EntityKey != "card/C1/K2" || !again.Children[1].Removed {
		t.Fatalf("repeat: %+v", again)
	}
}

// Q2 has no call that updates a client, and a repeat sync is not
// documented to change meta: the update says so in its request id, and
// sends no sync that would pretend to deliver it.
func TestMetaChangeIsRecordedNotSent(t *testing.T) {
	sb, srv := sandboxServer(t)
	c := newClient(t, srv.URL, token, nil)
	created := seed(t, c)
	cu := customer("C1")
	cu.Email = "ada@lovelace.example"
	r := c.Send(context.Background(), []partner.Op{update(t, c, cu, created.RemoteID)}, nil)[0]
	st := sb.State()
	cl, _ := st.Find("C1")
	if r.Outcome != partner.OK || r.RequestID != "not-sent-no-update-api" || cl.Email != "ada@example.com" ||
		cl.Syncs != 1 || len(r.Children) != 2 {
		t.Fatalf("meta change: %+v, state %+v", r, st)
	}
}

// The clientId in the ledger is unknown at Q2: the client is found (or
// made) again by identifier, without a sync with cards.
func TestUnknownClientIDIsFoundAgainByIdentifier(t *testing.T) {
	sb, srv := sandboxServer(t)
	c := newClient(t, srv.URL, token, nil)
	created := seed(t, c)
	r := c.Send(context.Background(), []partner.Op{update(t, c, customer("C1"), "000000000000000000000000")}, nil)[0]
	noDuplicates(t, sb.State())
	if r.Outcome != partner.OK || r.RemoteID != created.RemoteID || fmt.Sprint(children(r)) != fmt.Sprint(children(created)) {
		t.Fatalf("%+v", r)
	}
	noDuplicates(t, sb.State())
}

// The sync request and the add-payment request carry card data in clear
// only on the wire: every fmt verb, JSON and zap show them masked.
func TestRequestsAreMaskedInEveryFormat(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", token, nil)
	op := mapOne(t, c, customer("C1"))
	req := op.Payload.(q2open.SyncRequest)
	add := q2open.AddPaymentRequest{ClientID: "c1", PaymentType: "card", Identifier: "K1", CardNumber: visaPAN, CardCode: cvv,
		ExpMonth: "02", ExpYear: "2040"}
	var logs bytes.Buffer
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&logs), zap.DebugLevel))
	for _, v := range []any{req, &req, req.Cards[0], &req.Cards[0], add, &add, op} {
		var out []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			out = append(out, fmt.Sprintf(verb, v))
		}
		out = append(out, fmt.Sprint(v), fmt.Sprintln(v))
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
		log.Info("op", zap.Any("any", v), zap.Reflect("reflect", v))
		_ = log.Sync()
		out = append(out, logs.String())
		all := strings.Join(out, "\n")
		for _, secret := range []string{visaPAN, mcPAN, `"` + cvv + `"`, ":" + cvv, " " + cvv + " ", "Code:" + cvv} {
			if strings.Contains(all, secret) {
				t.Fatalf("%T leaks %q:\n%s", v, secret, all)
			}
		}
		if !strings.Contains(all, "1111") {
			t.Fatalf("%T: masked too much (no last four):\n%s", v, all)
		}
	}
}

// With a ledger that does not know what Q2 holds (reset, or new against a
// tenant that has these clients), ReconcileCreates keeps cards out of
// every sync: a create looks the client up and adds only what is missing.
func TestReconcileCreatesAddsNothingQ2Holds(t *testing.T) {
	sb, srv := sandboxServer(t)
	seed(t, newClient(t, srv.URL, token, nil))
	c := newClient(t, srv.URL, token, func(cfg *q2open.Config) { cfg.ReconcileCreates = true })
	cu := customer("C1")
	cu.Accounts[0].Cards = append(cu.Accounts[0].Cards, card("C1", "K7", "6011111111111117", "", "credit", "discover"))
	r := c.Send(context.Background(), []partner.Op{mapOne(t, c, cu)}, &journal{})[0]
	st := sb.State()
	noDuplicates(t, st)
	if cl, _ := st.Find("C1"); r.Outcome != partner.OK || len(cl.Cards) != 3 || len(r.Children) != 3 || r.RemoteID != cl.ClientID {
		t.Fatalf("%+v state %+v", r, st)
	}
}
