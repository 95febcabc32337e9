package ledger

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/northwind-data/etl/internal/crashpoint"
	"github.com/northwind-data/etl/internal/redact"
)

// Entry is one ledger row, and what it does to sync_state.
type Entry struct {
	Provider   string
	EntityKey  string
	CustomerID string
	Operation  string // create, update, deactivate
	IdemKey    string
	Hash       string
	RemoteID   string
	RequestID  string
	HTTPStatus int
	Outcome    string
	Attempts   int
	Latency    time.Duration
	ErrCode    string
	ErrMsg     string

	// Deliver: the partner has this content; record it in sync_state.
	Deliver bool
	// Deactivated: the partner switched the entity off.
	Deactivated bool
	// Settle: close this entity's open intents (the outcome is known).
	Settle bool
	// Refused: the partner refused this create with a 4xx, which it may
	// replay under the key: the entity's next create uses a new
	// generation of key (create_generations).
	Refused bool
}

// RejectRow is a reject as stored.
type RejectRow struct {
	Provider  string
	File      string
	Line      int
	EntityKey string
	Field     string
	Reason    string
	Message   string
}

type item struct {
	entry  *Entry
	group  []Entry // entries that commit in one batch (AddAll)
	reject *RejectRow
	fp     *Fingerprint
	scope  string
	seen   string
	synced chan error
}

// Writer batches ledger rows, sync_state changes, rejects and seen ids
// and writes each batch in one transaction, so the ledger and the
// checkpoint never disagree. Add blocks when the database falls behind
// (backpressure rather than unbounded memory).
type Writer struct {
	s       *Store
	runID   int64
	ch      chan item
	done    chan struct{}
	mu      sync.Mutex
	err     error
	onErr   func(error)
	maxRows int
	maxWait time.Duration
	log     *zap.Logger
}

// NewWriter starts the flusher. onErr is called once if a write fails (the
// engine stops the run: outcomes it cannot record must not pile up).
func (s *Store) NewWriter(runID int64, onErr func(error)) *Writer {
	return s.NewLoggedWriter(runID, onErr, nil)
}

// NewLoggedWriter is NewWriter that logs each committed batch at debug
// (what was checkpointed, and how long the transaction took). log may be
// nil.
func (s *Store) NewLoggedWriter(runID int64, onErr func(error), log *zap.Logger) *Writer {
	if log == nil {
		log = zap.NewNop()
	}
	w := &Writer{s: s, runID: runID, ch: make(chan item, 8192), done: make(chan struct{}), onErr: onErr, maxRows: 2000, maxWait: 50 * time.Millisecond, log: log}
	go w.loop()
	return w
}

func (w *Writer) Add(e Entry) { w.ch <- item{entry: &e} }

// AddAll queues entries that must commit together: an operation's row and
// its children's (a Q2 client and the cards the same call confirmed). A
// batch boundary between them, then a crash, would settle the parent's
// intent and checkpoint the parent while the children's ids are lost, and
// the next run, seeing the parent unchanged, would never record them.
func (w *Writer) AddAll(es []Entry) {
	if len(es) == 1 {
		w.Add(es[0])
		return
	}
	w.ch <- item{group: es}
}
func (w *Writer) Reject(r RejectRow) { w.ch <- item{reject: &r} }
func (w *Writer) Seen(customerID string) {
	w.ch <- item{seen: customerID}
}

// Fingerprint records that every partner of scope has the customer's
// current content (see Store.ForgetFingerprints for the other half).
func (w *Writer) Fingerprint(scope string, f Fingerprint) {
	w.ch <- item{fp: &f, scope: scope}
}

// Sync returns once everything added before it is written.
func (w *Writer) Sync(ctx context.Context) error {
	ch := make(chan error, 1)
	select {
	case w.ch <- item{synced: ch}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes what is left and returns the first write error.
func (w *Writer) Close() error {
	close(w.ch)
	<-w.done
	return w.Err()
}

func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *Writer) loop() {
	defer close(w.done)
	var batch []item
	timer := time.NewTimer(w.maxWait)
	defer timer.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if w.Err() == nil {
			// The ledger must be written even while the run is being
			// cancelled: that is what makes the rerun safe.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			err := w.write(ctx, batch)
			cancel()
			crashpoint.HitUnless(crashpoint.AfterLedgerCommit, err)
			if err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				if w.onErr != nil {
					w.onErr(err)
				}
			}
		}
		batch = batch[:0]
	}
	for {
		select {
		case it, ok := <-w.ch:
			if !ok {
				flush()
				return
			}
			if it.synced != nil {
				flush()
				it.synced <- w.Err()
				continue
			}
			batch = append(batch, it)
			if len(batch) >= w.maxRows {
				flush()
			}
		case <-timer.C:
			flush()
			timer.Reset(w.maxWait)
		}
	}
}

func (w *Writer) write(ctx context.Context, batch []item) error {
	var ledgerRows, rejectRows, seenRows [][]any
	var st stateArrays
	var settleP, settleC, settleK []string
	var fps fpArrays
	refused := map[[3]string]int{} // provider, entity, customer -> refusals in this batch
	var flat []item
	for _, it := range batch {
		if it.group == nil {
			flat = append(flat, it)
			continue
		}
		for i := range it.group {
			flat = append(flat, item{entry: &it.group[i]})
		}
	}
	for _, it := range flat {
		switch {
		case it.entry != nil:
			e := it.entry
			ledgerRows = append(ledgerRows, []any{w.runID, e.Provider, e.EntityKey, e.CustomerID, e.Operation,
				nz(e.IdemKey), nz(e.Hash), nz(e.RemoteID), nz(e.RequestID), nzi(e.HTTPStatus), e.Outcome, e.Attempts,
				int(e.Latency / time.Millisecond), nz(e.ErrCode), nz(redact.Text(e.ErrMsg))})
			if e.Deliver || e.Deactivated {
				st.add(e, w.runID)
			}
			if e.Refused {
				refused[[3]string{e.Provider, e.EntityKey, e.CustomerID}]++
			}
			if e.Settle {
				settleP = append(settleP, e.Provider)
				settleC = append(settleC, e.CustomerID)
				settleK = append(settleK, e.EntityKey)
			}
		case it.reject != nil:
			r := it.reject
			rejectRows = append(rejectRows, []any{w.runID, nz(r.Provider), r.File, nzi(r.Line), nz(r.EntityKey), nz(r.Field), r.Reason, redact.Text(r.Message)})
		case it.fp != nil:
			fps.add(it.scope, it.fp)
		default:
			seenRows = append(seenRows, []any{w.runID, it.seen})
		}
	}
	start := time.Now()
	err := pgx.BeginFunc(ctx, w.s.pool, func(tx pgx.Tx) error {
		if err := CheckFence(ctx, tx, w.runID); err != nil {
			return err
		}
		if len(ledgerRows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ledger"}, []string{"run_id", "provider", "entity_key", "customer_id", "operation",
				"idempotency_key", "content_hash", "remote_id", "request_id", "http_status", "outcome", "attempts", "latency_ms", "error_code", "error_message"},
				pgx.CopyFromRows(ledgerRows)); err != nil {
				return fmt.Errorf("ledger: write %d rows: %w", len(ledgerRows), err)
			}
		}
		if len(st.provider) > 0 {
			// Later entries for the same key win: dedupe keeping the last,
			// since ON CONFLICT cannot touch a row twice in one statement.
			st.dedupe()
			if _, err := tx.Exec(ctx, `INSERT INTO sync_state AS s (provider, entity_key, customer_id, content_hash, remote_id, last_request_id, last_run_id, active, updated_at)
				SELECT p, k, c, h, nullif(r, ''), nullif(q, ''), $8, a, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[]) AS t(p, k, c, h, r, q, a)
				ON CONFLICT (provider, entity_key) DO UPDATE SET
					content_hash = EXCLUDED.content_hash,
					remote_id = coalesce(EXCLUDED.remote_id, s.remote_id),
					last_request_id = coalesce(EXCLUDED.last_request_id, s.last_request_id),
					last_run_id = EXCLUDED.last_run_id, active = EXCLUDED.active, updated_at = now()`,
				st.provider, st.key, st.customer, st.hash, st.remote, st.request, st.active, w.runID); err != nil {
				return fmt.Errorf("ledger: write sync_state: %w", err)
			}
		}
		if len(refused) > 0 {
			var p, k, c []string
			var n []int32
			for key, v := range refused {
				p, k, c, n = append(p, key[0]), append(k, key[1]), append(c, key[2]), append(n, int32(v))
			}
			if _, err := tx.Exec(ctx, `INSERT INTO create_generations AS g (provider, entity_key, customer_id, generation)
				SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[])
				ON CONFLICT (provider, entity_key) DO UPDATE SET generation = g.generation + EXCLUDED.generation`, p, k, c, n); err != nil {
				return fmt.Errorf("ledger: write create generations: %w", err)
			}
		}
		if err := fps.write(ctx, tx, w.runID); err != nil {
			return err
		}
		if len(settleP) > 0 {
			// One lookup per settled entity in the partial index of open
			// intents, whatever the statistics say. Left to the planner, a
			// first run (no statistics yet, one open intent estimated)
			// joined every open intent against every settled entity, 40 ms
			// per batch; and a hash join would read every open intent of
			// the provider, however many crashed runs left behind. OFFSET 0
			// keeps the lateral lookup from being flattened into a join
			// the planner could reorder.
			if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
				return fmt.Errorf("ledger: settle intents: %w", err)
			}
			if _, err := tx.Exec(ctx, `UPDATE ledger SET outcome = 'settled', intent_detail = NULL
				WHERE id = ANY (ARRAY(SELECT o.id FROM unnest($1::text[], $2::text[], $3::text[]) AS t(p, c, k)
					CROSS JOIN LATERAL (SELECT id FROM ledger l WHERE l.operation = 'intent' AND l.outcome = 'pending'
						AND l.provider = t.p AND l.customer_id = t.c AND l.entity_key = t.k OFFSET 0) o))`, settleP, settleC, settleK); err != nil {
				return fmt.Errorf("ledger: settle intents: %w", err)
			}
		}
		if len(rejectRows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"rejects"}, []string{"run_id", "provider", "file", "line", "entity_key", "field", "reason", "message"},
				pgx.CopyFromRows(rejectRows)); err != nil {
				return fmt.Errorf("ledger: write rejects: %w", err)
			}
		}
		if len(seenRows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"run_seen"}, []string{"run_id", "customer_id"}, pgx.CopyFromRows(seenRows)); err != nil {
				return fmt.Errorf("ledger: write seen ids: %w", err)
			}
		}
		return nil
	})
	if err == nil {
		w.log.Debug("checkpoint committed", zap.Int64("run_id", w.runID), zap.Int("rows", len(batch)), zap.Int("ledger_rows", len(ledgerRows)),
			zap.Int("sync_state_rows", len(st.provider)), zap.Int("rejects", len(rejectRows)), zap.Int("seen", len(seenRows)),
			zap.Int("settled", len(settleP)), zap.Duration("took", time.Since(start)))
	}
	return err
}

type stateArrays struct {
	provider, key, customer, hash, remote, request []string
	active                                         []bool
}

func (s *stateArrays) add(e *Entry, _ int64) {
	s.provider = append(s.provider, e.Provider)
	s.key = append(s.key, e.EntityKey)
	s.customer = append(s.customer, e.CustomerID)
	s.hash = append(s.hash, e.Hash)
	s.remote = append(s.remote, e.RemoteID)
	s.request = append(s.request, e.RequestID)
	s.active = append(s.active, !e.Deactivated)
}

func (s *stateArrays) dedupe() {
	idx := make(map[[2]string]int, len(s.key))
	var out stateArrays
	for i := range s.key {
		k := [2]string{s.provider[i], s.key[i]}
		if j, ok := idx[k]; ok {
			out.customer[j], out.hash[j], out.active[j] = s.customer[i], s.hash[i], s.active[i]
			if s.remote[i] != "" {
				out.remote[j] = s.remote[i]
			}
			if s.request[i] != "" {
				out.request[j] = s.request[i]
			}
			continue
		}
		idx[k] = len(out.key)
		out.provider = append(out.provider, s.provider[i])
		out.key = append(out.key, s.key[i])
		out.customer = append(out.customer, s.customer[i])
		out.hash = append(out.hash, s.hash[i])
		out.remote = append(out.remote, s.remote[i])
		out.request = append(out.request, s.request[i])
		out.active = append(out.active, s.active[i])
	}
	*s = out
}

func nz(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nzi(i int) any {
	if i == 0 {
		return nil
	}
	return i
}
