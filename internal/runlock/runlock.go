// Package runlock is the run lock of `etl run`: one lock per partner and
// shard plan, held on a PostgreSQL session of its own, watched by a
// heartbeat, and backed by a fence so that a run that lost its lock
// without noticing can write nothing after another run took over.
//
// The exclusion rules, per partner:
//   - an unsharded run excludes every other run of the partner;
//   - shards of a partner run together only if they share N and differ in
//     their index (0/4 beside 1/4 is fine; 0/4 beside 1/2 or 0/4 is not).
//
// The source is not part of the lock: a partner's records are the same
// records whichever export or database they were read from.
//
// The locks are session advisory locks, so Postgres frees them when the
// session ends (kill -9, a failover, a killed backend) and no one ever
// needs to unlock by hand. A session can end while its process goes on;
// the heartbeat notices within about one interval, and the fence
// (run_locks, migration 0004, checked by every ledger commit in
// internal/ledger) refuses the process's writes once another run has
// taken over.
package runlock

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/northwind-data/etl/internal/ledger"
)

// ErrLocked means another run holds a lock this run needs; the run took
// none of its locks. Acquire returns it wrapped in a *HeldError.
var ErrLocked = errors.New("another etl run holds the lock")

// ErrLost means the lock's session ended or stopped answering while the
// run held it. Lost() and Context report it wrapped in a *LostError.
var ErrLost = errors.New("the run lock was lost")

// HeldError names who holds the lock that stopped Acquire, as far as the
// database knows (RunID 0 and Host "" when the holder has not recorded
// itself yet).
type HeldError struct {
	Partner, Slot string // the partner and our slot of it ("all" or "i/N")
	HolderSlot    string
	RunID         int64
	Host, Source  string
	PID           int
	BackendPID    uint32
}

func (e *HeldError) Error() string {
	who := "a database session that has just ended (retry)"
	if e.BackendPID != 0 {
		who = fmt.Sprintf("database session %d", e.BackendPID)
	}
	if e.Host != "" {
		who = fmt.Sprintf("host %s pid %d", e.Host, e.PID)
		if e.RunID != 0 {
			who = fmt.Sprintf("run %d (%s)", e.RunID, who)
		}
		if e.HolderSlot != "" {
			who += ", shard " + e.HolderSlot
		}
		if e.Source != "" {
			who += ", reading " + e.Source
		}
	}
	return fmt.Sprintf("partner %s (shard %s) is locked by %s", e.Partner, e.Slot, who)
}

func (e *HeldError) Is(target error) bool { return target == ErrLocked }

// LostError is why a held lock was given up.
type LostError struct {
	Partners []string
	Cause    error
}

func (e *LostError) Error() string {
	return fmt.Sprintf("the run lock of %v was lost: %v", e.Partners, e.Cause)
}
func (e *LostError) Is(target error) bool { return target == ErrLost }
func (e *LostError) Unwrap() error        { return e.Cause }

// Options is what a run locks and how the lock is watched.
type Options struct {
	// Partners the run delivers to; at least one.
	Partners []string
	// ShardIndex of ShardCount; ShardCount 0 or 1 is an unsharded run.
	ShardIndex, ShardCount int
	// Heartbeat is how often the lock's session is checked (default 3s);
	// HeartbeatTimeout is how long one check may take before the lock
	// counts as lost (default: 2*Heartbeat, so a busy server is not
	// taken for a dead one). A killed session fails its next check at
	// once; one that stops answering (a dropped NAT mapping) is given up
	// within Heartbeat + HeartbeatTimeout.
	Heartbeat, HeartbeatTimeout time.Duration
	// Takeover bounds how long a run that lost its lock may go on
	// delivering (its heartbeat noticing, then its calls in flight
	// finishing). Acquire, taking over from a run that is still marked
	// running and whose heartbeat is younger than Takeover, waits until it
	// finishes or its heartbeat is Takeover old, so that the calls it had
	// in flight are recorded before this run reads the checkpoint.
	// Default: 2*Heartbeat + HeartbeatTimeout.
	Takeover time.Duration
	// Host and PID identify this process to runs that find it holding
	// the lock (default os.Hostname, os.Getpid); Source is what it reads
	// (shown to them only: the source is not part of the lock).
	Host, Source string
	PID          int
}

func (o *Options) validate() error {
	if len(o.Partners) == 0 {
		return errors.New("runlock: no partners to lock")
	}
	seen := map[string]bool{}
	for _, p := range o.Partners {
		if p == "" || seen[p] {
			return fmt.Errorf("runlock: partner %q empty or named twice", p)
		}
		seen[p] = true
	}
	if o.ShardCount <= 0 {
		o.ShardCount = 1
	}
	if o.ShardCount > maxShards || o.ShardIndex < 0 || o.ShardIndex >= o.ShardCount {
		return fmt.Errorf("runlock: shard %d/%d: need 0 <= i < N <= %d", o.ShardIndex, o.ShardCount, maxShards)
	}
	if o.Heartbeat < 0 || o.HeartbeatTimeout < 0 || o.Takeover < 0 {
		return errors.New("runlock: negative heartbeat, timeout or takeover")
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = 3 * time.Second
	}
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = 2 * o.Heartbeat
	}
	if o.Takeover == 0 {
		o.Takeover = 2*o.Heartbeat + o.HeartbeatTimeout
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	return nil
}

func (o *Options) sharded() bool { return o.ShardCount > 1 }

// Slot is the lock slot of a shard plan: "all" for an unsharded run,
// "i/N" for shard i of N (what runs.shard_index/shard_count map to).
func Slot(index, count int) string {
	if count <= 1 {
		return "all"
	}
	return fmt.Sprintf("%d/%d", index, count)
}

// Advisory keys: the two-int4 form, key1 a hash of the partner, key2 what
// of it is locked. Every run takes (partner, 0): exclusively when
// unsharded, shared when sharded, so an unsharded run and any shard
// exclude each other. A shard also takes (partner, shard i/N) exclusively
// and (partner, count N) shared, and refuses to start while another
// session holds a count other than N.
const (
	maxShards  = 1<<14 - 1
	kindShard  = 1 << 28
	kindCount  = 2 << 28
	kindLimit  = 3 << 28
	acquireKey = 0x65746c6c6f636b // "etllock": serialises Acquire calls (single bigint form, no clash)
)

// thisDB: advisory locks are per database, and pg_locks lists the whole
// cluster's; other ledgers in the same cluster must not count.
const thisDB = `(SELECT oid FROM pg_database WHERE datname = current_database())`

func partnerKey(p string) int32 {
	h := fnv.New32a()
	h.Write([]byte("etl-run:" + p))
	return int32(h.Sum32() & 0x7fffffff)
}

func shardKey(i, n int) int32 { return int32(kindShard | n<<14 | i) }
func countKey(n int) int32    { return int32(kindCount | n) }

// Lock is a set of held partner locks. Release it when the run ends.
// Lost, Err and Context may be called from any goroutine.
type Lock struct {
	opts     Options
	slot     string
	pool     *pgxpool.Pool
	conn     *pgx.Conn // the lock session; only the heartbeat uses it after Acquire
	backend  uint32
	started  time.Time // the session's backend_start: a pid alone may be reused
	nlocks   int
	epoch    int64
	runID    atomic.Int64 // set by Bind, renewed by the heartbeat
	lost     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	err      error
	stopOnce sync.Once
}

// Acquire takes the lock of every partner in o, or none of them. When
// another run holds one it returns a *HeldError (errors.Is ErrLocked).
// It may wait up to o.Takeover for a run that lost its lock to stop (see
// Options.Takeover). On success the heartbeat runs until Release.
func Acquire(ctx context.Context, pool *pgxpool.Pool, o Options) (*Lock, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.Partners = slices.Clone(o.Partners)
	slices.Sort(o.Partners) // a refusal names the same partner however --providers was ordered
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("runlock: connect: %w", err)
	}
	l := &Lock{opts: o, slot: Slot(o.ShardIndex, o.ShardCount), pool: pool, conn: pc.Hijack(),
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			l.unlockAndClose()
		}
	}()
	l.backend = l.conn.PgConn().PID()
	if err := l.conn.QueryRow(ctx, `SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()`).Scan(&l.started); err != nil {
		return nil, fmt.Errorf("runlock: %w", err)
	}
	owners, err := l.take(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.awaitOwners(ctx, owners); err != nil {
		return nil, err
	}
	if err := l.fence(ctx); err != nil {
		return nil, err
	}
	ok = true
	go l.heartbeat()
	return l, nil
}

// conflicting is the SQL condition on run_locks.slot for the slots a
// holder of ours excludes ($2: our slot, $3: our N as text, empty when
// unsharded).
const conflicting = `($3 = '' OR slot = 'all' OR slot = $2 OR split_part(slot, '/', 2) <> $3)`

// countText is N for the SQL of conflicting, empty when unsharded.
func (l *Lock) countText() string {
	if !l.opts.sharded() {
		return ""
	}
	return fmt.Sprint(l.opts.ShardCount)
}

// take takes the advisory locks in one transaction under a mutex shared
// by every Acquire, so the check that no other shard count is active
// cannot race another Acquire. It returns the runs that last owned the
// slots we now exclude. Session locks taken in a transaction outlive it;
// on failure the caller closes the session, which frees them all.
func (l *Lock) take(ctx context.Context) ([]int64, error) {
	var owners []int64
	err := pgx.BeginFunc(ctx, l.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '30s'`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(acquireKey)); err != nil {
			return err
		}
		keys := map[[2]int32]bool{} // the heartbeat's count: two partners may hash alike
		for _, p := range l.opts.Partners {
			k := partnerKey(p)
			var got bool
			var err error
			keys[[2]int32{k, 0}] = true
			if !l.opts.sharded() {
				err = tx.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, 0)`, k).Scan(&got)
			} else {
				err = tx.QueryRow(ctx, `SELECT pg_try_advisory_lock_shared($1, 0) AND pg_try_advisory_lock($1, $2) AND pg_try_advisory_lock_shared($1, $3)
					AND NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND pid <> pg_backend_pid() AND database = `+thisDB+`
						AND classid::int8 = $1 AND objid::int8 >= $4 AND objid::int8 < $5 AND objid::int8 <> $3)`,
					k, shardKey(l.opts.ShardIndex, l.opts.ShardCount), countKey(l.opts.ShardCount), int64(kindCount), int64(kindLimit)).Scan(&got)
				keys[[2]int32{k, shardKey(l.opts.ShardIndex, l.opts.ShardCount)}] = true
				keys[[2]int32{k, countKey(l.opts.ShardCount)}] = true
			}
			if err != nil {
				return err
			}
			if !got {
				return l.holder(ctx, tx, p)
			}
		}
		l.nlocks = len(keys)
		rows, err := tx.Query(ctx, `SELECT DISTINCT run_id FROM run_locks WHERE partner = ANY ($1) AND run_id IS NOT NULL AND `+conflicting,
			l.opts.Partners, l.slot, l.countText())
		if err != nil {
			return err
		}
		owners, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	})
	var held *HeldError
	if errors.As(err, &held) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("runlock: take the locks of %v: %w", l.opts.Partners, err)
	}
	return owners, nil
}

// holder finds who holds partner p's lock: the latest run_locks row of p
// whose session still holds one of p's advisory locks, else that session.
func (l *Lock) holder(ctx context.Context, tx pgx.Tx, p string) error {
	e := &HeldError{Partner: p, Slot: l.slot}
	err := tx.QueryRow(ctx, `SELECT k.pid, coalesce(r.slot, ''), coalesce(r.run_id, 0), coalesce(r.host, ''), coalesce(r.source, ''), coalesce(r.pid, 0)
		FROM pg_locks k LEFT JOIN run_locks r ON r.partner = $2 AND r.backend_pid = k.pid
		WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 2 AND k.classid::int8 = $1 AND k.pid <> pg_backend_pid() AND k.database = `+thisDB+`
		ORDER BY ($4 = '' OR r.slot = 'all' OR r.slot = $3 OR split_part(r.slot, '/', 2) <> $4) DESC NULLS LAST, r.taken_at DESC NULLS LAST
		LIMIT 1`, partnerKey(p), p, l.slot, l.countText()).Scan(&e.BackendPID, &e.HolderSlot, &e.RunID, &e.Host, &e.Source, &e.PID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("runlock: %s is locked; finding by whom: %w", p, err)
	}
	return e
}

// awaitOwners waits while a run we are taking over may still be
// delivering: marked running, not a process known dead on this host, and
// its heartbeat younger than Takeover. It polls; a run that notices its
// loss finishes its row and ends the wait early.
func (l *Lock) awaitOwners(ctx context.Context, owners []int64) error {
	if len(owners) == 0 {
		return nil
	}
	poll := min(l.opts.Heartbeat, 250*time.Millisecond)
	for {
		rows, err := l.conn.Query(ctx, `SELECT id, host, pid FROM runs WHERE id = ANY ($1) AND status = 'running'
			AND coalesce(heartbeat_at, started_at) > now() - make_interval(secs => $2)`, owners, l.opts.Takeover.Seconds())
		if err != nil {
			return fmt.Errorf("runlock: look up the runs being taken over: %w", err)
		}
		type run struct {
			id   int64
			host string
			pid  int
		}
		live, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (run, error) {
			var x run
			err := r.Scan(&x.id, &x.host, &x.pid)
			return x, err
		})
		if err != nil {
			return fmt.Errorf("runlock: look up the runs being taken over: %w", err)
		}
		live = slices.DeleteFunc(live, func(r run) bool { return r.host == l.opts.Host && !processAlive(r.pid) })
		if len(live) == 0 {
			return nil
		}
		t := time.NewTimer(poll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("runlock: waiting for run %d to stop: %w", live[0].id, ctx.Err())
		}
	}
}

// fence takes a new epoch and writes it into our slots and every slot we
// exclude. The UPDATE waits for any commit of an earlier owner that holds
// its rows FOR SHARE (ledger.checkFence); after it, such a run's commits
// find their epoch gone and write nothing.
func (l *Lock) fence(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, l.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '30s'`); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT nextval('run_lock_epochs')`).Scan(&l.epoch); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE run_locks SET epoch = $4, run_id = NULL WHERE partner = ANY ($1) AND `+conflicting,
			l.opts.Partners, l.slot, l.countText(), l.epoch); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO run_locks (partner, slot, epoch, host, source, pid, backend_pid)
			SELECT p, $2, $3, $4, $5, $6, $7 FROM unnest($1::text[]) AS p
			ON CONFLICT (partner, slot) DO UPDATE SET epoch = EXCLUDED.epoch, run_id = NULL, host = EXCLUDED.host,
				source = EXCLUDED.source, pid = EXCLUDED.pid, backend_pid = EXCLUDED.backend_pid, taken_at = now()`,
			l.opts.Partners, l.slot, l.epoch, l.opts.Host, l.opts.Source, l.opts.PID, int64(l.backend))
		return err
	})
	if err != nil {
		return fmt.Errorf("runlock: fence the partners %v: %w", l.opts.Partners, err)
	}
	return nil
}

// Epoch is the fence epoch this lock took.
func (l *Lock) Epoch() int64 { return l.epoch }

// BackendPID is the server process of the lock's session.
func (l *Lock) BackendPID() uint32 { return l.backend }

// Partners are the locked partners, sorted.
func (l *Lock) Partners() []string { return slices.Clone(l.opts.Partners) }

// MarkCrashed marks crashed the runs left "running" that needed a lock we
// now hold (they share a partner and their shard plan conflicts with
// ours), so cannot be holding it, and whose lock session is gone. A run
// of a partner we share whose shard we do not exclude (1/4 beside our
// 0/4) is left alone: it may be alive. Call it after Acquire, before
// starting this run's row.
func (l *Lock) MarkCrashed(ctx context.Context) (int64, error) {
	tag, err := l.pool.Exec(ctx, `UPDATE runs r SET status = 'crashed', finished_at = now()
		WHERE r.status = 'running' AND r.providers && $1::text[]
		AND (r.shard_count <= 1 OR $3 <= 1 OR r.shard_count <> $3 OR r.shard_index = $2)
		AND NOT EXISTS (SELECT 1 FROM run_locks x JOIN pg_locks k ON k.pid = x.backend_pid AND k.locktype = 'advisory' AND k.granted
			WHERE x.run_id = r.id)`, l.opts.Partners, l.opts.ShardIndex, l.opts.ShardCount)
	if err != nil {
		return 0, fmt.Errorf("runlock: mark crashed runs: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Bind records runID as the owner of this lock's epoch: from then on
// every ledger commit of the run checks it still owns it. It fails with
// ledger.ErrFenced when another run took over since Acquire.
func (l *Lock) Bind(ctx context.Context, runID int64) error {
	err := pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE run_locks SET run_id = $1 WHERE partner = ANY ($2) AND slot = $3 AND epoch = $4`,
			runID, l.opts.Partners, l.slot, l.epoch)
		if err != nil {
			return err
		}
		if int(tag.RowsAffected()) != len(l.opts.Partners) {
			return ledger.ErrFenced
		}
		_, err = tx.Exec(ctx, `UPDATE runs SET lock_epoch = $2, heartbeat_at = now() WHERE id = $1`, runID, l.epoch)
		return err
	})
	if err != nil {
		return fmt.Errorf("runlock: record run %d as the lock's owner: %w", runID, err)
	}
	l.runID.Store(runID)
	return nil
}

// heartbeat checks, every Heartbeat, that the lock's session still
// answers within HeartbeatTimeout, is the session that took the locks,
// and still holds all of them; and renews the run's heartbeat_at. The
// first failure declares the lock lost.
func (l *Lock) heartbeat() {
	defer close(l.done)
	t := time.NewTicker(l.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if err := l.check(l.runID.Load()); err != nil {
			l.setLost(err)
			return
		}
	}
}

func (l *Lock) check(run int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.HeartbeatTimeout)
	defer cancel()
	var pid uint32
	var held int
	err := l.conn.QueryRow(ctx, `WITH beat AS (UPDATE runs SET heartbeat_at = now() WHERE id = $1)
		SELECT pg_backend_pid(), (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND pid = pg_backend_pid())`,
		run).Scan(&pid, &held)
	switch {
	case err != nil:
		return fmt.Errorf("the lock's database session did not answer within %v: %w", l.opts.HeartbeatTimeout, err)
	case pid != l.backend:
		return fmt.Errorf("the lock's database session changed (backend %d, now %d)", l.backend, pid)
	case held < l.nlocks:
		return fmt.Errorf("the lock's session holds %d of its %d advisory locks", held, l.nlocks)
	}
	return nil
}

func (l *Lock) setLost(cause error) {
	l.mu.Lock()
	l.err = &LostError{Partners: l.Partners(), Cause: cause}
	l.mu.Unlock()
	// Whatever the session's state, end it: if it is alive after all, its
	// locks must not outlive our giving up. A session stuck in a wait
	// would not notice its socket closing, so also ask the server, on
	// another connection, to end it (best effort: that may be down too).
	l.closeConn()
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.HeartbeatTimeout)
	_, _ = l.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_start = $2`, int32(l.backend), l.started)
	cancel()
	close(l.lost)
}

// Lost is closed when the lock is lost (never after Release).
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Err is the *LostError once Lost is closed, else nil (also for a nil
// Lock: a dry run takes none).
func (l *Lock) Err() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Context returns a context cancelled, with Err() as its cause, when the
// lock is lost, and with context.Canceled when stop is called.
func (l *Lock) Context(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		select {
		case <-l.lost:
			cancel(l.Err())
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// Release stops the heartbeat and ends the session, which frees every
// lock. Safe to call more than once, and after a loss.
func (l *Lock) Release() {
	if l == nil {
		return
	}
	l.stopOnce.Do(func() {
		close(l.stop)
		<-l.done
		l.unlockAndClose()
	})
}

// unlockAndClose unlocks before closing: a closed session's locks go when
// its backend exits, a moment later, and a run started right after this
// one (a chained cron job, a test) must find them free.
func (l *Lock) unlockAndClose() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, _ = l.conn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
	cancel()
	l.closeConn()
}

func (l *Lock) closeConn() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = l.conn.Close(ctx)
}
