package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/sandbox/faults"
)

// counts is load.Counts as runs.counts stores it (snake_case keys).
type counts struct {
	Create, Update, Deactivate, Unchanged int64
	MapRejected                           int64 `json:"map_rejected"`
	OK, Rejected, Failed, Uncertain       int64
	NotSent                               int64 `json:"not_sent"`
	NoUpdateAPI                           int64 `json:"not_sent_no_update_api"`
	Calls                                 int64
}

func (e *env) lastCounts() map[string]counts {
	e.t.Helper()
	var raw []byte
	if err := e.pool.QueryRow(t0ctx(), `SELECT counts FROM runs ORDER BY id DESC LIMIT 1`).Scan(&raw); err != nil {
		e.t.Fatal(err)
	}
	var c struct{ Partners map[string]counts }
	if err := json.Unmarshal(raw, &c); err != nil {
		e.t.Fatal(err)
	}
	return c.Partners
}

// lastCompared is how many customers the last run compared in full (the
// others it skipped by their fingerprint) and how many it read.
func (e *env) lastCompared() (compared, customers int64) {
	e.t.Helper()
	if err := e.pool.QueryRow(t0ctx(), `SELECT (counts->>'compared')::bigint, (counts->>'customers')::bigint FROM runs ORDER BY id DESC LIMIT 1`).Scan(&compared, &customers); err != nil {
		e.t.Fatal(err)
	}
	return compared, customers
}

// runAfterOneChange runs etl after one customer of the 120 changed and
// checks that it alone was compared in full beside the customers that
// always are (every other one skipped by its fingerprint), and that each
// partner only updated, at most two records. It returns the run's counts.
func (e *env) runAfterOneChange(always int64) map[string]counts {
	e.t.Helper()
	r := e.runETL()
	if r.code != 0 {
		e.t.Fatalf("changed run: exit %d\n%s", r.code, r.stdout)
	}
	if compared, read := e.lastCompared(); compared != always+1 || read != 120 {
		e.t.Errorf("after one change: %d of %d customers compared in full, want %d of 120", compared, read, always+1)
	}
	last := e.lastCounts()
	for _, sp := range partners.All() {
		// An update the partner has no API for is not a call at ClubReady;
		// at Q2 the client's cards are still reconciled by calls.
		if c := last[sp.Name]; c.Create != 0 || c.Calls > c.Update || c.Calls < c.Update-c.NoUpdateAPI || c.Update > 2 {
			e.t.Errorf("%s after one change: %+v", sp.Name, c)
		}
	}
	return last
}

// settled asserts a rerun finds nothing to do and every partner holds
// exactly what the checkpoint says: nothing missing, nothing twice.
func (e *env) settled() {
	e.t.Helper()
	r := e.runETL()
	if r.code != 0 {
		e.t.Fatalf("settling run: exit %d\n%s", r.code, r.stdout)
	}
	for name, c := range e.lastCounts() {
		if c.Create+c.Update+c.Calls != 0 || c.Unchanged == 0 {
			e.t.Errorf("%s: a rerun after completion still planned work: %+v", name, c)
		}
	}
	e.exactlyOnce()
}

func TestFullRunThenNightlyRerunsAreIncremental(t *testing.T) {
	e := newEnv(t, 120, nil)
	r := e.runETL()
	if r.code != 0 {
		t.Fatalf("first run: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 3000))
	}
	first := e.lastCounts()
	for _, sp := range partners.All() {
		if first[sp.Name].OK == 0 {
			t.Errorf("%s delivered nothing: %+v", sp.Name, first[sp.Name])
		}
	}
	// Unchanged input: zero partner calls, and the summary says so.
	r = e.runETL()
	if r.code != 0 || !strings.Contains(r.stdout, "no partner calls were needed") {
		t.Fatalf("unchanged rerun: exit %d\n%s", r.code, r.stdout)
	}
	e.exactlyOnce()
	// From the next run on, customers are skipped by their fingerprint,
	// before decoding; those with a reject somewhere (bad phone for one
	// partner, say) are compared in full every run.
	r = e.runETL()
	always, read := e.lastCompared()
	if r.code != 0 || !strings.Contains(r.stdout, "skipped by fingerprint") || always >= read/2 {
		t.Fatalf("second unchanged rerun: exit %d, %d of %d compared in full\n%s", r.code, always, read, r.stdout)
	}
	for name, c := range e.lastCounts() {
		if c.Calls != 0 || c.Unchanged != first[name].OK {
			t.Errorf("%s: second unchanged rerun: %+v, want 0 calls and %d unchanged", name, c, first[name].OK)
		}
	}

	// One changed customer (postal code and e-mail, so that every
	// customer-level partner carries a change): exactly one update call
	// for that record, and nothing else sent.
	editCSV(t, filepath.Join(e.input, "customers.csv"), "C0000003", "postal_code", "10001")
	editCSV(t, filepath.Join(e.input, "customers.csv"), "C0000003", "email", "changed.c3@example.com")
	after := e.runAfterOneChange(always)
	for _, sp := range partners.All() {
		if c := after[sp.Name]; sp.EntityPrefix == "customer/" && c.Update != 1 {
			t.Errorf("%s: %d updates after one customer changed, want 1", sp.Name, c.Update)
		}
	}

	// A removed customer is deactivated where the partner supports it.
	saved := map[string][]byte{}
	for _, f := range []string{"customers.csv", "cards.csv"} {
		saved[f], _ = os.ReadFile(filepath.Join(e.input, f))
	}
	removeRows(t, e.input, "C0000005")
	r = e.runETL()
	if r.code != 0 {
		t.Fatalf("removal run: exit %d\n%s", r.code, r.stdout)
	}
	c := e.lastCounts()
	deact := 0
	for _, sp := range partners.All() {
		if sp.Deactivates {
			deact++
			if c[sp.Name].Deactivate != 1 {
				t.Errorf("%s: deactivated %d, want 1", sp.Name, c[sp.Name].Deactivate)
			}
			if n := e.scalar(`SELECT count(*) FROM sync_state WHERE provider = $1 AND entity_key = 'customer/C0000005' AND NOT active`, sp.Name); n != 1 {
				t.Errorf("%s: sync_state does not mark C0000005 inactive", sp.Name)
			}
		} else if c[sp.Name].Deactivate != 0 {
			t.Errorf("%s cannot deactivate but did %d", sp.Name, c[sp.Name].Deactivate)
		}
	}
	if deact == 0 {
		t.Error("no partner supports deactivation: the test proves nothing")
	}

	// Back in the export: reactivated by an update. Gone again: a second
	// deactivation that the partner must not mistake for a replay of the
	// first (its idempotency key differs).
	for f, b := range saved {
		if err := os.WriteFile(filepath.Join(e.input, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r = e.runETL(); r.code != 0 {
		t.Fatalf("reactivation run: exit %d\n%s", r.code, r.stdout)
	}
	// Its rows are byte for byte those of its last delivery, but its
	// fingerprint went with the deactivation: it is compared, and sent.
	if compared, _ := e.lastCompared(); compared != always+1 {
		t.Errorf("reactivation run compared %d customers in full, want %d (C0000005 too)", compared, always+1)
	}
	for _, sp := range partners.All() {
		if c := e.lastCounts()[sp.Name]; sp.Deactivates && c.Update < 1 {
			t.Errorf("%s: C0000005 came back but was not reactivated: %+v", sp.Name, c)
		}
	}
	removeRows(t, e.input, "C0000005")
	if r = e.runETL(); r.code != 0 {
		t.Fatalf("second removal: exit %d\n%s", r.code, r.stdout)
	}
	c = e.lastCounts()
	for _, sp := range partners.All() {
		if sp.Deactivates && c[sp.Name].Deactivate != 1 {
			t.Errorf("%s: second deactivation %d, want 1", sp.Name, c[sp.Name].Deactivate)
		}
	}
	id := e.scalar(`SELECT count(*) FROM ledger WHERE provider = 'synctera' AND operation = 'deactivate' AND outcome = 'ok'`)
	keys := e.scalar(`SELECT count(DISTINCT idempotency_key) FROM ledger WHERE provider = 'synctera' AND operation = 'deactivate'`)
	if id != 2 || keys != 2 {
		t.Errorf("synctera deactivations %d with %d distinct keys, want 2 and 2", id, keys)
	}
	if st := e.state("synctera"); !strings.Contains(fmt.Sprint(st), "INACTIVE") {
		t.Error("synctera does not show the customer INACTIVE after the second removal")
	}
}

func TestSecondConcurrentRunExitsLocked(t *testing.T) {
	e := newEnv(t, 60, map[string]faults.Config{"datafeed": {Latency: 300 * time.Millisecond}})
	c, out := e.start()
	// Wait until the first run holds the lock (its run row exists).
	deadline := time.Now().Add(20 * time.Second)
	for e.scalar(`SELECT count(*) FROM runs WHERE status = 'running'`) == 0 {
		if time.Now().After(deadline) {
			kill(c)
			t.Fatalf("first run never started:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	reqs := e.sb.Faults["q2open"].Stats().Requests
	r := e.runETL()
	if r.code != 4 || !strings.Contains(r.stderr, "in progress") {
		t.Errorf("second run: exit %d, stderr %s; want 4 (locked)", r.code, r.stderr)
	}
	if e.scalar(`SELECT count(*) FROM runs`) != 1 {
		t.Error("the locked run must not record a run")
	}
	_ = reqs
	if err := c.Wait(); err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	e.settled()
}

func TestSIGTERMStopsCleanlyAndTheRerunCompletes(t *testing.T) {
	all := faults.Config{Latency: 50 * time.Millisecond}
	e := newEnv(t, 200, everyPartner(all))
	c, out := e.start()
	time.Sleep(800 * time.Millisecond)
	_ = c.Process.Signal(syscall.SIGTERM)
	err := c.Wait()
	code := c.ProcessState.ExitCode()
	if code != 3 {
		t.Fatalf("after SIGTERM: exit %d (%v), want 3 (partial)\n%s", code, err, tail(out.String(), 2000))
	}
	if n := e.scalar(`SELECT count(*) FROM runs WHERE status = 'cancelled'`); n != 1 {
		t.Fatalf("the cancelled run is not recorded as cancelled")
	}
	for _, sp := range partners.All() {
		e.sb.Faults[sp.Name].Set(faults.Config{})
	}
	e.rerunUntilDone(3)
	e.settled()
}

// killer kills the etl process from inside a sandbox, right after the
// partner committed and before the answer leaves: the worst moment.
type killer struct {
	mu    sync.Mutex
	pid   int
	after int
	n     int
}

// killedAfterCommits runs etl with extra and kills it (SIGKILL, so
// nothing is flushed) right after the partner behind inj commits its nth
// request from now on: the partner has it, the ledger cannot. It returns
// the run's exit code and clears the hook.
func (e *env) killedAfterCommits(inj *faults.Injector, n int, extra ...string) int {
	e.t.Helper()
	k := killer{after: n}
	inj.AfterCommit(func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		k.n++
		if k.n == k.after && k.pid != 0 {
			_ = syscall.Kill(k.pid, syscall.SIGKILL)
			time.Sleep(50 * time.Millisecond)
		}
	})
	defer inj.AfterCommit(nil)
	c, _ := e.start(extra...)
	k.mu.Lock()
	k.pid = c.Process.Pid
	k.mu.Unlock()
	_ = c.Wait()
	return c.ProcessState.ExitCode()
}

func TestChaosSIGKILLAtRandomMomentsThenRerunsDeliverExactlyOnce(t *testing.T) {
	kills := 3
	if v := os.Getenv("ETL_CHAOS_KILLS"); v != "" {
		kills = atoi(v)
	}
	all := faults.Config{Latency: 5 * time.Millisecond, Jitter: 10 * time.Millisecond}
	e := newEnv(t, 150, everyPartner(all))
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < kills; i++ {
		c, _ := e.start()
		time.Sleep(time.Duration(100+rng.IntN(1200)) * time.Millisecond)
		kill(c)
	}
	e.rerunUntilDone(4)
	e.settled()
}

func TestKillBetweenPartnerCommitAndLedgerWrite(t *testing.T) {
	for _, sp := range partners.All() {
		t.Run(sp.Name, func(t *testing.T) {
			e := newEnv(t, 120, nil)
			e.sb.Faults[sp.Name].Set(faults.Config{})
			if code := e.killedAfterCommits(e.sb.Faults[sp.Name], 2, "--providers", sp.Name); code == 0 {
				t.Fatal("the run was not killed")
			}
			r := e.runETL("--providers", sp.Name)
			if r.code != 0 {
				t.Fatalf("rerun: exit %d\n%s", r.code, r.stdout)
			}
			got, dups := sp.Count(e.sb.Partners[sp.Name])
			want := e.scalar(`SELECT count(*) FROM sync_state WHERE provider = $1 AND entity_key LIKE $2`, sp.Name, sp.EntityPrefix+"%")
			if dups != 0 || int64(got) != want {
				t.Fatalf("after kill between commit and ledger write: partner holds %d (dups %d), checkpoint %d", got, dups, want)
			}
		})
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
