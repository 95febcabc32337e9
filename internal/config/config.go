// Package config reads etl's YAML config, applies environment overrides,
// resolves secrets from env vars or files, and validates everything before
// any call is made, naming the path of each bad field.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gopkg.in/yaml.v3"

	"github.com/northwind-data/etl/internal/boolean"
)

// Secret names where a credential lives. Only Env and File are meant for
// production; Value exists for throwaway sandboxes and is refused when
// ETL_FORBID_INLINE_SECRETS is set.
type Secret struct {
	Env   string `yaml:"env"`
	File  string `yaml:"file"`
	Value string `yaml:"value"`

	given string // from the command line (Given); never read from YAML
}

// Given is a secret the operator passed on the command line (say,
// --database-url): it is neither inline in a config file nor in the
// environment, so ETL_FORBID_INLINE_SECRETS does not apply to it.
func Given(v string) Secret { return Secret{given: v} }

// IsSet reports whether any source is named.
func (s Secret) IsSet() bool { return s.given != "" || s.Env != "" || s.File != "" || s.Value != "" }

// Resolve reads the secret. Errors name the env var or file, never the
// value.
func (s Secret) Resolve() (string, error) {
	switch {
	case s.given != "":
		return s.given, nil
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
		forbid, err := InlineSecretsForbidden()
		if err != nil {
			return "", err
		}
		if forbid {
			return "", errors.New("inline secret values are forbidden here (ETL_FORBID_INLINE_SECRETS): use env or file")
		}
		return s.Value, nil
	}
	return "", errors.New("not configured: give env or file")
}

// InlineSecretsForbidden reads ETL_FORBID_INLINE_SECRETS: unset means
// allowed; otherwise it must be a boolean, so a typo cannot silently allow
// (or forbid) inline secrets.
func InlineSecretsForbidden() (bool, error) {
	v, ok := os.LookupEnv("ETL_FORBID_INLINE_SECRETS")
	if !ok || v == "" {
		return false, nil
	}
	b, err := boolean.Parse(v)
	if err != nil {
		return true, fmt.Errorf("ETL_FORBID_INLINE_SECRETS: %v", err)
	}
	return b, nil
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

	// AllowInsecureLoopback lets a partner URL be plain http:// when its
	// host is loopback: the sandboxes of `etl sandbox`, the demo and the
	// tests. Partners carry card data, so any other http:// URL is
	// refused, with or without it.
	AllowInsecureLoopback bool `yaml:"allow_insecure_loopback"`

	// envErrs are environment overrides that could not be applied; Validate
	// reports them with the variable's name as the path.
	envErrs Errors
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
	// MaxConcurrency lets the requests in flight grow past Concurrency
	// while the partner's latency stays flat (default: no growth).
	MaxConcurrency int      `yaml:"max_concurrency"`
	Timeout        Duration `yaml:"timeout"`
	MaxAttempts    int      `yaml:"max_attempts"`
	// RetryAfterMax caps a partner's Retry-After (default 5m): beyond it
	// the call fails as retryable and the rerun sends it.
	RetryAfterMax Duration          `yaml:"retry_after_max"`
	Options       map[string]string `yaml:"options"`

	// optEnv names the environment variable each option overridden from
	// the environment came from, so a problem names what the operator set.
	optEnv map[string]string
}

// DefaultConcurrency is a partner's requests in flight when its config
// sets no concurrency.
const DefaultConcurrency = 8

// Workers is the partner's configured requests in flight, or the default.
func (p Partner) Workers() int {
	if p.Concurrency > 0 {
		return p.Concurrency
	}
	return DefaultConcurrency
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
		return nil, fmt.Errorf("config %s: %w", path, withFieldPaths(b, err))
	}
	c.applyEnv()
	return &c, nil
}

// withFieldPaths rewrites yaml.v3's messages, which name Go types ("field
// vault_urll not found in type config.Partner"), to name the path of the
// field in the file ("partners.clubready.vault_urll (line 12): unknown
// field"), the way Validate names every other problem.
func withFieldPaths(src []byte, err error) error {
	msgs := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var root yaml.Node
	if yaml.Unmarshal(src, &root) != nil {
		return err // a syntax error: yaml.v3's message names the line
	}
	var es Errors
	for _, msg := range msgs {
		var line int
		var field, typ string
		if n, _ := fmt.Sscanf(msg, "line %d: field %s not found in type %s", &line, &field, &typ); n == 3 {
			path := pathAt(&root, line, field)
			if path == "" {
				path = field
			}
			es = append(es, FieldError{Path: path, Msg: fmt.Sprintf("unknown field (line %d); check the spelling", line)})
			continue
		}
		if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
			if path := pathOfLine(&root, line); path != "" {
				_, rest, _ := strings.Cut(msg, ": ")
				es = append(es, FieldError{Path: path, Msg: fmt.Sprintf("%s (line %d)", yamlTypeWords(rest), line)})
				continue
			}
		}
		es = append(es, FieldError{Path: "config", Msg: msg})
	}
	return es
}

// yamlTypeWords replaces yaml.v3's Go type names with what a config
// author wrote or meant.
func yamlTypeWords(msg string) string {
	return strings.NewReplacer("into float64", "into a number", "into int", "into a whole number", "into bool", "into true/false",
		"into config.Duration", "into a duration", "into config.Secret", "into {env: NAME} or {file: PATH}",
		"into map[string]string", "into a mapping of names to values", "into map[string]config.Partner", "into a mapping of partners",
		"into string", "into a string", "!!str", "text", "!!map", "a mapping", "!!seq", "a list", "!!int", "a number").Replace(msg)
}

// pathAt finds the mapping key named field on the given line and returns
// its dotted path from the document root.
func pathAt(n *yaml.Node, line int, field string) string {
	return findPath(n, "", func(k, _ *yaml.Node) bool { return k.Line == line && k.Value == field }, nil)
}

// pathOfLine returns the path of the deepest value that starts on line.
func pathOfLine(n *yaml.Node, line int) string {
	return findPath(n, "", nil, func(_, v *yaml.Node) bool { return v.Line == line })
}

// findPath walks the mappings under n and returns the dotted path of the
// first key/value pair that before (asked before descending into the
// value) or after (asked after) accepts; either may be nil.
func findPath(n *yaml.Node, prefix string, before, after func(k, v *yaml.Node) bool) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := findPath(c, prefix, before, after); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(prefix, k.Value)
			if before != nil && before(k, v) {
				return p
			}
			if q := findPath(v, p, before, after); q != "" {
				return q
			}
			if after != nil && after(k, v) {
				return p
			}
		}
	}
	return ""
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
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
			on, err := boolean.Parse(v)
			if err != nil {
				c.envErrs = append(c.envErrs, FieldError{Path: "ETL_" + up + "_ENABLED", Msg: err.Error()})
			} else {
				p.Enabled = &on
			}
		}
		prefix := "ETL_" + up + "_OPT_"
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			if opt, ok := strings.CutPrefix(k, prefix); ok && opt != "" {
				if p.Options == nil {
					p.Options = map[string]string{}
				}
				if p.optEnv == nil {
					p.optEnv = map[string]string{}
				}
				p.Options[strings.ToLower(opt)] = v
				p.optEnv[strings.ToLower(opt)] = k
			}
		}
		c.Partners[name] = p
	}
}

// Schema is what Validate knows of one partner. internal/partners supplies
// every partner's (partners.Schemas), so this package knows none itself.
type Schema struct {
	Name string
	// Credentials are required; OptionalCredentials may be given.
	Credentials, OptionalCredentials []string
	// CheckOptions decodes and validates the partner's option strings;
	// creds says which credentials are configured. Each problem's Path is
	// relative to the partner: "options.NAME" or "credentials.NAME". nil
	// accepts any option.
	CheckOptions func(opts map[string]string, creds map[string]bool) []FieldError
}

// Validate checks everything that can be checked without a call, secrets
// included, against the known partners, and returns every problem with
// its path.
func (c *Config) Validate(partners []Schema) Errors {
	schemas := map[string]Schema{}
	known := make([]string, 0, len(partners))
	for _, s := range partners {
		schemas[s.Name] = s
		known = append(known, s.Name)
	}
	sort.Strings(known)
	es := append(Errors(nil), c.envErrs...)
	add := func(path, f string, a ...any) { es = append(es, FieldError{path, fmt.Sprintf(f, a...)}) }
	if _, err := InlineSecretsForbidden(); err != nil {
		add("ETL_FORBID_INLINE_SECRETS", "%v", errors.Unwrap(err))
	}
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
		} else if u, err := c.Source.Postgres.URL.Resolve(); err != nil {
			add("source.postgres.url", "%v", err)
		} else if err := checkPostgresURL(u); err != nil {
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
	} else if u, err := c.Ledger.URL.Resolve(); err != nil {
		add("ledger.url", "%v", err)
	} else if err := checkPostgresURL(u); err != nil {
		add("ledger.url", "%v", err)
	}
	if !c.HMACKey.IsSet() {
		add("hmac_key", "required: the key for card fingerprints, content hashes and idempotency keys")
	} else if v, err := c.HMACKey.Resolve(); err != nil {
		add("hmac_key", "%v", err)
	} else if msg := weakKey(v); msg != "" {
		add("hmac_key", "%s", msg)
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
		sc, ok := schemas[n]
		if !ok {
			add(path, "unknown partner (known: %s)", strings.Join(known, ", "))
			continue
		}
		need, optional := sc.Credentials, sc.OptionalCredentials
		if !p.On() {
			continue
		}
		if p.BaseURL == "" {
			add(path+".base_url", "required")
		} else if msg := c.checkPartnerURL(p.BaseURL); msg != "" {
			add(path+".base_url", "%s", msg)
		}
		for _, opt := range sortedKeys(p.Options) {
			if strings.HasSuffix(opt, "_url") && p.Options[opt] != "" {
				if msg := c.checkPartnerURL(p.Options[opt]); msg != "" {
					add(p.optionPath(path, opt), "%s", msg)
				}
			}
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
			if !contains(need, cred) && !contains(optional, cred) {
				add(path+".credentials."+cred, "not a credential of %s (expected: %s)", n, strings.Join(append(append([]string(nil), need...), optional...), ", "))
			}
		}
		if sc.CheckOptions != nil {
			creds := map[string]bool{}
			for k, s := range p.Credentials {
				creds[k] = s.IsSet()
			}
			for _, e := range sc.CheckOptions(p.Options, creds) {
				at := path + "." + e.Path
				if opt, ok := strings.CutPrefix(e.Path, "options."); ok {
					at = p.optionPath(path, opt)
				}
				add(at, "%s", e.Msg)
			}
		}
		if p.RatePerSec < 0 {
			add(path+".rate_per_sec", "must not be negative")
		}
		if p.RetryAfterMax.Duration < 0 {
			add(path+".retry_after_max", "must not be negative")
		}
		if p.Concurrency < 0 || p.Concurrency > 256 {
			add(path+".concurrency", "must be between 1 and 256")
		}
		if m, c := p.MaxConcurrency, p.Workers(); m != 0 && (m < c || m > 256) {
			add(path+".max_concurrency", "must be between concurrency (%d) and 256", c)
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

// checkPostgresURL parses a connection string the way the driver will, so
// `config check` catches DATABASE_URL=notaurl before a run does. The
// message never repeats the URL: it may carry a password.
func checkPostgresURL(s string) error {
	if _, err := pgconn.ParseConfig(s); err != nil {
		return errors.New("not a PostgreSQL connection URL (postgres://user@host:port/db?sslmode=...) or key=value string")
	}
	if !strings.Contains(s, "://") && !strings.Contains(s, "=") {
		return errors.New("not a PostgreSQL connection URL (postgres://user@host:port/db?sslmode=...) or key=value string")
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// optionPath names option opt of the partner at path: its config path,
// and first the environment variable when the value came from one, since
// that is what the operator must change.
func (p Partner) optionPath(path, opt string) string {
	if v := p.optEnv[opt]; v != "" {
		return v + " (" + path + ".options." + opt + ")"
	}
	return path + ".options." + opt
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

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkPartnerURL returns why a partner endpoint is refused, or "".
// Partners carry card data, so plain http is only for a sandbox on
// loopback, and only when the config says so.
func (c *Config) checkPartnerURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "must start with http:// or https:// and name a host"
	}
	if u.Scheme == "https" {
		return ""
	}
	if !isLoopback(u.Hostname()) {
		return "http:// is refused: partners carry card data, use https:// (plain http is allowed only for a sandbox on loopback, with allow_insecure_loopback: true)"
	}
	if !c.AllowInsecureLoopback {
		return "http:// is refused: partners carry card data, use https:// (for a sandbox on loopback, set allow_insecure_loopback: true)"
	}
	return ""
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// examplePlaceholder is the hmac-key value of deploy/k8s/secret.example.yaml.
const examplePlaceholder = "CHANGE_ME_32_RANDOM_BYTES_BASE64"

// weakKey returns why an HMAC key is refused, or "". The key protects the
// card fingerprints (a card number has few unknown digits: a guessable key
// lets anyone holding the ledger test candidates) and names every
// idempotency key. Messages never include the key.
func weakKey(k string) string {
	switch {
	case k == examplePlaceholder || strings.Contains(strings.ToUpper(k), "CHANGE_ME") || strings.Contains(strings.ToUpper(k), "CHANGEME"):
		return "is the example placeholder: generate a key (e.g. openssl rand -base64 32)"
	case len(k) < 32:
		return "too short: use at least 32 bytes (e.g. openssl rand -base64 32)"
	case strings.Count(k, k[:1]) == len(k):
		return "is one character repeated: generate a key (e.g. openssl rand -base64 32)"
	}
	return ""
}

// Warnings are settings that are allowed but weaken security; `etl config
// check` prints them and `etl run` logs them at start. Call after
// Validate.
func (c *Config) Warnings() Errors {
	var ws Errors
	if c.Source.Type == "postgres" && c.Source.Postgres.URL.IsSet() {
		if v, err := c.Source.Postgres.URL.Resolve(); err == nil {
			if mode, verified := sslVerified(v); !verified {
				ws = append(ws, FieldError{"source.postgres.url", fmt.Sprintf("sslmode=%s does not verify the server certificate, and this connection carries card numbers: use sslmode=verify-full (with sslrootcert naming the server's CA)", mode)})
			}
		}
	}
	return ws
}

// sslVerified reads the sslmode of a PostgreSQL URL or keyword/value DSN
// (PGSSLMODE, then libpq's default "prefer", when it names none) and
// reports whether it verifies the server certificate and host name. A
// Unix socket carries no TLS and needs none.
func sslVerified(dsn string) (mode string, ok bool) {
	params := map[string]string{}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			for k, v := range u.Query() {
				params[k] = v[len(v)-1]
			}
			if u.Host != "" && params["host"] == "" {
				params["host"] = u.Hostname()
			}
		}
	} else {
		for _, f := range strings.Fields(dsn) {
			if k, v, ok := strings.Cut(f, "="); ok {
				params[k] = strings.Trim(v, "'")
			}
		}
	}
	h := params["host"]
	if h == "" {
		h = os.Getenv("PGHOST")
	}
	if h == "" || strings.HasPrefix(h, "/") {
		return "", true
	}
	mode = params["sslmode"]
	if mode == "" {
		mode = os.Getenv("PGSSLMODE")
	}
	if mode == "" {
		mode = "prefer"
	}
	return mode, mode == "verify-full"
}
