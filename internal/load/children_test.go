package load_test

import (
	"context"
	"testing"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

// childProvider answers every op with the children and outcome it is set
// to, as Q2's client does for the cards of a client.
type childProvider struct {
	outcome  partner.Outcome
	children func(op partner.Op) []partner.Child
}

func (p *childProvider) Name() string  { return "datafeed" } // the harness's run row names it
func (p *childProvider) MaxBatch() int { return 1 }
func (p *childProvider) Map(c *model.Customer) ([]partner.Item, []model.Reject) {
	return []partner.Item{{EntityKey: partner.CustomerKey(c.ID), CustomerID: c.ID, Payload: map[string]string{"id": c.ID, "v": c.Email}}}, nil
}

func (p *childProvider) Send(_ context.Context, ops []partner.Op, _ partner.Journal) []partner.Result {
	out := make([]partner.Result, len(ops))
	for i, op := range ops {
		out[i] = partner.Result{EntityKey: op.EntityKey, Outcome: p.outcome, RemoteID: "client-1", Children: p.children(op)}
		if p.outcome != partner.OK {
			out[i].Err = &httpx.Error{Partner: "datafeed", Kind: httpx.Retryable, Code: "delete_refused", Message: "refused"}
		}
	}
	return out
}

// Children are what the partner confirmed, whatever the parent's outcome:
// a failed parent keeps its confirmed card, and a removed child switches
// its sync_state row off.
func TestChildrenAreRecordedWhateverTheParentsOutcome(t *testing.T) {
	h := newHarness(t)
	p := &childProvider{outcome: partner.Failed, children: func(op partner.Op) []partner.Child {
		return []partner.Child{{EntityKey: partner.CardKey(op.CustomerID, "K1"), RemoteID: "pm-1", RequestID: "req-add"}}
	}}
	h.use(t, p)
	cs := makeCustomers(1)
	h.run(t, cs)
	state := func(key string) (active bool, remote, request string) {
		t.Helper()
		err := h.store.Pool().QueryRow(context.Background(), `SELECT active, coalesce(remote_id, ''), coalesce(last_request_id, '') FROM sync_state WHERE entity_key = $1`, key).
			Scan(&active, &remote, &request)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return
	}
	if a, r, q := state("card/C0000/K1"); !a || r != "pm-1" || q != "req-add" {
		t.Fatalf("child of a failed parent: active %v remote %q request %q", a, r, q)
	}
	var parents int
	_ = h.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM sync_state WHERE entity_key = 'customer/C0000'`).Scan(&parents)
	if parents != 0 {
		t.Fatal("a failed parent was recorded delivered")
	}

	p.outcome = partner.OK
	p.children = func(op partner.Op) []partner.Child {
		return []partner.Child{{EntityKey: partner.CardKey(op.CustomerID, "K1"), RequestID: "req-del", Removed: true}}
	}
	h.run(t, cs)
	if a, r, q := state("card/C0000/K1"); a || r != "pm-1" || q != "req-del" {
		t.Fatalf("removed child: active %v remote %q request %q; want inactive, its id kept", a, r, q)
	}
}
