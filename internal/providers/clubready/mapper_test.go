package clubready_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/clubready"
)

func mapper(t *testing.T) *clubready.Client {
	t.Helper()
	c, err := clubready.New(clubready.Config{BaseURL: "http://127.0.0.1:1", ApiKey: apiKey, VaultURL: "http://127.0.0.1:1", VaultKey: vaultKey})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMapOneOpPerOpenCard(t *testing.T) {
	cu := customer("C1")
	// Not imported: a closed card, a card of a closed account, and the
	// other holder's card on a joint account.
	closed := card("C1", "K3", "4012888888881881", "")
	closed.Status = "CLOSED"
	other := card("C2", "K4", "4000056655665556", "")
	cu.Accounts[0].Cards = append(cu.Accounts[0].Cards, closed, other)
	cu.Accounts = append(cu.Accounts, model.Account{ID: "A9", Status: "CLOSED", Cards: []model.Card{card("C1", "K5", "4242424242424242", "")}})

	ops, rej := mapper(t).Map(cu)
	if len(rej) != 0 || len(ops) != 2 {
		t.Fatalf("ops %d rejects %v", len(ops), rej)
	}
	want := []struct {
		key       string
		pan, cvv  string
		preferred bool
		zip, name string
	}{
		{"card/C1/K1", visaPAN, cvv, true, "78701", "ADA K LOVELACE"},
		{"card/C1/K2", mcPAN, "", false, "78753", "Ada K Lovelace"}, // the customer's zip and name
	}
	for i, w := range want {
		op := ops[i]
		req, ok := op.Payload.(clubready.VaultRequest)
		if !ok || op.EntityKey.String() != w.key || op.CustomerID != "C1" || op.Origin != (model.Origin{File: "cards.csv", Line: 3}) {
			t.Fatalf("op %d: %s %s %v %T", i, op.EntityKey, op.CustomerID, op.Origin, op.Payload)
		}
		if req.ExternalRef != w.key || req.OwnerType != "TempStUser" || req.OwnerId != 100123 || req.CardNumber != w.pan ||
			req.Cvv != w.cvv || req.Preferred != w.preferred || req.BillingZip != w.zip || req.NameOnCard != w.name ||
			req.PostalCode != "78753" || req.CountryCode != "US" {
			t.Errorf("op %d payload: %v (cvv set %t, zip %q, name %q)", i, req, req.Cvv != "", req.BillingZip, req.NameOnCard)
		}
	}
}

func TestMapOnlyTheFirstDefaultCardIsPreferred(t *testing.T) {
	cu := customer("C1")
	cu.Accounts[0].Cards[1].IsDefault = true
	ops, _ := mapper(t).Map(cu)
	if !ops[0].Payload.(clubready.VaultRequest).Preferred || ops[1].Payload.(clubready.VaultRequest).Preferred {
		t.Fatal("two imports would each make their card the preferred one")
	}
}

func TestMapRejects(t *testing.T) {
	tests := []struct {
		name          string
		edit          func(*model.Customer)
		ops           int
		keys          []string
		field, reason string
	}{
		{"no member id", func(c *model.Customer) { c.MemberID = "" }, 0, []string{"card/C1/K1", "card/C1/K2"}, "member_id", model.ReasonMissingField},
		{"member id not numeric", func(c *model.Customer) { c.MemberID = "M-100" }, 0, []string{"card/C1/K1", "card/C1/K2"}, "member_id", model.ReasonBadValue},
		{"member id zero", func(c *model.Customer) { c.MemberID = "0" }, 0, []string{"card/C1/K1", "card/C1/K2"}, "member_id", model.ReasonBadValue},
		{"member id beyond int32", func(c *model.Customer) { c.MemberID = "2147483648" }, 0, []string{"card/C1/K1", "card/C1/K2"}, "member_id", model.ReasonBadValue},
		{"short pan", func(c *model.Customer) { c.Accounts[0].Cards[1].PAN = model.NewPAN("55554444") }, 1, []string{"card/C1/K2"}, "pan", model.ReasonBadPAN},
		{"luhn", func(c *model.Customer) { c.Accounts[0].Cards[1].PAN = model.NewPAN("5555555555554445") }, 1, []string{"card/C1/K2"}, "pan", model.ReasonLuhn},
		{"exp month", func(c *model.Customer) { c.Accounts[0].Cards[1].ExpMonth = 13 }, 1, []string{"card/C1/K2"}, "exp_month", model.ReasonBadDate},
		{"exp year", func(c *model.Customer) { c.Accounts[0].Cards[1].ExpYear = 31 }, 1, []string{"card/C1/K2"}, "exp_year", model.ReasonBadDate},
		{"cvv", func(c *model.Customer) { c.Accounts[0].Cards[0].CVV = model.NewCVV("12") }, 1, []string{"card/C1/K1"}, "cvv", model.ReasonBadCVV},
		{"no card id", func(c *model.Customer) { c.Accounts[0].Cards[1].ID = "" }, 1, []string{"card/C1/"}, "card_id", model.ReasonMissingField},
		{"duplicate card id", func(c *model.Customer) { c.Accounts[0].Cards[1].ID = "K1" }, 1, []string{"card/C1/K1"}, "card_id", model.ReasonDuplicateKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cu := customer("C1")
			tc.edit(cu)
			ops, rej := mapper(t).Map(cu)
			if len(ops) != tc.ops || len(rej) != len(tc.keys) {
				t.Fatalf("ops %d rejects %v", len(ops), rej)
			}
			for i, r := range rej {
				if r.EntityKey != tc.keys[i] || r.Field != tc.field || r.Reason != tc.reason || r.Provider != clubready.Name ||
					r.Message == "" || r.Origin.File != "cards.csv" {
					t.Errorf("reject %d: %+v", i, r)
				}
				noCardData(t, "reject", r.Error())
			}
		})
	}
}

func TestMapCustomerWithoutOpenCardsIsNotRejected(t *testing.T) {
	cu := customer("C1")
	cu.MemberID = ""
	cu.Accounts[0].Status = "CLOSED"
	if ops, rej := mapper(t).Map(cu); len(ops) != 0 || len(rej) != 0 {
		t.Fatalf("ops %v rejects %v", ops, rej)
	}
}

func TestMapIsDeterministic(t *testing.T) {
	c := mapper(t)
	a, _ := c.Map(customer("C1"))
	b, _ := c.Map(customer("C1"))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two maps of the same customer differ")
	}
}

func TestHashContentLeavesOutTheCVV(t *testing.T) {
	ops, _ := mapper(t).Map(customer("C1"))
	req := ops[0].Payload.(clubready.VaultRequest)
	if _, ok := any(req).(partner.Hashable); !ok {
		t.Fatal("the payload carries a CVV but does not implement partner.Hashable")
	}
	hash := func(r clubready.VaultRequest) string {
		b, err := json.Marshal(r.HashContent())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	with := hash(req)
	noCardData(t, "hash content", strings.ReplaceAll(with, visaPAN, ""))
	without := req
	without.Cvv = ""
	if hash(without) != with {
		t.Error("the hash depends on the CVV")
	}
	notPreferred := req
	notPreferred.Preferred = false
	if hash(notPreferred) == with {
		t.Error("the hash ignores the preference, which the import sends")
	}
	if req.Cvv != cvv {
		t.Error("HashContent changed the payload itself")
	}
}

func TestPayloadNeverPrintsCardData(t *testing.T) {
	ops, _ := mapper(t).Map(customer("C1"))
	op := ops[0]
	for _, s := range []string{
		fmt.Sprint(op.Payload), fmt.Sprintf("%v %+v %#v %s", op.Payload, op.Payload, op.Payload, op.Payload),
		fmt.Sprintf("%v %+v", op, &op), op.Payload.(clubready.VaultRequest).String(),
	} {
		noCardData(t, "printed op", s)
		if strings.Contains(s, cvv) {
			t.Errorf("printed op carries the CVV: %s", s)
		}
	}
	if s := fmt.Sprint(op.Payload); !strings.Contains(s, "411111******1111") || !strings.Contains(s, "card/C1/K1") {
		t.Errorf("printed payload should show the masked card and its key: %s", s)
	}
}
