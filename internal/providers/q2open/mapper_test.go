package q2open_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/golden"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/q2open"
)

// The golden files hold the bodies that actually went over the wire to the
// sandbox, which accepted each of them.
func TestRequestBodiesGolden(t *testing.T) {
	full := customer("C1")
	// Left out: a closed card, a card of the other holder of a joint
	// account, and every card of a closed account.
	closedCard := card("C1", "K3", visaPAN, "", "credit", "visa")
	closedCard.Status = "CLOSED"
	otherHolder := card("C9", "K4", "378282246310005", "", "credit", "american express")
	full.Accounts[0].Cards = append(full.Accounts[0].Cards, closedCard, otherHolder)
	full.Accounts[0].CustomerIDs = []string{"C1", "C9"}
	full.Accounts = append(full.Accounts, model.Account{ID: "A-old", Status: "CLOSED",
		Cards: []model.Card{card("C1", "K5", "6011111111111117", "", "credit", "discover")}})

	bare := &model.Customer{Origin: model.Origin{File: "customers.csv", Line: 9}, ID: "C2", FirstName: "Grace", LastName: "Hopper",
		Email: "grace@example.com"}

	// A brand outside Q2's list and a type outside its enum are left out;
	// a non-NANP phone goes as E.164; the second "default" card is not.
	odd := customer("C3")
	odd.Phone = "+447700900123"
	odd.Accounts[0].Cards[1].IsDefault = true
	up := card("C3", "K6", "6250941006528599", "", "prepaid", "unionpay")
	up.ExpMonth = 7
	odd.Accounts[0].Cards = append(odd.Accounts[0].Cards, up)

	for _, tc := range []struct {
		name  string
		c     *model.Customer
		cards int
	}{{"customer_with_cards", full, 2}, {"customer_without_cards", bare, 0}, {"brand_outside_list", odd, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			sb, _ := sandboxServer(t)
			rec := providertest.NewRecorder(sb)
			srv := providertest.Serve(t, rec)
			c := newClient(t, srv, token, nil)
			ops, rej := c.Map(tc.c)
			if len(rej) != 0 || len(ops) != 1 {
				t.Fatalf("ops %d rejects %v", len(ops), rej)
			}
			res := c.Send(context.Background(), partner.NewOps(ops), nil)
			if res[0].Outcome != partner.OK || len(res[0].Children) != tc.cards {
				t.Fatalf("result %+v", res[0])
			}
			body := rec.Last("").Body
			var buf bytes.Buffer
			if err := json.Indent(&buf, body, "", "  "); err != nil {
				t.Fatal(err)
			}
			buf.WriteByte('\n')
			golden.Assert(t, tc.name+".golden.json", buf.Bytes())
		})
	}
}

func TestMapRejectsWhatQ2CannotTake(t *testing.T) {
	tests := []struct {
		name, field, reason string
		mod                 func(*model.Card)
	}{
		{"letters in PAN", "pan", model.ReasonBadPAN, func(c *model.Card) { c.PAN = model.NewPAN("4111x11111111111") }},
		{"short PAN", "pan", model.ReasonBadPAN, func(c *model.Card) { c.PAN = model.NewPAN("41111111111") }},
		{"Luhn", "pan", model.ReasonLuhn, func(c *model.Card) { c.PAN = model.NewPAN("4111111111111112") }},
		{"month 13", "exp_month", model.ReasonBadDate, func(c *model.Card) { c.ExpMonth = 13 }},
		{"month 0", "exp_month", model.ReasonBadDate, func(c *model.Card) { c.ExpMonth = 0 }},
		{"two-digit year", "exp_year", model.ReasonBadDate, func(c *model.Card) { c.ExpYear = 40 }},
		{"bad code", "cvv", model.ReasonBadCVV, func(c *model.Card) { c.CVV = model.NewCVV("12") }},
		{"no card id", "card_id", model.ReasonMissingField, func(c *model.Card) { c.ID = "" }},
	}
	c := newClient(t, "http://127.0.0.1:1", token, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cu := customer("C1")
			tc.mod(&cu.Accounts[0].Cards[0])
			ops, rej := c.Map(cu)
			if len(rej) != 1 || rej[0].Field != tc.field || rej[0].Reason != tc.reason || rej[0].Provider != q2open.Name ||
				rej[0].Origin.File != "cards.csv" || !strings.HasPrefix(rej[0].EntityKey, "card/C1/") {
				t.Fatalf("rejects %+v", rej)
			}
			if strings.Contains(rej[0].Error(), visaPAN) || strings.Contains(rej[0].Error(), "4111x") {
				t.Fatalf("reject carries card data: %s", rej[0].Error())
			}
			// The customer and the good card still go.
			if len(ops) != 1 || ids(ops[0]) != "K2" {
				t.Fatalf("ops %d cards %q; want the customer with K2 only", len(ops), ids(ops[0]))
			}
		})
	}
}

func TestMapRejectsCustomerWithoutID(t *testing.T) {
	cu := customer("")
	ops, rej := newClient(t, "http://127.0.0.1:1", token, nil).Map(cu)
	if len(ops) != 0 || len(rej) != 1 || rej[0].Field != "customer_id" || rej[0].Reason != model.ReasonMissingField {
		t.Fatalf("ops %d rejects %+v", len(ops), rej)
	}
}

func TestMapSendsADuplicateCardIDOnce(t *testing.T) {
	cu := customer("C1")
	dup := card("C1", "K1", "4000056655665556", "", "debit", "visa")
	cu.Accounts = append(cu.Accounts, model.Account{ID: "A2", Status: "OPEN", Cards: []model.Card{dup}})
	ops, rej := newClient(t, "http://127.0.0.1:1", token, nil).Map(cu)
	if len(rej) != 1 || rej[0].Reason != model.ReasonDuplicateKey || rej[0].EntityKey != "card/C1/K1" {
		t.Fatalf("rejects %+v", rej)
	}
	req := ops[0].Payload.(q2open.SyncRequest)
	if ids(ops[0]) != "K1,K2" || req.Cards[0].CardNumber != visaPAN {
		t.Fatalf("cards %q: the first K1 must be the one sent", ids(ops[0]))
	}
}

func ids(op partner.Item) string {
	var out []string
	for _, c := range op.Payload.(q2open.SyncRequest).Cards {
		out = append(out, c.Identifier)
	}
	return strings.Join(out, ",")
}

func TestMapIsDeterministic(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", token, nil)
	a, _ := c.Map(customer("C1"))
	b, _ := c.Map(customer("C1"))
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("two maps of one customer differ:\n%+v\n%+v", a[0].Payload, b[0].Payload)
	}
}

// An unchanged customer must hash the same every night although the token
// expiration moves; a changed card code must not show in the hash at all.
func TestContentHashIgnoresExpirationAndCardCode(t *testing.T) {
	key := []byte("k")
	hash := func(now time.Time, mod func(*model.Customer)) string {
		cu := customer("C1")
		if mod != nil {
			mod(cu)
		}
		ops, _ := newClient(t, "http://127.0.0.1:1", token, func(c *q2open.Config) { c.Now = func() time.Time { return now } }).Map(cu)
		h, err := load.ContentHash(key, ops[0].Payload)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	base := hash(providertest.T0, nil)
	if hash(providertest.T0.Add(25*time.Hour), nil) != base {
		t.Error("the hash moves with the clock")
	}
	if hash(providertest.T0, func(c *model.Customer) { c.Accounts[0].Cards[0].CVV = model.NewCVV("999") }) != base {
		t.Error("the card code is part of the hash")
	}
	if hash(providertest.T0, func(c *model.Customer) { c.Email = "ada@example.org" }) == base {
		t.Error("a changed e-mail does not change the hash")
	}
	if hash(providertest.T0, func(c *model.Customer) { c.Accounts[0].Cards[0].ExpYear = 2041 }) == base {
		t.Error("a changed card does not change the hash")
	}

	ops, _ := newClient(t, "http://127.0.0.1:1", token, nil).Map(customer("C1"))
	hc, _ := json.Marshal(ops[0].Payload.(partner.Hashable).HashContent())
	if bytes.Contains(hc, []byte(`"cardCode"`)) || bytes.Contains(hc, []byte("2026-11-24")) {
		t.Fatalf("hash content %s carries the code or the expiration", hc)
	}
	// HashContent works on a copy: the payload still sends the code.
	if ops[0].Payload.(q2open.SyncRequest).Cards[0].CardCode != cvv {
		t.Fatal("HashContent changed the payload")
	}
}

// The hash of an unchanged customer is what earlier versions stored in
// sync_state: a deploy must not make every Q2 customer look changed (and
// a masked encoding, which would also miss a new card number with the
// same last four, must not creep into it).
func TestContentHashIsStableAcrossVersions(t *testing.T) {
	ops, _ := newClient(t, "http://127.0.0.1:1", token, nil).Map(customer("C1"))
	h, err := load.ContentHash([]byte("k"), ops[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if want := "7e2c3dd5137477a2ef10796955f3b4e086a9d68e0891591c589386efba672ce5"; h != want {
		t.Fatalf("hash %s, want %s (the value before payment-method reconciliation)", h, want)
	}
	cu := customer("C1")
	cu.Accounts[0].Cards[0].PAN = model.NewPAN("4000000000001111") // same last four
	other, _ := newClient(t, "http://127.0.0.1:1", token, nil).Map(cu)
	if h2, _ := load.ContentHash([]byte("k"), other[0].Payload); h2 == h {
		t.Fatal("a new card number with the same last four does not change the hash")
	}
}

// Cards closed at the bank (the card, or its account) are listed for the
// client to delete; another holder's card is not, and nothing closed is
// in the request's cards.
func TestMapListsClosedCards(t *testing.T) {
	cu := customer("C1")
	closedCard := card("C1", "K3", visaPAN, "", "credit", "visa")
	closedCard.Status = "CLOSED"
	otherHolder := card("C9", "K4", "378282246310005", "", "credit", "american express")
	otherHolder.Status = "CLOSED"
	cu.Accounts[0].Cards = append(cu.Accounts[0].Cards, closedCard, otherHolder)
	cu.Accounts = append(cu.Accounts, model.Account{ID: "A-old", Status: "CLOSED",
		Cards: []model.Card{card("C1", "K5", "6011111111111117", "", "credit", "discover")}})
	ops, rej := newClient(t, "http://127.0.0.1:1", token, nil).Map(cu)
	if len(rej) != 0 {
		t.Fatal(rej)
	}
	req := ops[0].Payload.(q2open.SyncRequest)
	if fmt.Sprint(req.Closed) != "[K3 K5]" || ids(ops[0]) != "K1,K2" {
		t.Fatalf("closed %v, sent %s", req.Closed, ids(ops[0]))
	}
}
