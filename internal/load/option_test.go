package load_test

import (
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/partner"
)

type named struct {
	partner.Provider
	name  string
	batch int
}

func (n named) Name() string  { return n.name }
func (n named) MaxBatch() int { return n.batch }

// New refuses what Run could only get wrong later.
func TestNewValidates(t *testing.T) {
	store := &ledger.Store{} // never used: New does not touch the database
	a, b := named{name: "a", batch: 1}, named{name: "b", batch: 50}
	key := []byte("k")
	for _, tc := range []struct {
		name  string
		store *ledger.Store
		ps    []partner.Provider
		key   []byte
		opts  []load.Option
		err   string // "" for none
	}{
		{"fine", store, []partner.Provider{a, b}, key, []load.Option{load.WithWorkers(map[string]int{"a": 2}), load.WithDeactivation(0.1, nil)}, ""},
		{"no store", nil, []partner.Provider{a}, key, nil, "no ledger store"},
		{"no key", store, []partner.Provider{a}, nil, nil, "empty HMAC key"},
		{"no partners", store, nil, key, nil, "no partners"},
		{"nil partner", store, []partner.Provider{a, nil}, key, nil, "partner 1 is nil"},
		{"same name twice", store, []partner.Provider{a, a}, key, nil, `"a" is empty or given twice`},
		{"empty name", store, []partner.Provider{named{batch: 1}}, key, nil, "empty or given twice"},
		{"batch of 0", store, []partner.Provider{named{name: "z"}}, key, nil, "MaxBatch 0"},
		{"workers for a stranger", store, []partner.Provider{a}, key, []load.Option{load.WithWorkers(map[string]int{"q2open": 2})}, "not a partner of this run"},
		{"no workers", store, []partner.Provider{a}, key, []load.Option{load.WithWorkers(map[string]int{"a": 0})}, "less than 1"},
		{"fraction above 1", store, []partner.Provider{a}, key, []load.Option{load.WithDeactivation(1.5, nil)}, "not between 0 and 1"},
		{"negative fraction", store, []partner.Provider{a}, key, []load.Option{load.WithDeactivation(-0.1, nil)}, "not between 0 and 1"},
		{"no grace", store, []partner.Provider{a}, key, []load.Option{load.WithGracePeriod(0)}, "not positive"},
		{"no planners", store, []partner.Provider{a}, key, []load.Option{load.WithPlanning(500, 0)}, "at least 1"},
		{"no queue", store, []partner.Provider{a}, key, []load.Option{load.WithQueue(0, 1)}, "at least 1"},
		{"no batch wait", store, []partner.Provider{a}, key, []load.Option{load.WithQueue(10, 0)}, "positive"},
		{"empty scope", store, []partner.Provider{a}, key, []load.Option{load.WithFingerprintScope("")}, "empty fingerprint scope"},
		{"nil logger", store, []partner.Provider{a}, key, []load.Option{load.WithLogger(nil)}, "nil logger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng, err := load.New(tc.store, tc.ps, tc.key, tc.opts...)
			switch {
			case tc.err == "" && (err != nil || eng == nil):
				t.Fatalf("New: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("New: %v, want an error containing %q", err, tc.err)
			}
		})
	}
}
