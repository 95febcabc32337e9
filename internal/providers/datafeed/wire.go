// Package datafeed is the customer data feed partner (the Cardlytics
// publisher Data API, POST /v2/data/customers): wire types, mapper,
// client and sandbox.
package datafeed

import "encoding/json"

// Name is the partner's name in the ledger, config and CLI.
const Name = "datafeed"

// MaxPerRequest is the documented ceiling: "Max 50 at a time".
const MaxPerRequest = 50

// Request is the body of POST /v2/data/customers.
type Request struct {
	Customers []Customer `json:"customers"`
}

// Customer is the documented customer object.
type Customer struct {
	SourceCustomerID       string    `json:"sourceCustomerId"`
	SourceParentCustomerID string    `json:"sourceParentCustomerId,omitempty"`
	OrganizationID         string    `json:"organizationId"`
	PostalCode             string    `json:"postalCode"`
	Country                string    `json:"country"`
	CustomerCreationDate   string    `json:"customerCreationDate"`
	EnrollmentStartDate    string    `json:"enrollmentStartDate"`
	EnrollmentEndDate      *string   `json:"enrollmentEndDate"`
	EnrollmentOptInStatus  string    `json:"enrollmentOptInStatus"`
	AlertOptInStatus       []string  `json:"alertOptInStatus"`
	TargetingIndicator     string    `json:"targetingIndicator"`
	Accounts               []Account `json:"accounts"`
}

// Account is the documented account object.
type Account struct {
	SourceAccountID         string   `json:"sourceAccountId"`
	SourceCustomerIDs       []string `json:"sourceCustomerIds"`
	PrimarySourceCustomerID string   `json:"primarySourceCustomerId"`
	Status                  string   `json:"status"`
	Type                    string   `json:"type"`
	SourcePortfolioID       string   `json:"sourcePortfolioId,omitempty"`
	AccountOpenDate         string   `json:"accountOpenDate,omitempty"`
	AccountCloseDate        *string  `json:"accountCloseDate"`
	Cards                   []Card   `json:"cards"`
}

// Card carries no card number: the feed takes IIN and last four only.
type Card struct {
	SourceAccountID   string      `json:"sourceAccountId"`
	SourceCustomerID  string      `json:"sourceCustomerId"`
	Last4             string      `json:"last4"`
	IIN               string      `json:"iin"`
	CardType          string      `json:"cardType"`
	Status            string      `json:"status"`
	NetworkIdentifier json.Number `json:"networkIdentifier"`
	OpenDate          string      `json:"openDate,omitempty"`
	CloseDate         *string     `json:"closeDate"`
}

// Response is the documented answer.
type Response struct {
	RequestID string `json:"requestId"`
}

// ErrorBody is what the sandbox (and, we assume, the partner) answers on a
// failure; the doc gives only the status (500).
type ErrorBody struct {
	Error   string `json:"error"`
	Details []struct {
		Index   int    `json:"index"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"details,omitempty"`
}
