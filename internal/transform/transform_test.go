package transform_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/transform"
)

var now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

func TestBrandFromPAN(t *testing.T) {
	tests := []struct{ pan, want string }{
		{"4111111111111111", "visa"},
		{"4000056655665556", "visa"},
		{"5555555555554444", "mastercard"},
		{"5105105105105100", "mastercard"},
		{"2221000000000009", "mastercard"},
		{"2720990000000007", "mastercard"},
		{"2721000000000004", ""}, // just past the 2-series
		{"378282246310005", "american express"},
		{"341111111111111", "american express"},
		{"6011111111111117", "discover"},
		{"6445644564456445", "discover"},
		{"6500000000000002", "discover"},
		{"4936980000000000", "maestro"}, // longer prefix beats Visa's 4
		{"5018000000000009", "maestro"},
		{"5041750000000000", ""}, // the gap between two Maestro ranges
		{"6304000000000000", "maestro"},
		{"6200000000000005", "maestro"}, // 62 outside UnionPay's range falls back to 6
		{"6221260000000000", "unionpay"},
		{"6229250000000000", "unionpay"},
		{"6229260000000000", "maestro"},
		{"122000000000003", "uatp"},
		{"1220000000000003", ""}, // UATP is 15 digits only
		{"3530111333300000", ""}, // JCB: not a brand the partners take
		{"", ""},
		{"4111", ""},
		{"41x1111111111111", ""},
	}
	for _, tc := range tests {
		if got := transform.BrandFromPAN(model.NewPAN(tc.pan)); got != tc.want {
			t.Errorf("BrandFromPAN(%s) = %q, want %q", tc.pan, got, tc.want)
		}
	}
}

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		raw, country, want string
		ok                 bool
	}{
		{"(512) 555-0100", "US", "+15125550100", true},
		{"512.555.0100", "CA", "+15125550100", true},
		{"1-512-555-0100", "US", "+15125550100", true},
		{"+1 512 555 0100", "US", "+15125550100", true},
		{"+44 20 7946 0958", "GB", "+442079460958", true},
		{"0044 20 7946 0958", "GB", "+442079460958", true},
		{"5125550100", "", "+15125550100", true},
		{"  +15125550100 ", "us", "+15125550100", true},
		{"020 7946 0958", "GB", "020 7946 0958", false}, // national format abroad: left to the partner
		{"13812345678", "CN", "13812345678", false},     // a Chinese mobile, not +1
		{"512-555-0100 ext 12", "US", "512-555-0100 ext 12", false},
		{"555-0100", "US", "555-0100", false},
		{"+0 123", "US", "+0 123", false},
		{"+1234567890123456", "US", "+1234567890123456", false}, // 16 digits is too long for E.164
		{"", "US", "", false},
	}
	for _, tc := range tests {
		got, ok := transform.NormalizePhone(tc.raw, tc.country)
		if got != tc.want || ok != tc.ok {
			t.Errorf("NormalizePhone(%q, %q) = %q, %v; want %q, %v", tc.raw, tc.country, got, ok, tc.want, tc.ok)
		}
	}
}

// customer returns a valid customer with one card, for cases to break.
func customer() *model.Customer {
	return &model.Customer{
		Origin: model.Origin{File: "customers.csv", Line: 2},
		ID:     " C1 ", FirstName: "  Ada ", LastName: "Lovelace ", Email: "ada@Example.COM", Phone: "(512) 555-0100",
		DOB:     model.Date{Year: 1980, Month: 2, Day: 29},
		Address: model.Address{Line1: "1 Main St", City: "Austin", State: "tx", PostalCode: "78753", Country: "us"},
		Status:  "active", Created: now.AddDate(-3, 0, 0), EnrollmentOptIn: "active", AlertOptIn: []string{"all"},
		Accounts: []model.Account{{ID: "A1", Type: "dda", Status: "open", Cards: []model.Card{card("K1", "4111 1111-1111 1111")}}},
	}
}

func card(id, pan string) model.Card {
	return model.Card{Origin: model.Origin{File: "cards.csv", Line: 2}, ID: id, CustomerID: "C1", AccountID: "A1",
		PAN: model.NewPAN(pan), CVV: model.NewCVV("123"), ExpMonth: 12, ExpYear: 2030, Type: "Credit", Status: "open"}
}

func TestValidateNormalises(t *testing.T) {
	c := customer()
	v := transform.NewValidator([]byte("key"), now)
	ok, rs := v.Validate(c)
	if !ok || len(rs) != 0 {
		t.Fatalf("valid customer rejected: %v", rs)
	}
	cd := c.Accounts[0].Cards[0]
	checks := []struct{ name, got, want string }{
		{"id", c.ID, "C1"},
		{"first", c.FirstName, "Ada"},
		{"last", c.LastName, "Lovelace"},
		{"email", c.Email, "ada@example.com"},
		{"phone", c.Phone, "+15125550100"},
		{"country", c.Address.Country, "US"},
		{"state", c.Address.State, "TX"},
		{"status", c.Status, "ACTIVE"},
		{"opt-in", c.EnrollmentOptIn, "ACTIVE"},
		{"alerts", c.AlertOptIn[0], "ALL"},
		{"account type", c.Accounts[0].Type, "DDA"},
		{"card type", cd.Type, "credit"},
		{"brand", cd.Brand, "visa"},
		{"card status", cd.Status, "OPEN"},
		{"iin", cd.IIN, "411111"},
		{"last4", cd.Last4, "1111"},
		{"fingerprint", cd.Fingerprint, model.NewPAN("4111111111111111").Fingerprint([]byte("key"))},
		{"pan", cd.PAN.Reveal(), "4111111111111111"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	type want struct{ key, field, reason string }
	tests := []struct {
		name  string
		edit  func(c *model.Customer)
		ok    bool // customer accepted
		cards int  // cards left
		wants []want
	}{
		{"valid", func(*model.Customer) {}, true, 1, nil},
		{"no cards is valid", func(c *model.Customer) { c.Accounts = nil }, true, 0, nil},
		{"account without cards stays", func(c *model.Customer) {
			c.Accounts = append(c.Accounts, model.Account{ID: "A2"})
		}, true, 1, nil},
		{"bad email", func(c *model.Customer) { c.Email = "ada.example.com" }, false, 0,
			[]want{{"customer/C1", "email", model.ReasonBadEmail}, {"card/C1/K1", "customer_id", model.ReasonCustomerReject}}},
		{"email without dot", func(c *model.Customer) { c.Email = "ada@localhost" }, false, 0,
			[]want{{"customer/C1", "email", model.ReasonBadEmail}, {"card/C1/K1", "customer_id", model.ReasonCustomerReject}}},
		{"email with display name", func(c *model.Customer) { c.Email = "Ada <ada@example.com>" }, false, 0,
			[]want{{"customer/C1", "email", model.ReasonBadEmail}, {"card/C1/K1", "customer_id", model.ReasonCustomerReject}}},
		{"country three letters", func(c *model.Customer) { c.Address.Country = "USA" }, false, 0,
			[]want{{"customer/C1", "country", model.ReasonBadValue}, {"card/C1/K1", "customer_id", model.ReasonCustomerReject}}},
		{"blank names and no created", func(c *model.Customer) { c.FirstName, c.LastName, c.Created = " ", "", time.Time{} }, false, 0,
			[]want{{"customer/C1", "first_name", model.ReasonMissingField}, {"customer/C1", "last_name", model.ReasonMissingField},
				{"customer/C1", "created_at", model.ReasonMissingField}, {"card/C1/K1", "customer_id", model.ReasonCustomerReject}}},
		{"birth date in the future", func(c *model.Customer) { c.DOB = model.Date{Year: 2027, Month: 1, Day: 1} }, false, 0,
			[]want{{"customer/C1", "date_of_birth", model.ReasonBadDate}, {"card/C1/K1", "customer_id", model.ReasonCustomerReject}}},
		{"unparseable phone is kept", func(c *model.Customer) { c.Phone = "call me" }, true, 1, nil},
		{"luhn", func(c *model.Customer) { c.Accounts[0].Cards[0].PAN = model.NewPAN("4111111111111112") }, true, 0,
			[]want{{"card/C1/K1", "pan", model.ReasonLuhn}}},
		{"non-digit pan", func(c *model.Customer) { c.Accounts[0].Cards[0].PAN = model.NewPAN("4111x11111111111") }, true, 0,
			[]want{{"card/C1/K1", "pan", model.ReasonBadPAN}}},
		{"12-digit pan", func(c *model.Customer) { c.Accounts[0].Cards[0].PAN = model.NewPAN("411111111113") }, true, 0,
			[]want{{"card/C1/K1", "pan", model.ReasonBadPAN}}},
		{"20-digit pan", func(c *model.Customer) { c.Accounts[0].Cards[0].PAN = model.NewPAN("41111111111111111113") }, true, 0,
			[]want{{"card/C1/K1", "pan", model.ReasonBadPAN}}},
		{"13-digit pan", func(c *model.Customer) { c.Accounts[0].Cards[0].PAN = model.NewPAN("4222222222222") }, true, 1, nil},
		{"19-digit pan", func(c *model.Customer) { c.Accounts[0].Cards[0].PAN = model.NewPAN("4111111111111111110") }, true, 1, nil},
		{"expired last month", func(c *model.Customer) { c.Accounts[0].Cards[0].ExpYear, c.Accounts[0].Cards[0].ExpMonth = 2026, 5 }, true, 0,
			[]want{{"card/C1/K1", "exp_year", model.ReasonExpired}}},
		{"expires this month", func(c *model.Customer) { c.Accounts[0].Cards[0].ExpYear, c.Accounts[0].Cards[0].ExpMonth = 2026, 6 }, true, 1, nil},
		{"bad month", func(c *model.Customer) { c.Accounts[0].Cards[0].ExpMonth = 13 }, true, 0,
			[]want{{"card/C1/K1", "exp_month", model.ReasonBadValue}}},
		{"bad cvv", func(c *model.Customer) { c.Accounts[0].Cards[0].CVV = model.NewCVV("12") }, true, 0,
			[]want{{"card/C1/K1", "cvv", model.ReasonBadCVV}}},
		{"no cvv is fine", func(c *model.Customer) { c.Accounts[0].Cards[0].CVV = model.NewCVV("") }, true, 1, nil},
		{"bad card type", func(c *model.Customer) { c.Accounts[0].Cards[0].Type = "prepaid" }, true, 0,
			[]want{{"card/C1/K1", "card_type", model.ReasonBadValue}}},
		{"unknown brand", func(c *model.Customer) { c.Accounts[0].Cards[0].Brand = "Diners" }, true, 0,
			[]want{{"card/C1/K1", "brand", model.ReasonBadValue}}},
		{"brand alias", func(c *model.Customer) { c.Accounts[0].Cards[0].Brand = "AMEX" }, true, 1, nil},
		{"one bad card of two", func(c *model.Customer) {
			c.Accounts[0].Cards = append(c.Accounts[0].Cards, card("K2", "4111111111111112"))
		}, true, 1, []want{{"card/C1/K2", "pan", model.ReasonLuhn}}},
		{"duplicate card id", func(c *model.Customer) {
			c.Accounts = append(c.Accounts, model.Account{ID: "A2", Cards: []model.Card{card("K1", "5555555555554444")}})
		}, true, 1, []want{{"card/C1/K1", "card_id", model.ReasonDuplicateKey}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := customer()
			tc.edit(c)
			ok, rs := transform.NewValidator([]byte("k"), now).Validate(c)
			if ok != tc.ok || len(c.Cards()) != tc.cards || len(rs) != len(tc.wants) {
				t.Fatalf("ok=%v cards=%d rejects=%v; want ok=%v cards=%d %d rejects", ok, len(c.Cards()), rs, tc.ok, tc.cards, len(tc.wants))
			}
			for i, w := range tc.wants {
				r := rs[i]
				if r.EntityKey != w.key || r.Field != w.field || r.Reason != w.reason || r.Message == "" || r.Origin.File == "" {
					t.Errorf("reject %d = %+v, want %+v", i, r, w)
				}
				if strings.Contains(r.Message, "4111111111111112") || strings.Contains(r.Message, "123") {
					t.Errorf("card data in message: %s", r.Message)
				}
			}
		})
	}
}

// A card id that is itself a card number is rejected (field card_id, with
// its file and line) and never shown: not in the message, not in the
// entity key, whether the customer is valid or not.
func TestCardIDThatIsACardNumberIsRejectedUnshown(t *testing.T) {
	const pan = "5555555555554444"
	for _, tc := range []struct {
		name   string
		id     string
		edit   func(*model.Customer)
		field  string
		reason string
	}{
		{"valid customer", pan, nil, "card_id", model.ReasonBadValue},
		{"with separators", "5555 5555-5555 4444", nil, "card_id", model.ReasonBadValue},
		{"rejected customer", pan, func(c *model.Customer) { c.Email = "nope" }, "customer_id", model.ReasonCustomerReject},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := customer()
			c.Accounts[0].Cards[0].ID = tc.id
			c.Accounts[0].Cards[0].Origin = model.Origin{File: "cards.csv", Line: 7}
			if tc.edit != nil {
				tc.edit(c)
			}
			_, rs := transform.NewValidator([]byte("k"), now).Validate(c)
			var found bool
			for _, r := range rs {
				if strings.Contains(r.Error(), pan) || strings.Contains(r.Error(), "5555 5555") || strings.Contains(fmt.Sprintf("%+v", r), pan) {
					t.Errorf("reject shows the card number: %s", r.Error())
				}
				if r.Field == tc.field && r.Reason == tc.reason && r.Origin.File == "cards.csv" && r.Origin.Line == 7 && strings.HasPrefix(r.EntityKey, "card/C1/") {
					found = true
				}
			}
			if !found || len(c.Cards()) != 0 {
				t.Fatalf("rejects %v, %d cards kept: want the card rejected on cards.csv:7, field %s", rs, len(c.Cards()), tc.field)
			}
		})
	}
}

func TestCardIDIsPAN(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"4111111111111111", true},
		{"4111-1111-1111-1111", true},
		{"378282246310005", true}, // 15 digits
		{"123456789015", true},    // 12 digits, Luhn-valid
		{"12345678903", false},    // 11 digits
		{"4111111111111111110", true},
		{"41111111111111111107", false}, // 20 digits, Luhn-valid
		{"4111111111111112", false},     // fails Luhn
		{"K4111111111111111", false},
		{"K1", false},
		{"", false},
	} {
		if got := transform.CardIDIsPAN(tc.id); got != tc.want {
			t.Errorf("CardIDIsPAN(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestQuoteMasksCardNumbers(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ada@example.com", `"ada@example.com"`},
		{"4111 1111 1111 1111", `"**** **** **** ****"`},
		{"x4111-1111-1111-1111y", `"x****-****-****-****y"`},
		{"call 512 555 0100", `"call 512 555 0100"`}, // ten digits: a phone, left alone
		{strings.Repeat("a", 100), `"` + strings.Repeat("a", 64) + `…"`},
	}
	for _, tc := range tests {
		if got := transform.Quote(tc.in); got != tc.want {
			t.Errorf("Quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
