package load_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/partner"
)

// Keys and hashes are compared with what earlier versions wrote to the
// ledger and sent to partners: if they changed, an upgrade in the middle of
// a migration would resend every record (new hashes) and retry uncertain
// calls under keys the partner has never seen. The values are HMAC-SHA256
// computed independently (Python's hmac module).
func TestKeysAndHashesAreStableAcrossVersions(t *testing.T) {
	key := []byte("k")
	if got, want := load.IdempotencyKey(key, "synctera", partner.Create, "customer/C1001", "abc"), "4c331abe-f0a6-8cef-8fd5-b3caf5db487a"; got != want {
		t.Errorf("IdempotencyKey = %s, want %s", got, want)
	}
	h, err := load.ContentHash(key, map[string]int{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := "c3a92ff9e274cdcce27a58c15a78ec6dcbbdbd0038a87e7a11baef2028fd8bff"; h != want {
		t.Errorf("ContentHash = %s, want %s", h, want)
	}
}
