package tokenization

import (
	"strings"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

// customerKey is the ledger key of a tokenization client.

// mapCustomer builds the one client op of a customer. The name is prefix +
// customer id, never a display name: it must stay the same when the
// customer is renamed (it is how a rerun finds the client) and must not
// collide between two customers called alike.
func mapCustomer(c *model.Customer, prefix string, ref PartnerRef) ([]partner.Item, []model.Reject) {
	key := partner.CustomerKey(c.ID)
	rej := func(field, msg string) model.Reject {
		return model.Reject{Origin: c.Origin, EntityKey: key.String(), Field: field, Reason: model.ReasonMissingField, Message: msg, Provider: Name}
	}
	// Validation upstream already requires these; the checks stay so the
	// mapper never sends a client the platform would refuse.
	var rejects []model.Reject
	if strings.TrimSpace(c.ID) == "" {
		rejects = append(rejects, rej("customer_id", "the tokenization client name is built from the customer id"))
	}
	if strings.TrimSpace(c.FirstName) == "" {
		rejects = append(rejects, rej("first_name", "the tokenization platform requires contact.firstName"))
	}
	if strings.TrimSpace(c.LastName) == "" {
		rejects = append(rejects, rej("last_name", "the tokenization platform requires contact.lastName"))
	}
	if strings.TrimSpace(c.Email) == "" {
		rejects = append(rejects, rej("email", "the tokenization platform requires contact.email"))
	}
	if len(rejects) > 0 {
		return nil, rejects
	}
	req := ClientRequest{
		Name:          prefix + c.ID,
		IsActive:      strings.EqualFold(strings.TrimSpace(c.Status), "ACTIVE"),
		DirectPartner: ref,
		Contact:       Contact{FirstName: c.FirstName, LastName: c.LastName, Email: c.Email},
	}
	return []partner.Item{{EntityKey: key, CustomerID: c.ID, Origin: c.Origin, Payload: req}}, nil
}

// customerOfName is the inverse of the name rule: the customer id of a
// client name we chose, or "" for a name that is not ours.
func customerOfName(prefix, name string) string {
	id, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return ""
	}
	return id
}
