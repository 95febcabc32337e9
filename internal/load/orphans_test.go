package load_test

import (
	"context"
	"errors"
	"testing"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

// finderFake is a fake that can also look an entity up by its key alone.
type finderFake struct {
	*fake
	find func(op partner.Op) (string, bool, error)
}

func (f *finderFake) Find(_ context.Context, op partner.Op) (string, bool, error) { return f.find(op) }

// A run killed after a partner committed a create but before the ledger
// recorded it leaves an open intent; when the customer then vanishes from
// the export, no rerun plans it, and nothing in sync_state says the
// partner holds it. The deactivation pass settles such intents: found by
// key -> recorded and switched off in the same run; provably absent ->
// closed; cannot tell -> uncertain needs_operator, intent kept open.
func TestOpenIntentsOfVanishedCustomers(t *testing.T) {
	cs := makeCustomers(30)
	// C0001 the partner has, C0002 it does not, C0003 it cannot tell.
	inDoubt := map[string]bool{"C0001": true, "C0002": true, "C0003": true}
	base := &fake{}
	firstRun := true
	base.send = func(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result {
		out := allOK(ops)
		for i, op := range ops {
			if err := j.Note(ctx, op, "detail-"+op.CustomerID); err != nil {
				out[i] = partner.Result{EntityKey: op.EntityKey, Outcome: partner.Failed, Err: err}
				continue
			}
			if firstRun && inDoubt[op.CustomerID] {
				out[i] = partner.Result{EntityKey: op.EntityKey, Outcome: partner.Uncertain, Attempts: 1,
					Err: &httpx.Error{Partner: "fake", Kind: httpx.Uncertain, Code: "timeout"}}
			}
		}
		return out
	}
	p := &finderFake{fake: base, find: func(op partner.Op) (string, bool, error) {
		switch op.CustomerID {
		case "C0001":
			return "R-found", true, nil
		case "C0002":
			return "", false, nil
		default:
			return "", false, errors.New("lookup refused")
		}
	}}
	r := newFakeRig(t, base)
	r.prov = p
	r.with(t, load.WithDeactivation(0, nil))
	r.run(t, cs)
	firstRun = false
	base.reset()

	kept := cs[4:] // C0000 is an ordinary vanished customer
	sum := r.run(t, kept)
	c := sum.Providers["fake"]
	deact := keys(base.deactivated)
	if !deact["customer/C0001"] || !deact["customer/C0000"] || len(deact) != 2 {
		t.Fatalf("deactivated %v: want C0000 (vanished) and C0001 (found by key)", deact)
	}
	for _, op := range base.deactivated {
		if op.EntityKey == "customer/C0001" && op.RemoteID != "R-found" {
			t.Fatalf("C0001 deactivated with remote id %q, want the one Find gave", op.RemoteID)
		}
	}
	if c.Deactivate != 2 || c.Uncertain != 1 || c.ErrorCodes[partner.CodeNeedsOperator] != 1 {
		t.Fatalf("counts %+v: want 2 deactivations and 1 uncertain needs_operator", c)
	}
	open := func(id string) int {
		return r.count(t, `SELECT count(*) FROM ledger WHERE operation = 'intent' AND outcome = 'pending' AND customer_id = $1`, id)
	}
	if open("C0001") != 0 || open("C0002") != 0 || open("C0003") == 0 {
		t.Fatalf("open intents: C0001 %d, C0002 %d, C0003 %d: want only C0003's kept", open("C0001"), open("C0002"), open("C0003"))
	}
	if n := r.count(t, `SELECT count(*) FROM ledger WHERE customer_id = 'C0003' AND outcome = 'uncertain' AND error_code = $1`, partner.CodeNeedsOperator); n != 1 {
		t.Fatalf("%d needs_operator rows for C0003, want 1", n)
	}
	if n := r.count(t, `SELECT count(*) FROM sync_state WHERE active AND customer_id IN ('C0000', 'C0001', 'C0002', 'C0003')`); n != 0 {
		t.Fatalf("%d vanished customers still active in sync_state", n)
	}

	// The operator finds C0003 at the partner; the next run switches it off.
	if _, err := r.store.SettleIntent(context.Background(), ledger.Settlement{Provider: "fake", EntityKey: "customer/C0003", As: ledger.SettledDelivered, RemoteID: "R-op", By: "test", Reason: "seen at the partner"}); err != nil {
		t.Fatal(err)
	}
	base.reset()
	sum = r.run(t, kept)
	if deact := keys(base.deactivated); !deact["customer/C0003"] || len(deact) != 1 || sum.Providers["fake"].Uncertain != 0 {
		t.Fatalf("after settling: deactivated %v, counts %+v", deact, sum.Providers["fake"])
	}
}

// A partner that journals but cannot look an entity up by key alone
// (Synctera) leaves the vanished customer's intent to an operator.
func TestOpenIntentOfVanishedCustomerWithoutFinderNeedsOperator(t *testing.T) {
	cs := makeCustomers(12)
	p := &fake{}
	firstRun := true
	p.send = func(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result {
		out := allOK(ops)
		for i, op := range ops {
			_ = j.Note(ctx, op, "")
			if firstRun && op.CustomerID == "C0005" {
				out[i] = partner.Result{EntityKey: op.EntityKey, Outcome: partner.Uncertain, Attempts: 1,
					Err: &httpx.Error{Partner: "fake", Kind: httpx.Uncertain, Code: "timeout"}}
			}
		}
		return out
	}
	r := newFakeRig(t, p)
	r.with(t, load.WithDeactivation(0, nil))
	r.run(t, cs)
	firstRun = false
	p.reset()
	var kept = append(append([]*model.Customer{}, cs[:5]...), cs[6:]...)
	sum := r.run(t, kept)
	c := sum.Providers["fake"]
	if c.ErrorCodes[partner.CodeNeedsOperator] != 1 || len(p.deactivated) != 0 || len(p.sent) != 0 {
		t.Fatalf("counts %+v, %d deactivated, %d sent: want one needs_operator and no call", c, len(p.deactivated), len(p.sent))
	}
	if n := r.count(t, `SELECT count(*) FROM ledger WHERE operation = 'intent' AND outcome = 'pending' AND customer_id = 'C0005'`); n == 0 {
		t.Fatal("the intent was closed: an operator would see nothing")
	}
}

// resolverOnly is a journaling partner with no deactivation (ClubReady,
// Q2): it implements Provider and Resolver, not Deactivator.
type resolverOnly struct {
	f       *fake
	resolve func(op partner.Op) partner.Result
}

func (r *resolverOnly) Name() string  { return r.f.Name() }
func (r *resolverOnly) MaxBatch() int { return r.f.MaxBatch() }
func (r *resolverOnly) Map(c *model.Customer) ([]partner.Item, []model.Reject) {
	return r.f.Map(c)
}
func (r *resolverOnly) Send(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result {
	return r.f.Send(ctx, ops, j)
}
func (r *resolverOnly) Resolve(_ context.Context, op partner.Op, _ partner.Journal) partner.Result {
	return r.resolve(op)
}

// Without a partner that deactivates, the run must still record what it
// saw before it settles open intents as vanished: an intent of a customer
// still in the source is the planner's to resolve, never the operator's;
// one of a customer that left is the operator's.
func TestOpenIntentsOfSeenCustomersAreNotVanishedWithoutADeactivator(t *testing.T) {
	cs := makeCustomers(12)
	base := &fake{}
	base.send = func(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result {
		out := allOK(ops)
		for i, op := range ops {
			_ = j.Note(ctx, op, "d")
			if op.CustomerID == "C0005" || op.CustomerID == "C0007" {
				out[i] = partner.Result{EntityKey: op.EntityKey, Outcome: partner.Uncertain, Attempts: 1,
					Err: &httpx.Error{Partner: "fake", Kind: httpx.Uncertain, Code: "timeout"}}
			}
		}
		return out
	}
	p := &resolverOnly{f: base, resolve: func(op partner.Op) partner.Result {
		return partner.Result{EntityKey: op.EntityKey, Outcome: partner.Uncertain, Attempts: 1,
			Err: &httpx.Error{Partner: "fake", Kind: httpx.Uncertain, Code: "timeout"}}
	}}
	r := newFakeRig(t, base)
	r.prov = p
	r.with(t, load.WithDeactivation(0, nil))
	r.run(t, cs)
	kept := append(append([]*model.Customer{}, cs[:7]...), cs[8:]...) // C0007 leaves
	sum := r.run(t, kept)
	c := sum.Providers["fake"]
	if c.ErrorCodes[partner.CodeNeedsOperator] != 1 || c.Resolve != 1 {
		t.Fatalf("counts %+v: want C0005 resolved by the planner and only C0007 needing an operator", c)
	}
	if n := r.count(t, `SELECT count(*) FROM ledger WHERE error_code = $1 AND customer_id <> 'C0007'`, partner.CodeNeedsOperator); n != 0 {
		t.Fatalf("%d needs_operator rows for customers still in the source", n)
	}
}
