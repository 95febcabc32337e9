package e2e

import (
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/sandbox/faults"
)

func everyPartner(c faults.Config) map[string]faults.Config {
	m := map[string]faults.Config{}
	for i, n := range partners.Names() {
		c.Seed = uint64(100 + i)
		m[n] = c
	}
	return m
}

func (e *env) retries() int64 {
	return e.scalar(`SELECT coalesce(sum(attempts - 1), 0) FROM ledger WHERE attempts > 1`)
}

func TestChaos5xxAnd429WithRetryAfter(t *testing.T) {
	e := newEnv(t, 150, everyPartner(faults.Config{ErrorRate: 0.2, RateLimit: 60, Latency: time.Millisecond}))
	e.rerunUntilDone(4)
	e.settled()
	var limited, errs, early int64
	var maxEarly time.Duration
	for _, n := range partners.Names() {
		st := e.sb.Faults[n].Stats()
		limited += st.RateLimited
		errs += st.Errors5xx
		early += st.EarlyRetries
		maxEarly = max(maxEarly, st.MaxEarlyRetry)
		if st.EarlyRetries > 0 {
			t.Logf("%s: %d early retries (worst by %v)", n, st.EarlyRetries, st.MaxEarlyRetry)
		}
	}
	t.Logf("records delivered exactly once; injected 5xx %d, 429 %d; retries in ledger %d; early retries %d (max %v)", errs, limited, e.retries(), early, maxEarly)
	if errs == 0 || limited == 0 {
		t.Fatalf("the faults did not fire (5xx %d, 429 %d): the test proves nothing", errs, limited)
	}
	if early != 0 {
		t.Fatalf("%d retries came before their Retry-After (worst by %v)", early, maxEarly)
	}
}

func TestChaosResponsesLostAfterCommit(t *testing.T) {
	e := newEnv(t, 150, everyPartner(faults.Config{DropRate: 0.1}))
	e.rerunUntilDone(4)
	e.settled()
	var dropped int64
	for _, n := range partners.Names() {
		dropped += e.sb.Faults[n].Stats().Dropped
	}
	if dropped == 0 {
		t.Fatal("no response was dropped: the test proves nothing")
	}
	t.Logf("%d answers lost after the partner committed; every record exactly once; uncertain outcomes in ledger %d",
		dropped, e.scalar(`SELECT count(*) FROM ledger WHERE outcome = 'uncertain'`))
}

// Any partner down: its breaker opens, every other partner completes, and
// a rerun delivers the rest.
func TestChaosPartnerDownOpensBreakerOthersComplete(t *testing.T) {
	for _, sp := range partners.All() {
		t.Run(sp.Name, func(t *testing.T) { partnerDown(t, sp.Name) })
	}
}

func partnerDown(t *testing.T, down string) {
	e := newEnv(t, 200, map[string]faults.Config{down: {Down: true}})
	r := e.runETL()
	if r.code != 3 {
		t.Fatalf("exit %d with %s down, want 3 (partial)\n%s", r.code, down, r.stdout)
	}
	calls := e.sb.Faults[down].Stats().DownRefusals
	if calls > 30 {
		t.Fatalf("%s saw %d calls while down: the breaker did not stop the storm", down, calls)
	}
	c := e.lastCounts()
	for _, sp := range partners.All() {
		if sp.Name == down {
			if c[down].OK != 0 || c[down].Failed == 0 {
				t.Errorf("%s: %+v", down, c[down])
			}
			continue
		}
		if c[sp.Name].Failed+c[sp.Name].Uncertain+c[sp.Name].NotSent != 0 || c[sp.Name].OK == 0 {
			t.Errorf("%s did not complete while %s was down: %+v", sp.Name, down, c[sp.Name])
		}
	}
	t.Logf("%s down: %d calls reached it before the breaker opened; others completed", down, calls)
	e.sb.Faults[down].Set(faults.Config{})
	e.rerunUntilDone(2)
	e.settled()
}
