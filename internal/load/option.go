package load

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/partner"
)

// Option configures an Engine (see New).
type Option func(*settings) error

// settings is what the options set; New checks it once, and Run never
// writes to it.
type settings struct {
	log        *zap.Logger
	workers    map[string]int
	fullResync bool
	dryRun     bool
	dryRunOps  func(provider string, op partner.Op)
	// dryRunRejects sees every reject of a dry run (validation rejects
	// from the source, partner mapping rejects), which a real run writes
	// to the ledger: from the source's goroutine and the planners,
	// concurrently.
	dryRunRejects func(ledger.RejectRow)
	deactivate    bool
	maxDeact      float64
	keep          func(customerID string) bool
	grace         time.Duration
	planBatch     int
	planners      int
	observer      Observer
	scope         string
	maxQueued     int
	batchWait     time.Duration
	defaultWork   int
}

func defaults() settings {
	return settings{
		log:         zap.NewNop(),
		workers:     map[string]int{},
		maxDeact:    0.05,
		grace:       20 * time.Second,
		planBatch:   500,
		planners:    2,
		maxQueued:   4096,
		batchWait:   time.Second,
		defaultWork: 8,
	}
}

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option {
	return func(s *settings) error {
		if l == nil {
			return errors.New("nil logger")
		}
		s.log = l
		return nil
	}
}

// WithWorkers sets the number of concurrent calls per partner (default 8
// each). A name that is not one of the engine's partners is an error.
func WithWorkers(n map[string]int) Option {
	return func(s *settings) error {
		for name, w := range n {
			if w < 1 {
				return fmt.Errorf("workers for %s: %d is less than 1", name, w)
			}
			s.workers[name] = w
		}
		return nil
	}
}

// WithFullResync ignores content hashes and fingerprints: everything is
// sent again.
func WithFullResync(on bool) Option {
	return func(s *settings) error { s.fullResync = on; return nil }
}

// WithDryRun plans only: no partner call, no ledger change. ops, if not
// nil, sees every op the run would send (from the planners, concurrently).
func WithDryRun(ops func(provider string, op partner.Op)) Option {
	return func(s *settings) error { s.dryRun, s.dryRunOps = true, ops; return nil }
}

// WithDryRunRejects gives a dry run's rejects to fn (a real run writes
// them to the ledger); called concurrently from the source and the
// planners.
func WithDryRunRejects(fn func(ledger.RejectRow)) Option {
	return func(s *settings) error { s.dryRunRejects = fn; return nil }
}

// WithDeactivation switches off, at partners that support it, entities
// gone from the source: refused when it would switch off more than
// maxFraction of a partner's active entities (0: the default 0.05; at
// least 10 entities), since a truncated export must not wipe a partner.
// keep is the shard filter (nil: every customer is this run's).
func WithDeactivation(maxFraction float64, keep func(customerID string) bool) Option {
	return func(s *settings) error {
		if maxFraction < 0 || maxFraction > 1 {
			return fmt.Errorf("deactivation fraction %v is not between 0 and 1", maxFraction)
		}
		s.deactivate, s.keep = true, keep
		if maxFraction > 0 {
			s.maxDeact = maxFraction
		}
		return nil
	}
}

// WithGracePeriod is how long calls in flight may finish after ctx is
// cancelled (SIGTERM); default 20s.
func WithGracePeriod(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("grace period %v is not positive", d)
		}
		s.grace = d
		return nil
	}
}

// WithPlanning sets the customers per sync_state lookup (default 500) and
// the number of concurrent planners (default 2).
func WithPlanning(batch, planners int) Option {
	return func(s *settings) error {
		if batch < 1 || planners < 1 {
			return fmt.Errorf("planning batch %d and planners %d must be at least 1", batch, planners)
		}
		s.planBatch, s.planners = batch, planners
		return nil
	}
}

// WithObserver sets who sees progress (bars, progress lines, metrics).
func WithObserver(o Observer) Option {
	return func(s *settings) error { s.observer = o; return nil }
}

// WithFingerprintScope turns on customer fingerprints (the nightly fast
// path); scope names what a fingerprint vouches for (FingerprintScope).
func WithFingerprintScope(scope string) Option {
	return func(s *settings) error {
		if scope == "" {
			return errors.New("empty fingerprint scope")
		}
		s.scope = scope
		return nil
	}
}

// WithQueue bounds the memory of a run: at most maxQueued planned ops are
// queued or in flight across all partners (default 4096), so a partner
// may run that far ahead of a slower one. A partial batch waits at most
// batchWait for more ops (default 1s) while the planners are still
// producing; see lane.
func WithQueue(maxQueued int, batchWait time.Duration) Option {
	return func(s *settings) error {
		if maxQueued < 1 || batchWait <= 0 {
			return fmt.Errorf("queue bound %d must be at least 1 and batch wait %v positive", maxQueued, batchWait)
		}
		s.maxQueued, s.batchWait = maxQueued, batchWait
		return nil
	}
}

// New checks the partners and options and returns an engine that runs
// one delivery at a time (Run).
func New(store *ledger.Store, providers []partner.Provider, key []byte, opts ...Option) (*Engine, error) {
	if store == nil {
		return nil, errors.New("load: no ledger store")
	}
	if len(key) == 0 {
		return nil, errors.New("load: empty HMAC key")
	}
	if len(providers) == 0 {
		return nil, errors.New("load: no partners")
	}
	s := defaults()
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
	}
	seen := map[string]bool{}
	for i, p := range providers {
		if p == nil {
			return nil, fmt.Errorf("load: partner %d is nil", i)
		}
		name := p.Name()
		if name == "" || seen[name] {
			return nil, fmt.Errorf("load: partner %d: name %q is empty or given twice", i, name)
		}
		seen[name] = true
		if p.MaxBatch() < 1 {
			return nil, fmt.Errorf("load: %s: MaxBatch %d is less than 1", name, p.MaxBatch())
		}
	}
	for name := range s.workers {
		if !seen[name] {
			return nil, fmt.Errorf("load: workers for %s, which is not a partner of this run", name)
		}
	}
	return &Engine{store: store, providers: append([]partner.Provider(nil), providers...), key: append([]byte(nil), key...), settings: s}, nil
}
