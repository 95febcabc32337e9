package e2e

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/pgtest"
)

// The Postgres source takes the nightly fast path: an unchanged rerun
// skips every customer without a reject by its fingerprint, and one
// changed row in the bank's table is compared (and sent) alone.
func TestPostgresSourceNightlyRerunsSkipByFingerprint(t *testing.T) {
	e := newEnv(t, 120, nil)
	src, conn := pgtest.BankTables(t, e.input)
	cfg, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	pgSource := "source: {type: postgres, postgres: {url: {env: E2E_SOURCE_URL}, customers: bank.customers, cards: bank.cards}}"
	cfg = regexp.MustCompile(`(?m)^source: .*$`).ReplaceAll(cfg, []byte(pgSource))
	if err := os.WriteFile(e.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	e.envv = append(e.envv, "E2E_SOURCE_URL="+src)

	r := e.runETL()
	if r.code != 0 {
		t.Fatalf("first run: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 3000))
	}
	first := e.lastCounts()
	r = e.runETL()
	always, read := e.lastCompared()
	if r.code != 0 || !strings.Contains(r.stdout, "skipped by fingerprint") || read != 120 || always >= read/2 {
		t.Fatalf("unchanged rerun: exit %d, %d of %d compared in full\n%s", r.code, always, read, r.stdout)
	}
	for name, c := range e.lastCounts() {
		if c.Calls != 0 || c.Unchanged != first[name].OK {
			t.Errorf("%s: unchanged rerun: %+v, want 0 calls and %d unchanged", name, c, first[name].OK)
		}
	}
	e.exactlyOnce()

	if _, err := conn.Exec(context.Background(), `UPDATE bank.customers SET postal_code = '10001', email = 'changed.c3@example.com' WHERE customer_id = 'C0000003'`); err != nil {
		t.Fatal(err)
	}
	e.runAfterOneChange(always)
	e.exactlyOnce()
}
