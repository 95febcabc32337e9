package providertest

// Helpers the partners' own tests share: a recorder between client and
// sandbox, a raw HTTP call for asking a sandbox what the client never
// would, bounded waits on channels, and the small must-helpers. They were
// copied into every partner's testutil_test.go before; a partner keeps
// only what is its own (its customers, its sandbox construction).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/sandbox"
)

// Exchange is one request a Recorder passed on, with the answer it got.
type Exchange struct {
	Method, Path, Query string // Query is the raw query
	Header              http.Header
	Body                []byte // the request's body
	Status              int
	Resp                []byte // the answer's body
}

// Params is the exchange's query, parsed.
func (e Exchange) Params() url.Values {
	v, _ := url.ParseQuery(e.Query)
	return v
}

// Recorder forwards every request to its handler and keeps the exchange,
// in the order the requests arrived. It buffers the answer (so a handler
// that hijacks the connection cannot sit behind it). It is safe for
// concurrent requests and for reading while they run; an exchange still
// being served has Status 0 and no Resp.
type Recorder struct {
	h  http.Handler
	mu sync.Mutex
	ex []Exchange
}

// NewRecorder records the requests served by h.
func NewRecorder(h http.Handler) *Recorder { return &Recorder{h: h} }

func (r *Recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	i := len(r.ex)
	r.ex = append(r.ex, Exchange{Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery, Header: req.Header.Clone(), Body: body})
	r.mu.Unlock()
	rw := httptest.NewRecorder()
	r.h.ServeHTTP(rw, req)
	r.mu.Lock()
	r.ex[i].Status, r.ex[i].Resp = rw.Code, rw.Body.Bytes()
	r.mu.Unlock()
	for k, v := range rw.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rw.Code)
	_, _ = w.Write(rw.Body.Bytes())
}

// Mark is the number of exchanges so far, for Since and Calls.
func (r *Recorder) Mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ex)
}

// All is a copy of every exchange so far, in the order they arrived.
func (r *Recorder) All() []Exchange { return r.Since(0) }

// Since is a copy of the exchanges after mark.
func (r *Recorder) Since(mark int) []Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Exchange(nil), r.ex[mark:]...)
}

// Calls lists "METHOD path" of every exchange after mark.
func (r *Recorder) Calls(mark int) []string {
	var out []string
	for _, e := range r.Since(mark) {
		out = append(out, e.Method+" "+e.Path)
	}
	return out
}

// ByPath is the exchanges to path, in order.
func (r *Recorder) ByPath(path string) []Exchange {
	var out []Exchange
	for _, e := range r.All() {
		if e.Path == path {
			out = append(out, e)
		}
	}
	return out
}

// Last is the latest exchange with method ("" for any); the zero Exchange
// when there is none.
func (r *Recorder) Last(method string) Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.ex) - 1; i >= 0; i-- {
		if method == "" || r.ex[i].Method == method {
			return r.ex[i]
		}
	}
	return Exchange{}
}

// Reply is one raw HTTP answer.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// RawCall sends one request over http.DefaultClient and reads the whole
// answer. body is nil (none), a string or []byte (sent as is) or any other
// value (sent as its JSON). hdr is set on the request as given, nothing
// else is added: a test of a missing header sends none. It does not touch
// a testing.T, so goroutines other than the test's may call it.
func RawCall(method, url string, hdr map[string]string, body any) (Reply, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		if b != nil {
			rd = bytes.NewReader(b)
		}
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return Reply{}, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return Reply{}, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return Reply{Status: resp.StatusCode, Header: resp.Header, Body: out}, err
}

// Call is RawCall that fails the test on a transport error; only the
// test's goroutine may call it.
func Call(t testing.TB, method, url string, hdr map[string]string, body any) Reply {
	t.Helper()
	r, err := RawCall(method, url, hdr, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Patience is how long WaitFor and Recv wait before failing the test: long
// enough never to fail a passing test on a loaded machine, short enough
// that a hang is reported instead of hitting the test binary's timeout.
const Patience = 10 * time.Second

// WaitFor fails the test instead of hanging when ch is not closed (or sent
// on) within Patience; what names the awaited event in the failure.
func WaitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(Patience):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// Recv is the next value from ch, failing the test instead of hanging
// when none arrives within Patience.
func Recv[T any](t testing.TB, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(Patience):
		t.Fatal("timed out waiting for a result")
	}
	var zero T
	return zero
}

// MustJSON is v's JSON, failing the test if v does not marshal.
func MustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ReadFile is the file's content, failing the test if it cannot be read.
func ReadFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Serve serves h over loopback until the test ends and returns its URL.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// FastHTTP is the HTTP config of clients under test: real retries with a
// back-off of milliseconds, so retry tests take no wall time.
func FastHTTP() httpx.Config {
	return httpx.Config{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, MaxAttempts: 3, Timeout: 5 * time.Second}
}

// Sender is the part of partner.Provider that SendOne calls.
type Sender interface {
	Send(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result
}

// SendOne sends op alone through p with journal j (nil for none) and
// returns its result, failing the test unless there is exactly one and
// it names op's entity key.
func SendOne(t testing.TB, p Sender, op partner.Op, j partner.Journal) partner.Result {
	t.Helper()
	res := p.Send(context.Background(), []partner.Op{op}, j)
	if len(res) != 1 {
		t.Fatalf("%d results for one op", len(res))
	}
	if res[0].EntityKey != op.EntityKey {
		t.Fatalf("result for %q, want %q", res[0].EntityKey, op.EntityKey)
	}
	return res[0]
}

// T0 is the fixed "now" of the partners' sandboxes and clients under test.
var T0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// Clock is a fake clock standing at T0, for a sandbox under test; it moves
// only when the test advances it.
func Clock() *sandbox.FakeClock { return sandbox.NewFakeClock(T0) }

// InFlight counts a test partner's requests in flight and the most it
// ever had at once. It is safe for concurrent use.
type InFlight struct{ now, peak atomic.Int32 }

// Enter counts one request in and returns how many are in flight with it;
// call done when the request ends.
func (f *InFlight) Enter() (n int, done func()) {
	v := f.now.Add(1)
	for {
		old := f.peak.Load()
		if v <= old || f.peak.CompareAndSwap(old, v) {
			break
		}
	}
	return int(v), func() { f.now.Add(-1) }
}

// Peak is the most requests that were in flight at once.
func (f *InFlight) Peak() int { return int(f.peak.Load()) }
