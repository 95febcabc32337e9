package datafeed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/golden"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/datafeed"
)

const token = "test-token"

func customer(id string) *model.Customer {
	pan := model.NewPAN("4111 1111 1111 1111")
	at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	return &model.Customer{
		Origin: model.Origin{File: "customers.csv", Line: 2}, ID: id, OrganizationID: "50004",
		FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com", Phone: "+15125550100",
		Address: model.Address{Line1: "1 Main St", City: "Austin", State: "TX", PostalCode: "78753", Country: "US"},
		Status:  "ACTIVE", Created: at("2017-01-01T08:00:00Z"), EnrollmentStart: at("2023-01-01T08:00:00Z"),
		Accounts: []model.Account{{ID: "A-" + id, Type: "DDA", Status: "OPEN", CustomerIDs: []string{id}, OpenDate: at("2018-05-12T20:30:00Z"),
			Cards: []model.Card{{ID: "K1", CustomerID: id, AccountID: "A-" + id, PAN: pan, CVV: model.NewCVV("123"), ExpMonth: 2, ExpYear: 2040,
				Type: "credit", Brand: "visa", NetworkID: 3, IIN: pan.IIN(), Last4: pan.Last4()}}}},
	}
}

func TestMapGolden(t *testing.T) {
	c := customer("C1")
	c.ParentID = "C0"
	c.EnrollmentEnd = c.EnrollmentStart.AddDate(1, 0, 0)
	noCards := customer("C2")
	noCards.Accounts = nil
	for _, tc := range []struct {
		name string
		c    *model.Customer
	}{{"customer_with_card", c}, {"customer_without_accounts", noCards}} {
		t.Run(tc.name, func(t *testing.T) {
			ops, rej := datafeed.Map(tc.c, datafeed.MapOptions{})
			if len(rej) != 0 || len(ops) != 1 {
				t.Fatalf("ops %d rejects %v", len(ops), rej)
			}
			golden.AssertJSON(t, tc.name+".golden.json", datafeed.Request{Customers: []datafeed.Customer{ops[0].Payload.(datafeed.Customer)}})
		})
	}
}

func TestMapRejectsWhatTheFeedRequires(t *testing.T) {
	tests := []struct {
		field string
		mod   func(*model.Customer)
	}{
		{"organization_id", func(c *model.Customer) { c.OrganizationID = "" }},
		{"postal_code", func(c *model.Customer) { c.Address.PostalCode = "" }},
		{"country", func(c *model.Customer) { c.Address.Country = "" }},
		{"created_at", func(c *model.Customer) { c.Created = time.Time{} }},
	}
	for _, tc := range tests {
		c := customer("C1")
		tc.mod(c)
		ops, rej := datafeed.Map(c, datafeed.MapOptions{})
		if len(ops) != 0 || len(rej) != 1 || rej[0].Field != tc.field || rej[0].Provider != datafeed.Name {
			t.Errorf("%s: ops %d rejects %+v", tc.field, len(ops), rej)
		}
	}
	c := customer("C1")
	c.OrganizationID = ""
	if ops, _ := datafeed.Map(c, datafeed.MapOptions{DefaultOrganizationID: "777"}); len(ops) != 1 || ops[0].Payload.(datafeed.Customer).OrganizationID != "777" {
		t.Error("default organization id not applied")
	}
}

func TestPayloadNeverCarriesTheCardNumber(t *testing.T) {
	ops, _ := datafeed.Map(customer("C1"), datafeed.MapOptions{})
	b, _ := json.Marshal(ops[0].Payload)
	if bytes.Contains(b, []byte("4111111111111111")) || bytes.Contains(b, []byte(`"123"`)) {
		t.Fatalf("payload carries card data: %s", b)
	}
}

// post sends body to the customers endpoint with the session token.
func post(t *testing.T, url, tok string, body []byte) (int, []byte) {
	t.Helper()
	return call(t, http.MethodPost, url, tok, body)
}

// call sends body with method to the customers endpoint; tok "" sends no
// session token.
func call(t *testing.T, method, url, tok string, body []byte) (int, []byte) {
	t.Helper()
	hdr := map[string]string{"Content-Type": "application/json"}
	if tok != "" {
		hdr["X-CDLX-Session-Token"] = tok
	}
	r := providertest.Call(t, method, url+"/v2/data/customers", hdr, body)
	return r.Status, r.Body
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestSandboxAcceptsTheDocExample(t *testing.T) {
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: token})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	body, err := os.ReadFile("testdata/doc_request.json")
	if err != nil {
		t.Fatal(err)
	}
	status, out := post(t, srv.URL, token, body)
	if status != 200 {
		t.Fatalf("doc example: HTTP %d %s", status, out)
	}
	var r datafeed.Response
	if err := json.Unmarshal(out, &r); err != nil || !uuidRE.MatchString(r.RequestID) {
		t.Fatalf("response %s: want {\"requestId\": uuid}", out)
	}
	st := sb.State()
	if st.Customers["afa2r21-25f9-4501-b9db-e78afa73c0e3"] == nil || st.Customers["afa2r21-25f9-4501-b9db-e78afa73c0e3"].Cards != 1 {
		t.Fatalf("state after doc example: %+v", st)
	}
}

func TestSandboxRefusals(t *testing.T) {
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: token})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	one, _ := datafeed.Map(customer("C1"), datafeed.MapOptions{})
	var many datafeed.Request
	for i := 0; i < 51; i++ {
		c := one[0].Payload.(datafeed.Customer)
		c.SourceCustomerID = fmt.Sprintf("C%d", i)
		many.Customers = append(many.Customers, c)
	}
	b51, _ := json.Marshal(many)
	var bad datafeed.Customer // a deep copy: the accounts slice is shared otherwise
	b1, _ := json.Marshal(one[0].Payload)
	_ = json.Unmarshal(b1, &bad)
	bad.PostalCode, bad.Accounts[0].Cards[0].Last4 = "", "12a4"
	bBad, _ := json.Marshal(datafeed.Request{Customers: []datafeed.Customer{one[0].Payload.(datafeed.Customer), bad}})
	tests := []struct {
		name, tok string
		body      []byte
		status    int
		contains  string
	}{
		{"no token", "", b51[:10], 401, `"type":"SessionValidationException"`},
		{"wrong token", "nope", b51, 401, `"type":"SessionValidationException"`},
		{"51 customers", token, b51, 400, "size must be between 1 and 50"},
		{"malformed", token, []byte(`{"customers": [`), 400, `"type":"HttpMessageNotReadable"`},
		{"unknown field", token, []byte(`{"customers": [], "x": 1}`), 400, `"type":"HttpMessageNotReadable"`},
		{"empty", token, []byte(`{"customers": []}`), 400, "size must be between 1 and 50"},
		{"invalid fields named", token, bBad, 400, `"validationErrors":["customers[1].postalCode: required","customers[1].accounts[0].cards[0].last4: must be 4 digits"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(t, srv.URL, tc.tok, tc.body)
			if status != tc.status || !strings.Contains(string(out), tc.contains) {
				t.Fatalf("HTTP %d %s; want %d containing %q", status, out, tc.status, tc.contains)
			}
		})
	}
	if st := sb.State(); len(st.Customers) != 0 || st.OversizedBatches != 1 {
		t.Fatalf("refused requests changed state: %+v", st)
	}
}

func newClient(t *testing.T, url, tok string) *datafeed.Client {
	t.Helper()
	c, err := datafeed.New(datafeed.Config{BaseURL: url, Token: tok, HTTP: httpx.Config{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ops(n int) []partner.Op {
	var out []partner.Op
	for i := 0; i < n; i++ {
		o, _ := datafeed.Map(customer(fmt.Sprintf("C%03d", i)), datafeed.MapOptions{})
		out = append(out, partner.NewOps(o)...)
	}
	return out
}

func TestClientSplitsIntoRequestsOfAtMost50(t *testing.T) {
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: token})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	res := newClient(t, srv.URL, token).Send(context.Background(), ops(51), nil)
	st := sb.State()
	if st.MaxBatch != 50 || st.Accepted != 2 || st.OversizedBatches != 0 || len(st.Customers) != 51 {
		t.Fatalf("state %+v: want two requests of 50 and 1", st)
	}
	for i, r := range res {
		if r.Outcome != partner.OK || !uuidRE.MatchString(r.RequestID) {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if res[0].RequestID == res[50].RequestID || res[0].RequestID != res[49].RequestID {
		t.Fatal("request ids must be per request")
	}
}

func TestClientRetries5xxThenSucceeds(t *testing.T) {
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: token})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		sb.ServeHTTP(w, r)
	}))
	defer srv.Close()
	res := newClient(t, srv.URL, token).Send(context.Background(), ops(3), nil)
	if res[0].Outcome != partner.OK || res[0].Attempts != 3 || calls.Load() != 3 {
		t.Fatalf("result %+v after %d calls; want OK on the third attempt", res[0], calls.Load())
	}
}

func TestClientErrorsAreTyped(t *testing.T) {
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: token})
	srv := httptest.NewServer(sb)
	defer srv.Close()

	res := newClient(t, srv.URL, "wrong").Send(context.Background(), ops(2), nil)
	if res[0].Outcome != partner.Failed || httpx.KindOf(res[0].Err) != httpx.Fatal {
		t.Fatalf("bad token: %+v; want Failed with a Fatal error", res[0])
	}

	// One bad customer among good ones: only it is rejected, the rest land.
	batch := ops(3)
	c := batch[1].Payload.(datafeed.Customer)
	c.PostalCode = ""
	batch[1].Payload = c
	res = newClient(t, srv.URL, token).Send(context.Background(), batch, nil)
	if res[0].Outcome != partner.OK || res[2].Outcome != partner.OK || res[1].Outcome != partner.Rejected {
		t.Fatalf("outcomes %v %v %v; want ok rejected ok", res[0].Outcome, res[1].Outcome, res[2].Outcome)
	}
	if !strings.Contains(res[1].Err.Error(), "postalCode") {
		t.Fatalf("reject message %q does not name the field", res[1].Err)
	}
	if len(sb.State().Customers) != 2 {
		t.Fatalf("sandbox holds %d customers, want 2", len(sb.State().Customers))
	}
}

func TestNewValidatesItsConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  datafeed.Config
	}{
		{"cert without key", datafeed.Config{BaseURL: "http://x", ClientCertFile: "tls.crt"}},
		{"key without cert", datafeed.Config{BaseURL: "http://x", ClientKeyFile: "tls.key"}},
		{"missing cert files", datafeed.Config{BaseURL: "http://x", ClientCertFile: "/nonexistent/tls.crt", ClientKeyFile: "/nonexistent/tls.key"}},
		{"renew before longer than the session", datafeed.Config{BaseURL: "http://x", Session: datafeed.SessionOptions{RenewBefore: 2 * time.Hour}}},
		{"code mapped outside the enum", datafeed.Config{BaseURL: "http://x", Map: datafeed.MapOptions{Codes: map[string]map[string]string{"account_type": {"CREDIT": "CREDIT"}}}}},
	} {
		if _, err := datafeed.New(tc.cfg); err == nil {
			t.Errorf("%s: want a config error", tc.name)
		}
	}
	// No token is needed: the client starts sessions itself.
	if _, err := datafeed.New(datafeed.Config{BaseURL: "http://x"}); err != nil {
		t.Fatalf("no token: %v", err)
	}
}

// A request built from ops the engine has already encoded (Op.Body) is
// byte for byte the request encoded from their payloads, and each
// customer still lands; an op without a Body is encoded as before.
func TestRequestBodyFromEncodedOpsIsTheMarshalledRequest(t *testing.T) {
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: token})
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, b)
		r.Body = io.NopCloser(bytes.NewReader(b))
		sb.ServeHTTP(w, r)
	}))
	defer srv.Close()

	plain := ops(3)
	encoded := ops(3)
	var want datafeed.Request
	for i := range encoded {
		want.Customers = append(want.Customers, encoded[i].Payload.(datafeed.Customer))
		if i != 1 { // the middle one keeps no Body: encoded by the client
			encoded[i].Body, _ = json.Marshal(encoded[i].Payload)
		}
	}
	wantBody, _ := json.Marshal(want)
	c := newClient(t, srv.URL, token)
	for _, batch := range [][]partner.Op{plain, encoded} {
		for _, r := range c.Send(context.Background(), batch, nil) {
			if r.Outcome != partner.OK {
				t.Fatalf("%s: %v %v", r.EntityKey, r.Outcome, r.Err)
			}
		}
	}
	if len(bodies) != 2 || !bytes.Equal(bodies[0], wantBody) || !bytes.Equal(bodies[1], wantBody) {
		t.Fatalf("request bodies:\n%s\n%s\nwant both:\n%s", bodies[0], bodies[len(bodies)-1], wantBody)
	}
}

func readAll(r *http.Request) []byte {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b
}
