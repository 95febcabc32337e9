package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// A partner option that is misspelt or malformed, in the file or in an
// ETL_<PARTNER>_OPT_* variable, stops both `config check` and `run`
// before anything is sent, naming where it was set and what is wanted: a
// typo must not silently drop a setting.
func TestPartnerOptionsAreChecked(t *testing.T) {
	t.Parallel()
	// A port that was free a moment ago: if validation let the config
	// through, run would fail on the database instead (exitFatal, not exitUsage).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	db := fmt.Sprintf("postgres://etl@127.0.0.1:%d/etl_ledger?sslmode=disable&connect_timeout=5", port)
	replace := func(old, new string) func(string) string {
		return func(s string) string { return strings.Replace(s, old, new, 1) }
	}
	cases := []struct {
		name string
		edit func(string) string
		env  map[string]string
		want []string
	}{
		{
			name: "unknown option in the file",
			edit: replace("      forwarded_for: 203.0.113.10 ", "      vault_urll: https://vault.example\n      forwarded_for: 203.0.113.10 "),
			want: []string{"partners.clubready.options.vault_urll: unknown option (known: forwarded_for, max_token_age, vault_url)"},
		},
		{
			name: "unknown option in the environment",
			env:  map[string]string{"ETL_CLUBREADY_OPT_VAULTURL": "https://vault.example"},
			want: []string{"ETL_CLUBREADY_OPT_VAULTURL (partners.clubready.options.vaulturl): unknown option (known: forwarded_for, max_token_age, vault_url)"},
		},
		{
			name: "malformed number in the file",
			edit: replace(`      partner_id: "792"`, `      partner_id: "seven"`),
			want: []string{`partners.tokenization.options.partner_id: "seven" is not a whole number`},
		},
		{
			name: "malformed duration in the environment",
			env:  map[string]string{"ETL_Q2OPEN_OPT_TOKEN_TTL": "an hour"},
			want: []string{`ETL_Q2OPEN_OPT_TOKEN_TTL (partners.q2open.options.token_ttl): "an hour" is not a duration`},
		},
		{
			name: "malformed boolean in the environment",
			env:  map[string]string{"ETL_Q2OPEN_OPT_RECONCILE_CREATES": "sometimes"},
			want: []string{`ETL_Q2OPEN_OPT_RECONCILE_CREATES (partners.q2open.options.reconcile_creates): "sometimes" is not true or false`},
		},
		{
			name: "a partner's own rule: hmac needs the secret",
			edit: replace("      # auth: hmac ", "      auth: hmac #"),
			want: []string{"partners.tokenization.options.auth: hmac needs credentials.secret"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path := sampleConfig(t, c.edit)
			for _, args := range [][]string{
				{"config", "check", "--config", path},
				{"run", "--config", path, "--progress", "none"},
			} {
				env := demoEnv(t)
				env["DATABASE_URL"] = db
				for k, v := range c.env {
					env[k] = v
				}
				r := etl(t, env, args...)
				if r.code != exitUsage {
					t.Fatalf("etl %s: want exit %d, got %s", args[0], exitUsage, r)
				}
				for _, want := range c.want {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("etl %s: stderr lacks %q:\n%s", args[0], want, r)
					}
				}
			}
		})
	}
}
