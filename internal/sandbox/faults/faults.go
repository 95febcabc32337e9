// Package faults wraps any partner sandbox (a plain http.Handler) with the
// failures a real partner shows: rate limiting with Retry-After, random 5xx,
// latency, connection resets, answers lost after the partner committed, and
// a full outage. It also watches clients: a retry that arrives before the
// Retry-After it was given is counted, so chaos tests can prove clients
// honour the partner's back-off.
//
// Every random choice comes from a PCG seeded by Config.Seed, so a failing
// run replays given the same seed and request order.
package faults

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/northwind-data/etl/internal/sandbox"
)

// FaultsPath is where ControlHandler is meant to be mounted, relative to a
// sandbox's root. Wrap lets it (and sandbox.StatePath) through untouched so
// tests can inspect and steer a sandbox that is refusing everything else.
const FaultsPath = "/_sandbox/faults"

// Config says which faults to inject. The zero value injects nothing.
type Config struct {
	Seed           uint64        // seeds the PCG behind every random choice
	RateLimit      float64       // requests/s accepted (token bucket, burst max(1, RateLimit/10)); 0 = unlimited
	RetryAfterDate bool          // Retry-After as an HTTP date instead of delay-seconds
	ErrorRate      float64       // fraction answered 500/502/503 before the handler runs
	Latency        time.Duration // added before the handler runs
	Jitter         time.Duration // uniform extra latency in [0, Jitter)
	ResetRate      float64       // fraction whose connection is reset before the handler runs
	DropRate       float64       // fraction whose answer is discarded after the handler committed
	Down           bool          // every request answered 503
}

// Stats counts what the injector did. Every counted request ends in exactly
// one of Passed, RateLimited, Errors5xx, Resets, Dropped or DownRefusals,
// except one whose client gave up while the injected latency ran.
type Stats struct {
	Requests     int64 `json:"requests"`
	Passed       int64 `json:"passed"`
	RateLimited  int64 `json:"rate_limited"`
	Errors5xx    int64 `json:"errors_5xx"`
	Resets       int64 `json:"resets"`
	Dropped      int64 `json:"dropped"`
	DownRefusals int64 `json:"down_refusals"`
	// EarlyRetries counts requests that came back before the Retry-After
	// their previous attempt was given; MaxEarlyRetry is the worst margin.
	EarlyRetries  int64         `json:"early_retries"`
	MaxEarlyRetry time.Duration `json:"max_early_retry"` // a duration string on the wire
	// AnswerTime sums, over the counted requests, the time from the
	// request's arrival to its answer: the partner's own latency,
	// injected and served, without the client's side or the network.
	AnswerTime time.Duration `json:"answer_time"` // a duration string on the wire
}

// maxTracked bounds the early-retry map; past it expired entries are swept
// and, if that is not enough, arbitrary ones are forgotten.
const maxTracked = 1 << 16

// errorCodes are the statuses ErrorRate picks from, uniformly.
var errorCodes = [...]int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}

// Injector injects faults into the handlers it wraps. It is safe for
// concurrent use; one Injector may wrap several handlers, which then share
// its rate limit, random sequence and counters.
type Injector struct {
	mu        sync.Mutex
	cfg       Config
	rng       *rand.Rand
	tokens    float64
	last      time.Time
	notBefore map[[32]byte]time.Time
	stats     Stats
	after     func()
}

// AfterCommit sets a hook that runs after the wrapped handler answered
// 2xx (the partner committed) and before the answer is sent: crash tests
// kill the client there, between the partner's commit and its ledger
// write. nil removes it.
func (i *Injector) AfterCommit(fn func()) {
	i.mu.Lock()
	i.after = fn
	i.mu.Unlock()
}

// New returns an Injector for cfg. Out-of-range values are clamped (see
// Config.Validate for the ranges).
func New(cfg Config) *Injector {
	i := &Injector{notBefore: make(map[[32]byte]time.Time)}
	i.Set(cfg)
	return i
}

// Set changes the faults at run time. Counters and remembered Retry-After
// deadlines are kept; the random sequence restarts from cfg.Seed so a run
// that changes faults midway still replays. Out-of-range values are clamped.
func (i *Injector) Set(cfg Config) {
	cfg = cfg.clamped()
	now := time.Now()
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cfg.RateLimit > 0 {
		i.refill(now)
	}
	if i.cfg.RateLimit == 0 || i.rng == nil {
		// A limit switched on starts with a full bucket, as a fresh
		// partner would.
		i.tokens = burst(cfg.RateLimit)
	}
	i.tokens = min(i.tokens, burst(cfg.RateLimit))
	i.last = now
	i.cfg = cfg
	i.rng = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
}

// Config returns the faults in force.
func (i *Injector) Config() Config {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.cfg
}

// Stats returns a snapshot of the counters.
func (i *Injector) Stats() Stats {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.stats
}

func burst(rate float64) float64 { return max(1, math.Floor(rate/10)) }

// refill adds the tokens earned since the last call; i.mu must be held.
func (i *Injector) refill(now time.Time) {
	if el := now.Sub(i.last).Seconds(); el > 0 {
		i.tokens = min(burst(i.cfg.RateLimit), i.tokens+el*i.cfg.RateLimit)
	}
	i.last = now
}

// take spends a token, or says how long until one is available.
func (i *Injector) take(now time.Time) (bool, time.Duration) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cfg.RateLimit <= 0 {
		return true, 0
	}
	i.refill(now)
	if i.tokens >= 1 {
		i.tokens--
		return true, 0
	}
	wait := time.Duration(math.Ceil((1 - i.tokens) / i.cfg.RateLimit * float64(time.Second)))
	return false, wait
}

// plan is one request's share of the random sequence. Every counted request
// draws the same three numbers in the same order whatever the config, so
// the decisions for request n depend only on the seed and n.
type plan struct {
	cfg     Config
	outcome float64 // partitions [0,1) into reset | error | drop | pass
	code    int
	delay   time.Duration
}

func (i *Injector) draw() plan {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.stats.Requests++
	p := plan{cfg: i.cfg, outcome: i.rng.Float64()}
	p.code = errorCodes[int(i.rng.Float64()*float64(len(errorCodes)))%len(errorCodes)]
	p.delay = i.cfg.Latency + time.Duration(i.rng.Float64()*float64(i.cfg.Jitter))
	return p
}

func (i *Injector) count(f func(*Stats)) {
	i.mu.Lock()
	f(&i.stats)
	i.mu.Unlock()
}

// requestID names a logical request so its retries can be recognised. The
// query is included because some partners (ClubReady) carry data there.
func requestID(r *http.Request, body []byte) [32]byte {
	h := sha256.New()
	for _, s := range []string{r.Method, r.URL.RequestURI(), r.Header.Get("Idempotency-Key")} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(body)
	var id [32]byte
	h.Sum(id[:0])
	return id
}

// arrived counts id as early if it comes back before the time it was told.
func (i *Injector) arrived(id [32]byte, now time.Time) {
	i.mu.Lock()
	defer i.mu.Unlock()
	nb, ok := i.notBefore[id]
	if !ok {
		return
	}
	delete(i.notBefore, id)
	if early := nb.Sub(now); early > 0 {
		i.stats.EarlyRetries++
		i.stats.MaxEarlyRetry = max(i.stats.MaxEarlyRetry, early)
	}
}

func (i *Injector) remember(id [32]byte, notBefore, now time.Time) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.notBefore) >= maxTracked {
		for k, t := range i.notBefore {
			if !t.After(now) {
				delete(i.notBefore, k)
			}
		}
		for k := range i.notBefore {
			if len(i.notBefore) < maxTracked*3/4 {
				break
			}
			delete(i.notBefore, k)
		}
	}
	i.notBefore[id] = notBefore
}

func passThrough(path string) bool {
	return strings.HasSuffix(path, sandbox.StatePath) || strings.HasSuffix(path, FaultsPath)
}

// Wrap returns h with the injector's faults in front of it.
func (i *Injector) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if passThrough(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// The client went away mid-body; nobody is left to answer.
			return
		}
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		id := requestID(r, body)
		arrived := time.Now()
		i.arrived(id, arrived)
		defer func() { i.count(func(s *Stats) { s.AnswerTime += time.Since(arrived) }) }()
		p := i.draw()

		if p.cfg.Down {
			i.count(func(s *Stats) { s.DownRefusals++ })
			sandbox.WriteJSON(w, http.StatusServiceUnavailable, errBody{"unavailable", "partner is down (injected)", 0})
			return
		}
		if p.delay > 0 {
			t := time.NewTimer(p.delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if ok, wait := i.take(time.Now()); !ok {
			i.count(func(s *Stats) { s.RateLimited++ })
			i.retryAfter(w, id, p.cfg.RetryAfterDate, wait)
			sandbox.WriteJSON(w, http.StatusTooManyRequests, errBody{"rate_limited", "too many requests (injected)", http.StatusTooManyRequests})
			return
		}
		switch u := p.outcome; {
		case u < p.cfg.ResetRate:
			i.count(func(s *Stats) { s.Resets++ })
			abort(w)
		case u < p.cfg.ResetRate+p.cfg.ErrorRate:
			i.count(func(s *Stats) { s.Errors5xx++ })
			if p.code == http.StatusServiceUnavailable {
				i.retryAfter(w, id, p.cfg.RetryAfterDate, time.Second)
			}
			sandbox.WriteJSON(w, p.code, errBody{"server_error", "injected server error", p.code})
		case u < p.cfg.ResetRate+p.cfg.ErrorRate+p.cfg.DropRate:
			h.ServeHTTP(&discard{header: make(http.Header)}, r)
			i.count(func(s *Stats) { s.Dropped++ })
			abort(w)
		default:
			i.mu.Lock()
			after := i.after
			i.mu.Unlock()
			if after == nil {
				h.ServeHTTP(&watcher{ResponseWriter: w, i: i, id: id}, r)
				i.count(func(s *Stats) { s.Passed++ })
				return
			}
			d := &discard{header: make(http.Header)}
			h.ServeHTTP(d, r)
			i.count(func(s *Stats) { s.Passed++ })
			if d.status >= 200 && d.status < 300 {
				after()
			}
			for k, v := range d.header {
				w.Header()[k] = v
			}
			w.WriteHeader(max(d.status, http.StatusOK))
			_, _ = w.Write(d.buf.Bytes())
		}
	})
}

type errBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Status  int    `json:"status,omitempty"`
}

// retryAfter sets the Retry-After header for a wait of at least d and
// remembers when the client may come back. Both forms round up to whole
// seconds, so a client that honours the header is never counted early.
func (i *Injector) retryAfter(w http.ResponseWriter, id [32]byte, asDate bool, d time.Duration) {
	now := time.Now()
	d = max(d, time.Second)
	var nb time.Time
	if asDate {
		nb = now.Add(d)
		if t := nb.Truncate(time.Second); !t.Equal(nb) {
			nb = t.Add(time.Second)
		}
		w.Header().Set("Retry-After", nb.UTC().Format(http.TimeFormat))
	} else {
		secs := int64(math.Ceil(d.Seconds()))
		nb = now.Add(time.Duration(secs) * time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	i.remember(id, nb, now)
}

// abort closes the connection without an answer. SO_LINGER 0 makes the
// close a TCP RST, which is what a crashing partner or a load balancer
// timing out looks like. Where the connection cannot be taken over
// (HTTP/2), aborting the handler makes net/http reset the stream instead.
func abort(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	c := conn
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// discard lets the inner handler commit and answer into the void.
type discard struct {
	header http.Header
	buf    bytes.Buffer
	status int
}

func (d *discard) Header() http.Header { return d.header }
func (d *discard) Flush()              {}
func (d *discard) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}

func (d *discard) Write(p []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	return d.buf.Write(p)
}

// watcher remembers a Retry-After the inner handler itself answers with a
// 429 or 5xx, so sandboxes with their own limits are watched too.
type watcher struct {
	http.ResponseWriter
	i     *Injector
	id    [32]byte
	wrote bool
}

func (w *watcher) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.wrote = true
		if code == http.StatusTooManyRequests || code >= 500 {
			if nb, ok := notBefore(w.Header().Get("Retry-After"), time.Now()); ok {
				w.i.remember(w.id, nb, time.Now())
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *watcher) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *watcher) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the real writer.
func (w *watcher) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func notBefore(v string, now time.Time) (time.Time, bool) {
	v = strings.TrimSpace(v)
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return now.Add(time.Duration(s) * time.Second), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t, true
	}
	return time.Time{}, false
}
