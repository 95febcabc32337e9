package model_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/model"
)

const pan = "4111111111111111"

func TestPANNeverPrints(t *testing.T) {
	p := model.NewPAN("4111 1111-1111 1111")
	c := model.NewCVV("987")
	card := model.Card{ID: "K1", PAN: p, CVV: c}
	j, _ := json.Marshal(card)
	outs := []string{
		fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s %q %x %d", p, p, p, p, p, p, p),
		fmt.Sprintf("%v %+v %#v", card, card, &card), string(j),
		fmt.Errorf("wrap: %w", errors.New(p.String())).Error(),
		fmt.Sprint(c), fmt.Sprintf("%#v %x %q", c, c, c),
	}
	for _, s := range outs {
		if strings.Contains(s, pan) || strings.Contains(s, "987") {
			t.Errorf("card data printed: %s", s)
		}
	}
	if got := p.String(); got != "411111******1111" {
		t.Errorf("masked = %q", got)
	}
	if p.Reveal() != pan || c.Reveal() != "987" {
		t.Error("Reveal must return the real values for outgoing requests")
	}
}

func TestPANChecks(t *testing.T) {
	tests := []struct {
		in           string
		digits, luhn bool
		iin, last4   string
	}{
		{"4111111111111111", true, true, "411111", "1111"},
		{"4111111111111112", true, false, "411111", "1112"},
		{"378282246310005", true, true, "378282", "0005"},
		{"4111-1111-1111-1111", true, true, "411111", "1111"},
		{"4111x11111111111", false, false, "", ""},
		{"", false, false, "", ""},
		{"12345", true, false, "", ""},
	}
	for _, tc := range tests {
		p := model.NewPAN(tc.in)
		if p.AllDigits() != tc.digits || p.Luhn() != tc.luhn || p.IIN() != tc.iin || p.Last4() != tc.last4 {
			t.Errorf("%q: digits %v luhn %v iin %q last4 %q", tc.in, p.AllDigits(), p.Luhn(), p.IIN(), p.Last4())
		}
	}
}

func TestFingerprintIsKeyed(t *testing.T) {
	p := model.NewPAN(pan)
	a, b := p.Fingerprint([]byte("k1")), p.Fingerprint([]byte("k2"))
	if a == b || len(a) != 64 || a != model.NewPAN("4111 1111 1111 1111").Fingerprint([]byte("k1")) {
		t.Fatalf("fingerprints %s %s", a, b)
	}
	if strings.Contains(a, pan) {
		t.Fatal("fingerprint contains the PAN")
	}
	// Fingerprints already stored must keep matching: HMAC-SHA256 of the
	// digits, computed independently (Python's hmac module).
	if want := "63935b550453c14fbf2fdc9c19346beb3992888d0143e73e7dae1141d47c990b"; a != want {
		t.Fatalf("fingerprint %s, want %s", a, want)
	}
}
