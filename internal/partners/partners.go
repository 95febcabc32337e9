// Package partners is the one place that knows every partner package: it
// lists their registrations, gives config validation their schemas, and
// builds clients from config and sandboxes for `etl sandbox`. Adding a
// partner means one line in registrations and nothing else outside its
// own package (docs/design.md, "Adding a partner").
package partners

import (
	"fmt"
	"sort"
	"strings"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/clubready"
	"github.com/northwind-data/etl/internal/providers/datafeed"
	"github.com/northwind-data/etl/internal/providers/q2open"
	"github.com/northwind-data/etl/internal/providers/synctera"
	"github.com/northwind-data/etl/internal/providers/tokenization"
)

// Spec describes one partner to the rest of the program.
type Spec = partner.Registration

// IntentInfo is what `etl intents list` shows of a journaled intent.
type IntentInfo = partner.IntentInfo

// registrations is every partner: adding one is one line here plus its
// own package.
var registrations = []func() partner.Registration{
	clubready.Registration,
	datafeed.Registration,
	q2open.Registration,
	synctera.Registration,
	tokenization.Registration,
}

var specs = func() map[string]Spec {
	m := map[string]Spec{}
	for _, r := range registrations {
		s := r()
		if _, dup := m[s.Name]; dup || s.Name == "" || s.Build == nil || s.Sandbox == nil {
			panic(fmt.Sprintf("partners: registration %q is empty, incomplete or a duplicate", s.Name))
		}
		m[s.Name] = s
	}
	return m
}()

// Schemas is what config validation needs of every partner:
// cfg.Validate(partners.Schemas()).
func Schemas() []config.Schema {
	var out []config.Schema
	for _, s := range All() {
		out = append(out, s.Schema())
	}
	return out
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
		// 0 takes httpx's default, the engine's default workers.
		Concurrency:    p.Concurrency,
		MaxConcurrency: p.MaxConcurrency,
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
