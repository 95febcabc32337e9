// Package clubready is the ClubReady partner: each open card is created in
// the Vault API, which answers with a single-use ProfileToken, and that
// token is imported with POST /sales/paymentprofile/import, which makes it
// a payment profile of the member. Wire types, mapper, vault and import
// clients, journal-based resolver and a sandbox of both APIs.
package clubready

import (
	"fmt"
	"time"

	"github.com/northwind-data/etl/internal/model"
)

// Name is the partner's name in the ledger, config and CLI.
const Name = "clubready"

// ImportPath is the documented import endpoint, relative to the base URL.
const ImportPath = "/sales/paymentprofile/import"

// VaultPath is where we assume the Vault API creates a payment method: its
// card-creation call is not public (docs/partners/clubready.md).
const VaultPath = "/vault/profiles"

// TokenLifetime is how long a ProfileToken may wait for its import
// ("must be sent to ClubReady API within 5 minutes of creation").
const TokenLifetime = 5 * time.Minute

// DefaultMaxTokenAge is how old a token may be when its import goes out
// before the client fetches a fresh one: a minute of margin for the
// network and clock drift.
const DefaultMaxTokenAge = 4 * time.Minute

// Owner types of a vault payment method. TempStUser is a temporary owner
// that the import turns into a User (the member given as NewOwnerId).
const (
	OwnerTypeTempStUser = "TempStUser"
	OwnerTypeUser       = "User"
)

// VaultRequest is the card to store in the Vault API, and the op payload.
// The Vault's request shape is not public: this is our assumed minimal
// shape (docs/partners/clubready.md). It carries the card number and code in clear, as a
// request body must; Format masks them and HashContent drops the code.
type VaultRequest struct {
	OwnerType   string `json:"OwnerType"`   // always TempStUser for our imports
	OwnerId     int    `json:"OwnerId"`     // the member id (Customer.MemberID)
	ExternalRef string `json:"ExternalRef"` // the entity key: card/<customerID>/<cardID>

	CardNumber string `json:"CardNumber"`
	Cvv        string `json:"Cvv,omitempty"`
	ExpMonth   int    `json:"ExpMonth"` // 1..12
	ExpYear    int    `json:"ExpYear"`  // four digits
	NameOnCard string `json:"NameOnCard,omitempty"`
	BillingZip string `json:"BillingZip,omitempty"`

	// The member's name and address, which ClubReady shows on the
	// payment profile (PaymentProfile.FirstName ... CountryCode).
	FirstName   string `json:"FirstName,omitempty"`
	LastName    string `json:"LastName,omitempty"`
	Address1    string `json:"Address1,omitempty"`
	Address2    string `json:"Address2,omitempty"`
	City        string `json:"City,omitempty"`
	State       string `json:"State,omitempty"`
	PostalCode  string `json:"PostalCode,omitempty"`
	CountryCode string `json:"CountryCode,omitempty"`

	// Preferred is not sent to the vault: it becomes the import's
	// DoNotUpdatePaymentTypePreference (= !Preferred).
	Preferred bool `json:"-"`
}

// hashView is what the content hash covers: the vault request without the
// card code, plus the preference that only the import carries.
type hashView struct {
	VaultRequest
	Preferred bool `json:"Preferred"`
}

// HashContent implements partner.Hashable: a CVV may not be kept in any form,
// not even inside a keyed hash.
func (r VaultRequest) HashContent() any {
	r.Cvv = ""
	return hashView{VaultRequest: r, Preferred: r.Preferred}
}

// Format prints the request with the card masked, so that an op printed
// by mistake (%v of a partner.Op) cannot leak the number or the code.
func (r VaultRequest) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "clubready.VaultRequest{ExternalRef:%s Card:%s Exp:%02d/%d Owner:%s/%d Preferred:%t}",
		r.ExternalRef, model.NewPAN(r.CardNumber).Masked(), r.ExpMonth, r.ExpYear, r.OwnerType, r.OwnerId, r.Preferred)
}

// String is the masked form (see Format).
func (r VaultRequest) String() string { return fmt.Sprint(r) }

// VaultResponse is what we assume the Vault API answers: the doc says it
// "will return a ProfileToken and AcctToken".
type VaultResponse struct {
	ProfileToken string `json:"ProfileToken"`
	AcctToken    string `json:"AcctToken"`
}

// ImportRequest is the body of POST /sales/paymentprofile/import: the
// published DTO's three body fields, nothing else (ServiceStack would
// ignore anything more without a word). ApiKey goes in the query and
// XForwardedFor in the X-Forwarded-For header.
type ImportRequest struct {
	ProfileToken                     string `json:"ProfileToken"`
	DoNotUpdatePaymentTypePreference bool   `json:"DoNotUpdatePaymentTypePreference"`
	// NewOwnerId is "conditionally required": always sent, because our
	// vault requests use OwnerType TempStUser.
	NewOwnerId *int `json:"NewOwnerId,omitempty"`
}

// ImportResponse is the documented answer. Success false is a refusal with
// Message, even under HTTP 200.
type ImportResponse struct {
	Success        bool            `json:"Success"`
	Message        string          `json:"Message"`
	PaymentProfile *PaymentProfile `json:"PaymentProfile,omitempty"`
}

// PaymentProfile is the documented imported payment method. DateTime
// fields are kept as text: ServiceStack writes either ISO 8601 or
// "/Date(ms)/" depending on its configuration, and a date we do not use
// must not make a successful import unreadable. byte? and DateTime? are
// nullable.
type PaymentProfile struct {
	PaymentProfileId       int     `json:"PaymentProfileId"`
	AcctToken              string  `json:"AcctToken"`
	OwnerId                int     `json:"OwnerId"`
	OwnerTypeId            int     `json:"OwnerTypeId"`
	AcctTypeId             int     `json:"AcctTypeId"`
	AcctClassId            int     `json:"AcctClassId"`
	PrefixName             string  `json:"PrefixName"`
	FirstName              string  `json:"FirstName"`
	MiddleName             string  `json:"MiddleName"`
	LastName               string  `json:"LastName"`
	SuffixName             string  `json:"SuffixName"`
	Address1               string  `json:"Address1"`
	Address2               string  `json:"Address2"`
	Urbanization           string  `json:"Urbanization"`
	City                   string  `json:"City"`
	State                  string  `json:"State"`
	PostalCode             string  `json:"PostalCode"`
	CountryCode            string  `json:"CountryCode"`
	Last4                  string  `json:"Last4"`
	CcExpMonth             *int    `json:"CcExpMonth"`
	CcExpYear              *int    `json:"CcExpYear"` // two digits: the doc's type is byte
	IsTemp                 bool    `json:"IsTemp"`
	IsDisabled             bool    `json:"IsDisabled"`
	OnHoldUtc              *string `json:"OnHoldUtc"`
	OnHoldReasonCode       *int    `json:"OnHoldReasonCode"`
	OnHoldReasonDetail     string  `json:"OnHoldReasonDetail"`
	AcctUpdaterFlagUtc     *string `json:"AcctUpdaterFlagUtc"`
	CreatedBy              int     `json:"CreatedBy"`
	CreatedUtc             string  `json:"CreatedUtc"`
	ModifiedBy             int     `json:"ModifiedBy"`
	ModifiedUtc            string  `json:"ModifiedUtc"`
	AcctUpdaterFlag        bool    `json:"AcctUpdaterFlag"`
	EntryModeId            int     `json:"EntryModeId"`
	ExcludeFromAcctUpdater bool    `json:"ExcludeFromAcctUpdater"`
}

// ErrorResponse is ServiceStack's error body for a thrown error (4xx or
// 5xx), such as a wrong ApiKey or a validation failure.
type ErrorResponse struct {
	ResponseStatus ResponseStatus `json:"ResponseStatus"`
}

// ResponseStatus is ServiceStack's error detail.
type ResponseStatus struct {
	ErrorCode string          `json:"ErrorCode"`
	Message   string          `json:"Message"`
	Errors    []ResponseError `json:"Errors,omitempty"`
}

// ResponseError is one field error of a ServiceStack validation failure.
type ResponseError struct {
	ErrorCode string `json:"ErrorCode"`
	FieldName string `json:"FieldName"`
	Message   string `json:"Message"`
}
