package httpx_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/northwind-data/etl/internal/httpx"
)

// TestReview_NonIdempotent5xxIsNotResent: Request.Idempotent promises
// that only idempotent requests are retried once they may have reached
// the partner, and a 5xx answer is one that reached it (or a gateway in
// front of it that gave up waiting). A non-idempotent request that meets
// a 5xx is sent once and comes back Uncertain; an idempotent one is
// retried as before.
func TestReview_NonIdempotent5xxIsNotResent(t *testing.T) {
	for _, idem := range []bool{false, true} {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(http.StatusGatewayTimeout)
		}))
		c := newClient(t, srv.URL, func(cfg *httpx.Config) { cfg.MaxAttempts = 3 })
		_, err := c.Do(context.Background(), httpx.Request{Method: http.MethodPost, Path: "/x", Body: []byte(`{}`), Idempotent: idem})
		srv.Close()
		want, kind := int32(1), httpx.Uncertain
		if idem {
			want, kind = 3, httpx.Retryable
		}
		if calls.Load() != want || httpx.KindOf(err) != kind {
			t.Errorf("idempotent=%v: %d calls, kind %v (%v); want %d calls, %v", idem, calls.Load(), httpx.KindOf(err), err, want, kind)
		}
	}
}
