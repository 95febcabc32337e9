package httpx

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
)

// BreakerState is closed (calls flow), open (calls fail fast) or half-open
// (one probe decides). The numbers are what metrics export.
type BreakerState int

const (
	Closed BreakerState = iota
	Open
	HalfOpen
)

func (s BreakerState) String() string {
	return [...]string{"closed", "open", "half-open"}[s]
}

// Verdict is what one admitted attempt says about the partner's health.
type Verdict int

const (
	// NoVerdict: the attempt says nothing about the partner (a 429, a
	// rate-limit wait or a call cancelled by us, a request we could not
	// build or sign). A half-open probe with no verdict frees its slot for
	// the next probe.
	NoVerdict Verdict = iota
	// PartnerUp: the partner answered (a 2xx, or a 4xx about our request).
	PartnerUp
	// PartnerDown: a 5xx, a refused connection, a lost answer.
	PartnerDown
)

// Breaker is a consecutive-failure circuit breaker over attempts (not
// logical calls), so that a partner that is down trips it within
// BreakerFailures requests. It wraps sony/gobreaker's two-step breaker:
// Admit hands out a done func per attempt, stale verdicts (from before a
// state change) are dropped by generation, and a NoVerdict is excluded
// from the counts, which is what keeps a half-open breaker from sticking.
// Its clock is time.Now; tests drive it with testing/synctest.
type Breaker struct {
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	opens    atomic.Int64
	name     string
	onChange func(string, BreakerState)
	log      *zap.Logger
}

// NewBreaker opens after threshold consecutive PartnerDown verdicts and
// lets one probe through after cooldown.
func NewBreaker(threshold int, cooldown time.Duration) *Breaker {
	return newBreaker(threshold, cooldown, "", nil, nil)
}

var (
	errPartnerDown = errors.New("partner down")
	errNoVerdict   = errors.New("no verdict")
)

func newBreaker(threshold int, cooldown time.Duration, name string, onChange func(string, BreakerState), log *zap.Logger) *Breaker {
	if threshold <= 0 {
		threshold = 1
	}
	if log == nil {
		log = zap.NewNop()
	}
	b := &Breaker{name: name, onChange: onChange, log: log}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(threshold) },
		// Called under the breaker's lock: must not call back into it.
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.opens.Add(1)
			}
			b.log.Debug("breaker state changed", zap.String("partner", name),
				zap.Stringer("from", stateOf(from)), zap.Stringer("to", stateOf(to)))
			if b.onChange != nil {
				b.onChange(name, stateOf(to))
			}
		},
		IsSuccessful: func(err error) bool { return err == nil },
		IsExcluded:   func(err error) bool { return errors.Is(err, errNoVerdict) },
	})
	return b
}

func stateOf(s gobreaker.State) BreakerState {
	switch s {
	case gobreaker.StateOpen:
		return Open
	case gobreaker.StateHalfOpen:
		return HalfOpen
	}
	return Closed
}

// Admit reports whether an attempt may go out now. When it may, done must
// be called exactly once, on every path, with the attempt's verdict;
// later calls of done are ignored.
func (b *Breaker) Admit() (done func(Verdict), ok bool) {
	report, err := b.cb.Allow()
	if err != nil {
		return nil, false
	}
	var once sync.Once
	return func(v Verdict) {
		once.Do(func() {
			switch v {
			case PartnerUp:
				report(nil)
			case PartnerDown:
				report(errPartnerDown)
			default:
				report(errNoVerdict)
			}
		})
	}, true
}

// State is the current state.
func (b *Breaker) State() BreakerState { return stateOf(b.cb.State()) }

// Opens counts how often the breaker has tripped.
func (b *Breaker) Opens() int { return int(b.opens.Load()) }
