package load

import (
	"context"
	"go.uber.org/zap"
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
	used    atomic.Int64 // budget held: ops queued, batching or in flight
	parked  atomic.Int64 // of which in partial batches, waiting to fill
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
		f.used.Add(k)
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
	f.used.Add(k)
	return int(k), nil
}

func (f *flow) release(n int) {
	if n > 0 {
		f.used.Add(int64(-n))
		f.budget.Release(int64(n))
		if f.stalled.Load() > 0 && f.onlyParked() {
			f.wakeAll()
		}
	}
}

// onlyParked reports whether all the budget in use is held by ops in
// partial batches: nothing else will release any, so a planner waiting
// for budget waits for those batches to go out.
func (f *flow) onlyParked() bool { return f.used.Load() == f.parked.Load() }

func (f *flow) planning() { f.busy.Add(1) }

func (f *flow) planned() {
	if f.busy.Add(-1) == 0 {
		f.wakeAll()
	}
}

// starved reports whether a lane's partial batch has nothing to wait for:
// no planner is producing (they wait for the source, or are done), or
// they wait for budget that only ops in partial batches hold. A planner
// waiting for budget that a slow partner's queue or calls hold is not a
// reason: the batch waits to fill (or for the batch deadline).
func (f *flow) starved() bool {
	if f.busy.Load() > 0 {
		return false
	}
	return f.stalled.Load() == 0 || f.onlyParked()
}

func (f *flow) wakeAll() { f.wakeOthers(nil) }

func (f *flow) wakeOthers(self *lane) {
	for _, l := range f.lanes {
		if l != self {
			l.wake()
		}
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
	// halt is done once the partner is stopped: the partner's client
	// sends no further attempt for the calls already handed to it
	// (httpx.WithStop), so the workers queued at its slots do not each
	// send one more request after a fatal answer.
	halt    context.Context
	haltNow context.CancelFunc
	workers int

	mu     sync.Mutex
	queue  []task
	closed bool
	wakeCh chan struct{}
	jobs   chan job
	log    *zap.Logger // batch flushes at debug; nil: none
}

// flushed logs a batch handed to the workers, with why it went out: full
// (MaxBatch ops), deadline (its first op waited the batch wait), idle
// (nothing else can happen until it goes), drain (no more ops will come),
// or cancelled (the workers count it not sent).
func (l *lane) flushed(j job, reason string) {
	if l.log != nil && l.log.Core().Enabled(zap.DebugLevel) {
		l.log.Debug("batch flushed", zap.String("partner", l.p.Name()), zap.Int("size", len(j.ops)), zap.String("reason", reason))
	}
}

func (l *lane) send(j job, reason string) {
	l.flushed(j, reason)
	l.jobs <- j
}

func newLane(p partner.Provider, workers int) *lane {
	_, journals := p.(partner.Resolver)
	halt, haltNow := context.WithCancel(context.Background())
	return &lane{p: p, journals: journals, counts: &Counts{}, workers: workers, wakeCh: make(chan struct{}, 1), jobs: make(chan job),
		halt: halt, haltNow: haltNow}
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
		parkedNow := false
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
				if t.held {
					f.parked.Add(1)
					parkedNow = true
				}
				if len(cur.ops) >= max {
					l.send(f.unpark(&cur), "full")
					timer.Stop()
				}
			}
		}
		if len(cur.ops) > 0 && (ctx.Err() != nil || l.stopped.Load()) {
			l.send(f.unpark(&cur), "cancelled") // the workers count it not sent
		}
		if closed {
			if len(cur.ops) > 0 {
				l.send(f.unpark(&cur), "drain")
			}
			return // nothing is pushed after close
		}
		if parkedNow && f.stalled.Load() > 0 && f.onlyParked() {
			f.wakeOthers(l) // this lane's partial batch completes a standstill
		}
		// A partial batch that may go out is offered to the workers while
		// the lane waits: a worker that comes free takes it, and anything
		// that changes the answer (more ops, a planner, a call ending)
		// wakes the lane to decide again.
		var offer chan job
		reason := "deadline"
		if len(cur.ops) > 0 && (f.starved() || !time.Now().Before(due)) {
			offer = l.jobs
			if time.Now().Before(due) {
				reason = "idle"
			}
		}
		if offer != nil {
			// Not parked while offered, so that no other lane takes this
			// one for a standstill and sends its own partial batch too.
			f.parked.Add(int64(-cur.held))
		}
		select {
		case offer <- cur:
			l.flushed(cur, reason)
			cur = job{}
			timer.Stop()
			continue
		case <-l.wakeCh:
		case <-timer.C:
		}
		if offer != nil {
			f.parked.Add(int64(cur.held))
		}
	}
}

// unpark hands over a batch: its ops no longer wait to fill. It is taken
// off parked before the hand-over, so a standstill is never seen while
// the batch is on its way to a worker.
func (f *flow) unpark(j *job) job {
	f.parked.Add(int64(-j.held))
	out := *j
	*j = job{}
	return out
}

func single(t task, kind jobKind) job {
	j := job{kind: kind}
	j.add(t)
	return j
}
