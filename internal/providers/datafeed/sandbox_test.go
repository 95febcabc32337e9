package datafeed_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/golden"
	"github.com/northwind-data/etl/internal/providers/datafeed"
	"github.com/northwind-data/etl/internal/sandbox"
)

func startSession(t *testing.T, url, body string) (*http.Response, datafeed.StartSessionResponse) {
	t.Helper()
	resp, err := http.Post(url+datafeed.PathStartSession, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r datafeed.StartSessionResponse
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return resp, r
}

func oneCustomer(t *testing.T, id string) []byte {
	t.Helper()
	o, _ := datafeed.Map(customer(id), datafeed.MapOptions{})
	b, _ := json.Marshal(datafeed.Request{Customers: []datafeed.Customer{o[0].Payload.(datafeed.Customer)}})
	return b
}

func TestSandboxSessions(t *testing.T) {
	clock := sandbox.NewFakeClock(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	srv := httptest.NewServer(datafeed.NewSandbox(datafeed.SandboxOptions{Clock: clock}))
	defer srv.Close()
	if resp, _ := startSession(t, srv.URL, `{"scopes":["api:customer"]}`); resp.StatusCode != 400 {
		t.Fatalf("customer scope: HTTP %d; want 400 (the data APIs need api:institution)", resp.StatusCode)
	}
	resp, s := startSession(t, srv.URL, `{"scopes":["api:institution"]}`)
	if resp.StatusCode != 200 || strings.Count(s.SessionToken, ".") != 2 {
		t.Fatalf("HTTP %d token %q; want a JWT", resp.StatusCode, s.SessionToken)
	}
	body := oneCustomer(t, "C1")
	if status, out := post(t, srv.URL, s.SessionToken, body); status != 200 {
		t.Fatalf("with the session: HTTP %d %s", status, out)
	}
	// A Bearer header is not the session header.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+datafeed.PathCustomers, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.SessionToken)
	if r, _ := http.DefaultClient.Do(req); r.StatusCode != 401 {
		t.Fatalf("Bearer only: HTTP %d; want 401", r.StatusCode)
	}
	clock.Advance(59 * time.Minute)
	if status, out := post(t, srv.URL, s.SessionToken, body); status != 200 {
		t.Fatalf("at 59 minutes: HTTP %d %s", status, out)
	}
	clock.Advance(time.Minute)
	if status, out := post(t, srv.URL, s.SessionToken, body); status != 401 || !strings.Contains(string(out), `"type":"SessionValidationException"`) {
		t.Fatalf("after the hour: HTTP %d %s; want 401 SessionValidationException", status, out)
	}
}

func TestSandboxPutAndPost(t *testing.T) {
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: token})
	srv := httptest.NewServer(sb)
	defer srv.Close()
	if status, out := call(t, http.MethodPut, srv.URL, token, oneCustomer(t, "C1")); status != 400 || !strings.Contains(string(out), "customers[0].sourceCustomerId: no customer") {
		t.Fatalf("PUT of an unknown customer: HTTP %d %s; want 400 naming it", status, out)
	}
	if status, _ := call(t, http.MethodPost, srv.URL, token, oneCustomer(t, "C1")); status != 200 {
		t.Fatalf("POST: HTTP %d", status)
	}
	if status, _ := call(t, http.MethodPut, srv.URL, token, oneCustomer(t, "C1")); status != 200 {
		t.Fatalf("PUT of a known customer: HTTP %d", status)
	}
	if status, _ := call(t, http.MethodPatch, srv.URL, token, oneCustomer(t, "C1")); status != 405 {
		t.Fatalf("PATCH: HTTP %d; want 405", status)
	}
	st := sb.State()
	if st.Posts != 1 || st.Puts != 1 || st.UnknownPuts != 1 || st.Customers["C1"].Deliveries != 2 {
		t.Fatalf("state %+v", st)
	}
}

// The sandbox's refusal of enum and required-field failures, byte for
// byte: the published envelope, one string per field, the request id
// echoed.
func TestSandboxValidationEnvelopeGolden(t *testing.T) {
	srv := httptest.NewServer(datafeed.NewSandbox(datafeed.SandboxOptions{Token: token}))
	defer srv.Close()
	o, _ := datafeed.Map(customer("C1"), datafeed.MapOptions{})
	good := o[0].Payload.(datafeed.Customer)
	var bad datafeed.Customer
	b, _ := json.Marshal(good)
	_ = json.Unmarshal(b, &bad)
	bad.SourceCustomerID, bad.OrganizationID = "C2", ""
	bad.EnrollmentOptInStatus, bad.TargetingIndicator, bad.AlertOptInStatus = "YES", "MAYBE", []string{"ALL", "EMAIL"}
	bad.Accounts[0].Type, bad.Accounts[0].Status = "CREDIT", "DORMANT"
	body, _ := json.Marshal(datafeed.Request{Customers: []datafeed.Customer{good, bad}})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+datafeed.PathCustomers, bytes.NewReader(body))
	req.Header.Set("X-CDLX-Session-Token", token)
	req.Header.Set("X-CDLX-Request-Id", "golden-request-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 400 {
		t.Fatalf("HTTP %d %v", resp.StatusCode, out)
	}
	golden.AssertJSON(t, "sandbox_validation_error.golden.json", out)
}

func TestSandboxEchoesTheRequestID(t *testing.T) {
	srv := httptest.NewServer(datafeed.NewSandbox(datafeed.SandboxOptions{Token: token}))
	defer srv.Close()
	for _, tc := range []struct {
		name, tok string
		body      []byte
		status    int
	}{{"accepted", token, oneCustomer(t, "C1"), 200}, {"refused", "", oneCustomer(t, "C1"), 401}, {"unreadable", token, []byte("{"), 400}} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+datafeed.PathCustomers, bytes.NewReader(tc.body))
		req.Header.Set("X-CDLX-Session-Token", tc.tok)
		req.Header.Set("X-CDLX-Request-Id", "rid-"+tc.name)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			RequestID string `json:"requestId"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if resp.StatusCode != tc.status || r.RequestID != "rid-"+tc.name {
			t.Errorf("%s: HTTP %d requestId %q", tc.name, resp.StatusCode, r.RequestID)
		}
	}
}
