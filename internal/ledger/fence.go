package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrFenced means a run's commit was refused because another run has
// taken over one of its partners since it took its lock (internal/runlock
// bumps the partner's epoch in run_locks). Nothing of that commit was
// written. The run must stop: its lock is gone and someone else is
// delivering its partners.
var ErrFenced = errors.New("fenced out: another run has taken over this run's partners")

// fenceSQL locks, FOR SHARE, the run_locks rows of each run's partners
// and slot that still carry the run's epoch, and counts them. A run that
// took over bumps those rows' epochs with an UPDATE, which waits for our
// share lock; so either our commit lands before the takeover (and the new
// run reads it) or it sees the new epoch and writes nothing. Runs without
// lock_epoch were started without a lock (tests) and are not fenced.
const fenceSQL = `WITH mine AS (
		SELECT r.id, r.lock_epoch, r.providers, cardinality(r.providers) AS n,
			CASE WHEN r.shard_count <= 1 THEN 'all' ELSE r.shard_index || '/' || r.shard_count END AS slot
		FROM runs r WHERE r.id = ANY($1) AND r.lock_epoch IS NOT NULL
	), held AS (
		SELECT m.id FROM mine m JOIN run_locks l ON l.partner = ANY (m.providers) AND l.slot = m.slot AND l.epoch = m.lock_epoch
		FOR SHARE OF l
	)
	SELECT m.id, m.n, (SELECT count(*) FROM held h WHERE h.id = m.id) FROM mine m`

// CheckFence returns an error wrapping ErrFenced unless every run in runs
// still owns its epoch for all of its partners. Call it first in the
// transaction whose writes it guards: the share locks it takes last until
// that transaction ends. The Writer's batches, the intent group commit
// and FinishRun call it; any other commit a run makes for its partners
// should too.
func CheckFence(ctx context.Context, tx pgx.Tx, runs ...int64) error {
	rows, err := tx.Query(ctx, fenceSQL, runs)
	if err != nil {
		return fmt.Errorf("ledger: check run lock: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, want, have int64
		if err := rows.Scan(&id, &want, &have); err != nil {
			return fmt.Errorf("ledger: check run lock: %w", err)
		}
		if have != want {
			return fmt.Errorf("ledger: run %d: %w (it still holds %d of its %d partner locks)", id, ErrFenced, have, want)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: check run lock: %w", err)
	}
	return nil
}
