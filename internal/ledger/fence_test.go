package ledger_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/pgtest"
)

// The fence check holds its rows FOR SHARE until its transaction ends: a
// takeover's epoch bump waits for a commit already past the check, so
// that commit is visible to the new run before it reads anything, and
// every later commit of the old run sees the new epoch.
func TestFenceCheckHoldsOffATakeoverUntilItsCommit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	var run int64
	if err := pool.QueryRow(ctx, `INSERT INTO runs (run_group, status, source, providers, version, host, pid, lock_epoch)
		VALUES ('g', 'running', 'csv:/a', '{p,q}', 'test', 'h', 1, 7) RETURNING id`).Scan(&run); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO run_locks (partner, slot, epoch, run_id, host, source, pid, backend_pid)
		VALUES ('p', 'all', 7, $1, 'h', 'csv:/a', 1, 1), ('q', 'all', 7, $1, 'h', 'csv:/a', 1, 1)`, run); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if err := ledger.CheckFence(ctx, tx, run); err != nil {
		t.Fatalf("the owner's check: %v", err)
	}
	bumped := make(chan error, 1)
	go func() {
		_, err := pool.Exec(ctx, `UPDATE run_locks SET epoch = 8, run_id = NULL WHERE partner = 'q'`)
		bumped <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE run_locks%'`).Scan(&waiting)
		if waiting == 1 {
			break
		}
		select {
		case err := <-bumped:
			t.Fatalf("the takeover's bump did not wait for the checked transaction (%v)", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the bump neither waited nor finished")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not timing
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-bumped; err != nil {
		t.Fatal(err)
	}
	tx2, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback(ctx) //nolint:errcheck
	if err := ledger.CheckFence(ctx, tx2, run); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("after the bump: %v, want ErrFenced", err)
	}
	// A run started without a lock is not fenced.
	var free int64
	_ = pool.QueryRow(ctx, `INSERT INTO runs (run_group, status, source, providers, version, host, pid)
		VALUES ('g', 'running', 'csv:/a', '{q}', 'test', 'h', 1) RETURNING id`).Scan(&free)
	if err := ledger.CheckFence(ctx, tx2, free); err != nil {
		t.Fatalf("an unlocked run: %v", err)
	}
}
