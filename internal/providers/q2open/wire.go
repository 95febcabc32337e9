// Package q2open is the Q2 Open partner (POST /v1/client/sync, which
// creates or finds a client by identifier, issues an SSO token and adds
// payment cards in one call): wire types, mapper, client and sandbox.
package q2open

// Name is the partner's name in the ledger, config and CLI.
const Name = "q2open"

// SyncPath is the documented endpoint, relative to the base URL
// (https://api.q2open.io in production).
const SyncPath = "/v1/client/sync"

// brands is the documented cardBrand vocabulary. A brand outside it is
// left out of the request rather than sent: the field is optional.
var brands = map[string]bool{"american express": true, "discover": true, "maestro": true, "mastercard": true, "uatp": true, "visa": true}

// cardTypes is the documented cardType vocabulary.
var cardTypes = map[string]bool{"credit": true, "debit": true}

// SyncRequest is the body of POST /v1/client/sync.
type SyncRequest struct {
	Client ClientData `json:"client"`
	Token  Token      `json:"token"`
	Cards  []Card     `json:"cards"`
}

// ClientData is the doc's "client" object (that of the create client call).
type ClientData struct {
	Identifier string `json:"identifier"`
	Meta       Meta   `json:"meta"`
}

// Meta is the client's personal data. Empty fields are left out, because
// the doc does not say which ones Q2 requires or how it validates them.
type Meta struct {
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
	Email     string `json:"email,omitempty"`
	Phone     string `json:"phone,omitempty"`
	Address1  string `json:"address1,omitempty"`
	Address2  string `json:"address2,omitempty"`
	City      string `json:"city,omitempty"`
	State     string `json:"state,omitempty"`
	Zipcode   string `json:"zipcode,omitempty"`
}

// Token is the doc's "token" object (that of the create token call).
type Token struct {
	Expiration string `json:"expiration"` // e.g. 2025-01-30T00:00:00.000Z
}

// Card is one entry of "cards" (the add payment method call). Every value
// is a string, as in the doc's example, setAsDefault included.
type Card struct {
	Identifier   string `json:"identifier"`
	CardNumber   string `json:"cardNumber"`
	CardCode     string `json:"cardCode,omitempty"`
	CardType     string `json:"cardType,omitempty"`
	CardBrand    string `json:"cardBrand,omitempty"`
	ExpMonth     string `json:"expMonth"`
	ExpYear      string `json:"expYear"`
	Zipcode      string `json:"zipcode,omitempty"`
	Name         string `json:"name,omitempty"`
	SetAsDefault string `json:"setAsDefault"`
	CustomLabel  string `json:"customLabel,omitempty"`
}

// HashContent is what the content hash covers: the request without the
// card codes (a CVV may not be kept in any form, not even hashed) and
// without the token expiration (it moves with the clock, and an unchanged
// customer must hash the same every night).
func (r SyncRequest) HashContent() any {
	c := r
	c.Token = Token{}
	c.Cards = make([]Card, len(r.Cards))
	for i, cd := range r.Cards {
		cd.CardCode = ""
		c.Cards[i] = cd
	}
	return c
}

// SyncResponse is the documented answer. The client never decodes
// ssoToken (it grants a white-label login as the client); only the
// sandbox, which issues it, uses this type.
type SyncResponse struct {
	ClientID string       `json:"clientId"`
	SSOToken string       `json:"ssoToken"`
	Cards    []CardResult `json:"cards"`
}

// CardResult pairs the identifier we sent with Q2's paymentMethodId.
type CardResult struct {
	PaymentMethodID string `json:"paymentMethodId"`
	Identifier      string `json:"identifier"`
}

// ErrorBody is the error shape we ASSUME: the doc shows none. 400 for
// validation failures, 401 for a missing or wrong token. decodeError in
// client.go is the one place that reads it.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
