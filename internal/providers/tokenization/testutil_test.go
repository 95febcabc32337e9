package tokenization_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/providers/tokenization"
	"github.com/northwind-data/etl/internal/sandbox"
)

const (
	user        = "portal@example.com"
	pass        = "portal-secret"
	partnerID   = 792
	partnerName = "partnerName"
)

// t0 is the fixed "now" of every sandbox in these tests.
var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// customer is an active customer with a card: the card must never reach
// this partner.
func customer(id string) *model.Customer {
	p := model.NewPAN("4111111111111111")
	return &model.Customer{
		Origin: model.Origin{File: "customers.csv", Line: 2}, ID: id,
		FirstName: "Ada", MiddleName: "K", LastName: "Lovelace", Email: "ada@example.com", Phone: "+15125550100",
		Address: model.Address{Line1: "1 Main St", City: "Austin", State: "TX", PostalCode: "78753", Country: "US"},
		Status:  "ACTIVE",
		Accounts: []model.Account{{ID: "A-" + id, Type: "CREDIT", Status: "OPEN", CustomerIDs: []string{id},
			Cards: []model.Card{{ID: "K1", CustomerID: id, PAN: p, CVV: model.NewCVV("123"), ExpMonth: 2, ExpYear: 2040,
				Type: "credit", Brand: "visa", IIN: p.IIN(), Last4: p.Last4(), Status: "OPEN"}}}},
	}
}

type server struct {
	sb  *tokenization.Sandbox
	rec *recorder
	url string
}

// newSandbox serves a sandbox (behind a recorder) over loopback.
func newSandbox(t *testing.T, partners map[int]string) *server {
	t.Helper()
	sb := tokenization.NewSandbox(tokenization.SandboxOptions{Username: user, Password: pass, Partners: partners,
		Clock: sandbox.NewFakeClock(t0)})
	rec := &recorder{h: sb}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return &server{sb: sb, rec: rec, url: srv.URL}
}

func newServerURL(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func testConfig(url string) tokenization.Config {
	return tokenization.Config{BaseURL: url, Username: user, Password: pass, PartnerID: partnerID, PartnerName: partnerName,
		HTTP: httpx.Config{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, MaxAttempts: 3, Timeout: 5 * time.Second}}
}

func newClient(t *testing.T, url string, mod func(*tokenization.Config)) *tokenization.Client {
	t.Helper()
	cfg := testConfig(url)
	if mod != nil {
		mod(&cfg)
	}
	c, err := tokenization.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// exchange is one request as the server saw it.
type exchange struct {
	method, path, query string
	req, resp           []byte
	status              int
}

// recorder forwards to h and keeps every exchange.
type recorder struct {
	h  http.Handler
	mu sync.Mutex
	ex []exchange
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	rw := httptest.NewRecorder()
	r.h.ServeHTTP(rw, req)
	r.mu.Lock()
	r.ex = append(r.ex, exchange{method: req.Method, path: req.URL.Path, query: req.URL.RawQuery, req: body, resp: rw.Body.Bytes(), status: rw.Code})
	r.mu.Unlock()
	for k, v := range rw.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rw.Code)
	_, _ = w.Write(rw.Body.Bytes())
}

// calls lists "METHOD path" of every exchange since mark.
func (r *recorder) calls(mark int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.ex[mark:] {
		out = append(out, e.method+" "+e.path)
	}
	return out
}

func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ex)
}

func (r *recorder) last(method string) exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.ex) - 1; i >= 0; i-- {
		if r.ex[i].method == method {
			return r.ex[i]
		}
	}
	return exchange{}
}

// call sends one raw request with Basic auth (empty user: none).
func call(t *testing.T, method, url, u, p string, body []byte) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if u != "" {
		req.SetBasicAuth(u, p)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err) // not Fatal: some callers run on other goroutines
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return v
}

// sameShape checks that got has exactly the keys of want, recursively,
// with values of the same JSON kind (null only where want has null).
// Array elements of got are each checked against want's first element.
func sameShape(t *testing.T, path string, want, got any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: got %T, want an object", path, got)
			return
		}
		for k := range w {
			if _, ok := g[k]; !ok {
				t.Errorf("%s.%s: missing", path, k)
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				t.Errorf("%s.%s: not in the doc's example", path, k)
			}
		}
		for k, v := range w {
			if gv, ok := g[k]; ok {
				sameShape(t, path+"."+k, v, gv)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			t.Errorf("%s: got %T, want an array", path, got)
			return
		}
		if len(w) > 0 {
			for i, x := range g {
				sameShape(t, fmt.Sprintf("%s[%d]", path, i), w[0], x)
			}
		}
	default:
		if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
			t.Errorf("%s: got %T (%v), want %T like the doc's %v", path, got, got, want, want)
		}
	}
}

// noCardData fails if b carries the test card's number or code.
func noCardData(t *testing.T, what string, b []byte) {
	t.Helper()
	if s := string(b); strings.Contains(s, "4111111111111111") || strings.Contains(s, "411111") || strings.Contains(s, `"123"`) {
		t.Errorf("%s carries card data: %s", what, b)
	}
}
