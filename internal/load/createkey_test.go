package load_test

import (
	"context"
	"sync"
	"testing"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/pgtest"
)

// scripted is a one-op-per-customer partner that answers each Send with
// the next scripted result and keeps the ops it was sent.
type scripted struct {
	mu      sync.Mutex
	answers []partner.Result
	ops     []partner.Op
}

func (s *scripted) Name() string  { return "scripted" }
func (s *scripted) MaxBatch() int { return 1 }
func (s *scripted) Map(c *model.Customer) ([]partner.Item, []model.Reject) {
	return []partner.Item{{EntityKey: partner.CustomerKey(c.ID), CustomerID: c.ID, Origin: c.Origin,
		Payload: map[string]string{"email": c.Email}}}, nil
}

func (s *scripted) Send(_ context.Context, ops []partner.Op, _ partner.Journal) []partner.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, ops...)
	r := s.answers[0]
	s.answers = s.answers[1:]
	r.EntityKey = ops[0].EntityKey
	return []partner.Result{r}
}

// TestCreateKeyFollowsTheEntityNotItsContent: a create whose outcome is
// unknown is resent under the same key after its content changed (so the
// partner can recognise it); a create the partner refused with a 4xx is
// resent under a new key (its refusal may be replayed under the old one);
// nothing else moves the key.
func TestCreateKeyFollowsTheEntityNotItsContent(t *testing.T) {
	store := ledger.FromPool(pgtest.NewPool(t))
	key := []byte(testKey)
	p := &scripted{}
	eng := newEngine(t, store, []partner.Provider{p})
	c := makeCustomers(1)[0]
	gen := func(n int) string { return load.CreateKey(key, "scripted", partner.CustomerKey(c.ID), n) }
	refused := func(status int) partner.Result {
		return partner.Result{Outcome: partner.Rejected, HTTPStatus: status,
			Err: &httpx.Error{Partner: "scripted", Kind: httpx.Rejected, Status: status, Code: "refused"}}
	}
	steps := []struct {
		email  string
		answer partner.Result
		key    string
	}{
		{"a@example.com", partner.Result{Outcome: partner.Uncertain, Err: &httpx.Error{Partner: "scripted", Kind: httpx.Uncertain, Code: "lost"}}, gen(0)},
		{"b@example.com", partner.Result{Outcome: partner.Failed, HTTPStatus: 503, Err: &httpx.Error{Partner: "scripted", Kind: httpx.Retryable, Status: 503}}, gen(0)},
		{"c@example.com", refused(400), gen(0)},
		{"c@example.com", partner.Result{Outcome: partner.Rejected, HTTPStatus: 400, RemoteID: "adopted",
			Err: &httpx.Error{Partner: "scripted", Kind: httpx.Rejected, Status: 400}}, gen(1)}, // something exists: no new key
		{"d@example.com", refused(422), gen(1)},
		{"d@example.com", partner.Result{Outcome: partner.OK, RemoteID: "R1", HTTPStatus: 201}, gen(2)},
	}
	for i, st := range steps {
		c.Email = st.email
		p.answers = []partner.Result{st.answer}
		runOnce(t, store, eng, c)
		if got := p.ops[len(p.ops)-1]; got.Kind != partner.Create || got.IdemKey != st.key {
			t.Errorf("run %d: %s with key %s, want create with %s", i+1, got.Kind, got.IdemKey, st.key)
		}
	}
	if len(p.ops) != len(steps) {
		t.Fatalf("%d ops sent in %d runs", len(p.ops), len(steps))
	}
	// Delivered: the next change is an update, keyed by its content.
	c.Email = "e@example.com"
	p.answers = []partner.Result{{Outcome: partner.OK, RemoteID: "R1", HTTPStatus: 200}}
	runOnce(t, store, eng, c)
	if got := p.ops[len(p.ops)-1]; got.Kind != partner.Update || got.IdemKey == gen(2) || got.RemoteID != "R1" {
		t.Errorf("after delivery: %+v", got)
	}
}

func runOnce(t *testing.T, store *ledger.Store, eng *load.Engine, c *model.Customer) {
	t.Helper()
	ctx := context.Background()
	id, err := store.StartRun(ctx, ledger.RunInfo{Group: "g", Source: "test", Providers: []string{"scripted"}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Run(ctx, id, source([]*model.Customer{c})); err != nil {
		t.Fatal(err)
	}
	if err := store.FinishRun(ctx, id, "ok", nil); err != nil {
		t.Fatal(err)
	}
}
