package datafeed_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/datafeed"
)

// customerCalls is "METHOD n request-id" of each call rec saw to the
// customers endpoint, n the number of customers in its body.
func customerCalls(rec *providertest.Recorder) []string {
	var out []string
	for _, e := range rec.ByPath(datafeed.PathCustomers) {
		out = append(out, fmt.Sprintf("%s %d %s", e.Method, strings.Count(string(e.Body), `"organizationId"`), e.Header.Get("X-CDLX-Request-Id")))
	}
	return out
}

func kinds(os []partner.Op, k partner.Kind) []partner.Op {
	for i := range os {
		os[i].Kind = k
	}
	return os
}

func TestUpdatesArePutAndNeverShareARequestWithCreates(t *testing.T) {
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: token})
	rec := providertest.NewRecorder(sb)
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := newClient(t, srv.URL, token)
	all := kinds(ops(5), partner.Create)
	for _, r := range c.Send(context.Background(), all[:3], nil) {
		if r.Outcome != partner.OK {
			t.Fatalf("create: %v", r.Err)
		}
	}
	// The engine's batch: two known customers changed, two new ones.
	batch := append(kinds(ops(2), partner.Update), all[3:]...)
	for i := range batch[:2] {
		cu := batch[i].Payload.(datafeed.Customer)
		cu.PostalCode = "78701"
		batch[i].Payload, batch[i].Body = cu, nil
	}
	res := c.Send(context.Background(), batch, nil)
	for i, r := range res {
		if r.Outcome != partner.OK || r.EntityKey != batch[i].EntityKey {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	st := sb.State()
	if st.Puts != 1 || st.Posts != 2 || st.Updates != 2 {
		t.Fatalf("puts %d posts %d updates %d; want the two updates in one PUT", st.Puts, st.Posts, st.Updates)
	}
	if got := customerCalls(rec)[1:]; !strings.HasPrefix(got[0], "PUT 2 ") || !strings.HasPrefix(got[1], "POST 2 ") {
		t.Fatalf("calls %v; want PUT of 2 then POST of 2", got)
	}
	if m := st.Customers["C000"].LastMethod; m != http.MethodPut {
		t.Fatalf("C000 last written by %s, want PUT", m)
	}
}

// sync_state says the partner has a customer it does not have (another
// environment, a partner-side purge): the sandbox refuses the PUT for that
// customer, and the client creates it instead of failing it every night.
func TestAPutOfAnUnknownCustomerBecomesACreate(t *testing.T) {
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: token})
	rec := providertest.NewRecorder(sb)
	srv := httptest.NewServer(rec)
	defer srv.Close()
	c := newClient(t, srv.URL, token)
	known := kinds(ops(1), partner.Create)
	c.Send(context.Background(), known, nil)
	batch := kinds(ops(3), partner.Update) // C000 is known, C001 and C002 are not
	for i, r := range c.Send(context.Background(), batch, nil) {
		if r.Outcome != partner.OK {
			t.Fatalf("result %d: %s %v", i, r.Outcome, r.Err)
		}
	}
	st := sb.State()
	if st.UnknownPuts != 2 || len(st.Customers) != 3 || st.Customers["C001"].LastMethod != http.MethodPost {
		t.Fatalf("state %+v; want C001 and C002 refused by PUT and created by POST", st)
	}
	if len(customerCalls(rec)) != 4 || !strings.HasPrefix(customerCalls(rec)[2], "PUT 1 ") || !strings.HasPrefix(customerCalls(rec)[3], "POST 2 ") {
		t.Fatalf("calls %v; want POST 1, PUT 3 (refused), PUT 1, POST 2", customerCalls(rec))
	}
}

func TestOneBadCustomerInFiftyRejectsOnlyIt(t *testing.T) {
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: token})
	rec := providertest.NewRecorder(sb)
	srv := httptest.NewServer(rec)
	defer srv.Close()
	batch := ops(50)
	cu := batch[17].Payload.(datafeed.Customer)
	cu.TargetingIndicator = "MAYBE" // the mapper would not let this through; the partner must not either
	batch[17].Payload, batch[17].Body = cu, nil
	res := newClient(t, srv.URL, token).Send(context.Background(), batch, nil)
	ok := 0
	for i, r := range res {
		switch {
		case i == 17:
			if r.Outcome != partner.Rejected || httpx.CodeOf(r.Err) != "invalid_customer" || !strings.Contains(r.Err.Error(), "targetingIndicator: must be one of TARGET, DO_NOT_TARGET") {
				t.Fatalf("bad customer: %s %v", r.Outcome, r.Err)
			}
			if strings.Contains(r.Err.Error(), "customers[") {
				t.Errorf("reject message %q carries the request-wide index", r.Err)
			}
		case r.Outcome == partner.OK:
			ok++
		}
		if r.RequestID == "" {
			t.Errorf("result %d has no request id", i)
		}
	}
	st := sb.State()
	if ok != 49 || len(st.Customers) != 49 || st.CustomersSeen != 49 || st.Customers["C017"] != nil {
		t.Fatalf("%d ok, sandbox holds %d (received %d); want 49 delivered and the bad one never resent", ok, len(st.Customers), st.CustomersSeen)
	}
	if len(customerCalls(rec)) != 2 || !strings.HasPrefix(customerCalls(rec)[1], "POST 49 ") {
		t.Fatalf("calls %v; want the 50, then the 49", customerCalls(rec))
	}
	if res[17].RequestID != strings.Fields(customerCalls(rec)[0])[2] || res[0].RequestID != strings.Fields(customerCalls(rec)[1])[2] {
		t.Fatalf("request ids %s / %s, calls %v", res[17].RequestID, res[0].RequestID, customerCalls(rec))
	}
}

// Forms of validationErrors the partner may send (their form is not
// published), and errors that name no customer: those fail the whole
// request as before.
func TestValidationErrorsAreAttributedWhenTheyNameACustomer(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   []partner.Outcome
		code   string // of the rejected one(s)
	}{
		{"path then colon", 400, `{"type":"ValidationException","title":"Bad request","status":400,"validationErrors":["customers[1].postalCode: must not be blank"],"requestId":"r"}`,
			[]partner.Outcome{partner.OK, partner.Rejected, partner.OK}, "invalid_customer"},
		{"path then space", 400, `{"type":"ValidationException","status":400,"validationErrors":["customers[2].accounts[0].type must be one of PPD, MMA"]}`,
			[]partner.Outcome{partner.OK, partner.OK, partner.Rejected}, "invalid_customer"},
		{"objects", 400, `{"type":"ValidationException","status":400,"validationErrors":[{"field":"customers[0].country","message":"size must be 2"}]}`,
			[]partner.Outcome{partner.Rejected, partner.OK, partner.OK}, "invalid_customer"},
		{"seed-doc 500 with details", 500, `{"error":"validation failed","details":[{"index":1,"field":"postalCode","message":"required"}]}`,
			[]partner.Outcome{partner.OK, partner.Rejected, partner.OK}, "invalid_customer"},
		{"names no customer", 400, `{"type":"ValidationException","status":400,"validationErrors":["customers: size must be between 1 and 50"]}`,
			[]partner.Outcome{partner.Rejected, partner.Rejected, partner.Rejected}, "ValidationException"},
		{"one named, one not", 400, `{"type":"ValidationException","status":400,"validationErrors":["customers[1].postalCode: required","request too large"]}`,
			[]partner.Outcome{partner.Rejected, partner.Rejected, partner.Rejected}, "ValidationException"},
		{"index outside the request", 400, `{"type":"ValidationException","status":400,"validationErrors":["customers[7].postalCode: required"]}`,
			[]partner.Outcome{partner.Rejected, partner.Rejected, partner.Rejected}, "invalid:7"},
		{"unreadable", 400, `{"type":"HttpMessageNotReadable","title":"Request could not be parsed","status":400}`,
			[]partner.Outcome{partner.Rejected, partner.Rejected, partner.Rejected}, "HttpMessageNotReadable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: token})
			first := true
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if first {
					first = false
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(tc.status)
					_, _ = w.Write([]byte(tc.body))
					return
				}
				sb.ServeHTTP(w, r)
			}))
			defer srv.Close()
			res := newClient(t, srv.URL, token).Send(context.Background(), ops(3), nil)
			for i, r := range res {
				if r.Outcome != tc.want[i] {
					t.Fatalf("result %d: %s %v; want %s", i, r.Outcome, r.Err, tc.want[i])
				}
				if r.Outcome == partner.Rejected && httpx.CodeOf(r.Err) != tc.code {
					t.Fatalf("result %d: code %q; want %q (%v)", i, httpx.CodeOf(r.Err), tc.code, r.Err)
				}
			}
		})
	}
}

func TestRequestIDIsSentAndTheEchoRecorded(t *testing.T) {
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: token})
	rec := providertest.NewRecorder(sb)
	srv := httptest.NewServer(rec)
	defer srv.Close()
	n := 0
	c, err := datafeed.New(datafeed.Config{BaseURL: srv.URL, Token: token, RequestID: func() string { n++; return fmt.Sprintf("run7-call%d", n) }})
	if err != nil {
		t.Fatal(err)
	}
	res := c.Send(context.Background(), ops(2), nil)
	if res[0].RequestID != "run7-call1" || sb.State().RequestIDs[0] != "run7-call1" || customerCalls(rec)[0] != "POST 2 run7-call1" {
		t.Fatalf("result id %q, sandbox %v, calls %v", res[0].RequestID, sb.State().RequestIDs, customerCalls(rec))
	}
	// Where the echo differs from what we sent, the echo is what the
	// partner's logs know.
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"requestId":"partner-side-id"}`))
	}))
	defer srv2.Close()
	if r := newClient(t, srv2.URL, token).Send(context.Background(), ops(1), nil); r[0].RequestID != "partner-side-id" {
		t.Fatalf("recorded %q; want the echoed requestId", r[0].RequestID)
	}
}

// One table of the published material lists SessionValidationException as
// a 500: it is a session refusal, not an outage to retry five times.
func TestSessionValidationExceptionAs500RenewsTheSession(t *testing.T) {
	e := newSessionEnv(t)
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == datafeed.PathCustomers {
			calls++
			if calls == 1 {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"type":"SessionValidationException","title":"Session expired","status":500}`))
				return
			}
		}
		e.sb.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, _ := datafeed.New(datafeed.Config{BaseURL: srv.URL})
	if r := c.Send(context.Background(), ops(1), nil); r[0].Outcome != partner.OK || calls != 2 || e.sb.State().Sessions != 2 {
		t.Fatalf("%s %v after %d calls, %d sessions; want OK after one renewal", r[0].Outcome, r[0].Err, calls, e.sb.State().Sessions)
	}
}
