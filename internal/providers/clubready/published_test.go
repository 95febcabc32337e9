package clubready_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/clubready"
	"github.com/northwind-data/etl/internal/sandbox"
)

// TestAnswerAfterTheImportWasSentKeepsItUncertain is issue 17 row 4: an
// answer after the import went out that does not prove it did not happen
// keeps the op uncertain (its intent open), and the rerun's retry of the
// same token finds the profile instead of importing the card again.
func TestAnswerAfterTheImportWasSentKeepsItUncertain(t *testing.T) {
	serverError := func(w http.ResponseWriter) {
		sandbox.WriteJSON(w, http.StatusInternalServerError, clubready.ErrorResponse{ResponseStatus: clubready.ResponseStatus{
			ErrorCode: "NullReferenceException", Message: "Object reference not set to an instance of an object."}})
	}
	unknownRefusal := func(w http.ResponseWriter) {
		sandbox.WriteJSON(w, http.StatusOK, clubready.ImportResponse{Success: false, Message: "Member account is frozen"})
	}
	conflict := func(w http.ResponseWriter) {
		sandbox.WriteJSON(w, http.StatusConflict, clubready.ErrorResponse{ResponseStatus: clubready.ResponseStatus{
			ErrorCode: "Conflict", Message: "Import in progress"}})
	}
	tests := []struct {
		name string
		// first answers the first attempt, after the sandbox committed
		// it (nil: a lost answer); rest answers every later attempt.
		first, rest func(w http.ResponseWriter)
		imported    bool // the first attempt imported the card
	}{
		{"504 after commit, then an outage", gateway(504), unavailable, true},
		{"502 after commit, then an outage", gateway(502), unavailable, true},
		{"500 after commit, then 500s", serverError, serverError, true},
		{"lost answer, then a refusal not worded already used", nil, unknownRefusal, true},
		{"lost answer, then an unknown 4xx refusal", nil, conflict, true},
		{"504 without commit, then an outage", nil, unavailable, false},
		{"an unknown 4xx refusal on every attempt", nil, conflict, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var healthy atomic.Bool
			e := newEnv(t, faulty(func(n int, next http.Handler, w http.ResponseWriter, r *http.Request) bool {
				switch {
				case healthy.Load():
					return false
				case n == 1 && tc.imported && tc.first == nil:
					drop(t, next, w, r)
				case n == 1 && tc.imported:
					next.ServeHTTP(discardWriter{}, r)
					tc.first(w)
				case n == 1 && tc.first != nil:
					tc.first(w)
				default:
					tc.rest(w)
				}
				return true
			}))
			c := newClient(t, e, nil)
			j := &journal{}
			op := ops(t, c, customer("C1"))[0]
			r := providertest.SendOne(t, c, op, j)
			if r.Outcome != partner.Uncertain || httpx.KindOf(r.Err) != httpx.Uncertain {
				t.Fatalf("result %+v: the card may be at ClubReady, the intent must stay open", r)
			}
			want := 0
			if tc.imported {
				want = 1
			}
			if st := e.sb.State(); len(st.Profiles) != want || st.TokensIssued != 1 {
				t.Fatalf("state %+v", st)
			}
			// The rerun, the partner healthy again: the noted token is
			// retried, never a new one.
			healthy.Store(true)
			op.Intent = j.all()[0]
			e.clock.Advance(time.Minute)
			r = c.Resolve(context.Background(), op, j)
			if r.Outcome != partner.OK {
				t.Fatalf("resolve %+v", r)
			}
			if st := e.sb.State(); len(st.Profiles) != 1 || st.Duplicates != 0 || st.TokensIssued != 1 {
				t.Fatalf("after the rerun: %+v", st)
			}
		})
	}
}

// gateway answers like a proxy in front of ClubReady: a status and HTML.
func gateway(status int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = w.Write([]byte("<html><body>" + http.StatusText(status) + "</body></html>"))
	}
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}

// TestResolveRefusalKeepsTheIntentOpen: a refusal of the previous run's
// token proves only that this retry did nothing.
func TestResolveRefusalKeepsTheIntentOpen(t *testing.T) {
	e := newEnv(t, faulty(func(_ int, _ http.Handler, w http.ResponseWriter, _ *http.Request) bool {
		sandbox.WriteJSON(w, http.StatusOK, clubready.ImportResponse{Success: false, Message: "Member account is frozen"})
		return true
	}))
	c := newClient(t, e, nil)
	op := ops(t, c, customer("C1"))[0]
	tok, err := newVault(t, e.url, vaultKey).CreateProfile(context.Background(), op.Payload.(clubready.VaultRequest))
	if err != nil {
		t.Fatal(err)
	}
	op.Intent = tok.ProfileToken
	if r := c.Resolve(context.Background(), op, nil); r.Outcome != partner.Uncertain || !strings.Contains(r.Err.Error(), "Member account is frozen") {
		t.Fatalf("resolve %+v", r)
	}
}

// TestRefusalsThatProveNothingHappened close the op on its only attempt.
func TestRefusalsThatProveNothingHappened(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(w http.ResponseWriter)
		outcome partner.Outcome
		code    string
	}{
		{"validation refusal with field errors", func(w http.ResponseWriter) {
			sandbox.WriteJSON(w, http.StatusBadRequest, clubready.ErrorResponse{ResponseStatus: clubready.ResponseStatus{
				ErrorCode: "NotEmpty", Message: "'Profile Token' must not be empty.",
				Errors: []clubready.ResponseError{{ErrorCode: "NotEmpty", FieldName: "ProfileToken", Message: "'Profile Token' must not be empty."}}}})
		}, partner.Rejected, "NotEmpty"},
		{"Success false", func(w http.ResponseWriter) {
			sandbox.WriteJSON(w, http.StatusOK, clubready.ImportResponse{Success: false, Message: "Payment method declined"})
		}, partner.Rejected, "import_refused"},
		{"no such route", func(w http.ResponseWriter) {
			sandbox.WriteJSON(w, http.StatusNotFound, clubready.ErrorResponse{ResponseStatus: clubready.ResponseStatus{ErrorCode: "NotFound", Message: "Handler for Request not found"}})
		}, partner.Rejected, "NotFound"},
		{"rate limited", rateLimited, partner.Failed, "TooManyRequests"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, faulty(func(_ int, _ http.Handler, w http.ResponseWriter, _ *http.Request) bool {
				tc.answer(w)
				return true
			}))
			c := newClient(t, e, nil)
			r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], &journal{})
			if r.Outcome != tc.outcome || httpx.CodeOf(r.Err) != tc.code {
				t.Fatalf("result %+v", r)
			}
		})
	}
}

// TestBothFailureShapesAreDecoded: ServiceStack's ResponseStatus under a
// 4xx/5xx, and the DTO's Success:false under a 200, whichever carries
// the message.
func TestBothFailureShapesAreDecoded(t *testing.T) {
	type rs = clubready.ResponseStatus
	tests := []struct {
		name    string
		status  int
		body    any
		outcome partner.Outcome
		code    string
		message string // the error's message ("" for OK)
	}{
		{"200 Success false with the refusal in ResponseStatus", 200,
			map[string]any{"Success": false, "ResponseStatus": rs{ErrorCode: "TokenUsed", Message: "ProfileToken has already been used"}},
			partner.OK, "", ""},
		{"400 validation with field errors only", 400,
			clubready.ErrorResponse{ResponseStatus: rs{ErrorCode: "ValidationException", Errors: []clubready.ResponseError{
				{ErrorCode: "GreaterThan", FieldName: "NewOwnerId", Message: "'New Owner Id' must be greater than '0'."}}}},
			partner.Rejected, "ValidationException", "NewOwnerId: 'New Owner Id' must be greater than '0'."},
		{"400 Success false", 400, clubready.ImportResponse{Success: false, Message: "Payment method declined"},
			partner.Rejected, "", "Payment method declined"},
		{"500 ResponseStatus", 500, clubready.ErrorResponse{ResponseStatus: rs{ErrorCode: "Exception", Message: "Database timeout"}},
			partner.Uncertain, "import_unsettled", "Database timeout"},
		{"200 without Success", 200, map[string]any{"Message": "ok"}, partner.Uncertain, "bad_response", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, faulty(func(_ int, _ http.Handler, w http.ResponseWriter, _ *http.Request) bool {
				sandbox.WriteJSON(w, tc.status, tc.body)
				return true
			}))
			c := newClient(t, e, nil)
			r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], &journal{})
			if r.Outcome != tc.outcome {
				t.Fatalf("result %+v", r)
			}
			if tc.outcome == partner.OK {
				return
			}
			var he *httpx.Error
			if !errors.As(r.Err, &he) {
				t.Fatalf("error %v", r.Err)
			}
			if tc.code != "" && httpx.CodeOf(r.Err) != tc.code {
				t.Errorf("code %q, want %q (%v)", httpx.CodeOf(r.Err), tc.code, r.Err)
			}
			if tc.message != "" && !strings.Contains(r.Err.Error(), tc.message) || strings.Contains(r.Err.Error(), "; ;") ||
				strings.Contains(r.Err.Error(), ": ; ") {
				t.Errorf("message %q, want %q", r.Err.Error(), tc.message)
			}
		})
	}
}

// TestIntentNamesTheCardForAnOperator: the journal detail carries the
// last four and the member beside the token, never the card number.
func TestIntentNamesTheCardForAnOperator(t *testing.T) {
	e := newEnv(t, nil)
	c := newClient(t, e, nil)
	j := &journal{}
	if r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], j); r.Outcome != partner.OK {
		t.Fatalf("result %+v", r)
	}
	note := j.all()[0]
	noCardData(t, "intent", note)
	d := clubready.ParseIntent(note)
	exp, ok := d.Expires()
	if d.Last4 != "1111" || d.Member != 100123 || !ok || !exp.Equal(providertest.T0.Add(5*time.Minute)) {
		t.Fatalf("intent %+v, expires %v", d, exp)
	}
	// A bare token, as older binaries noted it, still reads.
	if bare := clubready.ParseIntent(d.Token); bare.Token != d.Token || bare.Last4 != "" {
		t.Fatalf("bare token: %+v", bare)
	}
}

func TestSandboxFollowsThePublishedDTO(t *testing.T) {
	e := newEnv(t, nil)
	path := clubready.ImportPath + "?ApiKey=" + apiKey
	// ServiceStack ignores what the DTO does not have, so a field sent by
	// mistake (these are on no current import DTO) is dropped, not refused.
	tok := issue(t, e, vaultReq("card/C1/K1"))
	status, body := post(t, e.url, path, map[string]string{"X-Forwarded-For": fwdIP}, map[string]any{
		"ProfileToken": tok, "NewOwnerId": 100123, "AcctToken": "AT1", "StoreId": 7, "UserId": 8, "IsDefault": true, "ExternalRef": "x"})
	if ans := importAnswer(t, status, body); !ans.Success {
		t.Fatalf("unknown fields: %s", body)
	}
	// The end user's IP comes from the X-Forwarded-For header; a header
	// spelled XForwardedFor is another header.
	tok2 := issue(t, e, vaultReq("card/C1/K2"))
	status, body = post(t, e.url, path, map[string]string{"XForwardedFor": "198.51.100.9"}, importReq(tok2, 100123))
	if !importAnswer(t, status, body).Success {
		t.Fatalf("import: %s", body)
	}
	st := e.sb.State()
	if len(st.Profiles) != 2 || st.Profiles[0].ForwardedFor != fwdIP || st.Profiles[1].ForwardedFor != "" {
		t.Fatalf("state %+v", st)
	}
}

func TestSandboxTokenLifeAndSingleUseOnItsClock(t *testing.T) {
	e := newEnv(t, nil)
	path := clubready.ImportPath + "?ApiKey=" + apiKey
	imp := func(tok string) clubready.ImportResponse {
		t.Helper()
		status, body := post(t, e.url, path, nil, importReq(tok, 100123))
		return importAnswer(t, status, body)
	}
	used := issue(t, e, vaultReq("card/C1/K1"))
	if !imp(used).Success {
		t.Fatal("first import")
	}
	fresh := issue(t, e, vaultReq("card/C1/K2"))
	e.clock.Advance(4 * time.Minute)
	if ans := imp(used); ans.Success || !strings.Contains(ans.Message, "already been used") {
		t.Fatalf("reuse within the life: %+v", ans)
	}
	// Advance moves the sandbox's clock beyond its injected one; past
	// the 5 minutes a token is refused as expired, used or not (the order
	// of the two checks is not published: this one tells a client less).
	e.sb.Advance(2 * time.Minute)
	for name, tok := range map[string]string{"used": used, "never used": fresh} {
		if ans := imp(tok); ans.Success || !strings.Contains(ans.Message, "expired") {
			t.Errorf("%s token after 6 minutes: %+v", name, ans)
		}
	}
}

func TestSandboxFailAfterCommit(t *testing.T) {
	e := newEnv(t, nil)
	path := clubready.ImportPath + "?ApiKey=" + apiKey
	called := 0
	e.sb.FailAfterCommit(1, http.StatusGatewayTimeout, func() { called++ })
	status, body := post(t, e.url, path, nil, importReq(issue(t, e, vaultReq("card/C1/K1")), 100123))
	if status != 504 || strings.Contains(string(body), "Success") || called != 1 {
		t.Fatalf("%d %s (then called %d times)", status, body, called)
	}
	status, body = post(t, e.url, path, nil, importReq(issue(t, e, vaultReq("card/C1/K2")), 100123))
	if !importAnswer(t, status, body).Success || called != 1 {
		t.Fatalf("second import: %d %s", status, body)
	}
	if st := e.sb.State(); len(st.Profiles) != 2 || st.GatewayErrors != 1 {
		t.Fatalf("state %+v", st)
	}
}
