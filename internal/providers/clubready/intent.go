package clubready

import (
	"encoding/json"
	"strings"
	"time"
)

// IntentDetail is what the client journals before each import: the
// single-use ProfileToken, which a rerun retries while it lives, and what
// an operator needs to find the card at ClubReady once it has expired
// (the last four and the member; never the card number). Written with
// String, read with ParseIntent.
type IntentDetail struct {
	Token  string `json:"token"`
	Last4  string `json:"last4,omitempty"`
	Member int    `json:"member,omitempty"`
}

// String is the journal form: a JSON object.
func (d IntentDetail) String() string {
	b, _ := json.Marshal(d)
	return string(b)
}

// ParseIntent reads a journal detail. A detail that is not a JSON object
// is a bare ProfileToken, as binaries before IntentDetail wrote it.
func ParseIntent(detail string) IntentDetail {
	detail = strings.TrimSpace(detail)
	var d IntentDetail
	if strings.HasPrefix(detail, "{") && json.Unmarshal([]byte(detail), &d) == nil {
		return d
	}
	return IntentDetail{Token: detail}
}

// Expires is when the token stops being importable: its exp claim, read
// without checking the signature (the format may change: ok false then).
func (d IntentDetail) Expires() (time.Time, bool) {
	exp, err := TokenExpiry(d.Token)
	return exp, err == nil
}
