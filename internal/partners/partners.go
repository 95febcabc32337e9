// Package partners is the one place that knows every partner package: it
// builds clients from config and sandboxes for `etl sandbox`. Adding a
// partner means adding it here and nowhere else outside its own package.
package partners

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/clubready"
	"github.com/northwind-data/etl/internal/providers/datafeed"
	"github.com/northwind-data/etl/internal/providers/q2open"
	"github.com/northwind-data/etl/internal/providers/synctera"
	"github.com/northwind-data/etl/internal/providers/tokenization"
	"github.com/northwind-data/etl/internal/verify"
)

// Spec describes one partner to the rest of the program.
type Spec struct {
	Name        string
	Credentials []string // required credential names in config
	Optional    []string
	// Build makes the client from its config section.
	Build func(p config.Partner, h httpx.Config) (partner.Provider, error)
	// Sandbox makes the sandbox handler with the demo credentials.
	Sandbox func(creds map[string]string) http.Handler
	// DemoCredentials are what `etl sandbox` accepts by default.
	DemoCredentials map[string]string
	// DemoOptions are config options the sandbox needs ({base} = base URL).
	DemoOptions map[string]string
	// BasePath is appended to the sandbox mount to form the base URL
	// (Synctera's paths are relative to /v0).
	BasePath string
	// EntityPrefix is the entity key prefix of this partner's top-level
	// records ("customer/" or "card/").
	EntityPrefix string
	// Deactivates says the partner can switch off a vanished record.
	Deactivates bool
	// List walks the partner's records for `etl verify` (nil: the
	// partner's documented API has no list).
	List func(p partner.Provider) verify.Lister
	// Count reads the sandbox state: records held and duplicates (tests).
	Count func(sandbox http.Handler) (records, duplicates int)
	// Intent reads the detail the partner journals before a call whose
	// effect cannot be looked up, for `etl intents list` (nil: the
	// partner journals nothing).
	Intent func(detail string) IntentInfo
}

// IntentInfo is what an operator needs from a journaled intent to find
// the record at the partner. Never card data beyond the last four.
type IntentInfo struct {
	Last4  string
	Member string
	// Expires is when the journaled detail stops being usable by a
	// rerun (a ClubReady token's 5 minutes); zero: unreadable.
	Expires time.Time
}

var specs = map[string]Spec{}

func register(s Spec) {
	specs[s.Name] = s
	config.Required[s.Name] = s.Credentials
	config.Optional[s.Name] = s.Optional
}

// All returns every spec sorted by name.
func All() []Spec {
	out := make([]Spec, 0, len(specs))
	for _, s := range specs {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns the named spec.
func Get(name string) (Spec, bool) { s, ok := specs[name]; return s, ok }

// Names lists partner names.
func Names() []string {
	var out []string
	for _, s := range All() {
		out = append(out, s.Name)
	}
	return out
}

// HTTPConfig is the shared client tuning from a partner's config.
func HTTPConfig(p config.Partner) httpx.Config {
	return httpx.Config{
		Timeout:     p.Timeout.Duration,
		RatePerSec:  p.RatePerSec,
		Burst:       max(p.Burst, 1),
		MaxAttempts: p.MaxAttempts,
		// 0 takes httpx's default (5m).
		RetryAfterMax: p.RetryAfterMax.Duration,
	}
}

// Build constructs the enabled partners from cfg, restricted to only when
// non-empty. tune may adjust each partner's httpx.Config (metrics hooks).
func Build(cfg *config.Config, only []string, tune func(name string, h *httpx.Config)) ([]partner.Provider, error) {
	want := map[string]bool{}
	for _, n := range only {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if _, ok := specs[n]; !ok {
			return nil, fmt.Errorf("--providers: unknown partner %q (known: %s)", n, strings.Join(Names(), ", "))
		}
		if _, ok := cfg.Partners[n]; !ok {
			return nil, fmt.Errorf("--providers: partner %q is not in the config", n)
		}
		want[n] = true
	}
	var out []partner.Provider
	for _, s := range All() {
		p, ok := cfg.Partners[s.Name]
		if !ok || !p.On() || (len(want) > 0 && !want[s.Name]) {
			continue
		}
		h := HTTPConfig(p)
		if tune != nil {
			tune(s.Name, &h)
		}
		prov, err := s.Build(p, h)
		if err != nil {
			return nil, fmt.Errorf("partners.%s: %w", s.Name, err)
		}
		out = append(out, prov)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no partner enabled (check partners.*.enabled and --providers)")
	}
	return out, nil
}

func init() {
	register(Spec{
		Name: datafeed.Name,
		// Sessions are started with the client certificate alone; a token
		// is only for a proxy or sandbox that hands out a fixed one.
		// The demo and the e2e tests start real sessions against the
		// sandbox, so they give none.
		Optional: []string{"token"},
		Build: func(p config.Partner, h httpx.Config) (partner.Provider, error) {
			cfg, err := datafeedConfig(p, h)
			if err != nil {
				return nil, err
			}
			return datafeed.New(cfg)
		},
		Sandbox: func(c map[string]string) http.Handler {
			return datafeed.NewSandbox(datafeed.SandboxOptions{Token: c["token"]})
		},
		DemoOptions:  map[string]string{"organization_id": "50004"},
		EntityPrefix: partner.CustomerPrefix,
		Count: func(h http.Handler) (int, int) {
			// The feed keeps customers by sourceCustomerId: a resend is an
			// upsert, never a second customer.
			return len(h.(*datafeed.Sandbox).State().Customers), 0
		},
	})

	register(Spec{
		Name:            q2open.Name,
		Credentials:     []string{"token"},
		DemoCredentials: map[string]string{"token": "sandbox-q2open-token"},
		Build: func(p config.Partner, h httpx.Config) (partner.Provider, error) {
			ttl, err := optDuration(p.Options, "token_ttl")
			if err != nil {
				return nil, err
			}
			reconcile := false
			if v := p.Options["reconcile_creates"]; v != "" {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, fmt.Errorf("options.reconcile_creates: %q is not true or false", v)
				}
				reconcile = b
			}
			return q2open.New(q2open.Config{BaseURL: p.BaseURL, Token: p.Cred("token"), TokenTTL: ttl, ReconcileCreates: reconcile, HTTP: h})
		},
		Sandbox: func(c map[string]string) http.Handler {
			return q2open.NewSandbox(q2open.SandboxOptions{Token: c["token"]})
		},
		EntityPrefix: partner.CustomerPrefix,
		Count: func(h http.Handler) (int, int) {
			// Q2 dedups clients by identifier but keeps a card sent twice
			// as a second payment method: both are duplicates here.
			st := h.(*q2open.Sandbox).State()
			return len(st.Clients), st.Totals.DuplicateClients + max(st.Totals.DuplicatePaymentMethods, st.Totals.DuplicateAdds)
		},
	})
}

func init() {
	register(Spec{
		Name: tokenization.Name,
		// username always; password for auth basic, secret for auth hmac
		// (checked when the client is built).
		Credentials: []string{"username"},
		Optional:    []string{"password", "secret"},
		DemoCredentials: map[string]string{"username": "sandbox-user", "password": "sandbox-password",
			"secret": "c2FuZGJveC1obWFjLXNlY3JldA=="}, // base64 of "sandbox-hmac-secret"
		DemoOptions: map[string]string{"partner_id": "792", "partner_name": "partnerName", "auth": "hmac"},
		Build: func(p config.Partner, h httpx.Config) (partner.Provider, error) {
			id := 0
			if v := p.Options["partner_id"]; v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("options.partner_id: %q is not a number", v)
				}
				id = n
			}
			page := 0
			if v := p.Options["page_size"]; v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return nil, fmt.Errorf("options.page_size: %q is not a number", v)
				}
				page = n
			}
			auth := p.Options["auth"]
			switch auth {
			case "", tokenization.AuthBasic, tokenization.AuthHMAC:
			default:
				return nil, fmt.Errorf("options.auth: %q: want basic or hmac", auth)
			}
			b64 := true // the partner's generator decodes the secret (unconfirmed)
			switch v := p.Options["hmac_secret_encoding"]; v {
			case "", "base64":
			case "raw":
				b64 = false
			default:
				return nil, fmt.Errorf("options.hmac_secret_encoding: %q: want base64 or raw", v)
			}
			return tokenization.New(tokenization.Config{BaseURL: p.BaseURL, Auth: auth, Username: p.Cred("username"), Password: p.Cred("password"),
				Secret: p.Cred("secret"), SecretBase64: b64,
				PartnerID: id, PartnerName: p.Options["partner_name"], NamePrefix: p.Options["name_prefix"], PageSize: page, HTTP: h})
		},
		Sandbox: func(c map[string]string) http.Handler {
			return tokenization.NewSandbox(tokenization.SandboxOptions{Username: c["username"], Password: c["password"],
				HMACSecret: c["secret"], HMACSecretBase64: true})
		},
		EntityPrefix: partner.CustomerPrefix,
		Deactivates:  true,
		List: func(p partner.Provider) verify.Lister {
			c := p.(*tokenization.Client)
			return func(ctx context.Context, fn func(verify.Remote) error) error {
				return c.ListAll(ctx, func(s tokenization.ClientSummary) error {
					key := c.EntityKey(s.Name)
					if key == "" {
						return nil // not one of ours
					}
					return fn(verify.Remote{ID: strconv.Itoa(s.ID), Key: key, Active: s.IsActive})
				})
			}
		},
		Count: func(h http.Handler) (int, int) {
			st := h.(*tokenization.Sandbox).State()
			return len(st.Clients), st.Totals.Duplicates
		},
	})
}

func init() {
	register(Spec{
		Name:            clubready.Name,
		Credentials:     []string{"api_key", "vault_key"},
		DemoCredentials: map[string]string{"api_key": "sandbox-clubready-apikey", "vault_key": "sandbox-clubready-vaultkey"},
		DemoOptions:     map[string]string{"vault_url": "{base}", "forwarded_for": "203.0.113.10"},
		Build: func(p config.Partner, h httpx.Config) (partner.Provider, error) {
			age, err := optDuration(p.Options, "max_token_age")
			if err != nil {
				return nil, err
			}
			vault := p.Options["vault_url"]
			if vault == "" {
				return nil, fmt.Errorf("options.vault_url: required (the Vault API's base URL)")
			}
			return clubready.New(clubready.Config{BaseURL: p.BaseURL, ApiKey: p.Cred("api_key"), VaultURL: vault,
				VaultKey: p.Cred("vault_key"), ForwardedFor: p.Options["forwarded_for"], MaxTokenAge: age, HTTP: h})
		},
		Sandbox: func(c map[string]string) http.Handler {
			return clubready.NewSandbox(clubready.SandboxOptions{ApiKey: c["api_key"], VaultKey: c["vault_key"]})
		},
		EntityPrefix: partner.CardPrefix,
		Count: func(h http.Handler) (int, int) {
			st := h.(*clubready.Sandbox).State()
			return len(st.Profiles), st.Duplicates
		},
		Intent: func(detail string) IntentInfo {
			d := clubready.ParseIntent(detail)
			info := IntentInfo{Last4: d.Last4}
			if d.Member > 0 {
				info.Member = strconv.Itoa(d.Member)
			}
			info.Expires, _ = d.Expires()
			return info
		},
	})
}

func init() {
	register(Spec{
		Name:            synctera.Name,
		Credentials:     []string{"token"},
		DemoCredentials: map[string]string{"token": "sandbox-synctera-token"},
		BasePath:        "/v0",
		Build: func(p config.Partner, h httpx.Config) (partner.Provider, error) {
			return synctera.New(synctera.Config{BaseURL: p.BaseURL, Token: p.Cred("token"), HTTP: h})
		},
		Sandbox: func(c map[string]string) http.Handler {
			return synctera.NewSandbox(synctera.SandboxOptions{Token: c["token"]})
		},
		EntityPrefix: partner.CustomerPrefix,
		Deactivates:  true,
		List: func(p partner.Provider) verify.Lister {
			c := p.(*synctera.Client)
			return func(ctx context.Context, fn func(verify.Remote) error) error {
				return c.ListAll(ctx, func(cu synctera.Customer) error {
					// Synctera keeps no reference of ours, so customers are
					// matched by the id the ledger recorded.
					return fn(verify.Remote{ID: cu.ID, Active: cu.Status != "INACTIVE"})
				})
			}
		},
		Count: func(h http.Handler) (int, int) {
			st := h.(*synctera.Sandbox).State()
			return len(st.Customers), st.Totals.Duplicates
		},
	})
}

// datafeedConfig reads the data feed's options: organization_id,
// client_cert_file, client_key_file, ca_file, session_scopes,
// session_lifetime, session_renew_before, map_<enum field> and
// default_codes.
func datafeedConfig(p config.Partner, h httpx.Config) (datafeed.Config, error) {
	cfg := datafeed.Config{BaseURL: p.BaseURL, Token: p.Cred("token"), HTTP: h,
		ClientCertFile: p.Options["client_cert_file"], ClientKeyFile: p.Options["client_key_file"], CAFile: p.Options["ca_file"],
		Map: datafeed.MapOptions{DefaultOrganizationID: p.Options["organization_id"]}}
	var err error
	if cfg.Session.Lifetime, err = optDuration(p.Options, "session_lifetime"); err != nil {
		return cfg, err
	}
	if cfg.Session.RenewBefore, err = optDuration(p.Options, "session_renew_before"); err != nil {
		return cfg, err
	}
	for _, sc := range strings.Split(p.Options["session_scopes"], ",") {
		if sc = strings.TrimSpace(sc); sc != "" {
			cfg.Scopes = append(cfg.Scopes, sc)
		}
	}
	for field := range datafeed.Enums {
		v, ok := p.Options["map_"+field]
		if !ok {
			continue
		}
		m, err := datafeed.ParseCodes(field, v)
		if err != nil {
			return cfg, fmt.Errorf("options.map_%s: %w", field, err)
		}
		if cfg.Map.Codes == nil {
			cfg.Map.Codes = map[string]map[string]string{}
		}
		cfg.Map.Codes[field] = m
	}
	if v := p.Options["default_codes"]; v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("options.default_codes: %q is not true or false", v)
		}
		cfg.Map.NoDefaultCodes = !on
	}
	return cfg, nil
}

func optDuration(opts map[string]string, key string) (time.Duration, error) {
	v, ok := opts[key]
	if !ok || v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("options.%s: %q is not a duration", key, v)
	}
	return d, nil
}
