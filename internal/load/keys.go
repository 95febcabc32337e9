package load

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/northwind-data/etl/internal/mac"
	"github.com/northwind-data/etl/internal/partner"
)

// ContentHash is the keyed HMAC-SHA256 of the payload's JSON (or of what
// its HashContent returns). Keyed, because payloads carry card numbers and
// an unkeyed hash of a PAN can be brute-forced from IIN and last four.
func ContentHash(key []byte, payload any) (string, error) {
	h, _, err := hashContent(key, payload)
	return h, err
}

// hashContent is ContentHash that also returns the JSON it hashed when
// that is the payload's own encoding (not partner.Hashable), for partner.Op.Body.
func hashContent(key []byte, payload any) (string, []byte, error) {
	hashable, ok := payload.(partner.Hashable)
	if ok {
		payload = hashable.HashContent()
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return "", nil, fmt.Errorf("hash payload: %w", err)
	}
	h := mac.Hex(key, b)
	if ok {
		b = nil
	}
	return h, b, nil
}

// IdempotencyKey is deterministic: the same partner, operation, entity and
// content always give the same key, so a retry or a rerun is recognised by
// the partner, and new content gets a new key. It is shaped as a UUID
// (version 8, "custom") because partners such as Synctera recommend UUIDs.
func IdempotencyKey(key []byte, provider string, kind partner.Kind, entityKey partner.Key, hash string) string {
	m := mac.Get(key)
	for i, part := range [...]string{provider, string(kind), string(entityKey), hash} {
		if i > 0 {
			m.WriteString("\x00")
		}
		m.WriteString(part)
	}
	s := m.Sum(nil)[:16]
	m.Put()
	s[6] = (s[6] & 0x0f) | 0x80
	s[8] = (s[8] & 0x3f) | 0x80
	h := hex.EncodeToString(s)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// CreateKey is the idempotency key of a create: the partner, the entity
// and the generation, not the content. A create whose answer was lost is
// resent under the same key whatever changed since, so the partner
// answers the first create (or refuses the new body as a reuse) instead
// of making a second record. generation counts the partner's definitive
// refusals (4xx) of this entity's creates: a partner that replays a
// refusal under its key needs a new key once the data is fixed, and only
// then.
func CreateKey(key []byte, provider string, entityKey partner.Key, generation int) string {
	return IdempotencyKey(key, provider, partner.Create, entityKey, "generation:"+strconv.Itoa(generation))
}
