package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI refuses such a directory before it opens the ledger.
func TestDryRunRefusesAnOpenDryRunOut(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "bodies")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	env := demoEnv(t)
	env["DATABASE_URL"] = "postgres://nobody@127.0.0.1:1/none?sslmode=disable"
	r := etl(t, env, "run", "--config", sampleConfig(t, nil), "--dry-run", "--dry-run-out", dir)
	if r.code != exitUsage || !strings.Contains(r.stderr, "--dry-run-out") || !strings.Contains(r.stderr, "mode 0755") {
		t.Fatalf("want exit %d refusing the 0755 directory, got %s", exitUsage, r)
	}
}

// `etl run` warns at start when the Postgres source, which reads card
// numbers, does not verify the server certificate (here it then stops at
// the unreachable ledger), and never prints the URL.
func TestRunWarnsOfAnUnverifiedPostgresSource(t *testing.T) {
	t.Parallel()
	env := demoEnv(t)
	env["SOURCE_DATABASE_URL"] = "postgres://reader:s3cretPw@bank-db.example:5432/core?sslmode=require"
	cfg := sampleConfig(t, func(s string) string {
		return strings.Replace(s, "  type: csv                 # csv | postgres\n", "  type: postgres\n  postgres: {url: {env: SOURCE_DATABASE_URL}, customers: c, cards: k}\n", 1)
	})
	r := etl(t, env, "run", "--config", cfg, "--progress", "none")
	if r.code == exitOK || !strings.Contains(r.stderr, "source.postgres.url") || !strings.Contains(r.stderr, "sslmode=require does not verify the server certificate") {
		t.Fatalf("want the warning on stderr before the ledger error, got %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, "s3cretPw") || strings.Contains(r.stdout+r.stderr, "bank-db") {
		t.Fatalf("the warning shows the source URL: %s", r)
	}
}
