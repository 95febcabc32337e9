package datafeed

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// TokenSource yields the session token sent as X-CDLX-Session-Token. The
// client's workers call Token concurrently, once per partner call.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Invalidator is a TokenSource that can start a new session when the
// partner refused a token (a 401: the published material says expiry shows
// only that way). Invalidate(tok) drops tok only if it is still the cached
// token, so fifty workers that all saw the same 401 cause one new session.
type Invalidator interface {
	TokenSource
	Invalidate(tok string)
}

// StaticToken is a fixed session token (tests, or a proxy that holds the
// session). It cannot be renewed: a 401 with it is fatal.
type StaticToken string

func (s StaticToken) Token(context.Context) (string, error) { return string(s), nil }

// StartFunc starts one session at the partner and returns its token.
type StartFunc func(ctx context.Context) (string, error)

// SessionOptions configures a Session. Zero values take the defaults noted.
type SessionOptions struct {
	Start StartFunc // required
	// Lifetime is how long a session lives when its token carries no
	// readable exp claim: "a JWT valid one hour". Default 1h.
	Lifetime time.Duration
	// RenewBefore starts a new session this long before the cached one
	// ends, so no call goes out with a token about to expire. Default 5m.
	RenewBefore time.Duration
	Now         func() time.Time // default time.Now; tests inject a clock
}

// Session caches the partner's session token, renews it before it ends
// and when a call is refused with it. It is safe for concurrent use:
// workers share one token, and at most one session start is in flight.
type Session struct {
	o   SessionOptions
	sem chan struct{} // one holder starts a session; the others wait for it

	mu  sync.Mutex
	tok string
	exp time.Time

	startsMu sync.Mutex
	starts   int
}

// NewSession validates o.
func NewSession(o SessionOptions) (*Session, error) {
	if o.Start == nil {
		return nil, errors.New("datafeed: session: no start function")
	}
	if o.Lifetime <= 0 {
		o.Lifetime = time.Hour
	}
	if o.RenewBefore <= 0 {
		o.RenewBefore = 5 * time.Minute
	}
	if o.RenewBefore >= o.Lifetime {
		return nil, fmt.Errorf("datafeed: session: renew_before %s must be shorter than the session lifetime %s", o.RenewBefore, o.Lifetime)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Session{o: o, sem: make(chan struct{}, 1)}, nil
}

// Token returns the cached token, starting a session when there is none
// or the cached one is within RenewBefore of its end.
func (s *Session) Token(ctx context.Context) (string, error) {
	if tok, ok := s.cached(); ok {
		return tok, nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.sem }()
	// Whoever held the semaphore before us may have just renewed it.
	if tok, ok := s.cached(); ok {
		return tok, nil
	}
	s.startsMu.Lock()
	s.starts++
	s.startsMu.Unlock()
	started := s.o.Now()
	tok, err := s.o.Start(ctx)
	if err != nil {
		return "", err
	}
	exp := started.Add(s.o.Lifetime)
	if e, ok := jwtExpiry(tok); ok && e.Before(exp) {
		exp = e
	}
	s.mu.Lock()
	s.tok, s.exp = tok, exp
	s.mu.Unlock()
	return tok, nil
}

func (s *Session) cached() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == "" || !s.o.Now().Before(s.exp.Add(-s.o.RenewBefore)) {
		return "", false
	}
	return s.tok, true
}

// Invalidate forgets tok if it is still the cached token.
func (s *Session) Invalidate(tok string) {
	s.mu.Lock()
	if s.tok == tok {
		s.tok = ""
	}
	s.mu.Unlock()
}

// Starts is how many sessions have been started (tests, metrics).
func (s *Session) Starts() int {
	s.startsMu.Lock()
	defer s.startsMu.Unlock()
	return s.starts
}

// jwtExpiry reads the exp claim of a JWT without verifying it: the token
// is the partner's to check; we only want to renew before it ends.
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil {
		return time.Time{}, false
	}
	n, err := c.Exp.Int64()
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}
