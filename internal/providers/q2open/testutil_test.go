package q2open_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/providers/q2open"
	"github.com/northwind-data/etl/internal/sandbox"
)

const (
	token    = "test-q2-token"
	docToken = "dc220490-e6ee-11e5-8a94-e7385a8d929e" // the doc example's
	visaPAN  = "4111111111111111"
	mcPAN    = "5555555555554444"
	cvv      = "123"
)

// t0 is the fixed "now" of every client and sandbox in these tests.
var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func card(customerID, id, pan, code, typ, brand string) model.Card {
	p := model.NewPAN(pan)
	return model.Card{
		Origin: model.Origin{File: "cards.csv", Line: 3}, ID: id, CustomerID: customerID, AccountID: "A-" + customerID,
		PAN: p, CVV: model.NewCVV(code), ExpMonth: 2, ExpYear: 2040, Type: typ, Brand: brand, Status: "OPEN",
		IIN: p.IIN(), Last4: p.Last4(),
	}
}

// customer has two open cards of its own: K1 (visa credit, default, with
// a code, its own billing zip, name and label) and K2 (mastercard debit,
// no code, no zip, no name: the fallbacks).
func customer(id string) *model.Customer {
	k1 := card(id, "K1", visaPAN, cvv, "credit", "visa")
	k1.IsDefault, k1.BillingZip, k1.NameOnCard, k1.Label = true, "78701", "ADA K LOVELACE", "Rewards Card"
	k2 := card(id, "K2", mcPAN, "", "debit", "mastercard")
	k2.ExpMonth, k2.ExpYear = 11, 2031
	return &model.Customer{
		Origin: model.Origin{File: "customers.csv", Line: 2}, ID: id,
		FirstName: "Ada", MiddleName: "K", LastName: "Lovelace", Email: "ada@example.com", Phone: "+15125550100",
		Address: model.Address{Line1: "1 Main St", Line2: "Apt 4", City: "Austin", State: "TX", PostalCode: "78753", Country: "US"},
		Status:  "ACTIVE",
		Accounts: []model.Account{{ID: "A-" + id, Type: "CREDIT", Status: "OPEN", CustomerIDs: []string{id},
			Cards: []model.Card{k1, k2}}},
	}
}

// sandboxServer serves a sandbox with the test token and the fixed clock.
func sandboxServer(t *testing.T) (*q2open.Sandbox, *httptest.Server) {
	t.Helper()
	sb := q2open.NewSandbox(q2open.SandboxOptions{Token: token, Clock: sandbox.NewFakeClock(t0)})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return sb, srv
}

// recorder forwards to h and keeps every request and response body.
type recorder struct {
	h         http.Handler
	mu        sync.Mutex
	requests  [][]byte
	responses [][]byte
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	rw := httptest.NewRecorder()
	r.h.ServeHTTP(rw, req)
	r.mu.Lock()
	r.requests = append(r.requests, body)
	r.responses = append(r.responses, rw.Body.Bytes())
	r.mu.Unlock()
	for k, v := range rw.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rw.Code)
	_, _ = w.Write(rw.Body.Bytes())
}

func (r *recorder) last() (req, resp []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[len(r.requests)-1], r.responses[len(r.responses)-1]
}

func newClient(t *testing.T, url, tok string, mod func(*q2open.Config)) *q2open.Client {
	t.Helper()
	cfg := q2open.Config{BaseURL: url, Token: tok, Now: func() time.Time { return t0 },
		HTTP: httpx.Config{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, MaxAttempts: 3, Timeout: 5 * time.Second}}
	if mod != nil {
		mod(&cfg)
	}
	c, err := q2open.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// post sends body to the sync endpoint with the given Authorization header.
func post(t *testing.T, url, auth string, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+q2open.SyncPath, bytes.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newServer serves h over loopback and returns its URL.
func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// clearJSON is the body the client would send for r, cards in clear.
func clearJSON(t *testing.T, r q2open.SyncRequest) []byte {
	t.Helper()
	b, err := q2open.WireJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call sends body (nil for none) with method to url, with a bearer token.
func call(t *testing.T, method, url, tok string, body []byte) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}
