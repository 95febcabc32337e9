package partners_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/providers/tokenization"
)

func loadConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "etl.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRetryAfterMaxReachesTheClient(t *testing.T) {
	tests := []struct {
		yaml string
		want time.Duration
	}{
		{"partners:\n  synctera:\n    retry_after_max: 90s\n", 90 * time.Second},
		{"partners:\n  synctera: {}\n", 0}, // httpx's default applies
	}
	for _, tc := range tests {
		cfg := loadConfig(t, tc.yaml)
		if got := partners.HTTPConfig(cfg.Partners["synctera"]).RetryAfterMax; got != tc.want {
			t.Errorf("%q: RetryAfterMax %v, want %v", tc.yaml, got, tc.want)
		}
	}
}

// Both auth schemes reach the demo sandbox through the config keys, and
// bad values of the new options are refused when the client is built.
func TestTokenizationAuthOptions(t *testing.T) {
	sp, _ := partners.Get(tokenization.Name)
	srv := httptest.NewServer(sp.Sandbox(sp.DemoCredentials))
	defer srv.Close()
	creds := func(names ...string) map[string]config.Secret {
		out := map[string]config.Secret{}
		for _, n := range names {
			out[n] = config.Secret{Value: sp.DemoCredentials[n]}
		}
		return out
	}
	tests := []struct {
		name    string
		opts    map[string]string
		creds   []string
		wantErr string
	}{
		{"basic by default", map[string]string{}, []string{"username", "password"}, ""},
		{"hmac", map[string]string{"auth": "hmac"}, []string{"username", "secret"}, ""},
		{"hmac, secret base64 named", map[string]string{"auth": "hmac", "hmac_secret_encoding": "base64"}, []string{"username", "secret"}, ""},
		{"hmac without a secret", map[string]string{"auth": "hmac"}, []string{"username", "password"}, "hmac needs credentials.secret"},
		{"basic without a password", map[string]string{"auth": "basic"}, []string{"username", "secret"}, "needs credentials.password"},
		{"unknown auth", map[string]string{"auth": "rsa"}, []string{"username", "password"}, "options.auth"},
		{"unknown encoding", map[string]string{"auth": "hmac", "hmac_secret_encoding": "hex"}, []string{"username", "secret"}, "options.hmac_secret_encoding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := map[string]string{"partner_id": "792"}
			for k, v := range tc.opts {
				opts[k] = v
			}
			p := config.Partner{BaseURL: srv.URL, Credentials: creds(tc.creds...), Options: opts}
			prov, err := sp.Build(p, partners.HTTPConfig(p))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := prov.(*tokenization.Client)
			if err := c.ListAll(context.Background(), func(tokenization.ClientSummary) error { return nil }); err != nil {
				t.Fatalf("list through the sandbox: %v", err)
			}
		})
	}
	// The raw encoding uses the secret's own bytes: the demo sandbox
	// decodes it, so a raw-configured client is refused.
	p := config.Partner{BaseURL: srv.URL, Credentials: creds("username", "secret"), Options: map[string]string{"partner_id": "792", "auth": "hmac", "hmac_secret_encoding": "raw"}}
	prov, err := sp.Build(p, partners.HTTPConfig(p))
	if err != nil {
		t.Fatal(err)
	}
	if err := prov.(*tokenization.Client).ListAll(context.Background(), func(tokenization.ClientSummary) error { return nil }); httpx.StatusOf(err) != 401 {
		t.Fatalf("raw secret against a base64 sandbox: %v, want 401", err)
	}
}
