// Package model holds the canonical customer, account and card records that
// every source produces and every partner mapper consumes.
package model

import (
	"fmt"
	"strings"

	"github.com/northwind-data/etl/internal/mac"
)

// PAN is a primary account number. Its digits live in an unexported field
// so that no formatting verb, JSON or text marshaller, zap field or panic
// message can print them: every printed form is the masked IIN + last four.
// Only a partner mapper that must send the number calls Reveal.
type PAN struct{ digits string }

// NewPAN strips the spaces and dashes that exports commonly carry. It does
// not validate; see Valid and transform.
func NewPAN(raw string) PAN {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == ' ' || c == '-' {
			continue
		}
		b.WriteByte(c)
	}
	return PAN{digits: b.String()}
}

// Reveal returns the full number. Call it only to build a partner request.
func (p PAN) Reveal() string { return p.digits }

// Empty reports whether no number was given.
func (p PAN) Empty() bool { return p.digits == "" }

// Len is the number of characters after stripping separators.
func (p PAN) Len() int { return len(p.digits) }

// AllDigits reports whether the number is only ASCII digits.
func (p PAN) AllDigits() bool {
	if p.digits == "" {
		return false
	}
	for i := 0; i < len(p.digits); i++ {
		if p.digits[i] < '0' || p.digits[i] > '9' {
			return false
		}
	}
	return true
}

// Luhn reports whether the check digit is right.
func (p PAN) Luhn() bool {
	if !p.AllDigits() {
		return false
	}
	sum, double := 0, false
	for i := len(p.digits) - 1; i >= 0; i-- {
		d := int(p.digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// IIN is the first six digits (the issuer identification number), which
// PCI DSS allows to be stored and shown alongside the last four.
func (p PAN) IIN() string {
	if len(p.digits) < 12 || !p.AllDigits() {
		return ""
	}
	return p.digits[:6]
}

// Last4 is the last four digits.
func (p PAN) Last4() string {
	if len(p.digits) < 12 || !p.AllDigits() {
		return ""
	}
	return p.digits[len(p.digits)-4:]
}

// Fingerprint is HMAC-SHA256 of the digits under a secret key, so the same
// card can be matched across runs without storing anything reversible. An
// unkeyed hash would not do: IIN + last four leave few enough unknown
// digits to brute-force.
func (p PAN) Fingerprint(key []byte) string {
	return mac.HexString(key, p.digits)
}

// Masked is the only printable form: IIN, stars, last four.
func (p PAN) Masked() string {
	if p.digits == "" {
		return ""
	}
	if iin, l4 := p.IIN(), p.Last4(); iin != "" {
		return iin + "******" + l4
	}
	return "[invalid PAN redacted]"
}

func (p PAN) String() string   { return p.Masked() }
func (p PAN) GoString() string { return "model.PAN(" + p.Masked() + ")" }

// Format makes every verb, %#v and %x included, print the masked form.
func (p PAN) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.Masked())) }

func (p PAN) MarshalJSON() ([]byte, error) { return []byte(`"` + p.Masked() + `"`), nil }
func (p PAN) MarshalText() ([]byte, error) { return []byte(p.Masked()), nil }

// CVV is a card security code. PCI DSS forbids storing it after
// authorisation in any form, so it has no printable, hashable or
// marshallable form at all.
type CVV struct{ digits string }

func NewCVV(raw string) CVV { return CVV{digits: strings.TrimSpace(raw)} }

func (c CVV) Reveal() string { return c.digits }
func (c CVV) Empty() bool    { return c.digits == "" }

// Valid reports whether the code is 3 or 4 digits.
func (c CVV) Valid() bool {
	if len(c.digits) < 3 || len(c.digits) > 4 {
		return false
	}
	for i := 0; i < len(c.digits); i++ {
		if c.digits[i] < '0' || c.digits[i] > '9' {
			return false
		}
	}
	return true
}

const cvvRedacted = "[CVV redacted]"

func (c CVV) String() string               { return cvvRedacted }
func (c CVV) GoString() string             { return cvvRedacted }
func (c CVV) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(cvvRedacted)) }
func (c CVV) MarshalJSON() ([]byte, error) { return []byte(`"` + cvvRedacted + `"`), nil }
func (c CVV) MarshalText() ([]byte, error) { return []byte(cvvRedacted), nil }
