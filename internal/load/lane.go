package load

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/northwind-data/etl/internal/partner"
)

// flow is what the lanes of one run share: the bound on queued ops and
// what the planners are doing, which decides when a partial batch goes out.
//
// Lanes never wait for each other. A planner blocks on one thing only,
// the run-wide budget of queued ops (WithQueue): it never waits for a
// particular partner's queue, so a fast partner keeps being fed while a
// slow one's ops pile up, until the budget is spent.
type flow struct {
	budget *semaphore.Weighted
	size   int64
	lanes  []*lane

	busy    atomic.Int32 // planners planning a batch
	stalled atomic.Int32 // planners waiting for budget
	calls   atomic.Int32 // partner calls in flight, all lanes
}

func newFlow(size int) *flow {
	return &flow{budget: semaphore.NewWeighted(int64(size)), size: int64(size)}
}

// reserve takes budget for n ops of one customer and reports how many of
// them hold a unit (all, unless n exceeds the whole budget: a customer
// with more ops than that goes through alone).
func (f *flow) reserve(ctx context.Context, n int) (int, error) {
	k := min(int64(n), f.size)
	if k == 0 || f.budget.TryAcquire(k) {
		return int(k), nil
	}
	f.busy.Add(-1)
	f.stalled.Add(1)
	f.wakeAll() // a lane whose partial batch holds the budget must send it
	err := f.budget.Acquire(ctx, k)
	f.stalled.Add(-1)
	f.busy.Add(1)
	if err != nil {
		return 0, err
	}
	return int(k), nil
}

func (f *flow) release(n int) {
	if n > 0 {
		f.budget.Release(int64(n))
	}
}

func (f *flow) planning() { f.busy.Add(1) }

func (f *flow) planned() {
	if f.busy.Add(-1) == 0 {
		f.wakeAll()
	}
}

// starved reports whether a lane's partial batch has nothing to wait for:
// no planner is producing (they wait for the source, or are done), or
// they wait for budget while no call is in flight anywhere, so that only
// ops sitting in partial batches hold it. A planner waiting for budget
// that a slow partner's calls hold is not a reason: the batch waits to
// fill (or for the batch deadline).
func (f *flow) starved() bool {
	if f.busy.Load() > 0 {
		return false
	}
	return f.stalled.Load() == 0 || f.calls.Load() == 0
}

func (f *flow) wakeAll() {
	for _, l := range f.lanes {
		l.wake()
	}
}

// task is one queued op; held says it holds a unit of the flow's budget.
type task struct {
	op   partner.Op
	held bool
}

// job is one call: a batch for Send, or a single op to resolve or
// deactivate.
type job struct {
	ops  []partner.Op
	held int
	kind jobKind
}

type jobKind int

const (
	sendJob jobKind = iota
	resolveJob
	deactivateJob
)

func (j *job) add(t task) {
	j.ops = append(j.ops, t.op)
	if t.held {
		j.held++
	}
}

// lane is one partner's queue, batcher and workers. The planners push
// (concurrently); one dispatcher goroutine turns the queue into jobs; the
// workers take jobs from an unbuffered channel, so a job is handed over
// only when a worker is free to call.
type lane struct {
	p        partner.Provider
	journals bool // the partner writes intents (it is a Resolver)
	counts   *Counts
	stopped  atomic.Bool
	stopMsg  atomic.Value
	workers  int

	mu     sync.Mutex
	queue  []task
	closed bool
	wakeCh chan struct{}
	jobs   chan job
}

func newLane(p partner.Provider, workers int) *lane {
	_, journals := p.(partner.Resolver)
	return &lane{p: p, journals: journals, counts: &Counts{}, workers: workers, wakeCh: make(chan struct{}, 1), jobs: make(chan job)}
}

func (l *lane) wake() {
	select {
	case l.wakeCh <- struct{}{}:
	default:
	}
}

// push queues tasks; it never blocks (the flow's budget bounds them).
func (l *lane) push(ts ...task) {
	l.mu.Lock()
	l.queue = append(l.queue, ts...)
	l.mu.Unlock()
	l.wake()
}

// close says no more tasks come: the dispatcher sends what is left and
// stops.
func (l *lane) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.wake()
}

func (l *lane) take() ([]task, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.queue
	l.queue = nil
	return ts, l.closed
}

// dispatch batches the lane's queue into jobs until the lane is closed
// and empty. A batch goes out when it holds MaxBatch ops; a partial one
// only when no more ops can come (the lane is closed), when the lane
// would otherwise sit idle (flow.starved), or once its first op has
// waited wait. Resolves and deactivations go out alone. drop accounts for
// an op not sent (the run is cancelled or the partner stopped).
func (l *lane) dispatch(ctx context.Context, f *flow, wait time.Duration, drop func(t task)) {
	defer close(l.jobs)
	max := l.p.MaxBatch()
	var cur job
	var due time.Time
	timer := time.NewTimer(wait)
	timer.Stop()
	defer timer.Stop()
	for {
		ts, closed := l.take()
		for _, t := range ts {
			if ctx.Err() != nil || l.stopped.Load() {
				drop(t) // the rerun sends it
				continue
			}
			switch {
			case t.op.Intent != "":
				l.jobs <- single(t, resolveJob)
			case t.op.Kind == partner.Deactivate:
				l.jobs <- single(t, deactivateJob)
			default:
				if len(cur.ops) == 0 {
					due = time.Now().Add(wait)
					timer.Reset(wait)
				}
				cur.add(t)
				if len(cur.ops) >= max {
					l.jobs <- cur
					cur = job{}
					timer.Stop()
				}
			}
		}
		if len(cur.ops) > 0 && (ctx.Err() != nil || l.stopped.Load()) {
			l.jobs <- cur // the workers count it not sent
			cur = job{}
		}
		if len(cur.ops) > 0 {
			switch {
			case closed:
				l.jobs <- cur
				cur = job{}
			case f.starved() || !time.Now().Before(due):
				select {
				case l.jobs <- cur: // only to a free worker: else it keeps filling
					cur = job{}
					timer.Stop()
				default:
				}
			}
		}
		if closed {
			return // nothing is pushed after close
		}
		select {
		case <-l.wakeCh:
		case <-timer.C:
		}
	}
}

func single(t task, kind jobKind) job {
	j := job{kind: kind}
	j.add(t)
	return j
}
