package transform_test

import (
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/transform"
)

// benchCustomer is a typical export row before normalisation: padded
// names, mixed-case e-mail and country, a formatted phone and two cards
// with formatted numbers.
func benchCustomer(now time.Time) model.Customer {
	card := func(id, pan string) model.Card {
		return model.Card{Origin: model.Origin{File: "cards.csv", Line: 2}, ID: id, CustomerID: "C0001234", AccountID: "A1",
			PAN: model.NewPAN(pan), CVV: model.NewCVV("123"), ExpMonth: 12, ExpYear: now.Year() + 3, Type: "Credit", Status: "open"}
	}
	return model.Customer{
		Origin: model.Origin{File: "customers.csv", Line: 2},
		ID:     " C0001234 ", FirstName: "  Ada ", LastName: "Lovelace ", Email: "Ada.Lovelace1234@Example.COM", Phone: "(512) 555-0100",
		DOB:     model.Date{Year: 1980, Month: 2, Day: 29},
		Address: model.Address{Line1: "1 Main St", City: "Austin", State: "tx", PostalCode: "78753", Country: "us"},
		Status:  "active", Created: now.AddDate(-3, 0, 0), EnrollmentOptIn: "active", AlertOptIn: []string{"all"},
		Accounts: []model.Account{{ID: "A1", Type: "dda", Status: "open",
			Cards: []model.Card{card("K1", "4111 1111-1111 1111"), card("K2", "5555-5555-5555-4444")}}},
	}
}

// BenchmarkValidate normalises and checks one customer with two cards
// (Luhn, expiry, brand, fingerprint). Validate works in place, so each
// iteration starts from a fresh copy; the copy is a few slice
// allocations next to the validation itself.
func BenchmarkValidate(b *testing.B) {
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	v := transform.NewValidator([]byte("bench-fingerprint-key"), now)
	tpl := benchCustomer(now)
	b.ReportAllocs()
	for b.Loop() {
		c := tpl
		c.AlertOptIn = append([]string(nil), tpl.AlertOptIn...)
		c.Accounts = append([]model.Account(nil), tpl.Accounts...)
		c.Accounts[0].Cards = append([]model.Card(nil), tpl.Accounts[0].Cards...)
		if ok, rs := v.Validate(&c); !ok || len(rs) != 0 {
			b.Fatalf("the sample customer was rejected: %v", rs)
		}
	}
}
