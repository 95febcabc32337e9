package runlock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/pgtest"
	"github.com/northwind-data/etl/internal/runlock"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// plan is a run's lock request: partners, shard i/N (N 0: unsharded) and
// the source it reads.
type plan struct {
	partners string
	i, n     int
	source   string
}

func (p plan) opts() runlock.Options {
	return runlock.Options{Partners: strings.Split(p.partners, ","), ShardIndex: p.i, ShardCount: p.n, Source: p.source,
		Heartbeat: time.Hour} // these tests never need the heartbeat
}

func acquire(t *testing.T, pool *pgxpool.Pool, o runlock.Options) (*runlock.Lock, error) {
	t.Helper()
	l, err := runlock.Acquire(context.Background(), pool, o)
	if err == nil {
		t.Cleanup(l.Release)
	}
	return l, err
}

// Each rule, both ways round: the second run must be refused (and take
// nothing) exactly when the rule says the two may not run together.
func TestExclusionRules(t *testing.T) {
	t.Parallel()
	csv, pg := "csv:/exports/bank", "postgres:db:5432/bank"
	cases := []struct {
		name        string
		first, then plan
		excluded    bool
	}{
		{"same partners", plan{"clubready", 0, 0, csv}, plan{"clubready", 0, 0, csv}, true},
		{"partner sets overlap", plan{"clubready", 0, 0, csv}, plan{"clubready,q2open", 0, 0, csv}, true},
		{"partner sets overlap, other order", plan{"q2open,synctera,clubready", 0, 0, csv}, plan{"clubready", 0, 0, csv}, true},
		{"disjoint partner sets", plan{"clubready", 0, 0, csv}, plan{"q2open,synctera", 0, 0, csv}, false},
		{"unsharded beside a shard", plan{"clubready", 0, 0, csv}, plan{"clubready", 0, 4, csv}, true},
		{"a shard beside unsharded", plan{"clubready", 2, 4, csv}, plan{"clubready", 0, 0, csv}, true},
		{"shards with different N", plan{"clubready", 0, 4, csv}, plan{"clubready", 1, 2, csv}, true},
		{"shards with different N, same index", plan{"clubready", 0, 4, csv}, plan{"clubready", 0, 2, csv}, true},
		{"the same shard twice", plan{"clubready", 1, 4, csv}, plan{"clubready", 1, 4, csv}, true},
		{"same N, other index", plan{"clubready", 0, 4, csv}, plan{"clubready", 1, 4, csv}, false},
		{"different N on other partners", plan{"clubready", 0, 4, csv}, plan{"q2open", 1, 2, csv}, false},
		{"CSV beside Postgres, same partner", plan{"clubready", 0, 0, csv}, plan{"clubready", 0, 0, pg}, true},
		{"CSV beside Postgres, same shard", plan{"clubready", 3, 4, csv}, plan{"clubready", 3, 4, pg}, true},
	}
	pool := pgtest.NewPool(t) // one database; each case has partners of its own
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			own := func(p plan) plan {
				p.partners = strings.ReplaceAll(fmt.Sprintf("c%d-", i)+p.partners, ",", fmt.Sprintf(",c%d-", i))
				return p
			}
			c.first, c.then = own(c.first), own(c.then)
			first, err := acquire(t, pool, c.first.opts())
			if err != nil {
				t.Fatalf("first lock: %v", err)
			}
			_, err = acquire(t, pool, c.then.opts())
			switch {
			case c.excluded && !errors.Is(err, runlock.ErrLocked):
				t.Fatalf("%+v beside %+v: %v, want ErrLocked", c.then, c.first, err)
			case !c.excluded && err != nil:
				t.Fatalf("%+v beside %+v must be allowed: %v", c.then, c.first, err)
			}
			// Once the first is released the second always gets in.
			first.Release()
			if _, err := acquire(t, pool, c.then.opts()); err != nil && c.excluded {
				t.Fatalf("after release: %v", err)
			}
		})
	}
}

// A refused run takes none of its locks, and is told who holds the one
// it wanted.
func TestRefusedRunTakesNothingAndNamesTheHolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := ledger.FromPool(pool)
	held, err := acquire(t, pool, plan{"clubready", 0, 0, "csv:/a"}.opts())
	if err != nil {
		t.Fatal(err)
	}
	run, err := store.StartRun(ctx, ledger.RunInfo{Group: "g", Source: "csv:/a", Providers: []string{"clubready"}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := held.Bind(ctx, run); err != nil {
		t.Fatal(err)
	}
	_, err = acquire(t, pool, plan{"q2open,clubready,synctera", 0, 0, "postgres:x"}.opts())
	var he *runlock.HeldError
	if !errors.As(err, &he) {
		t.Fatalf("got %v, want a *HeldError", err)
	}
	host, _ := os.Hostname()
	if he.Partner != "clubready" || he.RunID != run || he.Host != host || he.PID != os.Getpid() || he.Source != "csv:/a" {
		t.Fatalf("holder = %+v; want clubready held by run %d on %s pid %d", he, run, host, os.Getpid())
	}
	if msg := err.Error(); !strings.Contains(msg, "clubready") || !strings.Contains(msg, "run ") {
		t.Fatalf("message %q does not name the partner and the run", msg)
	}
	// q2open sorts before clubready... and synctera after: neither may be
	// left held by the refused run.
	for _, p := range []string{"q2open", "synctera"} {
		if _, err := acquire(t, pool, plan{p, 0, 0, ""}.opts()); err != nil {
			t.Fatalf("%s is still held after a refused run: %v", p, err)
		}
	}
}

func TestOptionsAreValidated(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	for _, o := range []runlock.Options{
		{},
		{Partners: []string{"a", "a"}},
		{Partners: []string{"a"}, ShardIndex: 4, ShardCount: 4},
		{Partners: []string{"a"}, Heartbeat: -time.Second},
	} {
		if _, err := runlock.Acquire(context.Background(), pool, o); err == nil || errors.Is(err, runlock.ErrLocked) {
			t.Errorf("%+v: %v, want a validation error", o, err)
		}
	}
}

// run starts a run row and binds it to the lock, as etl run does.
func startRun(t *testing.T, store *ledger.Store, l *runlock.Lock, p plan) int64 {
	t.Helper()
	ctx := context.Background()
	run, err := store.StartRun(ctx, ledger.RunInfo{Group: "g", ShardIndex: p.i, ShardCount: p.n, Source: p.source,
		Providers: strings.Split(p.partners, ","), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Bind(ctx, run); err != nil {
		t.Fatal(err)
	}
	return run
}

func terminate(t *testing.T, pool *pgxpool.Pool, backend uint32) {
	t.Helper()
	var ok bool
	if err := pool.QueryRow(context.Background(), `SELECT pg_terminate_backend($1)`, int32(backend)).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d): %v %v", backend, ok, err)
	}
	waitGone(t, pool, backend)
}

// waitGone waits until a backend has exited (termination is asynchronous;
// its locks go with it).
func waitGone(t *testing.T, pool *pgxpool.Pool, backend uint32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, int32(backend)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backend %d still there", backend)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not timing
	}
}

// waitFor fails the test unless ch closes within d: an upper bound, not a
// sleep.
func waitFor(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %v", what, d)
	}
}

// A killed lock session is noticed by the heartbeat within a few of its
// intervals: the run's context is cancelled with ErrLost as its cause.
func TestKilledLockSessionCancelsTheRun(t *testing.T) {
	pool := pgtest.NewPool(t)
	o := plan{"clubready", 0, 0, "csv:/a"}.opts()
	o.Heartbeat = 50 * time.Millisecond
	l, err := acquire(t, pool, o)
	if err != nil {
		t.Fatal(err)
	}
	startRun(t, ledger.FromPool(pool), l, plan{"clubready", 0, 0, "csv:/a"})
	ctx, stop := l.Context(context.Background())
	defer stop()
	select {
	case <-ctx.Done():
		t.Fatalf("cancelled before the session was killed: %v", context.Cause(ctx))
	default:
	}
	terminate(t, pool, l.BackendPID())
	waitFor(t, ctx.Done(), 5*time.Second, "run context cancelled after its lock session was killed")
	if cause := context.Cause(ctx); !errors.Is(cause, runlock.ErrLost) {
		t.Fatalf("cause = %v, want ErrLost", cause)
	}
	if !errors.Is(l.Err(), runlock.ErrLost) {
		t.Fatalf("Err() = %v", l.Err())
	}
}

// A heartbeat that gets no answer within its timeout (a dropped NAT
// mapping looks like this: no error, no reply) counts as lost too. The
// run row is held FOR UPDATE elsewhere so the heartbeat's renewal blocks.
func TestUnansweredHeartbeatCountsAsLost(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	o := plan{"clubready", 0, 0, ""}.opts()
	o.Heartbeat, o.HeartbeatTimeout = 50*time.Millisecond, 200*time.Millisecond
	l, err := acquire(t, pool, o)
	if err != nil {
		t.Fatal(err)
	}
	run := startRun(t, ledger.FromPool(pool), l, plan{"clubready", 0, 0, ""})
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, `SELECT 1 FROM runs WHERE id = $1 FOR UPDATE`, run); err != nil {
		t.Fatal(err)
	}
	waitFor(t, l.Lost(), 5*time.Second, "lock declared lost after unanswered heartbeats")
	if !errors.Is(l.Err(), runlock.ErrLost) {
		t.Fatalf("Err() = %v", l.Err())
	}
	_ = tx.Rollback(ctx)
	// Giving up ended the session: the partner is free again (for a run
	// that need not wait, as this one has stopped).
	waitGone(t, pool, l.BackendPID())
	if err := ledger.FromPool(pool).FinishRun(ctx, run, "failed", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := acquire(t, pool, plan{"clubready", 0, 0, ""}.opts()); err != nil {
		t.Fatalf("after the loss: %v", err)
	}
}

// Run A loses its lock session but goes on; run B takes the partner.
// From then on none of A's ledger commits (Writer batch, intent, run end)
// writes anything, each fails with ledger.ErrFenced.
func TestRunThatLostItsLockIsFencedOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := ledger.FromPool(pool)
	p := plan{"clubready", 0, 0, "csv:/a"}
	a, err := acquire(t, pool, p.opts())
	if err != nil {
		t.Fatal(err)
	}
	runA := startRun(t, store, a, p)
	var fenced []error
	w := store.NewWriter(runA, func(err error) { fenced = append(fenced, err) })
	entry := func(id string) ledger.Entry {
		return ledger.Entry{Provider: "clubready", EntityKey: "profile/" + id, CustomerID: id, Operation: "create",
			Hash: "h", RemoteID: "r" + id, Outcome: "ok", Attempts: 1, Deliver: true}
	}
	w.Add(entry("C1"))
	if err := w.Sync(ctx); err != nil {
		t.Fatalf("A's commit while it holds the lock: %v", err)
	}
	if err := store.Note(ctx, runA, "clubready", "profile/C2", "C2", "tok"); err != nil {
		t.Fatalf("A's intent while it holds the lock: %v", err)
	}

	terminate(t, pool, a.BackendPID())
	o := p.opts()
	o.Takeover = 100 * time.Millisecond // A is alive (this process) and still running: B waits this long
	b, err := acquire(t, pool, o)
	if err != nil {
		t.Fatalf("B after A's session died: %v", err)
	}
	if n, err := b.MarkCrashed(ctx); err != nil || n != 1 {
		t.Fatalf("B marked %d runs crashed (%v), want A", n, err)
	}
	runB := startRun(t, store, b, p)

	w.Add(entry("C3"))
	if err := w.Sync(ctx); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("A's Writer commit after B took over: %v, want ErrFenced", err)
	}
	if err := w.Close(); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("Close: %v", err)
	}
	if len(fenced) != 1 || !errors.Is(fenced[0], ledger.ErrFenced) {
		t.Fatalf("onErr got %v, want one ErrFenced (it stops the run)", fenced)
	}
	if err := store.Note(ctx, runA, "clubready", "profile/C4", "C4", "tok"); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("A's intent after B took over: %v, want ErrFenced", err)
	}
	if err := store.FinishRun(ctx, runA, "ok", map[string]int{}); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("A's FinishRun after B took over: %v, want ErrFenced", err)
	}
	var rows, states int64
	var status string
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM ledger WHERE run_id = $1`, runA).Scan(&rows)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM sync_state WHERE last_run_id = $1`, runA).Scan(&states)
	_ = pool.QueryRow(ctx, `SELECT status FROM runs WHERE id = $1`, runA).Scan(&status)
	if rows != 2 || states != 1 || status != "crashed" {
		t.Fatalf("run A: %d ledger rows (want 2: C1 and C2's intent), %d sync_state rows (want 1), status %s (want crashed)", rows, states, status)
	}

	// B, holding the lock, writes as usual.
	wb := store.NewWriter(runB, nil)
	wb.Add(entry("C3"))
	if err := wb.Close(); err != nil {
		t.Fatalf("B's commit: %v", err)
	}
	if err := store.FinishRun(ctx, runB, "ok", map[string]int{}); err != nil {
		t.Fatalf("B's FinishRun: %v", err)
	}
}

// A shard beside another shard of the same N is not fenced by it: each
// slot has its own epoch.
func TestNeighbourShardDoesNotFenceOut(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	store := ledger.FromPool(pool)
	p0, p1 := plan{"clubready,q2open", 0, 4, "csv:/a"}, plan{"clubready", 1, 4, "csv:/a"}
	a, err := acquire(t, pool, p0.opts())
	if err != nil {
		t.Fatal(err)
	}
	runA := startRun(t, store, a, p0)
	b, err := acquire(t, pool, p1.opts())
	if err != nil {
		t.Fatal(err)
	}
	startRun(t, store, b, p1)
	w := store.NewWriter(runA, nil)
	w.Add(ledger.Entry{Provider: "clubready", EntityKey: "profile/C1", CustomerID: "C1", Operation: "create", Hash: "h", Outcome: "ok", Deliver: true})
	if err := w.Close(); err != nil {
		t.Fatalf("shard 0/4 commit beside shard 1/4: %v", err)
	}
}

// MarkCrashed marks only runs that needed a lock we hold and whose lock
// session is gone: never a live neighbour shard, never a run of other
// partners.
func TestMarkCrashedSparesLiveHolders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := ledger.FromPool(pool)
	insert := func(providers []string, i, n int) int64 {
		var id int64
		if err := pool.QueryRow(ctx, `INSERT INTO runs (run_group, shard_index, shard_count, status, source, providers, version, host, pid)
			VALUES ('g', $1, $2, 'running', 'csv:/old', $3, 'test', 'elsewhere', 1) RETURNING id`, i, n, providers).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	deadSame := insert([]string{"clubready"}, 0, 4)
	deadUnsharded := insert([]string{"clubready", "q2open"}, 0, 1)
	deadOtherN := insert([]string{"clubready"}, 1, 2)
	neighbourDead := insert([]string{"clubready"}, 2, 4) // not ours to judge: we do not hold 2/4
	otherPartner := insert([]string{"synctera"}, 0, 1)

	lp := plan{"clubready", 1, 4, "csv:/live"}
	live, err := acquire(t, pool, lp.opts())
	if err != nil {
		t.Fatal(err)
	}
	liveRun := startRun(t, store, live, lp)

	me, err := acquire(t, pool, plan{"clubready", 0, 4, "csv:/a"}.opts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := me.MarkCrashed(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[int64]string{deadSame: "crashed", deadUnsharded: "crashed", deadOtherN: "crashed",
		neighbourDead: "running", otherPartner: "running", liveRun: "running"}
	for id, w := range want {
		var got string
		_ = pool.QueryRow(ctx, `SELECT status FROM runs WHERE id = $1`, id).Scan(&got)
		if got != w {
			t.Errorf("run %d: %s, want %s", id, got, w)
		}
	}
}

// Taking over from a run still marked running, whose heartbeat is fresh,
// waits until it finishes (or its heartbeat is Takeover old): the calls
// it had in flight are recorded before the new run reads the checkpoint.
func TestTakeoverWaitsForTheOldRunToFinish(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	store := ledger.FromPool(pool)
	p := plan{"clubready", 0, 0, "csv:/a"}
	a, err := acquire(t, pool, p.opts())
	if err != nil {
		t.Fatal(err)
	}
	runA := startRun(t, store, a, p)
	terminate(t, pool, a.BackendPID())
	got := make(chan error, 1)
	go func() {
		o := p.opts()
		o.Takeover = time.Hour
		l, err := runlock.Acquire(ctx, pool, o)
		if err == nil {
			defer l.Release()
		}
		got <- err
	}()
	// Once B holds the advisory lock it is waiting: A's epoch still
	// stands (a B that did not wait would have fenced A at once).
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted`).Scan(&n)
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B never took the advisory lock")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not timing
	}
	var epoch int64
	_ = pool.QueryRow(ctx, `SELECT epoch FROM run_locks WHERE partner = 'clubready'`).Scan(&epoch)
	if epoch != a.Epoch() {
		t.Fatalf("B fenced A (epoch %d, A's %d) while A was still running with a fresh heartbeat", epoch, a.Epoch())
	}
	select {
	case err := <-got:
		t.Fatalf("B returned (%v) while A was still running with a fresh heartbeat", err)
	default:
	}
	// A's commits still land while B waits.
	w := store.NewWriter(runA, nil)
	w.Add(ledger.Entry{Provider: "clubready", EntityKey: "profile/C1", CustomerID: "C1", Operation: "create", Hash: "h", Outcome: "ok", Deliver: true})
	if err := w.Close(); err != nil {
		t.Fatalf("A's in-flight outcome while B waits: %v", err)
	}
	if err := store.FinishRun(ctx, runA, "failed", map[string]int{}); err != nil {
		t.Fatalf("A's FinishRun before B took over: %v", err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B still waiting after A finished")
	}
}

// A healthy lock is not taken for a lost one: a sharded lock over two
// partners (three advisory locks each) renews the run's heartbeat_at beat
// after beat and stays held.
func TestHealthyHeartbeatRenewsAndKeepsTheLock(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	p := plan{"clubready,q2open", 1, 4, "csv:/a"}
	o := p.opts()
	o.Heartbeat = 20 * time.Millisecond
	l, err := acquire(t, pool, o)
	if err != nil {
		t.Fatal(err)
	}
	run := startRun(t, ledger.FromPool(pool), l, p)
	beat := func() (ts time.Time) {
		_ = pool.QueryRow(ctx, `SELECT heartbeat_at FROM runs WHERE id = $1`, run).Scan(&ts)
		return ts
	}
	last, renewals := beat(), 0
	deadline := time.Now().Add(10 * time.Second)
	for renewals < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat_at renewed %d times", renewals)
		}
		if ts := beat(); ts.After(last) {
			last, renewals = ts, renewals+1
		}
		select {
		case <-l.Lost():
			t.Fatalf("a healthy lock was declared lost: %v", l.Err())
		case <-time.After(5 * time.Millisecond): // polling a condition
		}
	}
}

// With several shards of a partner running, a refusal names the one in
// the way, not a neighbour.
func TestRefusalNamesTheConflictingShard(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	store := ledger.FromPool(pool)
	var runs []int64
	for _, p := range []plan{{"clubready", 0, 4, "csv:/a"}, {"clubready", 1, 4, "csv:/a"}, {"clubready", 2, 4, "csv:/a"}} {
		l, err := acquire(t, pool, p.opts())
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, startRun(t, store, l, p))
	}
	_, err := acquire(t, pool, plan{"clubready", 1, 4, "csv:/b"}.opts())
	var he *runlock.HeldError
	if !errors.As(err, &he) || he.RunID != runs[1] || he.HolderSlot != "1/4" {
		t.Fatalf("got %v (%+v), want shard 1/4 held by run %d", err, he, runs[1])
	}
}
