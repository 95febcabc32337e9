package httpx

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"
)

// Slots bounds the requests in flight to one partner: an attempt holds
// a slot only while it waits for its rate token and is on the wire, so a
// caller waiting out a backoff, a Retry-After or its own ledger commit
// leaves the slot to another.
//
// Its limit starts at the configured concurrency. When MaxConcurrency is
// above that, it probes upwards the way TCP Vegas and Netflix's
// concurrency-limits do: after each window of attempts (as many as the
// limit, at least minWindow), a window whose mean latency stays within
// growTolerance of the best window seen adds one slot; one past
// shrinkFactor of it takes a quarter off, and one holding a 429, or
// failing more than a quarter of its attempts (5xx, timeouts, lost
// answers), halves the limit, never below the configured concurrency (the
// operator's known-safe figure). A shrink takes free slots back at once
// and the rest as their attempts end. On loopback the latency is the
// CPU's, so growth stops where the machine saturates.
//
// Why our own: the one Go port of those algorithms is not on the module
// proxy here, and this is the one decision it would make for us; the
// pacer (rate) and the breaker (outage) stay separate.
type Slots struct {
	sem  *semaphore.Weighted // max slots; those above the limit are held by the limiter
	min  int
	max  int
	name string
	log  *zap.Logger

	mu       sync.Mutex
	limit    int
	debt     int // slots to take back as they are released (a shrink)
	n        int // 2xx answers in this window
	sum      time.Duration
	failed   int  // 5xx answers and answerless failures in this window
	overload bool // a 429 in this window
	best     time.Duration
}

const (
	growTolerance = 1.25
	shrinkFactor  = 2.0
	// minWindow keeps one 5xx in a small window from reading as a
	// partner failing a quarter of its calls.
	minWindow = 20
)

// Outcomes of an attempt as the limit reads them: an HTTP status, or one
// of these.
const (
	noAnswer = 0  // the partner did not answer (timeout, reset, lost answer)
	ours     = -1 // we gave up (cancelled) or never sent it: says nothing of the partner
)

// NewSlots makes the in-flight bound of one partner for clients that
// share it (Config.Slots); New makes one per client otherwise. start is
// the concurrency, max what it may grow to; log may be nil.
func NewSlots(start, max int, name string, log *zap.Logger) *Slots {
	if log == nil {
		log = zap.NewNop()
	}
	if start < 1 {
		start = 1
	}
	if max < start {
		max = start
	}
	l := &Slots{sem: semaphore.NewWeighted(int64(max)), min: start, max: max, limit: start, name: name, log: log}
	if max > start {
		_ = l.sem.Acquire(context.Background(), int64(max-start)) // never blocks: nothing else holds any
	}
	return l
}

// acquire waits for a slot; release must follow.
func (l *Slots) acquire(ctx context.Context) error { return l.sem.Acquire(ctx, 1) }

// release returns a slot after an attempt and feeds the limit: d is the
// attempt's latency, status its HTTP status, noAnswer or ours.
func (l *Slots) release(d time.Duration, status int) {
	l.mu.Lock()
	if l.max > l.min {
		l.observe(d, status) // first: a shrink it makes may claim this slot
	}
	keep := false
	if l.debt > 0 {
		l.debt--
		keep = true // the slot goes back to the limiter's reserve
	}
	l.mu.Unlock()
	if !keep {
		l.sem.Release(1)
	}
}

// observe is called with l.mu held.
func (l *Slots) observe(d time.Duration, status int) {
	switch {
	case status == 429:
		l.overload = true
	case status >= 500 || status == noAnswer:
		l.failed++
	case status >= 200 && status < 300:
		l.n++
		l.sum += d
	default:
		return // a 4xx is about our request; ours says nothing
	}
	if l.n+l.failed < max(l.limit, minWindow) && !l.overload {
		return
	}
	// A partner failing now and then is not overloaded; one failing a
	// quarter of its attempts, or asking us to slow down, is.
	overload := l.overload || l.failed*4 > l.n+l.failed
	var mean time.Duration
	if l.n > 0 {
		mean = l.sum / time.Duration(l.n)
	}
	l.n, l.sum, l.failed, l.overload = 0, 0, 0, false
	if mean == 0 && !overload {
		return
	}
	if mean > 0 && (l.best == 0 || mean < l.best) {
		l.best = mean
	}
	old := l.limit
	switch {
	case overload:
		l.limit = max(l.min, l.limit/2)
		l.reclaim(old - l.limit)
	case float64(mean) > shrinkFactor*float64(l.best):
		l.limit = max(l.min, l.limit-max(1, l.limit/4))
		l.reclaim(old - l.limit)
	case float64(mean) <= growTolerance*float64(l.best) && l.limit < l.max:
		if l.debt > 0 {
			l.debt-- // an owed slot is kept in use instead
		} else {
			l.sem.Release(1)
		}
		l.limit++
	}
	if l.limit != old {
		l.log.Debug("partner concurrency changed", zap.String("partner", l.name), zap.Int("from", old), zap.Int("to", l.limit),
			zap.Duration("window_latency", mean), zap.Duration("best_latency", l.best), zap.Bool("overload", overload))
	}
}

// reclaim takes n slots back into the reserve: the free ones now, the
// rest as their attempts end (debt). Called with l.mu held.
func (l *Slots) reclaim(n int) {
	l.debt += n
	for l.debt > 0 && l.sem.TryAcquire(1) {
		l.debt--
	}
}

// Limit is the current number of slots.
func (l *Slots) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}
