// Package transform normalises and validates canonical records before any
// partner sees them. What every partner needs is checked here once; what
// only one partner needs is that partner mapper's business.
package transform

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

// Validator holds what validation depends on besides the record: the
// fingerprint key and the clock (card expiry, dates in the future). It
// has no mutable state and is safe for concurrent use.
type Validator struct {
	key []byte
	now time.Time
}

// NewValidator returns a validator that fingerprints cards with
// fingerprintKey (HMAC-SHA256) and judges expiry against now (the zero
// time means the wall clock at this call).
func NewValidator(fingerprintKey []byte, now time.Time) *Validator {
	if now.IsZero() {
		now = time.Now()
	}
	return &Validator{key: append([]byte(nil), fingerprintKey...), now: now.UTC()}
}

// Validate normalises c in place and checks it. A customer-level problem
// rejects the whole customer (ok is false; there is one reject per
// problem and one customer_rejected reject per card). A bad card is
// removed from its account and returned as a reject while the customer
// stays. Accounts left without cards stay: a customer may have none.
func (v *Validator) Validate(c *model.Customer) (ok bool, rejects []model.Reject) {
	c.ID = strings.TrimSpace(c.ID)
	custKey := partner.CustomerKey(c.ID).String()
	bad := func(field, reason, format string, args ...any) {
		rejects = append(rejects, model.Reject{Origin: c.Origin, EntityKey: custKey, Field: field, Reason: reason, Message: fmt.Sprintf(format, args...)})
	}
	if c.ID == "" {
		bad("customer_id", model.ReasonMissingField, "customer_id is required")
	}
	c.ParentID = strings.TrimSpace(c.ParentID)
	c.OrganizationID = strings.TrimSpace(c.OrganizationID)
	c.OrganizationName = strings.TrimSpace(c.OrganizationName)
	c.FirstName = strings.TrimSpace(c.FirstName)
	c.MiddleName = strings.TrimSpace(c.MiddleName)
	c.LastName = strings.TrimSpace(c.LastName)
	c.MemberID = strings.TrimSpace(c.MemberID)
	if c.FirstName == "" {
		bad("first_name", model.ReasonMissingField, "first_name is required")
	}
	if c.LastName == "" {
		bad("last_name", model.ReasonMissingField, "last_name is required")
	}

	c.Email = strings.TrimSpace(c.Email)
	if c.Email == "" {
		bad("email", model.ReasonMissingField, "email is required")
	} else if e, ok := normalizeEmail(c.Email); ok {
		c.Email = e
	} else {
		bad("email", model.ReasonBadEmail, "email %s is not an address like name@example.com", Quote(c.Email))
	}

	a := &c.Address
	a.Line1 = strings.TrimSpace(a.Line1)
	a.Line2 = strings.TrimSpace(a.Line2)
	a.City = strings.TrimSpace(a.City)
	a.PostalCode = strings.TrimSpace(a.PostalCode)
	a.Country = strings.ToUpper(strings.TrimSpace(a.Country))
	a.State = strings.TrimSpace(a.State)
	if len(a.State) == 2 {
		a.State = strings.ToUpper(a.State)
	}
	switch {
	case a.Country == "":
		bad("country", model.ReasonMissingField, "country is required (ISO 3166-1 alpha-2, e.g. US)")
	case !isAlpha2(a.Country):
		bad("country", model.ReasonBadValue, "country %s is not an ISO 3166-1 alpha-2 code such as US", Quote(a.Country))
	}
	if a.PostalCode == "" {
		bad("postal_code", model.ReasonMissingField, "postal_code is required")
	}
	// The country is known by now, so a ten-digit number can be read as
	// North American.
	if p, ok := NormalizePhone(c.Phone, a.Country); ok {
		c.Phone = p
	} else {
		c.Phone = strings.TrimSpace(c.Phone)
	}

	c.Status = upper(c.Status)
	c.EnrollmentOptIn = upper(c.EnrollmentOptIn)
	c.TargetingIndicator = upper(c.TargetingIndicator)
	for i := range c.AlertOptIn {
		c.AlertOptIn[i] = upper(c.AlertOptIn[i])
	}
	if c.Created.IsZero() {
		bad("created_at", model.ReasonMissingField, "created_at is required")
	}
	if !c.DOB.IsZero() {
		dob := time.Date(c.DOB.Year, c.DOB.Month, c.DOB.Day, 0, 0, 0, 0, time.UTC)
		if dob.After(v.now) || c.DOB.Year < 1900 {
			bad("date_of_birth", model.ReasonBadDate, "date_of_birth %s is not a plausible birth date", c.DOB)
		}
	}
	if !c.EnrollmentEnd.IsZero() && !c.EnrollmentStart.IsZero() && c.EnrollmentEnd.Before(c.EnrollmentStart) {
		bad("enrollment_end", model.ReasonBadDate, "enrollment_end %s is before enrollment_start %s",
			c.EnrollmentEnd.Format(time.RFC3339), c.EnrollmentStart.Format(time.RFC3339))
	}

	customerOK := len(rejects) == 0
	seen := map[string]bool{}
	for ai := range c.Accounts {
		acc := &c.Accounts[ai]
		acc.ID = strings.TrimSpace(acc.ID)
		acc.Type = upper(acc.Type)
		acc.Status = upper(acc.Status)
		kept := acc.Cards[:0]
		for ci := range acc.Cards {
			cd := acc.Cards[ci]
			if cd.CustomerID == "" {
				cd.CustomerID = c.ID
			}
			if !customerOK {
				rejects = append(rejects, model.Reject{Origin: cd.Origin, EntityKey: CardKey(c.ID, cd.ID), Field: "customer_id",
					Reason: model.ReasonCustomerReject, Message: fmt.Sprintf("customer %s was rejected (%s)", c.ID, c.Origin)})
				continue
			}
			cr := v.validateCard(c, &cd)
			if len(cr) == 0 && seen[cd.ID] {
				cr = append(cr, model.Reject{Origin: cd.Origin, EntityKey: CardKey(c.ID, cd.ID), Field: "card_id",
					Reason: model.ReasonDuplicateKey, Message: fmt.Sprintf("card_id %s appears more than once for customer %s; the first is kept", cd.ID, c.ID)})
			}
			if len(cr) > 0 {
				rejects = append(rejects, cr...)
				continue
			}
			seen[cd.ID] = true
			kept = append(kept, cd)
		}
		// Drop references to removed cards so their numbers are not kept
		// alive in the backing array.
		clear(acc.Cards[len(kept):])
		acc.Cards = kept
	}
	return customerOK, rejects
}

func (v *Validator) validateCard(c *model.Customer, cd *model.Card) []model.Reject {
	var out []model.Reject
	bad := func(field, reason, format string, args ...any) {
		out = append(out, model.Reject{Origin: cd.Origin, EntityKey: CardKey(c.ID, cd.ID), Field: field, Reason: reason, Message: fmt.Sprintf(format, args...)})
	}
	cd.ID = strings.TrimSpace(cd.ID)
	if cd.ID == "" {
		bad("card_id", model.ReasonMissingField, "card_id is required")
	} else if CardIDIsPAN(cd.ID) {
		bad("card_id", model.ReasonBadValue, "card_id is a card number (Luhn-valid, 12 to 19 digits): the export must give each card an id that is not its PAN (the value is not shown)")
	}
	p := cd.PAN
	switch {
	case p.Empty():
		bad("pan", model.ReasonMissingField, "pan is required")
	case !p.AllDigits():
		bad("pan", model.ReasonBadPAN, "pan has characters other than digits, spaces and dashes")
	case p.Len() < 13 || p.Len() > 19:
		// The length is safe to print; the digits are not, and a short
		// number's IIN and last four would reveal most of it.
		bad("pan", model.ReasonBadPAN, "pan has %d digits; a card number has 13 to 19", p.Len())
	case !p.Luhn():
		bad("pan", model.ReasonLuhn, "pan %s fails the Luhn check (mistyped digit?)", p.Masked())
	}
	switch {
	case cd.ExpMonth < 1 || cd.ExpMonth > 12:
		bad("exp_month", model.ReasonBadValue, "exp_month %d is not a month (1-12)", cd.ExpMonth)
	case cd.ExpYear < 1000 || cd.ExpYear > 9999:
		bad("exp_year", model.ReasonBadValue, "exp_year %d is not a four-digit year", cd.ExpYear)
	case cd.ExpYear < v.now.Year() || (cd.ExpYear == v.now.Year() && time.Month(cd.ExpMonth) < v.now.Month()):
		bad("exp_year", model.ReasonExpired, "card expired %02d/%04d", cd.ExpMonth, cd.ExpYear)
	}
	if !cd.CVV.Empty() && !cd.CVV.Valid() {
		bad("cvv", model.ReasonBadCVV, "cvv must be 3 or 4 digits")
	}
	cd.Type = strings.ToLower(strings.TrimSpace(cd.Type))
	if cd.Type != "credit" && cd.Type != "debit" {
		bad("card_type", model.ReasonBadValue, "card_type %s must be credit or debit", Quote(cd.Type))
	}
	if strings.TrimSpace(cd.Brand) == "" {
		cd.Brand = BrandFromPAN(p)
	} else if b, ok := normalizeBrand(cd.Brand); ok {
		cd.Brand = b
	} else {
		bad("brand", model.ReasonBadValue, "brand %s is not one of visa, mastercard, american express, discover, maestro, unionpay, uatp (leave it empty to derive it from the card number)", Quote(cd.Brand))
	}
	cd.Status = upper(cd.Status)
	cd.NameOnCard = strings.TrimSpace(cd.NameOnCard)
	cd.BillingZip = strings.TrimSpace(cd.BillingZip)
	cd.Label = strings.TrimSpace(cd.Label)
	if len(out) == 0 {
		cd.IIN, cd.Last4, cd.Fingerprint = p.IIN(), p.Last4(), p.Fingerprint(v.key)
	}
	return out
}

// CardKey is the ledger entity key of a card. A card id that is itself a
// card number is masked (SafeCardID): the key goes to the ledger, reject
// files and logs.
func CardKey(customerID, cardID string) string {
	return partner.CardKey(customerID, SafeCardID(cardID)).String()
}

// maskedCardID stands in for a card id that is a card number.
const maskedCardID = "(card-number)"

// SafeCardID is cardID, or a mask when it is itself a card number, for
// anything printed or stored about a card that may be rejected.
func SafeCardID(cardID string) string {
	if CardIDIsPAN(cardID) {
		return maskedCardID
	}
	return cardID
}

// CardIDIsPAN reports whether a card id is itself a card number: 12 to 19
// digits (spaces and dashes aside, as in a PAN) that pass the Luhn check.
// An export that put the PAN in card_id would otherwise carry it into
// entity keys, the ledger and reject files. It does not allocate: CardKey
// calls it for every card.
func CardIDIsPAN(id string) bool {
	n, sum := 0, 0
	for i := len(id) - 1; i >= 0; i-- {
		c := id[i]
		switch {
		case c == ' ' || c == '-':
			continue
		case c < '0' || c > '9':
			return false
		}
		d := int(c - '0')
		if n%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		n++
	}
	return n >= 12 && n <= 19 && sum%10 == 0
}

// normalizeEmail accepts a bare address local@domain.tld and lower-cases
// the domain (which is case-insensitive; the local part is not).
func normalizeEmail(s string) (string, bool) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", false
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	dot := strings.LastIndexByte(domain, '.')
	if local == "" || dot <= 0 || dot == len(domain)-1 || strings.Contains(domain, "..") || strings.ContainsAny(domain, "[]") {
		return "", false
	}
	return local + "@" + strings.ToLower(domain), true
}

func isAlpha2(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

func upper(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// Quote prints a source value for a reject message: quoted, cut to a
// readable length, and with anything that could be a card number (twelve
// or more digits, spaces and dashes allowed between them) masked, since a
// PAN pasted into the wrong column must not leak through the message.
func Quote(s string) string {
	const max = 64
	s = MaskDigitRuns(s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// MaskDigitRuns replaces every digit of a run of twelve or more digits
// (spaces and dashes may separate them) with '*'.
func MaskDigitRuns(s string) string {
	var b []byte
	i := 0
	for i < len(s) {
		if s[i] < '0' || s[i] > '9' {
			i++
			continue
		}
		j, n := i, 0
		for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == ' ' || s[j] == '-') {
			if s[j] >= '0' && s[j] <= '9' {
				n++
			}
			j++
		}
		if n >= 12 {
			if b == nil {
				b = []byte(s)
			}
			for k := i; k < j; k++ {
				if b[k] >= '0' && b[k] <= '9' {
					b[k] = '*'
				}
			}
		}
		i = j
	}
	if b == nil {
		return s
	}
	return string(b)
}

// CardProblem re-checks what a partner that carries the card number needs
// (its digits, Luhn, a real expiry, a well-formed code), for mappers that
// must not trust their input blindly. It returns the field, reason and a
// message without card data, or ok.
func CardProblem(cd *model.Card) (field, reason, message string, ok bool) {
	switch {
	case !cd.PAN.AllDigits() || cd.PAN.Len() < 12 || cd.PAN.Len() > 19:
		return "pan", model.ReasonBadPAN, "card number must be 12 to 19 digits", false
	case !cd.PAN.Luhn():
		return "pan", model.ReasonLuhn, "card number fails the Luhn check", false
	case cd.ExpMonth < 1 || cd.ExpMonth > 12:
		return "exp_month", model.ReasonBadDate, "expiry month must be 1 to 12", false
	case cd.ExpYear < 1000 || cd.ExpYear > 9999:
		return "exp_year", model.ReasonBadDate, "expiry year must have four digits", false
	case !cd.CVV.Empty() && !cd.CVV.Valid():
		return "cvv", model.ReasonBadCVV, "card code must be 3 or 4 digits", false
	}
	return "", "", "", true
}
