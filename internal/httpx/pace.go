package httpx

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// Quota is a partner's published request allowance as its rate headers
// state it (e.g. X-RateLimit-Limit/-Remaining/-Reset).
type Quota struct {
	Limit     int       // requests per window; 0 if not sent
	Remaining int       // requests left in the window
	Reset     time.Time // when the window starts over
}

// RateHeaders reads a Quota from a response's headers; ok is false when
// the answer carries none. A partner package may supply its own.
type RateHeaders func(h http.Header, now time.Time) (q Quota, ok bool)

// ParseRateHeaders reads the common X-RateLimit-Limit, -Remaining and
// -Reset (also the IETF draft's RateLimit-* spelling). Reset is taken as
// Unix seconds when it is that large, else as seconds from now: partners
// use both and the two cannot be confused (1e9 seconds is 31 years).
func ParseRateHeaders(h http.Header, now time.Time) (Quota, bool) {
	get := func(name string) string {
		if v := h.Get("X-" + name); v != "" {
			return v
		}
		return h.Get(name)
	}
	rem, err := strconv.Atoi(strings.TrimSpace(get("RateLimit-Remaining")))
	if err != nil || rem < 0 {
		return Quota{}, false
	}
	q := Quota{Remaining: rem}
	if l, err := strconv.Atoi(strings.TrimSpace(get("RateLimit-Limit"))); err == nil && l > 0 {
		q.Limit = l
	}
	r, err := strconv.ParseFloat(strings.TrimSpace(get("RateLimit-Reset")), 64)
	if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
		return Quota{}, false
	}
	if r >= 1e9 {
		q.Reset = time.Unix(0, int64(r*1e9))
	} else {
		q.Reset = now.Add(time.Duration(r * float64(time.Second)))
	}
	return q, true
}

// Pace-control tuning. The decrease is gentle enough that one partner
// hiccup does not halve a nightly run, and the increase takes about 20 s
// to win back the cut.
const (
	paceDecrease     = 0.7             // rate multiplier on a 429
	paceStepFraction = 0.05            // additive step, of the first known rate
	paceMinStep      = rate.Limit(1)   // but at least 1/s, so a low start recovers
	paceUnknown      = rate.Limit(1)   // the start when nothing was measured yet
	paceStepEvery    = time.Second     // at most one step this often
	paceFloorDivisor = 20              // never below 1/20 of the first known rate
	paceMinRate      = rate.Limit(0.1) // and never below one call in 10 s
	// quotaReserve is the share of a published quota spent at full speed
	// before the rest is spread over the time left in the window.
	quotaReserve = 0.1
	okWindow     = time.Second // window over which the success rate is measured
)

// pacer is a partner's pace control, shared by every worker of that
// partner: a token bucket whose rate follows AIMD on 429s (additive
// increase, multiplicative decrease) and is further capped by a quota the
// partner's rate headers publish. Safe for concurrent use.
type pacer struct {
	lim     *rate.Limiter
	partner string
	log     *zap.Logger

	mu       sync.Mutex
	ceiling  rate.Limit // configured rate_per_sec, Inf when unset
	aimd     rate.Limit // current 429-driven rate; Inf until the first 429 when unset
	step     rate.Limit
	floor    rate.Limit
	cutAt    time.Time // last decrease: 429s of attempts sent before it are ignored
	stepAt   time.Time
	quota    rate.Limit // from rate headers; valid until quotaEnd
	quotaEnd time.Time
	oks      []time.Time // ring of recent success times, for the measured rate
	okNext   int
	current  rate.Limit
}

func newPacer(perSec float64, burst int, partner string, log *zap.Logger) *pacer {
	p := &pacer{partner: partner, log: log, ceiling: rate.Inf, aimd: rate.Inf, quota: rate.Inf, oks: make([]time.Time, 0, 256)}
	if perSec > 0 {
		p.ceiling = rate.Limit(perSec)
		p.aimd = p.ceiling
		p.setScale(p.ceiling)
	}
	p.current = p.aimd
	p.lim = rate.NewLimiter(p.current, burst)
	return p
}

// setScale fixes the step and floor from the first known rate. Caller
// holds mu (or owns p).
func (p *pacer) setScale(r rate.Limit) {
	p.step = max(r*paceStepFraction, paceMinStep)
	p.floor = max(r/paceFloorDivisor, paceMinRate)
}

func (p *pacer) wait(ctx context.Context) error { return p.lim.Wait(ctx) }

// Rate is the current pace, math.Inf(1) when unlimited.
func (p *pacer) Rate() float64 { return float64(p.lim.Limit()) }

// observe takes one answer: sent is when its attempt went out. It never
// counts toward the breaker; that is the caller's business.
func (p *pacer) observe(sent, now time.Time, status int, h http.Header, parse RateHeaders) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h != nil && parse != nil {
		if q, ok := parse(h, now); ok {
			p.takeQuota(q, now)
		}
	}
	switch {
	case status == http.StatusTooManyRequests:
		p.tooMany(sent, now)
	case status >= 200 && status < 300:
		p.succeeded(now)
	}
	p.apply(now, statusReason(status))
}

func statusReason(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "429"
	case status >= 200 && status < 300:
		return "success"
	}
	return "headers"
}

func (p *pacer) tooMany(sent, now time.Time) {
	if sent.Before(p.cutAt) {
		return // sent at the old pace: already answered for
	}
	p.cutAt, p.stepAt = now, now
	if p.aimd == rate.Inf {
		// Unlimited until now: start from what the partner just took.
		m := p.measured(now)
		p.setScale(m)
		p.aimd = m
		return
	}
	p.aimd = max(p.aimd*paceDecrease, p.floor)
}

// measured is the success rate over the last okWindow: what the partner
// demonstrably accepted. With no success in it (a 429 at once), one call a
// second, from which the additive increase climbs.
func (p *pacer) measured(now time.Time) rate.Limit {
	n := 0
	for _, t := range p.oks {
		if now.Sub(t) < okWindow {
			n++
		}
	}
	if n == 0 {
		return paceUnknown
	}
	return rate.Limit(float64(n) / okWindow.Seconds())
}

func (p *pacer) succeeded(now time.Time) {
	if len(p.oks) < cap(p.oks) {
		p.oks = append(p.oks, now)
	} else {
		p.oks[p.okNext] = now
		p.okNext = (p.okNext + 1) % len(p.oks)
	}
	if p.aimd == rate.Inf || p.aimd >= p.ceiling || now.Sub(p.stepAt) < paceStepEvery {
		return
	}
	p.stepAt = now
	p.aimd = min(p.aimd+p.step, p.ceiling)
}

// takeQuota spends the first (1-quotaReserve) of a published quota at full
// speed and spreads the rest evenly over the time left in the window, so
// the quota lasts until its reset instead of running out into 429s. With
// nothing left the next call waits for the reset.
func (p *pacer) takeQuota(q Quota, now time.Time) {
	left := q.Reset.Sub(now)
	if left <= 0 {
		p.quota, p.quotaEnd = rate.Inf, time.Time{}
		return
	}
	reserve := int(math.Ceil(float64(q.Limit) * quotaReserve))
	if q.Limit == 0 {
		reserve = 10
	}
	if q.Remaining > reserve {
		p.quota, p.quotaEnd = rate.Inf, time.Time{}
		return
	}
	// One more second: Reset has whole-second resolution.
	left += time.Second
	p.quotaEnd = q.Reset.Add(time.Second)
	if q.Remaining == 0 {
		p.quota = rate.Limit(1 / left.Seconds())
		return
	}
	p.quota = rate.Limit(float64(q.Remaining) / left.Seconds())
}

// apply sets the limiter to the lower of the AIMD rate and a quota still
// in force. Caller holds mu.
func (p *pacer) apply(now time.Time, reason string) {
	r := p.aimd
	if p.quota != rate.Inf && now.Before(p.quotaEnd) {
		r = min(r, p.quota)
		reason = "rate headers"
	}
	if r == p.current {
		return
	}
	p.log.Debug("partner rate changed", zap.String("partner", p.partner),
		zap.String("from", rateString(p.current)), zap.String("to", rateString(r)), zap.String("reason", reason))
	p.current = r
	p.lim.SetLimitAt(now, r)
}

func rateString(r rate.Limit) string {
	if r == rate.Inf {
		return "unlimited"
	}
	return strconv.FormatFloat(float64(r), 'f', 3, 64) + "/s"
}
