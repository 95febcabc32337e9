package e2e

import (
	"context"
	"strings"
	"testing"
)

// The binary says which build it is, and every run records the same line,
// so a ledger row can be traced to the code that wrote it.
func TestVersionIsRecordedInRuns(t *testing.T) {
	e := newEnv(t, 5, nil)
	v := e.run("version")
	if v.code != 0 {
		t.Fatalf("etl version: exit %d: %s", v.code, v.stderr)
	}
	first, _, _ := strings.Cut(v.stdout, "\n")
	line, ok := strings.CutPrefix(first, "etl ")
	if !ok || line == "" || strings.Contains(line, "dev") && !strings.Contains(line, "devel") {
		t.Fatalf("etl version printed %q", v.stdout)
	}
	for _, want := range []string{"commit", "dirty", "go "} {
		if !strings.Contains(v.stdout, want) {
			t.Errorf("etl version does not say %q: %s", want, v.stdout)
		}
	}
	if r := e.runETL(); r.code != 0 {
		t.Fatalf("run: exit %d: %s", r.code, tail(r.stderr, 20))
	}
	var got string
	if err := e.pool.QueryRow(context.Background(), `SELECT version FROM runs ORDER BY id DESC LIMIT 1`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != line {
		t.Errorf("runs.version = %q, etl version says %q", got, line)
	}
}
