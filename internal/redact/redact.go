// Package redact masks card data in JSON documents that leave the process
// for humans: dry-run request bodies and reports. It is a second line of
// defence; the first is that PAN and CVV types never print themselves.
package redact

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
)

// JSON returns doc with every string that looks like a PAN (12-19 digits,
// spaces or dashes allowed) masked to IIN + last four, and every value
// under a security-code key replaced.
func JSON(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	v = walk(v, "")
	return json.MarshalIndent(v, "", "  ")
}

var cvvKeys = []string{"cvv", "cvc", "cardcode", "securitycode", "card_code", "cvv2"}

func walk(v any, key string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = walk(x, k)
		}
		return t
	case []any:
		for i, x := range t {
			t[i] = walk(x, key)
		}
		return t
	case string:
		lk := strings.ToLower(key)
		for _, c := range cvvKeys {
			if lk == c {
				return "***"
			}
		}
		return MaskPANs(t)
	case json.Number:
		if s := t.String(); looksLikePAN(s) {
			return MaskPANs(s)
		}
	}
	return v
}

// MaskPANs masks a value that is entirely a card number.
func MaskPANs(s string) string {
	if !looksLikePAN(s) {
		return s
	}
	d := strings.NewReplacer(" ", "", "-", "").Replace(s)
	return d[:6] + strings.Repeat("*", len(d)-10) + d[len(d)-4:]
}

func looksLikePAN(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			n++
		case c == ' ' || c == '-':
		default:
			return false
		}
	}
	return n >= 12 && n <= 19
}

// Text masks every run of 12 or more digits (spaces or dashes allowed
// between them) anywhere in s, so free text such as a partner's error
// message cannot carry a card number: a run that looks like a PAN keeps
// its IIN and last four, a longer one is redacted whole.
func Text(s string) string {
	return digitRun.ReplaceAllStringFunc(s, func(m string) string {
		if masked := MaskPANs(m); masked != m {
			return masked
		}
		digits := 0
		for i := 0; i < len(m); i++ {
			if m[i] >= '0' && m[i] <= '9' {
				digits++
			}
		}
		if digits >= 12 {
			return "[number redacted]"
		}
		return m
	})
}

var digitRun = regexp.MustCompile(`[0-9][0-9 -]{10,}[0-9]`)
