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
}

func NewBreaker(threshold int, cooldown time.Duration) *Breaker {
	return &Breaker{threshold: threshold, cooldown: cooldown, now: time.Now}
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
		b.state = HalfOpen
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
	b.failures, b.state, b.probing = 0, Closed, false
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
		b.state, b.openedAt, b.probing = Open, b.now(), false
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
