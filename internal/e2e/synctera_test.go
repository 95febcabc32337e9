package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/providers/synctera"
	"github.com/northwind-data/etl/internal/sandbox/faults"
)

// editEveryCity changes every customer's city, so that every Synctera
// body (and, with content-keyed creates, every create key) changes.
func editEveryCity(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, "customers.csv")
	rows := readCSV(t, path)
	c := col(t, rows[0], "city")
	for _, r := range rows[1:] {
		r[c] = "Moved " + r[c]
	}
	writeCSV(t, path, rows)
}

// oneAttempt makes every Synctera call a single attempt, so that a lost
// answer ends the call uncertain instead of being replayed by a retry.
func oneAttempt(t *testing.T, e *env) {
	t.Helper()
	b, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "  synctera:\n", "  synctera:\n    max_attempts: 1\n", 1)
	if err := os.WriteFile(e.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSyncteraLostCreatesThenEveryCustomerChanged is issue 17 row 3: a
// create commits at Synctera, its answer is lost (or the process is
// killed before the ledger write), every customer's city changes, and the
// rerun must not create anyone a second time: not while Synctera still
// holds the keys, and not after it forgot them (7 days).
func TestSyncteraLostCreatesThenEveryCustomerChanged(t *testing.T) {
	sp, _ := partners.Get(synctera.Name)
	tests := []struct {
		name    string
		lose    func(t *testing.T, e *env)
		advance time.Duration
	}{
		{"answers lost", loseAnswers, 0},
		{"answers lost and keys forgotten", loseAnswers, 8 * 24 * time.Hour},
		{"killed after the 3rd commit", killAfterThirdCommit, 0},
		{"killed after the 3rd commit and keys forgotten", killAfterThirdCommit, 8 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, 40, nil)
			tt.lose(t, e)
			sb := e.sb.Partners[synctera.Name].(*synctera.Sandbox)
			lost := sb.State().Totals.Creates - int(e.scalar(`SELECT count(*) FROM sync_state WHERE provider = 'synctera'`))
			if lost == 0 {
				t.Fatal("no create committed without its outcome recorded: the test proves nothing")
			}
			editEveryCity(t, e.input)
			sb.AdvanceClock(tt.advance)
			r := e.runETL("--providers", synctera.Name)
			if r.code != 0 {
				t.Fatalf("rerun: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 2000))
			}
			got, dups := sp.Count(sb)
			want := e.scalar(`SELECT count(*) FROM sync_state WHERE provider = 'synctera'`)
			if dups != 0 || int64(got) != want {
				t.Fatalf("%d creates had lost their outcome; after the rerun Synctera holds %d customers (%d duplicates), the checkpoint %d",
					lost, got, dups, want)
			}
			if moved := e.scalar(`SELECT count(*) FROM ledger WHERE provider = 'synctera' AND outcome = 'ok' AND run_id = (SELECT max(id) FROM runs)`); moved != want {
				t.Errorf("the rerun delivered %d customers' new content, want %d", moved, want)
			}
			t.Logf("%d creates without a recorded outcome; rerun after every city changed: %d customers, 0 duplicates", lost, got)
		})
	}
}

// loseAnswers runs with half of Synctera's answers lost after it
// committed, one attempt per call.
func loseAnswers(t *testing.T, e *env) {
	t.Helper()
	oneAttempt(t, e)
	e.sb.Faults[synctera.Name].Set(faults.Config{DropRate: 0.5, Seed: 3})
	r := e.runETL("--providers", synctera.Name)
	if r.code == 0 {
		t.Fatalf("the run with lost answers exited 0:\n%s", r.stdout)
	}
	e.sb.Faults[synctera.Name].Set(faults.Config{})
}

// killAfterThirdCommit kills etl with SIGKILL right after Synctera
// committed its third create, before the answer leaves.
func killAfterThirdCommit(t *testing.T, e *env) {
	t.Helper()
	var mu sync.Mutex
	pid, n := 0, 0
	inj := e.sb.Faults[synctera.Name]
	inj.AfterCommit(func() {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == 3 && pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			time.Sleep(50 * time.Millisecond)
		}
	})
	c, _ := e.start("--providers", synctera.Name)
	mu.Lock()
	pid = c.Process.Pid
	mu.Unlock()
	_ = c.Wait()
	inj.AfterCommit(nil)
	if c.ProcessState.ExitCode() == 0 {
		t.Fatal("the run was not killed")
	}
}
