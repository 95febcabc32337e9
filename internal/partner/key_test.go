package partner_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/partner"
)

// The format is stored in sync_state.entity_key: changing it would make
// every record look new (and vanished) to the next run.
func TestKeyFormatIsStable(t *testing.T) {
	if got := partner.CustomerKey("C1001"); got != "customer/C1001" {
		t.Errorf("CustomerKey = %q", got)
	}
	if got := partner.CardKey("C1001", "K1"); got != "card/C1001/K1" {
		t.Errorf("CardKey = %q", got)
	}
}

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		in, id, card string
		ok           bool
	}{
		{"customer/C1", "C1", "", true},
		{"card/C1/K1", "C1", "K1", true},
		{"card/C1/K/1", "C1", "K/1", true}, // the first slash ends the customer id
		{"customer/", "", "", false},
		{"card/C1", "", "", false},
		{"card//K1", "", "", false},
		{"card/C1/", "", "", false},
		{"C1", "", "", false},
		{"", "", "", false},
	} {
		id, card, err := partner.ParseKey(tc.in)
		if id != tc.id || card != tc.card || (err == nil) != tc.ok {
			t.Errorf("ParseKey(%q) = %q, %q, %v; want %q, %q, ok %v", tc.in, id, card, err, tc.id, tc.card, tc.ok)
		}
		if k := partner.Key(tc.in); k.IsCustomer() != (tc.ok && tc.card == "") {
			t.Errorf("Key(%q).IsCustomer() = %v", tc.in, k.IsCustomer())
		}
	}
	// A reject's key for a card row without a card id still names its
	// customer (so a bad row does not make the customer look vanished).
	for in, want := range map[partner.Key]string{"card/C1/": "C1", "card/C1": "C1", "customer/C1": "C1", "card/C1/K1": "C1", "x/C1": ""} {
		if got := in.Customer(); got != want {
			t.Errorf("Key(%q).Customer() = %q, want %q", in, got, want)
		}
	}
	// What the constructors write, ParseKey reads back.
	if id, card, err := partner.ParseKey(partner.CardKey("C9", "K9").String()); err != nil || id != "C9" || card != "K9" {
		t.Errorf("round trip: %q %q %v", id, card, err)
	}
}
