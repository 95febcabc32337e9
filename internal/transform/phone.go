package transform

import (
	"regexp"
	"strings"
)

var e164 = regexp.MustCompile(`^\+[1-9]\d{1,14}$`)

// nanp are the countries of the North American Numbering Plan whose
// numbers are written as ten national digits behind country code 1. An
// empty country counts too: the source of these exports is a US bank.
// Other NANP members (the Caribbean) are left out on purpose: a bare ten
// digit number there is as likely to be written without the area code.
var nanp = map[string]bool{"": true, "US": true, "CA": true, "PR": true, "GU": true, "VI": true, "AS": true, "MP": true}

// NormalizePhone turns a phone number as people write it into E.164
// where that is unambiguous: a number that already has +country, an
// international 00 prefix, or a ten-digit (or 1 + ten-digit) number in a
// NANP country. Otherwise ok is false and the trimmed raw value comes
// back, so that each partner can decide whether it can take it.
// Letters (extensions, "ext", vanity numbers) are never guessed at.
func NormalizePhone(raw, country string) (string, bool) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", false
	}
	country = strings.ToUpper(strings.TrimSpace(country))
	plus := false
	var digits strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r == '+' && i == 0:
			plus = true
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '/':
		default:
			return s, false
		}
	}
	d := digits.String()
	switch {
	case plus:
	case strings.HasPrefix(d, "00"):
		d, plus = d[2:], true
	case len(d) == 10 && nanp[country]:
		d, plus = "1"+d, true
	case len(d) == 11 && d[0] == '1' && nanp[country]:
		plus = true
	}
	if plus && e164.MatchString("+"+d) {
		return "+" + d, true
	}
	return s, false
}
