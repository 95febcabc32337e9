package partners_test

import (
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/partners"
)

// Every partner's demo settings pass its own schema, and every partner
// refuses an option it does not know, both in config check and when its
// client is built.
func TestEveryRegistrationChecksItsOptions(t *testing.T) {
	schemas := map[string]config.Schema{}
	for _, s := range partners.Schemas() {
		schemas[s.Name] = s
	}
	if len(schemas) != len(partners.Names()) || len(schemas) == 0 {
		t.Fatalf("%d schemas for partners %v", len(schemas), partners.Names())
	}
	for _, sp := range partners.All() {
		t.Run(sp.Name, func(t *testing.T) {
			base := "https://" + sp.Name + ".example" + sp.BasePath
			p := config.Partner{BaseURL: base, Credentials: map[string]config.Secret{}, Options: map[string]string{}}
			creds := map[string]bool{}
			for k, v := range sp.DemoCredentials {
				p.Credentials[k] = config.Secret{Value: v}
				creds[k] = true
			}
			for k, v := range sp.DemoOptions {
				p.Options[k] = strings.ReplaceAll(v, "{base}", base)
			}
			if es := schemas[sp.Name].CheckOptions(p.Options, creds); len(es) > 0 {
				t.Fatalf("demo options refused: %v", es)
			}
			if _, err := sp.Build(p, partners.HTTPConfig(p)); err != nil {
				t.Fatalf("build with the demo settings: %v", err)
			}
			p.Options["no_such_option"] = "1"
			es := schemas[sp.Name].CheckOptions(p.Options, creds)
			if len(es) != 1 || es[0].Path != "options.no_such_option" || !strings.Contains(es[0].Msg, "unknown option") {
				t.Fatalf("config check of an unknown option: %v", es)
			}
			if _, err := sp.Build(p, partners.HTTPConfig(p)); err == nil || !strings.Contains(err.Error(), "no_such_option") {
				t.Fatalf("build with an unknown option: %v", err)
			}
		})
	}
}
