package redact_test

import (
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/redact"
)

func TestTextMasksCardNumbersAnywhere(t *testing.T) {
	tests := []struct{ in, want string }{
		{"card 4111111111111111 declined", "card 411111******1111 declined"},
		{"pan 4111 1111 1111 1111.", "pan 411111******1111."},
		{"4111-1111-1111-1111", "411111******1111"},
		{"amex 378282246310005 and visa 4000056655665556", "amex 378282*****0005 and visa 400005******5556"},
		{"order 12345 at 2026-11-23 for +15125550100", "order 12345 at 2026-11-23 for +15125550100"},
		{"request 380052b4-3a64-4952-b640-ba696eb9f44b", "request 380052b4-3a64-4952-b640-ba696eb9f44b"},
	}
	for _, tc := range tests {
		if got := redact.Text(tc.in); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestJSONMasksPANsAndSecurityCodes(t *testing.T) {
	out, err := redact.JSON([]byte(`{"cardNumber":"4111111111111111","cardCode":"123","n":[{"cvv":"9876"}],"zip":"78753","phone":"15125550100"}`))
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, bad := range []string{"4111111111111111", `"123"`, "9876"} {
		if strings.Contains(s, bad) {
			t.Errorf("%s left in %s", bad, s)
		}
	}
	if !strings.Contains(s, "411111******1111") || !strings.Contains(s, "78753") || !strings.Contains(s, "15125550100") {
		t.Errorf("over- or under-masked: %s", s)
	}
}

func TestTextRedactsLongerDigitRunsWhole(t *testing.T) {
	if got := redact.Text("ref 41111111111111111111 refused"); got != "ref [number redacted] refused" {
		t.Errorf("got %q", got)
	}
}
