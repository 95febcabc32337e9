package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// OpenIntent is an entity whose partner call was journaled (an intent row
// written before a call whose effect cannot be looked up) and never
// settled by an outcome: a run died before the call ended, or the call's
// fate is unknown. The next run resolves it with the partner's Resolver
// while the journaled detail is still usable; past that, only an operator
// can (SettleIntent).
type OpenIntent struct {
	ID         int64 // the entity's latest open intent row
	Provider   string
	EntityKey  string
	CustomerID string
	RunID      int64  // the run that wrote it
	RunStatus  string // that run's status (running, crashed, partial, ...)
	Created    time.Time
	Age        time.Duration // by the database's clock
	// Detail is the partner's journal detail (a ClubReady ProfileToken
	// with the card's last four and member; never a card number). Only
	// the partner package reads it.
	Detail string
	Open   int // open intent rows of the entity (one per attempt that journaled)
	// The entity's latest call after the intent, if any: its outcome and
	// error code (e.g. uncertain / needs_operator) and run.
	LastOutcome, LastCode string
	LastRunID             int64
}

// ListOpenIntents lists every open intent of provider ("" = every provider),
// oldest first, one per entity.
func (s *Store) ListOpenIntents(ctx context.Context, provider string) ([]OpenIntent, error) {
	// The lateral lookup of the entity's latest call reads only the runs
	// from the intent's on (ledger_run leads with run_id): an operator
	// command must not scan a nightly ledger once per intent.
	rows, err := s.pool.Query(ctx, `SELECT * FROM (
		SELECT DISTINCT ON (l.provider, l.entity_key) l.id, l.provider, l.entity_key, l.customer_id, l.run_id, r.status, l.created_at,
			extract(epoch FROM now() - l.created_at)::float8, coalesce(l.intent_detail, ''),
			count(*) OVER (PARTITION BY l.provider, l.entity_key)::int,
			coalesce(o.outcome, ''), coalesce(o.error_code, ''), coalesce(o.run_id, 0)
		FROM ledger l JOIN runs r ON r.id = l.run_id
		LEFT JOIN LATERAL (SELECT x.outcome, x.error_code, x.run_id FROM ledger x
			WHERE x.run_id >= l.run_id AND x.provider = l.provider AND x.entity_key = l.entity_key AND x.operation <> 'intent'
			ORDER BY x.id DESC LIMIT 1) o ON true
		WHERE l.operation = 'intent' AND l.outcome = 'pending' AND ($1 = '' OR l.provider = $1)
		ORDER BY l.provider, l.entity_key, l.id DESC) t
		ORDER BY created_at, entity_key`, provider)
	if err != nil {
		return nil, fmt.Errorf("ledger: list open intents: %w", err)
	}
	defer rows.Close()
	var out []OpenIntent
	for rows.Next() {
		var o OpenIntent
		var age float64
		if err := rows.Scan(&o.ID, &o.Provider, &o.EntityKey, &o.CustomerID, &o.RunID, &o.RunStatus, &o.Created, &age, &o.Detail,
			&o.Open, &o.LastOutcome, &o.LastCode, &o.LastRunID); err != nil {
			return nil, fmt.Errorf("ledger: list open intents: %w", err)
		}
		o.Age = time.Duration(age * float64(time.Second))
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: list open intents: %w", err)
	}
	return out, nil
}

// How an operator settles an intent.
const (
	// SettledDelivered: the partner has the entity (the operator found
	// it there). sync_state records it delivered; nothing is resent.
	SettledDelivered = "delivered"
	// SettledResend: the partner does not have it. The intent closes and
	// the next run sends the entity afresh (for ClubReady: a new
	// ProfileToken and an import).
	SettledResend = "resend"
)

// settledUnknownHash stands in for a content hash when no call after the
// intent recorded one (the run died first): it matches no content, so the
// next run plans an update, which ClubReady records without a call.
const settledUnknownHash = "settled-by-operator"

// Settlement is one operator decision.
type Settlement struct {
	Provider  string
	EntityKey string
	As        string // SettledDelivered or SettledResend
	By        string // who decided (a person, not a role)
	Reason    string // why: what they saw at the partner
	RemoteID  string // delivered only, optional: the partner's id they found
	// Force settles even while a run of the provider is marked running
	// (that run may be retrying this very intent).
	Force bool
}

// Settled is what SettleIntent did.
type Settled struct {
	ID         int64 // intent_settlements row
	CustomerID string
	Intents    int // intent rows closed
}

// ErrNoOpenIntent means the entity has no open intent at the provider
// (never journaled, or already settled).
var ErrNoOpenIntent = errors.New("no open intent")

// RunningError refuses a settlement while a run of the provider is marked
// running: a live run may be retrying the intent, and a killed one is
// only marked crashed by the next run.
type RunningError struct {
	RunID int64
	Host  string
	PID   int
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("run %d (host %s, pid %d) is marked running: wait for it to end; if it died, the next `etl run` marks it crashed (or pass --force)",
		e.RunID, e.Host, e.PID)
}

// SettleIntent records an operator's decision about one entity's open
// intents, all in one transaction: the settlement row (who, why, what),
// the intent rows closed and linked to it, and for "delivered" the
// entity's sync_state row; the customer's fingerprint is forgotten so the
// next run compares it in full.
func (s *Store) SettleIntent(ctx context.Context, st Settlement) (Settled, error) {
	var out Settled
	switch {
	case st.Provider == "" || st.EntityKey == "":
		return out, errors.New("ledger: settle: provider and entity key are required")
	case st.As != SettledDelivered && st.As != SettledResend:
		return out, fmt.Errorf("ledger: settle: settle as %q: want %s or %s", st.As, SettledDelivered, SettledResend)
	case strings.TrimSpace(st.By) == "" || strings.TrimSpace(st.Reason) == "":
		return out, errors.New("ledger: settle: who (--by) and why (--reason) are required")
	case st.As == SettledResend && st.RemoteID != "":
		return out, errors.New("ledger: settle: a remote id says the partner has it: settle as delivered")
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, customer_id, run_id FROM ledger
			WHERE operation = 'intent' AND outcome = 'pending' AND provider = $1 AND entity_key = $2
			ORDER BY id FOR UPDATE`, st.Provider, st.EntityKey)
		if err != nil {
			return err
		}
		var ids []int64
		var runID int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id, &out.CustomerID, &runID); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return fmt.Errorf("%w for %s %s", ErrNoOpenIntent, st.Provider, st.EntityKey)
		}
		if !st.Force {
			var re RunningError
			err := tx.QueryRow(ctx, `SELECT id, host, pid FROM runs WHERE status = 'running' AND $1 = ANY(providers) ORDER BY id LIMIT 1`,
				st.Provider).Scan(&re.RunID, &re.Host, &re.PID)
			if err == nil {
				return &re
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		if err := tx.QueryRow(ctx, `INSERT INTO intent_settlements (provider, entity_key, customer_id, settled_as, settled_by, reason,
			remote_id, intent_ids, intent_run_id, forced) VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8, $9, $10) RETURNING id`,
			st.Provider, st.EntityKey, out.CustomerID, st.As, strings.TrimSpace(st.By), strings.TrimSpace(st.Reason), st.RemoteID,
			ids, runID, st.Force).Scan(&out.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE ledger SET outcome = 'settled', intent_detail = NULL, settlement_id = $2 WHERE id = ANY($1)`,
			ids, out.ID); err != nil {
			return err
		}
		out.Intents = len(ids)
		if st.As == SettledDelivered {
			// The content the partner has is the one its last call
			// carried; without one the next run plans an update.
			var hash string
			err := tx.QueryRow(ctx, `SELECT content_hash FROM ledger WHERE run_id >= $1 AND provider = $2 AND entity_key = $3
				AND operation IN ('create', 'update') AND content_hash IS NOT NULL ORDER BY id DESC LIMIT 1`,
				runID, st.Provider, st.EntityKey).Scan(&hash)
			if errors.Is(err, pgx.ErrNoRows) {
				hash = settledUnknownHash
			} else if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO sync_state AS s (provider, entity_key, customer_id, content_hash, remote_id, last_request_id, last_run_id, active, updated_at)
				VALUES ($1, $2, $3, $4, nullif($5, ''), 'settled-by-operator', $6, true, now())
				ON CONFLICT (provider, entity_key) DO UPDATE SET content_hash = EXCLUDED.content_hash,
					remote_id = coalesce(EXCLUDED.remote_id, s.remote_id), last_request_id = EXCLUDED.last_request_id,
					last_run_id = EXCLUDED.last_run_id, active = true, updated_at = now()`,
				st.Provider, st.EntityKey, out.CustomerID, hash, st.RemoteID, runID); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM customer_fingerprints WHERE customer_id = $1`, out.CustomerID)
		return err
	})
	if err != nil {
		var re *RunningError
		if errors.Is(err, ErrNoOpenIntent) || errors.As(err, &re) {
			return Settled{}, err
		}
		return Settled{}, fmt.Errorf("ledger: settle %s %s: %w", st.Provider, st.EntityKey, err)
	}
	return out, nil
}

// IntentSettlement is one recorded operator decision.
type IntentSettlement struct {
	ID                                      int64
	Provider, EntityKey, CustomerID, As, By string
	Reason, RemoteID                        string
	Intents                                 int
	IntentRunID                             int64
	Forced                                  bool
	At                                      time.Time
}

// Settlements lists the recorded decisions for provider ("" = all),
// newest first.
func (s *Store) Settlements(ctx context.Context, provider string, limit int) ([]IntentSettlement, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, provider, entity_key, customer_id, settled_as, settled_by, reason, coalesce(remote_id, ''),
		cardinality(intent_ids), intent_run_id, forced, settled_at FROM intent_settlements
		WHERE $1 = '' OR provider = $1 ORDER BY id DESC LIMIT $2`, provider, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: settlements: %w", err)
	}
	defer rows.Close()
	var out []IntentSettlement
	for rows.Next() {
		var x IntentSettlement
		if err := rows.Scan(&x.ID, &x.Provider, &x.EntityKey, &x.CustomerID, &x.As, &x.By, &x.Reason, &x.RemoteID, &x.Intents,
			&x.IntentRunID, &x.Forced, &x.At); err != nil {
			return nil, fmt.Errorf("ledger: settlements: %w", err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}
