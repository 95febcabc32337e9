package tokenization_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/providers/providertest"
	"github.com/northwind-data/etl/internal/providers/tokenization"
)

const (
	user        = "portal@example.com"
	pass        = "portal-secret"
	partnerID   = 792
	partnerName = "partnerName"
)

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
	rec *providertest.Recorder
	url string
}

// newSandbox serves a sandbox (behind a recorder) over loopback.
func newSandbox(t *testing.T, partners map[int]string) *server {
	t.Helper()
	sb := tokenization.NewSandbox(tokenization.SandboxOptions{Username: user, Password: pass, Partners: partners,
		Clock: providertest.Clock()})
	rec := providertest.NewRecorder(sb)
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return &server{sb: sb, rec: rec, url: srv.URL}
}

func testConfig(url string) tokenization.Config {
	return tokenization.Config{BaseURL: url, Username: user, Password: pass, PartnerID: partnerID, PartnerName: partnerName,
		HTTP: providertest.FastHTTP()}
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

// call sends one raw request with Basic auth (empty user: none).
func call(t *testing.T, method, url, u, p string, body []byte) (int, []byte) {
	t.Helper()
	hdr := map[string]string{"Content-Type": "application/json"}
	if u != "" {
		hdr["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
	}
	r, err := providertest.RawCall(method, url, hdr, body)
	if err != nil {
		t.Error(err) // not Fatal: some callers run on other goroutines
		return 0, nil
	}
	return r.Status, r.Body
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
