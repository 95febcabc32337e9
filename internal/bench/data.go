package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/northwind-data/etl/internal/extract"
	"github.com/northwind-data/etl/internal/gen"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/transform"
)

// hmacKey is the bench's content-hash and fingerprint key (a sandbox-only
// value, like the demo credentials).
const hmacKey = "bench-hmac-key-0123456789abcdef-sandbox-only"

// dataset writes n generated customers (no deliberately bad rows: every
// record should reach every partner, so customers/s compares like with
// like) under dir/<n> once and returns the directory.
func dataset(dir string, n int) (string, error) {
	d := filepath.Join(dir, fmt.Sprintf("data-%d", n))
	if _, err := os.Stat(filepath.Join(d, "cards.csv")); err == nil {
		return d, nil
	}
	if _, err := gen.Write(d, gen.Options{Customers: n, CardsPerCustomer: 1.5, Seed: 42, Sorted: true, Now: time.Now()}); err != nil {
		return "", err
	}
	return d, nil
}

// loadCustomers reads and validates a dataset into memory, as `etl run`
// would see it, so the bare client and the naive loop start from the same
// canonical records without timing the CSV read.
func loadCustomers(ctx context.Context, dir string) ([]*model.Customer, error) {
	src, err := extract.OpenCSV(dir, extract.Options{Validator: transform.NewValidator([]byte(hmacKey), time.Now())})
	if err != nil {
		return nil, err
	}
	var out []*model.Customer
	_, err = src.Read(ctx, func(c *model.Customer) error { out = append(out, c); return nil },
		func(model.Reject) error { return nil })
	return out, err
}

// runConfig is an etl.yaml for every registered partner pointing at the
// sandbox at base, with secrets in environment variables (returned as
// KEY=VALUE) the way a deployment would have them.
type runConfig struct {
	Source      string
	Concurrency int
	// RatePerSec and Timeout apply to every partner when set.
	RatePerSec float64
	Timeout    time.Duration
	// PerPartner overrides Concurrency and RatePerSec for the partners
	// it names (the mixed mode gives each partner its own).
	PerPartner map[string]partnerRC
}

type partnerRC struct {
	Concurrency    int
	MaxConcurrency int
	RatePerSec     float64
}

func writeConfig(path, sandboxURL string, rc runConfig) ([]string, error) {
	env := []string{"BENCH_HMAC_KEY=" + hmacKey}
	var b strings.Builder
	fmt.Fprintf(&b, "source: {type: csv, dir: %q}\nledger: {url: {env: BENCH_DATABASE_URL}}\nhmac_key: {env: BENCH_HMAC_KEY}\nrun: {grace_period: 5s}\nallow_insecure_loopback: true\npartners:\n", rc.Source)
	for _, sp := range partners.All() {
		base := sandboxURL + "/" + sp.Name + sp.BasePath
		conc, rate, maxConc := rc.Concurrency, rc.RatePerSec, 0
		if pp, ok := rc.PerPartner[sp.Name]; ok {
			maxConc = pp.MaxConcurrency
			if pp.Concurrency > 0 {
				conc = pp.Concurrency
			}
			if pp.RatePerSec > 0 {
				rate = pp.RatePerSec
			}
		}
		fmt.Fprintf(&b, "  %s:\n    base_url: %q\n    concurrency: %d\n", sp.Name, base, conc)
		if maxConc > 0 {
			fmt.Fprintf(&b, "    max_concurrency: %d\n", maxConc)
		}
		if rate > 0 {
			fmt.Fprintf(&b, "    rate_per_sec: %g\n", rate)
		}
		if rc.Timeout > 0 {
			fmt.Fprintf(&b, "    timeout: %s\n", rc.Timeout)
		}
		fmt.Fprintf(&b, "    credentials:\n")
		for _, k := range sortedKeys(sp.DemoCredentials) {
			v := "BENCH_" + strings.ToUpper(sp.Name+"_"+k)
			fmt.Fprintf(&b, "      %s: {env: %s}\n", k, v)
			env = append(env, v+"="+sp.DemoCredentials[k])
		}
		if len(sp.DemoOptions) > 0 {
			fmt.Fprintf(&b, "    options:\n")
			for _, k := range sortedKeys(sp.DemoOptions) {
				fmt.Fprintf(&b, "      %s: %q\n", k, strings.ReplaceAll(sp.DemoOptions[k], "{base}", base))
			}
		}
	}
	return env, os.WriteFile(path, []byte(b.String()), 0o600)
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
