package q2open_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/providers/q2open"
	"github.com/northwind-data/etl/internal/sandbox"
)

var objectIDRE = regexp.MustCompile(`^[0-9a-f]{24}$`)

// docSandbox accepts the doc example's token, at a time before the
// example's token.expiration (2025-01-30).
func docSandbox(t *testing.T) (*q2open.Sandbox, string) {
	t.Helper()
	sb := q2open.NewSandbox(q2open.SandboxOptions{Token: docToken, Clock: sandbox.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))})
	return sb, providertest.Serve(t, sb)
}

// shape reduces a JSON document to its structure: keys and value kinds.
func shape(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, x := range t {
			m[k] = shape(x)
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = shape(x)
		}
		return out
	}
	return fmt.Sprintf("%T", v)
}

func TestSandboxAnswersTheDocExampleInTheDocShape(t *testing.T) {
	sb, url := docSandbox(t)
	status, out := post(t, url, "Bearer "+docToken, providertest.ReadFile(t, "testdata/doc_request.json"))
	if status != http.StatusOK {
		t.Fatalf("doc example: HTTP %d %s", status, out)
	}
	var got, want any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(providertest.ReadFile(t, "testdata/doc_response.json"), &want)
	if !reflect.DeepEqual(shape(got), shape(want)) {
		t.Fatalf("answer %s\ndoes not have the doc's shape %v", out, shape(want))
	}
	var r q2open.SyncResponse
	_ = json.Unmarshal(out, &r)
	if !objectIDRE.MatchString(r.ClientID) || !objectIDRE.MatchString(r.Cards[0].PaymentMethodID) || r.Cards[0].Identifier != "fiId123" {
		t.Fatalf("answer %s: ids must look like the doc's, identifier echoed", out)
	}
	parts := strings.Split(r.SSOToken, ".")
	if len(parts) != 3 {
		t.Fatalf("ssoToken %q is not a JWT", r.SSOToken)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if string(hdr) != `{"alg":"HS256","typ":"JWT"}` || !strings.Contains(string(claims), `"sub":"`+r.ClientID+`"`) {
		t.Fatalf("ssoToken header %s claims %s", hdr, claims)
	}

	st := sb.State()
	c, ok := st.Find("Bk0zwVx1Z")
	wantCard := q2open.CardState{Identifier: "fiId123", PaymentMethodID: r.Cards[0].PaymentMethodID, Last4: "1111", Brand: "visa", Type: "credit",
		Status: "verified", Default: true}
	if !ok || c.ClientID != r.ClientID || c.FirstName != "Demo" || c.LastName != "User" || c.Email != "demo@demo.com" ||
		c.Syncs != 1 || len(c.Cards) != 1 || c.Cards[0] != wantCard {
		t.Fatalf("state %+v", st)
	}
	if st.Totals != (q2open.Totals{Requests: 1, ClientsCreated: 1, PaymentMethodsAdded: 1}) {
		t.Fatalf("totals %+v", st.Totals)
	}
}

// The state endpoint is what the e2e tests read: same content as State(),
// and no card number, card code or SSO token in it.
func TestSandboxStateEndpointHoldsNoSecrets(t *testing.T) {
	sb, _ := docSandbox(t)
	mux := http.NewServeMux()
	mux.Handle("/q2open/", http.StripPrefix("/q2open", sb)) // as the lead mounts it
	url := providertest.Serve(t, mux)
	status, out := post(t, url+"/q2open", "Bearer "+docToken, providertest.ReadFile(t, "testdata/doc_request.json"))
	if status != http.StatusOK {
		t.Fatalf("HTTP %d %s", status, out)
	}
	var r q2open.SyncResponse
	_ = json.Unmarshal(out, &r)
	resp, err := http.Get(url + "/q2open" + sandbox.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var st q2open.State
	if err := json.Unmarshal(body, &st); err != nil || !reflect.DeepEqual(st, sb.State()) {
		t.Fatalf("state endpoint %s (%v) differs from State()", body, err)
	}
	for _, secret := range []string{visaPAN, `"123"`, r.SSOToken, "cardCode"} {
		if bytes.Contains(body, []byte(secret)) {
			t.Errorf("state carries %q: %s", secret, body)
		}
	}
	for _, k := range []string{`"clients_created":1`, `"duplicate_clients":0`, `"payment_methods_added":1`, `"duplicate_payment_methods":0`, `"requests":1`, `"last4":"1111"`} {
		if !bytes.Contains(body, []byte(k)) {
			t.Errorf("state lacks %s: %s", k, body)
		}
	}
}

func TestSandboxAuth(t *testing.T) {
	sb, url := docSandbox(t)
	body := providertest.ReadFile(t, "testdata/doc_request.json")
	for _, auth := range []string{"", "Bearer nope", "Bearer", docToken, "Basic " + base64.StdEncoding.EncodeToString([]byte(docToken+":"))} {
		status, out := post(t, url, auth, body)
		var e q2open.ErrorBody
		if status != http.StatusUnauthorized || json.Unmarshal(out, &e) != nil || e.Message == "" {
			t.Errorf("auth %q: HTTP %d %s; want 401 with the error shape", auth, status, out)
		}
	}
	if st := sb.State(); len(st.Clients) != 0 || st.Totals.Unauthorized != 5 || st.Totals.Requests != 5 {
		t.Fatalf("refused requests changed state: %+v", st)
	}
}

func TestSandboxValidation(t *testing.T) {
	doc := providertest.ReadFile(t, "testdata/doc_request.json")
	edit := func(f func(r *q2open.SyncRequest)) []byte {
		var r q2open.SyncRequest
		if err := json.Unmarshal(doc, &r); err != nil {
			t.Fatal(err)
		}
		f(&r)
		return clearJSON(t, r)
	}
	cardEdit := func(f func(c *q2open.Card)) []byte {
		return edit(func(r *q2open.SyncRequest) { f(&r.Cards[0]) })
	}
	tests := []struct {
		name, contains string
		body           []byte
	}{
		{"no identifier", "client.identifier: required", edit(func(r *q2open.SyncRequest) { r.Client.Identifier = " " })},
		{"expired token", "token.expiration: must be in the future", edit(func(r *q2open.SyncRequest) { r.Token.Expiration = "2024-12-31T00:00:00.000Z" })},
		{"bad expiration", "token.expiration: must be an ISO 8601", edit(func(r *q2open.SyncRequest) { r.Token.Expiration = "tomorrow" })},
		{"no card identifier", "cards[0].identifier: required", cardEdit(func(c *q2open.Card) { c.Identifier = "" })},
		{"short number", "cards[0].cardNumber: must be 12 to 19 digits", cardEdit(func(c *q2open.Card) { c.CardNumber = "41111111111" })},
		{"long number", "cards[0].cardNumber: must be 12 to 19 digits", cardEdit(func(c *q2open.Card) { c.CardNumber = visaPAN + "0000" })},
		{"spaced number", "cards[0].cardNumber: must be 12 to 19 digits", cardEdit(func(c *q2open.Card) { c.CardNumber = "4111 1111 1111 1111" })},
		{"Luhn", "cards[0].cardNumber: fails the Luhn check", cardEdit(func(c *q2open.Card) { c.CardNumber = "4111111111111112" })},
		{"code", "cards[0].cardCode: must be 3 or 4 digits", cardEdit(func(c *q2open.Card) { c.CardCode = "12" })},
		{"month one digit", "cards[0].expMonth: must be two digits", cardEdit(func(c *q2open.Card) { c.ExpMonth = "2" })},
		{"month 13", "cards[0].expMonth: must be two digits", cardEdit(func(c *q2open.Card) { c.ExpMonth = "13" })},
		{"month missing", "cards[0].expMonth", cardEdit(func(c *q2open.Card) { c.ExpMonth = "" })},
		{"year two digits", "cards[0].expYear: must be four digits", cardEdit(func(c *q2open.Card) { c.ExpYear = "40" })},
		{"type", "cards[0].cardType: must be one of credit, debit", cardEdit(func(c *q2open.Card) { c.CardType = "prepaid" })},
		{"brand", "cards[0].cardBrand: must be one of", cardEdit(func(c *q2open.Card) { c.CardBrand = "unionpay" })},
		{"brand case", "cards[0].cardBrand", cardEdit(func(c *q2open.Card) { c.CardBrand = "Visa" })},
		{"default", `cards[0].setAsDefault: must be "true" or "false"`, cardEdit(func(c *q2open.Card) { c.SetAsDefault = "yes" })},
		{"default as a boolean", "malformed JSON", bytes.Replace(doc, []byte(`"setAsDefault": "true"`), []byte(`"setAsDefault": true`), 1)},
		{"unknown field", "malformed JSON", []byte(`{"client": {"identifier": "x"}, "extra": 1}`)},
		{"truncated", "malformed JSON", doc[:40]},
	}
	sb, url := docSandbox(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, out := post(t, url, "Bearer "+docToken, tc.body)
			var e q2open.ErrorBody
			if status != http.StatusBadRequest || json.Unmarshal(out, &e) != nil || !strings.Contains(e.Message, tc.contains) {
				t.Fatalf("HTTP %d %s; want 400 containing %q", status, out, tc.contains)
			}
			if bytes.Contains(out, []byte("41111111111")) {
				t.Fatalf("the error echoes the card number: %s", out)
			}
		})
	}
	if st := sb.State(); len(st.Clients) != 0 || st.Totals.Rejected != len(tests) {
		t.Fatalf("refused requests changed state: %+v", st)
	}
	// Optional fields may be left out.
	status, out := post(t, url, "Bearer "+docToken, []byte(`{"client": {"identifier": "min", "meta": {}}, "token": {"expiration": ""}, "cards": [
		{"identifier": "k", "cardNumber": "`+visaPAN+`", "expMonth": "12", "expYear": "2030", "setAsDefault": ""}]}`))
	if status != http.StatusOK {
		t.Fatalf("minimal request: HTTP %d %s", status, out)
	}
}

// Q2 dedups the client by identifier, not its cards: the same sync twice
// (or a card added twice) holds two payment methods, and a repeat sync
// does not change meta. A client that sends a card twice shows up here.
func TestSandboxKeepsDuplicateCardsAndMeta(t *testing.T) {
	sb, url := docSandbox(t)
	doc := providertest.ReadFile(t, "testdata/doc_request.json")
	sync := func(body []byte) q2open.SyncResponse {
		t.Helper()
		status, out := post(t, url, "Bearer "+docToken, body)
		var r q2open.SyncResponse
		if status != http.StatusOK || json.Unmarshal(out, &r) != nil {
			t.Fatalf("HTTP %d %s", status, out)
		}
		return r
	}
	first := sync(doc)
	var r q2open.SyncRequest
	_ = json.Unmarshal(doc, &r)
	r.Client.Meta.Email = "new@demo.com"
	second := sync(clearJSON(t, r))
	if second.ClientID != first.ClientID || second.Cards[0].PaymentMethodID == first.Cards[0].PaymentMethodID {
		t.Fatalf("first %+v second %+v: same client, a second payment method", first, second)
	}
	// The same card through POST /v1/payment: a third one.
	status, out := call(t, http.MethodPost, url+q2open.PaymentPath, docToken, providertest.MustJSON(t, map[string]string{"clientId": first.ClientID,
		"paymentType": "card", "identifier": "fiId123", "cardNumber": visaPAN, "expMonth": "02", "expYear": "2040", "setAsDefault": "false"}))
	if status != http.StatusOK {
		t.Fatalf("add payment: HTTP %d %s", status, out)
	}
	st := sb.State()
	c, _ := st.Find("Bk0zwVx1Z")
	if len(st.Clients) != 1 || c.Syncs != 2 || c.Email != "demo@demo.com" || len(c.Method("fiId123")) != 3 {
		t.Fatalf("state %+v: one client, meta of the first sync, three methods", st)
	}
	want := q2open.Totals{Requests: 3, ClientsCreated: 1, PaymentMethodsAdded: 3, DuplicatePaymentMethods: 2, DuplicateAdds: 2}
	if st.Totals != want {
		t.Fatalf("totals %+v, want %+v", st.Totals, want)
	}
	// Another identifier is another client.
	r.Client.Identifier = "other"
	if sync(clearJSON(t, r)).ClientID == first.ClientID {
		t.Fatal("two identifiers share a clientId")
	}
}

// Concurrent syncs of one identifier (a retry racing its original) must
// not create two clients; each adds its card.
func TestSandboxConcurrentSyncsMakeOneClient(t *testing.T) {
	sb, url := docSandbox(t)
	doc := providertest.ReadFile(t, "testdata/doc_request.json")
	var wg sync.WaitGroup
	ids := make([]string, 16)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := providertest.RawCall(http.MethodPost, url+q2open.SyncPath, map[string]string{"Authorization": "Bearer " + docToken}, doc)
			if err != nil {
				return
			}
			var r q2open.SyncResponse
			_ = json.NewDecoder(bytes.NewReader(rep.Body)).Decode(&r)
			ids[i] = r.ClientID
		}()
	}
	wg.Wait()
	st := sb.State()
	if len(st.Clients) != 1 || st.Totals.ClientsCreated != 1 || st.Totals.DuplicateClients != 0 || st.Clients[0].Syncs != 16 || st.Totals.PaymentMethodsAdded != 16 {
		t.Fatalf("state %+v", st)
	}
	for _, id := range ids {
		if id != st.Clients[0].ClientID {
			t.Fatalf("answers %v: every sync must return the one clientId", ids)
		}
	}
}

func TestSandboxSSOTokenExpiresAsAsked(t *testing.T) {
	_, url := docSandbox(t)
	status, out := post(t, url, "Bearer "+docToken, providertest.ReadFile(t, "testdata/doc_request.json"))
	var r q2open.SyncResponse
	if status != http.StatusOK || json.Unmarshal(out, &r) != nil {
		t.Fatalf("HTTP %d %s", status, out)
	}
	claims, _ := base64.RawURLEncoding.DecodeString(strings.Split(r.SSOToken, ".")[1])
	var c struct{ Exp, IAT int64 }
	_ = json.Unmarshal(claims, &c)
	if c.Exp != time.Date(2025, 1, 30, 0, 0, 0, 0, time.UTC).Unix() || c.IAT != time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix() {
		t.Fatalf("claims %s", claims)
	}
}

var _ http.Handler = (*q2open.Sandbox)(nil)
