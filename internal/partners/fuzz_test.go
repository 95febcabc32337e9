package partners_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/bench"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/transform"
)

// FuzzMappers feeds every partner's mapper customers built from arbitrary
// field values, after validation as in a run: no panic, every customer
// ends as ops or rejects, payloads hash, and no reject or error message
// carries the card number or security code.
func FuzzMappers(f *testing.F) {
	f.Add("Ada", "Lovelace", "ada@example.com", "+15125550100", "78753", "US", "4111111111111111", "123", 12, 2031, "credit", "visa", "1001", "ACTIVE")
	f.Add("", "", "x", "phone", "", "", "4111 1111-1111 1111", "12a", 13, 99, "Debit", "amex", "-3", "prospect")
	f.Add("名", "O'Brien", "a@b.c", "00441234567890", "SW1A 1AA", "gb", "378282246310005", "1234", 1, 2030, "credit", "", "", "INACTIVE")
	var provs []partner.Provider
	for _, sp := range partners.All() {
		p, err := bench.OfflineProvider(sp)
		if err != nil {
			f.Fatal(err)
		}
		provs = append(provs, p)
	}
	v := transform.NewValidator([]byte("fuzz-key-0123456789"), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	f.Fuzz(func(t *testing.T, first, last, email, phone, zip, country, pan, cvv string, month, year int, ctype, brand, member, status string) {
		c := &model.Customer{
			Origin: model.Origin{File: "customers.csv", Line: 2}, ID: "C1", OrganizationID: "50004",
			FirstName: first, LastName: last, Email: email, Phone: phone, MemberID: member, Status: status,
			Address: model.Address{Line1: "1 Main", PostalCode: zip, Country: country},
			Created: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
			Accounts: []model.Account{{ID: "A1", CustomerIDs: []string{"C1"}, Cards: []model.Card{{ID: "K1", CustomerID: "C1", AccountID: "A1",
				PAN: model.NewPAN(pan), CVV: model.NewCVV(cvv), ExpMonth: month, ExpYear: year, Type: ctype, Brand: brand, IsDefault: true}}}},
		}
		ok, rejects := v.Validate(c)
		secret := func(s string) bool {
			digits := strings.NewReplacer(" ", "", "-", "").Replace(pan)
			return (len(digits) >= 12 && strings.Contains(s, digits)) || (len(cvv) >= 3 && strings.Contains(s, cvv) && strings.Contains(strings.ToLower(s), "cvv"))
		}
		for _, r := range rejects {
			if secret(r.Message) {
				t.Fatalf("validation reject carries card data: %q", r.Message)
			}
		}
		if !ok {
			return
		}
		for _, p := range provs {
			ops, rs := p.Map(c)
			for _, r := range rs {
				if secret(r.Message) || secret(r.Error()) {
					t.Fatalf("%s reject carries card data: %q", p.Name(), r.Message)
				}
			}
			for _, op := range ops {
				if op.EntityKey == "" || op.CustomerID != "C1" {
					t.Fatalf("%s op without keys: %+v", p.Name(), op.EntityKey)
				}
				if _, err := load.ContentHash([]byte("k"), op.Payload); err != nil {
					t.Fatalf("%s payload does not hash: %v", p.Name(), err)
				}
				if h, ok := op.Payload.(partner.Hashable); ok && cvv != "" && len(cvv) >= 3 {
					b, _ := json.Marshal(h.HashContent())
					if strings.Contains(string(b), `"`+cvv+`"`) {
						t.Fatalf("%s hashes the CVV", p.Name())
					}
				}
			}
		}
	})
}
