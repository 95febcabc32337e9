package model

import (
	"fmt"
	"time"
)

// Origin says where a record came from, so that every reject and every
// error can name the file and line (CSV) or table and key (Postgres).
type Origin struct {
	File string // file name, or source table for the Postgres source
	Line int    // 1-based physical line where the record starts; 0 for Postgres
	Key  string // source key for the Postgres source
}

func (o Origin) String() string {
	if o.Line > 0 {
		return fmt.Sprintf("%s:%d", o.File, o.Line)
	}
	if o.Key != "" {
		return o.File + "[" + o.Key + "]"
	}
	return o.File
}

// Date is a calendar date with no time zone (date of birth and the like).
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

func (d Date) IsZero() bool { return d.Year == 0 }

// String is ISO 8601, YYYY-MM-DD, or "" for the zero date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// Address is a postal address. Country is ISO 3166-1 alpha-2.
type Address struct {
	Line1      string
	Line2      string
	City       string
	State      string
	PostalCode string
	Country    string
}

// Customer is one bank customer with the accounts and cards that belong to
// them. It carries the union of what the five partners need.
type Customer struct {
	Origin Origin

	ID               string // the bank's customer id; the entity key everywhere
	ParentID         string // parent customer (e.g. the primary of a household)
	OrganizationID   string // the bank's organisation / program id
	OrganizationName string

	FirstName  string
	MiddleName string
	LastName   string
	Email      string
	Phone      string // E.164 after normalisation, e.g. +15125550100
	DOB        Date
	Address    Address

	Status   string    // ACTIVE, INACTIVE, PROSPECT, ... (Synctera vocabulary)
	Created  time.Time // when the customer was created at the bank
	MemberID string    // the customer's user id at a card-on-file merchant (ClubReady NewOwnerId)

	EnrollmentStart    time.Time
	EnrollmentEnd      time.Time // zero when open-ended
	EnrollmentOptIn    string    // e.g. ACTIVE
	AlertOptIn         []string  // e.g. [ALL]
	TargetingIndicator string    // e.g. TARGET

	Accounts []Account

	// Fingerprint is the keyed HMAC of the customer's raw source rows, set
	// by a source that supports the nightly fast path when the customer
	// had no rejects; nil otherwise. The engine records it once every
	// partner has the customer's content.
	Fingerprint []byte
}

// Account is a bank account; cards hang off it.
type Account struct {
	ID                string
	Type              string // DDA, CREDIT, ...
	Status            string // OPEN, CLOSED
	PortfolioID       string
	OpenDate          time.Time
	CloseDate         time.Time // zero while open
	CustomerIDs       []string  // every holder; the first is the primary
	PrimaryCustomerID string
	Cards             []Card
}

// Card is a payment card. PAN and CVV are typed so they cannot leak through
// formatting; IIN, Last4 and Fingerprint are the only card data that may be
// stored.
type Card struct {
	Origin     Origin
	ID         string
	CustomerID string
	AccountID  string

	PAN      PAN
	CVV      CVV // optional; never stored in any form
	ExpMonth int // 1..12
	ExpYear  int // four digits

	Type       string // credit or debit
	Brand      string // american express, discover, maestro, mastercard, uatp, visa, unionpay
	NameOnCard string
	BillingZip string
	Status     string // OPEN, CLOSED
	NetworkID  int    // card network identifier (data feed)
	OpenDate   time.Time
	CloseDate  time.Time
	IsDefault  bool
	Label      string

	IIN         string
	Last4       string
	Fingerprint string
}

// Cards returns every card of the customer across accounts.
func (c *Customer) Cards() []*Card {
	var out []*Card
	for i := range c.Accounts {
		for j := range c.Accounts[i].Cards {
			out = append(out, &c.Accounts[i].Cards[j])
		}
	}
	return out
}

// FullName joins first, middle and last name.
func (c *Customer) FullName() string {
	n := c.FirstName
	if c.MiddleName != "" {
		n += " " + c.MiddleName
	}
	if c.LastName != "" {
		n += " " + c.LastName
	}
	return n
}
