// Package synctera is the Synctera partner (Customers API, /v0/customers):
// one customer per source customer, created with an Idempotency-Key,
// updated with PUT and switched off with PATCH {status: INACTIVE}. Wire
// types, mapper, client and sandbox.
package synctera

import (
	"encoding/json"
	"time"
)

// Name is the partner's name in the ledger, config and CLI.
const Name = "synctera"

// BasePath is the version prefix of every documented path: the doc's URIs
// are relative to https://api-sandbox.synctera.com/v0. A base URL ends with
// it; the sandbox serves the API under it, next to /_sandbox/state.
const BasePath = "/v0"

// CustomersPath is the documented collection, relative to the base URL.
const CustomersPath = "/customers"

// IdempotencyHeader is the header the doc calls idempotency_key (POST and
// PATCH only); ReplayedHeader marks an answer replayed for a repeated key,
// as Stripe and the IETF Idempotency-Key draft do.
const (
	IdempotencyHeader = "Idempotency-Key"
	ReplayedHeader    = "Idempotent-Replayed"
)

// Status values of a customer, as FACTS.md lists them.
const (
	StatusActive   = "ACTIVE"
	StatusDeceased = "DECEASED"
	StatusDenied   = "DENIED"
	StatusDormant  = "DORMANT"
	StatusEscheat  = "ESCHEAT"
	StatusFrozen   = "FROZEN"
	StatusInactive = "INACTIVE"
	StatusProspect = "PROSPECT"
	StatusSanction = "SANCTION"
)

// Statuses is the status enum in the documented order.
var Statuses = []string{StatusActive, StatusDeceased, StatusDenied, StatusDormant, StatusEscheat,
	StatusFrozen, StatusInactive, StatusProspect, StatusSanction}

// ValidStatus reports whether s is one of Statuses.
func ValidStatus(s string) bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// Address is a postal address (legal_address, shipping_address).
// address_line_1 and country_code are required inside an address.
type Address struct {
	AddressLine1 string `json:"address_line_1"`
	AddressLine2 string `json:"address_line_2,omitempty"`
	City         string `json:"city,omitempty"`
	State        string `json:"state,omitempty"`
	PostalCode   string `json:"postal_code,omitempty"`
	CountryCode  string `json:"country_code"`
}

// CustomerInBody is the body of POST /customers and PUT /customers/{id}.
// The schema requires only status; Synctera's guides add first_name,
// last_name and dob for ACTIVE (docs/partners/synctera.md). There is
// deliberately no ssn: the canonical model has none and we never send one.
type CustomerInBody struct {
	Status          string   `json:"status"`
	FirstName       string   `json:"first_name,omitempty"`
	MiddleName      string   `json:"middle_name,omitempty"`
	LastName        string   `json:"last_name,omitempty"`
	Dob             string   `json:"dob,omitempty"` // YYYY-MM-DD
	Email           string   `json:"email,omitempty"`
	PhoneNumber     string   `json:"phone_number,omitempty"` // E.164
	LegalAddress    *Address `json:"legal_address,omitempty"`
	ShippingAddress *Address `json:"shipping_address,omitempty"`
	// Metadata is free-form JSON (no PII). We send {"etl_entity_key":
	// "customer/<id>"}: the list cannot filter on it, but it tells our
	// customer apart from another with the same name when a lookup must
	// settle a create whose answer was lost.
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// PatchCustomer is the body of PATCH /customers/{id}: only the fields
// present change. A deactivation sends status alone.
type PatchCustomer struct {
	Status          string          `json:"status,omitempty"`
	FirstName       string          `json:"first_name,omitempty"`
	MiddleName      string          `json:"middle_name,omitempty"`
	LastName        string          `json:"last_name,omitempty"`
	Dob             string          `json:"dob,omitempty"`
	Email           string          `json:"email,omitempty"`
	PhoneNumber     string          `json:"phone_number,omitempty"`
	LegalAddress    *Address        `json:"legal_address,omitempty"`
	ShippingAddress *Address        `json:"shipping_address,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
}

// Customer is a customer as the API answers it: the body plus the
// read-only id and timestamps. creation_time is named by the doc's sort_by
// (creation_time:asc); last_updated_time is our assumption.
type Customer struct {
	ID string `json:"id"`
	CustomerInBody
	CreationTime    time.Time `json:"creation_time"`
	LastUpdatedTime time.Time `json:"last_updated_time"`
}

// CustomerList is one page of GET /customers. NextPageToken is absent on
// the last page.
type CustomerList struct {
	Customers     []Customer `json:"customers"`
	NextPageToken string     `json:"next_page_token,omitempty"`
}

// ListParams are the documented query parameters of GET /customers. Zero
// values are left out of the query; array parameters (id, sort_by) go
// comma-separated in one parameter, as the spec's explode: false says.
type ListParams struct {
	PageToken   string
	Limit       int // default 100 at the partner; more acts as 100
	Status      string
	FirstName   string
	LastName    string
	Email       string
	PhoneNumber string
	SSNLast4    string
	IDs         []string
	HasAccounts *bool
	SortBy      []string // e.g. creation_time:asc
}

// Problem is an application/problem+json error (RFC 7807): type (a URI
// such as https://dev.synctera.com/errors/bad-request-body, matched on its
// last segment), title, status, detail, and the optional preview code
// (e.g. BAD_REQUEST_BODY). InvalidFields is our assumed extension on 400s,
// naming each field that failed validation.
type Problem struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail,omitempty"`
	Code          string         `json:"code,omitempty"`
	InvalidFields []InvalidField `json:"invalid_fields,omitempty"`
}

// InvalidField names one field that failed validation and why. It never
// repeats the value.
type InvalidField struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ProblemContentType is the media type of every error answer.
const ProblemContentType = "application/problem+json"

// ErrorsBase is the prefix of the published problem types.
const ErrorsBase = "https://dev.synctera.com/errors/"

// Problem types. bad-request-body is published; the others follow its
// pattern from the published codes and are our assumption.
const (
	TypeBadRequest     = ErrorsBase + "bad-request-body"           // 400
	TypeUnauthorized   = ErrorsBase + "unauthorized"               // 401
	TypeNotFound       = ErrorsBase + "not-found"                  // 404
	TypeAlreadyExists  = ErrorsBase + "already-exists"             // 409
	TypeConcurrentUse  = ErrorsBase + "idempotency-concurrent-use" // 409: first request with the key still running
	TypeInvalidReuse   = ErrorsBase + "idempotency-invalid-reuse"  // 422 (assumed status): same key, different request
	TypeRateLimited    = ErrorsBase + "rate-limited"               // 429
	TypeInternalServer = ErrorsBase + "internal-server-error"      // 500
)

// Codes as they appear in httpx.Error.Code and the ledger: the problem's
// code in lower case when it has one, else the last segment of its type
// with "-" as "_" (both spellings give the same string), else one derived
// from the status.
const (
	CodeBadRequest    = "bad_request_body"
	CodeUnauthorized  = "unauthorized"
	CodeNotFound      = "not_found"
	CodeAlreadyExists = "already_exists"
	CodeKeyInUse      = "idempotency_concurrent_use"
	CodeKeyReused     = "idempotency_invalid_reuse"
)

// MetadataKey is the metadata field carrying our entity key.
const MetadataKey = "etl_entity_key"

// EntityRef returns the entity key a customer's metadata carries, or "".
func EntityRef(md json.RawMessage) string {
	if len(md) == 0 {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(md, &m) != nil {
		return ""
	}
	s, _ := m[MetadataKey].(string)
	return s
}
