package model

import "fmt"

// Reason codes for rejects. They are stable strings: operators filter on
// them and reports count by them.
const (
	ReasonMissingField    = "missing_field"
	ReasonBadEmail        = "bad_email"
	ReasonBadPhone        = "bad_phone"
	ReasonBadDate         = "bad_date"
	ReasonBadValue        = "bad_value"
	ReasonBadPAN          = "bad_pan"
	ReasonLuhn            = "luhn_failed"
	ReasonExpired         = "card_expired"
	ReasonBadCVV          = "bad_cvv"
	ReasonUnknownCustomer = "unknown_customer"
	ReasonDuplicateKey    = "duplicate_key"
	ReasonCustomerReject  = "customer_rejected"
	ReasonBadRow          = "bad_row"
	ReasonEncoding        = "bad_encoding"
	ReasonFieldTooLong    = "field_too_long"
	ReasonPartnerMapping  = "partner_mapping"
)

// Reject is a record that will not be sent, with enough to find and fix it.
// Message must never contain a PAN or CVV: build it from field names and
// masked values only.
type Reject struct {
	Origin    Origin
	EntityKey string
	Field     string
	Reason    string
	Message   string
	Provider  string // empty when the record is rejected for every partner
}

func (r Reject) Error() string {
	return fmt.Sprintf("%s: %s %s: %s (%s)", r.Origin, r.EntityKey, r.Field, r.Message, r.Reason)
}
