package synctera_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/providertest"
	"github.com/northwind-data/etl/internal/providers/synctera"
)

const (
	token  = "test-synctera-token"
	docKey = "7d943c51-e4ff-4e57-9558-08cab6b963c7" // the doc example's idempotency key
	docID  = "38400000-8cf0-11bd-b23e-10b96e4ef00d" // the doc example's customer id
)

var hmacKey = []byte("test-hmac-key")

var reUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// customer is a complete ACTIVE customer with a card (which Synctera's
// customer never carries).
func customer(id string) *model.Customer {
	pan := model.NewPAN("4111111111111111")
	return &model.Customer{
		Origin: model.Origin{File: "customers.csv", Line: 2}, ID: id,
		FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com", Phone: "+15125550100",
		DOB:     model.Date{Year: 1985, Month: time.December, Day: 10},
		Address: model.Address{Line1: "1 Main St", Line2: "Apt 4", City: "Austin", State: "TX", PostalCode: "78753", Country: "US"},
		Status:  "ACTIVE", Created: providertest.T0.AddDate(-3, 0, 0), OrganizationID: "50004",
		Accounts: []model.Account{{ID: "A-" + id, Type: "DDA", Status: "OPEN", CustomerIDs: []string{id}, Cards: []model.Card{{
			ID: "K1", CustomerID: id, PAN: pan, CVV: model.NewCVV("123"), ExpMonth: 2, ExpYear: 2040,
			Type: "credit", Brand: "visa", IIN: pan.IIN(), Last4: pan.Last4(), Status: "OPEN",
		}}}},
	}
}

// person is a distinct complete customer number i (for bulk tests).
func person(i int) synctera.CustomerInBody {
	return synctera.CustomerInBody{
		Status: synctera.StatusActive, FirstName: "First" + itoa(i), LastName: "Last", Dob: "1980-01-02",
		Email: "p" + itoa(i) + "@example.com", PhoneNumber: "+15125550100",
		LegalAddress: &synctera.Address{AddressLine1: "1 Main St", City: "Austin", State: "TX", PostalCode: "78753", CountryCode: "US"},
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// createOp is what the engine plans for a new customer.
func createOp(t *testing.T, c *model.Customer) partner.Op {
	t.Helper()
	ops, rejects := (&synctera.Client{}).Map(c)
	if len(rejects) > 0 || len(ops) != 1 {
		t.Fatalf("Map: ops %d, rejects %v", len(ops), rejects)
	}
	return plan(t, partner.NewOp(ops[0]), partner.Create, "")
}

// plan fills what the engine fills: kind, hash, key and remote id.
func plan(t *testing.T, op partner.Op, kind partner.Kind, remoteID string) partner.Op {
	t.Helper()
	h, err := load.ContentHash(hmacKey, op.Payload)
	if err != nil {
		t.Fatal(err)
	}
	op.Kind, op.Hash, op.RemoteID = kind, h, remoteID
	op.IdemKey = load.IdempotencyKey(hmacKey, synctera.Name, kind, op.EntityKey, h)
	if kind == partner.Create {
		op.IdemKey = load.CreateKey(hmacKey, synctera.Name, op.EntityKey, 0)
	}
	return op
}

func newSandbox(t *testing.T, mod func(*synctera.SandboxOptions)) (*synctera.Sandbox, *httptest.Server) {
	t.Helper()
	o := synctera.SandboxOptions{Token: token, Clock: providertest.Clock()}
	if mod != nil {
		mod(&o)
	}
	sb := synctera.NewSandbox(o)
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return sb, srv
}

func newClient(t *testing.T, baseURL, tok string, mod func(*synctera.Config)) *synctera.Client {
	t.Helper()
	cfg := synctera.Config{BaseURL: baseURL, Token: tok,
		HTTP: providertest.FastHTTP()}
	if mod != nil {
		mod(&cfg)
	}
	c, err := synctera.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// reply is one raw HTTP answer, with Synctera's readings of it.
type reply struct{ providertest.Reply }

func (r reply) problem(t *testing.T) synctera.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != synctera.ProblemContentType {
		t.Fatalf("Content-Type %q, want %s (status %d, body %s)", ct, synctera.ProblemContentType, r.Status, r.Body)
	}
	var p synctera.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.Body, err)
	}
	if p.Status != r.Status || p.Title == "" || p.Type == "" {
		t.Fatalf("problem %+v does not carry type, title and status %d", p, r.Status)
	}
	return p
}

func (r reply) customer(t *testing.T) synctera.Customer {
	t.Helper()
	var c synctera.Customer
	if err := json.Unmarshal(r.Body, &c); err != nil {
		t.Fatalf("customer body %s: %v", r.Body, err)
	}
	return c
}

// call sends a raw request to the sandbox; auth "" sends none, key ""
// sends no Idempotency-Key. body may be a string (sent as is) or a value.
func call(t *testing.T, method, url, auth, key string, body any) reply {
	t.Helper()
	r, err := rawCall(method, url, auth, key, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rawCall is call for goroutines other than the test's.
func rawCall(method, url, auth, key string, body any) (reply, error) {
	hdr := map[string]string{}
	if auth != "" {
		hdr["Authorization"] = auth
	}
	if key != "" {
		hdr[synctera.IdempotencyHeader] = key
	}
	if body != nil {
		hdr["Content-Type"] = "application/json"
	}
	r, err := providertest.RawCall(method, url, hdr, body)
	return reply{r}, err
}

// holdFirst is an InFlight hook that holds the first keyed request until
// release is called; entered is closed once it is held. Register release
// with t.Cleanup after the sandbox's server, so that a failing test does
// not leave the server waiting for the held request on close.
func holdFirst() (hook func(*http.Request), entered <-chan struct{}, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var hold, free sync.Once
	hook = func(*http.Request) { hold.Do(func() { close(in); <-out }) }
	return hook, in, func() { free.Do(func() { close(out) }) }
}

const bearer = "Bearer " + token
