// Package httpx is the HTTP plumbing every partner client shares: typed
// errors, pace control (a token bucket whose rate follows AIMD on 429s and
// the partner's rate headers), retries with capped full-jitter backoff that
// honour Retry-After up to a cap, a retry budget, a circuit breaker
// (sony/gobreaker) and per-attempt timeouts. Partner packages add their own
// auth, paths and error bodies.
package httpx

import (
	"errors"
	"fmt"
)

// Kind tells the caller what to do with an error.
type Kind int

const (
	// Retryable: the call did not take effect (5xx, 429, refused
	// connection); trying again later is safe.
	Retryable Kind = iota + 1
	// Rejected: the partner refused the content (4xx other than auth);
	// trying again with the same content will fail the same way.
	Rejected
	// Fatal: nothing will work until an operator acts (bad credentials,
	// forbidden): stop the partner at once.
	Fatal
	// Uncertain: the request may have reached the partner but the answer
	// was lost (timeout, reset after send). Only an idempotent resend or a
	// lookup can settle it.
	Uncertain
	// Unavailable: the breaker is open or the retry budget is spent; the
	// call was not made.
	Unavailable
)

func (k Kind) String() string {
	switch k {
	case Retryable:
		return "retryable"
	case Rejected:
		return "rejected"
	case Fatal:
		return "fatal"
	case Uncertain:
		return "uncertain"
	case Unavailable:
		return "unavailable"
	}
	return "unknown"
}

// Error is a failed partner call. Message is the partner's own text (kept
// in the ledger for rejects); partner packages must make sure it cannot
// echo card data back.
type Error struct {
	Partner string
	Op      string // e.g. "POST /v2/data/customers"
	Kind    Kind
	Status  int    // HTTP status, 0 when there was no response
	Code    string // partner error code, or a short code of ours
	Message string
	Err     error // underlying transport error, if any
	// Attempts is how many times Client.Do sent the request before it
	// gave up (0 when none left: breaker open, cancelled before sending).
	// The ledger records it; it is not part of Error().
	Attempts int
}

func (e *Error) Error() string {
	s := e.Partner + ": " + e.Op + ": " + e.Kind.String()
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err, or 0 if err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// AttemptsOf returns how many attempts the *Error in err records, or 0.
func AttemptsOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Attempts
	}
	return 0
}

// StatusOf returns the HTTP status carried by err, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// CodeOf returns the partner or local error code carried by err.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
