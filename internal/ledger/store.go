package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the ledger database.
type Store struct {
	pool  *pgxpool.Pool
	notes notes
}

// Open connects and pings, so an unreachable or misnamed database fails
// fast with one line that says what to fix.
func Open(ctx context.Context, url string) (*Store, error) {
	if url == "" {
		return nil, errors.New("ledger: no database URL: set --database-url, DATABASE_URL or ledger.url in the config")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("ledger: database URL is not valid: %w", redactErr(err))
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", redactErr(err))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ledger: cannot reach database %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, redactErr(err))
	}
	return newStore(pool), nil
}

// FromPool wraps an existing pool (tests).
func FromPool(p *pgxpool.Pool) *Store { return newStore(p) }

func (s *Store) Pool() *pgxpool.Pool { return s.pool }
func (s *Store) Close() {
	s.closeNotes()
	s.pool.Close()
}

// EnsureSchema migrates when the schema is behind, so a nightly run after
// an upgrade does not need a separate step.
func (s *Store) EnsureSchema(ctx context.Context) error {
	n, err := Pending(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("ledger: check schema: %w", err)
	}
	if n > 0 {
		_, err = Migrate(ctx, s.pool)
	}
	return err
}

// RunInfo describes a run at its start.
type RunInfo struct {
	Group      string
	ShardIndex int
	ShardCount int
	Source     string
	Providers  []string
	Options    map[string]any
	Version    string
}

// StartRun records a run as running and returns its id.
func (s *Store) StartRun(ctx context.Context, ri RunInfo) (int64, error) {
	host, _ := os.Hostname()
	opts, _ := json.Marshal(ri.Options)
	if ri.ShardCount == 0 {
		ri.ShardCount = 1
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO runs (run_group, shard_index, shard_count, status, source, providers, options, version, host, pid)
		VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8, $9) RETURNING id`,
		ri.Group, ri.ShardIndex, ri.ShardCount, ri.Source, ri.Providers, opts, ri.Version, host, os.Getpid()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("ledger: start run: %w", err)
	}
	return id, nil
}

// FinishRun records the final status and counts.
func (s *Store) FinishRun(ctx context.Context, id int64, status string, counts any) error {
	c, _ := json.Marshal(counts)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A run that was taken over leaves its row to the run that took
		// over (which marked it crashed).
		if err := CheckFence(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE runs SET status = $2, counts = $3, finished_at = now() WHERE id = $1`, id, status, c); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM run_seen WHERE run_id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("ledger: finish run %d: %w", id, err)
	}
	return nil
}

// RefreshStats analyses the checkpoint tables after a run that changed
// them, so the next run's lookups stay on their indexes. A run that
// changed nothing skips it (at a million rows it is most of a nightly
// no-change run's fixed cost).
func (s *Store) RefreshStats(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `ANALYZE sync_state, customer_fingerprints`)
	return err
}

// State is what a partner last received for one entity.
type State struct {
	Provider  string
	EntityKey string
	Hash      string
	RemoteID  string
	Active    bool
}

// LoadState returns sync_state for the given customers, by provider then
// entity key: one query for a whole batch of customers.
func (s *Store) LoadState(ctx context.Context, customerIDs []string) (map[string]map[string]State, error) {
	st, _, err := s.LoadPlanState(ctx, customerIDs)
	return st, err
}

// LoadPlanState is LoadState plus the create key generations of the same
// customers (by provider then entity key; absent means 0), read in the
// same transaction: what the planner needs to key a create.
func (s *Store) LoadPlanState(ctx context.Context, customerIDs []string) (map[string]map[string]State, map[string]map[string]int, error) {
	out := map[string]map[string]State{}
	gens := map[string]map[string]int{}
	// sync_state grows from empty during a first run, and until autovacuum
	// analyses it the planner believes it tiny and scans it whole for
	// every batch (the bench measured 85 rows read per customer). The
	// lookup is always a handful of index probes, so pin it to the index.
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT s.provider, s.entity_key, s.content_hash, coalesce(s.remote_id, ''), s.active
			FROM unnest($1::text[]) AS t(id) JOIN sync_state s ON s.customer_id = t.id`, customerIDs)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var st State
			if err := rows.Scan(&st.Provider, &st.EntityKey, &st.Hash, &st.RemoteID, &st.Active); err != nil {
				return err
			}
			m := out[st.Provider]
			if m == nil {
				m = map[string]State{}
				out[st.Provider] = m
			}
			m[st.EntityKey] = st
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		rows, err = tx.Query(ctx, `SELECT g.provider, g.entity_key, g.generation
			FROM unnest($1::text[]) AS t(id) JOIN create_generations g ON g.customer_id = t.id`, customerIDs)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p, k string
			var n int
			if err := rows.Scan(&p, &k, &n); err != nil {
				return err
			}
			m := gens[p]
			if m == nil {
				m = map[string]int{}
				gens[p] = m
			}
			m[k] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: load sync_state: %w", err)
	}
	return out, gens, nil
}

// OpenIntents returns, for the given customers, the latest unsettled
// intent detail per entity for provider.
func (s *Store) OpenIntents(ctx context.Context, provider string, customerIDs []string) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (entity_key) entity_key, coalesce(intent_detail, '')
		FROM ledger WHERE operation = 'intent' AND outcome = 'pending' AND provider = $1 AND customer_id = ANY($2)
		ORDER BY entity_key, id DESC`, provider, customerIDs)
	if err != nil {
		return nil, fmt.Errorf("ledger: open intents: %w", err)
	}
	out := map[string]string{}
	for rows.Next() {
		var k, d string
		if err := rows.Scan(&k, &d); err != nil {
			rows.Close()
			return nil, err
		}
		out[k] = d
	}
	rows.Close()
	return out, rows.Err()
}

// HasOpenIntents reports whether provider has any unsettled intent, so the
// per-batch intent query can be skipped on the common clean path.
func (s *Store) HasOpenIntents(ctx context.Context, provider string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ledger WHERE operation = 'intent' AND outcome = 'pending' AND provider = $1)`, provider).Scan(&ok)
	return ok, err
}

// Vanished lists active entities of provider whose customer the run did
// not see in its source. keep filters to this shard's customers.
func (s *Store) Vanished(ctx context.Context, runID int64, provider string, keep func(customerID string) bool) ([]Vanish, error) {
	rows, err := s.pool.Query(ctx, `SELECT s.entity_key, s.customer_id, coalesce(s.remote_id, ''), s.content_hash, coalesce(s.last_run_id, 0) FROM sync_state s
		WHERE s.provider = $1 AND s.active
		AND NOT EXISTS (SELECT 1 FROM run_seen r WHERE r.run_id = $2 AND r.customer_id = s.customer_id)
		ORDER BY s.entity_key`, provider, runID)
	if err != nil {
		return nil, fmt.Errorf("ledger: vanished: %w", err)
	}
	defer rows.Close()
	var out []Vanish
	for rows.Next() {
		var v Vanish
		if err := rows.Scan(&v.EntityKey, &v.CustomerID, &v.RemoteID, &v.Hash, &v.LastRun); err != nil {
			return nil, err
		}
		if keep == nil || keep(v.CustomerID) {
			out = append(out, v)
		}
	}
	return out, rows.Err()
}

// Vanish is an entity gone from the source. LastRun is the run that last
// delivered it: it makes each deactivation's idempotency key unique to
// that delivery, so deactivate, reactivate, deactivate again is three
// requests, not a replay of the first.
type Vanish struct {
	EntityKey, CustomerID, RemoteID, Hash string
	LastRun                               int64
}

// ActiveShare counts provider's active customer records (entity keys
// "customer/...", the only ones deactivation switches off): total, and
// kept, those whose customer keep accepts (this shard's share; all of them
// when keep is nil). It is the base of the mass-deactivation guard: each
// shard must weigh its own vanished records against its own share, or N
// shards together could switch off N times the allowed fraction. One
// streaming pass over customer ids; a plain count when keep is nil.
func (s *Store) ActiveShare(ctx context.Context, provider string, keep func(customerID string) bool) (kept, total int, err error) {
	if keep == nil {
		err = s.pool.QueryRow(ctx, `SELECT count(*) FROM sync_state WHERE provider = $1 AND active AND starts_with(entity_key, 'customer/')`, provider).Scan(&total)
		if err != nil {
			return 0, 0, fmt.Errorf("ledger: active count: %w", err)
		}
		return total, total, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT customer_id FROM sync_state WHERE provider = $1 AND active AND starts_with(entity_key, 'customer/')`, provider)
	if err != nil {
		return 0, 0, fmt.Errorf("ledger: active share: %w", err)
	}
	defer rows.Close()
	var id string
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			return 0, 0, fmt.Errorf("ledger: active share: %w", err)
		}
		total++
		if keep(id) {
			kept++
		}
	}
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("ledger: active share: %w", err)
	}
	return kept, total, nil
}

// VanishedIntent is an open intent of a customer the run did not see: the
// partner call it journaled may have taken effect, and no rerun will plan
// the customer again, so nothing else would ever settle it.
type VanishedIntent struct {
	EntityKey, CustomerID, Detail string
}

// VanishedIntents lists, one per entity, provider's latest open intents
// whose customer the run did not see in its source (run_seen must be
// complete). keep filters to this shard's customers.
func (s *Store) VanishedIntents(ctx context.Context, runID int64, provider string, keep func(customerID string) bool) ([]VanishedIntent, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (l.entity_key) l.entity_key, l.customer_id, coalesce(l.intent_detail, '')
		FROM ledger l WHERE l.operation = 'intent' AND l.outcome = 'pending' AND l.provider = $1
		AND NOT EXISTS (SELECT 1 FROM run_seen r WHERE r.run_id = $2 AND r.customer_id = l.customer_id)
		ORDER BY l.entity_key, l.id DESC`, provider, runID)
	if err != nil {
		return nil, fmt.Errorf("ledger: vanished intents: %w", err)
	}
	defer rows.Close()
	var out []VanishedIntent
	for rows.Next() {
		var v VanishedIntent
		if err := rows.Scan(&v.EntityKey, &v.CustomerID, &v.Detail); err != nil {
			return nil, fmt.Errorf("ledger: vanished intents: %w", err)
		}
		if keep == nil || keep(v.CustomerID) {
			out = append(out, v)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: vanished intents: %w", err)
	}
	return out, nil
}
