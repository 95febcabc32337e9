package datafeed

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/transform"
)

// MapOptions fills what the source may lack.
type MapOptions struct {
	// DefaultOrganizationID is used when a customer has no organization
	// id (most programs have one).
	DefaultOrganizationID string
	// Codes maps a bank's codes onto the published enum values, per enum
	// field (the Field* names): e.g. Codes[FieldAccountType]["CHK"] = "DDA".
	// Keys are upper case (ParseCodes makes them so).
	Codes map[string]map[string]string
	// NoDefaultCodes turns DefaultCodes off.
	NoDefaultCodes bool
}

// Map turns one customer into one op; the client groups ops into requests.
func Map(c *model.Customer, o MapOptions) ([]partner.Item, []model.Reject) {
	key := partner.CustomerKey(c.ID)
	rej := func(field, msg string) ([]partner.Item, []model.Reject) {
		return nil, []model.Reject{{Origin: c.Origin, EntityKey: key.String(), Field: field, Reason: model.ReasonPartnerMapping, Message: msg, Provider: Name}}
	}
	org := c.OrganizationID
	if org == "" {
		org = o.DefaultOrganizationID
	}
	switch {
	case org == "":
		return rej("organization_id", "the data feed requires organizationId and no default is configured")
	case c.Address.PostalCode == "":
		return rej("postal_code", "the data feed requires postalCode")
	case c.Address.Country == "":
		return rej("country", "the data feed requires country")
	case c.Created.IsZero():
		return rej("created_at", "the data feed requires customerCreationDate")
	}
	enroll, ok := o.enum(FieldEnrollmentOptIn, or(c.EnrollmentOptIn, "ACTIVE"))
	if !ok {
		return rej(FieldEnrollmentOptIn, enumMessage(FieldEnrollmentOptIn, c.EnrollmentOptIn))
	}
	target, ok := o.enum(FieldTargeting, or(c.TargetingIndicator, "TARGET"))
	if !ok {
		return rej(FieldTargeting, enumMessage(FieldTargeting, c.TargetingIndicator))
	}
	alerts := make([]string, 0, max(len(c.AlertOptIn), 1))
	for _, a := range c.AlertOptIn {
		v, ok := o.enum(FieldAlertOptIn, a)
		if !ok {
			return rej(FieldAlertOptIn, enumMessage(FieldAlertOptIn, a))
		}
		if !contains(alerts, v) { // EMAIL|SMS both map to ALL: once
			alerts = append(alerts, v)
		}
	}
	if len(alerts) == 0 {
		alerts = append(alerts, "ALL")
	}
	start := c.EnrollmentStart
	if start.IsZero() {
		start = c.Created
	}
	wc := Customer{
		SourceCustomerID:       c.ID,
		SourceParentCustomerID: c.ParentID,
		OrganizationID:         org,
		PostalCode:             c.Address.PostalCode,
		Country:                c.Address.Country,
		CustomerCreationDate:   ts(c.Created),
		EnrollmentStartDate:    ts(start),
		EnrollmentEndDate:      tsPtr(c.EnrollmentEnd),
		EnrollmentOptInStatus:  enroll,
		AlertOptInStatus:       alerts,
		TargetingIndicator:     target,
		Accounts:               []Account{},
	}
	for _, a := range c.Accounts {
		status, ok := o.enum(FieldAccountStatus, or(a.Status, "OPEN"))
		if !ok {
			return rej(FieldAccountStatus, enumMessage(FieldAccountStatus, a.Status)+" (account "+a.ID+")")
		}
		typ, ok := o.enum(FieldAccountType, or(a.Type, "DDA"))
		if !ok {
			return rej(FieldAccountType, enumMessage(FieldAccountType, a.Type)+" (account "+a.ID+")")
		}
		holders := a.CustomerIDs
		if len(holders) == 0 {
			holders = []string{c.ID}
		}
		wa := Account{
			SourceAccountID:         a.ID,
			SourceCustomerIDs:       holders,
			PrimarySourceCustomerID: or(a.PrimaryCustomerID, holders[0]),
			Status:                  status,
			Type:                    typ,
			SourcePortfolioID:       a.PortfolioID,
			AccountOpenDate:         tsOpt(a.OpenDate),
			AccountCloseDate:        tsPtr(a.CloseDate),
			Cards:                   []Card{},
		}
		for _, cd := range a.Cards {
			wa.Cards = append(wa.Cards, Card{
				SourceAccountID:   a.ID,
				SourceCustomerID:  or(cd.CustomerID, c.ID),
				Last4:             cd.Last4,
				IIN:               cd.IIN,
				CardType:          upper(cd.Type),
				Status:            or(cd.Status, "OPEN"),
				NetworkIdentifier: json.Number(strconv.Itoa(networkID(cd))),
				OpenDate:          tsOpt(cd.OpenDate),
				CloseDate:         tsPtr(cd.CloseDate),
			})
		}
		wc.Accounts = append(wc.Accounts, wa)
	}
	return []partner.Item{{EntityKey: key, CustomerID: c.ID, Origin: c.Origin, Payload: wc}}, nil
}

// networkIDs are the published networkIdentifier codes. The card's brand
// (from its BIN) decides, since exports number networks their own way
// (ours wrote Visa as 1); other brands keep the source's network_id.
var networkIDs = map[string]int{transform.BrandAmex: 3, transform.BrandVisa: 4, transform.BrandMastercard: 5, transform.BrandDiscover: 6}

func networkID(cd model.Card) int {
	if n, ok := networkIDs[cd.Brand]; ok {
		return n
	}
	return cd.NetworkID
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func tsOpt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return ts(t)
}

func tsPtr(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := ts(t)
	return &s
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}
