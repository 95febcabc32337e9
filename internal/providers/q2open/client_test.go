package q2open_test

import (
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

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/q2open"
)

func mapOne(t *testing.T, c *q2open.Client, cu *model.Customer) partner.Op {
	t.Helper()
	items, rej := c.Map(cu)
	if len(items) != 1 || len(rej) != 0 {
		t.Fatalf("ops %d rejects %v", len(items), rej)
	}
	ops := partner.NewOps(items)
	ops[0].Kind = partner.Create
	return ops[0]
}

func children(r partner.Result) map[partner.Key]string {
	m := map[partner.Key]string{}
	for _, ch := range r.Children {
		m[ch.EntityKey] = ch.RemoteID
	}
	return m
}

func TestCreateResolveAndUpdate(t *testing.T) {
	sb, srv := sandboxServer(t)
	c := newClient(t, srv.URL, token, nil)
	ctx := context.Background()

	op := mapOne(t, c, customer("C1"))
	res := c.Send(ctx, []partner.Op{op}, nil)
	if len(res) != 1 {
		t.Fatalf("%d results for one op", len(res))
	}
	r := res[0]
	st := sb.State()
	cl, _ := st.Find("C1")
	if r.Outcome != partner.OK || r.Err != nil || r.EntityKey != "customer/C1" || r.RemoteID != cl.ClientID || r.HTTPStatus != 200 || r.Attempts != 1 ||
		!strings.HasPrefix(r.RequestID, "req-") {
		t.Fatalf("create: %+v (state %+v)", r, st)
	}
	want := map[string]string{"card/C1/K1": cl.Cards[0].PaymentMethodID, "card/C1/K2": cl.Cards[1].PaymentMethodID}
	if got := children(r); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("children %v, want %v", got, want)
	}

	// The engine resolves a create whose outcome it never recorded: the
	// client is found without cards, and nothing is added twice.
	again := c.Resolve(ctx, op, nil)
	if again.Outcome != partner.OK || again.RemoteID != r.RemoteID || fmt.Sprint(children(again)) != fmt.Sprint(want) {
		t.Fatalf("resolve: %+v", again)
	}

	// An update adds the new card only.
	cu := customer("C1")
	cu.Accounts[0].Cards = append(cu.Accounts[0].Cards, card("C1", "K7", "6011111111111117", "", "credit", "discover"))
	up := mapOne(t, c, cu)
	up.Kind, up.RemoteID = partner.Update, r.RemoteID
	ur := c.Send(ctx, []partner.Op{up}, nil)[0]
	if ur.Outcome != partner.OK || ur.RemoteID != r.RemoteID || len(ur.Children) != 3 || children(ur)["card/C1/K1"] != want["card/C1/K1"] {
		t.Fatalf("update: %+v", ur)
	}
	st = sb.State()
	cl, _ = st.Find("C1")
	if len(st.Clients) != 1 || len(cl.Cards) != 3 || children(ur)["card/C1/K7"] != cl.Method("K7")[0].PaymentMethodID ||
		st.Totals.DuplicateClients != 0 || st.Totals.ClientsCreated != 1 || st.Totals.PaymentMethodsAdded != 3 ||
		st.Totals.DuplicatePaymentMethods != 0 || st.Totals.DuplicateAdds != 0 {
		t.Fatalf("state after resolve and update: %+v", st)
	}
}

func TestSendReturnsOneResultPerOpInOrder(t *testing.T) {
	sb, srv := sandboxServer(t)
	c := newClient(t, srv.URL, token, nil)
	ops := []partner.Op{mapOne(t, c, customer("C1")), mapOne(t, c, customer("C2"))}
	res := c.Send(context.Background(), ops, nil)
	st := sb.State()
	a, _ := st.Find("C1")
	b, _ := st.Find("C2")
	if len(res) != 2 || res[0].RemoteID != a.ClientID || res[1].RemoteID != b.ClientID || res[1].EntityKey != "customer/C2" {
		t.Fatalf("results %+v", res)
	}
	if c.Name() != q2open.Name || c.MaxBatch() != 1 {
		t.Fatalf("Name %q MaxBatch %d", c.Name(), c.MaxBatch())
	}
}

// The expiration is now + TTL at send time, in the doc's format, so a
// queued op never asks for a token that is about to expire.
func TestTokenExpiration(t *testing.T) {
	var mu sync.Mutex
	now := providertest.T0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	for _, tc := range []struct {
		ttl  time.Duration
		want string
	}{{0, "2026-11-24T12:00:00.000Z"}, {90 * time.Minute, "2026-11-23T13:30:00.000Z"}} {
		sb, _ := sandboxServer(t)
		rec := providertest.NewRecorder(sb)
		c := newClient(t, providertest.Serve(t, rec), token, func(cfg *q2open.Config) { cfg.TokenTTL, cfg.Now = tc.ttl, clock })
		mu.Lock()
		now = providertest.T0
		mu.Unlock()
		op := mapOne(t, c, customer("C1"))
		mu.Lock()
		now = providertest.T0.Add(2 * time.Hour) // mapped at providertest.T0, sent two hours later
		mu.Unlock()
		if r := c.Send(context.Background(), []partner.Op{op}, nil)[0]; r.Outcome != partner.OK {
			t.Fatalf("%+v", r)
		}
		body := rec.Last("").Body
		var req q2open.SyncRequest
		_ = json.Unmarshal(body, &req)
		if req.Token.Expiration != tc.want {
			t.Errorf("ttl %v: expiration %q, want %q", tc.ttl, req.Token.Expiration, tc.want)
		}
	}
}

// stub answers every call with status and body.
func stub(t *testing.T, status int, body string) (string, *atomic.Int32) {
	var calls atomic.Int32
	url := providertest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	return url, &calls
}

func TestErrorsAreTyped(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		outcome  partner.Outcome
		kind     httpx.Kind
		code     string
		message  string
		attempts int
	}{
		// A refused sync with cards may have been partial: the client is
		// looked up (POST /v1/client, the second call), which the stub
		// refuses too, so nothing can be at Q2.
		{"validation, published shape", 400, `{"message":"cards[0].expMonth: must be two digits"}`,
			partner.Rejected, httpx.Rejected, "", "cards[0].expMonth: must be two digits", 2},
		{"validation, assumed shape", 400, `{"error":{"code":"validation_error","message":"cards[0].expMonth: must be two digits"}}`,
			partner.Rejected, httpx.Rejected, "validation_error", "cards[0].expMonth: must be two digits", 2},
		{"auth", 401, `{"message":"bad token"}`, partner.Failed, httpx.Fatal, "", "bad token", 1},
		{"conflict, no body", 409, ``, partner.Rejected, httpx.Rejected, "", "Conflict", 2},
		// A 5xx answer to a sync with cards may follow a commit (a
		// gateway gave up): never resent; the client is looked up (the
		// stub answers 503 to its three attempts too), and the intent
		// stays open.
		{"outage", 503, `<html>down</html>`, partner.Uncertain, httpx.Retryable, "", "Service Unavailable", 4},
		// A 2xx without a clientId: Q2 may hold the cards, so the outcome
		// stays uncertain (the intent stays open for the rerun).
		{"answer without clientId", 200, `{"ssoToken":"x.y.z","cards":[]}`, partner.Uncertain, httpx.Uncertain, "bad_response", "answer carries no clientId", 2},
		{"answer not JSON", 200, `<html>ok</html>`, partner.Uncertain, httpx.Uncertain, "bad_response", "answer carries no clientId", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, calls := stub(t, tc.status, tc.body)
			c := newClient(t, url, token, nil)
			r := c.Send(context.Background(), []partner.Op{mapOne(t, c, customer("C1"))}, nil)[0]
			var he *httpx.Error
			if r.Outcome != tc.outcome || !errors.As(r.Err, &he) || he.Kind != tc.kind || he.Code != tc.code || he.Message != tc.message ||
				r.HTTPStatus != tc.status || r.Attempts != tc.attempts || int(calls.Load()) != tc.attempts || r.RemoteID != "" || len(r.Children) != 0 {
				t.Fatalf("result %+v (err %v, %d calls)", r, r.Err, calls.Load())
			}
		})
	}
}

// Against the real sandbox: a wrong token stops the partner, a request
// it refuses is rejected, and neither error carries card data.
func TestSandboxErrorsThroughTheClient(t *testing.T) {
	sb, srv := sandboxServer(t)
	bad := newClient(t, srv.URL, "wrong", nil)
	r := bad.Send(context.Background(), []partner.Op{mapOne(t, bad, customer("C1"))}, nil)[0]
	if r.Outcome != partner.Failed || httpx.KindOf(r.Err) != httpx.Fatal || r.HTTPStatus != 401 || !strings.Contains(r.Err.Error(), "bearer token") {
		t.Fatalf("wrong token: %+v", r)
	}

	c := newClient(t, srv.URL, token, nil)
	op := mapOne(t, c, customer("C1"))
	req := op.Payload.(q2open.SyncRequest)
	req.Cards = append([]q2open.Card(nil), req.Cards...)
	req.Cards[0].ExpMonth = "13" // what Map never sends, but a partner may refuse
	op.Payload = req
	r = c.Send(context.Background(), []partner.Op{op}, nil)[0]
	// The refused sync is followed by a lookup without cards: the client
	// and K2 are added, K1 is refused on its own. Q2 may hold part of the
	// first sync, so the outcome is uncertain, never rejected: a rejected
	// create would let the next run send the cards in a sync again.
	st := sb.State()
	cl, _ := st.Find("C1")
	if r.Outcome != partner.Uncertain || httpx.KindOf(r.Err) != httpx.Rejected || r.HTTPStatus != 400 ||
		!strings.Contains(r.Err.Error(), "expMonth") || len(cl.Cards) != 1 || cl.Cards[0].Identifier != "K2" ||
		children(r)["card/C1/K2"] != cl.Cards[0].PaymentMethodID || r.RemoteID != cl.ClientID {
		t.Fatalf("refused content: %+v state %+v", r, st)
	}
	for _, s := range []string{visaPAN, mcPAN} {
		if strings.Contains(r.Err.Error(), s) {
			t.Fatalf("error carries a card number: %v", r.Err)
		}
	}
}

// A partner message that echoes the card back is masked before it can
// reach the ledger.
func TestPartnerMessagesLoseCardData(t *testing.T) {
	url, _ := stub(t, 400, `{"message":"card 4111111111111111 (4111-1111-1111-1111) with code 123 refused; ref 12345"}`)
	c := newClient(t, url, token, nil)
	r := c.Send(context.Background(), []partner.Op{mapOne(t, c, customer("C1"))}, nil)[0]
	msg := r.Err.Error()
	for _, s := range []string{visaPAN, "4111-1111-1111-1111", " 123 "} {
		if strings.Contains(msg, s) {
			t.Fatalf("message %q carries %q", msg, s)
		}
	}
	if !strings.Contains(msg, "411111******1111") || !strings.Contains(msg, "ref 12345") {
		t.Fatalf("message %q: masked too little or too much", msg)
	}
}

// The ssoToken logs the holder into Q2's white-label products: it is not
// kept in the result, whatever the answer carries.
func TestSSOTokenIsNeverKept(t *testing.T) {
	sb, _ := sandboxServer(t)
	rec := providertest.NewRecorder(sb)
	c := newClient(t, providertest.Serve(t, rec), token, nil)
	r := c.Send(context.Background(), []partner.Op{mapOne(t, c, customer("C1"))}, nil)[0]
	answer := rec.Last("").Resp
	var a q2open.SyncResponse
	if err := json.Unmarshal(answer, &a); err != nil || a.SSOToken == "" {
		t.Fatalf("answer %s", answer)
	}
	dump := fmt.Sprintf("%+v %#v", r, r)
	for _, part := range strings.Split(a.SSOToken, ".") {
		if strings.Contains(dump, part) {
			t.Fatalf("result keeps the ssoToken: %s", dump)
		}
	}
}

// Only cards we sent become children; ids Q2 answers for anything else
// are ignored.
func TestChildrenOnlyForCardsSent(t *testing.T) {
	url, _ := stub(t, 200, `{"clientId":"c1","ssoToken":"a.b.c","cards":[{"paymentMethodId":"p1","identifier":"K1"},{"paymentMethodId":"p9","identifier":"ZZ"},{"paymentMethodId":"p2","identifier":"K1"}]}`)
	c := newClient(t, url, token, nil)
	cu := customer("C1")
	cu.Accounts[0].Cards = cu.Accounts[0].Cards[:1]
	r := c.Send(context.Background(), []partner.Op{mapOne(t, c, cu)}, nil)[0]
	if r.Outcome != partner.OK || r.RemoteID != "c1" || len(r.Children) != 1 || r.Children[0] != (partner.Child{EntityKey: "card/C1/K1", RemoteID: "p1"}) {
		t.Fatalf("%+v", r)
	}
}

// A sync with cards is never resent: after its answer is lost, the
// client is looked up without cards and its list shows the cards the
// lost sync added, so nothing is added twice.
func TestLostSyncAnswerIsNotResentWithCards(t *testing.T) {
	sb, _ := sandboxServer(t)
	var calls atomic.Int32
	url := providertest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			sb.ServeHTTP(&discard{h: http.Header{}}, r) // the partner commits...
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close() // ...and the answer is lost
			return
		}
		sb.ServeHTTP(w, r)
	}))
	c := newClient(t, url, token, nil)
	r := c.Send(context.Background(), []partner.Op{mapOne(t, c, customer("C1"))}, nil)[0]
	st := sb.State()
	cl, _ := st.Find("C1")
	if r.Outcome != partner.OK || len(st.Clients) != 1 || st.Totals.DuplicateClients != 0 || r.RemoteID != cl.ClientID ||
		st.Totals.DuplicatePaymentMethods != 0 || st.Totals.DuplicateAdds != 0 || len(cl.Cards) != 2 {
		t.Fatalf("result %+v state %+v", r, st)
	}
	if got := children(r); got["card/C1/K1"] != cl.Method("K1")[0].PaymentMethodID || got["card/C1/K2"] != cl.Method("K2")[0].PaymentMethodID {
		t.Fatalf("children %v, state %+v", got, cl)
	}
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func TestNewChecksConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  q2open.Config
	}{
		{"no token", q2open.Config{BaseURL: "https://api.q2open.io"}},
		{"negative TTL", q2open.Config{BaseURL: "https://api.q2open.io", Token: "t", TokenTTL: -time.Hour}},
		{"bad URL", q2open.Config{BaseURL: "api.q2open.io", Token: "t"}},
	}
	for _, tc := range tests {
		if _, err := q2open.New(tc.cfg); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if _, err := q2open.New(q2open.Config{BaseURL: "https://api.q2open.io", Token: "t"}); err != nil {
		t.Fatal(err)
	}
}

// Q2 has no call that removes a client or a card: the engine must not
// plan deactivations for it.
func TestNoDeactivation(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", token, nil)
	if _, ok := any(c).(partner.Deactivator); ok {
		t.Fatal("q2open claims to deactivate, but Q2 documents no such call")
	}
	r := c.Send(context.Background(), []partner.Op{{EntityKey: "customer/C1", Kind: partner.Deactivate, RemoteID: "x"}}, nil)[0]
	if r.Outcome != partner.Failed || httpx.KindOf(r.Err) != httpx.Fatal {
		t.Fatalf("%+v", r)
	}
}

func TestWrongPayloadFailsLoudly(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", token, nil)
	for _, p := range []any{nil, "x", q2open.SyncRequest{}} {
		r := c.Send(context.Background(), []partner.Op{{EntityKey: "customer/C1", Kind: partner.Create, Payload: p}}, nil)[0]
		if r.Outcome != partner.Failed || httpx.CodeOf(r.Err) != "bad_payload" {
			t.Errorf("payload %#v: %+v", p, r)
		}
	}
}
