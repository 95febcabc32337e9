package load_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/pgtest"
	"github.com/northwind-data/etl/internal/shard"
)

// fake is an in-test partner: one op per customer ("customer/<id>"), every
// call counted, and what Send answers decided by the test. It implements
// Provider, Deactivator and Resolver.
type fake struct {
	batch int
	// send answers one call; nil answers OK for every op.
	send func(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result

	mu          sync.Mutex
	sent        []partner.Op // every op Send was given
	deactivated []partner.Op
	resolved    []partner.Op
	calls       atomic.Int64 // Send, Deactivate and Resolve calls
}

type fakePayload struct {
	ID, Name string
}

func (f *fake) Name() string  { return "fake" }
func (f *fake) MaxBatch() int { return max(f.batch, 1) }

func (f *fake) Map(c *model.Customer) ([]partner.Item, []model.Reject) {
	return []partner.Item{{EntityKey: partner.CustomerKey(c.ID), CustomerID: c.ID, Origin: c.Origin,
		Payload: fakePayload{ID: c.ID, Name: c.LastName}}}, nil
}

func (f *fake) Send(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result {
	f.calls.Add(1)
	f.mu.Lock()
	f.sent = append(f.sent, ops...)
	f.mu.Unlock()
	if f.send != nil {
		return f.send(ctx, ops, j)
	}
	return allOK(ops)
}

func (f *fake) Deactivate(ctx context.Context, op partner.Op) partner.Result {
	f.calls.Add(1)
	f.mu.Lock()
	f.deactivated = append(f.deactivated, op)
	f.mu.Unlock()
	return partner.Result{EntityKey: op.EntityKey, Outcome: partner.OK, Attempts: 1}
}

func (f *fake) Resolve(ctx context.Context, op partner.Op, j partner.Journal) partner.Result {
	f.calls.Add(1)
	f.mu.Lock()
	f.resolved = append(f.resolved, op)
	f.mu.Unlock()
	return partner.Result{EntityKey: op.EntityKey, Outcome: partner.OK, Attempts: 1, RemoteID: "R-" + op.CustomerID}
}

func (f *fake) reset() {
	f.mu.Lock()
	f.sent, f.deactivated, f.resolved = nil, nil, nil
	f.mu.Unlock()
	f.calls.Store(0)
}

func allOK(ops []partner.Op) []partner.Result {
	out := make([]partner.Result, len(ops))
	for i, op := range ops {
		out[i] = partner.Result{EntityKey: op.EntityKey, Outcome: partner.OK, Attempts: 1, RemoteID: "R-" + op.CustomerID}
	}
	return out
}

func keys(ops []partner.Op) map[string]bool {
	m := map[string]bool{}
	for _, op := range ops {
		m[op.EntityKey.String()] = true
	}
	return m
}

type fakeRig struct {
	store *ledger.Store
	p     *fake
	prov  partner.Provider // wraps p when set (a fake with more interfaces)
	eng   *load.Engine
	opts  []load.Option
}

// with rebuilds the engine with more options (a later one wins).
func (r *fakeRig) with(t *testing.T, opts ...load.Option) {
	t.Helper()
	r.opts = append(r.opts, opts...)
	var prov partner.Provider = r.p
	if r.prov != nil {
		prov = r.prov
	}
	eng, err := load.New(r.store, []partner.Provider{prov}, []byte("guards-test-key-0123456789abcdef"), r.opts...)
	if err != nil {
		t.Fatal(err)
	}
	r.eng = eng
}

func newFakeRig(t *testing.T, p *fake) *fakeRig {
	t.Helper()
	store := ledger.FromPool(pgtest.NewPool(t))
	r := &fakeRig{store: store, p: p}
	r.with(t, load.WithWorkers(map[string]int{"fake": 4}))
	return r
}

func (r *fakeRig) run(t *testing.T, cs []*model.Customer) *load.Summary {
	t.Helper()
	ctx := context.Background()
	id, err := r.store.StartRun(ctx, ledger.RunInfo{Group: "g", Source: "test", Providers: []string{"fake"}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.eng.Run(ctx, id, source(cs))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.store.FinishRun(ctx, id, "ok", nil); err != nil {
		t.Fatal(err)
	}
	return sum
}

func (r *fakeRig) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := r.store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

var errUnauthorized = &httpx.Error{Partner: "fake", Op: "POST /customers", Kind: httpx.Fatal, Status: 401, Code: "unauthorized", Message: "bad token"}

// A 401 stops the partner: each worker makes at most the call it already
// had in flight, nothing is sent after, the summary names the partner in
// Stopped, and everything not sent is counted so (never ok). It also runs
// the batcher's drain beside the workers' counting, which -race checks.
func TestFatalAnswerStopsThePartner(t *testing.T) {
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			p := &fake{send: func(ctx context.Context, ops []partner.Op, _ partner.Journal) []partner.Result {
				out := make([]partner.Result, len(ops))
				for i, op := range ops {
					out[i] = partner.FailureResult(op, errUnauthorized, 1)
				}
				return out
			}}
			r := newFakeRig(t, p)
			r.with(t, load.WithWorkers(map[string]int{"fake": workers}))
			const n = 300
			sum := r.run(t, makeCustomers(n))
			c := sum.Providers["fake"]
			calls := p.calls.Load()
			if calls < 1 || calls > int64(workers) {
				t.Fatalf("%d calls after a 401 with %d workers: want at least the first and at most one in flight per worker", calls, workers)
			}
			if workers == 1 && calls != 1 {
				t.Fatalf("one worker made %d calls: want none after the first fatal answer", calls)
			}
			if !strings.Contains(sum.Stopped["fake"], "unauthorized") || sum.Delivered() {
				t.Fatalf("Stopped = %q, delivered %v: want the partner stopped with the 401's reason", sum.Stopped["fake"], sum.Delivered())
			}
			if c.OK != 0 || c.Failed != calls || c.NotSent != n-calls || c.Calls != calls {
				t.Fatalf("counts %+v: want %d failed, %d not sent, none ok", c, calls, n-calls)
			}
			if got := r.count(t, `SELECT count(*) FROM ledger WHERE provider = 'fake'`); got != int(calls) {
				t.Fatalf("ledger has %d rows: want one per op sent (%d)", got, calls)
			}
			if got := r.count(t, `SELECT count(*) FROM sync_state`); got != 0 {
				t.Fatalf("sync_state has %d rows after a stopped run", got)
			}
		})
	}
}

// shardsOf splits customers by the shard hash the CLI uses.
func shardsOf(cs []*model.Customer, n int) [][]*model.Customer {
	out := make([][]*model.Customer, n)
	for _, c := range cs {
		i := shard.Of(c.ID, n)
		out[i] = append(out[i], c)
	}
	return out
}

// The mass-deactivation guard: a run whose source lost more than the
// allowed fraction of a partner's active records deactivates none of them;
// one below the fraction deactivates exactly the vanished ones. Sharded,
// each shard weighs its own vanished records against its own share of the
// active ones, so the shards together never switch off more than the
// fraction of the whole (before, each compared with the global count and
// four shards removed four times the limit).
func TestDeactivationGuard(t *testing.T) {
	const n, fraction = 1000, 0.05
	cases := []struct {
		name    string
		shards  int
		removed float64 // fraction of each shard's customers missing from the source
		refused bool
	}{
		{"unsharded above the fraction", 1, 0.08, true},
		{"unsharded below the fraction", 1, 0.03, false},
		{"4 shards above the fraction", 4, 0.10, true},
		{"4 shards below the fraction", 4, 0.03, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &fake{}
			r := newFakeRig(t, p)
			r.with(t, load.WithDeactivation(fraction, nil))
			all := makeCustomers(n)
			if sum := r.run(t, all); !sum.Delivered() {
				t.Fatalf("first run: %+v", sum.Providers["fake"])
			}
			p.reset()
			var gone, refusedShards int
			for i, part := range shardsOf(all, tc.shards) {
				drop := int(float64(len(part)) * tc.removed)
				gone += drop
				sh := shard.Shard{Index: i, Count: tc.shards}
				r.with(t, load.WithDeactivation(fraction, sh.Keep))
				sum := r.run(t, part[drop:])
				msg, refused := sum.DeactGuard["fake"]
				if refused != tc.refused {
					t.Fatalf("shard %s: %d of its %d customers gone: refused=%v (%q), want %v", sh, drop, len(part), refused, msg, tc.refused)
				}
				if refused {
					refusedShards++
					if c := sum.Providers["fake"]; c.Deactivate != 0 || sum.Delivered() {
						t.Fatalf("shard %s: refused but %d deactivations planned, delivered %v", sh, c.Deactivate, sum.Delivered())
					}
				} else if c := sum.Providers["fake"]; c.Deactivate != int64(drop) || c.OK != int64(drop) {
					t.Fatalf("shard %s: %d deactivated, want its %d vanished customers", sh, c.OK, drop)
				}
			}
			deactivated := len(p.deactivated)
			if deactivated > int(n*fraction) {
				t.Fatalf("%d shards together deactivated %d of %d records: more than the fraction %.2f allows (%d)", tc.shards, deactivated, n, fraction, int(n*fraction))
			}
			if tc.refused {
				if deactivated != 0 {
					t.Fatalf("%d deactivated though every shard was refused", deactivated)
				}
			} else if deactivated != gone {
				t.Fatalf("%d deactivated, want the %d vanished", deactivated, gone)
			}
			if active := r.count(t, `SELECT count(*) FROM sync_state WHERE active`); active != n-deactivated {
				t.Fatalf("sync_state: %d active, want %d", active, n-deactivated)
			}
		})
	}
}

// A partner that answers fewer results than ops it was given: the ones
// without an answer are recorded failed, never ok, and the rerun sends
// exactly them.
func TestFewerResultsThanOpsAreFailed(t *testing.T) {
	var short atomic.Bool
	short.Store(true)
	var mu sync.Mutex
	answered := map[string]bool{}
	p := &fake{batch: 10, send: func(ctx context.Context, ops []partner.Op, _ partner.Journal) []partner.Result {
		res := allOK(ops)
		if short.Load() {
			res = res[:len(ops)/2]
		}
		mu.Lock()
		for _, r := range res {
			answered[r.EntityKey.String()] = true
		}
		mu.Unlock()
		return res
	}}
	r := newFakeRig(t, p)
	r.with(t, load.WithWorkers(map[string]int{"fake": 1}))
	const n = 100
	sum := r.run(t, makeCustomers(n))
	c := sum.Providers["fake"]
	if len(p.sent) != n || c.OK != int64(len(answered)) || c.Failed != n-c.OK || c.Failed == 0 || sum.Delivered() {
		t.Fatalf("counts %+v after %d calls, %d ops answered: want the unanswered ones failed", c, p.calls.Load(), len(answered))
	}
	okRows := r.count(t, `SELECT count(*) FROM ledger WHERE provider = 'fake' AND outcome = 'ok'`)
	failedRows := r.count(t, `SELECT count(*) FROM ledger WHERE provider = 'fake' AND outcome = 'failed'`)
	states := r.count(t, `SELECT count(*) FROM sync_state`)
	if okRows != int(c.OK) || failedRows != int(c.Failed) || states != int(c.OK) {
		t.Fatalf("ledger: %d ok, %d failed, %d in sync_state; counts %+v", okRows, failedRows, states, c)
	}
	unanswered := map[string]bool{}
	rows, err := r.store.Pool().Query(context.Background(), `SELECT entity_key FROM ledger WHERE outcome = 'failed'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		if answered[k] {
			t.Fatalf("%s: answered ok but recorded failed", k)
		}
		unanswered[k] = true
	}
	rows.Close()

	short.Store(false)
	p.reset()
	sum = r.run(t, makeCustomers(n))
	if got := keys(p.sent); len(got) != len(unanswered) || !sum.Delivered() {
		t.Fatalf("rerun sent %d ops, want the %d unanswered ones", len(got), len(unanswered))
	}
	for k := range keys(p.sent) {
		if !unanswered[k] {
			t.Fatalf("rerun sent %s, which the first run had delivered", k)
		}
	}
}

// Ops whose intent an earlier run left open go to Resolve with the
// journalled detail, never to Send; once settled, the next run has
// nothing to resolve.
func TestOpenIntentsGoToTheResolver(t *testing.T) {
	var firstRun atomic.Bool
	firstRun.Store(true)
	p := &fake{}
	p.send = func(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result {
		out := allOK(ops)
		for i, op := range ops {
			if err := j.Note(ctx, op, "token-"+op.CustomerID); err != nil {
				out[i] = partner.Result{EntityKey: op.EntityKey, Outcome: partner.Failed, Err: err}
				continue
			}
			if firstRun.Load() && strings.HasSuffix(op.CustomerID, "3") {
				out[i] = partner.Result{EntityKey: op.EntityKey, Outcome: partner.Uncertain, Attempts: 1,
					Err: &httpx.Error{Partner: "fake", Kind: httpx.Uncertain, Code: "timeout"}}
			}
		}
		return out
	}
	r := newFakeRig(t, p)
	const n = 50
	cs := makeCustomers(n)
	sum := r.run(t, cs)
	if c := sum.Providers["fake"]; c.Uncertain != 5 || c.OK != n-5 {
		t.Fatalf("first run: %+v", c)
	}

	firstRun.Store(false)
	p.reset()
	sum = r.run(t, cs)
	c := sum.Providers["fake"]
	if len(p.resolved) != 5 || c.Resolve != 5 || len(p.sent) != 0 || !sum.Delivered() {
		t.Fatalf("rerun: %d resolved, %d sent, counts %+v: want the 5 open intents resolved and nothing sent", len(p.resolved), len(p.sent), c)
	}
	for _, op := range p.resolved {
		if !strings.HasSuffix(op.CustomerID, "3") || op.Intent != "token-"+op.CustomerID {
			t.Fatalf("resolved %s with intent %q", op.EntityKey, op.Intent)
		}
	}

	p.reset()
	sum = r.run(t, cs)
	if p.calls.Load() != 0 || sum.Providers["fake"].Unchanged != n {
		t.Fatalf("third run: %d calls, %+v", p.calls.Load(), sum.Providers["fake"])
	}
}

// A dry run plans against the checkpoint but calls no partner and writes
// no ledger row, even with changes and vanished records to act on.
func TestDryRunCallsNoPartnerAndWritesNothing(t *testing.T) {
	p := &fake{}
	r := newFakeRig(t, p)
	r.with(t, load.WithDeactivation(0, nil))
	cs := makeCustomers(40)
	r.run(t, cs)
	p.reset()
	tables := `SELECT (SELECT count(*) FROM ledger) + (SELECT count(*) FROM sync_state WHERE active) * 1000 + (SELECT count(*) FROM rejects) * 1000000 + (SELECT count(*) FROM run_seen) * 100000000`
	before := r.count(t, tables)

	changed := makeCustomers(45)[2:] // two vanished, five new
	changed[0].LastName = "Changed"
	var planned []partner.Op
	var mu sync.Mutex
	r.with(t, load.WithDryRun(func(_ string, op partner.Op) {
		mu.Lock()
		planned = append(planned, op)
		mu.Unlock()
	}))
	sum := r.run(t, changed)
	if p.calls.Load() != 0 {
		t.Fatalf("dry run made %d partner calls", p.calls.Load())
	}
	if after := r.count(t, tables); after != before {
		t.Fatalf("dry run changed the ledger tables: %d -> %d", before, after)
	}
	c := sum.Providers["fake"]
	if len(planned) != 6 || c.Create != 5 || c.Update != 1 || c.Calls != 0 {
		t.Fatalf("dry run planned %d ops, counts %+v: want 5 creates and 1 update shown", len(planned), c)
	}
}
