package load

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/northwind-data/etl/internal/crashpoint"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/model"
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
	Planned(provider string, kind Kind)
	Unchanged(provider string)
	Finished(provider string, r Result, latency time.Duration)
}

// Engine runs one delivery: read, plan against sync_state, send, record.
type Engine struct {
	Store     *ledger.Store
	Providers []Provider
	Key       []byte // HMAC key for content hashes and idempotency keys
	Log       *zap.Logger

	Concurrency map[string]int // workers per partner; default 8
	FullResync  bool           // ignore content hashes: send everything again
	DryRun      bool           // plan only: no partner call, no ledger change
	// DryRunOps, if set, sees every op a dry run would send.
	DryRunOps func(provider string, op Op)
	// DryRunRejects, if set, sees every reject of a dry run (validation
	// rejects from the source and partner mapping rejects), which a real
	// run writes to the ledger's rejects table. Called from the source's
	// goroutine and from planners concurrently.
	DryRunRejects func(ledger.RejectRow)

	// Deactivation of entities gone from the source, for partners that
	// support it. Refused when it would switch off more than
	// MaxDeactivateFraction of a partner's active entities, since a
	// truncated export must not wipe a partner.
	Deactivate            bool
	MaxDeactivateFraction float64 // default 0.05 (and at least 10 entities)

	Keep        func(customerID string) bool // shard filter for deactivation
	GracePeriod time.Duration                // in-flight calls after SIGTERM; default 20s
	PlanBatch   int                          // customers per sync_state lookup; default 500
	Planners    int                          // concurrent planners; default 2
	Observer    Observer

	// Scope turns on customer fingerprints (the nightly fast path): it
	// names what a fingerprint vouches for (the partners in provider
	// order, their settings, the binary, the month). Empty: off.
	Scope string

	cur      atomic.Pointer[runState]
	fps      fpTracker
	compared int64
}

// runState is what Unchanged needs of the run in progress.
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

// Counts per partner. Mapped rejects are records this partner could not
// take. The JSON keys are what runs.counts stores and `etl report --format
// json` prints (docs/operations.md, "Report JSON").
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
	// ledger row is outcome ok, request_id RequestNotSentNoUpdateAPI). Not
	// an ok delivery, and not a call.
	NoUpdateAPI int64            `json:"not_sent_no_update_api"`
	Calls       int64            `json:"calls"`
	Attempts    int64            `json:"attempts"`
	ErrorCodes  map[string]int64 `json:"error_codes,omitempty"`
	mu          sync.Mutex
}

// RequestNotSentNoUpdateAPI is the Result.RequestID (and ledger
// request_id) of an OK outcome for an update the partner has no API for:
// nothing was sent, and the engine counts it as NoUpdateAPI, not OK.
const RequestNotSentNoUpdateAPI = "not-sent-no-update-api"

// notSentNoAPI reports whether r is an update the partner has no API for.
func notSentNoAPI(r Result) bool {
	return r.Outcome == OK && r.RequestID == RequestNotSentNoUpdateAPI
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

type job struct {
	ops     []Op
	resolve bool
}

type lane struct {
	p        Provider
	journals bool // the partner writes intents (it is a Resolver)
	in       chan Op
	counts   *Counts
	stopped  atomic.Bool
	stopMsg  atomic.Value
	workers  int
}

// Run executes one run whose row runID the caller created (and finishes).
func (e *Engine) Run(ctx context.Context, runID int64, src Source) (*Summary, error) {
	if e.Log == nil {
		e.Log = zap.NewNop()
	}
	if e.PlanBatch <= 0 {
		e.PlanBatch = 500
	}
	if e.Planners <= 0 {
		e.Planners = 2
	}
	if e.GracePeriod <= 0 {
		e.GracePeriod = 20 * time.Second
	}
	if e.MaxDeactivateFraction <= 0 {
		e.MaxDeactivateFraction = 0.05
	}
	sum := &Summary{RunID: runID, Providers: map[string]*Counts{}, Stopped: map[string]string{}, DeactGuard: map[string]string{}}

	// callCtx outlives ctx by the grace period, so calls in flight when
	// SIGTERM arrives can finish and be recorded.
	callCtx, cancelCalls := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelCalls()
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.NewTimer(e.GracePeriod)
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
	if !e.DryRun {
		w = e.Store.NewLoggedWriter(runID, func(err error) {
			e.Log.Error("ledger write failed: stopping the run", zap.Error(err))
			cancelRun(err)
		}, e.Log)
	}

	lanes := map[string]*lane{}
	var order []string
	resolvers := map[string]bool{}
	e.fps.reset()
	atomic.StoreInt64(&e.compared, 0)
	defer e.cur.Store(nil)
	for _, p := range e.Providers {
		n := e.Concurrency[p.Name()]
		if n <= 0 {
			n = 8
		}
		_, journals := p.(Resolver)
		l := &lane{p: p, journals: journals, in: make(chan Op, n*p.MaxBatch()*4), counts: &Counts{}, workers: n}
		lanes[p.Name()] = l
		order = append(order, p.Name())
		sum.Providers[p.Name()] = l.counts
		if _, ok := p.(Resolver); ok && !e.DryRun {
			has, err := e.Store.HasOpenIntents(ctx, p.Name())
			if err != nil {
				return nil, err
			}
			resolvers[p.Name()] = has
		}
	}
	rs := &runState{ctx: runCtx, lanes: lanes, order: order}
	if !e.DryRun {
		rs.runID = runID
	}
	for _, l := range lanes {
		_, ok := l.p.(Deactivator)
		rs.deactivates = rs.deactivates || ((ok || l.journals) && e.Deactivate)
	}
	e.cur.Store(rs)
	defer func() {
		rs.fpOnce.Do(func() {}) // orders this read after the source's Do
		if rs.fpCursor != nil {
			rs.fpCursor.Close()
		}
	}()

	// Lane goroutines never fail (outcomes are results, not errors); the
	// group only waits for them.
	var g errgroup.Group
	for _, name := range order {
		l := lanes[name]
		jobs := make(chan job)
		g.Go(func() error { e.batch(runCtx, l, jobs); return nil })
		for i := 0; i < l.workers; i++ {
			g.Go(func() error { e.work(callCtx, runID, l, jobs, w); return nil })
		}
	}

	// The source is read on this goroutine; planners (sync_state lookup,
	// mapping, hashing) run beside it so that parsing, database round
	// trips and hashing overlap. Lanes apply backpressure through their
	// bounded channels, and planners through planCh.
	planCh := make(chan []*model.Customer, e.Planners)
	var planErr error
	var planMu sync.Mutex
	var planWG sync.WaitGroup
	for i := 0; i < e.Planners; i++ {
		planWG.Add(1)
		go func() {
			defer planWG.Done()
			for b := range planCh {
				if err := e.plan(runCtx, b, lanes, order, resolvers, w); err != nil {
					planMu.Lock()
					if planErr == nil {
						planErr = err
						cancelRun(err)
					}
					planMu.Unlock()
				}
			}
		}()
	}
	batch := make([]*model.Customer, 0, e.PlanBatch)
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		select {
		case planCh <- batch:
		case <-runCtx.Done():
			return context.Cause(runCtx)
		}
		batch = make([]*model.Customer, 0, e.PlanBatch)
		return nil
	}
	var rejects atomic.Int64
	readErr := src.Read(runCtx,
		func(c *model.Customer) error {
			batch = append(batch, c)
			if len(batch) >= e.PlanBatch {
				return send()
			}
			return nil
		},
		func(r model.Reject) error {
			rejects.Add(1)
			if e.DryRun && e.DryRunRejects != nil {
				e.DryRunRejects(rejectRow(r))
			}
			if w != nil {
				w.Reject(rejectRow(r))
				if id := customerOf(r.EntityKey); id != "" && rs.deactivates {
					w.Seen(id) // a bad row is not a vanished customer
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
		readErr = nil // the planner's error, reported once below
	}

	// Deactivate what vanished, only after a complete, clean read.
	if readErr == nil && planErr == nil && runCtx.Err() == nil && e.Deactivate && !e.DryRun {
		if err := e.deactivate(runCtx, runID, lanes, order, w, sum); err != nil {
			readErr = err
		}
	}
	for _, name := range order {
		close(lanes[name].in)
	}
	_ = g.Wait()

	if w != nil {
		if err := w.Close(); err != nil && readErr == nil {
			readErr = err
		}
	}
	for _, name := range order {
		if l := lanes[name]; l.stopped.Load() {
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

// plan maps a batch of customers for every partner, compares with
// sync_state and queues what changed.
func (e *Engine) plan(ctx context.Context, batch []*model.Customer, lanes map[string]*lane, order []string, resolvers map[string]bool, w *ledger.Writer) error {
	atomic.AddInt64(&e.compared, int64(len(batch)))
	ids := make([]string, len(batch))
	seen := w != nil && e.cur.Load().deactivates // only deactivation reads what a run saw
	for i, c := range batch {
		ids[i] = c.ID
		if seen {
			w.Seen(c.ID)
		}
	}
	var state map[string]map[string]ledger.State
	var gens map[string]map[string]int // create key generations
	if e.Store != nil {
		var err error
		if state, gens, err = e.Store.LoadPlanState(ctx, ids); err != nil {
			return err
		}
	}
	intents := map[string]map[string]string{}
	for name, has := range resolvers {
		if !has {
			continue
		}
		m, err := e.Store.OpenIntents(ctx, name, ids)
		if err != nil {
			return err
		}
		intents[name] = m
	}
	type queued struct {
		l  *lane
		op Op
	}
	var out []queued
	var changed []string // customers with something to send
	for _, c := range batch {
		fp := ledger.Fingerprint{CustomerID: c.ID, Sum: c.Fingerprint, Entities: make([]int, len(order))}
		sending := 0
		for pi, name := range order {
			l := lanes[name]
			ops, rejects := l.p.Map(c)
			fp.Entities[pi] = len(ops)
			if len(rejects) > 0 {
				fp.Sum = nil // a customer with rejects is compared in full every run
			}
			for _, r := range rejects {
				atomic.AddInt64(&l.counts.MapRejected, 1)
				if r.Provider == "" {
					r.Provider = name
				}
				if w != nil {
					w.Reject(rejectRow(r))
				} else if e.DryRun && e.DryRunRejects != nil {
					e.DryRunRejects(rejectRow(r))
				}
			}
			for _, op := range ops {
				h, body, err := hashContent(e.Key, op.Payload)
				if err != nil {
					return fmt.Errorf("%s: %s: %w", name, op.EntityKey, err)
				}
				op.Hash, op.Body = h, body
				st, known := state[name][op.EntityKey]
				intent, open := intents[name][op.EntityKey]
				if known && st.Active && st.Hash == h && !e.FullResync && !open {
					atomic.AddInt64(&l.counts.Unchanged, 1)
					if e.Observer != nil {
						e.Observer.Unchanged(name)
					}
					continue
				}
				op.Kind = Create
				if known {
					op.Kind, op.RemoteID = Update, st.RemoteID
				}
				if op.Kind == Create {
					op.IdemKey = CreateKey(e.Key, name, op.EntityKey, gens[name][op.EntityKey])
				} else {
					op.IdemKey = IdempotencyKey(e.Key, name, op.Kind, op.EntityKey, h)
				}
				if open {
					op.Intent = intent
					atomic.AddInt64(&l.counts.Resolve, 1)
				} else if op.Kind == Create {
					atomic.AddInt64(&l.counts.Create, 1)
				} else {
					atomic.AddInt64(&l.counts.Update, 1)
				}
				if e.Observer != nil {
					e.Observer.Planned(name, op.Kind)
				}
				if e.DryRun {
					if e.DryRunOps != nil {
						e.DryRunOps(name, op)
					}
					continue
				}
				out = append(out, queued{l, op})
				sending++
			}
		}
		if sending > 0 {
			changed = append(changed, c.ID)
		}
		if e.Scope == "" || len(fp.Sum) == 0 || w == nil {
			continue
		}
		if sending == 0 {
			w.Fingerprint(e.Scope, fp)
		} else {
			e.fps.expect(fp, sending)
		}
	}
	// A fingerprint must not outlive a call that may change what the
	// partner holds: forget it, durably, before the first call.
	if len(changed) > 0 && e.Store != nil && !e.DryRun {
		if err := e.Store.ForgetFingerprints(ctx, changed); err != nil {
			return err
		}
	}
	for _, q := range out {
		crashpoint.Hit(crashpoint.MidPlan)
		select {
		case q.l.in <- q.op:
		case <-ctx.Done():
			// Not sent: the tracker must not wait for these.
			e.fps.done(q.op.CustomerID, false)
			return ctx.Err()
		}
	}
	return nil
}

// batch groups a lane's ops into Sends of at most MaxBatch, flushing a
// partial batch when the queue goes quiet so the tail is not held back.
func (e *Engine) batch(ctx context.Context, l *lane, jobs chan<- job) {
	defer close(jobs)
	max := l.p.MaxBatch()
	name := l.p.Name()
	debug := e.Log.Core().Enabled(zap.DebugLevel)
	var cur []Op
	// reason: full (MaxBatch ops), idle (the queue went quiet), resolve
	// (an open intent goes alone), drain (the plan is done).
	send := func(reason string) {
		if len(cur) > 0 {
			if debug {
				e.Log.Debug("batch flushed", zap.String("partner", name), zap.Int("size", len(cur)), zap.String("reason", reason))
			}
			jobs <- job{ops: cur}
			cur = nil
		}
	}
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	for {
		select {
		case op, ok := <-l.in:
			if !ok {
				send("drain")
				return
			}
			if ctx.Err() != nil || l.stopped.Load() {
				l.counts.addNotSent(1) // workers add to it at the same time
				e.fps.done(op.CustomerID, false)
				continue // drain: the rerun sends these
			}
			if op.Intent != "" {
				send("resolve")
				jobs <- job{ops: []Op{op}, resolve: true}
				continue
			}
			cur = append(cur, op)
			if len(cur) >= max {
				send("full")
			} else {
				// Flush a partial batch only once the queue has been quiet
				// for a moment, not a moment after its first op.
				idle.Reset(20 * time.Millisecond)
			}
		case <-idle.C:
			send("idle")
		}
	}
}

func (e *Engine) work(ctx context.Context, runID int64, l *lane, jobs <-chan job, w *ledger.Writer) {
	name := l.p.Name()
	for j := range jobs {
		if l.stopped.Load() || ctx.Err() != nil {
			l.counts.addNotSent(len(j.ops))
			for _, op := range j.ops {
				e.fps.done(op.CustomerID, false)
			}
			continue
		}
		start := time.Now()
		var results []Result
		jr := journal{store: e.Store, runID: runID, provider: name}
		switch {
		case j.resolve:
			results = []Result{l.p.(Resolver).Resolve(ctx, j.ops[0], jr)}
		case j.ops[0].Kind == Deactivate:
			results = []Result{l.p.(Deactivator).Deactivate(ctx, j.ops[0])}
		default:
			results = l.p.Send(ctx, j.ops, jr)
		}
		lat := time.Since(start)
		crashpoint.Hit(crashpoint.AfterSend)
		if madeCall(results, len(j.ops)) {
			atomic.AddInt64(&l.counts.Calls, 1)
		}
		for i, op := range j.ops {
			var r Result
			if i < len(results) {
				r = results[i]
			} else {
				r = Result{EntityKey: op.EntityKey, Outcome: Failed, Err: errors.New("partner returned fewer results than ops")}
			}
			e.record(l, op, r, lat, w)
		}
	}
}

func (c *Counts) addNotSent(n int) { atomic.AddInt64(&c.NotSent, int64(n)) }

// madeCall reports whether a job reached the partner: not when every op
// was an update the partner has no API for and no call was made for it
// (ClubReady; a Q2 update still reconciles the client's cards).
func madeCall(results []Result, ops int) bool {
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
func attemptsOf(r Result) int {
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

func (e *Engine) record(l *lane, op Op, r Result, lat time.Duration, w *ledger.Writer) {
	name := l.p.Name()
	c := l.counts
	r.Attempts = attemptsOf(r)
	atomic.AddInt64(&c.Attempts, int64(r.Attempts))
	switch {
	case notSentNoAPI(r):
		atomic.AddInt64(&c.NoUpdateAPI, 1)
	case r.Outcome == OK:
		atomic.AddInt64(&c.OK, 1)
	case r.Outcome == Rejected:
		atomic.AddInt64(&c.Rejected, 1)
	case r.Outcome == Uncertain:
		atomic.AddInt64(&c.Uncertain, 1)
	default:
		r.Outcome = Failed
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
			l.stopMsg.Store(msg)
			e.Log.Error("partner stopped: fix the cause and rerun", zap.String("provider", name), zap.String("reason", msg))
		}
	}
	if r.HTTPStatus == 0 {
		r.HTTPStatus = httpx.StatusOf(r.Err)
	}
	if e.Observer != nil {
		e.Observer.Finished(name, r, lat)
	}
	if w == nil {
		return
	}
	w.Add(ledger.Entry{
		Provider: name, EntityKey: op.EntityKey, CustomerID: op.CustomerID, Operation: string(op.Kind),
		IdemKey: op.IdemKey, Hash: op.Hash, RemoteID: firstNonEmpty(r.RemoteID, op.RemoteID), RequestID: r.RequestID,
		HTTPStatus: r.HTTPStatus, Outcome: string(r.Outcome), Attempts: r.Attempts, Latency: lat,
		ErrCode: code, ErrMsg: truncate(msg, 1000),
		Deliver:     r.Outcome == OK && op.Kind != Deactivate,
		Deactivated: r.Outcome == OK && op.Kind == Deactivate,
		// Only partners that journal intents have any to settle; an
		// uncertain outcome keeps its intent open for the rerun.
		Settle: l.journals && r.Outcome != Uncertain,
		// A create the partner refused (4xx) and that left nothing at the
		// partner: its key may replay the refusal, so the next create
		// gets a new one.
		Refused: op.Kind == Create && r.Outcome == Rejected && r.RemoteID == "" && r.HTTPStatus >= 400 && r.HTTPStatus < 500,
	})
	for _, ch := range r.Children {
		kind := op.Kind
		if ch.Removed {
			kind = Deactivate
		}
		w.Add(ledger.Entry{Provider: name, EntityKey: ch.EntityKey, CustomerID: op.CustomerID, Operation: string(kind),
			RemoteID: ch.RemoteID, RequestID: firstNonEmpty(ch.RequestID, r.RequestID), HTTPStatus: r.HTTPStatus, Outcome: string(OK),
			Attempts: r.Attempts, Latency: lat, Hash: op.Hash, Deliver: !ch.Removed, Deactivated: ch.Removed})
	}
	// Queued after the customer's ledger rows, so it commits with or after them.
	if fp, ok := e.fps.done(op.CustomerID, r.Outcome == OK); ok {
		crashpoint.HitAfter(crashpoint.BeforeFingerprint, func() { _ = w.Sync(context.Background()) })
		w.Fingerprint(e.Scope, fp)
	}
}

func (e *Engine) deactivate(ctx context.Context, runID int64, lanes map[string]*lane, order []string, w *ledger.Writer, sum *Summary) error {
	if err := w.Sync(ctx); err != nil { // run_seen must be complete
		return err
	}
	if err := e.settleVanishedIntents(ctx, runID, lanes, order, w); err != nil {
		return err
	}
	for _, name := range order {
		l := lanes[name]
		if _, ok := l.p.(Deactivator); !ok {
			continue
		}
		gone, err := e.Store.Vanished(ctx, runID, name, e.Keep)
		if err != nil {
			return err
		}
		// Children (e.g. Q2 cards) are switched off with their parent.
		gone = customersOnly(gone)
		if len(gone) == 0 {
			continue
		}
		// The limit is the unsharded one (the fraction of all active
		// records, at least 10) split in proportion to this shard's share,
		// so that N shards, each deciding alone, together stay within it.
		active, total, err := e.Store.ActiveShare(ctx, name, e.Keep)
		if err != nil {
			return err
		}
		limit := deactivateLimit(active, total, e.MaxDeactivateFraction)
		if len(gone) > limit {
			of := ""
			if active != total {
				of = fmt.Sprintf(" (this shard's share of %d)", total)
			}
			msg := fmt.Sprintf("refusing to deactivate %d of %d active records%s (limit %d): check the source export is complete, or rerun with --max-deactivate", len(gone), active, of, limit)
			sum.DeactGuard[name] = msg
			e.Log.Error("deactivation refused", zap.String("provider", name), zap.String("reason", msg))
			continue
		}
		ids := make([]string, len(gone))
		for i, v := range gone {
			ids[i] = v.CustomerID
		}
		// A customer that comes back with the same rows must not be
		// skipped while a partner holds it switched off.
		if err := e.Store.ForgetFingerprints(ctx, ids); err != nil {
			return err
		}
		for _, v := range gone {
			op := Op{EntityKey: v.EntityKey, CustomerID: v.CustomerID, Kind: Deactivate, RemoteID: v.RemoteID, Hash: v.Hash}
			op.IdemKey = IdempotencyKey(e.Key, name, Deactivate, v.EntityKey, fmt.Sprintf("%s@%d", v.Hash, v.LastRun))
			atomic.AddInt64(&l.counts.Deactivate, 1)
			select {
			case l.in <- op:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// settleVanishedIntents settles the open intents of customers the run did
// not see, before the vanished records are listed. A run killed after a
// partner committed a create, but before the ledger heard of it, leaves
// only an intent; if the customer then leaves the export, no rerun plans
// it and sync_state does not know the partner holds it. Where the partner
// can look the entity up by key (Finder): found, it is recorded active
// with its remote id, so the vanished pass below switches it off (and
// the mass-deactivation guard counts it); absent, the intent is closed.
// Otherwise, or when the lookup fails, the op is recorded uncertain with
// CodeNeedsOperator and the intent stays open for `etl intents settle`.
func (e *Engine) settleVanishedIntents(ctx context.Context, runID int64, lanes map[string]*lane, order []string, w *ledger.Writer) error {
	for _, name := range order {
		l := lanes[name]
		if !l.journals {
			continue
		}
		open, err := e.Store.VanishedIntents(ctx, runID, name, e.Keep)
		if err != nil {
			return err
		}
		finder, _ := l.p.(Finder)
		for _, v := range open {
			op := Op{EntityKey: v.EntityKey, CustomerID: v.CustomerID, Kind: Create, Intent: v.Detail}
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
					if _, err := e.Store.SettleIntent(ctx, st); err != nil && !errors.Is(err, ledger.ErrNoOpenIntent) {
						return err
					}
					continue
				}
				why = "looking the record up at " + name + " failed: " + err.Error()
			}
			e.record(l, op, Result{EntityKey: v.EntityKey, Outcome: Uncertain,
				Err: &httpx.Error{Partner: name, Op: "find", Kind: httpx.Uncertain, Code: CodeNeedsOperator,
					Message: "customer left the source with a call in doubt: " + why + "; look it up at the partner and run `etl intents settle`"}}, 0, w)
		}
	}
	return w.Sync(ctx)
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
		if strings.HasPrefix(v.EntityKey, "customer/") {
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

func (j journal) Note(ctx context.Context, op Op, detail string) error {
	if j.store == nil {
		return nil
	}
	return j.store.Note(ctx, j.runID, j.provider, op.EntityKey, op.CustomerID, detail)
}

func rejectRow(r model.Reject) ledger.RejectRow {
	return ledger.RejectRow{Provider: r.Provider, File: r.Origin.File, Line: r.Origin.Line, EntityKey: r.EntityKey,
		Field: r.Field, Reason: r.Reason, Message: truncate(r.Message, 1000)}
}

// customerOf extracts the customer id from "customer/<id>" or
// "card/<id>/<card>".
func customerOf(key string) string {
	if rest, ok := strings.CutPrefix(key, "customer/"); ok {
		return rest
	}
	if rest, ok := strings.CutPrefix(key, "card/"); ok {
		id, _, _ := strings.Cut(rest, "/")
		return id
	}
	return ""
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
