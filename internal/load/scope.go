package load

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// ScopePartner is what a fingerprint vouches for about one partner: its
// address and options (another address or option may map differently).
type ScopePartner struct {
	Name, BaseURL string
	Options       map[string]string
}

// FingerprintScope names what a customer fingerprint vouches for (the
// Scope option): this binary (a release may map differently, see
// buildinfo.Identity), the partners in engine order with their addresses
// and options, the key, and the month (card expiry is judged by month, so
// a card that expires is seen in full). A change to any of them changes
// the scope, and every customer is compared in full once.
func FingerprintScope(key, binary []byte, now time.Time, partners []ScopePartner) string {
	m := hmac.New(sha256.New, key)
	m.Write(binary)
	fmt.Fprintf(m, "\x00%s\x00", now.UTC().Format("2006-01"))
	for _, p := range partners {
		b, _ := json.Marshal(p) // a struct of strings: cannot fail
		m.Write(b)
	}
	return hex.EncodeToString(m.Sum(nil)[:16])
}
