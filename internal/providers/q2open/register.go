package q2open

import (
	"net/http"
	"time"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
)

// Options are Q2 Open's config options (partners.q2open.options).
type Options struct {
	TokenTTL         time.Duration `option:"token_ttl"`
	ReconcileCreates bool          `option:"reconcile_creates"`
}

var options = partner.OptionsOf[Options]()

// Registration describes Q2 Open to internal/partners.
func Registration() partner.Registration {
	return partner.Registration{
		Name:            Name,
		Credentials:     []string{"token"},
		Options:         options,
		DemoCredentials: map[string]string{"token": "sandbox-q2open-token"},
		Build: func(p config.Partner, h httpx.Config) (partner.Provider, error) {
			o, err := options.Decode(p)
			if err != nil {
				return nil, err
			}
			return New(Config{BaseURL: p.BaseURL, Token: p.Cred("token"), TokenTTL: o.TokenTTL, ReconcileCreates: o.ReconcileCreates, HTTP: h})
		},
		Sandbox: func(c map[string]string) http.Handler {
			return NewSandbox(SandboxOptions{Token: c["token"]})
		},
		EntityPrefix: partner.CustomerPrefix,
		Count: func(h http.Handler) (int, int) {
			// Q2 dedups clients by identifier but keeps a card sent twice
			// as a second payment method: both are duplicates here.
			st := h.(*Sandbox).State()
			return len(st.Clients), st.Totals.DuplicateClients + max(st.Totals.DuplicatePaymentMethods, st.Totals.DuplicateAdds)
		},
	}
}
