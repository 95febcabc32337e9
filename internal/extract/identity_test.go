package extract_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/extract"
)

// One export reached by several spellings of its path has one identity.
func TestCSVIdentityResolvesSpellings(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "exports", "bank")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "current")
	if err := os.Symlink(filepath.Join(root, "exports"), link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(root, "exports"))
	want, err := extract.CSVIdentity(real)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"bank", "./bank/", filepath.Join(link, "bank"), filepath.Join(root, "exports", "..", "current", "bank")} {
		got, err := extract.CSVIdentity(dir)
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", dir, got, err, want)
		}
	}
	if _, err := extract.CSVIdentity(filepath.Join(root, "missing")); err == nil {
		t.Error("a missing directory has no identity")
	}
}

// A Postgres source is named by server, database and queries; not by
// credentials, options or how the URL is written.
func TestPostgresIdentity(t *testing.T) {
	id := func(url, cust, cards string) string {
		t.Helper()
		s, err := extract.PostgresIdentity(url, cust, cards)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := id("postgres://etl:secret@db.internal:5432/bank?sslmode=disable", "customers", "cards")
	if strings.Contains(base, "secret") || strings.Contains(base, "etl@") || !strings.HasPrefix(base, "postgres:db.internal:5432/bank ") {
		t.Fatalf("identity %q", base)
	}
	if same := id("host=db.internal dbname=bank user=other password=x", "customers", "cards"); same != base {
		t.Errorf("keyword form: %q, want %q", same, base)
	}
	for _, other := range []string{
		id("postgres://etl@db.internal:5433/bank", "customers", "cards"),
		id("postgres://etl@db.internal:5432/bank2", "customers", "cards"),
		id("postgres://etl@db.internal:5432/bank", "SELECT * FROM customers WHERE region = 'EU'", "cards"),
		id("postgres://etl@db.internal:5432/bank", "customers", "cards_v2"),
	} {
		if other == base {
			t.Errorf("%q names the same source as the base", other)
		}
	}
	if _, err := extract.PostgresIdentity("postgres://u:pw@[bad", "c", "d"); err == nil || strings.Contains(err.Error(), "pw") {
		t.Errorf("bad URL: %v", err)
	}
}
