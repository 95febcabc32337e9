package load_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/partner"
)

// With more workers than request slots (the command runs four a slot),
// the workers queued at the partner's slots when it answers 401 send
// nothing: the engine stops the lane's client (httpx.WithStop), so the
// partner sees the fatal request and at most one more per slot (taken
// between the 401 coming back and the engine recording it), not one more
// per queued worker.
func TestFatalAnswerStopsTheCallsQueuedAtTheSlots(t *testing.T) {
	const slots = 2
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	hc, err := httpx.New(httpx.Config{Partner: "fake", BaseURL: srv.URL, Concurrency: slots}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &fake{send: func(ctx context.Context, ops []partner.Op, _ partner.Journal) []partner.Result {
		out := make([]partner.Result, len(ops))
		for i, op := range ops {
			_, err := hc.Do(ctx, httpx.Request{Method: "PUT", Path: "/c/" + op.CustomerID, Body: []byte("{}"), Idempotent: true})
			out[i] = partner.FailureResult(op, err, httpx.AttemptsOf(err))
		}
		return out
	}}
	r := newFakeRig(t, p)
	r.with(t, load.WithWorkers(map[string]int{"fake": 16}))
	sum := r.run(t, makeCustomers(200))
	if n := hits.Load(); n > 1+slots {
		t.Errorf("the partner saw %d requests for a run whose first answer was 401, want at most %d", n, 1+slots)
	}
	if !strings.Contains(sum.Stopped["fake"], "fatal") && sum.Stopped["fake"] == "" {
		t.Errorf("the partner was not stopped: %+v", sum.Stopped)
	}
	if c := sum.Providers["fake"]; c.OK != 0 {
		t.Errorf("counts %+v: none can be ok", c)
	}
}
