// Package sandbox holds what every partner sandbox shares: auth checks,
// JSON answers, a clock tests can advance, and the state endpoint. Each
// partner's own behaviour lives in its provider package.
package sandbox

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// StatePath is where every sandbox shows its state as JSON, relative to
// the sandbox's root.
const StatePath = "/_sandbox/state"

// HandleState serves state() as JSON at StatePath on mux.
func HandleState[T any](mux *http.ServeMux, state func() T) {
	mux.HandleFunc("GET "+StatePath, func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, state())
	})
}

// Clock is the sandbox's notion of now; tests advance it to expire tokens.
type Clock interface{ Now() time.Time }

// RealClock is time.Now.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

// FakeClock is a settable clock for tests.
type FakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{t: t} }

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// WriteJSON answers with status and v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	WriteJSONType(w, "application/json", status, v)
}

// WriteJSONType answers with a given content type (e.g. problem+json).
func WriteJSONType(w http.ResponseWriter, ctype string, status int, v any) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// BearerOK reports whether r carries "Authorization: Bearer <token>".
func BearerOK(r *http.Request, token string) bool {
	h := r.Header.Get("Authorization")
	got, ok := strings.CutPrefix(h, "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// BasicOK reports whether r carries the given Basic credentials.
func BasicOK(r *http.Request, user, pass string) bool {
	u, p, ok := r.BasicAuth()
	return ok && user != "" &&
		subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1 &&
		subtle.ConstantTimeCompare([]byte(p), []byte(pass)) == 1
}

// DecodeStrict decodes a JSON body, refusing unknown fields and trailing
// data, the way a strict partner validator would.
func DecodeStrict(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errTrailing
	}
	return nil
}

type sbErr string

func (e sbErr) Error() string { return string(e) }

const errTrailing = sbErr("trailing data after JSON body")
