package synctera_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/providers/synctera"
	"github.com/northwind-data/etl/internal/sandbox"
)

func fieldsOf(p synctera.Problem) []string {
	var out []string
	for _, f := range p.InvalidFields {
		out = append(out, f.Field)
	}
	sort.Strings(out)
	return out
}

// TestSandboxDocExamples replays every request the doc shows.
func TestSandboxDocExamples(t *testing.T) {
	sb, srv := newSandbox(t, nil)
	base := srv.URL + "/v0/customers"

	// create_customer with the doc's idempotency key. The doc's body is
	// {status: 'ACTIVE'} alone, which Synctera's guides refuse (an ACTIVE
	// customer needs first_name, last_name and dob). The refusal is kept
	// under the key: the same request gets it again, another request under
	// the key is refused as a reuse, and a new key for the prospect goes
	// through.
	r := call(t, http.MethodPost, base, bearer, docKey, `{"status":"ACTIVE"}`)
	if r.Status != http.StatusBadRequest {
		t.Fatalf("doc create {status: ACTIVE}: %d %s", r.Status, r.Body)
	}
	want := []string{"dob", "first_name", "last_name"}
	if p := r.problem(t); !reflect.DeepEqual(fieldsOf(p), want) || p.Code != "BAD_REQUEST_BODY" || p.Type != "https://dev.synctera.com/errors/bad-request-body" {
		t.Errorf("problem %+v, want fields %v, code BAD_REQUEST_BODY, the published type", p, want)
	}
	if again := call(t, http.MethodPost, base, bearer, docKey, `{"status":"ACTIVE"}`); again.Status != http.StatusBadRequest ||
		again.Header.Get(synctera.ReplayedHeader) != "true" || string(again.Body) != string(r.Body) {
		t.Errorf("the refusal again under its key: %d %s", again.Status, again.Body)
	}
	if reuse := call(t, http.MethodPost, base, bearer, docKey, `{"status":"PROSPECT"}`); reuse.Status != http.StatusUnprocessableEntity ||
		reuse.problem(t).Code != "IDEMPOTENCY_INVALID_REUSE" {
		t.Errorf("another body under the refused key: %d %s", reuse.Status, reuse.Body)
	}
	r = call(t, http.MethodPost, base, bearer, "0b6f5d1e-6c55-4b8e-9d2a-3f6c1a7e8b90", `{"status":"PROSPECT"}`)
	if r.Status != http.StatusCreated {
		t.Fatalf("create prospect: %d %s", r.Status, r.Body)
	}
	created := r.customer(t)
	if !reUUID.MatchString(created.ID) || created.Status != "PROSPECT" || !created.CreationTime.Equal(providertest.T0) || !created.LastUpdatedTime.Equal(providertest.T0) {
		t.Errorf("created %+v", created)
	}
	var raw map[string]any
	_ = json.Unmarshal(r.Body, &raw)
	for _, k := range []string{"id", "status", "creation_time", "last_updated_time"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("create answer lacks %q: %s", k, r.Body)
		}
	}

	// get_customer: the doc's id is not one the sandbox issued.
	r = call(t, http.MethodGet, base+"/"+docID, bearer, "", nil)
	if r.Status != http.StatusNotFound || r.problem(t).Type != synctera.TypeNotFound {
		t.Errorf("get doc id: %d %s", r.Status, r.Body)
	}
	r = call(t, http.MethodGet, base+"/"+created.ID, bearer, "", nil)
	if r.Status != http.StatusOK || r.customer(t).ID != created.ID {
		t.Errorf("get created: %d %s", r.Status, r.Body)
	}

	// list_customers with every documented filter of the doc's example.
	q := url.Values{"has_accounts": {"true"}, "ssn_last_4": {"6789"}, "last_name": {"Smith"}, "email": {"[email protected]"},
		"first_name": {"Alice"}, "phone_number": {"+12065550100"}, "id": {docKey}, "limit": {"100"},
		"sort_by": {"creation_time:asc"}, "status": {"ACTIVE"}}
	r = call(t, http.MethodGet, base+"?"+q.Encode(), bearer, "", nil)
	if r.Status != http.StatusOK || strings.TrimSpace(string(r.Body)) != `{"customers":[]}` {
		t.Errorf("list with the doc's filters: %d %s", r.Status, r.Body)
	}
	// ... and with the doc's page_token, which this sandbox never issued.
	q.Set("page_token", "a8937a0d")
	r = call(t, http.MethodGet, base+"?"+q.Encode(), bearer, "", nil)
	if r.Status != http.StatusBadRequest || !reflect.DeepEqual(fieldsOf(r.problem(t)), []string{"page_token"}) {
		t.Errorf("list with the doc's page_token: %d %s", r.Status, r.Body)
	}
	r = call(t, http.MethodGet, base, bearer, "", nil)
	var l synctera.CustomerList
	if err := json.Unmarshal(r.Body, &l); err != nil || r.Status != http.StatusOK || len(l.Customers) != 1 || l.NextPageToken != "" {
		t.Errorf("list: %d %s", r.Status, r.Body)
	}

	// patch_customer with the doc's empty PatchCustomer and key.
	r = call(t, http.MethodPatch, base+"/"+created.ID, bearer, "e0a2b6a4-3f0a-4a39-9d0d-7a4b3c2f1e00", `{}`)
	if r.Status != http.StatusOK || r.customer(t).Status != "PROSPECT" {
		t.Errorf("empty patch: %d %s", r.Status, r.Body)
	}

	// update_customer with the doc's body {status: 'ACTIVE'}: refused like
	// the create; a full body goes through.
	r = call(t, http.MethodPut, base+"/"+created.ID, bearer, "", `{"status":"ACTIVE"}`)
	if r.Status != http.StatusBadRequest {
		t.Errorf("doc update: %d %s", r.Status, r.Body)
	}
	r = call(t, http.MethodPut, base+"/"+created.ID, bearer, "", person(1))
	if r.Status != http.StatusOK || r.customer(t).Status != "ACTIVE" || r.customer(t).ID != created.ID {
		t.Errorf("full update: %d %s", r.Status, r.Body)
	}
	r = call(t, http.MethodPut, base+"/"+docID, bearer, "", person(1))
	if r.Status != http.StatusNotFound {
		t.Errorf("update unknown id: %d %s", r.Status, r.Body)
	}
	r = call(t, http.MethodPatch, base+"/"+docID, bearer, "", `{"status":"INACTIVE"}`)
	if r.Status != http.StatusNotFound {
		t.Errorf("patch unknown id: %d %s", r.Status, r.Body)
	}
	st := sb.State()
	if st.Totals.Creates != 1 || st.Totals.Updates != 1 || st.Totals.Patches != 1 || len(st.Customers) != 1 || st.Customers[0].Version != 3 {
		t.Errorf("state %+v", st)
	}
}

func TestSandboxAuth(t *testing.T) {
	sb, srv := newSandbox(t, nil)
	base := srv.URL + "/v0/customers"
	requests := []struct {
		method, url string
		body        any
	}{
		{http.MethodPost, base, person(1)},
		{http.MethodGet, base, nil},
		{http.MethodGet, base + "/" + docID, nil},
		{http.MethodPut, base + "/" + docID, person(1)},
		{http.MethodPatch, base + "/" + docID, `{"status":"INACTIVE"}`},
	}
	auths := map[string]string{
		"none":         "",
		"wrong token":  "Bearer nope",
		"basic":        "Basic " + "dGVzdC1zeW5jdGVyYS10b2tlbjo=",
		"bare token":   token,
		"empty bearer": "Bearer ",
	}
	n := 0
	for name, auth := range auths {
		for _, rq := range requests {
			r := call(t, rq.method, rq.url, auth, docKey, rq.body)
			n++
			if r.Status != http.StatusUnauthorized || r.problem(t).Type != synctera.TypeUnauthorized {
				t.Errorf("%s %s with %s: %d %s", rq.method, rq.url, name, r.Status, r.Body)
			}
		}
	}
	st := sb.State()
	if st.Totals.Unauthorized != n || st.Totals.Creates != 0 || len(st.Customers) != 0 {
		t.Errorf("state after refused calls: %+v", st.Totals)
	}
	// A refused call does not take the key: the right token then creates.
	if r := call(t, http.MethodPost, base, bearer, docKey, person(1)); r.Status != http.StatusCreated {
		t.Errorf("create after refusals: %d %s", r.Status, r.Body)
	}
}

func TestSandboxValidation(t *testing.T) {
	_, srv := newSandbox(t, nil)
	base := srv.URL + "/v0/customers"
	edit := func(f func(*synctera.CustomerInBody)) synctera.CustomerInBody {
		b := person(1)
		f(&b)
		return b
	}
	tests := []struct {
		name   string
		method string
		body   any
		fields []string
	}{
		{"phone without plus", "POST", edit(func(b *synctera.CustomerInBody) { b.PhoneNumber = "5125550100" }), []string{"phone_number"}},
		{"phone too long", "POST", edit(func(b *synctera.CustomerInBody) { b.PhoneNumber = "+1234567890123456" }), []string{"phone_number"}},
		{"dob not zero-padded", "POST", edit(func(b *synctera.CustomerInBody) { b.Dob = "1990-1-2" }), []string{"dob"}},
		{"dob impossible date", "POST", edit(func(b *synctera.CustomerInBody) { b.Dob = "1990-02-30" }), []string{"dob"}},
		{"dob with time", "POST", edit(func(b *synctera.CustomerInBody) { b.Dob = "1990-02-03T00:00:00Z" }), []string{"dob"}},
		{"email", "POST", edit(func(b *synctera.CustomerInBody) { b.Email = "ada at example.com" }), []string{"email"}},
		{"country lower case", "POST", edit(func(b *synctera.CustomerInBody) { b.LegalAddress.CountryCode = "us" }), []string{"legal_address.country_code"}},
		{"country alpha-3", "POST", edit(func(b *synctera.CustomerInBody) { b.LegalAddress.CountryCode = "USA" }), []string{"legal_address.country_code"}},
		{"address without line 1", "POST", edit(func(b *synctera.CustomerInBody) { b.LegalAddress.AddressLine1 = " " }), []string{"legal_address.address_line_1"}},
		{"shipping without country", "POST", edit(func(b *synctera.CustomerInBody) {
			b.ShippingAddress = &synctera.Address{AddressLine1: "2 Side St"}
		}), []string{"shipping_address.country_code"}},
		{"status outside the enum", "POST", edit(func(b *synctera.CustomerInBody) { b.Status = "CLOSED" }), []string{"status"}},
		{"no status", "POST", edit(func(b *synctera.CustomerInBody) { b.Status = "" }), []string{"status"}},
		{"active without names and dob", "POST", edit(func(b *synctera.CustomerInBody) { b.FirstName, b.LastName, b.Dob = "", " ", "" }), []string{"dob", "first_name", "last_name"}},
		{"inactive without dob (stricter reading)", "POST", edit(func(b *synctera.CustomerInBody) { b.Status, b.Dob = "INACTIVE", "" }), []string{"dob"}},
		{"metadata that is not JSON", "POST", `{"status":"PROSPECT","metadata":{"a":}`, []string{"body"}},
		{"prospect with a bad phone", "POST", `{"status":"PROSPECT","phone_number":"12"}`, []string{"phone_number"}},
		{"ssn is not a field we take", "POST", `{"status":"PROSPECT","ssn":"123-45-6789"}`, []string{"ssn"}},
		{"read-only id", "POST", `{"status":"PROSPECT","id":"x"}`, []string{"id"}},
		{"status of the wrong type", "POST", `{"status":5}`, []string{"status"}},
		{"malformed JSON", "POST", `{"status":`, []string{"body"}},
		{"trailing data", "POST", `{"status":"PROSPECT"} {}`, []string{"body"}},
		{"empty body", "POST", ``, []string{"body"}},
		{"update validates too", "PUT", edit(func(b *synctera.CustomerInBody) { b.Dob = "10/12/1985" }), []string{"dob"}},
		{"patch status", "PATCH", `{"status":"GONE"}`, []string{"status"}},
		{"patch phone", "PATCH", `{"phone_number":"+1 512 555 0100"}`, []string{"phone_number"}},
		{"patch address", "PATCH", `{"legal_address":{"address_line_1":"1 Main St","country_code":"u5"}}`, []string{"legal_address.country_code"}},
		{"patch unknown field", "PATCH", `{"nickname":"Ada"}`, []string{"nickname"}},
	}
	id := call(t, http.MethodPost, base, bearer, "", person(1)).customer(t).ID
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := base
			if tt.method != "POST" {
				u += "/" + id
			}
			r := call(t, tt.method, u, bearer, "", tt.body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
			}
			p := r.problem(t)
			if got := fieldsOf(p); !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("invalid fields %v, want %v (%s)", got, tt.fields, r.Body)
			}
			if p.Type != synctera.TypeBadRequest || !strings.Contains(p.Detail, tt.fields[0]) {
				t.Errorf("problem %+v does not name %s in its detail", p, tt.fields[0])
			}
		})
	}
	t.Run("values are never echoed", func(t *testing.T) {
		r := call(t, http.MethodPost, base, bearer, "", edit(func(b *synctera.CustomerInBody) { b.PhoneNumber = "4111111111111111" }))
		if r.Status != http.StatusBadRequest || strings.Contains(string(r.Body), "4111111111111111") {
			t.Errorf("%d %s", r.Status, r.Body)
		}
	})
}

func TestSandboxShippingAddress(t *testing.T) {
	_, srv := newSandbox(t, nil)
	base := srv.URL + "/v0/customers"
	legal := synctera.Address{AddressLine1: "1 Main St", City: "Austin", State: "TX", PostalCode: "78753", CountryCode: "US"}
	other := synctera.Address{AddressLine1: "9 Dock Rd", City: "Houston", State: "TX", PostalCode: "77001", CountryCode: "US"}
	moved := synctera.Address{AddressLine1: "5 New Rd", City: "Dallas", State: "TX", PostalCode: "75201", CountryCode: "US"}
	ship := func(r reply) synctera.Address {
		t.Helper()
		c := r.customer(t)
		if c.ShippingAddress == nil {
			t.Fatalf("no shipping_address: %s", r.Body)
		}
		return *c.ShippingAddress
	}

	// Create without shipping: a copy of legal.
	b := person(1)
	r := call(t, http.MethodPost, base, bearer, "", b)
	if got := ship(r); got != legal {
		t.Errorf("create: shipping %+v, want legal %+v", got, legal)
	}
	id := r.customer(t).ID
	// Create with shipping: kept.
	b2 := person(2)
	b2.ShippingAddress = &other
	if got := ship(call(t, http.MethodPost, base, bearer, "", b2)); got != other {
		t.Errorf("create with shipping: %+v", got)
	}
	// Update without shipping: a copy of the new legal, whatever was there.
	b.LegalAddress = &moved
	if got := ship(call(t, http.MethodPut, base+"/"+id, bearer, "", b)); got != moved {
		t.Errorf("update: shipping %+v, want %+v", got, moved)
	}
	// Patch legal when the customer has a shipping address: unchanged.
	r = call(t, http.MethodPatch, base+"/"+id, bearer, "", synctera.PatchCustomer{LegalAddress: &other})
	if got := ship(r); got != moved || *r.customer(t).LegalAddress != other {
		t.Errorf("patch legal: shipping %+v (want %+v), legal %+v", got, moved, r.customer(t).LegalAddress)
	}
	// Patch with shipping: set.
	if got := ship(call(t, http.MethodPatch, base+"/"+id, bearer, "", synctera.PatchCustomer{ShippingAddress: &legal})); got != legal {
		t.Errorf("patch shipping: %+v", got)
	}
	// Patch legal on a customer without any address: copied.
	pid := call(t, http.MethodPost, base, bearer, "", `{"status":"PROSPECT"}`).customer(t).ID
	if got := ship(call(t, http.MethodPatch, base+"/"+pid, bearer, "", synctera.PatchCustomer{LegalAddress: &legal})); got != legal {
		t.Errorf("patch legal on a customer without shipping: %+v", got)
	}
	// Patch without legal on a customer without any address: none made up.
	qid := call(t, http.MethodPost, base, bearer, "", `{"status":"PROSPECT"}`).customer(t).ID
	if c := call(t, http.MethodPatch, base+"/"+qid, bearer, "", `{"first_name":"Ada"}`).customer(t); c.ShippingAddress != nil || c.FirstName != "Ada" {
		t.Errorf("patch name: %+v", c)
	}
}

func TestSandboxIdempotency(t *testing.T) {
	type step struct {
		method   string
		item     int // path is /customers/{the item-th customer created}, 0: the collection
		key      string
		body     any
		status   int
		replayed bool
		typ      string // problem type for errors
		sameAs   int    // 1-based step whose body this answer must equal (0: none)
	}
	reordered := `{ "last_name":"Last", "status":"ACTIVE", "first_name":"First1", "dob":"1980-01-02",
		"email":"p1@example.com", "phone_number":"+15125550100",
		"legal_address":{"country_code":"US","address_line_1":"1 Main St","city":"Austin","state":"TX","postal_code":"78753"} }`
	tests := []struct {
		name    string
		steps   []step
		creates int
		replays int
	}{
		{"replay of the same request", []step{
			{method: "POST", key: "k1", body: person(1), status: 201},
			{method: "POST", key: "k1", body: person(1), status: 201, replayed: true, sameAs: 1},
			{method: "POST", key: "k1", body: reordered, status: 201, replayed: true, sameAs: 1},
		}, 1, 2},
		{"same key, different body", []step{
			{method: "POST", key: "k1", body: person(1), status: 201},
			{method: "POST", key: "k1", body: person(2), status: 422, typ: synctera.TypeInvalidReuse},
			{method: "POST", key: "k1", body: person(1), status: 201, replayed: true, sameAs: 1},
		}, 1, 1},
		{"same key, different method and path", []step{
			{method: "POST", key: "k1", body: person(1), status: 201},
			{method: "PATCH", item: 1, key: "k1", body: person(1), status: 422, typ: synctera.TypeInvalidReuse},
		}, 1, 0},
		{"same key, same method, other customer", []step{
			{method: "POST", body: person(1), status: 201},
			{method: "POST", body: person(2), status: 201},
			{method: "PATCH", item: 1, key: "p1", body: `{"status":"INACTIVE"}`, status: 200},
			{method: "PATCH", item: 2, key: "p1", body: `{"status":"INACTIVE"}`, status: 422, typ: synctera.TypeInvalidReuse},
		}, 2, 0},
		{"a refusal is replayed under its key, and a fixed body is a reuse", []step{
			{method: "POST", key: "k1", body: `{"status":"NOPE"}`, status: 400, typ: synctera.TypeBadRequest},
			{method: "POST", key: "k1", body: `{"status":"NOPE"}`, status: 400, replayed: true, sameAs: 1},
			{method: "POST", key: "k1", body: person(1), status: 422, typ: synctera.TypeInvalidReuse},
			{method: "POST", key: "k2", body: person(1), status: 201},
		}, 1, 1},
		{"without a key every create is new", []step{
			{method: "POST", body: person(1), status: 201},
			{method: "POST", body: person(1), status: 201},
		}, 2, 0},
		{"different keys are different requests", []step{
			{method: "POST", key: "k1", body: person(1), status: 201},
			{method: "POST", key: "k2", body: person(1), status: 201},
		}, 2, 0},
		{"patch replay", []step{
			{method: "POST", body: person(1), status: 201},
			{method: "PATCH", item: 1, key: "p1", body: `{"status":"INACTIVE"}`, status: 200},
			{method: "PATCH", item: 1, key: "p1", body: `{"status":"INACTIVE"}`, status: 200, replayed: true, sameAs: 2},
		}, 1, 1},
		{"put ignores the header", []step{
			{method: "POST", body: person(1), status: 201},
			{method: "PUT", item: 1, key: "u1", body: person(1), status: 200},
			{method: "PUT", item: 1, key: "u1", body: person(3), status: 200},
		}, 1, 0},
		{"key longer than 255", []step{
			{method: "POST", key: strings.Repeat("k", 256), body: person(1), status: 400, typ: synctera.TypeBadRequest},
		}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, srv := newSandbox(t, nil)
			var replies []reply
			var created []string
			for i, s := range tt.steps {
				u := srv.URL + "/v0/customers"
				if s.item > 0 {
					u += "/" + created[s.item-1]
				}
				r := call(t, s.method, u, bearer, s.key, s.body)
				replies = append(replies, r)
				if r.Status != s.status {
					t.Fatalf("step %d: status %d, want %d: %s", i+1, r.Status, s.status, r.Body)
				}
				if got := r.Header.Get(synctera.ReplayedHeader) == "true"; got != s.replayed {
					t.Errorf("step %d: replayed %v, want %v", i+1, got, s.replayed)
				}
				if s.typ != "" && r.problem(t).Type != s.typ {
					t.Errorf("step %d: problem type %q, want %q", i+1, r.problem(t).Type, s.typ)
				}
				if s.sameAs > 0 && string(r.Body) != string(replies[s.sameAs-1].Body) {
					t.Errorf("step %d: body %s, want step %d's %s", i+1, r.Body, s.sameAs, replies[s.sameAs-1].Body)
				}
				if r.Status == 201 && s.method == "POST" && !s.replayed {
					created = append(created, r.customer(t).ID)
				}
			}
			st := sb.State()
			if st.Totals.Creates != tt.creates || st.Totals.Replays != tt.replays || len(st.Customers) != tt.creates {
				t.Errorf("creates %d replays %d customers %d, want %d %d", st.Totals.Creates, st.Totals.Replays, len(st.Customers), tt.creates, tt.replays)
			}
		})
	}

	t.Run("key in flight", func(t *testing.T) {
		hook, entered, release := holdFirst()
		sb, srv := newSandbox(t, func(o *synctera.SandboxOptions) { o.InFlight = hook })
		t.Cleanup(release)
		u := srv.URL + "/v0/customers"
		done := make(chan reply, 1)
		go func() {
			r, err := rawCall(http.MethodPost, u, bearer, "k1", person(1))
			if err != nil {
				r = reply{providertest.Reply{Body: []byte(err.Error())}}
			}
			done <- r
		}()
		providertest.WaitFor(t, entered, "the first request to hold its key")
		r := call(t, http.MethodPost, u, bearer, "k1", person(1))
		if r.Status != http.StatusConflict || r.problem(t).Type != synctera.TypeConcurrentUse {
			t.Errorf("second request while the first runs: %d %s", r.Status, r.Body)
		}
		// A different body is a misuse whether or not the first is done.
		if r := call(t, http.MethodPost, u, bearer, "k1", person(2)); r.Status != http.StatusUnprocessableEntity {
			t.Errorf("different body while the first runs: %d %s", r.Status, r.Body)
		}
		release()
		firstReply := providertest.Recv(t, done)
		if firstReply.Status != http.StatusCreated {
			t.Fatalf("first request: %d %s", firstReply.Status, firstReply.Body)
		}
		r = call(t, http.MethodPost, u, bearer, "k1", person(1))
		if r.Status != http.StatusCreated || string(r.Body) != string(firstReply.Body) || r.Header.Get(synctera.ReplayedHeader) != "true" {
			t.Errorf("after the first finished: %d %s", r.Status, r.Body)
		}
		st := sb.State()
		if st.Totals.Creates != 1 || st.Totals.KeyConflicts != 1 || st.Totals.KeyMismatches != 1 || st.Totals.Replays != 1 {
			t.Errorf("totals %+v", st.Totals)
		}
	})

	t.Run("key expiry", func(t *testing.T) {
		clock := providertest.Clock()
		sb, srv := newSandbox(t, func(o *synctera.SandboxOptions) { o.Clock, o.KeyTTL = clock, 24*time.Hour })
		u := srv.URL + "/v0/customers"
		call(t, http.MethodPost, u, bearer, "k1", person(1))
		clock.Advance(23 * time.Hour)
		if r := call(t, http.MethodPost, u, bearer, "k1", person(1)); r.Header.Get(synctera.ReplayedHeader) != "true" {
			t.Errorf("within the TTL: not replayed (%d)", r.Status)
		}
		clock.Advance(time.Hour)
		if r := call(t, http.MethodPost, u, bearer, "k1", person(2)); r.Status != http.StatusCreated || r.Header.Get(synctera.ReplayedHeader) != "" {
			t.Errorf("after the TTL: %d replayed=%q", r.Status, r.Header.Get(synctera.ReplayedHeader))
		}
		if st := sb.State(); st.Totals.Creates != 2 {
			t.Errorf("creates %d, want 2", st.Totals.Creates)
		}
	})
}

func createMany(t *testing.T, u string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		r := call(t, http.MethodPost, u, bearer, "", person(i))
		if r.Status != http.StatusCreated {
			t.Fatalf("create %d: %d %s", i, r.Status, r.Body)
		}
		ids[i] = r.customer(t).ID
	}
	return ids
}

// walk lists with q page by page and returns the ids and page sizes.
func walk(t *testing.T, u string, q url.Values, between func(page int)) (ids []string, sizes []int) {
	t.Helper()
	seen := map[string]bool{}
	for page := 1; ; page++ {
		r := call(t, http.MethodGet, u+"?"+q.Encode(), bearer, "", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("page %d: %d %s", page, r.Status, r.Body)
		}
		var raw map[string]json.RawMessage
		_ = json.Unmarshal(r.Body, &raw)
		var l synctera.CustomerList
		_ = json.Unmarshal(r.Body, &l)
		sizes = append(sizes, len(l.Customers))
		for _, c := range l.Customers {
			if seen[c.ID] {
				t.Fatalf("page %d repeats %s", page, c.ID)
			}
			seen[c.ID] = true
			ids = append(ids, c.ID)
		}
		if _, has := raw["next_page_token"]; !has {
			return ids, sizes
		}
		if l.NextPageToken == "" || page > 100 {
			t.Fatalf("page %d: empty or endless next_page_token: %s", page, r.Body)
		}
		q.Set("page_token", l.NextPageToken)
		if between != nil {
			between(page)
		}
	}
}

func TestSandboxPagination(t *testing.T) {
	sb, srv := newSandbox(t, nil)
	u := srv.URL + "/v0/customers"
	ids := createMany(t, u, 250)

	t.Run("limit 100 walks three pages in creation order", func(t *testing.T) {
		got, sizes := walk(t, u, url.Values{"limit": {"100"}}, nil)
		if !reflect.DeepEqual(sizes, []int{100, 100, 50}) || !reflect.DeepEqual(got, ids) {
			t.Errorf("pages %v; ids in order: %v", sizes, reflect.DeepEqual(got, ids))
		}
	})
	t.Run("default and oversize limits act as 100", func(t *testing.T) {
		for _, q := range []url.Values{{}, {"limit": {"500"}}} {
			if _, sizes := walk(t, u, q, nil); !reflect.DeepEqual(sizes, []int{100, 100, 50}) {
				t.Errorf("%v: pages %v", q, sizes)
			}
		}
	})
	t.Run("descending", func(t *testing.T) {
		got, sizes := walk(t, u, url.Values{"limit": {"60"}, "sort_by": {"creation_time:desc"}}, nil)
		rev := append([]string(nil), ids...)
		for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
			rev[i], rev[j] = rev[j], rev[i]
		}
		if !reflect.DeepEqual(got, rev) || !reflect.DeepEqual(sizes, []int{60, 60, 60, 60, 10}) {
			t.Errorf("pages %v, reversed order %v", sizes, reflect.DeepEqual(got, rev))
		}
	})
	t.Run("exact multiple ends without a token", func(t *testing.T) {
		if _, sizes := walk(t, u, url.Values{"limit": {"50"}}, nil); !reflect.DeepEqual(sizes, []int{50, 50, 50, 50, 50}) {
			t.Errorf("pages %v", sizes)
		}
	})
	t.Run("filters", func(t *testing.T) {
		q := url.Values{"first_name": {"First7"}}
		if got, _ := walk(t, u, q, nil); !reflect.DeepEqual(got, []string{ids[7]}) {
			t.Errorf("first_name: %v", got)
		}
		q = url.Values{"id": {ids[3] + "," + ids[5] + "," + ids[9]}, "limit": {"2"}}
		if got, sizes := walk(t, u, q, nil); !reflect.DeepEqual(got, []string{ids[3], ids[5], ids[9]}) || !reflect.DeepEqual(sizes, []int{2, 1}) {
			t.Errorf("id: %v %v", got, sizes)
		}
		q = url.Values{"email": {"P12@EXAMPLE.COM"}}
		if got, _ := walk(t, u, q, nil); !reflect.DeepEqual(got, []string{ids[12]}) {
			t.Errorf("email: %v", got)
		}
		if got, _ := walk(t, u, url.Values{"status": {"INACTIVE"}}, nil); len(got) != 0 {
			t.Errorf("status: %v", got)
		}
	})
	t.Run("changes during a walk neither repeat nor skip", func(t *testing.T) {
		var added string
		got, _ := walk(t, u, url.Values{"limit": {"100"}}, func(page int) {
			if page == 1 {
				sb.Delete(ids[150]) // on a later page
				sb.Delete(ids[10])  // on the page already read
				added = createMany(t, u, 1)[0]
			}
		})
		want := append(append(append([]string(nil), ids[:150]...), ids[151:]...), added)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("walk with changes: %d ids, want %d", len(got), len(want))
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		for _, q := range []url.Values{{"limit": {"0"}}, {"limit": {"ten"}}, {"sort_by": {"last_name:asc"}},
			{"id": {ids[1], ids[2]}}, {"sort_by": {"creation_time:asc", "creation_time:asc"}},
			{"status": {"GONE"}}, {"has_accounts": {"maybe"}}, {"page_token": {"!!"}}} {
			r := call(t, http.MethodGet, u+"?"+q.Encode(), bearer, "", nil)
			if r.Status != http.StatusBadRequest || len(r.problem(t).InvalidFields) != 1 {
				t.Errorf("%v: %d %s", q, r.Status, r.Body)
			}
		}
		// A token is tied to its sort order.
		r := call(t, http.MethodGet, u+"?limit=1", bearer, "", nil)
		var l synctera.CustomerList
		_ = json.Unmarshal(r.Body, &l)
		r = call(t, http.MethodGet, u+"?sort_by=creation_time:desc&page_token="+l.NextPageToken, bearer, "", nil)
		if r.Status != http.StatusBadRequest {
			t.Errorf("token of another order: %d %s", r.Status, r.Body)
		}
	})
}

func TestSandboxStateAndDelete(t *testing.T) {
	clock := providertest.Clock()
	sb, srv := newSandbox(t, func(o *synctera.SandboxOptions) { o.Clock = clock })
	u := srv.URL + "/v0/customers"
	ids := createMany(t, u, 2)
	clock.Advance(time.Minute)
	call(t, http.MethodPatch, u+"/"+ids[0], bearer, "", `{"status":"FROZEN"}`)
	// The same person created twice under different keys is a duplicate.
	call(t, http.MethodPost, u, bearer, "a", person(1))

	r := call(t, http.MethodGet, srv.URL+sandbox.StatePath, "", "", nil)
	var st synctera.State
	if err := json.Unmarshal(r.Body, &st); err != nil || r.Status != http.StatusOK {
		t.Fatalf("state endpoint: %d %s", r.Status, r.Body)
	}
	if !reflect.DeepEqual(st, sb.State()) {
		t.Errorf("endpoint %+v != State() %+v", st, sb.State())
	}
	c0, ok := st.Find(ids[0])
	if !ok || c0.Status != "FROZEN" || c0.Version != 2 || !c0.CreationTime.Equal(providertest.T0) || !c0.LastUpdatedTime.Equal(providertest.T0.Add(time.Minute)) ||
		c0.FirstName != "First0" || c0.LastName != "Last" || c0.Email != "p0@example.com" {
		t.Errorf("customer state %+v", c0)
	}
	if st.Totals.Duplicates != 1 || st.Totals.Creates != 3 || st.Totals.Patches != 1 || st.Totals.Requests != 4 {
		t.Errorf("totals %+v", st.Totals)
	}

	sb.Delete(ids[1])
	sb.Delete("no-such-id")
	if r := call(t, http.MethodGet, u+"/"+ids[1], bearer, "", nil); r.Status != http.StatusNotFound {
		t.Errorf("get deleted: %d", r.Status)
	}
	st = sb.State()
	if _, ok := st.Find(ids[1]); ok || len(st.Customers) != 2 || st.Totals.Deletes != 1 || st.Totals.Duplicates != 0 {
		t.Errorf("after delete: %+v", st)
	}
}

func TestSandboxRejectDuplicates(t *testing.T) {
	sb, srv := newSandbox(t, func(o *synctera.SandboxOptions) { o.RejectDuplicates = true })
	u := srv.URL + "/v0/customers"
	call(t, http.MethodPost, u, bearer, "", person(1))
	r := call(t, http.MethodPost, u, bearer, "", person(1))
	if r.Status != http.StatusConflict || r.problem(t).Type != synctera.TypeAlreadyExists {
		t.Errorf("second create of the same person: %d %s", r.Status, r.Body)
	}
	if st := sb.State(); st.Totals.Duplicates != 0 || st.Totals.AlreadyExists != 1 {
		t.Errorf("totals %+v", st.Totals)
	}
}

// TestSandboxKeyReplayExceptions: a 5xx or 429 first answer is not kept,
// so the request runs again under its key; the published 7 days are the
// default life of a key.
func TestSandboxKeyReplayExceptions(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			fail := true
			sb, srv := newSandbox(t, func(o *synctera.SandboxOptions) {
				o.Fail = func(*http.Request) int {
					if fail {
						fail = false
						return status
					}
					return 0
				}
			})
			u := srv.URL + "/v0/customers"
			if r := call(t, http.MethodPost, u, bearer, "k1", person(1)); r.Status != status {
				t.Fatalf("first: %d %s", r.Status, r.Body)
			}
			r := call(t, http.MethodPost, u, bearer, "k1", person(1))
			if r.Status != http.StatusCreated || r.Header.Get(synctera.ReplayedHeader) != "" {
				t.Errorf("after a %d the request runs again: %d replayed=%q", status, r.Status, r.Header.Get(synctera.ReplayedHeader))
			}
			if st := sb.State(); st.Totals.Creates != 1 {
				t.Errorf("creates %d", st.Totals.Creates)
			}
		})
	}
	t.Run("7 days by default", func(t *testing.T) {
		clock := providertest.Clock()
		sb, srv := newSandbox(t, func(o *synctera.SandboxOptions) { o.Clock = clock })
		u := srv.URL + "/v0/customers"
		call(t, http.MethodPost, u, bearer, "k1", person(1))
		clock.Advance(7*24*time.Hour - time.Second)
		if r := call(t, http.MethodPost, u, bearer, "k1", person(1)); r.Header.Get(synctera.ReplayedHeader) != "true" {
			t.Errorf("within 7 days: not replayed (%d)", r.Status)
		}
		sb.AdvanceClock(time.Second)
		if r := call(t, http.MethodPost, u, bearer, "k1", person(1)); r.Status != http.StatusCreated || r.Header.Get(synctera.ReplayedHeader) != "" {
			t.Errorf("after 7 days: %d replayed=%q", r.Status, r.Header.Get(synctera.ReplayedHeader))
		}
		if st := sb.State(); st.Totals.Creates != 2 || st.Totals.Duplicates != 1 {
			t.Errorf("totals %+v", st.Totals)
		}
	})
}

// TestSandboxMetadata: free-form JSON, kept and answered.
func TestSandboxMetadata(t *testing.T) {
	_, srv := newSandbox(t, nil)
	u := srv.URL + "/v0/customers"
	r := call(t, http.MethodPost, u, bearer, "", `{"status":"PROSPECT","metadata":{"etl_entity_key":"customer/C1","n":[1,{"x":null}]}}`)
	if r.Status != http.StatusCreated {
		t.Fatalf("create with metadata: %d %s", r.Status, r.Body)
	}
	c := r.customer(t)
	if synctera.EntityRef(c.Metadata) != "customer/C1" {
		t.Errorf("metadata answered %s", c.Metadata)
	}
	got := call(t, http.MethodGet, u+"/"+c.ID, bearer, "", nil).customer(t)
	if string(got.Metadata) != string(c.Metadata) {
		t.Errorf("metadata read back %s, want %s", got.Metadata, c.Metadata)
	}
}
