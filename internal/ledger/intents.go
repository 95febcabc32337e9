package ledger

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/northwind-data/etl/internal/crashpoint"
)

// maxNoteBatch bounds one group commit of intents.
const maxNoteBatch = 256

// noteReq is one Note waiting for its group commit.
type noteReq struct {
	runID                           int64
	provider, key, customer, detail string
	done                            chan error // buffered: the committer never blocks on a caller that gave up
}

// notes group-commits intents. Every journaling call waits for its intent
// to be durable, and a transaction of its own per intent is what made a
// ClubReady run spend more PostgreSQL CPU than the partner did: 16
// workers committing one row each, each commit waking the WAL writer and
// each foreign-key check turning the run's row into a MultiXact. Here the
// intents that arrive while one commit is in flight share the next one,
// so the batch grows with the load and a lone caller waits for one
// round trip, as before.
type notes struct {
	ch        chan *noteReq
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newStore(pool *pgxpool.Pool) *Store {
	s := &Store{pool: pool, notes: notes{ch: make(chan *noteReq, maxNoteBatch), quit: make(chan struct{}), done: make(chan struct{})}}
	go s.commitNotes()
	return s
}

// Note writes an intent row and waits for it to be durable: the partner
// call that follows cannot be looked up afterwards. An error means the
// caller must not make the call; the intent may still have been written
// (a cancelled wait, or a commit whose answer was lost), which is safe: an
// open intent for a call that never went out resolves to a fresh call.
func (s *Store) Note(ctx context.Context, runID int64, provider, entityKey, customerID, detail string) error {
	r := &noteReq{runID: runID, provider: provider, key: entityKey, customer: customerID, detail: detail, done: make(chan error, 1)}
	select {
	case s.notes.ch <- r:
	case <-s.notes.quit:
		return fmt.Errorf("ledger: write intent for %s %s: the ledger is closed", provider, entityKey)
	case <-ctx.Done():
		return fmt.Errorf("ledger: write intent for %s %s: %w", provider, entityKey, ctx.Err())
	}
	select {
	case err := <-r.done:
		if err != nil {
			return fmt.Errorf("ledger: write intent for %s %s: %w", provider, entityKey, err)
		}
		crashpoint.Hit(crashpoint.AfterIntent)
		return nil
	case <-s.notes.done:
		// Closed before or while committing: the intent may be written,
		// and nothing may be sent on it.
		return fmt.Errorf("ledger: write intent for %s %s: the ledger is closed", provider, entityKey)
	case <-ctx.Done():
		return fmt.Errorf("ledger: write intent for %s %s: %w", provider, entityKey, ctx.Err())
	}
}

func (s *Store) commitNotes() {
	defer close(s.notes.done)
	batch := make([]*noteReq, 0, maxNoteBatch)
	for {
		select {
		case r := <-s.notes.ch:
			batch = append(batch[:0], r)
		case <-s.notes.quit:
			return
		}
	drain:
		for len(batch) < maxNoteBatch {
			select {
			case r := <-s.notes.ch:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		err := s.insertNotes(batch)
		for _, r := range batch {
			r.done <- err
		}
	}
}

// insertNotes commits one batch. Its context is not any caller's: a
// caller that stops waiting must not abort the others' commit.
func (s *Store) insertNotes(batch []*noteReq) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runs := make([]int64, len(batch))
	var prov, key, cust, detail []string
	for i, r := range batch {
		runs[i] = r.runID
		prov, key, cust, detail = append(prov, r.provider), append(key, r.key), append(cust, r.customer), append(detail, r.detail)
	}
	// A run fenced out by a takeover must not journal (and so not make)
	// another call: the whole group fails, which in one process is one run.
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := CheckFence(ctx, tx, runs...); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO ledger (run_id, provider, entity_key, customer_id, operation, outcome, intent_detail)
		SELECT r, p, k, c, 'intent', 'pending', d FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS t(r, p, k, c, d, n)
		ORDER BY n`, runs, prov, key, cust, detail)
		return err
	})
}

// closeNotes stops the committer after the batch in flight; a Note after
// it fails.
func (s *Store) closeNotes() {
	s.notes.closeOnce.Do(func() { close(s.notes.quit) })
	<-s.notes.done
}
