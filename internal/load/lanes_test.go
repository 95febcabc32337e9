package load_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/pgtest"
)

// slow is a per-record partner whose every call waits for a token from
// the test (or for gate to close).
type slow struct {
	tokens chan struct{}
	gate   chan struct{}
	calls  atomic.Int64
}

func (s *slow) Name() string  { return "slow" }
func (s *slow) MaxBatch() int { return 1 }
func (s *slow) Map(c *model.Customer) ([]partner.Item, []model.Reject) {
	return []partner.Item{{EntityKey: partner.CustomerKey(c.ID), CustomerID: c.ID, Payload: map[string]string{"id": c.ID}}}, nil
}

func (s *slow) Send(ctx context.Context, ops []partner.Op, _ partner.Journal) []partner.Result {
	select {
	case <-s.tokens:
	case <-s.gate:
	case <-ctx.Done():
	}
	s.calls.Add(1)
	return allOK(ops)
}

// batching is a data-feed-like partner: 50 ops a call, every batch size
// kept; done closes once it has taken want ops.
type batching struct {
	want  int
	done  chan struct{}
	mu    sync.Mutex
	sizes []int
	total int
}

func (b *batching) Name() string  { return "fast" }
func (b *batching) MaxBatch() int { return 50 }
func (b *batching) Map(c *model.Customer) ([]partner.Item, []model.Reject) {
	return []partner.Item{{EntityKey: partner.CustomerKey(c.ID), CustomerID: c.ID, Payload: map[string]string{"n": c.LastName}}}, nil
}

func (b *batching) Send(_ context.Context, ops []partner.Op, _ partner.Journal) []partner.Result {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(ops))
	b.total += len(ops)
	if b.total == b.want {
		close(b.done)
	}
	b.mu.Unlock()
	return allOK(ops)
}

func (b *batching) average() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return float64(b.total) / float64(len(b.sizes))
}

func runAsync(t *testing.T, store *ledger.Store, eng *load.Engine, cs []*model.Customer) <-chan *load.Summary {
	t.Helper()
	id, err := store.StartRun(context.Background(), ledger.RunInfo{Group: "g", Source: "test", Providers: []string{"fast", "slow"}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan *load.Summary, 1)
	go func() {
		sum, err := eng.Run(context.Background(), id, source(cs))
		if err != nil {
			t.Error(err)
		}
		out <- sum
	}()
	return out
}

// failAfter bounds a wait that, on a broken engine, never ends: it is
// how such an engine fails this test instead of hanging it, not a timing
// the test depends on.
const failAfter = 60 * time.Second

// Issue 19: a partner whose calls do not come back does not hold up the
// others. The fast partner takes every customer, in full batches, while
// the slow one has not finished one call; then the slow one is let go
// and the run completes.
func TestFastPartnerFinishesWhileSlowOneBlocks(t *testing.T) {
	store := ledger.FromPool(pgtest.NewPool(t))
	const n = 2000
	sl := &slow{tokens: make(chan struct{}), gate: make(chan struct{})}
	fast := &batching{want: n, done: make(chan struct{})}
	eng := newEngine(t, store, []partner.Provider{fast, sl}, load.WithWorkers(map[string]int{"slow": 2, "fast": 4}))
	sums := runAsync(t, store, eng, makeCustomers(n))
	select {
	case <-fast.done:
	case <-time.After(failAfter):
		close(sl.gate)
		t.Fatalf("the fast partner took %d of %d ops while the slow one blocked", fast.total, n)
	}
	if sl.calls.Load() != 0 {
		t.Fatalf("the slow partner answered %d calls", sl.calls.Load())
	}
	if avg := fast.average(); avg < 45 {
		t.Errorf("fast partner's batches averaged %.1f ops (sizes %v), want at least 45 of 50", avg, fast.sizes)
	}
	close(sl.gate)
	sum := <-sums
	if !sum.Delivered() || sum.Providers["slow"].OK != n || sum.Providers["fast"].OK != n {
		t.Fatalf("not delivered: fast %+v slow %+v", sum.Providers["fast"], sum.Providers["slow"])
	}
}

// Issue 19: with the queue bound spent on a throttled partner's ops, the
// planners feed the batching partner only as fast as the throttled one
// drains; its batches still fill (a 4-shard run sent 1.8 customers per
// data feed request when a planner stalled behind a full lane flushed
// partial batches).
func TestBatchesFillWhileAnotherPartnerIsThrottled(t *testing.T) {
	store := ledger.FromPool(pgtest.NewPool(t))
	const n = 1500
	sl := &slow{tokens: make(chan struct{}), gate: make(chan struct{})}
	fast := &batching{want: n, done: make(chan struct{})}
	eng := newEngine(t, store, []partner.Provider{fast, sl},
		load.WithWorkers(map[string]int{"slow": 4, "fast": 4}), load.WithQueue(120, time.Hour), load.WithPlanning(100, 2))
	sums := runAsync(t, store, eng, makeCustomers(n))
	stop := make(chan struct{})
	go func() { // the throttle: one call at a time
		for {
			select {
			case sl.tokens <- struct{}{}:
			case <-stop:
				return
			}
		}
	}()
	var sum *load.Summary
	select {
	case sum = <-sums:
	case <-time.After(failAfter):
		close(sl.gate)
		t.Fatal("the run did not finish")
	}
	close(stop)
	if !sum.Delivered() {
		t.Fatalf("not delivered: fast %+v slow %+v", sum.Providers["fast"], sum.Providers["slow"])
	}
	if avg := fast.average(); avg < 45 {
		t.Errorf("fast partner's batches averaged %.1f ops (sizes %v), want at least 45 of 50", avg, fast.sizes)
	}
}
