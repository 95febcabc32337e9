package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/northwind-data/etl/internal/redact"
)

// Tally is what the ledger holds for one run: what `etl status` and `etl
// report` show for a run that never recorded final counts (it crashed, or
// is still running).
type Tally struct {
	Customers int64 // distinct customers with a ledger row
	// Rows per partner, operation (create, update, deactivate; intents
	// left out) and outcome; outcome "not-sent-no-update-api" for ok rows
	// whose request_id says nothing was sent.
	Rows              map[string]map[[2]string]int64
	Attempts          map[string]int64 // per partner
	Rejects           int64            // validation rejects (no partner)
	MappingRejects    map[string]int64 // per partner
	MappingRejectsAll int64
}

// TallyRuns counts the ledger rows and rejects of each run. notSent is the
// request_id of an ok row for which nothing was sent (an update the
// partner has no API for): such rows are counted under that outcome.
func (s *Store) TallyRuns(ctx context.Context, runIDs []int64, notSent string) (map[int64]*Tally, error) {
	out := map[int64]*Tally{}
	get := func(id int64) *Tally {
		t := out[id]
		if t == nil {
			t = &Tally{Rows: map[string]map[[2]string]int64{}, Attempts: map[string]int64{}, MappingRejects: map[string]int64{}}
			out[id] = t
		}
		return t
	}
	for _, id := range runIDs {
		get(id)
	}
	rows, err := s.pool.Query(ctx, `SELECT run_id, provider, operation,
			CASE WHEN outcome = 'ok' AND request_id = $2 THEN $2 ELSE outcome END, count(*), coalesce(sum(attempts), 0)
		FROM ledger WHERE run_id = ANY($1) AND operation <> 'intent' GROUP BY 1, 2, 3, 4`, runIDs, notSent)
	if err != nil {
		return nil, fmt.Errorf("ledger: tally: %w", err)
	}
	err = forRows(rows, func(r pgx.Rows) error {
		var id, n, att int64
		var p, op, oc string
		if err := r.Scan(&id, &p, &op, &oc, &n, &att); err != nil {
			return err
		}
		t := get(id)
		if t.Rows[p] == nil {
			t.Rows[p] = map[[2]string]int64{}
		}
		t.Rows[p][[2]string{op, oc}] += n
		t.Attempts[p] += att
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: tally: %w", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT run_id, count(DISTINCT customer_id) FROM ledger WHERE run_id = ANY($1) GROUP BY 1`, runIDs)
	if err != nil {
		return nil, fmt.Errorf("ledger: tally customers: %w", err)
	}
	err = forRows(rows, func(r pgx.Rows) error {
		var id, n int64
		if err := r.Scan(&id, &n); err != nil {
			return err
		}
		get(id).Customers = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: tally customers: %w", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT run_id, coalesce(provider, ''), count(*) FROM rejects WHERE run_id = ANY($1) GROUP BY 1, 2`, runIDs)
	if err != nil {
		return nil, fmt.Errorf("ledger: tally rejects: %w", err)
	}
	err = forRows(rows, func(r pgx.Rows) error {
		var id, n int64
		var p string
		if err := r.Scan(&id, &p, &n); err != nil {
			return err
		}
		t := get(id)
		if p == "" {
			t.Rejects += n
		} else {
			t.MappingRejects[p] += n
			t.MappingRejectsAll += n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: tally rejects: %w", err)
	}
	return out, nil
}

func forRows(rows pgx.Rows, fn func(pgx.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// StatusDryRun is the status of a dry run's runs row, from its start:
// MarkCrashed (which closes rows left "running") never touches it, and no
// other table but rejects ever names its id.
const StatusDryRun = "dry-run"

// StartDryRun records a dry run (status StatusDryRun) so that its rejects
// can be listed with `etl rejects` and `etl report`; FinishRun closes it
// with the same status. A dry run writes nothing else.
func (s *Store) StartDryRun(ctx context.Context, ri RunInfo) (int64, error) {
	host, _ := os.Hostname()
	opts, _ := json.Marshal(ri.Options)
	if ri.ShardCount == 0 {
		ri.ShardCount = 1
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO runs (run_group, shard_index, shard_count, status, source, providers, options, version, host, pid)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		ri.Group, ri.ShardIndex, ri.ShardCount, StatusDryRun, ri.Source, ri.Providers, opts, ri.Version, host, os.Getpid()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("ledger: start dry run: %w", err)
	}
	return id, nil
}

// AddRejects writes rejects for runID outside a Writer (a dry run has
// none), masked as the Writer masks them.
func (s *Store) AddRejects(ctx context.Context, runID int64, rs []RejectRow) error {
	if len(rs) == 0 {
		return nil
	}
	rows := make([][]any, len(rs))
	for i, r := range rs {
		rows[i] = []any{runID, nz(r.Provider), r.File, nzi(r.Line), nz(r.EntityKey), nz(r.Field), r.Reason, redact.Text(r.Message)}
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"rejects"}, []string{"run_id", "provider", "file", "line", "entity_key", "field", "reason", "message"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("ledger: write %d rejects of run %d: %w", len(rs), runID, err)
	}
	return nil
}

// Latency is the call latency of one partner's operation in some runs.
type Latency struct {
	Provider  string  `json:"provider"`
	Operation string  `json:"operation"`
	Count     int64   `json:"count"`
	AvgMS     float64 `json:"avg_latency_ms"`
	P95MS     float64 `json:"p95_latency_ms"`
}

// Latencies aggregates the latency of the ledger rows of runIDs by partner
// and operation. Intents and rows for which nothing was sent (request_id
// notSent) are left out: they took no call.
func (s *Store) Latencies(ctx context.Context, runIDs []int64, notSent string) ([]Latency, error) {
	rows, err := s.pool.Query(ctx, `SELECT provider, operation, count(*), coalesce(avg(latency_ms), 0),
		coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms), 0)
		FROM ledger WHERE run_id = ANY($1) AND operation <> 'intent' AND request_id IS DISTINCT FROM $2
		GROUP BY 1, 2 ORDER BY 1, 2`, runIDs, notSent)
	if err != nil {
		return nil, fmt.Errorf("ledger: latencies: %w", err)
	}
	var out []Latency
	err = forRows(rows, func(r pgx.Rows) error {
		var l Latency
		if err := r.Scan(&l.Provider, &l.Operation, &l.Count, &l.AvgMS, &l.P95MS); err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: latencies: %w", err)
	}
	return out, nil
}

// ReportedOutcomes is Outcomes with the ok rows for which nothing was sent
// (request_id notSent) under an outcome of their own, notSent: a report
// must not show them as delivered calls.
func (s *Store) ReportedOutcomes(ctx context.Context, runIDs []int64, notSent string) ([]OutcomeCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT provider, operation, CASE WHEN outcome = 'ok' AND request_id = $2 THEN $2 ELSE outcome END, count(*),
		coalesce(avg(latency_ms), 0), coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms), 0), coalesce(sum(attempts), 0)
		FROM ledger WHERE run_id = ANY($1) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, runIDs, notSent)
	if err != nil {
		return nil, fmt.Errorf("ledger: outcomes: %w", err)
	}
	var out []OutcomeCount
	err = forRows(rows, func(r pgx.Rows) error {
		var o OutcomeCount
		if err := r.Scan(&o.Provider, &o.Operation, &o.Outcome, &o.Count, &o.AvgMS, &o.P95MS, &o.Attempts); err != nil {
			return err
		}
		out = append(out, o)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: outcomes: %w", err)
	}
	return out, nil
}
