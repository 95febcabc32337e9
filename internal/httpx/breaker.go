package httpx

import (
	"sync"
	"time"
)

// BreakerState is closed (calls flow), open (calls fail fast) or half-open
// (one probe decides).
type BreakerState int

const (
	Closed BreakerState = iota
	Open
	HalfOpen
)

func (s BreakerState) String() string {
	return [...]string{"closed", "open", "half-open"}[s]
}

// Breaker is a consecutive-failure circuit breaker. It is small enough to
// own rather than import, and counts attempts, not logical calls, so that a
// partner that is down trips it within BreakerFailures requests.
type Breaker struct {
	mu        sync.Mutex
	threshold int
	cooldown  time.Duration
	failures  int
	state     BreakerState
	openedAt  time.Time
	probing   bool
	opens     int
	now       func() time.Time
	name      string
	onChange  func(string, BreakerState)
}

func NewBreaker(threshold int, cooldown time.Duration) *Breaker {
	return newBreaker(threshold, cooldown, "", nil)
}

func newBreaker(threshold int, cooldown time.Duration, name string, onChange func(string, BreakerState)) *Breaker {
	return &Breaker{threshold: threshold, cooldown: cooldown, now: time.Now, name: name, onChange: onChange}
}

// set changes state; callers hold mu.
func (b *Breaker) set(s BreakerState) {
	if b.state != s && b.onChange != nil {
		b.onChange(b.name, s)
	}
	b.state = s
}

// Allow reports whether a call may go out now.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Open:
		if b.now().Sub(b.openedAt) < b.cooldown {
			return false
		}
		b.set(HalfOpen)
		b.probing = true
		return true
	case HalfOpen:
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
	return true
}

func (b *Breaker) Success() {
	b.mu.Lock()
	b.failures, b.probing = 0, false
	b.set(Closed)
	b.mu.Unlock()
}

func (b *Breaker) Failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	if b.state == HalfOpen || b.failures >= b.threshold {
		if b.state != Open {
			b.opens++
		}
		b.openedAt, b.probing = b.now(), false
		b.set(Open)
	}
}

// State is the current state.
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Opens counts how often the breaker has tripped.
func (b *Breaker) Opens() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens
}
