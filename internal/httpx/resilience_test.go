package httpx_test

// Tests of issue 17 rows 6-8. They run in testing/synctest bubbles against
// an in-process transport, so fake time advances only when every
// goroutine waits: no test sleeps on the real clock.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/northwind-data/etl/internal/httpx"
)

// handlerTransport serves requests in-process, so a synctest bubble holds
// every goroutine involved (a loopback socket would not be durably
// blocking and would stall fake time).
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func memClient(t *testing.T, h http.HandlerFunc, mod func(*httpx.Config)) *httpx.Client {
	t.Helper()
	return newClient(t, "http://partner.test", func(c *httpx.Config) {
		c.Transport = handlerTransport{h}
		if mod != nil {
			mod(c)
		}
	})
}

// Row 6: a half-open probe must always report an outcome, or every later
// call fails locally with breaker_open for the rest of the run.
func TestBreakerProbeAlwaysReportsAnOutcome(t *testing.T) {
	const cooldown = time.Minute
	tests := []struct {
		name string
		// probe answers the probe (the call after the cooldown).
		probe func(w http.ResponseWriter)
		// probeCtx shortens the probe's context (a rate-limit wait that
		// cannot finish in time is cancelled before the request goes out).
		probeCtx  func(context.Context) (context.Context, context.CancelFunc)
		rate      float64
		wantState httpx.BreakerState // after the probe
	}{
		{name: "probe rejected 4xx closes (the partner answered)", probe: func(w http.ResponseWriter) { w.WriteHeader(400) }, wantState: httpx.Closed},
		{name: "probe answered 404 closes", probe: func(w http.ResponseWriter) { w.WriteHeader(404) }, wantState: httpx.Closed},
		{name: "probe 401 closes (partner up, credentials not)", probe: func(w http.ResponseWriter) { w.WriteHeader(401) }, wantState: httpx.Closed},
		{name: "probe 429 leaves it half-open for the next probe", probe: func(w http.ResponseWriter) { w.WriteHeader(429) }, wantState: httpx.HalfOpen},
		{name: "probe's rate-limit wait cancelled", rate: 0.001,
			probeCtx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, time.Second)
			}, wantState: httpx.HalfOpen},
		{name: "probe cancelled before it was sent",
			probeCtx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				return ctx, func() {}
			}, wantState: httpx.Open},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var phase atomic.Int32 // 0 failing, 1 probe, 2 healthy
				var calls atomic.Int32
				c := memClient(t, func(w http.ResponseWriter, r *http.Request) {
					calls.Add(1)
					switch phase.Load() {
					case 0:
						w.WriteHeader(503)
					case 1:
						tc.probe(w)
					default:
						w.WriteHeader(200)
					}
				}, func(c *httpx.Config) {
					c.MaxAttempts, c.BreakerFailures, c.BreakerCooldown = 1, 2, cooldown
					if tc.rate > 0 {
						c.RatePerSec = tc.rate
					}
				})
				ctx := context.Background()
				for range 2 {
					_, _ = c.Do(ctx, httpx.Request{Method: "GET", Path: "/"})
				}
				if s := c.Breaker().State(); s != httpx.Open {
					t.Fatalf("breaker %v after 2 failures, want open", s)
				}
				time.Sleep(cooldown + time.Second) // fake time
				phase.Store(1)
				pctx, cancel := ctx, context.CancelFunc(func() {})
				if tc.probeCtx != nil {
					pctx, cancel = tc.probeCtx(ctx)
				}
				_, err := c.Do(pctx, httpx.Request{Method: "GET", Path: "/"})
				cancel()
				if httpx.CodeOf(err) == "breaker_open" {
					t.Fatalf("the probe itself was refused: %v", err)
				}
				if s := c.Breaker().State(); s != tc.wantState && !(tc.wantState == httpx.Open && s == httpx.HalfOpen) {
					t.Fatalf("breaker %v after the probe, want %v", s, tc.wantState)
				}
				// The partner is healthy now: the next call must reach it.
				phase.Store(2)
				before := calls.Load()
				if _, err := c.Do(ctx, httpx.Request{Method: "GET", Path: "/"}); err != nil {
					t.Fatalf("call after the probe: %v (breaker %v): the breaker is stuck", err, c.Breaker().State())
				}
				if calls.Load() != before+1 {
					t.Fatalf("the call after the probe did not reach the partner")
				}
				if s := c.Breaker().State(); s != httpx.Closed {
					t.Fatalf("breaker %v after a success, want closed", s)
				}
			})
		})
	}
}

// Row 7: a Retry-After beyond the cap fails the call as retryable at once
// instead of parking a worker; within the cap it is honoured.
func TestRetryAfterIsCapped(t *testing.T) {
	tests := []struct {
		name      string
		header    func(now time.Time) string
		max       time.Duration // 0: the default (5 minutes)
		wantErr   bool
		wantSlept time.Duration // at least; 0: no sleep at all
	}{
		{name: "60s within the default cap", header: func(time.Time) string { return "60" }, wantSlept: time.Minute},
		{name: "exactly the default cap", header: func(time.Time) string { return "300" }, wantSlept: 5 * time.Minute},
		{name: "a day", header: func(time.Time) string { return "86400" }, wantErr: true},
		{name: "301s over the default cap", header: func(time.Time) string { return "301" }, wantErr: true},
		{name: "an HTTP date a day ahead", header: func(now time.Time) string { return now.Add(24 * time.Hour).UTC().Format(http.TimeFormat) }, wantErr: true},
		{name: "a configured cap of 30s refuses 60s", header: func(time.Time) string { return "60" }, max: 30 * time.Second, wantErr: true},
		{name: "a configured cap of 2h takes 1h", header: func(time.Time) string { return "3600" }, max: 2 * time.Hour, wantSlept: time.Hour},
	}
	for _, tc := range tests {
		for _, status := range []int{429, 503} {
			t.Run(tc.name+"/"+strconv.Itoa(status), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					var calls atomic.Int32
					var slept []time.Duration
					c := memClient(t, func(w http.ResponseWriter, r *http.Request) {
						if calls.Add(1) == 1 {
							w.Header().Set("Retry-After", tc.header(time.Now()))
							w.WriteHeader(status)
							return
						}
						w.WriteHeader(200)
					}, func(c *httpx.Config) {
						c.RetryAfterMax = tc.max
						c.Sleep = func(ctx context.Context, d time.Duration) error {
							slept = append(slept, d)
							return nil
						}
					})
					start := time.Now()
					_, err := c.Do(context.Background(), httpx.Request{Method: "GET", Path: "/", Idempotent: true})
					var total time.Duration
					for _, d := range slept {
						total += d
					}
					if tc.wantErr {
						if httpx.KindOf(err) != httpx.Retryable || httpx.CodeOf(err) != "retry_after_too_long" {
							t.Fatalf("err %v (code %q), want retryable retry_after_too_long", err, httpx.CodeOf(err))
						}
						if calls.Load() != 1 || total > 0 || time.Since(start) > 0 {
							t.Fatalf("%d calls, slept %v, took %v: the worker waited instead of moving on", calls.Load(), total, time.Since(start))
						}
						return
					}
					if err != nil || calls.Load() != 2 {
						t.Fatalf("err %v after %d calls", err, calls.Load())
					}
					if total < tc.wantSlept {
						t.Fatalf("slept %v, Retry-After asked %v", total, tc.wantSlept)
					}
				})
			})
		}
	}
}

// partner12 admits 12 requests per second (a token bucket on the fake
// clock) and answers 429 beyond that, like the partner of issue 17 row 8.
type partner12 struct {
	mu       sync.Mutex
	tokens   float64
	last     time.Time
	ok, r429 int
	perSec   float64
	headers  func(w http.ResponseWriter, remaining float64)
}

func (p *partner12) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	now := time.Now()
	if p.last.IsZero() {
		p.last, p.tokens = now, p.perSec
	}
	p.tokens = min(p.perSec, p.tokens+now.Sub(p.last).Seconds()*p.perSec)
	p.last = now
	if p.tokens < 1 {
		p.r429++
		p.mu.Unlock()
		w.WriteHeader(429)
		return
	}
	p.tokens--
	p.ok++
	rem := p.tokens
	p.mu.Unlock()
	if p.headers != nil {
		p.headers(w, rem)
	}
	w.WriteHeader(200)
}

// Row 8: 429s slow the client down instead of tripping the breaker, with
// or without a configured rate.
func TestTooManyRequestsSlowsInsteadOfTripping(t *testing.T) {
	tests := []struct {
		name string
		rate float64
	}{
		{name: "rate_per_sec unset", rate: 0},
		{name: "rate_per_sec above the partner's", rate: 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := &partner12{perSec: 12}
				c := memClient(t, p.ServeHTTP, func(c *httpx.Config) {
					c.RatePerSec = tc.rate
					c.BreakerFailures = 10
					c.BackoffBase, c.BackoffMax = 50*time.Millisecond, time.Second
				})
				start := time.Now()
				const customers, workers = 4955, 8 // the run of issue 17 row 8
				var failed atomic.Int32
				var wg sync.WaitGroup
				next := make(chan int)
				for range workers {
					wg.Go(func() {
						for range next {
							if _, err := c.Do(context.Background(), httpx.Request{Method: "POST", Path: "/c", Body: []byte("{}"), Idempotent: true}); err != nil {
								failed.Add(1)
							}
						}
					})
				}
				for i := range customers {
					next <- i
				}
				close(next)
				wg.Wait()
				if n := failed.Load(); n != 0 {
					t.Errorf("%d of %d calls failed (breaker %v, opened %d times)", n, customers, c.Breaker().State(), c.Breaker().Opens())
				}
				if o := c.Breaker().Opens(); o != 0 {
					t.Errorf("429s opened the breaker %d times", o)
				}
				t.Logf("%d delivered, %d answers 429, %v, final rate %.2f/s", p.ok, p.r429, time.Since(start), c.Rate())
				// ... without slowing below 70% of what the partner takes.
				if limit := time.Duration(customers) * time.Second * 10 / 12 / 7; time.Since(start) > limit {
					t.Errorf("%d calls took %v, over %v: the client slowed too much", customers, time.Since(start), limit)
				}
				// Pace control keeps the partner's refusals a small share.
				if p.r429*5 > p.ok {
					t.Errorf("%d answers 429 for %d delivered: the client did not slow down", p.r429, p.ok)
				}
			})
		})
	}
}

// Rate headers on 200s slow the client before the quota runs out, so the
// partner never has to answer 429.
func TestRateHeadersSlowBeforeRunningOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// An hourly quota of 100 of which 30 are left, resetting in 60s.
		var mu sync.Mutex
		remaining := 30
		reset := time.Now().Add(time.Minute)
		var over atomic.Int32
		c := memClient(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if remaining == 0 && time.Now().Before(reset) {
				over.Add(1)
				w.WriteHeader(429)
				return
			}
			if !time.Now().Before(reset) {
				remaining, reset = 100, reset.Add(time.Hour)
			}
			remaining--
			w.Header().Set("X-RateLimit-Limit", "100")
			w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
			w.WriteHeader(200)
		}, nil)
		start := time.Now()
		for i := range 40 {
			if _, err := c.Do(context.Background(), httpx.Request{Method: "GET", Path: "/", Idempotent: true}); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		if n := over.Load(); n != 0 {
			t.Errorf("the quota ran out: %d answers 429", n)
		}
		if d := time.Since(start); d < 50*time.Second {
			t.Errorf("40 calls against 30 left in 60s took %v: the client did not pace itself", d)
		}
	})
}

// Every retry, breaker transition and rate change is a debug event, and
// none carries the query or the body.
func TestDebugEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		core, logs := observer.New(zapcore.DebugLevel)
		var calls atomic.Int32
		c := memClient(t, func(w http.ResponseWriter, r *http.Request) {
			switch calls.Add(1) {
			case 1:
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(503)
			case 2:
				w.WriteHeader(429)
			default:
				w.WriteHeader(200)
			}
		}, func(c *httpx.Config) {
			c.Logger = zap.New(core)
			c.BreakerFailures, c.BreakerCooldown, c.MaxAttempts = 1, time.Second, 5
		})
		_, err := c.Do(context.Background(), httpx.Request{Method: "POST", Path: "/import", Query: url.Values{"ApiKey": {"sekrit-key"}},
			Body: []byte(`{"pan":"4111111111111111"}`), Idempotent: true})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{"partner call retried": 2, "breaker state changed": 3, "partner rate changed": 1}
		got := map[string]int{}
		for _, e := range logs.All() {
			got[e.Message]++
			line := e.Message
			for k, v := range e.ContextMap() {
				line += " " + k + "=" + fmt.Sprint(v)
			}
			if strings.Contains(line, "sekrit") || strings.Contains(line, "4111") {
				t.Errorf("event leaks the query or body: %s", line)
			}
			if e.ContextMap()["partner"] != "p" {
				t.Errorf("event without the partner: %s", line)
			}
		}
		for m, n := range want {
			if got[m] != n {
				t.Errorf("%d %q events, want %d (all: %v)", got[m], m, n, got)
			}
		}
		first := logs.FilterMessage("partner call retried").All()[0].ContextMap()
		if first["attempt"] != int64(1) || first["status"] != int64(503) || first["wait"] != 2*time.Second {
			t.Errorf("retry event %v: want attempt 1, status 503, wait 2s", first)
		}
	})
}

func TestParseRateHeaders(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name string
		h    map[string]string
		want httpx.Quota
		ok   bool
	}{
		{"reset as unix seconds", map[string]string{"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "1800000600"},
			httpx.Quota{Limit: 1000, Remaining: 7, Reset: now.Add(10 * time.Minute)}, true},
		{"reset as seconds from now", map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"},
			httpx.Quota{Remaining: 0, Reset: now.Add(30 * time.Second)}, true},
		{"IETF draft names", map[string]string{"RateLimit-Limit": "10", "RateLimit-Remaining": "3", "RateLimit-Reset": "5"},
			httpx.Quota{Limit: 10, Remaining: 3, Reset: now.Add(5 * time.Second)}, true},
		{"no headers", map[string]string{}, httpx.Quota{}, false},
		{"remaining without reset", map[string]string{"X-RateLimit-Remaining": "3"}, httpx.Quota{}, false},
		{"garbage", map[string]string{"X-RateLimit-Remaining": "lots", "X-RateLimit-Reset": "5"}, httpx.Quota{}, false},
		{"negative", map[string]string{"X-RateLimit-Remaining": "-1", "X-RateLimit-Reset": "5"}, httpx.Quota{}, false},
	}
	for _, tc := range tests {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		got, ok := httpx.ParseRateHeaders(h, now)
		if ok != tc.ok || got.Limit != tc.want.Limit || got.Remaining != tc.want.Remaining || !got.Reset.Equal(tc.want.Reset) {
			t.Errorf("%s: %+v %v, want %+v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// A pace wait that cannot end before the caller's deadline fails the call
// at once: no backoff, no further attempts, and the breaker hears nothing.
func TestPaceWaitPastTheDeadlineFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var slept atomic.Int32
		c := memClient(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }, func(c *httpx.Config) {
			c.RatePerSec, c.MaxAttempts = 0.001, 5
			c.Sleep = func(ctx context.Context, d time.Duration) error { slept.Add(1); return nil }
		})
		if _, err := c.Do(context.Background(), httpx.Request{Method: "GET", Path: "/", Idempotent: true}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.Do(ctx, httpx.Request{Method: "GET", Path: "/", Idempotent: true})
		if httpx.KindOf(err) != httpx.Retryable || httpx.CodeOf(err) != "cancelled" || calls.Load() != 1 || slept.Load() != 0 {
			t.Fatalf("err %v, %d calls, %d sleeps", err, calls.Load(), slept.Load())
		}
		if s := c.Breaker().State(); s != httpx.Closed {
			t.Fatalf("breaker %v", s)
		}
	})
}
