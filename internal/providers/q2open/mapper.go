package q2open

import (
	"strconv"
	"strings"
	"time"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/transform"
)

// expirationLayout is the doc example's form: UTC with milliseconds.
const expirationLayout = "2006-01-02T15:04:05.000Z"

func expiration(t time.Time) string { return t.UTC().Format(expirationLayout) }

// customerKey is the ledger key of a Q2 client.

// cardKey is the ledger key of a card Q2 holds as a payment method.

// mapCustomer builds the one sync op of a customer. It is pure: the token
// expiration comes in from the caller, which owns the clock.
func mapCustomer(c *model.Customer, exp string) ([]partner.Item, []model.Reject) {
	key := partner.CustomerKey(c.ID)
	if strings.TrimSpace(c.ID) == "" {
		return nil, []model.Reject{{Origin: c.Origin, EntityKey: key.String(), Field: "customer_id", Reason: model.ReasonMissingField,
			Message: "Q2 requires client.identifier (the customer id)", Provider: Name}}
	}
	req := SyncRequest{
		Client: ClientData{Identifier: c.ID, Meta: Meta{
			FirstName: c.FirstName,
			LastName:  c.LastName,
			Email:     c.Email,
			Phone:     phone(c.Phone),
			Address1:  c.Address.Line1,
			Address2:  c.Address.Line2,
			City:      c.Address.City,
			State:     c.Address.State,
			Zipcode:   c.Address.PostalCode,
		}},
		Token: Token{Expiration: exp},
		// An empty list, not null: a customer without open cards still
		// gets a client (and Q2's SSO token for the white-label products).
		Cards: []Card{},
	}
	var rejects []model.Reject
	seen := map[string]bool{}
	hasDefault := false
	for ai := range c.Accounts {
		a := &c.Accounts[ai]
		accountClosed := strings.EqualFold(a.Status, "CLOSED") // its cards cannot be used to pay either
		for ci := range a.Cards {
			cd := &a.Cards[ci]
			// A joint account lists every holder's cards; the other
			// holder's card is not this client's payment method.
			if cd.CustomerID != "" && cd.CustomerID != c.ID {
				continue
			}
			if accountClosed || !isOpen(cd.Status) {
				// Closed at the bank: the client removes the payment
				// method Q2 may hold under this identifier.
				if cd.ID != "" {
					req.Closed = append(req.Closed, cd.ID)
				}
				continue
			}
			wc, rej := mapCard(c, cd)
			if rej == nil && seen[cd.ID] {
				rej = cardReject(c, cd, "card_id", model.ReasonDuplicateKey, "card id appears twice for this customer; Q2 would hold the second as a second payment method, so the first one is sent")
			}
			if rej != nil {
				rejects = append(rejects, *rej)
				continue
			}
			seen[cd.ID] = true
			// Two cards both marked default would leave the choice to Q2;
			// the first one in source order wins, deterministically.
			if wc.SetAsDefault == "true" {
				if hasDefault {
					wc.SetAsDefault = "false"
				}
				hasDefault = true
			}
			req.Cards = append(req.Cards, wc)
		}
	}
	return []partner.Item{{EntityKey: key, CustomerID: c.ID, Origin: c.Origin, Payload: req}}, rejects
}

// isOpen treats a missing status as open, as the other partners do.
func isOpen(status string) bool { return status == "" || strings.EqualFold(status, "OPEN") }

// mapCard turns one card into its wire form, or a reject naming the field
// Q2 would refuse. A card reject leaves the card out; the customer and
// their other cards are still sent.
func mapCard(c *model.Customer, cd *model.Card) (Card, *model.Reject) {
	if cd.ID == "" {
		return Card{}, cardReject(c, cd, "card_id", model.ReasonMissingField, "Q2 requires cards[].identifier (the card id)")
	}
	if field, reason, msg, ok := transform.CardProblem(cd); !ok {
		return Card{}, cardReject(c, cd, field, reason, msg)
	}
	wc := Card{
		Identifier:   cd.ID,
		CardNumber:   cd.PAN.Reveal(),
		ExpMonth:     twoDigits(cd.ExpMonth),
		ExpYear:      strconv.Itoa(cd.ExpYear),
		Zipcode:      firstNonEmpty(cd.BillingZip, c.Address.PostalCode),
		Name:         firstNonEmpty(strings.TrimSpace(cd.NameOnCard), strings.TrimSpace(c.FullName())),
		SetAsDefault: strconv.FormatBool(cd.IsDefault),
		CustomLabel:  cd.Label,
	}
	if !cd.CVV.Empty() {
		wc.CardCode = cd.CVV.Reveal()
	}
	if t := strings.ToLower(strings.TrimSpace(cd.Type)); cardTypes[t] {
		wc.CardType = t
	}
	if b := strings.ToLower(strings.TrimSpace(cd.Brand)); brands[b] {
		wc.CardBrand = b
	}
	return wc, nil
}

func cardReject(c *model.Customer, cd *model.Card, field, reason, msg string) *model.Reject {
	o := cd.Origin
	if o == (model.Origin{}) {
		o = c.Origin
	}
	return &model.Reject{Origin: o, EntityKey: partner.CardKey(c.ID, cd.ID).String(), Field: field, Reason: reason, Message: msg, Provider: Name}
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// phone writes a North American E.164 number the way the doc's example
// does (123-123-1234); any other number goes as it is, since the doc
// shows no other form.
func phone(p string) string {
	d, ok := strings.CutPrefix(p, "+1")
	if !ok || len(d) != 10 {
		return p
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return p
		}
	}
	return d[:3] + "-" + d[3:6] + "-" + d[6:]
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
