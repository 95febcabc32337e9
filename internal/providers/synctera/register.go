package synctera

import (
	"context"
	"net/http"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/verify"
)

// Registration describes Synctera to internal/partners. It takes no
// options.
func Registration() partner.Registration {
	return partner.Registration{
		Name:            Name,
		Credentials:     []string{"token"},
		Options:         partner.NoOptions,
		DemoCredentials: map[string]string{"token": "sandbox-synctera-token"},
		BasePath:        "/v0",
		Build: func(p config.Partner, h httpx.Config) (partner.Provider, error) {
			if _, err := partner.NoOptions.Decode(p); err != nil {
				return nil, err
			}
			return New(Config{BaseURL: p.BaseURL, Token: p.Cred("token"), HTTP: h})
		},
		Sandbox: func(c map[string]string) http.Handler {
			return NewSandbox(SandboxOptions{Token: c["token"]})
		},
		EntityPrefix: partner.CustomerPrefix,
		Deactivates:  true,
		List: func(p partner.Provider) verify.Lister {
			c := p.(*Client)
			return func(ctx context.Context, fn func(verify.Remote) error) error {
				return c.ListAll(ctx, func(cu Customer) error {
					// Synctera keeps no reference of ours, so customers are
					// matched by the id the ledger recorded.
					return fn(verify.Remote{ID: cu.ID, Active: cu.Status != "INACTIVE"})
				})
			}
		},
		Count: func(h http.Handler) (int, int) {
			st := h.(*Sandbox).State()
			return len(st.Customers), st.Totals.Duplicates
		},
	}
}
