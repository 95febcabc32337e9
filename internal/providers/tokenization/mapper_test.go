package tokenization_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/northwind-data/etl/internal/golden"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/tokenization"
)

func mapOne(t *testing.T, c *tokenization.Client, cu *model.Customer) partner.Op {
	t.Helper()
	ops, rej := c.Map(cu)
	if len(ops) != 1 || len(rej) != 0 {
		t.Fatalf("ops %d rejects %v", len(ops), rej)
	}
	return partner.NewOp(ops[0])
}

// The request bodies for representative customers, as the engine hashes
// them and as create sends them.
func TestMapGolden(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", nil)
	inactive := customer("C2")
	inactive.Status = "INACTIVE"
	prospect := customer("C3")
	prospect.Status = "prospect"
	renamed := customer("C1")
	renamed.FirstName, renamed.LastName = "Augusta Ada", "King"
	for _, tc := range []struct {
		golden string
		c      *model.Customer
		cfg    func(*tokenization.Config)
	}{
		{"active_customer.golden.json", customer("C1"), nil},
		{"inactive_customer.golden.json", inactive, nil},
		{"prospect_customer.golden.json", prospect, nil},
		{"renamed_customer.golden.json", renamed, nil},
		{"partner_by_name_custom_prefix.golden.json", customer("C1"), func(cfg *tokenization.Config) {
			cfg.PartnerID, cfg.NamePrefix = 0, "nw-"
		}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			cl := c
			if tc.cfg != nil {
				cl = newClient(t, "http://127.0.0.1:1", tc.cfg)
			}
			op := mapOne(t, cl, tc.c)
			if op.EntityKey.String() != "customer/"+tc.c.ID || op.CustomerID != tc.c.ID || op.Origin != tc.c.Origin {
				t.Fatalf("op %+v", op)
			}
			b, _ := json.MarshalIndent(op.Payload, "", "  ")
			noCardData(t, "payload", b)
			golden.Assert(t, tc.golden, append(b, '\n'))
		})
	}
}

// A renamed customer keeps its client name: the name is the lookup key.
func TestNameIsStableAcrossRenames(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", nil)
	a := mapOne(t, c, customer("C1")).Payload.(tokenization.ClientRequest)
	cu := customer("C1")
	cu.FirstName, cu.LastName = "Grace", "Hopper"
	b := mapOne(t, c, cu).Payload.(tokenization.ClientRequest)
	if a.Name != "etl-C1" || b.Name != a.Name || c.ClientName("C1") != a.Name || c.EntityKey(a.Name) != "customer/C1" || c.EntityKey("Test Client") != "" {
		t.Fatalf("names %q %q", a.Name, b.Name)
	}
	if !reflect.DeepEqual(mapOne(t, c, customer("C1")), mapOne(t, c, customer("C1"))) {
		t.Fatal("Map is not deterministic")
	}
}

func TestMapRejects(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", nil)
	for _, tc := range []struct {
		name   string
		mod    func(*model.Customer)
		fields []string
	}{
		{"no id", func(cu *model.Customer) { cu.ID = "" }, []string{"customer_id"}},
		{"no first name", func(cu *model.Customer) { cu.FirstName = " " }, []string{"first_name"}},
		{"no last name or email", func(cu *model.Customer) { cu.LastName, cu.Email = "", "" }, []string{"last_name", "email"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cu := customer("C9")
			tc.mod(cu)
			ops, rej := c.Map(cu)
			if len(ops) != 0 || len(rej) != len(tc.fields) {
				t.Fatalf("ops %v rejects %v", ops, rej)
			}
			for i, r := range rej {
				if r.Field != tc.fields[i] || r.Reason != model.ReasonMissingField || r.Provider != tokenization.Name || r.Origin != cu.Origin || r.Message == "" {
					t.Errorf("reject %d: %+v", i, r)
				}
			}
		})
	}
}
