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
	"time"

	"go.uber.org/zap"
)

// Config tunes one partner's client. Zero values take the defaults noted.
type Config struct {
	Partner string // name used in errors
	BaseURL string // e.g. https://api-sandbox.synctera.com/v0

	Timeout time.Duration // per attempt; default 30s
	// RatePerSec is the ceiling of the partner's pace; 0 = unlimited until
	// the first 429, which drops to the measured rate. Either way 429s
	// lower the pace (AIMD) and successes raise it back.
	RatePerSec float64
	Burst      int // default 1 (or the concurrency)
	// Concurrency is how many requests may be in flight to the partner
	// at once (default DefaultConcurrency); an attempt holds
	// a slot only while it waits for its rate token and is on the wire.
	// With MaxConcurrency above it, the limit grows one slot at a time
	// while latency stays flat and comes back down when latency rises,
	// the partner answers 429 or fails a quarter of its attempts (Slots).
	Concurrency    int
	MaxConcurrency int // default Concurrency: no growth
	// Slots, if set, is the in-flight bound shared with the partner's
	// other clients (ClubReady's vault and import API); Concurrency and
	// MaxConcurrency are then its own.
	Slots       *Slots
	MaxAttempts int           // including the first; default 5
	BackoffBase time.Duration // default 200ms
	BackoffMax  time.Duration // default 30s
	// RetryBudget caps retries to this fraction of first attempts (plus
	// MinRetries), so that an outage does not turn into a retry storm.
	RetryBudget float64 // default 0.2
	MinRetries  int     // default 20
	// The breaker opens after BreakerFailures consecutive failed attempts
	// (5xx, refused connections, lost answers; never 429s, 4xx or our own
	// cancellations) and lets one probe through after BreakerCooldown.
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

	// RetryAfterMax caps how long a Retry-After may park a worker: beyond
	// it the call fails as retryable (code retry_after_too_long) and the
	// rerun sends it. Default 5 minutes.
	RetryAfterMax time.Duration
	// RateHeaders reads the partner's published quota from each answer's
	// headers, so the client slows before the quota runs out. Default
	// ParseRateHeaders (X-RateLimit-Limit/-Remaining/-Reset); a partner
	// package with other headers supplies its own.
	RateHeaders RateHeaders
	// Detail, if set, turns a non-2xx body into a structured error kept
	// in Error.Err, so callers find it with errors.As (e.g. per-field
	// validation errors). It must not keep card data.
	Detail func(status int, body []byte) error
	// Logger, if set, gets debug events for every retry (partner, op as
	// method and path, attempt, status, code, wait), breaker transition and
	// rate change. Never the URL query, a header or a body.
	Logger *zap.Logger
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
	pace    *pacer
	budget  *budget
	breaker *Breaker
	slots   *Slots
	rmu     sync.Mutex
	decode  Decoder
	log     *zap.Logger
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
	def(&cfg.RetryAfterMax, 5*time.Minute)
	if cfg.RateHeaders == nil {
		cfg.RateHeaders = ParseRateHeaders
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
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
	cfg.Slots = SlotsFor(cfg)
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
	return &Client{
		cfg:     cfg,
		http:    &http.Client{Transport: cfg.Transport},
		base:    u,
		pace:    newPacer(cfg.RatePerSec, cfg.Burst, cfg.Partner, cfg.Logger),
		budget:  &budget{ratio: cfg.RetryBudget, tokens: float64(cfg.MinRetries), max: float64(cfg.MinRetries) * 10},
		breaker: newBreaker(cfg.BreakerFailures, cfg.BreakerCooldown, cfg.Partner, cfg.BreakerChange, cfg.Logger),
		slots:   cfg.Slots,
		decode:  decode,
		log:     cfg.Logger,
	}, nil
}

// Rate is the partner's current pace in requests per second, +Inf when
// unlimited (metrics and tests).
func (c *Client) Rate() float64 { return c.pace.Rate() }

// SlotsFor is cfg.Slots, or new slots from cfg's Concurrency and
// MaxConcurrency with their defaults: what New uses, and what a partner
// with several clients (ClubReady's vault and import API) builds once and
// gives each of them.
func SlotsFor(cfg Config) *Slots {
	if cfg.Slots != nil {
		return cfg.Slots
	}
	c := cfg.Concurrency
	if c <= 0 {
		c = DefaultConcurrency
	}
	return NewSlots(c, max(cfg.MaxConcurrency, c), cfg.Partner, cfg.Logger)
}

// DefaultConcurrency is the requests in flight to a partner when its
// config sets none: config.DefaultConcurrency, repeated here because
// httpx does not know the config.
const DefaultConcurrency = 8

// Concurrency is the current limit of requests in flight.
func (c *Client) Concurrency() int { return c.slots.Limit() }

// Breaker exposes the breaker state (for metrics and tests).
func (c *Client) Breaker() *Breaker { return c.breaker }

// Partner is the partner name the client was built for.
func (c *Client) Partner() string { return c.cfg.Partner }

// Do sends req, retrying what is safe, and returns the 2xx response or an
// *Error whose Kind says what the caller should do.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	op := req.Method + " " + req.Path
	c.budget.deposit()
	sent := 0 // attempts that went out (the ledger records it)
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			e := c.fail(op, Retryable, 0, "cancelled", err)
			e.Attempts = sent
			return nil, e
		}
		resp, e := c.try(ctx, req, op, attempt)
		if e == nil {
			resp.Attempts = attempt
			return resp, nil
		}
		if e.Code != "breaker_open" && e.Code != "partner_stopped" && !(e.Code == "cancelled" && e.Status == 0 && e.Kind == Retryable) {
			sent++
		}
		e.Attempts = sent
		switch e.Kind {
		case Retryable:
			if _, later := retryAfter(e); !req.Idempotent && e.Status >= 500 && !later {
				// The partner (or a gateway in front of it that gave up
				// waiting) answered: the request may have run before the
				// failure, and resending a non-idempotent one could repeat
				// its effect. A 5xx with Retry-After is the service
				// refusing the work for now, and is waited for and resent.
				e.Kind = Uncertain
				return nil, e
			}
		case Uncertain:
			if !req.Idempotent {
				return nil, e
			}
		default: // Rejected, Fatal, Unavailable: a resend cannot help now
			return nil, e
		}
		// A pace wait that cannot finish before the deadline fails with
		// ctx still live: resending cannot help either.
		if attempt >= c.cfg.MaxAttempts || ctx.Err() != nil || e.Code == "cancelled" {
			return nil, e
		}
		wait := c.backoff(attempt)
		if ra, ok := retryAfter(e); ok {
			if ra > c.cfg.RetryAfterMax {
				return nil, &Error{Partner: c.cfg.Partner, Op: op, Kind: Retryable, Status: e.Status, Code: "retry_after_too_long",
					Message:  "the partner asked to wait " + ra.String() + ", beyond retry_after_max " + c.cfg.RetryAfterMax.String() + ": left for the rerun",
					Err:      e,
					Attempts: sent}
			}
			wait = max(wait, ra) // never sooner than the partner asked
		}
		// A 429 retry waits for the pacer, which is the backpressure, so
		// it cannot become a storm: it does not draw on the retry budget.
		if e.Status != http.StatusTooManyRequests && !c.budget.withdraw() {
			e.Message = strings.TrimSpace(e.Message + " (retry budget spent)")
			return nil, e
		}
		c.log.Debug("partner call retried", zap.String("partner", c.cfg.Partner), zap.String("op", op),
			zap.Int("attempt", attempt), zap.Int("status", e.Status), zap.String("code", e.Code), zap.Duration("wait", wait))
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return nil, e
		}
	}
}

// try makes one attempt through the breaker and the pacer. Every path
// after the breaker admits the attempt reports a verdict, so a half-open
// probe can never stick.
func (c *Client) try(ctx context.Context, req Request, op string, attempt int) (*Response, *Error) {
	// The slot first, then the breaker: a caller that waited for a slot
	// while the breaker opened must hear so before it sends, and a
	// half-open probe is not admitted until it can go out.
	if e := c.takeSlot(ctx, op); e != nil {
		return nil, e
	}
	done, ok := c.breaker.Admit()
	if !ok {
		c.slots.release(0, ours)
		return nil, &Error{Partner: c.cfg.Partner, Op: op, Kind: Unavailable, Code: "breaker_open", Message: "circuit breaker open: partner failing, left for the rerun"}
	}
	verdict := NoVerdict
	var lat time.Duration
	outcome := ours
	defer func() {
		// The breaker hears the verdict before the slot is free: the
		// caller that takes the slot next asks a breaker that knows.
		done(verdict)
		c.slots.release(lat, outcome)
	}()
	// The slot is held through the rate wait: a token taken first and a
	// slot waited for after would let the tokens bunch up into a burst.
	if err := c.pace.wait(ctx); err != nil {
		return nil, c.fail(op, Retryable, 0, "cancelled", err)
	}
	start := time.Now()
	resp, err := c.attempt(ctx, req)
	status := 0
	var header http.Header
	if resp != nil {
		status, header = resp.Status, resp.Header
	}
	now := time.Now()
	lat, outcome = now.Sub(start), slotOutcome(ctx, status, err)
	if c.cfg.Observe != nil {
		c.cfg.Observe(op, status, now.Sub(start), attempt > 1)
	}
	c.pace.observe(start, now, status, header, c.cfg.RateHeaders)
	if err == nil {
		verdict = PartnerUp
		return resp, nil
	}
	e := err.(*Error)
	e.Op = op
	verdict = verdictOf(e)
	return nil, e
}

type stopKey struct{}

// WithStop returns ctx carrying stop: once stop is done, calls made with
// the returned context send no further attempt (one waiting for a slot
// gives up) and fail Unavailable with code partner_stopped, nothing sent.
// The engine stops a partner's lane this way when the partner answers
// fatally (bad credentials), so that the callers queued at its slots do
// not each send one more request. Attempts already on the wire finish.
func WithStop(ctx, stop context.Context) context.Context {
	return context.WithValue(ctx, stopKey{}, stop)
}

// takeSlot waits for one of the partner's slots, or for ctx or the stop
// of WithStop.
func (c *Client) takeSlot(ctx context.Context, op string) *Error {
	stop, _ := ctx.Value(stopKey{}).(context.Context)
	wait := ctx
	if stop != nil {
		var cancel context.CancelFunc
		wait, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(stop, cancel)()
	}
	err := c.slots.acquire(wait)
	if err == nil && (stop == nil || stop.Err() == nil) {
		return nil
	}
	if err == nil {
		c.slots.release(0, ours)
	}
	if stop != nil && stop.Err() != nil && ctx.Err() == nil {
		return &Error{Partner: c.cfg.Partner, Op: op, Kind: Unavailable, Code: "partner_stopped",
			Message: "the partner was stopped for this run (a fatal answer): not sent, left for the rerun"}
	}
	return c.fail(op, Retryable, 0, "cancelled", err)
}

// slotOutcome is what an attempt tells the in-flight limit: its status,
// noAnswer when the partner did not answer, ours when we gave up or
// never sent it.
func slotOutcome(ctx context.Context, status int, err error) int {
	if status > 0 || err == nil {
		return status
	}
	var e *Error
	if ctx.Err() != nil || (errors.As(err, &e) && (e.Code == "cancelled" || e.Code == "sign" || e.Code == "bad_request")) {
		return ours
	}
	return noAnswer
}

// verdictOf says what a failed attempt tells the breaker. A 429 is the
// pacer's business, never the breaker's.
func verdictOf(e *Error) Verdict {
	switch {
	case e.Status == http.StatusTooManyRequests:
		return NoVerdict
	case e.Code == "cancelled" || e.Code == "sign" || e.Code == "bad_request":
		return NoVerdict // ours, not the partner's
	case e.Kind == Rejected || e.Kind == Fatal:
		return PartnerUp // it answered, about our request or credentials
	}
	return PartnerDown
}

// retryAfterErr carries a parsed Retry-After through *Error.Err.
type retryAfterErr struct{ d time.Duration }

func (r retryAfterErr) Error() string { return "retry after " + r.d.String() }

func retryAfter(e *Error) (time.Duration, bool) {
	var ra retryAfterErr
	if errors.As(e.Err, &ra) {
		return ra.d, true
	}
	return 0, false
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
	if c.cfg.Detail != nil {
		if d := c.cfg.Detail(resp.StatusCode, data); d != nil {
			e.Err = errors.Join(e.Err, d)
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
// query parameters such as ClubReady's ApiKey into logs. It keeps the
// transport's error reachable (errors.Is(err, context.DeadlineExceeded),
// errors.As(err, &netErr)); the *url.Error itself is not, as its URL
// field is the secret.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &transportError{op: ue.Op, err: ue.Err}
	}
	return err
}

// transportError is a *url.Error without its URL.
type transportError struct {
	op  string
	err error
}

func (e *transportError) Error() string { return e.op + ": " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

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
