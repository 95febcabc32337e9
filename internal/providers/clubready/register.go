package clubready

import (
	"net/http"
	"strconv"
	"time"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
)

// Options are ClubReady's config options (partners.clubready.options).
type Options struct {
	// VaultURL is the Vault API's base URL (required).
	VaultURL     string        `option:"vault_url"`
	ForwardedFor string        `option:"forwarded_for"`
	MaxTokenAge  time.Duration `option:"max_token_age"`
}

// Validate checks what one field cannot say alone.
func (o *Options) Validate(partner.Credentials) error {
	if o.VaultURL == "" {
		return partner.Invalid("vault_url", "required (the Vault API's base URL)")
	}
	return nil
}

var options = partner.OptionsOf[Options]()

// Registration describes ClubReady to internal/partners.
func Registration() partner.Registration {
	return partner.Registration{
		Name:            Name,
		Credentials:     []string{"api_key", "vault_key"},
		Options:         options,
		DemoCredentials: map[string]string{"api_key": "sandbox-clubready-apikey", "vault_key": "sandbox-clubready-vaultkey"},
		DemoOptions:     map[string]string{"vault_url": "{base}", "forwarded_for": "203.0.113.10"},
		Build: func(p config.Partner, h httpx.Config) (partner.Provider, error) {
			o, err := options.Decode(p)
			if err != nil {
				return nil, err
			}
			return New(Config{BaseURL: p.BaseURL, ApiKey: p.Cred("api_key"), VaultURL: o.VaultURL,
				VaultKey: p.Cred("vault_key"), ForwardedFor: o.ForwardedFor, MaxTokenAge: o.MaxTokenAge, HTTP: h})
		},
		Sandbox: func(c map[string]string) http.Handler {
			return NewSandbox(SandboxOptions{ApiKey: c["api_key"], VaultKey: c["vault_key"]})
		},
		EntityPrefix: partner.CardPrefix,
		Count: func(h http.Handler) (int, int) {
			st := h.(*Sandbox).State()
			return len(st.Profiles), st.Duplicates
		},
		Intent: func(detail string) partner.IntentInfo {
			d := ParseIntent(detail)
			info := partner.IntentInfo{Last4: d.Last4}
			if d.Member > 0 {
				info.Member = strconv.Itoa(d.Member)
			}
			info.Expires, _ = d.Expires()
			return info
		},
	}
}
