package extract

import (
	"fmt"
	"reflect"
)

// CustomerRow is one raw row of customers.csv (or of the Postgres
// customers query), every column a string exactly as the source had it.
// ParseCustomer turns it into a canonical customer.
type CustomerRow struct {
	CustomerID         string `csv:"customer_id"`
	ParentCustomerID   string `csv:"parent_customer_id"`
	OrganizationID     string `csv:"organization_id"`
	OrganizationName   string `csv:"organization_name"`
	FirstName          string `csv:"first_name"`
	MiddleName         string `csv:"middle_name"`
	LastName           string `csv:"last_name"`
	Email              string `csv:"email"`
	Phone              string `csv:"phone"`
	DateOfBirth        string `csv:"date_of_birth"`
	AddressLine1       string `csv:"address_line1"`
	AddressLine2       string `csv:"address_line2"`
	City               string `csv:"city"`
	State              string `csv:"state"`
	PostalCode         string `csv:"postal_code"`
	Country            string `csv:"country"`
	Status             string `csv:"status"`
	CreatedAt          string `csv:"created_at"`
	EnrollmentStart    string `csv:"enrollment_start"`
	EnrollmentEnd      string `csv:"enrollment_end"`
	EnrollmentOptIn    string `csv:"enrollment_opt_in"`
	AlertOptIn         string `csv:"alert_opt_in"`
	TargetingIndicator string `csv:"targeting_indicator"`
	MemberID           string `csv:"member_id"`
}

// CardRow is one raw row of cards.csv: a card and, denormalised, the
// account it belongs to. PAN and CVV are plain strings here, so CardRow
// formats itself without them (see Format); never log its fields.
type CardRow struct {
	CardID           string `csv:"card_id"`
	CustomerID       string `csv:"customer_id"`
	AccountID        string `csv:"account_id"`
	AccountType      string `csv:"account_type"`
	AccountStatus    string `csv:"account_status"`
	PortfolioID      string `csv:"portfolio_id"`
	AccountOpenDate  string `csv:"account_open_date"`
	AccountCloseDate string `csv:"account_close_date"`
	AccountHolders   string `csv:"account_holders"`
	PAN              string `csv:"pan"`
	CVV              string `csv:"cvv"`
	ExpMonth         string `csv:"exp_month"`
	ExpYear          string `csv:"exp_year"`
	CardType         string `csv:"card_type"`
	Brand            string `csv:"brand"`
	NameOnCard       string `csv:"name_on_card"`
	BillingZip       string `csv:"billing_zip"`
	CardStatus       string `csv:"card_status"`
	NetworkID        string `csv:"network_id"`
	OpenDate         string `csv:"open_date"`
	CloseDate        string `csv:"close_date"`
	IsDefault        string `csv:"is_default"`
	Label            string `csv:"label"`
}

// Format keeps the card number and security code out of every printed
// form of a row (%v, %+v, %#v, %s, zap's reflection): a raw row in a
// debug line or a panic must not leak them.
func (r CardRow) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "extract.CardRow{card_id:%q customer_id:%q account_id:%q pan:[redacted] cvv:[redacted]}", r.CardID, r.CustomerID, r.AccountID)
}

// String is the same redacted form as Format.
func (r CardRow) String() string { return fmt.Sprint(r) }

// column describes one column of a file format.
type column struct {
	name     string
	required bool // the header must have it and a row must fill it
}

type fileSpec struct {
	name    string // base file name
	columns []column
	key     string // the customer id column
}

func (s *fileSpec) known(name string) bool {
	for _, c := range s.columns {
		if c.name == name {
			return true
		}
	}
	return false
}

// Both specs are built from the struct tags so that a column can never
// be accepted in the header and then silently dropped by the decoder.
var (
	customerSpec = specFor("customers.csv", CustomerRow{}, "customer_id",
		"customer_id", "first_name", "last_name", "email", "postal_code", "country", "created_at")
	cardSpec = specFor("cards.csv", CardRow{}, "customer_id",
		"card_id", "customer_id", "account_id", "pan", "exp_month", "exp_year", "card_type")
)

func specFor(name string, row any, key string, required ...string) *fileSpec {
	req := map[string]bool{}
	for _, r := range required {
		req[r] = true
	}
	s := &fileSpec{name: name, key: key}
	t := reflect.TypeOf(row)
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("csv")
		s.columns = append(s.columns, column{name: tag, required: req[tag]})
		delete(req, tag)
	}
	if len(req) != 0 {
		panic(fmt.Sprintf("extract: %s: required columns %v have no field", name, req))
	}
	return s
}
