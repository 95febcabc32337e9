package clubready

import (
	"math"
	"strconv"
	"strings"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/transform"
)

// cardKey is the ledger key of a card, also sent as the vault ExternalRef.

// mapCustomer builds one op per open card of the customer. It is pure and
// deterministic: nothing in it depends on the clock.
func mapCustomer(c *model.Customer) ([]partner.Item, []model.Reject) {
	var cards []*model.Card
	for ai := range c.Accounts {
		a := &c.Accounts[ai]
		if strings.EqualFold(a.Status, "CLOSED") {
			continue // its cards cannot be used to pay either
		}
		for ci := range a.Cards {
			cd := &a.Cards[ci]
			// A joint account lists every holder's cards; another
			// holder's card is not this member's payment method.
			if isOpen(cd.Status) && (cd.CustomerID == "" || cd.CustomerID == c.ID) {
				cards = append(cards, cd)
			}
		}
	}
	if len(cards) == 0 {
		return nil, nil
	}
	owner, reason, why := memberID(c.MemberID)
	var (
		ops       []partner.Item
		rejects   []model.Reject
		seen      = map[string]bool{}
		preferred bool
	)
	for _, cd := range cards {
		if why != "" {
			// One reject per card: each is an entity this partner will
			// not receive until the member id is fixed.
			rejects = append(rejects, *cardReject(c, cd, "member_id", reason, why))
			continue
		}
		req, rej := mapCard(c, cd, owner)
		if rej == nil && seen[cd.ID] {
			rej = cardReject(c, cd, "card_id", model.ReasonDuplicateKey, "card id appears twice for this customer; the first one is imported")
		}
		if rej != nil {
			rejects = append(rejects, *rej)
			continue
		}
		seen[cd.ID] = true
		// Each import with DoNotUpdatePaymentTypePreference=false makes
		// its card the preferred one, and imports run concurrently: only
		// the first default card in source order may ask for it.
		if cd.IsDefault && !preferred {
			req.Preferred, preferred = true, true
		}
		ops = append(ops, partner.Item{EntityKey: partner.Key(req.ExternalRef), CustomerID: c.ID, Origin: origin(c, cd), Payload: req})
	}
	return ops, rejects
}

// isOpen treats a missing status as open, as the other partners do.
func isOpen(status string) bool { return status == "" || strings.EqualFold(status, "OPEN") }

// memberID parses the ClubReady user id (an Int32 at ClubReady). A
// non-empty why explains why it cannot be used.
func memberID(raw string) (id int, reason, why string) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return 0, model.ReasonMissingField, "ClubReady needs the customer's member id (NewOwnerId) to own an imported card"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, model.ReasonBadValue, "member id must be a positive whole number (ClubReady user id)"
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt32 {
		return 0, model.ReasonBadValue, "member id must be between 1 and 2147483647 (ClubReady user id)"
	}
	return int(n), "", ""
}

// mapCard turns one card into its vault request, or a reject naming the
// field the vault would refuse. Messages never carry card data.
func mapCard(c *model.Customer, cd *model.Card, owner int) (VaultRequest, *model.Reject) {
	if strings.TrimSpace(cd.ID) == "" {
		return VaultRequest{}, cardReject(c, cd, "card_id", model.ReasonMissingField, "card id is required (it is the vault ExternalRef)")
	}
	if field, reason, msg, ok := transform.CardProblem(cd); !ok {
		return VaultRequest{}, cardReject(c, cd, field, reason, msg)
	}
	req := VaultRequest{
		OwnerType:   OwnerTypeTempStUser,
		OwnerId:     owner,
		ExternalRef: partner.CardKey(c.ID, cd.ID).String(),
		CardNumber:  cd.PAN.Reveal(),
		ExpMonth:    cd.ExpMonth,
		ExpYear:     cd.ExpYear,
		NameOnCard:  firstNonEmpty(strings.TrimSpace(cd.NameOnCard), strings.TrimSpace(c.FullName())),
		BillingZip:  firstNonEmpty(cd.BillingZip, c.Address.PostalCode),
		FirstName:   c.FirstName,
		LastName:    c.LastName,
		Address1:    c.Address.Line1,
		Address2:    c.Address.Line2,
		City:        c.Address.City,
		State:       c.Address.State,
		PostalCode:  c.Address.PostalCode,
		CountryCode: c.Address.Country,
	}
	if !cd.CVV.Empty() {
		req.Cvv = cd.CVV.Reveal()
	}
	return req, nil
}

func origin(c *model.Customer, cd *model.Card) model.Origin {
	if cd.Origin != (model.Origin{}) {
		return cd.Origin
	}
	return c.Origin
}

func cardReject(c *model.Customer, cd *model.Card, field, reason, msg string) *model.Reject {
	return &model.Reject{Origin: origin(c, cd), EntityKey: partner.CardKey(c.ID, cd.ID).String(), Field: field, Reason: reason, Message: msg, Provider: Name}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
