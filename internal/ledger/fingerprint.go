package ledger

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Fingerprint is what customer_fingerprints holds for one customer in one
// scope (see migrations/0002_fingerprints.sql).
type Fingerprint struct {
	CustomerID string
	Sum        []byte
	Entities   []int // entities per partner of the scope, in scope order
}

// FingerprintCursor reads the fingerprints of one scope in customer_id
// byte order, for a sorted source to merge with: one index-ordered scan
// per run instead of a lookup per customer.
type FingerprintCursor struct {
	ch     chan fpChunk
	cancel context.CancelFunc
	done   chan struct{}
	rows   []Fingerprint
	i      int
	eof    bool
	last   string
}

type fpChunk struct {
	rows []Fingerprint
	err  error
}

// fpPage is how many fingerprints one keyset query reads.
const fpPage = 4096

// Fingerprints opens a cursor over scope's fingerprints. Close it.
//
// It reads in pages, each query starting after the last id read, so no
// transaction stays open for the run's length: a snapshot held that long
// keeps every dead row of the run (and of anyone else's tables) from
// being cleaned up. Pages cannot miss or repeat a row the run changes:
// the run asks in ascending order and changes only customers it has
// asked about, all at or before the last id read.
func (s *Store) Fingerprints(ctx context.Context, scope string) *FingerprintCursor {
	ctx, cancel := context.WithCancel(ctx)
	c := &FingerprintCursor{ch: make(chan fpChunk, 2), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.ch)
		after, first := "", true
		for {
			chunk, err := s.fingerprintPage(ctx, scope, after, first)
			if err != nil {
				select {
				case c.ch <- fpChunk{err: fmt.Errorf("ledger: read fingerprints: %w", err)}:
				case <-ctx.Done():
				}
				return
			}
			select {
			case c.ch <- fpChunk{rows: chunk}:
			case <-ctx.Done():
				return
			}
			if len(chunk) < fpPage {
				return
			}
			after, first = chunk[len(chunk)-1].CustomerID, false
		}
	}()
	return c
}

func (s *Store) fingerprintPage(ctx context.Context, scope, after string, first bool) ([]Fingerprint, error) {
	chunk := make([]Fingerprint, 0, fpPage)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Index order whatever the statistics say: a stale plan's sort
		// of a million rows would spill to disk.
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off`); err != nil {
			return err
		}
		// The lower bound is an index condition only when it stands alone
		// (an OR with "first page" would scan from the start every page).
		q, args := `SELECT customer_id, fingerprint, entities FROM customer_fingerprints
			WHERE scope = $1 ORDER BY customer_id LIMIT $2`, []any{scope, fpPage}
		if !first {
			q, args = `SELECT customer_id, fingerprint, entities FROM customer_fingerprints
			WHERE scope = $1 AND customer_id > $3 ORDER BY customer_id LIMIT $2`, append(args, after)
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var f Fingerprint
			if err := rows.Scan(&f.CustomerID, &f.Sum, &f.Entities); err != nil {
				return err
			}
			chunk = append(chunk, f)
		}
		return rows.Err()
	})
	return chunk, err
}

// Seek returns the fingerprint recorded for id, if any. Ids must come in
// ascending byte order across calls.
func (c *FingerprintCursor) Seek(ctx context.Context, id string) (Fingerprint, bool, error) {
	if id < c.last {
		return Fingerprint{}, false, fmt.Errorf("ledger: fingerprints asked out of order (%q after %q)", id, c.last)
	}
	c.last = id
	for {
		for c.i < len(c.rows) && c.rows[c.i].CustomerID < id {
			c.i++
		}
		if c.i < len(c.rows) {
			f := c.rows[c.i]
			return f, f.CustomerID == id, nil
		}
		if c.eof {
			return Fingerprint{}, false, nil
		}
		select {
		case ch, ok := <-c.ch:
			if !ok {
				c.eof = true
				continue
			}
			if ch.err != nil {
				return Fingerprint{}, false, ch.err
			}
			c.rows, c.i = ch.rows, 0
		case <-ctx.Done():
			return Fingerprint{}, false, ctx.Err()
		}
	}
}

// Close stops the scan and frees its connection.
func (c *FingerprintCursor) Close() {
	c.cancel()
	for range c.ch {
	}
	<-c.done
}

// MarkSeen records customers as seen by a run (see Vanished) in one COPY.
func (s *Store) MarkSeen(ctx context.Context, runID int64, customerIDs []string) error {
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"run_seen"}, []string{"run_id", "customer_id"},
		pgx.CopyFromSlice(len(customerIDs), func(i int) ([]any, error) { return []any{runID, customerIDs[i]}, nil }))
	if err != nil {
		return fmt.Errorf("ledger: mark seen: %w", err)
	}
	return nil
}

// ForgetFingerprints deletes the customers' fingerprints and returns once that is durable: a run calls it before it sends
// anything for them, so that no later run can skip a customer whose
// partners may hold other content than the fingerprint says.
func (s *Store) ForgetFingerprints(ctx context.Context, customerIDs []string) error {
	if len(customerIDs) == 0 {
		return nil
	}
	// The table grows from empty during a first run, and until it is
	// analysed the planner would scan it whole for every batch (27 ms per
	// 500 ids at 100k rows); the delete is always a few index probes.
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM customer_fingerprints WHERE customer_id = ANY($1::text[])`, customerIDs)
		return err
	})
	if err != nil {
		return fmt.Errorf("ledger: forget fingerprints: %w", err)
	}
	return nil
}

// fpArrays collects the fingerprints of one writer batch.
type fpArrays struct {
	customer, scope, entities []string
	sum                       [][]byte
	index                     map[string]int
}

func (a *fpArrays) add(scope string, f *Fingerprint) {
	// ON CONFLICT cannot touch a row twice in one statement: the last wins.
	k := f.CustomerID
	if a.index == nil {
		a.index = map[string]int{}
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range f.Entities {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(n))
	}
	b.WriteByte('}')
	if i, ok := a.index[k]; ok {
		a.scope[i], a.sum[i], a.entities[i] = scope, f.Sum, b.String()
		return
	}
	a.index[k] = len(a.customer)
	a.customer = append(a.customer, f.CustomerID)
	a.scope = append(a.scope, scope)
	a.sum = append(a.sum, f.Sum)
	a.entities = append(a.entities, b.String())
}

func (a *fpArrays) write(ctx context.Context, tx pgx.Tx, runID int64) error {
	if len(a.customer) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO customer_fingerprints AS f (customer_id, scope, fingerprint, entities, run_id)
		SELECT c, s, f, e::int[], $5 FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[]) AS t(c, s, f, e)
		ON CONFLICT (customer_id) DO UPDATE SET scope = EXCLUDED.scope, fingerprint = EXCLUDED.fingerprint, entities = EXCLUDED.entities, run_id = EXCLUDED.run_id`,
		a.customer, a.scope, a.sum, a.entities, runID)
	if err != nil {
		return fmt.Errorf("ledger: write fingerprints: %w", err)
	}
	return nil
}
