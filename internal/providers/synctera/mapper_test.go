package synctera_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/golden"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/providers/synctera"
)

func mapper(t *testing.T) *synctera.Client {
	t.Helper()
	return newClient(t, "http://127.0.0.1:1/v0", token, nil)
}

// goldenCustomers are the representative customers whose bodies are kept
// under testdata/.
func goldenCustomers() map[string]*model.Customer {
	active := customer("C1001")

	inactive := customer("C1002")
	inactive.FirstName, inactive.MiddleName, inactive.LastName = "María", "José", "Núñez"
	inactive.Email, inactive.Phone = "maria.nunez@example.org", "+442071838750"
	inactive.Status = "INACTIVE"
	inactive.Address = model.Address{Line1: "10 Downing St", City: "London", PostalCode: "SW1A 2AA", Country: "GB"}

	// A prospect needs only its status: what the source lacks is left out.
	prospect := customer("C1003")
	prospect.Status = "PROSPECT"
	prospect.Phone, prospect.DOB = "", model.Date{}
	prospect.Address = model.Address{PostalCode: "78701", Country: "US"}

	// No phone, e-mail or address: an ACTIVE customer needs only its
	// names and dob (Synctera's guides), the rest is left out.
	bare := customer("C1004")
	bare.Phone, bare.Email, bare.Address = "", "", model.Address{}

	// ACTIVE in the source but without a dob: goes as a PROSPECT.
	nodob := customer("C1005")
	nodob.DOB = model.Date{}

	return map[string]*model.Customer{"create_active": active, "create_inactive": inactive, "create_prospect": prospect,
		"create_active_no_contact": bare, "create_active_without_dob": nodob}
}

func TestMapGolden(t *testing.T) {
	c := mapper(t)
	for name, cu := range goldenCustomers() {
		t.Run(name, func(t *testing.T) {
			ops, rejects := c.Map(cu)
			if len(rejects) != 0 || len(ops) != 1 {
				t.Fatalf("ops %d, rejects %v", len(ops), rejects)
			}
			op := ops[0]
			if op.EntityKey.String() != "customer/"+cu.ID || op.CustomerID != cu.ID || op.Origin != cu.Origin {
				t.Errorf("op identity = %q %q %v", op.EntityKey, op.CustomerID, op.Origin)
			}
			body, ok := op.Payload.(synctera.CustomerInBody)
			if !ok {
				t.Fatalf("payload is %T, want synctera.CustomerInBody", op.Payload)
			}
			golden.AssertJSON(t, name+".golden.json", body)
		})
	}
	t.Run("deactivate", func(t *testing.T) {
		golden.AssertJSON(t, "deactivate.golden.json", synctera.DeactivateBody())
	})
}

// TestMapNeverSendsCardDataOrSSN: the customer carries a card, but the
// body has no place for it, nor for an SSN.
func TestMapNeverSendsCardDataOrSSN(t *testing.T) {
	for name, cu := range goldenCustomers() {
		ops, _ := mapper(t).Map(cu)
		b := string(providertest.MustJSON(t, ops[0].Payload))
		for _, bad := range []string{"4111111111111111", "111111", `"123"`, "ssn", "shipping_address"} {
			if strings.Contains(b, bad) {
				t.Errorf("%s: body carries %q: %s", name, bad, b)
			}
		}
	}
}

func TestMapDeterministic(t *testing.T) {
	c := mapper(t)
	for name, cu := range goldenCustomers() {
		a, _ := c.Map(cu)
		b, _ := c.Map(cu)
		if string(providertest.MustJSON(t, a[0].Payload)) != string(providertest.MustJSON(t, b[0].Payload)) {
			t.Errorf("%s: two maps differ", name)
		}
	}
}

func TestMapRejects(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*model.Customer)
		field    string // "" = no reject
		reason   string
		status   string // with no reject: the status sent
		inMsg    []string
		notInMsg []string
	}{
		{name: "phone not E.164", edit: func(c *model.Customer) { c.Phone = "512-555-0100 ext 4" },
			field: "phone", reason: model.ReasonBadPhone, inMsg: []string{"E.164", "phone_number"}, notInMsg: []string{"555"}},
		{name: "phone with leading zero country", edit: func(c *model.Customer) { c.Phone = "+0123456" },
			field: "phone", reason: model.ReasonBadPhone},
		{name: "prospect with bad phone still rejected", edit: func(c *model.Customer) { c.Status, c.Phone = "PROSPECT", "12345" },
			field: "phone", reason: model.ReasonBadPhone},
		{name: "status not in the enum", edit: func(c *model.Customer) { c.Status = "CLOSED" },
			field: "status", reason: model.ReasonBadValue, inMsg: []string{`"CLOSED"`, "PROSPECT"}},
		{name: "status holding a card number is masked", edit: func(c *model.Customer) { c.Status = "4111111111111111" },
			field: "status", reason: model.ReasonBadValue, notInMsg: []string{"4111111111111111"}},
		{name: "no status", edit: func(c *model.Customer) { c.Status = "" },
			field: "status", reason: model.ReasonMissingField},
		{name: "active without dob goes as a prospect", edit: func(c *model.Customer) { c.DOB = model.Date{} }, status: "PROSPECT"},
		{name: "active without last name goes as a prospect", edit: func(c *model.Customer) { c.LastName = "" }, status: "PROSPECT"},
		{name: "active without phone", edit: func(c *model.Customer) { c.Phone = "" }, status: "ACTIVE"},
		{name: "active without email", edit: func(c *model.Customer) { c.Email = "" }, status: "ACTIVE"},
		{name: "active without any address", edit: func(c *model.Customer) { c.Address = model.Address{} }, status: "ACTIVE"},
		{name: "frozen without street", edit: func(c *model.Customer) { c.Status, c.Address.Line1 = "FROZEN", "" }, status: "FROZEN"},
		{name: "inactive without dob", edit: func(c *model.Customer) { c.Status, c.DOB = "INACTIVE", model.Date{} },
			field: "date_of_birth", reason: model.ReasonMissingField, inMsg: []string{"dob", "INACTIVE"}},
		{name: "inactive without first name", edit: func(c *model.Customer) { c.Status, c.FirstName = "INACTIVE", "" },
			field: "first_name", reason: model.ReasonMissingField},
		{name: "lower-case country", edit: func(c *model.Customer) { c.Address.Country = "us" },
			field: "country", reason: model.ReasonBadValue, inMsg: []string{"country_code"}},
		{name: "every problem in one reject, first field named", edit: func(c *model.Customer) { c.Status, c.DOB, c.Phone = "DORMANT", model.Date{}, "bad" },
			field: "date_of_birth", reason: model.ReasonMissingField, inMsg: []string{"date_of_birth", "phone is not E.164"}},
		{name: "prospect without phone, dob, street or email", edit: func(c *model.Customer) {
			c.Status, c.Phone, c.DOB, c.Address.Line1, c.Email = "PROSPECT", "", model.Date{}, "", ""
		}, status: "PROSPECT"},
		{name: "dormant customer", edit: func(c *model.Customer) { c.Status = "DORMANT" }, status: "DORMANT"},
	}
	c := mapper(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cu := customer("C2001")
			tt.edit(cu)
			ops, rejects := c.Map(cu)
			if tt.field == "" {
				if len(rejects) != 0 || len(ops) != 1 {
					t.Fatalf("want one op, got ops %d rejects %v", len(ops), rejects)
				}
				if got := ops[0].Payload.(synctera.CustomerInBody).Status; got != tt.status {
					t.Errorf("status %s, want %s", got, tt.status)
				}
				return
			}
			if len(ops) != 0 || len(rejects) != 1 {
				t.Fatalf("want one reject and no op, got ops %d rejects %v", len(ops), rejects)
			}
			r := rejects[0]
			if r.Field != tt.field || r.Reason != tt.reason || r.Provider != synctera.Name || r.EntityKey != "customer/C2001" || r.Origin != cu.Origin {
				t.Errorf("reject = %+v, want field %s reason %s provider %s", r, tt.field, tt.reason, synctera.Name)
			}
			for _, s := range tt.inMsg {
				if !strings.Contains(r.Message, s) {
					t.Errorf("message %q lacks %q", r.Message, s)
				}
			}
			for _, s := range tt.notInMsg {
				if strings.Contains(r.Message, s) {
					t.Errorf("message %q contains %q", r.Message, s)
				}
			}
		})
	}
}

// TestMappedBodiesAcceptedBySandbox keeps the mapper and the sandbox's
// validation in step: whatever Map lets through, the sandbox creates.
func TestMappedBodiesAcceptedBySandbox(t *testing.T) {
	_, srv := newSandbox(t, nil)
	for name, cu := range goldenCustomers() {
		ops, _ := mapper(t).Map(cu)
		r := call(t, http.MethodPost, srv.URL+"/v0/customers", bearer, "", ops[0].Payload)
		if r.Status != http.StatusCreated {
			t.Errorf("%s: sandbox answered %d %s", name, r.Status, r.Body)
		}
	}
}

// TestMapMetadataCarriesTheEntityKey: the lookup that settles a lost
// create tells our customer apart by it.
func TestMapMetadataCarriesTheEntityKey(t *testing.T) {
	ops, _ := mapper(t).Map(customer("C77"))
	b := ops[0].Payload.(synctera.CustomerInBody)
	if got := synctera.EntityRef(b.Metadata); got != "customer/C77" {
		t.Errorf("metadata %s names %q, want customer/C77", b.Metadata, got)
	}
}
