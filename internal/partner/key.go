package partner

import (
	"fmt"
	"strings"
)

// Key is an entity's stable key at a partner and in the ledger:
// "customer/<customer id>" or "card/<customer id>/<card id>". This file is
// the only place that format is written or read; everything else builds a
// Key with CustomerKey or CardKey and takes it apart with ParseKey or the
// methods below. The ledger stores it as text (sync_state.entity_key), so
// the format must not change.
type Key string

// CustomerPrefix and CardPrefix begin every customer's and every card's
// key, for callers that must select keys of one kind by prefix (in SQL,
// say); they build no key.
const (
	CustomerPrefix = "customer/"
	CardPrefix     = "card/"
)

// CustomerKey is the key of a customer.
func CustomerKey(customerID string) Key { return Key(CustomerPrefix + customerID) }

// CardKey is the key of one card of a customer. cardID must be safe to
// log and store (transform.SafeCardID masks a card id that is a card
// number).
func CardKey(customerID, cardID string) Key {
	return Key(CardPrefix + customerID + "/" + cardID)
}

// ParseKey takes a key apart: the customer id, and the card id for a card
// key ("" for a customer key). It refuses anything else, including a key
// with an empty customer id.
func ParseKey(s string) (customerID, cardID string, err error) {
	if rest, ok := strings.CutPrefix(s, CustomerPrefix); ok && rest != "" {
		return rest, "", nil
	}
	if rest, ok := strings.CutPrefix(s, CardPrefix); ok {
		if id, card, ok := strings.Cut(rest, "/"); ok && id != "" && card != "" {
			return id, card, nil
		}
	}
	return "", "", fmt.Errorf("partner: %q is not an entity key (customer/<id> or card/<customer>/<card>)", s)
}

// String is the key as stored in the ledger.
func (k Key) String() string { return string(k) }

// Customer is the customer id the key belongs to ("" when it names
// none). It is more lenient than ParseKey: a reject's key for a card row
// with no card id ("card/C1/") still names its customer, which must not
// be taken for vanished.
func (k Key) Customer() string {
	if rest, ok := strings.CutPrefix(string(k), CustomerPrefix); ok {
		return rest
	}
	if rest, ok := strings.CutPrefix(string(k), CardPrefix); ok {
		id, _, _ := strings.Cut(rest, "/")
		return id
	}
	return ""
}

// IsCustomer reports whether k is a customer's key (not a card's): only
// those are switched off when a customer vanishes; cards go with them.
func (k Key) IsCustomer() bool {
	id, card, err := ParseKey(string(k))
	return err == nil && id != "" && card == ""
}
