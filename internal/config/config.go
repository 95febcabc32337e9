// Package config reads etl's YAML config, applies environment overrides,
// resolves secrets from env vars or files, and validates everything before
// any call is made, naming the path of each bad field.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Secret names where a credential lives. Only Env and File are meant for
// production; Value exists for throwaway sandboxes and is refused when
// ETL_FORBID_INLINE_SECRETS is set.
type Secret struct {
	Env   string `yaml:"env"`
	File  string `yaml:"file"`
	Value string `yaml:"value"`
}

// IsSet reports whether any source is named.
func (s Secret) IsSet() bool { return s.Env != "" || s.File != "" || s.Value != "" }

// Resolve reads the secret. Errors name the env var or file, never the
// value.
func (s Secret) Resolve() (string, error) {
	switch {
	case s.Env != "":
		v := os.Getenv(s.Env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is not set", s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("cannot read secret file %s: %v", s.File, errors.Unwrap(err))
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", s.File)
		}
		return v, nil
	case s.Value != "":
		if os.Getenv("ETL_FORBID_INLINE_SECRETS") != "" {
			return "", errors.New("inline secret values are forbidden here (ETL_FORBID_INLINE_SECRETS): use env or file")
		}
		return s.Value, nil
	}
	return "", errors.New("not configured: give env or file")
}

// Duration parses "30s", "5m".
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 30s, 5m)", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// Config is the whole file.
type Config struct {
	Source   Source             `yaml:"source"`
	Ledger   Ledger             `yaml:"ledger"`
	HMACKey  Secret             `yaml:"hmac_key"`
	Partners map[string]Partner `yaml:"partners"`
	Run      Run                `yaml:"run"`
}

type Source struct {
	Type     string         `yaml:"type"` // csv | postgres
	Dir      string         `yaml:"dir"`  // csv
	Postgres PostgresSource `yaml:"postgres"`
}

type PostgresSource struct {
	URL       Secret `yaml:"url"`
	Customers string `yaml:"customers"` // table/view name or SELECT
	Cards     string `yaml:"cards"`
}

type Ledger struct {
	URL Secret `yaml:"url"`
}

type Run struct {
	Deactivate            *bool    `yaml:"deactivate"`
	MaxDeactivateFraction float64  `yaml:"max_deactivate_fraction"`
	GracePeriod           Duration `yaml:"grace_period"`
	// LockHeartbeat is how often a run checks its lock's database session
	// (default 3s); a session lost for longer stops the run (docs/locks.md).
	LockHeartbeat Duration `yaml:"lock_heartbeat"`
}

// Partner holds the settings every partner shares plus its own extras.
type Partner struct {
	Enabled     *bool             `yaml:"enabled"`
	BaseURL     string            `yaml:"base_url"`
	Credentials map[string]Secret `yaml:"credentials"`
	RatePerSec  float64           `yaml:"rate_per_sec"`
	Burst       int               `yaml:"burst"`
	Concurrency int               `yaml:"concurrency"`
	Timeout     Duration          `yaml:"timeout"`
	MaxAttempts int               `yaml:"max_attempts"`
	Options     map[string]string `yaml:"options"`
}

// On reports whether the partner is enabled (default true when listed).
func (p Partner) On() bool { return p.Enabled == nil || *p.Enabled }

// FieldError is one problem, with the path of the field.
type FieldError struct {
	Path string
	Msg  string
}

func (e FieldError) Error() string { return e.Path + ": " + e.Msg }

// Errors is every problem found.
type Errors []FieldError

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Load reads path, refusing unknown keys (a typo must not silently drop a
// setting), then applies environment overrides.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %v", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config %s: %v", path, err)
	}
	c.applyEnv()
	return &c, nil
}

// applyEnv lets the environment override the file:
// DATABASE_URL or ETL_LEDGER_URL (ledger), ETL_SOURCE_DIR,
// ETL_<PARTNER>_BASE_URL, ETL_<PARTNER>_ENABLED (true/false),
// ETL_<PARTNER>_OPT_<OPTION> (e.g. ETL_CLUBREADY_OPT_VAULT_URL).
func (c *Config) applyEnv() {
	if v := os.Getenv("ETL_LEDGER_URL"); v != "" {
		c.Ledger.URL = Secret{Env: "ETL_LEDGER_URL"}
	} else if v := os.Getenv("DATABASE_URL"); v != "" && !c.Ledger.URL.IsSet() {
		c.Ledger.URL = Secret{Env: "DATABASE_URL"}
	}
	if v := os.Getenv("ETL_SOURCE_DIR"); v != "" {
		c.Source.Dir = v
	}
	for name, p := range c.Partners {
		up := strings.ToUpper(name)
		if v := os.Getenv("ETL_" + up + "_BASE_URL"); v != "" {
			p.BaseURL = v
		}
		if v := os.Getenv("ETL_" + up + "_ENABLED"); v != "" {
			on := v == "true" || v == "1"
			p.Enabled = &on
		}
		prefix := "ETL_" + up + "_OPT_"
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			if opt, ok := strings.CutPrefix(k, prefix); ok && opt != "" {
				if p.Options == nil {
					p.Options = map[string]string{}
				}
				p.Options[strings.ToLower(opt)] = v
			}
		}
		c.Partners[name] = p
	}
}

// Known partner names and the credentials each needs.
var Required = map[string][]string{}

// Validate checks everything that can be checked without a call, secrets
// included, and returns every problem with its path.
func (c *Config) Validate() Errors {
	var es Errors
	add := func(path, f string, a ...any) { es = append(es, FieldError{path, fmt.Sprintf(f, a...)}) }
	switch c.Source.Type {
	case "", "csv":
		if c.Source.Dir == "" {
			add("source.dir", "required for a csv source")
		} else if st, err := os.Stat(c.Source.Dir); err != nil || !st.IsDir() {
			add("source.dir", "%s is not a readable directory", c.Source.Dir)
		}
	case "postgres":
		if !c.Source.Postgres.URL.IsSet() {
			add("source.postgres.url", "required for a postgres source")
		} else if _, err := c.Source.Postgres.URL.Resolve(); err != nil {
			add("source.postgres.url", "%v", err)
		}
		if c.Source.Postgres.Customers == "" {
			add("source.postgres.customers", "required: a table, view or SELECT returning the customer columns")
		}
		if c.Source.Postgres.Cards == "" {
			add("source.postgres.cards", "required: a table, view or SELECT returning the card columns")
		}
	default:
		add("source.type", "%q is not csv or postgres", c.Source.Type)
	}
	if !c.Ledger.URL.IsSet() {
		add("ledger.url", "required (or set DATABASE_URL)")
	} else if _, err := c.Ledger.URL.Resolve(); err != nil {
		add("ledger.url", "%v", err)
	}
	if !c.HMACKey.IsSet() {
		add("hmac_key", "required: the key for card fingerprints, content hashes and idempotency keys")
	} else if v, err := c.HMACKey.Resolve(); err != nil {
		add("hmac_key", "%v", err)
	} else if len(v) < 16 {
		add("hmac_key", "too short: use at least 16 characters (32 random bytes recommended)")
	}
	if len(c.Partners) == 0 {
		add("partners", "no partner configured")
	}
	names := make([]string, 0, len(c.Partners))
	for n := range c.Partners {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := c.Partners[n]
		path := "partners." + n
		need, known := Required[n]
		if !known {
			add(path, "unknown partner (known: %s)", strings.Join(KnownPartners(), ", "))
			continue
		}
		if !p.On() {
			continue
		}
		if p.BaseURL == "" {
			add(path+".base_url", "required")
		} else if !strings.HasPrefix(p.BaseURL, "http://") && !strings.HasPrefix(p.BaseURL, "https://") {
			add(path+".base_url", "must start with http:// or https://")
		}
		for _, cred := range need {
			s, ok := p.Credentials[cred]
			if !ok || !s.IsSet() {
				add(path+".credentials."+cred, "required")
				continue
			}
			if _, err := s.Resolve(); err != nil {
				add(path+".credentials."+cred, "%v", err)
			}
		}
		for cred := range p.Credentials {
			if !contains(need, cred) && !contains(Optional[n], cred) {
				add(path+".credentials."+cred, "not a credential of %s (expected: %s)", n, strings.Join(append(need, Optional[n]...), ", "))
			}
		}
		if p.RatePerSec < 0 {
			add(path+".rate_per_sec", "must not be negative")
		}
		if p.Concurrency < 0 || p.Concurrency > 256 {
			add(path+".concurrency", "must be between 1 and 256")
		}
	}
	if f := c.Run.MaxDeactivateFraction; f < 0 || f > 1 {
		add("run.max_deactivate_fraction", "must be between 0 and 1")
	}
	if d := c.Run.LockHeartbeat.Duration; d < 0 || (d > 0 && d < 10*time.Millisecond) || d > 5*time.Minute {
		add("run.lock_heartbeat", "must be between 10ms and 5m (default 3s)")
	}
	return es
}

// Optional credentials per partner.
var Optional = map[string][]string{}

// KnownPartners lists partner names in order.
func KnownPartners() []string {
	out := make([]string, 0, len(Required))
	for n := range Required {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// Cred resolves a credential that Validate has already checked ("" if
// absent).
func (p Partner) Cred(name string) string {
	s, ok := p.Credentials[name]
	if !ok {
		return ""
	}
	v, _ := s.Resolve()
	return v
}
