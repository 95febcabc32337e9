package datafeed

import (
	"errors"
	"net/http"
	"time"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
)

// Options are the data feed's config options (partners.datafeed.options).
type Options struct {
	OrganizationID string `option:"organization_id"`
	// Mutual TLS: the certificate and key go together.
	ClientCertFile     string        `option:"client_cert_file"`
	ClientKeyFile      string        `option:"client_key_file"`
	CAFile             string        `option:"ca_file"`
	SessionScopes      []string      `option:"session_scopes"`
	SessionLifetime    time.Duration `option:"session_lifetime"`
	SessionRenewBefore time.Duration `option:"session_renew_before"`
	// Map* map a bank's codes onto an enum's published values
	// ("CHK=DDA,SV=SAV"; see ParseCodes).
	MapEnrollmentOptIn string `option:"map_enrollment_opt_in"`
	MapAlertOptIn      string `option:"map_alert_opt_in"`
	MapTargeting       string `option:"map_targeting_indicator"`
	MapAccountStatus   string `option:"map_account_status"`
	MapAccountType     string `option:"map_account_type"`
	DefaultCodes       *bool  `option:"default_codes"` // nil: on
	codes              map[string]map[string]string
}

func (o *Options) mappings() map[string]string {
	return map[string]string{FieldEnrollmentOptIn: o.MapEnrollmentOptIn, FieldAlertOptIn: o.MapAlertOptIn,
		FieldTargeting: o.MapTargeting, FieldAccountStatus: o.MapAccountStatus, FieldAccountType: o.MapAccountType}
}

// Validate parses the code maps and checks the mTLS pair.
func (o *Options) Validate(partner.Credentials) error {
	var errs []error
	if (o.ClientCertFile == "") != (o.ClientKeyFile == "") {
		missing := "client_key_file"
		if o.ClientCertFile == "" {
			missing = "client_cert_file"
		}
		errs = append(errs, partner.Invalid(missing, "required with %s: client_cert_file and client_key_file go together (mutual TLS)",
			map[string]string{"client_key_file": "client_cert_file", "client_cert_file": "client_key_file"}[missing]))
	}
	for field, v := range o.mappings() {
		if v == "" {
			continue
		}
		m, err := ParseCodes(field, v)
		if err != nil {
			errs = append(errs, partner.Invalid("map_"+field, "%v", err))
			continue
		}
		if o.codes == nil {
			o.codes = map[string]map[string]string{}
		}
		o.codes[field] = m
	}
	return errors.Join(errs...)
}

var options = partner.OptionsOf[Options]()

// Registration describes the data feed to internal/partners.
func Registration() partner.Registration {
	return partner.Registration{
		Name: Name,
		// Sessions are started with the client certificate alone; a token
		// is only for a proxy or sandbox that hands out a fixed one.
		// The demo and the e2e tests start real sessions against the
		// sandbox, so they give none.
		OptionalCredentials: []string{"token"},
		Options:             options,
		Build: func(p config.Partner, h httpx.Config) (partner.Provider, error) {
			o, err := options.Decode(p)
			if err != nil {
				return nil, err
			}
			cfg := Config{BaseURL: p.BaseURL, Token: p.Cred("token"), HTTP: h,
				ClientCertFile: o.ClientCertFile, ClientKeyFile: o.ClientKeyFile, CAFile: o.CAFile, Scopes: o.SessionScopes,
				Map: MapOptions{DefaultOrganizationID: o.OrganizationID, Codes: o.codes, NoDefaultCodes: o.DefaultCodes != nil && !*o.DefaultCodes}}
			cfg.Session.Lifetime, cfg.Session.RenewBefore = o.SessionLifetime, o.SessionRenewBefore
			return New(cfg)
		},
		Sandbox: func(c map[string]string) http.Handler {
			return NewSandbox(SandboxOptions{Token: c["token"]})
		},
		DemoOptions:  map[string]string{"organization_id": "50004"},
		EntityPrefix: partner.CustomerPrefix,
		Count: func(h http.Handler) (int, int) {
			// The feed keeps customers by sourceCustomerId: a resend is an
			// upsert, never a second customer.
			return len(h.(*Sandbox).State().Customers), 0
		},
	}
}
