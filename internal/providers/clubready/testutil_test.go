package clubready_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/clubready"
	"github.com/northwind-data/etl/internal/providers/providertest"
	"github.com/northwind-data/etl/internal/sandbox"
)

const (
	apiKey   = "cr-api-key-Zq81xK" // distinctive, so a leak is easy to find
	vaultKey = "cr-vault-key-Wm44pD"
	visaPAN  = "4111111111111111"
	mcPAN    = "5555555555554444"
	cvv      = "737"
	member   = "100123"
	fwdIP    = "203.0.113.7"
)

var signingKey = []byte("clubready-sandbox-test-signing-key")

func card(customerID, id, pan, code string) model.Card {
	p := model.NewPAN(pan)
	return model.Card{
		Origin: model.Origin{File: "cards.csv", Line: 3}, ID: id, CustomerID: customerID, AccountID: "A-" + customerID,
		PAN: p, CVV: model.NewCVV(code), ExpMonth: 2, ExpYear: 2040, Type: "credit", Brand: "visa", Status: "OPEN",
		IIN: p.IIN(), Last4: p.Last4(),
	}
}

// customer has two open cards: K1 (visa, default, with a code, its own
// billing zip and name) and K2 (mastercard, no code, no zip, no name: the
// fallbacks).
func customer(id string) *model.Customer {
	k1 := card(id, "K1", visaPAN, cvv)
	k1.IsDefault, k1.BillingZip, k1.NameOnCard = true, "78701", "ADA K LOVELACE"
	k2 := card(id, "K2", mcPAN, "")
	k2.Brand, k2.ExpMonth, k2.ExpYear = "mastercard", 11, 2031
	return &model.Customer{
		Origin: model.Origin{File: "customers.csv", Line: 2}, ID: id, MemberID: member,
		FirstName: "Ada", MiddleName: "K", LastName: "Lovelace", Email: "ada@example.com", Phone: "+15125550100",
		Address: model.Address{Line1: "1 Main St", Line2: "Apt 4", City: "Austin", State: "TX", PostalCode: "78753", Country: "US"},
		Status:  "ACTIVE",
		Accounts: []model.Account{{ID: "A-" + id, Type: "CREDIT", Status: "OPEN", CustomerIDs: []string{id},
			Cards: []model.Card{k1, k2}}},
	}
}

// env is a sandbox on loopback with a fake clock.
type env struct {
	clock *sandbox.FakeClock
	sb    *clubready.Sandbox
	url   string
}

// newEnv serves the sandbox, optionally behind wrap (fault injection).
func newEnv(t *testing.T, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	clock := providertest.Clock()
	sb := clubready.NewSandbox(clubready.SandboxOptions{ApiKey: apiKey, VaultKey: vaultKey, Clock: clock, SigningKey: signingKey})
	var h http.Handler = sb
	if wrap != nil {
		h = wrap(sb)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{clock: clock, sb: sb, url: srv.URL}
}

// newClient talks to e's import and vault endpoints with the test keys and
// e's clock; mod adjusts the config.
func newClient(t *testing.T, e *env, mod func(*clubready.Config)) *clubready.Client {
	t.Helper()
	cfg := clubready.Config{BaseURL: e.url, ApiKey: apiKey, VaultURL: e.url, VaultKey: vaultKey, ForwardedFor: fwdIP,
		Now: e.clock.Now, HTTP: providertest.FastHTTP()}
	if mod != nil {
		mod(&cfg)
	}
	c, err := clubready.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newVault(t *testing.T, url, key string) *clubready.HTTPVault {
	t.Helper()
	v, err := clubready.NewHTTPVault(clubready.VaultConfig{BaseURL: url, Key: key, HTTP: providertest.FastHTTP()})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// ops maps the customer and marks every op a create.
func ops(t *testing.T, c *clubready.Client, cu *model.Customer) []partner.Op {
	t.Helper()
	items, rej := c.Map(cu)
	out := partner.NewOps(items)
	if len(rej) != 0 {
		t.Fatalf("rejects: %v", rej)
	}
	for i := range out {
		out[i].Kind = partner.Create
	}
	return out
}

// journal records notes; before, if set, runs first and may fail the note.
type journal struct {
	mu     sync.Mutex
	notes  []string
	before func(detail string) error
}

func (j *journal) Note(_ context.Context, _ partner.Op, detail string) error {
	if j.before != nil {
		if err := j.before(detail); err != nil {
			return err
		}
	}
	j.mu.Lock()
	j.notes = append(j.notes, detail)
	j.mu.Unlock()
	return nil
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.notes...)
}

// faulty lets fault(n, w, r) answer the n-th import request (1-based)
// instead of the sandbox; returning false passes it through.
func faulty(fault func(n int, next http.Handler, w http.ResponseWriter, r *http.Request) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		var mu sync.Mutex
		n := 0
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == clubready.ImportPath {
				mu.Lock()
				n++
				k := n
				mu.Unlock()
				if fault(k, next, w, r) {
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// drop lets the sandbox handle the request, then closes the connection
// before any answer: the import happened, its answer is lost.
func drop(t *testing.T, next http.Handler, w http.ResponseWriter, r *http.Request) {
	next.ServeHTTP(httptest.NewRecorder(), r)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	_ = conn.Close()
}

// unavailable answers 503: the request never reached the sandbox.
func unavailable(w http.ResponseWriter) {
	sandbox.WriteJSON(w, http.StatusServiceUnavailable, clubready.ErrorResponse{ResponseStatus: clubready.ResponseStatus{
		ErrorCode: "ServiceUnavailable", Message: "try again later"}})
}

// rateLimited answers 429: refused before the service ran.
func rateLimited(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "0")
	sandbox.WriteJSON(w, http.StatusTooManyRequests, clubready.ErrorResponse{ResponseStatus: clubready.ResponseStatus{
		ErrorCode: "TooManyRequests", Message: "slow down"}})
}

// post sends a JSON body to the sandbox at path (with query) and headers.
func post(t *testing.T, url, pathQuery string, hdr map[string]string, body any) (int, []byte) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	for k, v := range hdr {
		h[k] = v
	}
	r := providertest.Call(t, http.MethodPost, url+pathQuery, h, body)
	return r.Status, r.Body
}

// noCardData fails if s holds a full card number or the test card code.
func noCardData(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{visaPAN, mcPAN, `"` + cvv + `"`, "Cvv\":"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s carries card data (%q): %s", what, secret, s)
		}
	}
}
