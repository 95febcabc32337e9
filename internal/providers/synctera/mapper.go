package synctera

import (
	"encoding/json"
	"regexp"
	"strings"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/transform"
)

var (
	reE164    = regexp.MustCompile(`^\+[1-9]\d{1,14}$`)
	reCountry = regexp.MustCompile(`^[A-Z]{2}$`)
	reDob     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// CustomerKey is the ledger's entity key of a customer.

// problem is one reason a customer cannot go to Synctera, by canonical
// field name.
type problem struct{ field, reason, msg string }

// mapCustomer turns a validated customer into one create-or-update op.
// Pure and deterministic: the same customer always gives the same body.
func mapCustomer(c *model.Customer) ([]partner.Item, []model.Reject) {
	key := partner.CustomerKey(c.ID)
	var probs []problem
	bad := func(field, reason, msg string) { probs = append(probs, problem{field, reason, msg}) }

	if c.ID == "" {
		bad("customer_id", model.ReasonMissingField, "customer_id is required")
	}
	status := c.Status
	switch {
	case status == "":
		bad("status", model.ReasonMissingField, "status is required by synctera (one of "+strings.Join(Statuses, ", ")+")")
	case !ValidStatus(status):
		// Quote masks digit runs: a misplaced column could put a card
		// number here.
		bad("status", model.ReasonBadValue, "status "+transform.Quote(status)+" is not one of synctera's "+strings.Join(Statuses, ", "))
	}
	// The schema requires only status. Synctera's guides: an ACTIVE
	// customer needs first_name, last_name and dob, a PROSPECT nothing
	// more. So an ACTIVE customer without the three goes as a PROSPECT
	// instead of being refused; what no guide covers (the other statuses)
	// takes the stricter reading and needs the three as ACTIVE does.
	identity := c.FirstName != "" && c.LastName != "" && c.DOB.String() != ""
	if status == StatusActive && !identity {
		status = StatusProspect
	}
	full := status != StatusProspect
	need := func(v, field, doc string) {
		if full && v == "" {
			bad(field, model.ReasonMissingField, field+" is required by synctera for status "+statusName(status)+" ("+doc+")")
		}
	}
	need(c.FirstName, "first_name", "first_name")
	need(c.LastName, "last_name", "last_name")
	need(c.DOB.String(), "date_of_birth", "dob")

	if c.Phone != "" && !reE164.MatchString(c.Phone) {
		// Normalisation leaves a number it could not read as it was; the
		// value is not repeated here because it may be anything.
		bad("phone", model.ReasonBadPhone, "phone is not E.164 (+ country code and up to 15 digits), which synctera requires for phone_number")
	}
	if c.DOB.String() != "" && !reDob.MatchString(c.DOB.String()) {
		bad("date_of_birth", model.ReasonBadDate, "date_of_birth "+c.DOB.String()+" cannot be written as YYYY-MM-DD for synctera's dob")
	}

	a := c.Address
	var legal *Address
	switch {
	case a.Line1 == "":
		// No street address: the address is left out (an address needs
		// address_line_1, and no status requires one).
	case !reCountry.MatchString(a.Country):
		bad("country", model.ReasonBadValue, "country must be an ISO 3166-1 alpha-2 code such as US for synctera's legal_address.country_code")
	default:
		legal = &Address{AddressLine1: a.Line1, AddressLine2: a.Line2, City: a.City, State: a.State,
			PostalCode: a.PostalCode, CountryCode: a.Country}
	}

	if len(probs) > 0 {
		// One reject per customer, so that reports count customers; the
		// message lists every problem so that one fix is enough.
		msgs := make([]string, len(probs))
		for i, p := range probs {
			msgs[i] = p.msg
		}
		return nil, []model.Reject{{Origin: c.Origin, EntityKey: key.String(), Field: probs[0].field, Reason: probs[0].reason,
			Message: strings.Join(msgs, "; "), Provider: Name}}
	}
	body := CustomerInBody{
		Status:       status,
		FirstName:    c.FirstName,
		MiddleName:   c.MiddleName,
		LastName:     c.LastName,
		Dob:          c.DOB.String(),
		Email:        c.Email,
		PhoneNumber:  c.Phone,
		LegalAddress: legal,
		// shipping_address is left out: Synctera copies legal_address on
		// create and update, and the source has no separate one.
		Metadata: entityMetadata(key.String()),
	}
	return []partner.Item{{EntityKey: key, CustomerID: c.ID, Origin: c.Origin, Payload: body}}, nil
}

// entityMetadata is the metadata every customer carries: our entity key,
// which identifies the bank's record without being PII.
func entityMetadata(entityKey string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{MetadataKey: entityKey})
	return b
}

// DeactivateBody is what a deactivation patches.
func DeactivateBody() PatchCustomer { return PatchCustomer{Status: StatusInactive} }

func statusName(s string) string {
	if s == "" || !ValidStatus(s) {
		return "other than PROSPECT"
	}
	return s
}
