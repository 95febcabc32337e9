package config_test

import (
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/config"
)

const strongKey = "Zq3v8L1pW0xN6yT2rB9sK4mD7hF5jC1a"

// valid is a config with nothing wrong; each case changes one thing.
func valid(t *testing.T) *config.Config {
	return &config.Config{
		Source:   config.Source{Type: "csv", Dir: t.TempDir()},
		Ledger:   config.Ledger{URL: config.Secret{Value: "postgres://etl@db.internal/etl?sslmode=verify-full"}},
		HMACKey:  config.Secret{Value: strongKey},
		Partners: map[string]config.Partner{"p": {BaseURL: "https://api.partner.example/v1"}},
	}
}

func problemsOf(es config.Errors) string { return es.Error() }

func TestPartnerURLsMustBeHTTPSExceptAnOptedInLoopbackSandbox(t *testing.T) {
	cases := []struct {
		url, vault string
		optIn      bool
		want       string // "" = valid
	}{
		{url: "https://api.partner.example/v1"},
		{url: "https://127.0.0.1:8443/p"},
		{url: "http://api.partner.example/v1", want: "http:// is refused"},
		{url: "http://api.partner.example/v1", optIn: true, want: "http:// is refused"},
		{url: "http://10.0.0.7:18099/p", optIn: true, want: "http:// is refused"},
		{url: "http://sandbox:18099/p", optIn: true, want: "http:// is refused"},
		{url: "http://127.0.0.1:18099/p", want: "allow_insecure_loopback"},
		{url: "http://127.0.0.1:18099/p", optIn: true},
		{url: "http://127.0.0.2:18099/p", optIn: true},
		{url: "http://[::1]:18099/p", optIn: true},
		{url: "http://localhost:18099/p", optIn: true},
		{url: "http://127.0.0.1.partner.example/p", optIn: true, want: "http:// is refused"},
		{url: "ftp://127.0.0.1/p", optIn: true, want: "must start with http:// or https://"},
		{url: "127.0.0.1:18099/p", optIn: true, want: "must start with http:// or https://"},
		{url: "https://api.partner.example/v1", vault: "http://vault.partner.example", optIn: true, want: "partners.p.options.vault_url: http:// is refused"},
		{url: "http://127.0.0.1:18099/p", vault: "http://127.0.0.1:18099/vault", optIn: true},
	}
	for _, tc := range cases {
		c := valid(t)
		p := c.Partners["p"]
		p.BaseURL = tc.url
		if tc.vault != "" {
			p.Options = map[string]string{"vault_url": tc.vault}
		}
		c.Partners["p"] = p
		c.AllowInsecureLoopback = tc.optIn
		got := problemsOf(c.Validate(schemas))
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s (vault %q, opt-in %v): got %q, want %q", tc.url, tc.vault, tc.optIn, got, tc.want)
		}
	}
}

func TestWeakHMACKeysAreRefused(t *testing.T) {
	cases := []struct{ key, want string }{
		{strongKey, ""},
		{"sh0rtKeyXyz", "too short"},
		{strongKey[:31], "too short"},
		{"CHANGE_ME_32_RANDOM_BYTES_BASE64", "placeholder"},
		{"xchange_me-and-make-it-long-enough-0123", "placeholder"},
		{strings.Repeat("a", 40), "one character repeated"},
	}
	for _, tc := range cases {
		c := valid(t)
		c.HMACKey = config.Secret{Value: tc.key}
		got := problemsOf(c.Validate(schemas))
		if tc.want == "" && got != "" || tc.want != "" && (!strings.HasPrefix(got, "hmac_key: ") || !strings.Contains(got, tc.want)) {
			t.Errorf("key of %d bytes: got %q, want %q", len(tc.key), got, tc.want)
		}
		if strings.Contains(got, tc.key) {
			t.Errorf("the problem echoes the key: %q", got)
		}
	}
}

func TestPostgresSourceWithoutCertificateVerificationIsWarned(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	t.Setenv("PGHOST", "")
	cases := []struct{ url, want string }{
		{"postgres://etl:pw@bank-db.internal:5432/core?sslmode=verify-full", ""},
		{"postgres://etl:pw@bank-db.internal:5432/core?sslmode=require", "sslmode=require does not verify"},
		{"postgres://etl:pw@bank-db.internal:5432/core?sslmode=verify-ca", "sslmode=verify-ca does not verify"},
		{"postgres://etl:pw@bank-db.internal:5432/core", "sslmode=prefer does not verify"},
		{"postgresql://etl@127.0.0.1/core?sslmode=disable", "sslmode=disable does not verify"},
		{"host=bank-db.internal dbname=core sslmode=verify-full", ""},
		{"host=bank-db.internal dbname=core sslmode=require", "sslmode=require"},
		{"host=/var/run/postgresql dbname=core", ""},
		{"postgres:///core?host=/var/run/postgresql", ""},
	}
	for _, tc := range cases {
		c := valid(t)
		c.Source = config.Source{Type: "postgres", Postgres: config.PostgresSource{URL: config.Secret{Value: tc.url}, Customers: "c", Cards: "k"}}
		if es := c.Validate(schemas); len(es) > 0 {
			t.Fatalf("%s: %v", tc.url, es)
		}
		got := problemsOf(c.Warnings())
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, "source.postgres.url: "+tc.want) {
			t.Errorf("%s: got %q, want %q", tc.url, got, tc.want)
		}
		if strings.Contains(got, "pw@") || strings.Contains(got, "bank-db") {
			t.Errorf("the warning echoes the URL: %q", got)
		}
	}
	// The ledger holds no card data: no warning for it; and PGSSLMODE
	// counts when the URL names no mode.
	c := valid(t)
	c.Ledger.URL = config.Secret{Value: "postgres://etl@db.internal/etl?sslmode=disable"}
	if ws := c.Warnings(); len(ws) != 0 {
		t.Errorf("ledger URL warned: %v", ws)
	}
	t.Setenv("PGSSLMODE", "verify-full")
	c.Source = config.Source{Type: "postgres", Postgres: config.PostgresSource{URL: config.Secret{Value: "postgres://etl@bank-db.internal/core"}, Customers: "c", Cards: "k"}}
	if ws := c.Warnings(); len(ws) != 0 {
		t.Errorf("PGSSLMODE=verify-full still warned: %v", ws)
	}
}
