package extract

import (
	"fmt"
	"github.com/northwind-data/etl/internal/boolean"
	"strconv"
	"strings"
	"time"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/transform"
)

// rowParser collects every problem of one row, so that a person fixing
// the export sees them all at once rather than one per run.
type rowParser struct {
	o       model.Origin
	key     string
	rejects []model.Reject
}

func (p *rowParser) reject(field, reason, format string, args ...any) {
	p.rejects = append(p.rejects, model.Reject{Origin: p.o, EntityKey: p.key, Field: field, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

func (p *rowParser) required(field, v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		p.reject(field, model.ReasonMissingField, "%s is required", field)
	}
	return v
}

const timeFormats = "YYYY-MM-DD or RFC 3339 (2017-01-01T08:00:00Z)"

// timestamp reads RFC 3339 or a bare date (midnight UTC). Everything is
// kept in UTC so that the same instant always hashes the same.
func (p *rowParser) timestamp(field, v string) time.Time {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC()
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t
	}
	p.reject(field, model.ReasonBadDate, "%s %s is not a date: use %s", field, transform.Quote(v), timeFormats)
	return time.Time{}
}

func (p *rowParser) date(field, v string) model.Date {
	v = strings.TrimSpace(v)
	if v == "" {
		return model.Date{}
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		p.reject(field, model.ReasonBadDate, "%s %s is not a date: use YYYY-MM-DD", field, transform.Quote(v))
		return model.Date{}
	}
	return model.Date{Year: t.Year(), Month: t.Month(), Day: t.Day()}
}

// integer reads a base-10 integer in [lo, hi]; want describes the
// expected form for the message.
func (p *rowParser) integer(field, v string, lo, hi int, want string) int {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.reject(field, model.ReasonBadValue, "%s %s is not %s", field, transform.Quote(v), want)
		return 0
	}
	return n
}

func (p *rowParser) boolean(field, v string) bool {
	if strings.TrimSpace(v) == "" {
		return false
	}
	b, err := boolean.Parse(v)
	if err != nil {
		p.reject(field, model.ReasonBadValue, "%s %s is not true/false (1/0, yes/no)", field, transform.Quote(v))
	}
	return b
}

// list splits a |-separated column, dropping empty entries.
func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, "|") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func or(v, def string) string {
	if v = strings.TrimSpace(v); v == "" {
		return def
	}
	return v
}

// ParseCustomer turns a raw row into a canonical customer, applying the
// format's defaults. Problems come back as rejects (all of them) and a
// nil customer. It does not normalise or validate beyond parsing: that
// is transform.Validator's job, for every source alike.
func ParseCustomer(r *CustomerRow, o model.Origin) (*model.Customer, []model.Reject) {
	id := strings.TrimSpace(r.CustomerID)
	p := &rowParser{o: o, key: customerKey(id)}
	c := &model.Customer{
		Origin:           o,
		ID:               p.required("customer_id", r.CustomerID),
		ParentID:         strings.TrimSpace(r.ParentCustomerID),
		OrganizationID:   strings.TrimSpace(r.OrganizationID),
		OrganizationName: strings.TrimSpace(r.OrganizationName),
		FirstName:        p.required("first_name", r.FirstName),
		MiddleName:       strings.TrimSpace(r.MiddleName),
		LastName:         p.required("last_name", r.LastName),
		Email:            p.required("email", r.Email),
		Phone:            strings.TrimSpace(r.Phone),
		DOB:              p.date("date_of_birth", r.DateOfBirth),
		Address: model.Address{
			Line1:      strings.TrimSpace(r.AddressLine1),
			Line2:      strings.TrimSpace(r.AddressLine2),
			City:       strings.TrimSpace(r.City),
			State:      strings.TrimSpace(r.State),
			PostalCode: p.required("postal_code", r.PostalCode),
			Country:    p.required("country", r.Country),
		},
		Status:             or(r.Status, "ACTIVE"),
		MemberID:           strings.TrimSpace(r.MemberID),
		EnrollmentOptIn:    or(r.EnrollmentOptIn, "ACTIVE"),
		AlertOptIn:         list(r.AlertOptIn),
		TargetingIndicator: or(r.TargetingIndicator, "TARGET"),
	}
	if p.required("created_at", r.CreatedAt) != "" {
		c.Created = p.timestamp("created_at", r.CreatedAt)
	}
	c.EnrollmentStart = p.timestamp("enrollment_start", r.EnrollmentStart)
	if c.EnrollmentStart.IsZero() {
		c.EnrollmentStart = c.Created
	}
	c.EnrollmentEnd = p.timestamp("enrollment_end", r.EnrollmentEnd)
	if len(c.AlertOptIn) == 0 {
		c.AlertOptIn = []string{"ALL"}
	}
	if len(p.rejects) > 0 {
		return nil, p.rejects
	}
	return c, nil
}

// ParseCard turns a raw card row into a canonical card and the account
// the row describes (without cards: the caller attaches them, since
// several rows share an account). Problems come back as rejects (all of
// them) and nil results. The card number is only stripped of spaces and
// dashes here; transform.Validator checks it.
func ParseCard(r *CardRow, o model.Origin) (*model.Card, *model.Account, []model.Reject) {
	custID := strings.TrimSpace(r.CustomerID)
	cardID := strings.TrimSpace(r.CardID)
	p := &rowParser{o: o, key: transform.CardKey(custID, cardID)}
	p.required("card_id", r.CardID)
	p.required("customer_id", r.CustomerID)
	accID := p.required("account_id", r.AccountID)
	cd := &model.Card{
		Origin:     o,
		ID:         cardID,
		CustomerID: custID,
		AccountID:  accID,
		CVV:        model.NewCVV(r.CVV),
		Brand:      strings.TrimSpace(r.Brand),
		NameOnCard: strings.TrimSpace(r.NameOnCard),
		BillingZip: strings.TrimSpace(r.BillingZip),
		Status:     or(r.CardStatus, "OPEN"),
		Label:      strings.TrimSpace(r.Label),
	}
	if strings.TrimSpace(r.PAN) == "" {
		p.reject("pan", model.ReasonMissingField, "pan is required")
	} else {
		cd.PAN = model.NewPAN(strings.TrimSpace(r.PAN))
	}
	if p.required("exp_month", r.ExpMonth) != "" {
		cd.ExpMonth = p.integer("exp_month", r.ExpMonth, 1, 12, "a month (1-12)")
	}
	if p.required("exp_year", r.ExpYear) != "" {
		cd.ExpYear = p.integer("exp_year", r.ExpYear, 1000, 9999, "a four-digit year (YYYY)")
	}
	switch t := strings.ToLower(p.required("card_type", r.CardType)); t {
	case "":
	case "credit", "debit":
		cd.Type = t
	default:
		p.reject("card_type", model.ReasonBadValue, "card_type %s must be credit or debit", transform.Quote(r.CardType))
	}
	cd.NetworkID = p.integer("network_id", r.NetworkID, 0, 1<<31-1, "a non-negative integer")
	cd.OpenDate = p.timestamp("open_date", r.OpenDate)
	cd.CloseDate = p.timestamp("close_date", r.CloseDate)
	cd.IsDefault = p.boolean("is_default", r.IsDefault)

	acc := &model.Account{
		ID:          accID,
		Type:        or(r.AccountType, "DDA"),
		Status:      or(r.AccountStatus, "OPEN"),
		PortfolioID: strings.TrimSpace(r.PortfolioID),
		OpenDate:    p.timestamp("account_open_date", r.AccountOpenDate),
		CloseDate:   p.timestamp("account_close_date", r.AccountCloseDate),
		CustomerIDs: list(r.AccountHolders),
	}
	if len(acc.CustomerIDs) == 0 && custID != "" {
		acc.CustomerIDs = []string{custID}
	}
	if len(acc.CustomerIDs) > 0 {
		acc.PrimaryCustomerID = acc.CustomerIDs[0]
	}
	if len(p.rejects) > 0 {
		return nil, nil, p.rejects
	}
	return cd, acc, nil
}
