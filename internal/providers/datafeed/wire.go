// Package datafeed is the customer data feed partner (the Cardlytics
// publisher Data API: POST /v2/data/customers creates, PUT updates, both
// with a session from POST /v2/session/startSession over mutual TLS):
// wire types, mapper, session, client and sandbox.
package datafeed

import "encoding/json"

// Name is the partner's name in the ledger, config and CLI.
const Name = "datafeed"

// MaxPerRequest is the documented ceiling: "Max 50 at a time".
const MaxPerRequest = 50

// Paths of the published API.
const (
	PathCustomers    = "/v2/data/customers"
	PathStartSession = "/v2/session/startSession"
)

// Headers of the published API.
const (
	HeaderSession   = "X-CDLX-Session-Token"
	HeaderRequestID = "X-CDLX-Request-Id"
)

// ScopeInstitution is the session scope of the data APIs.
const ScopeInstitution = "api:institution"

// StartSessionRequest is the body of POST /v2/session/startSession.
type StartSessionRequest struct {
	Scopes []string `json:"scopes"`
}

// StartSessionResponse carries the session JWT.
type StartSessionResponse struct {
	SessionToken string `json:"sessionToken"`
	RequestID    string `json:"requestId,omitempty"`
}

// Request is the body of POST and PUT /v2/data/customers.
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

// Published error types (the "type" of an ErrorBody).
const (
	ErrNotReadable = "HttpMessageNotReadable"     // 400
	ErrValidation  = "ValidationException"        // 400, see ValidationErrors
	ErrSession     = "SessionValidationException" // 401 (500 in one table)
	ErrInternal    = "InternalServerError"        // 500
)

// ErrorBody is either error envelope: the published one
// ({type, title, status, validationErrors, requestId}) or the one our
// first sandbox invented from the seed doc ({error, details}), which a
// partner build answering 500 may still send.
type ErrorBody struct {
	Type   string `json:"type,omitempty"`
	Title  string `json:"title,omitempty"`
	Status int    `json:"status,omitempty"`
	// ValidationErrors are "field-level validation strings"; their form is
	// not published. We assume each names the customer by its path in the
	// request, "customers[3].postalCode: ..." (the path a Java bean
	// validator reports); an object {field, message} is read too.
	ValidationErrors []json.RawMessage `json:"validationErrors,omitempty"`
	RequestID        string            `json:"requestId,omitempty"`

	Error   string `json:"error,omitempty"`
	Details []struct {
		Index   int    `json:"index"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"details,omitempty"`
}
