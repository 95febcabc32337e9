package transform_test

import (
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/transform"
)

// FuzzValidate feeds random field values through Validate: it must not
// panic, must account for every card, and must never put a card number
// or security code in a reject message.
func FuzzValidate(f *testing.F) {
	f.Add("C1", "Ada", "Lovelace", "ada@example.com", "(512) 555-0100", "US", "78753", "4111 1111 1111 1111", "123", 12, 2030, "credit", "")
	f.Add("", " ", "", "not-an-email", "+0", "usa", "", "4111-1111-1111-1112", "12", 13, 99, "CREDIT", "diners")
	f.Add("C2", "Zoë", "Müller", "z@ex.co", "0044 20 7946 0958", "gb", "SW1", "378282246310005", "1234", 1, 2026, "debit", "AMEX")
	f.Add("C3", "a", "b", "a@b.c", "", "", "x", "6221260000000000000", "", 0, 0, "", "unionpay")
	f.Fuzz(func(t *testing.T, id, first, last, email, phone, country, zip, pan, cvv string, month, year int, typ, brand string) {
		c := &model.Customer{ID: id, FirstName: first, LastName: last, Email: email, Phone: phone, Created: now,
			Address:  model.Address{Country: country, PostalCode: zip},
			Accounts: []model.Account{{ID: "A", Cards: []model.Card{{ID: "K", PAN: model.NewPAN(pan), CVV: model.NewCVV(cvv), ExpMonth: month, ExpYear: year, Type: typ, Brand: brand}}}},
		}
		digits := model.NewPAN(pan).Reveal()
		ok, rs := transform.NewValidator([]byte("k"), now).Validate(c)
		cardRejects := 0
		seen := map[string]bool{}
		for _, r := range rs {
			if r.Reason == "" || r.Message == "" {
				t.Fatalf("incomplete reject %+v", r)
			}
			// A number short enough to occur by chance in other text is
			// not a card number anyone could leak.
			if len(digits) >= 8 && strings.Contains(r.Message, digits) {
				t.Fatalf("PAN in reject message: %s", r.Message)
			}
			// Only a code that looks like one can leak; "b" is in any text.
			if v := model.NewCVV(cvv).Reveal(); len(v) >= 3 && model.NewPAN(v).AllDigits() && r.Field == "cvv" && strings.Contains(r.Message, v) {
				t.Fatalf("CVV in reject message: %s", r.Message)
			}
			if strings.HasPrefix(r.EntityKey, "card/") && !seen[r.EntityKey] {
				seen[r.EntityKey] = true
				cardRejects++
			}
		}
		if cardRejects+len(c.Cards()) != 1 {
			t.Fatalf("card neither kept nor rejected (ok=%v): %v", ok, rs)
		}
		if !ok && len(c.Cards()) != 0 {
			t.Fatal("a rejected customer kept cards")
		}
		if cd := c.Cards(); len(cd) == 1 && (cd[0].Last4 == "" || len(cd[0].Fingerprint) != 64) {
			t.Fatalf("kept card lacks last4/fingerprint: %+v", cd[0])
		}
	})
}
