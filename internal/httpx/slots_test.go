package httpx_test

// Tests of the in-flight bound and its growth (issue 19 row 3). They run
// in synctest bubbles against an in-process partner whose latency is fake
// time, so "latency stays flat" and "latency rises" are exact.

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/providers/providertest"
)

// slowPartner answers after latency(inFlight) and records the most
// requests it ever had in flight at once.
type slowPartner struct {
	latency func(inFlight int) time.Duration
	status  func(n int64) int // the status of the nth request (from 1); nil: 200

	flight providertest.InFlight
	n      atomic.Int64
}

func (p *slowPartner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now, done := p.flight.Enter()
	defer done()
	n := p.n.Add(1)
	time.Sleep(p.latency(now))
	if p.status != nil {
		if s := p.status(n); s != http.StatusOK {
			w.WriteHeader(s)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// drive makes calls requests from workers goroutines.
func drive(c *httpx.Client, workers, calls int) (failed int32) {
	var bad atomic.Int32
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if _, err := c.Do(context.Background(), httpx.Request{Method: "PUT", Path: "/c", Body: []byte(strconv.Itoa(i)), Idempotent: true}); err != nil {
					bad.Add(1)
				}
			}
		})
	}
	for i := range calls {
		next <- i
	}
	close(next)
	wg.Wait()
	return bad.Load()
}

// flat is a latency that does not depend on the requests in flight.
func flat(int) time.Duration { return 20 * time.Millisecond }

func TestConcurrencyBoundsRequestsInFlight(t *testing.T) {
	tests := []struct {
		name                     string
		concurrency, max, expect int
		latency                  func(int) time.Duration
	}{
		// Without max_concurrency the bound is fixed, whatever the latency.
		{name: "fixed", concurrency: 4, expect: 4, latency: flat},
		// Latency flat: the limit grows to its maximum.
		{name: "grows while latency stays flat", concurrency: 4, max: 16, expect: 16, latency: flat},
		// Latency rises steeply past 6 in flight (a partner at its
		// capacity): growth stops near there instead of reaching the
		// maximum.
		{name: "stops where latency rises", concurrency: 2, max: 32, expect: 8, latency: func(n int) time.Duration {
			if n > 6 {
				return time.Duration(n) * 10 * time.Millisecond
			}
			return 20 * time.Millisecond
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &slowPartner{latency: tc.latency}
				c := memClient(t, p.ServeHTTP, func(c *httpx.Config) {
					c.Concurrency, c.MaxConcurrency = tc.concurrency, tc.max
				})
				if bad := drive(c, 64, 4000); bad != 0 {
					t.Fatalf("%d calls failed", bad)
				}
				peak := p.flight.Peak()
				if tc.max == 0 && peak != tc.expect {
					t.Errorf("peak in flight %d, want exactly the concurrency %d", peak, tc.expect)
				}
				if tc.max > 0 && (peak < tc.expect-2 || peak > tc.expect+2) {
					t.Errorf("peak in flight %d, want about %d (limit now %d)", peak, tc.expect, c.Concurrency())
				}
				if c.Concurrency() < tc.concurrency || (tc.max > 0 && c.Concurrency() > tc.max) {
					t.Errorf("limit %d outside [%d, %d]", c.Concurrency(), tc.concurrency, tc.max)
				}
			})
		})
	}
}

// A 429 halves the limit back, never below the configured concurrency.
func TestConcurrencyHalvesOnTooManyRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var refuse atomic.Bool
		p := &slowPartner{latency: flat, status: func(int64) int {
			if refuse.Load() {
				return http.StatusTooManyRequests
			}
			return http.StatusOK
		}}
		c := memClient(t, p.ServeHTTP, func(c *httpx.Config) {
			c.Concurrency, c.MaxConcurrency = 4, 32
			c.MaxAttempts = 1
		})
		drive(c, 64, 4000)
		grown := c.Concurrency()
		if grown < 30 {
			t.Fatalf("limit %d after flat latency, want it grown to about 32", grown)
		}
		refuse.Store(true)
		drive(c, 64, 200)
		if got := c.Concurrency(); got != 4 {
			t.Errorf("limit %d after a run of 429s (was %d), want the configured 4", got, grown)
		}
	})
}

// A caller waiting out a backoff holds no slot: with one slot and a
// partner failing the first attempt of every call, the other callers'
// requests go out while the first waits its 200 ms.
func TestBackoffHoldsNoSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		seen := map[string]bool{}
		p := &slowPartner{latency: func(int) time.Duration { return 10 * time.Millisecond }}
		h := func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			first := !seen[string(b)]
			seen[string(b)] = true
			mu.Unlock()
			if first {
				time.Sleep(10 * time.Millisecond)
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			p.ServeHTTP(w, r)
		}
		c := memClient(t, h, func(c *httpx.Config) {
			c.Concurrency = 1
			c.BackoffBase, c.BackoffMax = 200*time.Millisecond, 200*time.Millisecond
			c.RetryBudget, c.MinRetries = 1, 1000
			c.BreakerFailures = 1000
		})
		start := time.Now()
		if bad := drive(c, 20, 200); bad != 0 {
			t.Fatalf("%d calls failed", bad)
		}
		// 400 requests of 10 ms through one slot take at least 4 s; with
		// each caller holding the slot through its backoff (up to 200 ms
		// a call) 200 calls would take about 24 s.
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("200 calls took %v through one slot: callers in backoff held it", d)
		}
		if peak := p.flight.Peak(); peak != 1 {
			t.Errorf("peak in flight %d, want 1", peak)
		}
	})
}

// Clients given the same Slots (ClubReady's vault and import API) share
// the bound.
func TestSharedSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var flight providertest.InFlight
		h := func(w http.ResponseWriter, r *http.Request) {
			_, done := flight.Enter()
			defer done()
			time.Sleep(5 * time.Millisecond)
		}
		s := httpx.NewSlots(3, 3, "clubready", nil)
		a := memClient(t, h, func(c *httpx.Config) { c.Slots = s })
		b := memClient(t, h, func(c *httpx.Config) { c.Slots = s })
		var wg sync.WaitGroup
		wg.Go(func() { drive(a, 8, 200) })
		wg.Go(func() { drive(b, 8, 200) })
		wg.Wait()
		if got := flight.Peak(); got != 3 {
			t.Errorf("peak in flight across both clients %d, want 3", got)
		}
	})
}

// Failures judge the limit by their share of a window of at least 20
// attempts: a partner failing one call in ten still grows, even from 2 in
// flight (where one failure is half of a window as small as the limit);
// one failing half of them (5xx, or no answer at all) is brought back down.
func TestFailuresShrinkByTheirShare(t *testing.T) {
	tests := []struct {
		name    string
		status  func(n int64) int
		atLeast int
		atMost  int
	}{
		{name: "10% of 5xx", atLeast: 24, atMost: 32, status: func(n int64) int {
			if n%10 == 0 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		}},
		{name: "half 5xx", atLeast: 2, atMost: 4, status: func(n int64) int {
			if n%2 == 0 {
				return http.StatusBadGateway
			}
			return http.StatusOK
		}},
		{name: "half without an answer", atLeast: 2, atMost: 4, status: func(n int64) int {
			if n%2 == 0 {
				return statusCut
			}
			return http.StatusOK
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &slowPartner{latency: flat, status: tc.status}
				c := memClient(t, p.ServeHTTP, func(c *httpx.Config) {
					c.Concurrency, c.MaxConcurrency = 2, 32
					c.MaxAttempts = 1
					c.BreakerFailures = 1 << 20
					c.Transport = cutTransport{handlerTransport{http.HandlerFunc(p.ServeHTTP)}}
				})
				drive(c, 64, 4000)
				if got := c.Concurrency(); got < tc.atLeast || got > tc.atMost {
					t.Errorf("limit %d, want %d to %d", got, tc.atLeast, tc.atMost)
				}
			})
		})
	}
}

// statusCut marks an answer cutTransport turns into a transport error:
// an attempt the partner never answered.
const statusCut = 599

// cutTransport turns statusCut into a transport error.
type cutTransport struct{ base http.RoundTripper }

func (t cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.StatusCode == statusCut {
		return nil, errCut
	}
	return resp, err
}

var errCut = &cutError{}

type cutError struct{}

func (*cutError) Error() string { return "connection reset by peer" }

// The breaker is asked after the slot is taken: callers that queued for a
// slot while the breaker opened send nothing.
func TestOpenBreakerStopsTheCallersQueuedAtTheSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &slowPartner{latency: flat, status: func(int64) int { return http.StatusServiceUnavailable }}
		c := memClient(t, p.ServeHTTP, func(c *httpx.Config) {
			c.Concurrency = 2
			c.BreakerFailures = 2
			c.MaxAttempts = 1
		})
		drive(c, 8, 8)
		if n := p.n.Load(); n > 3 {
			t.Errorf("%d requests reached a partner whose breaker opened after 2", n)
		}
	})
}

// After WithStop's context is done, callers waiting for a slot give up
// unsent (partner_stopped) and no further attempt goes out.
func TestStopSendsNothingMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stop, halt := context.WithCancel(context.Background())
		p := &slowPartner{latency: flat, status: func(n int64) int {
			if n == 1 {
				halt() // the first answer is fatal: the engine stops the lane
				return http.StatusUnauthorized
			}
			return http.StatusOK
		}}
		c := memClient(t, p.ServeHTTP, func(c *httpx.Config) { c.Concurrency = 1 })
		ctx := httpx.WithStop(context.Background(), stop)
		var wg sync.WaitGroup
		var stopped atomic.Int32
		for i := range 8 {
			wg.Go(func() {
				_, err := c.Do(ctx, httpx.Request{Method: "PUT", Path: "/c", Body: []byte(strconv.Itoa(i)), Idempotent: true})
				if httpx.CodeOf(err) == "partner_stopped" && httpx.KindOf(err) == httpx.Unavailable && httpx.AttemptsOf(err) == 0 {
					stopped.Add(1)
				}
			})
		}
		wg.Wait()
		if n := p.n.Load(); n != 1 {
			t.Errorf("%d requests went out, want only the fatal one", n)
		}
		if got := stopped.Load(); got != 7 {
			t.Errorf("%d callers failed partner_stopped, want 7", got)
		}
	})
}
