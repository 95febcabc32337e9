package httpx_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
)

func newClient(t *testing.T, url string, mod func(*httpx.Config)) *httpx.Client {
	t.Helper()
	cfg := httpx.Config{Partner: "p", BaseURL: url, BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond, Timeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	c, err := httpx.New(cfg, func(status int, body []byte) (string, string) {
		return "E" + http.StatusText(status), strings.TrimSpace(string(body))
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStatusesBecomeKinds(t *testing.T) {
	tests := []struct {
		status int
		kind   httpx.Kind
		calls  int32
	}{
		{400, httpx.Rejected, 1},
		{404, httpx.Rejected, 1},
		{422, httpx.Rejected, 1},
		{401, httpx.Fatal, 1},
		{403, httpx.Fatal, 1},
		{500, httpx.Retryable, 3},
		{503, httpx.Retryable, 3},
		{429, httpx.Retryable, 3},
	}
	for _, tc := range tests {
		synctest.Test(t, func(t *testing.T) {
			var calls atomic.Int32
			c := memClient(t, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte("partner says no"))
			}, func(c *httpx.Config) { c.MaxAttempts = 3 })
			_, err := c.Do(context.Background(), httpx.Request{Method: "POST", Path: "/x", Body: []byte("{}"), Idempotent: true})
			var he *httpx.Error
			if !errors.As(err, &he) || he.Kind != tc.kind || he.Status != tc.status || he.Message != "partner says no" {
				t.Errorf("%d: err %v, want kind %v", tc.status, err, tc.kind)
			}
			// The ledger records how many attempts went out.
			if got := httpx.AttemptsOf(err); got != int(tc.calls) {
				t.Errorf("%d: AttemptsOf = %d, want the %d calls made", tc.status, got, tc.calls)
			}
			if calls.Load() != tc.calls {
				t.Errorf("%d: %d calls, want %d", tc.status, calls.Load(), tc.calls)
			}
		})
	}
}

func TestRetryAfterIsNeverUndercut(t *testing.T) {
	for _, form := range []string{"seconds", "date"} {
		t.Run(form, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var notBefore time.Time
				var early time.Duration
				c := memClient(t, func(w http.ResponseWriter, r *http.Request) {
					now := time.Now()
					if notBefore.IsZero() {
						notBefore = now.Add(1 * time.Second)
						if form == "seconds" {
							w.Header().Set("Retry-After", "1")
						} else {
							notBefore = now.Add(2 * time.Second).Truncate(time.Second)
							w.Header().Set("Retry-After", notBefore.UTC().Format(http.TimeFormat))
						}
						w.WriteHeader(http.StatusTooManyRequests)
						return
					}
					if now.Before(notBefore) {
						early = notBefore.Sub(now)
					}
					w.WriteHeader(200)
				}, nil)
				resp, err := c.Do(context.Background(), httpx.Request{Method: "GET", Path: "/", Idempotent: true})
				if err != nil || resp.Attempts != 2 {
					t.Fatalf("err %v", err)
				}
				if early > 0 {
					t.Fatalf("retried %v before Retry-After", early)
				}
			})
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"0", 0, true},
		{"Mon, 23 Nov 2026 10:00:05 GMT", 6 * time.Second, true}, // rounded up: never early
		{"Mon, 23 Nov 2026 09:00:00 GMT", time.Second, true},
		{"soon", 0, false},
		{"-1", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, ok := httpx.ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// A request that may have reached the partner is retried only when it is
// idempotent; otherwise it is uncertain, never resent blind.
func TestLostAnswerIsUncertainAndNotResentUnlessIdempotent(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close() // the partner committed, the answer is lost
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, func(c *httpx.Config) { c.MaxAttempts = 4 })
	_, err := c.Do(context.Background(), httpx.Request{Method: "POST", Path: "/create", Body: []byte("{}")})
	if httpx.KindOf(err) != httpx.Uncertain || calls.Load() != 1 {
		t.Fatalf("non-idempotent: %v after %d calls; want Uncertain after 1", err, calls.Load())
	}
	calls.Store(0)
	_, err = c.Do(context.Background(), httpx.Request{Method: "POST", Path: "/create", Body: []byte("{}"), Idempotent: true})
	if httpx.KindOf(err) != httpx.Uncertain || calls.Load() != 4 {
		t.Fatalf("idempotent: %v after %d calls; want Uncertain after 4", err, calls.Load())
	}
}

func TestRefusedConnectionIsRetryable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	c := newClient(t, "http://"+addr, func(c *httpx.Config) { c.MaxAttempts = 2 })
	_, err := c.Do(context.Background(), httpx.Request{Method: "POST", Path: "/x"})
	if httpx.KindOf(err) != httpx.Retryable || httpx.CodeOf(err) != "connect" {
		t.Fatalf("err %v: a refused connection never reached the partner", err)
	}
}

func TestBreakerOpensWithinThresholdAndFailsFast(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(503)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, func(c *httpx.Config) {
		c.MaxAttempts, c.BreakerFailures, c.BreakerCooldown, c.MinRetries = 2, 5, time.Hour, 1000
	})
	for i := 0; i < 20; i++ {
		_, _ = c.Do(context.Background(), httpx.Request{Method: "GET", Path: "/", Idempotent: true})
	}
	if calls.Load() != 5 {
		t.Fatalf("partner saw %d calls; the breaker should open after 5", calls.Load())
	}
	_, err := c.Do(context.Background(), httpx.Request{Method: "GET", Path: "/"})
	if httpx.KindOf(err) != httpx.Unavailable || c.Breaker().State() != httpx.Open {
		t.Fatalf("err %v state %v", err, c.Breaker().State())
	}
}

func TestBreakerHalfOpensAfterCooldown(t *testing.T) {
	tests := []struct {
		probe httpx.Verdict
		want  httpx.BreakerState
	}{
		{httpx.PartnerUp, httpx.Closed},
		{httpx.PartnerDown, httpx.Open},
		{httpx.NoVerdict, httpx.HalfOpen},
	}
	for _, tc := range tests {
		synctest.Test(t, func(t *testing.T) {
			b := httpx.NewBreaker(2, time.Minute)
			for range 2 {
				done, ok := b.Admit()
				if !ok {
					t.Fatal("closed breaker refused a call")
				}
				done(httpx.PartnerDown)
			}
			if _, ok := b.Admit(); ok {
				t.Fatal("open breaker allowed a call")
			}
			time.Sleep(time.Minute + time.Second) // fake time
			probe, ok := b.Admit()
			if !ok {
				t.Fatal("no probe after the cooldown")
			}
			if _, ok := b.Admit(); ok {
				t.Fatal("half-open breaker must allow exactly one probe")
			}
			probe(tc.probe)
			probe(httpx.PartnerDown) // a second report is ignored
			if s := b.State(); s != tc.want {
				t.Fatalf("probe %v: state %v, want %v", tc.probe, s, tc.want)
			}
			if _, ok := b.Admit(); ok != (tc.want != httpx.Open) {
				t.Fatalf("probe %v: next call admitted %v in state %v", tc.probe, ok, tc.want)
			}
		})
	}
}

func TestRetryBudgetStopsAStorm(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(500)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, func(c *httpx.Config) {
		c.MaxAttempts, c.MinRetries, c.RetryBudget, c.BreakerFailures = 10, 5, 0.1, 1_000_000
	})
	for i := 0; i < 20; i++ {
		_, _ = c.Do(context.Background(), httpx.Request{Method: "GET", Path: "/", Idempotent: true})
	}
	// 20 first attempts + at most 5 + 20*0.1 retries.
	if n := calls.Load(); n > 27 {
		t.Fatalf("%d calls: the retry budget did not hold", n)
	}
}

func TestRateLimitSpacesCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := memClient(t, func(w http.ResponseWriter, r *http.Request) {}, func(c *httpx.Config) { c.RatePerSec, c.Burst = 50, 1 })
		start := time.Now()
		for i := 0; i < 11; i++ {
			if _, err := c.Do(context.Background(), httpx.Request{Method: "GET", Path: "/"}); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Fatalf("11 calls at 50/s took %v; the limiter let them through too fast", d)
		}
	})
}

func TestTransportErrorsDoNotLeakQueryStrings(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, func(c *httpx.Config) { c.MaxAttempts = 1 })
	_, err := c.Do(context.Background(), httpx.Request{Method: "POST", Path: "/import", Query: map[string][]string{"ApiKey": {"sekrit-key"}}})
	if err == nil || strings.Contains(err.Error(), "sekrit-key") {
		t.Fatalf("error %v leaks the query", err)
	}
}

// Redacting the URL must not cut the chain a caller branches on: a
// refused dial stays a *net.OpError.
func TestTransportErrorsKeepTheCauseWithoutTheURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, "http://"+addr, func(c *httpx.Config) { c.MaxAttempts = 1 })
	_, err = c.Do(context.Background(), httpx.Request{Method: "POST", Path: "/import", Query: map[string][]string{"ApiKey": {"sekrit-key"}}})
	if err == nil || strings.Contains(err.Error(), "sekrit-key") {
		t.Fatalf("error %v leaks the query", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("errors.As(%v, *net.OpError) = false; want the refused dial", err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		t.Fatalf("error %v still holds the *url.Error with the query", err)
	}
}

func TestNewRejectsBadBaseURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "not a url", "/relative"} {
		if _, err := httpx.New(httpx.Config{Partner: "p", BaseURL: u}, nil); err == nil {
			t.Errorf("base URL %q accepted", u)
		}
	}
}
