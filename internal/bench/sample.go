package bench

import (
	"context"
	"os"
	"strings"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/partners"
)

// HMACKey is the key the bench hashes and fingerprints with.
func HMACKey() []byte { return []byte(hmacKey) }

// SampleCustomers generates n customers with the bench's generator
// settings and returns them read and validated, as the engine receives
// them (for the hot-path Go benchmarks).
func SampleCustomers(n int) ([]*model.Customer, error) {
	dir, err := os.MkdirTemp("", "etl-bench-sample-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	d, err := dataset(dir, n)
	if err != nil {
		return nil, err
	}
	return loadCustomers(context.Background(), d)
}

// OfflineProvider builds sp's client with its demo credentials and
// options against an address nothing listens on: enough to Map, never
// meant to Send.
func OfflineProvider(sp partners.Spec) (partner.Provider, error) {
	base := "http://127.0.0.1:9/" + sp.Name + sp.BasePath
	p := config.Partner{BaseURL: base, Credentials: map[string]config.Secret{}, Options: map[string]string{}}
	for k, v := range sp.DemoCredentials {
		p.Credentials[k] = config.Secret{Value: v}
	}
	for k, v := range sp.DemoOptions {
		p.Options[k] = strings.ReplaceAll(v, "{base}", base)
	}
	return sp.Build(p, partners.HTTPConfig(p))
}
