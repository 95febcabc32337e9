package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/config"
)

const base = `source: {type: csv, dir: %DIR%}
ledger: {url: {env: CFG_TEST_DB}}
hmac_key: {env: CFG_TEST_KEY}
partners:
  synctera:
    base_url: https://api-sandbox.synctera.com/v0
    credentials: {token: {env: CFG_TEST_TOKEN}}
`

// schemas stands in for internal/partners, which this package must not
// need: Validate knows the partners it is given and no others.
var schemas = []config.Schema{{Name: "synctera", Credentials: []string{"token"}}, {Name: "p"}}

func write(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "etl.yaml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "%DIR%", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func setBase(t *testing.T) {
	t.Setenv("CFG_TEST_DB", "postgres://etl@db.example:5432/etl?sslmode=verify-full")
	t.Setenv("CFG_TEST_KEY", "k3y-for-config-tests-0123456789abcdefghij")
	t.Setenv("CFG_TEST_TOKEN", "tok")
}

func problems(t *testing.T, text string) string {
	t.Helper()
	c, err := config.Load(write(t, text))
	if err != nil {
		return err.Error()
	}
	return c.Validate(schemas).Error()
}

// A typo in the file names the field by its path and line, not by a Go type.
func TestUnknownFieldNamesItsPath(t *testing.T) {
	setBase(t)
	got := problems(t, base+"    rate_per_secs: 5\n")
	if !strings.Contains(got, "partners.synctera.rate_per_secs") || !strings.Contains(got, "line 8") || strings.Contains(got, "config.Partner") {
		t.Fatalf("got %q", got)
	}
	got = problems(t, base+"run: {grace_period: soon}\n")
	if !strings.Contains(got, "grace_period") || strings.Contains(got, "config.") {
		t.Fatalf("bad duration: got %q", got)
	}
}

// Booleans in the environment read as everywhere else; anything unclear is
// an error, never a silent false.
func TestEnabledOverrideIsStrict(t *testing.T) {
	setBase(t)
	for _, tc := range []struct {
		v      string
		on, ok bool
	}{{"TRUE", true, true}, {"yes", true, true}, {"1", true, true}, {"false", false, true}, {"No", false, true}, {"enable", false, false}, {"on", false, false}} {
		t.Run(tc.v, func(t *testing.T) {
			t.Setenv("ETL_SYNCTERA_ENABLED", tc.v)
			c, err := config.Load(write(t, base))
			if err != nil {
				t.Fatal(err)
			}
			es := c.Validate(schemas)
			if !tc.ok {
				if !strings.Contains(es.Error(), "ETL_SYNCTERA_ENABLED") {
					t.Fatalf("ETL_SYNCTERA_ENABLED=%s accepted: %v", tc.v, es)
				}
				return
			}
			if len(es) > 0 {
				t.Fatal(es)
			}
			if got := c.Partners["synctera"].On(); got != tc.on {
				t.Fatalf("ETL_SYNCTERA_ENABLED=%s: on = %v", tc.v, got)
			}
		})
	}
}

func TestForbidInlineSecretsIsABoolean(t *testing.T) {
	inline := config.Secret{Value: "x"}
	for _, tc := range []struct {
		v        string
		set      bool
		resolves bool
	}{{"", false, true}, {"0", true, true}, {"false", true, true}, {"1", true, false}, {"true", true, false}, {"YES", true, false}, {"sometimes", true, false}} {
		if tc.set {
			t.Setenv("ETL_FORBID_INLINE_SECRETS", tc.v)
		} else {
			os.Unsetenv("ETL_FORBID_INLINE_SECRETS")
		}
		_, err := inline.Resolve()
		if (err == nil) != tc.resolves {
			t.Errorf("ETL_FORBID_INLINE_SECRETS=%q: resolve err %v, want resolves=%v", tc.v, err, tc.resolves)
		}
	}
}

// config check parses URLs as the driver and the clients will.
func TestURLsAreParsed(t *testing.T) {
	setBase(t)
	t.Setenv("CFG_TEST_DB", "notaurl")
	got := problems(t, base)
	if !strings.Contains(got, "ledger.url") || strings.Contains(got, "notaurl") {
		t.Fatalf("DATABASE_URL=notaurl: got %q (the message must not echo the URL)", got)
	}
	setBase(t)
	got = problems(t, strings.Replace(base, "https://api-sandbox.synctera.com/v0", "https://", 1))
	if !strings.Contains(got, "partners.synctera.base_url") {
		t.Fatalf("base_url without host: got %q", got)
	}
}

// Validate knows the partners it is given, and nothing else: no package
// has to be imported for its side effects first.
func TestValidateKnowsOnlyTheSchemasGiven(t *testing.T) {
	setBase(t)
	c, err := config.Load(write(t, base))
	if err != nil {
		t.Fatal(err)
	}
	if es := c.Validate(nil); !strings.Contains(es.Error(), "partners.synctera: unknown partner") {
		t.Fatalf("no schemas: got %v", es)
	}
	other := []config.Schema{{Name: "synctera", Credentials: []string{"api_key"}}}
	if es := c.Validate(other); !strings.Contains(es.Error(), "partners.synctera.credentials.api_key: required") ||
		!strings.Contains(es.Error(), "partners.synctera.credentials.token: not a credential of synctera (expected: api_key)") {
		t.Fatalf("other schema: got %v", es)
	}
}

// An option's problem names its path, or first the environment variable
// the value came from.
func TestOptionProblemsNameTheirSource(t *testing.T) {
	setBase(t)
	var seen map[string]string
	s := []config.Schema{{Name: "synctera", Credentials: []string{"token"},
		CheckOptions: func(opts map[string]string, creds map[string]bool) []config.FieldError {
			seen = opts
			if !creds["token"] {
				return []config.FieldError{{Path: "credentials.token", Msg: "not seen"}}
			}
			var out []config.FieldError
			for _, k := range []string{"from_file", "from_env"} {
				if _, ok := opts[k]; ok {
					out = append(out, config.FieldError{Path: "options." + k, Msg: "bad"})
				}
			}
			return out
		}}}
	t.Setenv("ETL_SYNCTERA_OPT_FROM_ENV", "2")
	c, err := config.Load(write(t, base+"    options: {from_file: \"1\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Validate(s).Error()
	want := "partners.synctera.options.from_file: bad\nETL_SYNCTERA_OPT_FROM_ENV (partners.synctera.options.from_env): bad"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if seen["from_env"] != "2" || seen["from_file"] != "1" {
		t.Fatalf("options given to the schema: %v", seen)
	}
}

// max_concurrency may only raise the bound: below concurrency (or the
// default 8 when concurrency is unset) it is a mistake, not a cap.
func TestMaxConcurrency(t *testing.T) {
	setBase(t)
	for _, tc := range []struct {
		extra, want string
	}{
		{"    concurrency: 4\n    max_concurrency: 16\n", ""},
		{"    max_concurrency: 8\n", ""},
		{"    concurrency: 4\n    max_concurrency: 2\n", "partners.synctera.max_concurrency: must be between concurrency (4) and 256"},
		{"    max_concurrency: 4\n", "partners.synctera.max_concurrency: must be between concurrency (8) and 256"},
		{"    max_concurrency: 300\n", "must be between concurrency (8) and 256"},
	} {
		got := ""
		if c, err := config.Load(write(t, base+tc.extra)); err != nil {
			got = err.Error()
		} else if err := c.Validate(schemas); err != nil {
			got = err.Error()
		}
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.extra, got, tc.want)
		}
	}
}
