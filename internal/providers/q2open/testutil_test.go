package q2open_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/providers/providertest"
	"github.com/northwind-data/etl/internal/providers/q2open"
)

const (
	token    = "test-q2-token"
	docToken = "dc220490-e6ee-11e5-8a94-e7385a8d929e" // the doc example's
	visaPAN  = "4111111111111111"
	mcPAN    = "5555555555554444"
	cvv      = "123"
)

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
	sb := q2open.NewSandbox(q2open.SandboxOptions{Token: token, Clock: providertest.Clock()})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return sb, srv
}

func newClient(t *testing.T, url, tok string, mod func(*q2open.Config)) *q2open.Client {
	t.Helper()
	cfg := q2open.Config{BaseURL: url, Token: tok, Now: func() time.Time { return providertest.T0 },
		HTTP: providertest.FastHTTP()}
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
	hdr := map[string]string{"Content-Type": "application/json"}
	if auth != "" {
		hdr["Authorization"] = auth
	}
	r := providertest.Call(t, http.MethodPost, url+q2open.SyncPath, hdr, body)
	return r.Status, r.Body
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
	r := providertest.Call(t, method, url, map[string]string{"Authorization": "Bearer " + tok}, body)
	return r.Status, r.Body
}
