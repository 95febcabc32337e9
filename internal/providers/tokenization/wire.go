// Package tokenization is the tokenization platform (Bluefin ShieldConex's
// Management API, /api/v1/clients): one client per source customer, found
// by its unique name before it is created. Wire types, mapper, client and
// sandbox.
package tokenization

// Name is the partner's name in the ledger, config and CLI.
const Name = "tokenization"

// ClientsPath is the documented collection, relative to the base URL
// (https://portal-staging.shieldconex.com:4010 and its cert and
// production siblings).
const ClientsPath = "/api/v1/clients"

// Error codes. Only 7404 is documented; the others follow its pattern
// (7000 + HTTP status) and are our assumption. Validation errors are
// published as 409 (from a third-party SDK's copy of the OpenAPI), so a
// name already taken is one of them: CodeDuplicateName is CodeValidation,
// told apart by its field error on name with errorCode FieldUnique.
const (
	CodeBadRequest    = "7400"
	CodeUnauthorized  = "7401" // unused: 401 and 403 are published without a body
	CodeNotFound      = "7404" // documented
	CodeValidation    = "7409"
	CodeDuplicateName = CodeValidation
	CodeInternal      = "7500"
)

// Field error codes the sandbox uses (the published shape has them; their
// values are our assumption).
const (
	FieldRequired  = "required"
	FieldInvalid   = "invalid"
	FieldUnique    = "unique"
	FieldMalformed = "malformed"
)

// ClientRequest is the body of POST /api/v1/clients, and of the PATCH we
// send for an update: every field, so the platform ends up holding exactly
// what the source says.
type ClientRequest struct {
	Name          string     `json:"name"`
	IsActive      bool       `json:"isActive"`
	DirectPartner PartnerRef `json:"directPartner"`
	Contact       Contact    `json:"contact"`
}

// PatchRequest is the body of PATCH /api/v1/clients/{id}: every field is
// optional, so a deactivation sends isActive alone.
type PatchRequest struct {
	Name          string      `json:"name,omitempty"`
	IsActive      *bool       `json:"isActive,omitempty"`
	DirectPartner *PartnerRef `json:"directPartner,omitempty"`
	Contact       *Contact    `json:"contact,omitempty"`
}

// Patch is the full-content patch of an update.
func (r ClientRequest) Patch() PatchRequest {
	active, dp, ct := r.IsActive, r.DirectPartner, r.Contact
	return PatchRequest{Name: r.Name, IsActive: &active, DirectPartner: &dp, Contact: &ct}
}

// PartnerRef names a partner by id, name, or (as the doc advises) both.
type PartnerRef struct {
	ID   int    `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

// Contact is the client's contact user. ID is the platform's user id
// (/api/v1/users/{id}); we never know it, so we never send it.
type Contact struct {
	ID        int    `json:"id,omitempty"`
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
	Email     string `json:"email,omitempty"`
}

// IDResponse is what create and patch answer.
type IDResponse struct {
	ID int `json:"id"`
}

// ClientSummary is one entry of the list answer. mid and billingId are
// null in the doc's examples, hence pointers; contact carries its id only.
type ClientSummary struct {
	ID            int        `json:"id"`
	Name          string     `json:"name"`
	Mid           *string    `json:"mid"`
	IsActive      bool       `json:"isActive"`
	Version       int        `json:"version"`
	Partner       PartnerRef `json:"partner"`
	DirectPartner PartnerRef `json:"directPartner"`
	Contact       Contact    `json:"contact"`
	BillingID     *string    `json:"billingId"`
}

// ListResponse is the answer of GET /api/v1/clients?partner=...
type ListResponse struct {
	Total int             `json:"total"`
	Data  []ClientSummary `json:"data"`
}

// ClientDetail is the answer of GET /api/v1/clients/{id}: the summary plus
// timestamps and the full contact.
type ClientDetail struct {
	ID            int        `json:"id"`
	Name          string     `json:"name"`
	Mid           *string    `json:"mid"`
	IsActive      bool       `json:"isActive"`
	Created       string     `json:"created"`  // ISO 8601, e.g. 2024-08-13T16:51:24.000Z
	Modified      string     `json:"modified"` // overwritten by every update
	Version       int        `json:"version"`  // number of updates
	Partner       PartnerRef `json:"partner"`
	DirectPartner PartnerRef `json:"directPartner"`
	Contact       Contact    `json:"contact"`
	BillingID     *string    `json:"billingId"`
	Location      *int       `json:"location,omitempty"` // in the doc's table, not in its example
}

// ValidationErrorBody is the published 409 answer:
// {success: false, errorCode, message, errors: {<field>: {attribute,
// message, errorCode}}}.
type ValidationErrorBody struct {
	Success   bool                  `json:"success"`
	ErrorCode int                   `json:"errorCode"`
	Message   string                `json:"message"`
	Errors    map[string]FieldError `json:"errors"`
}

// FieldError is one field's problem in a ValidationErrorBody.
type FieldError struct {
	Attribute string `json:"attribute"`
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

// InternalErrorBody is the published 500 answer {errorCode, message}.
type InternalErrorBody struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
}

// ErrorBody is the documented error shape (shown for 404 only; we assume
// it for every error). errorCode is a number in the doc.
type ErrorBody struct {
	UUID      string `json:"uuid"`
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
}
