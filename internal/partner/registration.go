// Package partner is what a partner package hands the rest of the
// program: its Registration (name, credentials, typed options, client and
// sandbox constructors, what `etl verify` and the tests need), and the
// one option decoder every partner shares.
package partner

import (
	"net/http"
	"time"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/verify"
)

// Registration describes one partner to the rest of the program. Each
// partner package returns one from its Registration func; internal/partners
// lists them. Values are read-only after construction and safe to share.
type Registration struct {
	Name string
	// Credentials are required; OptionalCredentials may be given.
	Credentials         []string
	OptionalCredentials []string
	// Options is the schema of the partner's options struct (OptionsOf);
	// nil is NoOptions. Build decodes with the same schema.
	Options OptionSchema
	// Build makes the client from its config section (already validated
	// by config check; Build still refuses what it cannot use).
	Build func(p config.Partner, h httpx.Config) (Provider, error)
	// Sandbox makes the sandbox handler with the demo credentials.
	Sandbox func(creds map[string]string) http.Handler
	// DemoCredentials are what `etl sandbox` accepts by default.
	DemoCredentials map[string]string
	// DemoOptions are config options the sandbox needs ({base} = base URL).
	DemoOptions map[string]string
	// BasePath is appended to the sandbox mount to form the base URL
	// (Synctera's paths are relative to /v0).
	BasePath string
	// EntityPrefix is the entity key prefix of this partner's top-level
	// records ("customer/" or "card/").
	EntityPrefix string
	// Deactivates says the partner can switch off a vanished record.
	Deactivates bool
	// List walks the partner's records for `etl verify` (nil: the
	// partner's documented API has no list).
	List func(p Provider) verify.Lister
	// Count reads the sandbox state: records held and duplicates (tests).
	Count func(sandbox http.Handler) (records, duplicates int)
	// Intent reads the detail the partner journals before a call whose
	// effect cannot be looked up, for `etl intents list` (nil: the
	// partner journals nothing).
	Intent func(detail string) IntentInfo
}

// IntentInfo is what an operator needs from a journaled intent to find
// the record at the partner. Never card data beyond the last four.
type IntentInfo struct {
	Last4  string
	Member string
	// Expires is when the journaled detail stops being usable by a
	// rerun (a ClubReady token's 5 minutes); zero: unreadable.
	Expires time.Time
}

// NoOptions is the schema of a partner that takes no options: any option
// is unknown.
var NoOptions = OptionsOf[struct{}]()

// Schema is what config check needs to know of the partner.
func (r Registration) Schema() config.Schema {
	s := config.Schema{Name: r.Name, Credentials: r.Credentials, OptionalCredentials: r.OptionalCredentials}
	opts := r.Options
	s.CheckOptions = func(o map[string]string, creds map[string]bool) []config.FieldError {
		schema := opts
		if schema == nil {
			schema = NoOptions
		}
		var out []config.FieldError
		for _, e := range schema.Check(o, creds) {
			out = append(out, config.FieldError{Path: e.Field, Msg: e.Msg})
		}
		return out
	}
	return s
}
