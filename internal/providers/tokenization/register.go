package tokenization

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/verify"
)

// Options are ShieldConex's config options (partners.tokenization.options).
type Options struct {
	PartnerID   int    `option:"partner_id"`
	PartnerName string `option:"partner_name"`
	NamePrefix  string `option:"name_prefix"`
	PageSize    int    `option:"page_size"`
	// Auth is basic (username and password) or hmac (username and secret).
	Auth string `option:"auth"`
	// HMACSecretEncoding is base64 (default: the partner's generator
	// decodes the secret, unconfirmed) or raw.
	HMACSecretEncoding string `option:"hmac_secret_encoding"`
}

// Validate checks the enums and that the chosen auth has its credentials.
func (o *Options) Validate(creds partner.Credentials) error {
	var errs []error
	switch o.Auth {
	case "", AuthBasic:
		if !creds.Has("password") {
			errs = append(errs, partner.Invalid("auth", "basic (the default) needs credentials.password (or auth: hmac with credentials.secret)"))
		}
	case AuthHMAC:
		if !creds.Has("secret") {
			errs = append(errs, partner.Invalid("auth", "hmac needs credentials.secret"))
		}
	default:
		errs = append(errs, partner.Invalid("auth", "%q: want basic or hmac", o.Auth))
	}
	switch o.HMACSecretEncoding {
	case "", "base64", "raw":
	default:
		errs = append(errs, partner.Invalid("hmac_secret_encoding", "%q: want base64 or raw", o.HMACSecretEncoding))
	}
	if o.PartnerID < 0 {
		errs = append(errs, partner.Invalid("partner_id", "must not be negative"))
	}
	if o.PartnerID == 0 && strings.TrimSpace(o.PartnerName) == "" {
		errs = append(errs, partner.Invalid("partner_id", "a partner id or partner_name is required"))
	}
	if o.PageSize < 0 {
		errs = append(errs, partner.Invalid("page_size", "must not be negative"))
	}
	return errors.Join(errs...)
}

var options = partner.OptionsOf[Options]()

// Registration describes ShieldConex to internal/partners.
func Registration() partner.Registration {
	return partner.Registration{
		Name: Name,
		// username always; password for auth basic, secret for auth hmac
		// (Options.Validate checks the pair).
		Credentials:         []string{"username"},
		OptionalCredentials: []string{"password", "secret"},
		Options:             options,
		DemoCredentials: map[string]string{"username": "sandbox-user", "password": "sandbox-password",
			"secret": "c2FuZGJveC1obWFjLXNlY3JldA=="}, // base64 of "sandbox-hmac-secret"
		DemoOptions: map[string]string{"partner_id": "792", "partner_name": "partnerName", "auth": "hmac"},
		Build: func(p config.Partner, h httpx.Config) (partner.Provider, error) {
			o, err := options.Decode(p)
			if err != nil {
				return nil, err
			}
			return New(Config{BaseURL: p.BaseURL, Auth: o.Auth, Username: p.Cred("username"), Password: p.Cred("password"),
				Secret: p.Cred("secret"), SecretBase64: o.HMACSecretEncoding != "raw",
				PartnerID: o.PartnerID, PartnerName: o.PartnerName, NamePrefix: o.NamePrefix, PageSize: o.PageSize, HTTP: h})
		},
		Sandbox: func(c map[string]string) http.Handler {
			return NewSandbox(SandboxOptions{Username: c["username"], Password: c["password"],
				HMACSecret: c["secret"], HMACSecretBase64: true})
		},
		EntityPrefix: partner.CustomerPrefix,
		Deactivates:  true,
		List: func(p partner.Provider) verify.Lister {
			c := p.(*Client)
			return func(ctx context.Context, fn func(verify.Remote) error) error {
				return c.ListAll(ctx, func(s ClientSummary) error {
					key := c.EntityKey(s.Name)
					if key == "" {
						return nil // not one of ours
					}
					return fn(verify.Remote{ID: strconv.Itoa(s.ID), Key: key, Active: s.IsActive})
				})
			}
		},
		Count: func(h http.Handler) (int, int) {
			st := h.(*Sandbox).State()
			return len(st.Clients), st.Totals.Duplicates
		},
	}
}
