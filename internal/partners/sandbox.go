package partners

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/northwind-data/etl/internal/sandbox/faults"
)

// Sandboxes is every partner sandbox on one handler: partner p lives under
// /p/, its state at /p/_sandbox/state and its fault control at
// /p/_sandbox/faults.
type Sandboxes struct {
	http.Handler
	Faults   map[string]*faults.Injector
	Partners map[string]http.Handler
}

// NewSandboxes builds every sandbox with its demo credentials, each behind
// its own fault injector configured from cfgs (zero Config = no faults).
func NewSandboxes(cfgs map[string]faults.Config) *Sandboxes {
	s := &Sandboxes{Faults: map[string]*faults.Injector{}, Partners: map[string]http.Handler{}}
	mux := http.NewServeMux()
	for _, sp := range All() {
		h := sp.Sandbox(sp.DemoCredentials)
		inj := faults.New(cfgs[sp.Name])
		s.Faults[sp.Name], s.Partners[sp.Name] = inj, h
		mux.Handle("/"+sp.Name+"/_sandbox/faults", inj.ControlHandler())
		mux.Handle("/"+sp.Name+"/", http.StripPrefix("/"+sp.Name, inj.Wrap(h)))
	}
	s.Handler = mux
	return s
}

// SandboxMux parses PARTNER=SPEC fault flags and builds the sandboxes.
func SandboxMux(specs []string) (http.Handler, error) {
	cfgs := map[string]faults.Config{}
	for _, s := range specs {
		name, spec, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("--faults %q: want PARTNER=SPEC", s)
		}
		if _, known := specs_(name); !known && name != "all" {
			return nil, fmt.Errorf("--faults: unknown partner %q (known: %s, or all)", name, strings.Join(Names(), ", "))
		}
		targets := []string{name}
		if name == "all" {
			targets = Names()
		}
		// Each flag sets only the keys it names, in order: a later "all"
		// does not undo an earlier partner's settings.
		for _, n := range targets {
			c, err := faults.ApplySpec(cfgs[n], spec)
			if err != nil {
				return nil, fmt.Errorf("--faults %s: %w", name, err)
			}
			cfgs[n] = c
		}
	}
	return NewSandboxes(cfgs), nil
}

func specs_(name string) (Spec, bool) { return Get(name) }
