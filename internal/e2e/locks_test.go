package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/pgtest"
	"github.com/northwind-data/etl/internal/sandbox/faults"
)

// waitUntil polls cond (a condition, not a timing) for at most d.
func (e *env) waitUntil(d time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// clubreadyOnce asserts ClubReady holds every profile the checkpoint
// says it has, once.
func (e *env) clubreadyOnce() {
	e.t.Helper()
	for _, sp := range partners.All() {
		if sp.Name != "clubready" {
			continue
		}
		want := e.scalar(`SELECT count(*) FROM sync_state WHERE provider = $1 AND entity_key LIKE $2`, sp.Name, sp.EntityPrefix+"%")
		got, dups := sp.Count(e.sb.Partners[sp.Name])
		if dups != 0 || int64(got) != want || want == 0 {
			e.t.Errorf("clubready holds %d profiles with %d duplicates; the checkpoint says %d", got, dups, want)
		}
	}
}

func (e *env) text(sql string) string {
	e.t.Helper()
	var s string
	if err := e.pool.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func (e *env) setConfig(pattern, repl string) {
	e.t.Helper()
	cfg, err := os.ReadFile(e.cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg = regexp.MustCompile(pattern).ReplaceAll(cfg, []byte(repl))
	if err := os.WriteFile(e.cfgPath, cfg, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// Issue 17 row 1: while a ClubReady run is in progress, every other run
// that would deliver to ClubReady is refused with exit 4, however it
// differs: more partners, a shard, another spelling of the export's
// path, a Postgres source. The first run delivers every profile once.
func TestOverlappingRunsOfAPartnerAreRefused(t *testing.T) {
	e := newEnv(t, 120, map[string]faults.Config{"clubready": {Latency: 80 * time.Millisecond}})
	link := filepath.Join(t.TempDir(), "export")
	if err := os.Symlink(e.input, link); err != nil {
		t.Fatal(err)
	}
	src, _ := pgtest.BankTables(t, e.input)
	pgCfg := filepath.Join(t.TempDir(), "pg.yaml")
	cfg, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = regexp.MustCompile(`(?m)^source: .*$`).ReplaceAll(cfg, []byte("source: {type: postgres, postgres: {url: {env: E2E_SOURCE_URL}, customers: bank.customers, cards: bank.cards}}"))
	if err := os.WriteFile(pgCfg, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	e.envv = append(e.envv, "E2E_SOURCE_URL="+src)

	first, out := e.start("--providers", "clubready")
	defer func() {
		if first.ProcessState == nil {
			kill(first)
		}
	}()
	e.waitUntil(30*time.Second, "first run delivering", func() bool {
		return e.scalar(`SELECT count(*) FROM ledger WHERE provider = 'clubready'`) > 0
	})
	for _, args := range [][]string{
		{"run", "--config", e.cfgPath, "--progress", "none", "--providers", "clubready,q2open"},
		{"run", "--config", e.cfgPath, "--progress", "none", "--providers", "clubready", "--shard", "0/4"},
		{"run", "--config", e.cfgPath, "--progress", "none", "--providers", "q2open,clubready", "--source-dir", link},
		{"run", "--config", pgCfg, "--progress", "none", "--providers", "clubready"},
	} {
		r := e.run(args...)
		if r.code != 4 || !strings.Contains(r.stderr, "partner clubready") || !strings.Contains(r.stderr, "locked by run") {
			t.Errorf("%v beside the running ClubReady run: exit %d, want 4 naming clubready and its holder\n%s", args[3:], r.code, tail(r.stderr, 1500))
		}
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v\n%s", err, tail(out.String(), 3000))
	}
	if n := e.scalar(`SELECT count(*) FROM runs`); n != 1 {
		t.Errorf("%d runs recorded; the refused runs must record none", n)
	}
	e.clubreadyOnce()
	for _, sp := range partners.All() {
		if sp.Name == "q2open" {
			if got, _ := sp.Count(e.sb.Partners[sp.Name]); got != 0 {
				t.Errorf("a refused run sent %d records to q2open", got)
			}
		}
	}
}

// Issue 17 row 2: the lock's session is killed mid-run (a failover, an
// idle timeout, pg_terminate_backend) and a second run starts at once.
// The first notices within its heartbeat and stops (exit 1, "run lock
// lost"); the second takes over once the first has stopped; ClubReady
// ends with every profile once.
func TestKilledLockSessionMidRunThenSecondRunDeliversOnce(t *testing.T) {
	e := newEnv(t, 200, map[string]faults.Config{"clubready": {Latency: 30 * time.Millisecond}})
	e.setConfig(`(?m)^run: \{grace_period: 5s\}$`, "run: {grace_period: 5s, lock_heartbeat: 200ms}")
	first, out := e.start("--providers", "clubready")
	defer func() {
		if first.ProcessState == nil {
			kill(first)
		}
	}()
	e.waitUntil(30*time.Second, "first run delivering", func() bool {
		return e.scalar(`SELECT count(*) FROM ledger WHERE provider = 'clubready' AND operation <> 'intent'`) >= 10
	})
	// The run's lock session is the one holding advisory locks.
	if n := e.scalar(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM (SELECT DISTINCT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) l) x`); n != 1 {
		t.Fatalf("terminated %d lock sessions, want 1", n)
	}
	second := e.runETL("--providers", "clubready")
	err := first.Wait()
	code := first.ProcessState.ExitCode()
	if code == 0 || !strings.Contains(out.String(), "run lock lost") {
		t.Errorf("first run after its lock session was killed: exit %d (%v), want non-zero and \"run lock lost\"\n%s", code, err, tail(out.String(), 3000))
	}
	if second.code != 0 {
		t.Fatalf("second run: exit %d\n%s\n%s", second.code, second.stdout, tail(second.stderr, 3000))
	}
	byFirst := e.scalar(`SELECT count(*) FROM ledger WHERE run_id = (SELECT min(id) FROM runs) AND operation = 'create' AND outcome = 'ok'`)
	bySecond := e.scalar(`SELECT count(*) FROM ledger WHERE run_id = (SELECT max(id) FROM runs) AND operation = 'create' AND outcome = 'ok'`)
	t.Logf("profiles created by the first run %d, by the second %d; first run's status %s", byFirst, bySecond,
		e.text(`SELECT status FROM runs WHERE id = (SELECT min(id) FROM runs)`))
	if bySecond == 0 {
		t.Error("the second run created nothing: the first was not stopped mid-run, the test proves nothing")
	}
	e.clubreadyOnce()
	if n := e.scalar(`SELECT count(*) FROM (SELECT entity_key FROM ledger WHERE provider = 'clubready' AND operation = 'create' AND outcome = 'ok'
		GROUP BY 1 HAVING count(*) > 1) x`); n != 0 {
		t.Errorf("%d ClubReady profiles created twice in the ledger", n)
	}
}
