package config_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/config"
)

// A URL given on the command line (--database-url) resolves as given and
// is not an inline secret even where those are forbidden: cmd/etl needs
// no hand-off through an environment variable.
func TestGivenSecret(t *testing.T) {
	t.Setenv("ETL_FORBID_INLINE_SECRETS", "true")
	s := config.Given("postgres://etl@db/etl")
	if !s.IsSet() {
		t.Fatal("a given secret is not set")
	}
	if v, err := s.Resolve(); err != nil || v != "postgres://etl@db/etl" {
		t.Fatalf("Resolve = %q, %v", v, err)
	}
	if inline := (config.Secret{Value: "x"}); func() error { _, err := inline.Resolve(); return err }() == nil {
		t.Fatal("an inline value resolves although inline secrets are forbidden")
	}
}
