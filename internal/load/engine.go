// Package load delivers planned operations to partners: bounded concurrent
// workers per partner, intents and outcomes written to the ledger, and
// stop-on-fatal. Partners plug in through the contract in internal/partner.
package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/northwind-data/etl/internal/crashpoint"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

// Source streams validated customers and rejects (the CSV and Postgres
// sources, adapted by the caller). An error from emit or reject, or ctx,
// stops it.
type Source interface {
	Read(ctx context.Context, emit func(*model.Customer) error, reject func(model.Reject) error) error
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, emit func(*model.Customer) error, reject func(model.Reject) error) error

func (f SourceFunc) Read(ctx context.Context, emit func(*model.Customer) error, reject func(model.Reject) error) error {
	return f(ctx, emit, reject)
}

// Observer sees progress (terminal bars, JSON progress lines, metrics).
type Observer interface {
	Planned(provider string, kind partner.Kind)
	Unchanged(provider string)
	Finished(provider string, r partner.Result, latency time.Duration)
}

// Engine runs one delivery: read, plan against sync_state, send, record.
// Build it with New; it runs one Run at a time.
type Engine struct {
	store     *ledger.Store
	providers []partner.Provider
	key       []byte // HMAC key for content hashes and idempotency keys
	settings

	cur      atomic.Pointer[runState]
	fps      fpTracker
	compared int64
}

// runState is one run's lanes and flow, and what Unchanged needs of it.
type runState struct {
	ctx   context.Context
	runID int64 // 0 in a dry run: nothing is marked seen
	// deactivates: the run reads run_seen afterwards (some partner
	// deactivates vanished records, or journals intents that a vanished
	// customer would leave open), so skipped customers are marked seen.
	deactivates bool
	fpOnce      sync.Once
	fpCursor    *ledger.FingerprintCursor
	lanes       map[string]*lane
	order       []string
	flow        *flow
}

// Summary is what a run did, per partner.
type Summary struct {
	RunID      int64
	Compared   int64 // customers compared in full with sync_state (not skipped by their fingerprint)
	Rejects    int   // rows rejected by validation (all partners)
	Providers  map[string]*Counts
	Stopped    map[string]string // partner -> fatal reason
	Cancelled  bool
	DeactGuard map[string]string // partner -> why deactivation was refused
}

// Counts per partner. Mapped rejects are records this partner could not take.
type Counts struct {
	Create      int64 `json:"create"`
	Update      int64 `json:"update"`
	Deactivate  int64 `json:"deactivate"`
	Unchanged   int64 `json:"unchanged"`
	Resolve     int64 `json:"resolve"`
	MapRejected int64 `json:"map_rejected"`
	OK          int64 `json:"ok"`
	Rejected    int64 `json:"rejected"`
	Failed      int64 `json:"failed"`
	Uncertain   int64 `json:"uncertain"`
	// NotSent: planned but never sent (the partner stopped, the run was
	// cancelled); the rerun sends them.
	NotSent int64 `json:"not_sent"`
	// NoUpdateAPI: changes the partner has no call for (ClubReady payment
	// profiles, Q2 client meta). Nothing was sent for them; the checkpoint
	// records the new content so the next run does not try again (the
	// ledger row is outcome ok, request_id
	// partner.RequestNotSentNoUpdateAPI). Not an ok delivery, and not a
	// call.
	NoUpdateAPI int64            `json:"not_sent_no_update_api"`
	Calls       int64            `json:"calls"`
	Attempts    int64            `json:"attempts"`
	ErrorCodes  map[string]int64 `json:"error_codes,omitempty"`
	mu          sync.Mutex
}

// notSentNoAPI reports whether r is an update the partner has no API for.
func notSentNoAPI(r partner.Result) bool {
	return r.Outcome == partner.OK && r.RequestID == partner.RequestNotSentNoUpdateAPI
}

func (c *Counts) addErr(code string) {
	c.mu.Lock()
	if c.ErrorCodes == nil {
		c.ErrorCodes = map[string]int64{}
	}
	c.ErrorCodes[code]++
	c.mu.Unlock()
}

// Delivered reports whether every planned op of every partner succeeded.
func (s *Summary) Delivered() bool {
	if s.Cancelled || len(s.Stopped) > 0 || len(s.DeactGuard) > 0 {
		return false
	}
	for _, c := range s.Providers {
		if c.Rejected+c.Failed+c.Uncertain+c.NotSent > 0 {
			return false
		}
	}
	return true
}

// Calls is the total number of partner operations sent.
func (s *Summary) Calls() int64 {
	var n int64
	for _, c := range s.Providers {
		n += c.Calls
	}
	return n
}

// Run executes one run whose row runID the caller created (and finishes).
func (e *Engine) Run(ctx context.Context, runID int64, src Source) (*Summary, error) {
	// callCtx outlives ctx by the grace period, so calls in flight when
	// SIGTERM arrives can finish and be recorded.
	callCtx, cancelCalls := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelCalls()
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.NewTimer(e.grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelCalls()
		case <-callCtx.Done():
		}
	})
	defer stopGrace()

	// runCtx is cancelled by a signal or by a ledger write failure.
	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	var w *ledger.Writer
	if !e.dryRun {
		w = e.store.NewLoggedWriter(runID, func(err error) {
			e.log.Error("ledger write failed: stopping the run", zap.Error(err))
			cancelRun(err)
		}, e.log)
	}
	rs, resolvers, err := e.newRun(runCtx, runID)
	if err != nil {
		return nil, err
	}
	sum := &Summary{RunID: runID, Providers: map[string]*Counts{}, Stopped: map[string]string{}, DeactGuard: map[string]string{}}
	for _, name := range rs.order {
		sum.Providers[name] = rs.lanes[name].counts
	}
	e.cur.Store(rs)
	defer e.cur.Store(nil)
	defer func() {
		rs.fpOnce.Do(func() {}) // orders this read after the source's Do
		if rs.fpCursor != nil {
			rs.fpCursor.Close()
		}
	}()

	// Lane goroutines never fail (outcomes are results, not errors); the
	// group only waits for them.
	var g errgroup.Group
	for _, name := range rs.order {
		l := rs.lanes[name]
		g.Go(func() error { l.dispatch(runCtx, rs.flow, e.batchWait, e.dropper(l, rs.flow)); return nil })
		for i := 0; i < l.workers; i++ {
			g.Go(func() error { e.work(callCtx, runID, l, rs.flow, w); return nil })
		}
	}
	readErr, planErr := e.read(runCtx, cancelRun, rs, &planner{e: e, rs: rs, w: w, resolvers: resolvers}, src, sum)

	// Deactivate what vanished, only after a complete, clean read.
	if readErr == nil && planErr == nil && runCtx.Err() == nil && e.deactivate && !e.dryRun {
		if err := e.deactivateVanished(runCtx, runID, rs, w, sum); err != nil {
			readErr = err
		}
	}
	for _, name := range rs.order {
		rs.lanes[name].close()
	}
	_ = g.Wait()
	if w != nil {
		if err := w.Close(); err != nil && readErr == nil {
			readErr = err
		}
	}
	return e.outcome(ctx, runCtx, rs, sum, readErr, planErr)
}

// outcome completes the summary and picks the run's error: none for a
// cancelled run (its summary says so), else a ledger failure, the
// source's error or the planners'.
func (e *Engine) outcome(ctx, runCtx context.Context, rs *runState, sum *Summary, readErr, planErr error) (*Summary, error) {
	for _, name := range rs.order {
		if l := rs.lanes[name]; l.stopped.Load() {
			sum.Stopped[name], _ = l.stopMsg.Load().(string)
		}
	}
	if ctx.Err() != nil {
		sum.Cancelled = true
		return sum, nil
	}
	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) {
		return sum, cause
	}
	if readErr != nil {
		return sum, readErr
	}
	return sum, planErr
}

// newRun builds the run's lanes, in partner order, and finds which
// Resolver partners have intents left open by an earlier run.
func (e *Engine) newRun(ctx context.Context, runID int64) (*runState, map[string]bool, error) {
	e.fps.reset()
	atomic.StoreInt64(&e.compared, 0)
	rs := &runState{ctx: ctx, lanes: map[string]*lane{}, flow: newFlow(e.maxQueued)}
	if !e.dryRun {
		rs.runID = runID
	}
	resolvers := map[string]bool{}
	for _, p := range e.providers {
		n := e.workers[p.Name()]
		if n <= 0 {
			n = e.defaultWork
		}
		l := newLane(p, n)
		l.log = e.log
		rs.lanes[p.Name()] = l
		rs.order = append(rs.order, p.Name())
		rs.flow.lanes = append(rs.flow.lanes, l)
		_, deactivates := p.(partner.Deactivator)
		rs.deactivates = rs.deactivates || ((deactivates || l.journals) && e.deactivate)
		if l.journals && !e.dryRun {
			has, err := e.store.HasOpenIntents(ctx, p.Name())
			if err != nil {
				return nil, nil, err
			}
			resolvers[p.Name()] = has
		}
	}
	return rs, resolvers, nil
}

// read reads the source on this goroutine while planners (sync_state
// lookup, mapping, hashing) run beside it, so that parsing, database
// round trips and hashing overlap. The planners apply backpressure
// through planCh and the flow's budget.
func (e *Engine) read(ctx context.Context, cancel context.CancelCauseFunc, rs *runState, pl *planner, src Source, sum *Summary) (readErr, planErr error) {
	planCh := make(chan []*model.Customer, e.planners)
	var planMu sync.Mutex
	var planWG sync.WaitGroup
	for i := 0; i < e.planners; i++ {
		planWG.Add(1)
		go func() {
			defer planWG.Done()
			for b := range planCh {
				rs.flow.planning()
				err := pl.plan(ctx, b)
				rs.flow.planned()
				if err != nil {
					planMu.Lock()
					if planErr == nil {
						planErr = err
						cancel(err)
					}
					planMu.Unlock()
				}
			}
		}()
	}
	batch := make([]*model.Customer, 0, e.planBatch)
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		select {
		case planCh <- batch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		batch = make([]*model.Customer, 0, e.planBatch)
		return nil
	}
	var rejects atomic.Int64
	readErr = src.Read(ctx,
		func(c *model.Customer) error {
			batch = append(batch, c)
			if len(batch) >= e.planBatch {
				return send()
			}
			return nil
		},
		func(r model.Reject) error {
			rejects.Add(1)
			if e.dryRun && e.dryRunRejects != nil {
				e.dryRunRejects(rejectRow(r))
			}
			if pl.w != nil {
				pl.w.Reject(rejectRow(r))
				if id := partner.Key(r.EntityKey).Customer(); id != "" && rs.deactivates {
					pl.w.Seen(id) // a bad row is not a vanished customer
				}
			}
			return nil
		})
	if readErr == nil {
		readErr = send()
	}
	close(planCh)
	planWG.Wait()
	sum.Rejects = int(rejects.Load())
	sum.Compared = atomic.LoadInt64(&e.compared)
	if errors.Is(readErr, planErr) {
		readErr = nil // the planner's error, reported once
	}
	return readErr, planErr
}

// dropper accounts for a task the lane does not send: the rerun sends it.
func (e *Engine) dropper(l *lane, f *flow) func(task) {
	return func(t task) {
		l.counts.addNotSent(1) // workers add to it at the same time
		e.fps.done(t.op.CustomerID, false)
		if t.held {
			f.release(1)
		}
	}
}

// work is one of a lane's workers: it makes the calls of the jobs it is
// handed and records their results, until the lane's dispatcher is done.
func (e *Engine) work(ctx context.Context, runID int64, l *lane, f *flow, w *ledger.Writer) {
	for j := range l.jobs {
		f.calls.Add(1)
		e.call(ctx, runID, l, j, w)
		f.release(j.held)
		if f.calls.Add(-1) == 0 {
			f.wakeAll() // no call in flight: flow.starved may have changed
		}
	}
}

func (e *Engine) call(ctx context.Context, runID int64, l *lane, j job, w *ledger.Writer) {
	if l.stopped.Load() || ctx.Err() != nil {
		l.counts.addNotSent(len(j.ops))
		for _, op := range j.ops {
			e.fps.done(op.CustomerID, false)
		}
		return
	}
	start := time.Now()
	var results []partner.Result
	jr := journal{store: e.store, runID: runID, provider: l.p.Name()}
	ctx = httpx.WithStop(ctx, l.halt)
	switch j.kind {
	case resolveJob:
		results = []partner.Result{l.p.(partner.Resolver).Resolve(ctx, j.ops[0], jr)}
	case deactivateJob:
		results = []partner.Result{l.p.(partner.Deactivator).Deactivate(ctx, j.ops[0])}
	default:
		results = l.p.Send(ctx, j.ops, jr)
	}
	lat := time.Since(start)
	crashpoint.Hit(crashpoint.AfterSend)
	if madeCall(results, len(j.ops)) {
		atomic.AddInt64(&l.counts.Calls, 1)
	}
	for i, op := range j.ops {
		var r partner.Result
		if i < len(results) {
			r = results[i]
		} else {
			r = partner.Result{EntityKey: op.EntityKey, Outcome: partner.Failed, Err: errors.New("partner returned fewer results than ops")}
		}
		e.record(l, op, r, lat, w)
	}
}

func (c *Counts) addNotSent(n int) { atomic.AddInt64(&c.NotSent, int64(n)) }

// madeCall reports whether a job reached the partner: not when every op
// was an update the partner has no API for and no call was made for it
// (ClubReady; a Q2 update still reconciles the client's cards).
func madeCall(results []partner.Result, ops int) bool {
	if len(results) < ops {
		return true
	}
	for _, r := range results {
		if !notSentNoAPI(r) || r.Attempts > 0 {
			return true
		}
	}
	return false
}

// attemptsOf is what a ledger row records as attempts: a sent op was
// attempted at least once, even when its client lost count (a failure
// built before the first answer); an update with no API, or a call the
// breaker or retry budget never let out, records what it says.
func attemptsOf(r partner.Result) int {
	if r.Attempts > 0 || notSentNoAPI(r) {
		return r.Attempts
	}
	if n := httpx.AttemptsOf(r.Err); n > 0 {
		return n
	}
	if httpx.KindOf(r.Err) == httpx.Unavailable {
		return 0
	}
	return 1
}

func (e *Engine) record(l *lane, op partner.Op, r partner.Result, lat time.Duration, w *ledger.Writer) {
	name := l.p.Name()
	c := l.counts
	r.Attempts = attemptsOf(r)
	atomic.AddInt64(&c.Attempts, int64(r.Attempts))
	switch {
	case notSentNoAPI(r):
		atomic.AddInt64(&c.NoUpdateAPI, 1)
	case r.Outcome == partner.OK:
		atomic.AddInt64(&c.OK, 1)
	case r.Outcome == partner.Rejected:
		atomic.AddInt64(&c.Rejected, 1)
	case r.Outcome == partner.Uncertain:
		atomic.AddInt64(&c.Uncertain, 1)
	default:
		r.Outcome = partner.Failed
		atomic.AddInt64(&c.Failed, 1)
	}
	code, msg := "", ""
	if r.Err != nil {
		code, msg = httpx.CodeOf(r.Err), r.Err.Error()
		if code == "" {
			code = string(r.Outcome)
		}
		c.addErr(code)
		if httpx.KindOf(r.Err) == httpx.Fatal && l.stopped.CompareAndSwap(false, true) {
			l.haltNow()
			l.stopMsg.Store(msg)
			e.log.Error("partner stopped: fix the cause and rerun", zap.String("provider", name), zap.String("reason", msg))
		}
	}
	if r.HTTPStatus == 0 {
		r.HTTPStatus = httpx.StatusOf(r.Err)
	}
	if e.observer != nil {
		e.observer.Finished(name, r, lat)
	}
	if w == nil {
		return
	}
	// The operation's row and its children's commit together (AddAll).
	entries := []ledger.Entry{{
		Provider: name, EntityKey: string(op.EntityKey), CustomerID: op.CustomerID, Operation: string(op.Kind),
		IdemKey: op.IdemKey, Hash: op.Hash, RemoteID: firstNonEmpty(r.RemoteID, op.RemoteID), RequestID: r.RequestID,
		HTTPStatus: r.HTTPStatus, Outcome: string(r.Outcome), Attempts: r.Attempts, Latency: lat,
		ErrCode: code, ErrMsg: truncate(msg, 1000),
		Deliver:     r.Outcome == partner.OK && op.Kind != partner.Deactivate,
		Deactivated: r.Outcome == partner.OK && op.Kind == partner.Deactivate,
		// Only partners that journal intents have any to settle; an
		// uncertain outcome keeps its intent open for the rerun.
		Settle: l.journals && r.Outcome != partner.Uncertain,
		// A create the partner refused (4xx) and that left nothing at the
		// partner: its key may replay the refusal, so the next create
		// gets a new one.
		Refused: op.Kind == partner.Create && r.Outcome == partner.Rejected && r.RemoteID == "" && r.HTTPStatus >= 400 && r.HTTPStatus < 500,
	}}
	for _, ch := range r.Children {
		kind := op.Kind
		if ch.Removed {
			kind = partner.Deactivate
		}
		entries = append(entries, ledger.Entry{Provider: name, EntityKey: string(ch.EntityKey), CustomerID: op.CustomerID, Operation: string(kind),
			RemoteID: ch.RemoteID, RequestID: firstNonEmpty(ch.RequestID, r.RequestID), HTTPStatus: r.HTTPStatus, Outcome: string(partner.OK),
			Attempts: r.Attempts, Latency: lat, Hash: op.Hash, Deliver: !ch.Removed, Deactivated: ch.Removed})
	}
	w.AddAll(entries)
	// Queued after the customer's ledger rows, so it commits with or after them.
	if fp, ok := e.fps.done(op.CustomerID, r.Outcome == partner.OK); ok {
		crashpoint.HitAfter(crashpoint.BeforeFingerprint, func() { _ = w.Sync(context.Background()) })
		w.Fingerprint(e.scope, fp)
	}
}

// deactivateVanished queues a Deactivate for each customer of a
// Deactivator partner that this run did not see, unless that is more
// than the guard allows.
func (e *Engine) deactivateVanished(ctx context.Context, runID int64, rs *runState, w *ledger.Writer, sum *Summary) error {
	if err := w.Sync(ctx); err != nil { // run_seen must be complete
		return err
	}
	if err := e.settleVanishedIntents(ctx, runID, rs, w); err != nil {
		return err
	}
	for _, name := range rs.order {
		l := rs.lanes[name]
		if _, ok := l.p.(partner.Deactivator); !ok {
			continue
		}
		gone, err := e.store.Vanished(ctx, runID, name, e.keep)
		if err != nil {
			return err
		}
		// Children (e.g. Q2 cards) are switched off with their parent.
		gone = customersOnly(gone)
		if len(gone) == 0 {
			continue
		}
		if why, err := e.deactivationRefused(ctx, name, len(gone)); err != nil {
			return err
		} else if why != "" {
			sum.DeactGuard[name] = why
			e.log.Error("deactivation refused", zap.String("provider", name), zap.String("reason", why))
			continue
		}
		ids := make([]string, len(gone))
		for i, v := range gone {
			ids[i] = v.CustomerID
		}
		// A customer that comes back with the same rows must not be
		// skipped while a partner holds it switched off.
		if err := e.store.ForgetFingerprints(ctx, ids); err != nil {
			return err
		}
		for _, v := range gone {
			key := partner.Key(v.EntityKey)
			op := partner.Op{EntityKey: key, CustomerID: v.CustomerID, Kind: partner.Deactivate, RemoteID: v.RemoteID, Hash: v.Hash}
			op.IdemKey = IdempotencyKey(e.key, name, partner.Deactivate, key, fmt.Sprintf("%s@%d", v.Hash, v.LastRun))
			atomic.AddInt64(&l.counts.Deactivate, 1)
			// Outside the budget: a deactivation has no payload, and the
			// guard bounds how many there are.
			l.push(task{op: op})
		}
	}
	return nil
}

// deactivationRefused says why switching off n of a partner's records is
// refused, or "". The limit is the unsharded one (the fraction of all
// active records, at least 10) split in proportion to this shard's share,
// so that N shards, each deciding alone, together stay within it.
func (e *Engine) deactivationRefused(ctx context.Context, name string, n int) (string, error) {
	active, total, err := e.store.ActiveShare(ctx, name, e.keep)
	if err != nil {
		return "", err
	}
	limit := deactivateLimit(active, total, e.maxDeact)
	if n <= limit {
		return "", nil
	}
	of := ""
	if active != total {
		of = fmt.Sprintf(" (this shard's share of %d)", total)
	}
	return fmt.Sprintf("refusing to deactivate %d of %d active records%s (limit %d): check the source export is complete, or rerun with --max-deactivate", n, active, of, limit), nil
}

// deactivateLimit is how many of a shard's active records it may switch
// off: max(10, fraction of total) times its share active/total, rounded
// down, so the shards' limits never add up to more than the unsharded one.
func deactivateLimit(active, total int, fraction float64) int {
	whole := max(10, float64(total)*fraction)
	if total <= 0 || active >= total {
		return int(whole)
	}
	return int(whole * float64(active) / float64(total))
}

func customersOnly(vs []ledger.Vanish) []ledger.Vanish {
	out := vs[:0]
	for _, v := range vs {
		if partner.Key(v.EntityKey).IsCustomer() {
			out = append(out, v)
		}
	}
	return out
}

type journal struct {
	store    *ledger.Store
	runID    int64
	provider string
}

func (j journal) Note(ctx context.Context, op partner.Op, detail string) error {
	return j.store.Note(ctx, j.runID, j.provider, string(op.EntityKey), op.CustomerID, detail)
}

func rejectRow(r model.Reject) ledger.RejectRow {
	return ledger.RejectRow{Provider: r.Provider, File: r.Origin.File, Line: r.Origin.Line, EntityKey: r.EntityKey,
		Field: r.Field, Reason: r.Reason, Message: truncate(r.Message, 1000)}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// settleVanishedIntents settles the open intents of customers the run did
// not see, before the vanished records are listed. A run killed after a
// partner committed a create, but before the ledger heard of it, leaves
// only an intent; if the customer then leaves the export, no rerun plans
// it and sync_state does not know the partner holds it. Where the partner
// can look the entity up by key (partner.Finder): found, it is recorded
// active with its remote id, so the vanished pass switches it off (and
// the mass-deactivation guard counts it); absent, the intent is closed.
// Otherwise, or when the lookup fails, the op is recorded uncertain with
// CodeNeedsOperator and the intent stays open for `etl intents settle`.
func (e *Engine) settleVanishedIntents(ctx context.Context, runID int64, rs *runState, w *ledger.Writer) error {
	for _, name := range rs.order {
		l := rs.lanes[name]
		if !l.journals {
			continue
		}
		open, err := e.store.VanishedIntents(ctx, runID, name, e.keep)
		if err != nil {
			return err
		}
		finder, _ := l.p.(partner.Finder)
		for _, v := range open {
			op := partner.Op{EntityKey: partner.Key(v.EntityKey), CustomerID: v.CustomerID, Kind: partner.Create, Intent: v.Detail}
			why := name + " cannot look this record up without its content, which left the source"
			if finder != nil {
				remoteID, found, err := finder.Find(ctx, op)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err == nil {
					st := ledger.Settlement{Provider: name, EntityKey: v.EntityKey, As: ledger.SettledResend,
						By: fmt.Sprintf("etl run %d", runID), Reason: "customer left the source; " + name + " does not hold the record",
						// This run is the one marked running.
						Force: true}
					if found {
						st.As, st.RemoteID = ledger.SettledDelivered, remoteID
						st.Reason = "customer left the source; " + name + " holds the record (found by key)"
					}
					if _, err := e.store.SettleIntent(ctx, st); err != nil && !errors.Is(err, ledger.ErrNoOpenIntent) {
						return err
					}
					continue
				}
				why = "looking the record up at " + name + " failed: " + err.Error()
			}
			e.record(l, op, partner.Result{EntityKey: partner.Key(v.EntityKey), Outcome: partner.Uncertain,
				Err: &httpx.Error{Partner: name, Op: "find", Kind: httpx.Uncertain, Code: partner.CodeNeedsOperator,
					Message: "customer left the source with a call in doubt: " + why + "; look it up at the partner and run `etl intents settle`"}}, 0, w)
		}
	}
	return w.Sync(ctx)
}
