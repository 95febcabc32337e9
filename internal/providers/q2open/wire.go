// Package q2open is the Q2 Open partner: POST /v1/client/sync (creates or
// finds a client by identifier, issues an SSO token and adds payment
// cards in one call), and the payment-method calls that keep a known
// client's cards in step (list, add, delete): wire types, mapper, client
// and sandbox.
package q2open

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/northwind-data/etl/internal/model"
)

// Name is the partner's name in the ledger, config and CLI.
const Name = "q2open"

// Paths of the published calls, relative to the base URL
// (https://api.q2open.io in production).
const (
	SyncPath    = "/v1/client/sync"
	ClientPath  = "/v1/client"
	PaymentPath = "/v1/payment"
	// ListPath is followed by /{clientId}; DELETE PaymentPath/{paymentMethodId}.
	ListPath = "/v1/payment/list"
)

// RequestIDHeader is the header Q2 sets on every answer.
const RequestIDHeader = "request-id"

// brands is the documented cardBrand vocabulary. A brand outside it is
// left out of the request rather than sent: the field is optional.
var brands = map[string]bool{"american express": true, "discover": true, "maestro": true, "mastercard": true, "uatp": true, "visa": true}

// cardTypes is the documented cardType vocabulary.
var cardTypes = map[string]bool{"credit": true, "debit": true}

// SyncRequest is the body of POST /v1/client/sync, and the op payload.
// It carries card numbers and codes in clear, as a request body must;
// every way of printing or marshalling it masks them (Format,
// MarshalJSON), and only the client's private wire form sends them.
type SyncRequest struct {
	Client ClientData `json:"client"`
	Token  Token      `json:"token"`
	Cards  []Card     `json:"cards"`
	// Closed lists the identifiers of this customer's cards that closed at
	// the bank (the card, or its account). Never sent in a sync: the
	// client deletes the payment methods Q2 lists under them.
	Closed []string `json:"-"`
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

// syncWire and cardWire are the clear encodings: the same fields with
// none of the masking methods. Only the client's send path and the
// content hash use them.
type (
	cardWire Card
	syncWire struct {
		Client ClientData `json:"client"`
		Token  Token      `json:"token"`
		Cards  []cardWire `json:"cards"`
	}
)

func (r SyncRequest) wire() syncWire {
	w := syncWire{Client: r.Client, Token: r.Token, Cards: make([]cardWire, len(r.Cards))}
	for i, cd := range r.Cards {
		w.Cards[i] = cardWire(cd)
	}
	return w
}

// HashContent is what the content hash covers: the request without the
// card codes (a CVV may not be kept in any form, not even hashed) and
// without the token expiration (it moves with the clock, and an unchanged
// customer must hash the same every night). It is the clear encoding (a
// new card number with the same last four must change the hash), and
// byte for byte what earlier versions hashed, so a deploy does not make
// every customer look changed.
func (r SyncRequest) HashContent() any {
	w := r.wire()
	w.Token = Token{}
	for i := range w.Cards {
		w.Cards[i].CardCode = ""
	}
	return w
}

// Format prints the request with its cards masked, for every verb (%v,
// %+v, %#v, %s, %q...), so an op printed by mistake cannot leak a card.
func (r SyncRequest) Format(f fmt.State, _ rune) {
	cards := make([]string, len(r.Cards))
	for i, cd := range r.Cards {
		cards[i] = cd.masked()
	}
	_, _ = fmt.Fprintf(f, "q2open.SyncRequest{Client:%s Cards:[%s] Closed:%v}", r.Client.Identifier, strings.Join(cards, " "), r.Closed)
}

// String is the masked form (see Format).
func (r SyncRequest) String() string { return fmt.Sprint(r) }

// MarshalJSON is the masked form as JSON (zap's reflection encoder, a
// dry-run body): card numbers cut to IIN and last four, codes starred.
func (r SyncRequest) MarshalJSON() ([]byte, error) {
	w := r.wire()
	for i := range w.Cards {
		w.Cards[i] = cardWire(Card(w.Cards[i]).maskedCopy())
	}
	return json.Marshal(w)
}

func (c Card) maskedCopy() Card {
	c.CardNumber = model.NewPAN(c.CardNumber).Masked()
	if c.CardCode != "" {
		c.CardCode = "***"
	}
	return c
}

func (c Card) masked() string {
	code := ""
	if c.CardCode != "" {
		code = " Code:***"
	}
	return fmt.Sprintf("{Identifier:%s Card:%s%s Exp:%s/%s}", c.Identifier, model.NewPAN(c.CardNumber).Masked(), code, c.ExpMonth, c.ExpYear)
}

// Format prints the card masked (see SyncRequest.Format).
func (c Card) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, "q2open.Card"+c.masked()) }

// String is the masked form.
func (c Card) String() string { return fmt.Sprint(c) }

// MarshalJSON is the masked form as JSON.
func (c Card) MarshalJSON() ([]byte, error) { return json.Marshal(cardWire(c.maskedCopy())) }

// AddPaymentRequest is the body of POST /v1/payment (published fields).
// cardType and cardBrand are not sent: the published field list of this
// call does not have them, and the sync's "faster call" hint is all that
// suggests it would take them. Masked like SyncRequest.
type AddPaymentRequest struct {
	ClientID     string `json:"clientId"`
	PaymentType  string `json:"paymentType"` // always "card"
	Identifier   string `json:"identifier"`
	CardNumber   string `json:"cardNumber"`
	CardCode     string `json:"cardCode,omitempty"`
	ExpMonth     string `json:"expMonth"`
	ExpYear      string `json:"expYear"`
	Zipcode      string `json:"zipcode,omitempty"`
	Name         string `json:"name,omitempty"`
	SetAsDefault string `json:"setAsDefault"`
	CustomLabel  string `json:"customLabel,omitempty"`
	// CardType and CardBrand are accepted by the sandbox (the seed doc
	// says the sync's cards are "as specified in the add payment method
	// call", which has them); the client leaves them empty.
	CardType  string `json:"cardType,omitempty"`
	CardBrand string `json:"cardBrand,omitempty"`
}

type addPaymentWire AddPaymentRequest

func addPayment(clientID string, c Card) AddPaymentRequest {
	return AddPaymentRequest{ClientID: clientID, PaymentType: "card", Identifier: c.Identifier, CardNumber: c.CardNumber, CardCode: c.CardCode,
		ExpMonth: c.ExpMonth, ExpYear: c.ExpYear, Zipcode: c.Zipcode, Name: c.Name, SetAsDefault: c.SetAsDefault, CustomLabel: c.CustomLabel}
}

func (r AddPaymentRequest) maskedCopy() AddPaymentRequest {
	r.CardNumber = model.NewPAN(r.CardNumber).Masked()
	if r.CardCode != "" {
		r.CardCode = "***"
	}
	return r
}

// Format prints the request masked, for every verb.
func (r AddPaymentRequest) Format(f fmt.State, _ rune) {
	code := ""
	if r.CardCode != "" {
		code = " Code:***"
	}
	_, _ = fmt.Fprintf(f, "q2open.AddPaymentRequest{Client:%s Identifier:%s Card:%s%s Exp:%s/%s}", r.ClientID, r.Identifier,
		model.NewPAN(r.CardNumber).Masked(), code, r.ExpMonth, r.ExpYear)
}

// String is the masked form.
func (r AddPaymentRequest) String() string { return fmt.Sprint(r) }

// MarshalJSON is the masked form as JSON.
func (r AddPaymentRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(addPaymentWire(r.maskedCopy()))
}

// AddPaymentResponse is the answer of POST /v1/payment.
type AddPaymentResponse struct {
	PaymentMethodID string `json:"paymentMethodId"`
}

// PaymentMethod is one entry of GET /v1/payment/list/{clientId}. The
// published page names what is listed (identifier, status verified or
// declined, default flag, masked number) but not the field names: these
// are assumed, and decodeList is the one place that reads them.
type PaymentMethod struct {
	PaymentMethodID string `json:"paymentMethodId"`
	Identifier      string `json:"identifier"`
	Status          string `json:"status"` // "verified" or "declined"
	IsDefault       bool   `json:"isDefault"`
	MaskedNumber    string `json:"maskedNumber"`
}

// ListResponse is the assumed shape of the list answer.
type ListResponse struct {
	PaymentMethods []PaymentMethod `json:"paymentMethods"`
}

// ClientRequest is the body of POST /v1/client: the sync's client object.
type ClientRequest = ClientData

// ClientResponse is the answer of POST /v1/client.
type ClientResponse struct {
	ClientID string `json:"clientId"`
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

// ErrorBody is the one published error body (an older add-payment page):
// {"message": "..."}; only status ranges are documented otherwise. The
// sandbox answers it; decodeError in client.go also reads the shape the
// seed doc's era led us to assume, {"error": {"code", "message"}}.
type ErrorBody struct {
	Message string `json:"message"`
}
