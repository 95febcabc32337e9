package clubready_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/providers/clubready"
	"github.com/northwind-data/etl/internal/sandbox"
)

var bearer = map[string]string{"Authorization": "Bearer " + vaultKey}

// vaultReq is a valid vault request for the test visa card.
func vaultReq(ref string) clubready.VaultRequest {
	return clubready.VaultRequest{OwnerType: "TempStUser", OwnerId: 100123, ExternalRef: ref, CardNumber: visaPAN, Cvv: cvv,
		ExpMonth: 2, ExpYear: 2040, NameOnCard: "ADA LOVELACE", BillingZip: "78701", FirstName: "Ada", LastName: "Lovelace",
		Address1: "1 Main St", City: "Austin", State: "TX", PostalCode: "78753", CountryCode: "US"}
}

// issue asks the sandbox vault for a token.
func issue(t *testing.T, e *env, req clubready.VaultRequest) string {
	t.Helper()
	status, body := post(t, e.url, clubready.VaultPath, bearer, req)
	var ans clubready.VaultResponse
	if status != 200 || json.Unmarshal(body, &ans) != nil || ans.ProfileToken == "" || ans.AcctToken == "" {
		t.Fatalf("vault: %d %s", status, body)
	}
	return ans.ProfileToken
}

func importReq(token string, owner int) clubready.ImportRequest {
	return clubready.ImportRequest{ProfileToken: token, NewOwnerId: &owner}
}

func importAnswer(t *testing.T, status int, body []byte) clubready.ImportResponse {
	t.Helper()
	var ans clubready.ImportResponse
	if status != 200 || json.Unmarshal(body, &ans) != nil {
		t.Fatalf("import: %d %s", status, body)
	}
	return ans
}

// TestSandboxDocExample sends the doc's sample request (every parameter in
// the body, as ServiceStack allows) and checks the answer has the
// documented shape, every PaymentProfile field included.
func TestSandboxDocExample(t *testing.T) {
	e := newEnv(t, nil)
	tok := issue(t, e, vaultReq("card/C1/K1"))
	status, body := post(t, e.url, clubready.ImportPath, nil, map[string]any{
		"XForwardedFor": fwdIP, "ApiKey": apiKey, "ProfileToken": tok,
		"DoNotUpdatePaymentTypePreference": false, "NewOwnerId": 100123,
	})
	var doc map[string]json.RawMessage
	if status != 200 || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("%d %s", status, body)
	}
	for _, k := range []string{"Success", "Message", "PaymentProfile"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("answer lacks %s", k)
		}
	}
	var pp map[string]any
	if json.Unmarshal(doc["PaymentProfile"], &pp) != nil {
		t.Fatalf("PaymentProfile: %s", doc["PaymentProfile"])
	}
	documented := []string{"PaymentProfileId", "AcctToken", "OwnerId", "OwnerTypeId", "AcctTypeId", "AcctClassId", "PrefixName",
		"FirstName", "MiddleName", "LastName", "SuffixName", "Address1", "Address2", "Urbanization", "City", "State", "PostalCode",
		"CountryCode", "Last4", "CcExpMonth", "CcExpYear", "IsTemp", "IsDisabled", "OnHoldUtc", "OnHoldReasonCode",
		"OnHoldReasonDetail", "AcctUpdaterFlagUtc", "CreatedBy", "CreatedUtc", "ModifiedBy", "ModifiedUtc", "AcctUpdaterFlag",
		"EntryModeId", "ExcludeFromAcctUpdater"}
	for _, k := range documented {
		if _, ok := pp[k]; !ok {
			t.Errorf("PaymentProfile lacks %s", k)
		}
	}
	if len(pp) != len(documented) {
		t.Errorf("PaymentProfile has %d fields, the doc %d", len(pp), len(documented))
	}
	ans := importAnswer(t, status, body)
	p := ans.PaymentProfile
	if !ans.Success || p == nil || p.PaymentProfileId != 1 || p.OwnerId != 100123 || p.OwnerTypeId != 1 || p.Last4 != "1111" ||
		*p.CcExpMonth != 2 || *p.CcExpYear != 40 || p.FirstName != "Ada" || p.PostalCode != "78753" || !p.IsTemp ||
		p.CreatedUtc != "2026-11-23T10:00:00Z" || len(p.AcctToken) < 60 {
		t.Fatalf("answer %s", body)
	}
	noCardData(t, "import answer", string(body))
}

func TestSandboxTokenShape(t *testing.T) {
	e := newEnv(t, nil)
	tok := issue(t, e, vaultReq("card/C1/K1"))
	parts := strings.Split(tok, ".")
	if len(tok) < 1000 || len(tok) > 4000 || len(parts) != 3 {
		t.Fatalf("token of %d characters, %d parts", len(tok), len(parts))
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	if string(hdr) != `{"alg":"HS256","typ":"JWT"}` || json.Unmarshal(raw, &c) != nil {
		t.Fatalf("header %s claims %s", hdr, raw)
	}
	if c["iat"] != float64(providertest.T0.Unix()) || c["exp"] != float64(providertest.T0.Add(5*time.Minute).Unix()) || c["owner_id"] != float64(100123) ||
		c["owner_type"] != "TempStUser" || c["last4"] != "1111" || c["external_ref"] != "card/C1/K1" || c["cc_exp_year"] != float64(2040) {
		t.Errorf("claims %s", raw)
	}
	noCardData(t, "token claims", string(raw))
	if exp, err := clubready.TokenExpiry(tok); err != nil || !exp.Equal(providertest.T0.Add(5*time.Minute)) {
		t.Errorf("TokenExpiry %v %v", exp, err)
	}
}

func TestSandboxAuth(t *testing.T) {
	e := newEnv(t, nil)
	tok := issue(t, e, vaultReq("card/C1/K1"))
	tests := []struct {
		name, path string
		hdr        map[string]string
		body       any
	}{
		{"vault without key", clubready.VaultPath, nil, vaultReq("card/C1/K1")},
		{"vault with the api key", clubready.VaultPath, map[string]string{"Authorization": "Bearer " + apiKey}, vaultReq("card/C1/K1")},
		{"import without key", clubready.ImportPath, nil, importReq(tok, 100123)},
		{"import with a wrong key", clubready.ImportPath + "?ApiKey=nope", nil, importReq(tok, 100123)},
		{"import with the vault key", clubready.ImportPath + "?ApiKey=" + vaultKey, nil, importReq(tok, 100123)},
	}
	for _, tc := range tests {
		status, body := post(t, e.url, tc.path, tc.hdr, tc.body)
		var er clubready.ErrorResponse
		if status != 401 || json.Unmarshal(body, &er) != nil || er.ResponseStatus.ErrorCode != "Unauthorized" || er.ResponseStatus.Message == "" {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
	}
	if st := e.sb.State(); st.Unauthorized != len(tests) || st.Imports != 0 || st.TokensIssued != 1 {
		t.Fatalf("state %+v", st)
	}
}

func TestSandboxVaultValidation(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, field string
		edit        func(*clubready.VaultRequest)
	}{
		{"owner type", "OwnerType", func(r *clubready.VaultRequest) { r.OwnerType = "Member" }},
		{"owner id", "OwnerId", func(r *clubready.VaultRequest) { r.OwnerId = 0 }},
		{"external ref", "ExternalRef", func(r *clubready.VaultRequest) { r.ExternalRef = " " }},
		{"short number", "CardNumber", func(r *clubready.VaultRequest) { r.CardNumber = "41111111" }},
		{"luhn", "CardNumber", func(r *clubready.VaultRequest) { r.CardNumber = "4111111111111112" }},
		{"cvv", "Cvv", func(r *clubready.VaultRequest) { r.Cvv = "73" }},
		{"month", "ExpMonth", func(r *clubready.VaultRequest) { r.ExpMonth = 0 }},
		{"year", "ExpYear", func(r *clubready.VaultRequest) { r.ExpYear = 40 }},
		{"expired", "ExpYear", func(r *clubready.VaultRequest) { r.ExpYear, r.ExpMonth = 2026, 10 }},
	}
	for _, tc := range tests {
		req := vaultReq("card/C1/K1")
		tc.edit(&req)
		status, body := post(t, e.url, clubready.VaultPath, bearer, req)
		var er clubready.ErrorResponse
		if status != 400 || json.Unmarshal(body, &er) != nil || er.ResponseStatus.ErrorCode != "ValidationException" ||
			len(er.ResponseStatus.Errors) != 1 || er.ResponseStatus.Errors[0].FieldName != tc.field {
			t.Errorf("%s: %d %s", tc.name, status, body)
		}
		noCardData(t, tc.name, strings.ReplaceAll(string(body), "4111111111111112", visaPAN))
	}
	// The card's own month still counts: November 2026 is valid on providertest.T0.
	req := vaultReq("card/C1/K1")
	req.ExpYear, req.ExpMonth = 2026, 11
	if status, body := post(t, e.url, clubready.VaultPath, bearer, req); status != 200 {
		t.Errorf("card valid this month: %d %s", status, body)
	}
	if status, body := post(t, e.url, clubready.VaultPath, bearer, `{"CardNumber":"`+visaPAN+`","Preferred":true}`); status != 400 ||
		strings.Contains(string(body), visaPAN) {
		t.Errorf("unknown field: %d %s", status, body)
	}
}

func TestSandboxTokenRules(t *testing.T) {
	e := newEnv(t, nil)
	path := clubready.ImportPath + "?ApiKey=" + apiKey
	imp := func(body any) clubready.ImportResponse {
		t.Helper()
		status, out := post(t, e.url, path, nil, body)
		return importAnswer(t, status, out)
	}

	// A token from another signer, and one whose claims were edited.
	other := clubready.NewSandbox(clubready.SandboxOptions{VaultKey: vaultKey, Clock: e.clock, SigningKey: []byte("other")})
	forged := newEnvWith(t, other)
	foreign := issue(t, forged, vaultReq("card/C1/K1"))
	tok := issue(t, e, vaultReq("card/C1/K1"))
	parts := strings.Split(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	edited := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), `"owner_id":100123`, `"owner_id":100999`, 1))) + "." + parts[2]
	for name, bad := range map[string]string{"foreign": foreign, "edited": edited, "garbage": "a.b.c", "not a jwt": "token"} {
		if ans := imp(importReq(bad, 100123)); ans.Success || !strings.Contains(ans.Message, "not valid") || ans.PaymentProfile != nil {
			t.Errorf("%s token: %+v", name, ans)
		}
	}

	// TempStUser without NewOwnerId fails; the same token may be retried.
	if ans := imp(clubready.ImportRequest{ProfileToken: tok}); ans.Success || !strings.Contains(ans.Message, "NewOwnerId") {
		t.Fatalf("no owner: %+v", ans)
	}
	if ans := imp(importReq(tok, 100123)); !ans.Success || ans.PaymentProfile.PaymentProfileId != 1 {
		t.Fatalf("retry after a failure: %+v", ans)
	}
	// Single use.
	if ans := imp(importReq(tok, 100123)); ans.Success || ans.Message != "ProfileToken has already been used" {
		t.Fatalf("reuse: %+v", ans)
	}

	// Five minutes.
	late := issue(t, e, vaultReq("card/C1/K2"))
	e.clock.Advance(5 * time.Minute)
	if ans := imp(importReq(late, 100123)); ans.Success || !strings.Contains(ans.Message, "expired") {
		t.Fatalf("expired: %+v", ans)
	}
	// A User-owned token needs no NewOwnerId; ids are sequential.
	user := vaultReq("card/C1/K3")
	user.OwnerType, user.OwnerId = "User", 100777
	if ans := imp(clubready.ImportRequest{ProfileToken: issue(t, e, user), DoNotUpdatePaymentTypePreference: true}); !ans.Success ||
		ans.PaymentProfile.PaymentProfileId != 2 || ans.PaymentProfile.OwnerId != 100777 {
		t.Fatalf("user token: %+v", ans)
	}

	for name, body := range map[string]any{"no token": importReq("", 1), "malformed": `{"ProfileToken":`} {
		status, out := post(t, e.url, path, nil, body)
		var er clubready.ErrorResponse
		if status != 400 || json.Unmarshal(out, &er) != nil || er.ResponseStatus.ErrorCode == "" {
			t.Errorf("%s: %d %s", name, status, out)
		}
	}

	st := e.sb.State()
	if st.InvalidTokenRefusals != 4 || st.OwnerRefusals != 1 || st.TokenReuseRefusals != 1 || st.ExpiredRefusals != 1 ||
		st.Imports != 9 || st.BadRequests != 2 || len(st.Profiles) != 2 || st.Duplicates != 0 {
		t.Fatalf("state %+v", st)
	}
	if !st.Profiles[0].Preferred || st.Profiles[1].Preferred {
		t.Errorf("preference: %+v", st.Profiles)
	}
}

func newEnvWith(t *testing.T, h http.Handler) *env {
	t.Helper()
	e := newEnv(t, func(http.Handler) http.Handler { return h })
	return e
}

func TestSandboxStateEndpointAndDuplicates(t *testing.T) {
	e := newEnv(t, nil)
	path := clubready.ImportPath + "?ApiKey=" + apiKey
	// The same card imported with two tokens: the detector must see it.
	for range 2 {
		status, body := post(t, e.url, path, nil, importReq(issue(t, e, vaultReq("card/C1/K1")), 100123))
		if !importAnswer(t, status, body).Success {
			t.Fatalf("import: %s", body)
		}
	}
	resp, err := http.Get(e.url + sandbox.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var st clubready.State
	if resp.StatusCode != 200 || json.Unmarshal(body, &st) != nil {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	for _, k := range []string{`"profiles"`, `"id"`, `"owner"`, `"last4"`, `"externalRef"`, `"imports"`, `"token_reuse_refusals"`,
		`"expired_refusals"`, `"duplicates"`} {
		if !strings.Contains(string(body), k) {
			t.Errorf("state lacks %s: %s", k, body)
		}
	}
	if st.Duplicates != 1 || len(st.Profile("card/C1/K1")) != 2 || st.Imports != 2 {
		t.Fatalf("state %s", body)
	}
	noCardData(t, "state", string(body))
	if strings.Contains(string(body), cvv) {
		t.Errorf("state carries the CVV: %s", body)
	}
}
