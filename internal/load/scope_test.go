package load_test

import (
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/load"
)

func TestFingerprintScope(t *testing.T) {
	key, bin := []byte("k"), []byte("go-buildid:a/b")
	now := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	ps := []load.ScopePartner{{Name: "synctera", BaseURL: "https://s", Options: map[string]string{"a": "1"}}, {Name: "datafeed", BaseURL: "https://d"}}
	base := load.FingerprintScope(key, bin, now, ps)
	if want := load.FingerprintScope(key, bin, now.Add(30*time.Minute), ps); base != want {
		t.Errorf("same month, different scope: %s %s", base, want)
	}
	for name, other := range map[string]string{
		"key":     load.FingerprintScope([]byte("k2"), bin, now, ps),
		"binary":  load.FingerprintScope(key, []byte("go-buildid:a/c"), now, ps),
		"month":   load.FingerprintScope(key, bin, now.Add(2*time.Hour), ps),
		"order":   load.FingerprintScope(key, bin, now, []load.ScopePartner{ps[1], ps[0]}),
		"option":  load.FingerprintScope(key, bin, now, []load.ScopePartner{{Name: "synctera", BaseURL: "https://s", Options: map[string]string{"a": "2"}}, ps[1]}),
		"address": load.FingerprintScope(key, bin, now, []load.ScopePartner{ps[0], {Name: "datafeed", BaseURL: "https://d2"}}),
		"partner": load.FingerprintScope(key, bin, now, ps[:1]),
	} {
		if other == base {
			t.Errorf("a different %s gives the same scope", name)
		}
	}
	// Computed independently (Python's hmac): the same bytes the scope
	// hashed before it moved out of cmd/etl.
	if want := "0e1a9bd700e00d97df19b29712d3e57f"; base != want {
		t.Errorf("scope = %s, want %s", base, want)
	}
}
