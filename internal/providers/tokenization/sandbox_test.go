package tokenization_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/providers/tokenization"
	"github.com/northwind-data/etl/internal/sandbox"
)

var (
	docPartners = map[int]string{792: "partnerName", 793: "newPartnerName"}
	uuidRE      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

const clients = tokenization.ClientsPath

// errorOf decodes an error answer and checks it has the doc's shape.
func errorOf(t *testing.T, b []byte) tokenization.ErrorBody {
	t.Helper()
	sameShape(t, "error", decode(t, providertest.ReadFile(t, "testdata/doc_404_response.json")), decode(t, b))
	var e tokenization.ErrorBody
	_ = json.Unmarshal(b, &e)
	if !uuidRE.MatchString(e.UUID) || e.Message == "" {
		t.Errorf("error %s: want a uuid and a message", b)
	}
	return e
}

// validationOf decodes a 409 and checks it has the published shape
// {success: false, errorCode, message, errors: {<field>: {attribute,
// message, errorCode}}}; it returns "field: message" of each field error.
func validationOf(t *testing.T, status int, b []byte) []string {
	t.Helper()
	if status != http.StatusConflict {
		t.Errorf("HTTP %d %s: validation errors are published as 409", status, b)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	for _, k := range []string{"success", "errorCode", "message", "errors"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("%s: no %s", b, k)
		}
	}
	var e tokenization.ValidationErrorBody
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if e.Success || e.ErrorCode != 7409 || e.Message == "" || len(e.Errors) == 0 {
		t.Errorf("validation error %s", b)
	}
	var out []string
	for f, fe := range e.Errors {
		if fe.Attribute != f || fe.Message == "" || fe.ErrorCode == "" {
			t.Errorf("field error %q: %+v", f, fe)
		}
		out = append(out, f+": "+fe.Message)
	}
	return out
}

func containsPrefix(xs []string, want string) bool {
	for _, x := range xs {
		if strings.HasPrefix(x, want) {
			return true
		}
	}
	return false
}

func createDoc(t *testing.T, s *server, body []byte) int {
	t.Helper()
	status, out := call(t, http.MethodPost, s.url+clients, user, pass, body)
	if status != http.StatusCreated {
		t.Fatalf("create: HTTP %d %s", status, out)
	}
	var r tokenization.IDResponse
	_ = json.Unmarshal(out, &r)
	return r.ID
}

// Every example request of the doc, answered in the doc's example shape.
func TestSandboxDocExamples(t *testing.T) {
	s := newSandbox(t, docPartners)

	// Create -> {id}.
	status, out := call(t, http.MethodPost, s.url+clients, user, pass, providertest.ReadFile(t, "testdata/doc_create_request.json"))
	if status != http.StatusCreated {
		t.Fatalf("create: HTTP %d %s", status, out)
	}
	sameShape(t, "create", decode(t, providertest.ReadFile(t, "testdata/doc_create_response.json")), decode(t, out))
	var created tokenization.IDResponse
	_ = json.Unmarshal(out, &created)
	createDoc(t, s, []byte(`{"name":"Test Client","isActive":true,"directPartner":{"name":"partnerName"},"contact":{"firstName":"A","lastName":"B","email":"a@example.com"}}`))

	// List by name and by id -> {total, data} summaries.
	for _, p := range []string{"partnerName", "792"} {
		status, out = call(t, http.MethodGet, s.url+clients+"?partner="+p, user, pass, nil)
		if status != http.StatusOK {
			t.Fatalf("list %s: HTTP %d %s", p, status, out)
		}
		doc := decode(t, providertest.ReadFile(t, "testdata/doc_list_response.json")).(map[string]any)
		// The second example entry is the one with a null billingId, as
		// clients created without one have.
		doc["data"] = doc["data"].([]any)[1:]
		sameShape(t, "list", doc, decode(t, out))
		var l tokenization.ListResponse
		_ = json.Unmarshal(out, &l)
		if l.Total != 2 || len(l.Data) != 2 || l.Data[0].ID != created.ID || l.Data[0].Name != "Test Client 2" ||
			l.Data[0].IsActive || !l.Data[1].IsActive || l.Data[0].Contact.ID != 2666 || l.Data[0].Partner.Name != "partnerName" {
			t.Fatalf("list %s: %s", p, out)
		}
	}

	// Get -> the full shape, with the doc's timestamp format.
	status, out = call(t, http.MethodGet, fmt.Sprintf("%s%s/%d", s.url, clients, created.ID), user, pass, nil)
	if status != http.StatusOK {
		t.Fatalf("get: HTTP %d %s", status, out)
	}
	sameShape(t, "get", decode(t, providertest.ReadFile(t, "testdata/doc_get_response.json")), decode(t, out))
	var d tokenization.ClientDetail
	_ = json.Unmarshal(out, &d)
	if d.Created != "2026-11-23T10:00:00.000Z" || d.Modified != d.Created || d.Version != 0 || d.Contact.Email != "waterford@example.com" ||
		d.DirectPartner != (tokenization.PartnerRef{ID: 792, Name: "partnerName"}) {
		t.Fatalf("get: %s", out)
	}

	// Patch -> {id}; the doc's example moves the client to another partner.
	status, out = call(t, http.MethodPatch, fmt.Sprintf("%s%s/%d", s.url, clients, created.ID), user, pass, providertest.ReadFile(t, "testdata/doc_patch_request.json"))
	if status != http.StatusOK {
		t.Fatalf("patch: HTTP %d %s", status, out)
	}
	sameShape(t, "patch", decode(t, providertest.ReadFile(t, "testdata/doc_create_response.json")), decode(t, out))
	_, out = call(t, http.MethodGet, fmt.Sprintf("%s%s/%d", s.url, clients, created.ID), user, pass, nil)
	_ = json.Unmarshal(out, &d)
	if d.Name != "Updated Test Client 2" || d.Version != 1 || d.DirectPartner.ID != 793 {
		t.Fatalf("after patch: %s", out)
	}

	// Delete -> 200, then 404 in the documented shape.
	path := fmt.Sprintf("%s%s/%d", s.url, clients, created.ID)
	if status, out = call(t, http.MethodDelete, path, user, pass, nil); status != http.StatusOK {
		t.Fatalf("delete: HTTP %d %s", status, out)
	}
	for _, m := range []string{http.MethodDelete, http.MethodGet, http.MethodPatch} {
		status, out = call(t, m, path, user, pass, []byte(`{"isActive":true}`))
		if status != http.StatusNotFound {
			t.Fatalf("%s after delete: HTTP %d %s", m, status, out)
		}
		if e := errorOf(t, out); e.ErrorCode != 7404 || e.Message != "Requested resource cannot be found." {
			t.Fatalf("%s: %s", m, out)
		}
	}
	st := s.sb.State()
	if len(st.Clients) != 1 || st.Totals.Creates != 2 || st.Totals.Patches != 1 || st.Totals.Deletes != 1 || st.Totals.Duplicates != 0 {
		t.Fatalf("state %+v", st)
	}
}

func TestSandboxAuth(t *testing.T) {
	s := newSandbox(t, nil)
	for _, tc := range []struct{ name, u, p string }{{"none", "", ""}, {"wrong password", user, "nope"}, {"wrong user", "x", pass}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []string{http.MethodPost, http.MethodGet} {
				status, out := call(t, m, s.url+clients+"?partner=792", tc.u, tc.p, []byte(`{}`))
				// Published: 401 without a body.
				if status != http.StatusUnauthorized || len(out) != 0 {
					t.Fatalf("%s: HTTP %d %q", m, status, out)
				}
			}
		})
	}
	if st := s.sb.State(); st.Totals.Unauthorized != 6 || st.Totals.Requests != 6 || len(st.Clients) != 0 {
		t.Fatalf("state %+v", st)
	}
}

func TestSandboxCreateValidation(t *testing.T) {
	s := newSandbox(t, docPartners)
	good := `"isActive":true,"directPartner":{"id":792},"contact":{"firstName":"A","lastName":"B","email":"a@example.com"}`
	for _, tc := range []struct {
		name, body, want string
	}{
		{"no name", `{` + good + `}`, "name: required"},
		{"blank name", `{"name":"  ",` + good + `}`, "name: must not be blank"},
		{"long name", `{"name":"` + strings.Repeat("n", 256) + `",` + good + `}`, "name: must be at most 255"},
		{"no isActive", `{"name":"x","directPartner":{"id":792},"contact":{"id":1}}`, "isActive: required"},
		{"isActive not a bool", `{"name":"x","isActive":"yes","directPartner":{"id":792},"contact":{"id":1}}`, "body: malformed JSON"},
		{"no directPartner", `{"name":"x","isActive":true,"contact":{"id":1}}`, "directPartner: required"},
		{"empty directPartner", `{"name":"x","isActive":true,"directPartner":{},"contact":{"id":1}}`, "directPartner: id or name is required"},
		{"unknown partner id", `{"name":"x","isActive":true,"directPartner":{"id":1},"contact":{"id":1}}`, "directPartner: unknown partner id"},
		{"unknown partner name", `{"name":"x","isActive":true,"directPartner":{"name":"other"},"contact":{"id":1}}`, "directPartner: unknown partner name"},
		{"id and name disagree", `{"name":"x","isActive":true,"directPartner":{"id":792,"name":"newPartnerName"},"contact":{"id":1}}`, "directPartner: id and name name different partners"},
		{"no contact", `{"name":"x","isActive":true,"directPartner":{"id":792}}`, "contact: required"},
		{"new contact without email", `{"name":"x","isActive":true,"directPartner":{"id":792},"contact":{"firstName":"A","lastName":"B"}}`, "contact: a new contact needs"},
		{"bad email", `{"name":"x","isActive":true,"directPartner":{"id":792},"contact":{"firstName":"A","lastName":"B","email":"not-an-email"}}`, "contact.email: must be an e-mail address"},
		{"unknown field", `{"name":"x","colour":"red",` + good + `}`, "body: malformed JSON"},
		{"not JSON", `name=x`, "body: malformed JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(t, http.MethodPost, s.url+clients, user, pass, []byte(tc.body))
			if fields := validationOf(t, status, out); !containsPrefix(fields, tc.want) {
				t.Fatalf("field errors %q, want %q", fields, tc.want)
			}
		})
	}
	// The reference's optional fields are accepted and shown.
	id := createDoc(t, s, []byte(`{"name":"x","mid":"merchantId123","billingId":"cba321","location":7,`+good+`}`))
	_, out := call(t, http.MethodGet, fmt.Sprintf("%s%s/%d", s.url, clients, id), user, pass, nil)
	var d tokenization.ClientDetail
	_ = json.Unmarshal(out, &d)
	if d.Mid == nil || *d.Mid != "merchantId123" || d.BillingID == nil || *d.BillingID != "cba321" || d.Location == nil || *d.Location != 7 {
		t.Fatalf("get %s", out)
	}
	if st := s.sb.State(); len(st.Clients) != 1 || st.Totals.Rejected != 15 {
		t.Fatalf("state %+v", st)
	}
}

// Names are unique without regard to case, on create and on rename.
func TestSandboxDuplicateNames(t *testing.T) {
	s := newSandbox(t, docPartners)
	body := func(name string, partner int) []byte {
		return []byte(fmt.Sprintf(`{"name":%q,"isActive":true,"directPartner":{"id":%d},"contact":{"id":1}}`, name, partner))
	}
	a := createDoc(t, s, body("etl-C1", 792))
	b := createDoc(t, s, body("etl-C2", 792))
	for _, tc := range []struct{ method, path, name string }{
		{http.MethodPost, clients, "etl-C1"},
		{http.MethodPost, clients, "ETL-c1"},
		{http.MethodPost, clients, "etl-C1"}, // under another partner too: names are platform-wide
		{http.MethodPatch, fmt.Sprintf("%s/%d", clients, b), "etl-c1"},
	} {
		status, out := call(t, tc.method, s.url+tc.path, user, pass, body(tc.name, 793))
		validationOf(t, status, out)
		var e tokenization.ValidationErrorBody
		_ = json.Unmarshal(out, &e)
		if len(e.Errors) != 1 || e.Errors["name"].ErrorCode != tokenization.FieldUnique {
			t.Fatalf("%s %s: %s", tc.method, tc.name, out)
		}
	}
	// Renaming a client to its own name in another case is allowed.
	if status, out := call(t, http.MethodPatch, fmt.Sprintf("%s%s/%d", s.url, clients, a), user, pass, []byte(`{"name":"ETL-C1"}`)); status != http.StatusOK {
		t.Fatalf("self rename: HTTP %d %s", status, out)
	}
	st := s.sb.State()
	if len(st.Clients) != 2 || st.Totals.DuplicateNameRefusals != 4 || st.Totals.Duplicates != 0 || st.Totals.Creates != 2 {
		t.Fatalf("state %+v", st)
	}
	if _, ok := st.Find("ETL-C1"); !ok {
		t.Fatalf("rename lost: %+v", st)
	}
	// A name given up by a rename can be taken again.
	if status, out := call(t, http.MethodPatch, fmt.Sprintf("%s%s/%d", s.url, clients, a), user, pass, []byte(`{"name":"etl-C3"}`)); status != http.StatusOK {
		t.Fatalf("rename: HTTP %d %s", status, out)
	}
	createDoc(t, s, body("etl-C1", 792))
}

func TestSandboxListPaging(t *testing.T) {
	s := newSandbox(t, docPartners)
	for i := 0; i < 25; i++ {
		createDoc(t, s, []byte(fmt.Sprintf(`{"name":"c%02d","isActive":true,"directPartner":{"id":792},"contact":{"id":1}}`, i)))
	}
	createDoc(t, s, []byte(`{"name":"other","isActive":true,"directPartner":{"id":793},"contact":{"id":1}}`))
	list := func(q string) (int, tokenization.ListResponse, []byte) {
		status, out := call(t, http.MethodGet, s.url+clients+"?"+q, user, pass, nil)
		var l tokenization.ListResponse
		_ = json.Unmarshal(out, &l)
		return status, l, out
	}
	for _, tc := range []struct {
		q           string
		first, size int
	}{
		{"partner=792", 0, 10}, // defaults: take 10, skip 0
		{"partner=partnerName&skip=20", 20, 5},
		{"partner=792&take=7&skip=3", 3, 7},
		{"partner=792&take=500", 0, 25}, // take is capped at 100
		{"partner=792&skip=25", 0, 0},
	} {
		status, l, out := list(tc.q)
		if status != http.StatusOK || l.Total != 25 || len(l.Data) != tc.size || (tc.size > 0 && l.Data[0].Name != fmt.Sprintf("c%02d", tc.first)) {
			t.Errorf("%s: HTTP %d %s", tc.q, status, out)
		}
	}
	if _, l, _ := list("partner=newPartnerName"); l.Total != 1 || l.Data[0].Name != "other" {
		t.Errorf("other partner: %+v", l)
	}
	for _, tc := range []struct {
		q      string
		status int
		code   int
	}{
		{"", 409, 7409},
		{"partner=", 409, 7409},
		{"partner=792&take=0", 409, 7409},
		{"partner=792&take=x", 409, 7409},
		{"partner=792&skip=-1", 409, 7409},
		{"partner=nobody", 404, 7404},
		{"partner=1", 404, 7404},
	} {
		status, _, out := list(tc.q)
		if tc.status == http.StatusConflict {
			validationOf(t, status, out)
			continue
		}
		if status != tc.status || errorOf(t, out).ErrorCode != tc.code {
			t.Errorf("%q: HTTP %d %s", tc.q, status, out)
		}
	}
}

func TestSandboxPatchBumpsVersionAndModified(t *testing.T) {
	clock := providertest.Clock()
	sb := tokenization.NewSandbox(tokenization.SandboxOptions{Username: user, Password: pass, Clock: clock})
	s := &server{sb: sb, url: providertest.Serve(t, sb)}
	id := createDoc(t, s, []byte(`{"name":"etl-C1","isActive":true,"directPartner":{"id":792},"contact":{"firstName":"A","lastName":"B","email":"a@example.com"}}`))
	path := fmt.Sprintf("%s%s/%d", s.url, clients, id)
	get := func() tokenization.ClientDetail {
		_, out := call(t, http.MethodGet, path, user, pass, nil)
		var d tokenization.ClientDetail
		_ = json.Unmarshal(out, &d)
		return d
	}
	before := get()
	for i, tc := range []struct {
		body  string
		check func(d tokenization.ClientDetail) bool
	}{
		{`{"isActive":false}`, func(d tokenization.ClientDetail) bool {
			return !d.IsActive && d.Name == "etl-C1" && d.Contact == before.Contact
		}},
		{`{"contact":{"email":"b@example.com"}}`, func(d tokenization.ClientDetail) bool {
			return d.Contact.ID == before.Contact.ID && d.Contact.Email == "b@example.com" && d.Contact.FirstName == "A" && !d.IsActive
		}},
		{`{}`, func(d tokenization.ClientDetail) bool { return d.Contact.Email == "b@example.com" }},
	} {
		clock.Advance(time.Minute)
		if status, out := call(t, http.MethodPatch, path, user, pass, []byte(tc.body)); status != http.StatusOK {
			t.Fatalf("%s: HTTP %d %s", tc.body, status, out)
		}
		d := get()
		want := providertest.T0.Add(time.Duration(i+1) * time.Minute).Format("2006-01-02T15:04:05.000Z")
		if d.Version != i+1 || d.Modified != want || d.Created != before.Created || !tc.check(d) {
			t.Errorf("after %s: %+v", tc.body, d)
		}
	}
	for _, body := range []string{`{"directPartner":{"id":5}}`, `{"name":""}`, `{"contact":{"email":"x"}}`, `{"isActive":1}`} {
		status, out := call(t, http.MethodPatch, path, user, pass, []byte(body))
		validationOf(t, status, out)
	}
	if d := get(); d.Version != 3 {
		t.Errorf("a refused patch changed the client: %+v", d)
	}
}

func TestSandboxStateEndpoint(t *testing.T) {
	s := newSandbox(t, nil)
	id := createDoc(t, s, []byte(`{"name":"etl-C1","isActive":true,"directPartner":{"id":792},"contact":{"firstName":"A","lastName":"B","email":"a@example.com"}}`))
	status, out := call(t, http.MethodGet, s.url+sandbox.StatePath, "", "", nil)
	if status != http.StatusOK {
		t.Fatalf("HTTP %d", status)
	}
	want := fmt.Sprintf(`{"clients":[{"id":%d,"name":"etl-C1","is_active":true,"version":0}],"totals":{"requests":1,"unauthorized":0,"rejected":0,"creates":1,"patches":0,"deletes":0,"lists":0,"rate_limited":0,"internal_errors":0,"duplicate_name_refusals":0,"duplicates":0}}`, id)
	if strings.TrimSpace(string(out)) != want {
		t.Fatalf("state\n%s\nwant\n%s", out, want)
	}
	s.sb.Delete(id)
	s.sb.Delete(id) // unknown ids are ignored
	if st := s.sb.State(); len(st.Clients) != 0 || st.Active() != 0 {
		t.Fatalf("after Delete: %+v", st)
	}
}

func TestSandboxConcurrentCreatesOfOneName(t *testing.T) {
	s := newSandbox(t, nil)
	var wg sync.WaitGroup
	codes := make([]int, 20)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = call(t, http.MethodPost, s.url+clients, user, pass,
				[]byte(`{"name":"etl-C1","isActive":true,"directPartner":{"id":792},"contact":{"id":1}}`))
		}()
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		if c == http.StatusCreated {
			created++
		} else if c != http.StatusConflict {
			t.Errorf("HTTP %d", c)
		}
	}
	if st := s.sb.State(); created != 1 || len(st.Clients) != 1 || st.Totals.DuplicateNameRefusals != 19 || st.Totals.Duplicates != 0 {
		t.Fatalf("created %d, state %+v", created, st)
	}
}
