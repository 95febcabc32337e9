package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Run is a row of runs.
type Run struct {
	ID         int64           `json:"id"`
	Group      string          `json:"run_group"`
	ShardIndex int             `json:"shard_index"`
	ShardCount int             `json:"shard_count"`
	Status     string          `json:"status"`
	Source     string          `json:"source"`
	Providers  []string        `json:"providers"`
	Started    time.Time       `json:"started_at"`
	Finished   *time.Time      `json:"finished_at,omitempty"`
	Counts     json.RawMessage `json:"counts"`
	Host       string          `json:"host"`
	PID        int             `json:"pid"`
}

const runCols = `id, run_group, shard_index, shard_count, status, source, providers, started_at, finished_at, counts, host, pid`

func scanRuns(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close()
}) ([]Run, error) {
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		if err := rows.Scan(&r.ID, &r.Group, &r.ShardIndex, &r.ShardCount, &r.Status, &r.Source, &r.Providers, &r.Started, &r.Finished, &r.Counts, &r.Host, &r.PID); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Runs lists the latest runs, newest first.
func (s *Store) Runs(ctx context.Context, limit int) ([]Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runCols+` FROM runs ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: runs: %w", err)
	}
	return scanRuns(rows)
}

// RunsOf returns the runs named by ref: a run id, or a run group (every
// shard of one logical run).
func (s *Store) RunsOf(ctx context.Context, ref string) ([]Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runCols+` FROM runs WHERE id::text = $1 OR run_group = $1 ORDER BY id`, ref)
	if err != nil {
		return nil, fmt.Errorf("ledger: run %s: %w", ref, err)
	}
	runs, err := scanRuns(rows)
	if err == nil && len(runs) == 0 {
		return nil, fmt.Errorf("%w %q (give a run id or run group; see etl status)", ErrNoRun, ref)
	}
	return runs, err
}

// ErrNoRun means no run has the id or group asked for.
var ErrNoRun = errors.New("no run")

// OutcomeCount is ledger rows by partner, operation and outcome.
type OutcomeCount struct {
	Provider  string  `json:"provider"`
	Operation string  `json:"operation"`
	Outcome   string  `json:"outcome"`
	Count     int64   `json:"count"`
	AvgMS     float64 `json:"avg_latency_ms"`
	P95MS     float64 `json:"p95_latency_ms"`
	Attempts  int64   `json:"attempts"`
}

// ErrorCount is a top error reason.
type ErrorCount struct {
	Provider string `json:"provider"`
	Code     string `json:"code"`
	Message  string `json:"example_message"`
	Count    int64  `json:"count"`
}

// Outcomes aggregates the ledger for the given runs.
func (s *Store) Outcomes(ctx context.Context, runIDs []int64) ([]OutcomeCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT provider, operation, outcome, count(*), coalesce(avg(latency_ms), 0),
		coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms), 0), coalesce(sum(attempts), 0)
		FROM ledger WHERE run_id = ANY($1) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, runIDs)
	if err != nil {
		return nil, fmt.Errorf("ledger: outcomes: %w", err)
	}
	defer rows.Close()
	var out []OutcomeCount
	for rows.Next() {
		var o OutcomeCount
		if err := rows.Scan(&o.Provider, &o.Operation, &o.Outcome, &o.Count, &o.AvgMS, &o.P95MS, &o.Attempts); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// TopErrors returns the most frequent error codes per partner.
func (s *Store) TopErrors(ctx context.Context, runIDs []int64, limit int) ([]ErrorCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT provider, coalesce(error_code, outcome), min(error_message), count(*) FROM ledger
		WHERE run_id = ANY($1) AND outcome NOT IN ('ok', 'settled', 'pending') GROUP BY 1, 2 ORDER BY 4 DESC, 1, 2 LIMIT $2`, runIDs, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: errors: %w", err)
	}
	defer rows.Close()
	var out []ErrorCount
	for rows.Next() {
		var e ErrorCount
		var msg *string
		if err := rows.Scan(&e.Provider, &e.Code, &msg, &e.Count); err != nil {
			return nil, err
		}
		if msg != nil {
			e.Message = *msg
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// RejectCounts counts rejects per partner ("" = all) and reason.
func (s *Store) RejectCounts(ctx context.Context, runIDs []int64) ([]ErrorCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT coalesce(provider, ''), reason, min(message), count(*) FROM rejects
		WHERE run_id = ANY($1) GROUP BY 1, 2 ORDER BY 4 DESC, 1, 2`, runIDs)
	if err != nil {
		return nil, fmt.Errorf("ledger: reject counts: %w", err)
	}
	defer rows.Close()
	var out []ErrorCount
	for rows.Next() {
		var e ErrorCount
		if err := rows.Scan(&e.Provider, &e.Code, &e.Message, &e.Count); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// EachReject streams a run's rejects in file/line order.
func (s *Store) EachReject(ctx context.Context, runIDs []int64, fn func(RejectRow) error) error {
	rows, err := s.pool.Query(ctx, `SELECT coalesce(provider, ''), file, coalesce(line, 0), coalesce(entity_key, ''), coalesce(field, ''), reason, message
		FROM rejects WHERE run_id = ANY($1) ORDER BY file, line, id`, runIDs)
	if err != nil {
		return fmt.Errorf("ledger: rejects: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r RejectRow
		if err := rows.Scan(&r.Provider, &r.File, &r.Line, &r.EntityKey, &r.Field, &r.Reason, &r.Message); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// SyncState returns one partner's checkpoint rows (reconciliation).
func (s *Store) SyncState(ctx context.Context, provider string, fn func(State) error) error {
	rows, err := s.pool.Query(ctx, `SELECT provider, entity_key, content_hash, coalesce(remote_id, ''), active FROM sync_state WHERE provider = $1 ORDER BY entity_key`, provider)
	if err != nil {
		return fmt.Errorf("ledger: sync_state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st State
		if err := rows.Scan(&st.Provider, &st.EntityKey, &st.Hash, &st.RemoteID, &st.Active); err != nil {
			return err
		}
		if err := fn(st); err != nil {
			return err
		}
	}
	return rows.Err()
}
