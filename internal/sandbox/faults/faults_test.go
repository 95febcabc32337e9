package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/sandbox"
	"github.com/northwind-data/etl/internal/sandbox/faults"
)

// partner is a trivial sandbox that counts the answers it committed.
type partner struct {
	commits atomic.Int64
	bodies  sync.Map // Idempotency-Key -> body the handler saw
}

func (p *partner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		p.bodies.Store(k, string(b))
	}
	if strings.HasSuffix(r.URL.Path, "/limited") {
		w.Header().Set("Retry-After", "1")
		sandbox.WriteJSON(w, http.StatusTooManyRequests, map[string]string{"error": "slow down"})
		return
	}
	p.commits.Add(1)
	sandbox.WriteJSON(w, http.StatusCreated, map[string]bool{"ok": true})
}

type result struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// outcome is a short name for what the client saw.
func (r result) outcome() string {
	if r.err != nil {
		return "err"
	}
	return strconv.Itoa(r.status)
}

func setup(t *testing.T, cfg faults.Config) (*faults.Injector, *partner, *httptest.Server) {
	t.Helper()
	inj := faults.New(cfg)
	p := &partner{}
	mux := http.NewServeMux()
	mux.Handle("/", p)
	mux.Handle(faults.FaultsPath, inj.ControlHandler())
	srv := httptest.NewServer(inj.Wrap(mux))
	t.Cleanup(srv.Close)
	return inj, p, srv
}

// client opens a connection per request so Go's transport never replays
// a request on its own after a reset, which would hide what the server did.
func client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

func send(t *testing.T, c *http.Client, method, url, key, body string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

func post(t *testing.T, c *http.Client, srv *httptest.Server, key string) result {
	t.Helper()
	return send(t, c, http.MethodPost, srv.URL+"/v0/customers", key, `{"id":"`+key+`"}`)
}

func TestEachFault(t *testing.T) {
	const n = 40
	tests := []struct {
		spec        string
		check       func(t *testing.T, r result)
		wantCommits int64
		want        faults.Stats
	}{
		{
			spec:        "none",
			check:       wantStatus(http.StatusCreated),
			wantCommits: n,
			want:        faults.Stats{Requests: n, Passed: n},
		},
		{
			spec: "errors=1,seed=3",
			check: func(t *testing.T, r result) {
				if r.err != nil || !slices.Contains([]int{500, 502, 503}, r.status) {
					t.Fatalf("got %v %v, want 500, 502 or 503", r.status, r.err)
				}
				if ra := r.header.Get("Retry-After"); (r.status == 503) != (ra == "1") {
					t.Errorf("%d with Retry-After %q: only 503 carries one, of 1 second", r.status, ra)
				}
				checkJSONError(t, r)
			},
			want: faults.Stats{Requests: n, Errors5xx: n},
		},
		{
			spec:  "reset=1",
			check: wantTransportError,
			want:  faults.Stats{Requests: n, Resets: n},
		},
		{
			spec:        "drop=1",
			check:       wantTransportError,
			wantCommits: n, // the partner did the work; the client never heard
			want:        faults.Stats{Requests: n, Dropped: n},
		},
		{
			spec:  "down",
			check: func(t *testing.T, r result) { wantStatus(503)(t, r); checkJSONError(t, r) },
			want:  faults.Stats{Requests: n, DownRefusals: n},
		},
		{
			// Down wins over everything else.
			spec:  "down=true,reset=1,latency=1h",
			check: wantStatus(503),
			want:  faults.Stats{Requests: n, DownRefusals: n},
		},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			t.Parallel()
			cfg, err := faults.ParseSpec(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			inj, p, srv := setup(t, cfg)
			c := client()
			for k := range n {
				tc.check(t, post(t, c, srv, fmt.Sprint("k", k)))
			}
			if got := p.commits.Load(); got != tc.wantCommits {
				t.Errorf("partner committed %d, want %d", got, tc.wantCommits)
			}
			got := inj.Stats()
			if got.AnswerTime <= 0 {
				t.Errorf("answer time %v: every request was answered", got.AnswerTime)
			}
			got.AnswerTime = 0 // a measured time, not a decision
			if got != tc.want {
				t.Errorf("stats %+v, want %+v", got, tc.want)
			}
		})
	}
}

func wantStatus(code int) func(*testing.T, result) {
	return func(t *testing.T, r result) {
		t.Helper()
		if r.err != nil || r.status != code {
			t.Fatalf("got %d %v, want %d", r.status, r.err, code)
		}
	}
}

func wantTransportError(t *testing.T, r result) {
	t.Helper()
	if r.err == nil {
		t.Fatalf("got %d %s, want the connection lost", r.status, r.body)
	}
}

func checkJSONError(t *testing.T, r result) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Errorf("body %q is not a JSON error (%v)", r.body, err)
	}
}

func TestLatencyIsAddedBeforeTheHandler(t *testing.T) {
	t.Parallel()
	_, p, srv := setup(t, faults.Config{Latency: 40 * time.Millisecond, Jitter: 20 * time.Millisecond})
	c := client()
	for k := range 3 {
		start := time.Now()
		wantStatus(201)(t, post(t, c, srv, fmt.Sprint(k)))
		if el := time.Since(start); el < 40*time.Millisecond {
			t.Errorf("answered after %v, want at least the 40ms latency", el)
		}
	}
	if p.commits.Load() != 3 {
		t.Errorf("commits %d", p.commits.Load())
	}
}

// A client that gives up during the injected latency must not leave the
// handler running (httptest's Close waits for it) nor reach the partner.
func TestLatencyStopsWhenTheClientLeaves(t *testing.T) {
	t.Parallel()
	inj, p, srv := setup(t, faults.Config{Latency: time.Hour})
	c := &http.Client{Timeout: 50 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	wantTransportError(t, post(t, c, srv, "k"))
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler still sleeping after the client left")
	}
	if s := inj.Stats(); p.commits.Load() != 0 || s.Requests != 1 || s.Passed != 0 {
		t.Errorf("commits %d, stats %+v", p.commits.Load(), s)
	}
}

func TestMixedFractions(t *testing.T) {
	t.Parallel()
	const n = 300
	inj, p, srv := setup(t, faults.Config{Seed: 11, ResetRate: 0.2, ErrorRate: 0.2, DropRate: 0.2})
	c := client()
	for k := range n {
		post(t, c, srv, fmt.Sprint(k))
	}
	s := inj.Stats()
	if s.Requests != n || s.Passed+s.Resets+s.Errors5xx+s.Dropped != n {
		t.Fatalf("outcomes do not add up: %+v", s)
	}
	for name, v := range map[string]int64{"passed": s.Passed, "resets": s.Resets, "errors": s.Errors5xx, "dropped": s.Dropped} {
		want := int64(n / 5)
		if name == "passed" {
			want = 2 * n / 5
		}
		if v < want/2 || v > want*3/2 {
			t.Errorf("%s = %d, want about %d", name, v, want)
		}
	}
	if got := p.commits.Load(); got != s.Passed+s.Dropped {
		t.Errorf("partner committed %d, want passed+dropped = %d", got, s.Passed+s.Dropped)
	}
}

func TestRetryAfterCoversTheBucketWait(t *testing.T) {
	tests := []struct {
		rate   float64
		date   bool
		maxSec int64 // the most a correct answer may say
	}{
		{rate: 0.5, maxSec: 2},
		{rate: 0.5, date: true, maxSec: 2},
		{rate: 5, maxSec: 1}, // a 200ms wait still says 1: never 0
		{rate: 5, date: true, maxSec: 1},
		{rate: 0.3, maxSec: 4}, // 3.33s rounds up
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("rate=%v,date=%v", tc.rate, tc.date), func(t *testing.T) {
			t.Parallel()
			inj, p, srv := setup(t, faults.Config{RateLimit: tc.rate, RetryAfterDate: tc.date})
			c := client()
			bucketWait := time.Duration(float64(time.Second) / tc.rate)
			t0 := time.Now()
			wantStatus(201)(t, post(t, c, srv, "a")) // the burst of 1
			r := post(t, c, srv, "b")
			t1 := time.Now()
			wantStatus(http.StatusTooManyRequests)(t, r)
			checkJSONError(t, r)
			ra := r.header.Get("Retry-After")
			// The token comes back at (first arrival + bucketWait), and the
			// first arrival is after t0: the client may come back no sooner.
			var back, latest time.Time
			if tc.date {
				d, err := http.ParseTime(ra)
				if err != nil {
					t.Fatalf("Retry-After %q is not an HTTP date", ra)
				}
				back, latest = d, t1.Add(time.Duration(tc.maxSec)*time.Second+time.Second)
			} else {
				secs, err := strconv.ParseInt(ra, 10, 64)
				if err != nil || secs < 1 || secs > tc.maxSec {
					t.Fatalf("Retry-After %q, want whole seconds in [1, %d]", ra, tc.maxSec)
				}
				back, latest = t1.Add(time.Duration(secs)*time.Second), t1.Add(time.Duration(tc.maxSec)*time.Second)
			}
			if back.Before(t0.Add(bucketWait)) {
				t.Errorf("Retry-After %q lets the client back before the bucket refills (%v after %v)", ra, bucketWait, t0)
			}
			if back.After(latest) {
				t.Errorf("Retry-After %q is later than needed", ra)
			}
			if s := inj.Stats(); s.RateLimited != 1 || s.Passed != 1 || p.commits.Load() != 1 {
				t.Errorf("stats %+v, commits %d", s, p.commits.Load())
			}
		})
	}
}

func TestBurstIsATenthOfTheRate(t *testing.T) {
	t.Parallel()
	// Below 10 requests/s the burst is 1, and 0.1/s earns nothing back
	// during the test. At 30/s the burst is 3 and a token comes back every
	// 33ms: ten concurrent requests would need 230ms to all get through.
	for _, tc := range []struct {
		rate     float64
		min, max int64
	}{{rate: 0.1, min: 1, max: 1}, {rate: 30, min: 3, max: 9}} {
		inj, _, srv := setup(t, faults.Config{RateLimit: tc.rate})
		var wg sync.WaitGroup
		for k := range 10 {
			wg.Go(func() { post(t, client(), srv, fmt.Sprint(k)) })
		}
		wg.Wait()
		s := inj.Stats()
		if s.Passed < tc.min || s.Passed > tc.max || s.Passed+s.RateLimited != 10 {
			t.Errorf("rate %v: %+v, want %d to %d passed", tc.rate, s, tc.min, tc.max)
		}
	}
}

func TestEarlyRetries(t *testing.T) {
	tests := []struct {
		name  string
		cfg   faults.Config
		path  string
		first int // the status that hands out a Retry-After
	}{
		{name: "429 seconds", cfg: faults.Config{RateLimit: 1}, path: "/v0/customers", first: 429},
		{name: "429 date", cfg: faults.Config{RateLimit: 1, RetryAfterDate: true}, path: "/v0/customers", first: 429},
		// The partner's own 429s are watched too.
		{name: "partner 429", path: "/v0/limited", first: 429},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inj, _, srv := setup(t, tc.cfg)
			c := client()
			url := srv.URL + tc.path
			if tc.cfg.RateLimit > 0 {
				wantStatus(201)(t, post(t, c, srv, "spend-the-burst"))
			}
			r := send(t, c, "POST", url, "k1", `{"a":1}`)
			wantStatus(tc.first)(t, r)
			// A different logical request (key, body or method) is not a retry.
			send(t, c, "POST", url, "k2", `{"a":1}`)
			send(t, c, "POST", url, "k1", `{"a":2}`)
			send(t, c, "PUT", url, "k1", `{"a":1}`)
			if s := inj.Stats(); s.EarlyRetries != 0 {
				t.Fatalf("other requests counted as early retries: %+v", s)
			}
			// Too soon.
			r = send(t, c, "POST", url, "k1", `{"a":1}`)
			s := inj.Stats()
			if s.EarlyRetries != 1 || s.MaxEarlyRetry <= 0 || s.MaxEarlyRetry > 2*time.Second {
				t.Fatalf("after an immediate retry: %+v, want 1 early retry of under 2s", s)
			}
			// Honour the Retry-After this answer carries.
			time.Sleep(time.Until(retryAt(t, r)))
			send(t, c, "POST", url, "k1", `{"a":1}`)
			if got := inj.Stats(); got.EarlyRetries != 1 || got.MaxEarlyRetry != s.MaxEarlyRetry {
				t.Errorf("a retry after waiting counted as early: %+v", got)
			}
		})
	}
}

// retryAt is when a client honouring r's Retry-After may come back.
func retryAt(t *testing.T, r result) time.Time {
	t.Helper()
	ra := r.header.Get("Retry-After")
	if secs, err := strconv.Atoi(ra); err == nil {
		return time.Now().Add(time.Duration(secs) * time.Second)
	}
	d, err := http.ParseTime(ra)
	if err != nil {
		t.Fatalf("no usable Retry-After in %d answer: %q", r.status, ra)
	}
	return d
}

func Test503RetryAfterIsWatched(t *testing.T) {
	t.Parallel()
	inj, _, srv := setup(t, faults.Config{ErrorRate: 1, Seed: 1})
	c := client()
	var r result
	for k := 0; ; k++ {
		if k == 50 {
			t.Fatal("no 503 in 50 errors")
		}
		if r = post(t, c, srv, fmt.Sprint(k)); r.status == 503 {
			post(t, c, srv, fmt.Sprint(k))
			break
		}
		post(t, c, srv, fmt.Sprint(k)) // a 500 or 502 sets no deadline
		if s := inj.Stats(); s.EarlyRetries != 0 {
			t.Fatalf("retry after %d counted early: %+v", r.status, s)
		}
	}
	if s := inj.Stats(); s.EarlyRetries != 1 {
		t.Errorf("retry right after a 503 with Retry-After: %+v", s)
	}
}

func TestInnerHandlerSeesTheBody(t *testing.T) {
	t.Parallel()
	_, p, srv := setup(t, faults.Config{})
	body := strings.Repeat("x", 100<<10)
	wantStatus(201)(t, send(t, client(), "POST", srv.URL+"/v0/customers", "big", body))
	got, _ := p.bodies.Load("big")
	if got != body {
		t.Errorf("handler saw %d bytes, want %d", len(got.(string)), len(body))
	}
}

func TestControlPathsPassThrough(t *testing.T) {
	t.Parallel()
	inj, p, srv := setup(t, faults.Config{Down: true, ResetRate: 1, RateLimit: 0.001})
	c := client()
	for _, path := range []string{"/v0" + sandbox.StatePath, sandbox.StatePath, faults.FaultsPath} {
		r := send(t, c, "GET", srv.URL+path, "", "")
		if r.err != nil || r.status/100 != 2 {
			t.Errorf("GET %s: %d %v, want it untouched", path, r.status, r.err)
		}
	}
	// Both state paths reach the partner's mux; the faults path the control.
	if s := inj.Stats(); s != (faults.Stats{}) || p.commits.Load() != 2 {
		t.Errorf("control paths counted: %+v, commits %d", s, p.commits.Load())
	}
}

func TestSameSeedSameDecisions(t *testing.T) {
	t.Parallel()
	run := func(cfg faults.Config) (string, faults.Stats, int64) {
		inj, p, srv := setup(t, cfg)
		c := client()
		var seq []string
		for k := range 60 {
			seq = append(seq, post(t, c, srv, fmt.Sprint(k)).outcome())
		}
		// Set restarts the sequence from the seed.
		inj.Set(cfg)
		for k := range 60 {
			seq = append(seq, post(t, c, srv, fmt.Sprint(k)).outcome())
		}
		s := inj.Stats()
		s.MaxEarlyRetry, s.AnswerTime = 0, 0 // measured times, not decisions
		return strings.Join(seq, " "), s, p.commits.Load()
	}
	cfg := faults.Config{Seed: 7, ErrorRate: 0.3, ResetRate: 0.1, DropRate: 0.1}
	a, sa, ca := run(cfg)
	b, sb, cb := run(cfg)
	if a != b || sa != sb || ca != cb {
		t.Fatalf("same seed, different runs:\n%s %+v %d\n%s %+v %d", a, sa, ca, b, sb, cb)
	}
	if half := len(a) / 2; a[:half] != a[half+1:] {
		t.Errorf("Set did not restart the sequence:\n%s\n%s", a[:half], a[half+1:])
	}
	cfg.Seed = 8
	if c, _, _ := run(cfg); c == a {
		t.Errorf("seeds 7 and 8 gave the same %d decisions", 120)
	}
}

func TestControlEndpoint(t *testing.T) {
	t.Parallel()
	inj, _, srv := setup(t, faults.Config{Seed: 5, Latency: 2 * time.Millisecond})
	c := client()
	ctl := srv.URL + faults.FaultsPath
	view := func(r result) (v struct {
		Config faults.Config `json:"config"`
		Stats  faults.Stats  `json:"stats"`
	}) {
		t.Helper()
		wantStatus(200)(t, r)
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatalf("%s: %v", r.body, err)
		}
		return v
	}

	post(t, c, srv, "x")
	v := view(send(t, c, "GET", ctl, "", ""))
	if want := (faults.Config{Seed: 5, Latency: 2 * time.Millisecond}); v.Config != want || v.Stats.Passed != 1 {
		t.Errorf("GET: %+v", v)
	}
	if !bytes.Contains(send(t, c, "GET", ctl, "", "").body, []byte(`"latency":"2ms"`)) {
		t.Error("durations are not duration strings")
	}

	tests := []struct {
		method, body string
		status       int
		want         faults.Config // after the call
	}{
		{"PUT", `{"error_rate":1,"latency":"1ms","retry_after_date":true}`, 200, faults.Config{ErrorRate: 1, Latency: time.Millisecond, RetryAfterDate: true}},
		{"POST", `{"jitter":3}`, 200, faults.Config{Jitter: 3 * time.Millisecond}},
		{"PUT", "down,seed=9", 200, faults.Config{Down: true, Seed: 9}},
		{"PUT", `{"eror_rate":1}`, 400, faults.Config{Down: true, Seed: 9}},
		{"PUT", `{"error_rate":2}`, 400, faults.Config{Down: true, Seed: 9}},
		{"PUT", `{"error_rate":0.1} {}`, 400, faults.Config{Down: true, Seed: 9}},
		{"PUT", "errors=lots", 400, faults.Config{Down: true, Seed: 9}},
		{"DELETE", "", 405, faults.Config{Down: true, Seed: 9}},
		{"PUT", "", 200, faults.Config{}},
	}
	for _, tc := range tests {
		r := send(t, c, tc.method, ctl, "", tc.body)
		if r.err != nil || r.status != tc.status {
			t.Errorf("%s %s: %d %v %s, want %d", tc.method, tc.body, r.status, r.err, r.body, tc.status)
			continue
		}
		if tc.status == 200 {
			if v := view(r); v.Config != tc.want {
				t.Errorf("%s %s answered config %+v", tc.method, tc.body, v.Config)
			}
		}
		if got := inj.Config(); got != tc.want {
			t.Errorf("%s %s: config %+v, want %+v", tc.method, tc.body, got, tc.want)
		}
	}

	// The new config takes effect and the counters survived every Set.
	send(t, c, "PUT", ctl, "", "down")
	wantStatus(503)(t, post(t, c, srv, "y"))
	if s := view(send(t, c, "GET", ctl, "", "")).Stats; s.Requests != 2 || s.Passed != 1 || s.DownRefusals != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestStatsJSONRoundTrip(t *testing.T) {
	s := faults.Stats{Requests: 9, Passed: 1, RateLimited: 2, Errors5xx: 3, Resets: 1, Dropped: 1, DownRefusals: 1, EarlyRetries: 4, MaxEarlyRetry: 1500 * time.Millisecond, AnswerTime: 90 * time.Millisecond}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"max_early_retry":"1.5s"`)) || !bytes.Contains(b, []byte(`"errors_5xx":3`)) || !bytes.Contains(b, []byte(`"answer_time":"90ms"`)) {
		t.Errorf("stats JSON %s", b)
	}
	var back faults.Stats
	if err := json.Unmarshal(b, &back); err != nil || back != s {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec string
		want faults.Config
	}{
		{"", faults.Config{}},
		{"none", faults.Config{}},
		{"rate=200,errors=0.2,latency=50ms,jitter=10ms,reset=0.01,drop=0.1,down=true,seed=7,retry-after=date",
			faults.Config{RateLimit: 200, ErrorRate: 0.2, Latency: 50 * time.Millisecond, Jitter: 10 * time.Millisecond,
				ResetRate: 0.01, DropRate: 0.1, Down: true, Seed: 7, RetryAfterDate: true}},
		{" rate = 2.5 , down ", faults.Config{RateLimit: 2.5, Down: true}},
		{"down=false,retry-after=seconds", faults.Config{}},
		{"errors=0.5,reset=0.25,drop=0.25", faults.Config{ErrorRate: 0.5, ResetRate: 0.25, DropRate: 0.25}},
		{"seed=18446744073709551615", faults.Config{Seed: 1<<64 - 1}},
	}
	for _, tc := range tests {
		got, err := faults.ParseSpec(tc.spec)
		if err != nil || got != tc.want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
			continue
		}
		back, err := faults.ParseSpec(got.String())
		if err != nil || back != got {
			t.Errorf("round trip through %q: %+v, %v", got.String(), back, err)
		}
	}

	bad := []struct{ spec, mention string }{
		{"rate=-1", "rate"},
		{"rate=NaN", "rate"},
		{"rate=+Inf", "rate"},
		{"errors=1.5", "errors"},
		{"errors=x", "errors"},
		{"reset=-0.1", "reset"},
		{"drop=NaN", "drop"},
		{"latency=5", "latency"},
		{"jitter=-5ms", "jitter"},
		{"down=maybe", "down"},
		{"seed=-1", "seed"},
		{"retry-after=soon", "retry-after"},
		{"bogus=1", "bogus"},
		{"rate", "rate"},
		{"rate=1,rate=2", "twice"},
		{"rate=1,,down", "empty"},
		{"errors=0.6,drop=0.6", "exceed 1"},
	}
	for _, tc := range bad {
		if _, err := faults.ParseSpec(tc.spec); err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("ParseSpec(%q) error %v, want one mentioning %q", tc.spec, err, tc.mention)
		}
	}
}

func TestSetClampsOutOfRange(t *testing.T) {
	inj := faults.New(faults.Config{ErrorRate: 3, ResetRate: -1, DropRate: 0.5, RateLimit: -4, Latency: -time.Second})
	want := faults.Config{ErrorRate: 1}
	if got := inj.Config(); got != want {
		t.Errorf("clamped to %+v, want %+v", got, want)
	}
	if err := (faults.Config{ErrorRate: 3}).Validate(); err == nil {
		t.Error("Validate accepted errors=3")
	}
}

// Concurrent traffic while the faults change: every request ends in one
// outcome, and the race detector watches the shared state.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	inj, p, srv := setup(t, faults.Config{Seed: 3, ErrorRate: 0.2, ResetRate: 0.1, DropRate: 0.1, RateLimit: 2000, Jitter: time.Millisecond})
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			c := client()
			for k := range 25 {
				post(t, c, srv, fmt.Sprint(g, "-", k))
			}
		})
	}
	wg.Go(func() {
		for k := range 20 {
			cfg := inj.Config()
			cfg.Down = k%5 == 4
			inj.Set(cfg)
			_ = inj.Stats()
			time.Sleep(time.Millisecond)
		}
	})
	wg.Wait()
	s := inj.Stats()
	if s.Requests != 150 || s.Passed+s.RateLimited+s.Errors5xx+s.Resets+s.Dropped+s.DownRefusals != 150 {
		t.Errorf("outcomes do not add up: %+v", s)
	}
	if p.commits.Load() != s.Passed+s.Dropped {
		t.Errorf("commits %d, stats %+v", p.commits.Load(), s)
	}
}

// Over HTTP/2 the connection cannot be taken over; the stream is reset.
func TestHTTP2FallsBackToAbortingTheStream(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg         faults.Config
		wantCommits int64
	}{{faults.Config{ResetRate: 1}, 0}, {faults.Config{DropRate: 1}, 1}} {
		inj := faults.New(tc.cfg)
		p := &partner{}
		srv := httptest.NewUnstartedServer(inj.Wrap(p))
		srv.EnableHTTP2 = true
		srv.StartTLS()
		req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/x", strings.NewReader("{}"))
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%+v: got %s %d, want the stream reset", tc.cfg, resp.Proto, resp.StatusCode)
		}
		srv.Close()
		if p.commits.Load() != tc.wantCommits {
			t.Errorf("%+v: commits %d, want %d", tc.cfg, p.commits.Load(), tc.wantCommits)
		}
	}
}

func TestAfterCommitRunsBetweenCommitAndAnswer(t *testing.T) {
	var commits, hooks int
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		commits++
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":1}`))
	})
	inj := faults.New(faults.Config{})
	inj.AfterCommit(func() {
		if commits != 1 {
			t.Errorf("hook ran before the commit")
		}
		hooks++
	})
	srv := httptest.NewServer(inj.Wrap(inner))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/x", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if hooks != 1 || resp.StatusCode != http.StatusCreated || string(b) != `{"id":1}` {
		t.Fatalf("hooks %d, status %d, body %s", hooks, resp.StatusCode, b)
	}
}
