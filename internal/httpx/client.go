package httpx

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Config tunes one partner's client. Zero values take the defaults noted.
type Config struct {
	Partner string // name used in errors
	BaseURL string // e.g. https://api-sandbox.synctera.com/v0

	Timeout     time.Duration // per attempt; default 30s
	RatePerSec  float64       // token bucket; 0 = unlimited
	Burst       int           // default 1 (or the concurrency)
	MaxAttempts int           // including the first; default 5
	BackoffBase time.Duration // default 200ms
	BackoffMax  time.Duration // default 30s
	// RetryBudget caps retries to this fraction of first attempts (plus
	// MinRetries), so that an outage does not turn into a retry storm.
	RetryBudget float64 // default 0.2
	MinRetries  int     // default 20
	// The breaker opens after BreakerFailures consecutive failed attempts
	// and lets one probe through after BreakerCooldown.
	BreakerFailures int           // default 10
	BreakerCooldown time.Duration // default 30s

	// Sign adds authentication to each attempt (Bearer, Basic, or a
	// request-signing scheme). It must not log what it adds.
	Sign func(*http.Request) error

	Transport http.RoundTripper // default: a tuned http.Transport
	// Observe, if set, sees every attempt (for metrics). status is 0 when
	// there was no response.
	Observe func(op string, status int, d time.Duration, retry bool)
	// Sleep is replaceable in tests; default waits on a timer or ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	Rand  *rand.Rand
	// Classify, if set, may override the Kind a non-2xx answer gets from
	// its status (return 0 to keep it): e.g. a partner that reports
	// validation failures as 500 with details.
	Classify func(status int, body []byte) Kind
	// BreakerChange, if set, hears every breaker state change (metrics).
	BreakerChange func(partner string, s BreakerState)
}

// Request is one logical call; Do may make several attempts of it.
type Request struct {
	Method string
	Path   string // appended to BaseURL
	Query  url.Values
	Header http.Header
	Body   []byte
	// Idempotent says a resend cannot duplicate the effect (a GET, a PUT,
	// a call with an idempotency key, or a partner that dedups by a key in
	// the body). Only idempotent requests are retried once they may have
	// reached the partner.
	Idempotent bool
}

// Response is a 2xx answer.
type Response struct {
	Status   int
	Header   http.Header
	Body     []byte
	Attempts int
}

// Decoder turns a non-2xx body into the partner's code and message.
type Decoder func(status int, body []byte) (code, message string)

// Client is safe for concurrent use.
type Client struct {
	cfg     Config
	http    *http.Client
	base    *url.URL
	limiter *rate.Limiter
	maxRate rate.Limit
	okRun   atomic.Int64
	budget  *budget
	breaker *Breaker
	rmu     sync.Mutex
	decode  Decoder
}

// New validates cfg early so a bad base URL is a config error, not a
// failure on the first record.
func New(cfg Config, decode Decoder) (*Client, error) {
	if cfg.Partner == "" {
		return nil, errors.New("httpx: partner name is required")
	}
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New(cfg.Partner + ": base URL must be an absolute http(s) URL")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Timeout, 30*time.Second)
	def(&cfg.BackoffBase, 200*time.Millisecond)
	def(&cfg.BackoffMax, 30*time.Second)
	def(&cfg.BreakerCooldown, 30*time.Second)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.RetryBudget <= 0 {
		cfg.RetryBudget = 0.2
	}
	if cfg.MinRetries <= 0 {
		cfg.MinRetries = 20
	}
	if cfg.BreakerFailures <= 0 {
		cfg.BreakerFailures = 10
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 1
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if cfg.Transport == nil {
		cfg.Transport = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
		}
	}
	if decode == nil {
		decode = func(int, []byte) (string, string) { return "", "" }
	}
	lim := rate.Inf
	if cfg.RatePerSec > 0 {
		lim = rate.Limit(cfg.RatePerSec)
	}
	return &Client{
		cfg:     cfg,
		http:    &http.Client{Transport: cfg.Transport},
		base:    u,
		limiter: rate.NewLimiter(lim, cfg.Burst),
		maxRate: lim,
		budget:  &budget{ratio: cfg.RetryBudget, tokens: float64(cfg.MinRetries), max: float64(cfg.MinRetries) * 10},
		breaker: newBreaker(cfg.BreakerFailures, cfg.BreakerCooldown, cfg.Partner, cfg.BreakerChange),
		decode:  decode,
	}, nil
}

// Breaker exposes the breaker state (for metrics and tests).
func (c *Client) Breaker() *Breaker { return c.breaker }

// Partner is the partner name the client was built for.
func (c *Client) Partner() string { return c.cfg.Partner }

// Do sends req, retrying what is safe, and returns the 2xx response or an
// *Error whose Kind says what the caller should do.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	op := req.Method + " " + req.Path
	c.budget.deposit()
	var last *Error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, c.fail(op, Retryable, 0, "cancelled", err)
		}
		if !c.breaker.Allow() {
			return nil, &Error{Partner: c.cfg.Partner, Op: op, Kind: Unavailable, Code: "breaker_open", Message: "circuit breaker open: partner failing, left for the rerun"}
		}
		if err := c.limiter.Wait(ctx); err != nil {
			return nil, c.fail(op, Retryable, 0, "cancelled", err)
		}
		start := time.Now()
		resp, err := c.attempt(ctx, req)
		status := 0
		if resp != nil {
			status = resp.Status
		}
		if c.cfg.Observe != nil {
			c.cfg.Observe(op, status, time.Since(start), attempt > 1)
		}
		if err == nil {
			c.breaker.Success()
			c.speedUp()
			resp.Attempts = attempt
			return resp, nil
		}
		e := err.(*Error)
		e.Op = op
		last = e
		var wait time.Duration
		switch e.Kind {
		case Retryable:
			c.breaker.Failure()
			if e.Status == http.StatusTooManyRequests {
				c.slowDown()
			}
		case Uncertain:
			c.breaker.Failure()
			if !req.Idempotent {
				return nil, e
			}
		default: // Rejected, Fatal: a resend cannot help
			if e.Kind == Fatal {
				c.breaker.Success() // the partner is up; our credentials are not
			}
			return nil, e
		}
		if attempt >= c.cfg.MaxAttempts {
			return nil, last
		}
		if ctx.Err() != nil {
			return nil, last
		}
		if !c.budget.withdraw() {
			last.Message = strings.TrimSpace(last.Message + " (retry budget spent)")
			return nil, last
		}
		wait = c.backoff(attempt)
		if ra := retryAfter(e); ra > wait {
			wait = ra // never sooner than the partner asked
		}
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return nil, last
		}
	}
}

// retryAfterErr carries a parsed Retry-After through *Error.Err.
type retryAfterErr struct{ d time.Duration }

func (r retryAfterErr) Error() string { return "retry after " + r.d.String() }

func retryAfter(e *Error) time.Duration {
	var ra retryAfterErr
	if errors.As(e.Err, &ra) {
		return ra.d
	}
	return 0
}

func (c *Client) attempt(ctx context.Context, req Request) (*Response, error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := *c.base
	u.Path = c.base.Path + req.Path
	if len(req.Query) > 0 {
		u.RawQuery = req.Query.Encode()
	}
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(actx, req.Method, u.String(), body)
	if err != nil {
		return nil, &Error{Partner: c.cfg.Partner, Kind: Fatal, Code: "bad_request", Message: "cannot build request"}
	}
	for k, vs := range req.Header {
		hr.Header[k] = vs
	}
	if req.Body != nil && hr.Header.Get("Content-Type") == "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if hr.Header.Get("Accept") == "" {
		hr.Header.Set("Accept", "application/json")
	}
	if c.cfg.Sign != nil {
		if err := c.cfg.Sign(hr); err != nil {
			return nil, &Error{Partner: c.cfg.Partner, Kind: Fatal, Code: "sign", Message: "cannot sign request", Err: err}
		}
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		// The partner answered a status but the body was cut: for a 2xx the
		// change happened and we lost its id.
		return nil, &Error{Partner: c.cfg.Partner, Kind: Uncertain, Status: resp.StatusCode, Code: "body_lost", Message: "response body lost", Err: redactURL(err)}
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return out, nil
	}
	code, msg := c.decode(resp.StatusCode, data)
	e := &Error{Partner: c.cfg.Partner, Status: resp.StatusCode, Code: code, Message: msg}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		e.Kind = Retryable
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			e.Err = retryAfterErr{d}
		}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.Kind = Fatal
	case resp.StatusCode == http.StatusRequestTimeout:
		e.Kind = Uncertain
	case resp.StatusCode >= 500:
		e.Kind = Retryable
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			e.Err = retryAfterErr{d}
		}
	default:
		e.Kind = Rejected
	}
	if c.cfg.Classify != nil {
		if k := c.cfg.Classify(resp.StatusCode, data); k != 0 {
			e.Kind = k
		}
	}
	return out, e
}

// transportError decides whether a failed round trip may have reached the
// partner. Only a failure to connect is known not to have.
func (c *Client) transportError(ctx context.Context, err error) *Error {
	e := &Error{Partner: c.cfg.Partner, Err: redactURL(err)}
	var op *net.OpError
	switch {
	case ctx.Err() != nil:
		e.Kind, e.Code, e.Message = Uncertain, "cancelled", "cancelled while the call was in flight"
	case errors.As(err, &op) && op.Op == "dial":
		e.Kind, e.Code, e.Message = Retryable, "connect", "cannot connect"
	case errors.Is(err, context.DeadlineExceeded):
		e.Kind, e.Code, e.Message = Uncertain, "timeout", "no answer within the call timeout"
	default:
		e.Kind, e.Code, e.Message = Uncertain, "connection", "connection lost before the answer"
	}
	return e
}

// redactURL drops the URL from *url.Error, which would otherwise carry
// query parameters such as ClubReady's ApiKey into logs.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New(ue.Op + ": " + ue.Err.Error())
	}
	return err
}

func (c *Client) fail(op string, k Kind, status int, code string, err error) *Error {
	return &Error{Partner: c.cfg.Partner, Op: op, Kind: k, Status: status, Code: code, Err: err}
}

// backoff is capped exponential with full jitter (AWS architecture blog):
// uniform in [0, min(cap, base*2^attempt)).
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.BackoffBase << min(attempt-1, 20)
	if d > c.cfg.BackoffMax || d <= 0 {
		d = c.cfg.BackoffMax
	}
	c.rmu.Lock()
	j := time.Duration(c.cfg.Rand.Int64N(int64(d) + 1))
	c.rmu.Unlock()
	return j
}

// slowDown cuts the rate by 30% on a 429 (multiplicative decrease).
func (c *Client) slowDown() {
	c.okRun.Store(0)
	cur := c.limiter.Limit()
	if cur == rate.Inf {
		return
	}
	n := cur * 0.7
	if floor := c.maxRate / 20; n < floor {
		n = floor
	}
	c.limiter.SetLimit(n)
}

// speedUp restores 5% of the configured rate after a run of successes
// (additive increase), never past the configured rate.
func (c *Client) speedUp() {
	if c.okRun.Add(1)%50 != 0 {
		return
	}
	cur := c.limiter.Limit()
	if cur == rate.Inf || cur >= c.maxRate {
		return
	}
	n := cur + c.maxRate*0.05
	if n > c.maxRate {
		n = c.maxRate
	}
	c.limiter.SetLimit(n)
}

// ParseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 10.2.3).
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		// HTTP dates have whole-second resolution: round up so we are
		// never early.
		return d.Truncate(time.Second) + time.Second, true
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// budget is a token bucket for retries: each first attempt deposits
// ratio tokens, each retry withdraws one.
type budget struct {
	mu     sync.Mutex
	ratio  float64
	tokens float64
	max    float64
}

func (b *budget) deposit() {
	b.mu.Lock()
	b.tokens = min(b.max, b.tokens+b.ratio)
	b.mu.Unlock()
}

func (b *budget) withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
