package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/northwind-data/etl/internal/buildinfo"
	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/extract"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/logx"
	"github.com/northwind-data/etl/internal/metrics"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/progress"
	"github.com/northwind-data/etl/internal/runlock"
	"github.com/northwind-data/etl/internal/shard"
	"github.com/northwind-data/etl/internal/transform"
)

type runFlags struct {
	config, dbURL, sourceDir, providers, shard, runGroup, dryRunOut string
	metricsListen, metricsFile, progress, cpuProfile                string
	dryRun, fullResync, noDeactivate, verbose, quiet                bool
	maxDeactivate                                                   float64
}

func cmdRun(ctx context.Context, args []string) int {
	var f runFlags
	fs := newFlags("run", "run [flags]", "Read the source, plan against sync_state, deliver what is new or changed to every enabled partner,\nrecord every call in the ledger. Rerun the same command after any failure: it resumes.",
		"etl run --config etl.yaml", "etl run --config etl.yaml --providers synctera,q2open --dry-run --dry-run-out /tmp/bodies",
		"etl run --config etl.yaml --shard 2/4 --run-group nightly-2026-11-23", "etl run --config etl.yaml --metrics-textfile /var/lib/node_exporter/textfile/etl.prom")
	fs.StringVar(&f.config, "config", "etl.yaml", "config file")
	fs.StringVar(&f.dbURL, "database-url", "", "ledger database URL (overrides config and DATABASE_URL)")
	fs.StringVar(&f.sourceDir, "source-dir", "", "CSV directory (overrides source.dir)")
	fs.StringVar(&f.providers, "providers", "", "comma-separated partners to deliver to (default: every enabled partner)")
	fs.StringVar(&f.shard, "shard", "", "i/N: take only the customers whose id hashes to shard i of N (JOB_COMPLETION_INDEX fills i when i is empty, e.g. --shard /4)")
	fs.StringVar(&f.runGroup, "run-group", os.Getenv("ETL_RUN_GROUP"), "id shared by the shards of one logical run (default: new per run)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "read, validate and plan against sync_state; send nothing, change nothing")
	fs.StringVar(&f.dryRunOut, "dry-run-out", "", "with --dry-run: write each request body it would send (card data masked) under this directory")
	fs.BoolVar(&f.fullResync, "full-resync", false, "ignore content hashes and customer fingerprints: send every record again")
	fs.BoolVar(&f.noDeactivate, "no-deactivate", false, "do not deactivate records that vanished from the source")
	fs.Float64Var(&f.maxDeactivate, "max-deactivate", 0, "largest fraction of a partner's active records a run may deactivate (default from config, else 0.05)")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics on this address during the run (e.g. 127.0.0.1:9464)")
	fs.StringVar(&f.metricsFile, "metrics-textfile", "", "write the run's metrics here at the end (node_exporter textfile collector, e.g. /var/lib/node_exporter/etl.prom)")
	fs.StringVar(&f.progress, "progress", "auto", "auto (bars on a terminal, JSON progress lines otherwise), bars, lines or none")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	fs.BoolVar(&f.verbose, "v", false, "verbose: debug logs")
	fs.BoolVar(&f.quiet, "q", false, "quiet: warnings and errors only")
	if code, ok := parse(fs, args, 0); !ok {
		return code
	}
	runGC()
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return fail(exitUsage, "--cpuprofile: %v", err)
		}
		defer stop()
	}
	log := logx.New(f.verbose, f.quiet)
	defer log.Sync() //nolint:errcheck
	return run(ctx, f, log)
}

// runState is what one run is wired from; the steps of run fill it in
// order and finishRun reads it. Used by one goroutine.
type runState struct {
	f          runFlags
	log        *zap.Logger
	cfg        *config.Config
	sh         shard.Shard
	key        string
	mets       *metrics.Metrics
	provs      []partner.Provider
	names      []string
	store      *ledger.Store
	sourceID   string
	lock       *runlock.Lock // nil on a dry run
	group      string
	deactivate bool
	maxDeact   float64
	runID      int64
	dry        *dryRun
	dryRej     *dryRejects // nil unless a dry run
}

// run wires one run together. Every step that can fail before the run
// returns its own exit code; the run's outcome is mapped in finishRun.
func run(ctx context.Context, f runFlags, log *zap.Logger) int {
	r := &runState{f: f, log: log}
	cfg, code := loadRunConfig(f, log)
	if cfg == nil {
		return code
	}
	r.cfg = cfg
	if code, ok := r.buildPartners(); !ok {
		return code
	}
	dbURL, _ := cfg.Ledger.URL.Resolve()
	store, err := ledger.Open(ctx, dbURL)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	defer store.Close()
	if err := store.EnsureSchema(ctx); err != nil {
		return fail(exitFatal, "%v", err)
	}
	r.store = store
	if r.sourceID, err = sourceIdentity(cfg); err != nil {
		return fail(exitFatal, "%v", err)
	}
	if !f.dryRun {
		if code, ok := r.lockRun(ctx); !ok {
			return code
		}
		defer r.lock.Release()
	}
	// The engine is built after the source, which asks it for unchanged
	// customers through eng.
	var eng *load.Engine
	src, scope, code, ok := r.openRunSource(ctx, &eng)
	if !ok {
		return code
	}
	ctx, stop, code, ok := r.startRun(ctx)
	if !ok {
		return code
	}
	defer stop()
	if f.metricsListen != "" {
		addr, err := r.mets.Serve(ctx, f.metricsListen)
		if err != nil {
			return fail(exitUsage, "--metrics-listen %s: %v", f.metricsListen, err)
		}
		log.Info("serving metrics", zap.String("url", "http://"+addr+"/metrics"))
	}
	prog := newProgress(ctx, f.progress, f.quiet, log, r.names)
	r.dry = newDryRun(f.dryRunOut)
	if eng, err = load.New(store, r.provs, []byte(r.key), r.engineOptions(scope, prog)...); err != nil {
		prog.Close()
		return fail(exitUsage, "%v", err)
	}
	start := time.Now()
	var stats extract.Stats
	sum, runErr := eng.Run(ctx, r.runID, load.SourceFunc(func(ctx context.Context, emit func(*model.Customer) error, reject func(model.Reject) error) error {
		var err error
		stats, err = src.Read(ctx, emit, reject)
		return err
	}))
	elapsed := time.Since(start)
	prog.Close()
	return r.finishRun(ctx, stats, sum, runErr, elapsed)
}

// loadRunConfig loads and checks the config with the flags' overrides,
// and checks the paths the run writes to at the end; nil and an exit
// code when any is not usable.
func loadRunConfig(f runFlags, log *zap.Logger) (*config.Config, int) {
	cfg, err := config.Load(f.config)
	if err != nil {
		return nil, fail(exitUsage, "%v", err)
	}
	if f.sourceDir != "" {
		cfg.Source.Dir = f.sourceDir
	}
	if f.dbURL != "" {
		cfg.Ledger.URL = config.Given(f.dbURL)
	}
	if es := cfg.Validate(partners.Schemas()); len(es) > 0 {
		fmt.Fprintf(os.Stderr, "etl: config %s is not valid:\n", f.config)
		for _, e := range es {
			fmt.Fprintf(os.Stderr, "  %s\n", e)
		}
		return nil, exitUsage
	}
	for _, w := range cfg.Warnings() {
		log.Warn("insecure setting", zap.String("field", w.Path), zap.String("warning", w.Msg))
	}
	if f.dryRun && f.dryRunOut != "" {
		if err := makePrivateDir(f.dryRunOut); err != nil {
			return nil, fail(exitUsage, "--dry-run-out: %v", err)
		}
	}
	if f.metricsFile != "" {
		// Checked before the run: a textfile that cannot be written at the
		// end would lose the run's metrics after all the work was done.
		if err := checkTextfileDir(f.metricsFile); err != nil {
			return nil, fail(exitUsage, "--metrics-textfile %s: %v", f.metricsFile, err)
		}
	}
	return cfg, exitOK
}

// buildPartners parses the shard and builds the enabled partners, each
// with its share of the partner's rate limit.
func (r *runState) buildPartners() (int, bool) {
	sh, err := shard.Parse(r.f.shard, os.Getenv("JOB_COMPLETION_INDEX"))
	if err != nil {
		return fail(exitUsage, "--shard: %v", err), false
	}
	r.sh = sh
	r.key, _ = r.cfg.HMACKey.Resolve()
	r.mets = metrics.New()
	r.provs, err = partners.Build(r.cfg, splitList(r.f.providers), func(name string, h *httpx.Config) {
		r.mets.Tune(name, h)
		h.Logger = r.log // retries, breaker transitions and rate changes at debug
		h.RatePerSec = sh.Rate(h.RatePerSec)
	})
	if err != nil {
		return fail(exitUsage, "%v", err), false
	}
	r.names = make([]string, len(r.provs))
	for i, p := range r.provs {
		r.names[i] = p.Name()
	}
	return exitOK, true
}

// lockRun takes the run lock on this run's partners and shard; the
// caller releases it.
func (r *runState) lockRun(ctx context.Context) (int, bool) {
	lock, err := runlock.Acquire(ctx, r.store.Pool(), lockOptions(r.cfg, r.names, r.sh, r.sourceID))
	if isLocked(err) {
		return fail(exitLocked, "%v: another etl run delivering to it is in progress; nothing was sent (exit %d)", err, exitLocked), false
	}
	if err != nil {
		return fail(exitFatal, "%v", err), false
	}
	r.lock = lock
	r.log.Debug("run lock taken", zap.Strings("partners", lock.Partners()), zap.String("shard", r.sh.String()),
		zap.Int64("epoch", lock.Epoch()), zap.Uint32("lock_backend_pid", lock.BackendPID()))
	return exitOK, true
}

// openRunSource opens the source with the nightly fast path: *eng (set
// once the engine is built) answers which customers are unchanged since
// every partner last had them, and the source skips those before
// decoding. It returns the fingerprint scope for the engine ("" = off).
func (r *runState) openRunSource(ctx context.Context, eng **load.Engine) (readSource, string, int, bool) {
	now := time.Now()
	validator := transform.NewValidator([]byte(r.key), now)
	scope, err := fingerprintScope(r.cfg, r.names, r.key, now)
	if err != nil {
		r.log.Warn("customer fingerprints off: every customer is compared in full", zap.Error(err))
	}
	fast := &extract.FastPath{Key: []byte(r.key), Unchanged: func(ctx context.Context, ids []string, sums [][]byte) ([]bool, error) {
		return (*eng).Unchanged(ctx, ids, sums)
	}}
	src, err := openSource(ctx, r.cfg, validator, r.sh.Keep, fast)
	if err != nil {
		return nil, "", fail(exitFatal, "%v", err), false
	}
	return src, scope, exitOK, true
}

// startRun opens this run's row. A real run first marks the runs that
// died without finishing as crashed, binds the lock to its row and
// returns a ctx that losing the lock cancels (stop releases it); a dry
// run records a row of status dry-run and its rejects, and nothing else.
func (r *runState) startRun(ctx context.Context) (context.Context, func(), int, bool) {
	f := r.f
	r.group = f.runGroup
	if r.group == "" {
		r.group = newGroupID()
	}
	r.deactivate = !f.noDeactivate && (r.cfg.Run.Deactivate == nil || *r.cfg.Run.Deactivate)
	r.maxDeact = r.cfg.Run.MaxDeactivateFraction
	if f.maxDeactivate > 0 {
		r.maxDeact = f.maxDeactivate
	}
	ri := ledger.RunInfo{Group: r.group, ShardIndex: r.sh.Index, ShardCount: r.sh.Count, Source: r.sourceID,
		Providers: r.names, Version: buildinfo.Read().String(), Options: map[string]any{"full_resync": f.fullResync, "deactivate": r.deactivate, "dry_run": f.dryRun}}
	stop := func() {}
	var err error
	if !f.dryRun {
		if n, err := r.lock.MarkCrashed(ctx); err != nil {
			return nil, nil, fail(exitFatal, "%v", err), false
		} else if n > 0 {
			r.log.Warn("earlier runs died without finishing; marked crashed (this run resumes their work)", zap.Int64("runs", n))
		}
		if r.runID, err = r.store.StartRun(ctx, ri); err != nil {
			return nil, nil, fail(exitFatal, "%v", err), false
		}
		if err := r.lock.Bind(ctx, r.runID); err != nil {
			return nil, nil, fail(exitFatal, "%v", err), false
		}
		// Losing the lock stops the run like a signal does, with the
		// loss as the cause.
		ctx, stop = r.lock.Context(ctx)
	} else {
		if r.runID, err = r.store.StartDryRun(ctx, ri); err != nil {
			return nil, nil, fail(exitFatal, "%v", err), false
		}
		if r.dryRej, err = newDryRejects(r.store, r.runID, f.dryRunOut); err != nil {
			return nil, nil, fail(exitFatal, "--dry-run-out: %v", err), false
		}
	}
	r.log.Info("run started", zap.Int64("run_id", r.runID), zap.String("run_group", r.group), zap.String("source", r.sourceID),
		zap.Strings("partners", r.names), zap.String("shard", r.sh.String()), zap.Bool("dry_run", f.dryRun))
	return ctx, stop, exitOK, true
}

// engineOptions turns the flags and config into load.New options.
func (r *runState) engineOptions(scope string, prog *progress.Progress) []load.Option {
	opts := []load.Option{load.WithLogger(r.log), load.WithWorkers(concurrency(r.cfg, r.names)), load.WithFullResync(r.f.fullResync),
		load.WithObserver(progress.Multi{r.mets, prog})}
	if scope != "" {
		opts = append(opts, load.WithFingerprintScope(scope))
	}
	if r.deactivate {
		opts = append(opts, load.WithDeactivation(r.maxDeact, r.sh.Keep))
	}
	if g := r.cfg.Run.GracePeriod.Duration; g > 0 {
		opts = append(opts, load.WithGracePeriod(g))
	}
	if r.f.dryRun {
		var ops func(string, partner.Op)
		if r.f.dryRunOut != "" {
			ops = r.dry.write
		}
		opts = append(opts, load.WithDryRun(ops))
		if r.dryRej != nil {
			opts = append(opts, load.WithDryRunRejects(r.dryRej.add))
		}
	}
	return opts
}

// outcome maps how the run ended to its exit code and status; the one
// place the exit codes of a run that started are decided, before the
// end-of-run writes (which may only turn an exit 0 into 1).
func outcome(sum *load.Summary, runErr, lockErr error, log *zap.Logger) (code int, status string, operator map[string]int64) {
	code, status = exitOK, "ok"
	switch {
	case lockErr != nil:
		code, status = exitFatal, "lock_lost"
		log.Error("run lock lost: stopped taking work; rerun once no other run holds the partners", zap.Error(lockErr))
	case errors.Is(runErr, ledger.ErrFenced):
		code, status = exitFatal, "fenced"
		log.Error("another run took over this run's partners: its ledger writes were refused and the run stopped", zap.Error(runErr))
	case runErr != nil:
		code, status = exitFatal, "failed"
	case sum.Cancelled:
		code, status = exitPartial, "cancelled"
	case !sum.Delivered():
		code, status = exitPartial, "partial"
	}
	// A rerun cannot settle these: say so in the exit code, not "rerun".
	operator = needsOperator(sum.Providers)
	if len(operator) > 0 && code == exitPartial {
		code = exitNeedsOperator
	}
	return code, status, operator
}

// finishRun maps the run's outcome to an exit code, closes the run row,
// writes the metrics textfile and prints the summary.
func (r *runState) finishRun(ctx context.Context, stats extract.Stats, sum *load.Summary, runErr error, elapsed time.Duration) int {
	f, log := r.f, r.log
	lockErr := r.lock.Err()
	code, status, operator := outcome(sum, runErr, lockErr, log)
	counts := runCounts{Files: filesOf(stats.Files), Customers: stats.Customers, Compared: sum.Compared, Rejects: sum.Rejects, Partners: sum.Providers,
		Stopped: sum.Stopped, DeactivationRefused: sum.DeactGuard, Seconds: elapsed.Seconds(), Calls: sum.Calls()}
	for _, p := range sum.Providers {
		counts.MapRejects += p.MapRejected
	}
	// The run row must be closed even when ctx was cancelled.
	ctx = context.WithoutCancel(ctx)
	if f.dryRun {
		code, status = r.recordDryRun(ctx, counts, code, status)
	} else {
		code = r.recordRun(ctx, sum, counts, code, status)
	}
	r.mets.Done(elapsed, code)
	if f.metricsFile != "" {
		if err := r.mets.WriteTextfile(f.metricsFile); err != nil {
			// The error names the collector's temporary file: say which
			// textfile is missing, and fail the run so cron notices.
			log.Error("could not write the metrics textfile", zap.String("path", f.metricsFile), zap.Error(err))
			fmt.Fprintf(os.Stderr, "etl: --metrics-textfile %s: not written: %v\n", f.metricsFile, err)
			if code == exitOK {
				code = exitFatal
			}
		}
	}
	printSummary(os.Stdout, r.runID, status, code, f.dryRun, counts, r.dry, r.dryRej)
	if runErr != nil {
		fmt.Fprintf(os.Stderr, "etl: run %d failed: %v\n", r.runID, runErr)
	}
	for _, n := range sortedKeys(operator) {
		log.Warn("records need an operator: a rerun cannot tell whether the partner has them",
			zap.String("provider", n), zap.Int64("records", operator[n]),
			zap.String("list", "etl intents list --provider "+n),
			zap.String("settle", "etl intents settle --provider "+n+" --entity KEY --as delivered|resend --by NAME --reason TEXT"))
	}
	if lockErr != nil {
		fmt.Fprintf(os.Stderr, "etl: run %d stopped (exit %d): %v\n", r.runID, code, lockErr)
	}
	log.Info("run finished", zap.Int64("run_id", r.runID), zap.String("status", status), zap.Int("exit_code", code),
		zap.Int64("calls", sum.Calls()), zap.Duration("elapsed", elapsed))
	return code
}

// recordRun closes a real run's row; a fenced close fails the run.
func (r *runState) recordRun(ctx context.Context, sum *load.Summary, counts runCounts, code int, status string) int {
	if err := r.store.FinishRun(ctx, r.runID, status, counts); errors.Is(err, ledger.ErrFenced) {
		r.log.Error("another run took over this run's partners: this run's end is not recorded (that run marked it crashed)", zap.Error(err))
		code = exitFatal
	} else if err != nil {
		r.log.Error("could not record the run's end", zap.Error(err))
	}
	if sum.Calls() > 0 || sum.Compared > 0 {
		if err := r.store.RefreshStats(ctx); err != nil {
			r.log.Warn("could not refresh the checkpoint's statistics", zap.Error(err))
		}
	}
	return code
}

// recordDryRun writes a dry run's rejects and closes its row; rejects
// that cannot be recorded fail an otherwise clean dry run.
func (r *runState) recordDryRun(ctx context.Context, counts runCounts, code int, status string) (int, string) {
	if r.dryRej == nil {
		return code, status
	}
	if err := r.dryRej.close(ctx); err != nil {
		r.log.Error("could not record the dry run's rejects", zap.Error(err))
		if code == exitOK {
			code, status = exitFatal, "failed"
		}
	}
	if err := r.store.FinishRun(ctx, r.runID, ledger.StatusDryRun, counts); err != nil {
		r.log.Error("could not record the dry run's end", zap.Error(err))
	}
	r.log.Info("dry run rejects", zap.Int64("run_id", r.runID), zap.Int("validation", counts.Rejects), zap.Int64("partner_mapping", counts.MapRejects),
		zap.Any("by_reason", r.dryRej.reasons()))
	return code, status
}

func startCPUProfile(path string) (stop func(), err error) {
	pf, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(pf); err != nil {
		pf.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); pf.Close() }, nil
}

type readSource interface {
	Read(ctx context.Context, emit func(*model.Customer) error, reject func(model.Reject) error) (extract.Stats, error)
}

func openSource(ctx context.Context, cfg *config.Config, v *transform.Validator, keep func(string) bool, fast *extract.FastPath) (readSource, error) {
	switch cfg.Source.Type {
	case "", "csv":
		return extract.OpenCSV(cfg.Source.Dir, extract.Options{Validator: v, Keep: keep, FastPath: fast})
	case "postgres":
		url, err := cfg.Source.Postgres.URL.Resolve()
		if err != nil {
			return nil, fmt.Errorf("source.postgres.url: %v", err)
		}
		return extract.OpenPostgres(ctx, extract.PostgresOptions{Options: extract.Options{Validator: v, Keep: keep, FastPath: fast},
			URL: url, Customers: cfg.Source.Postgres.Customers, Cards: cfg.Source.Postgres.Cards})
	}
	return nil, fmt.Errorf("source.type %q is not csv or postgres", cfg.Source.Type)
}

// fingerprintScope is load.FingerprintScope of this binary and the
// configured partners, in engine order.
func fingerprintScope(cfg *config.Config, names []string, key string, now time.Time) (string, error) {
	id, err := buildinfo.Identity()
	if err != nil {
		return "", err
	}
	ps := make([]load.ScopePartner, len(names))
	for i, n := range names {
		p := cfg.Partners[n]
		ps[i] = load.ScopePartner{Name: n, BaseURL: p.BaseURL, Options: p.Options}
	}
	return load.FingerprintScope([]byte(key), id, now, ps), nil
}

// sourceIdentity names what the run reads (runs.source), however the
// flag or config spelled it.
func sourceIdentity(cfg *config.Config) (string, error) {
	if cfg.Source.Type == "postgres" {
		url, err := cfg.Source.Postgres.URL.Resolve()
		if err != nil {
			return "", fmt.Errorf("source.postgres.url: %v", err)
		}
		return extract.PostgresIdentity(url, cfg.Source.Postgres.Customers, cfg.Source.Postgres.Cards)
	}
	return extract.CSVIdentity(cfg.Source.Dir)
}

// lockOptions: the heartbeat from run.lock_heartbeat, and a takeover
// window long enough for a run that lost its lock to notice (a few
// heartbeats) and let its calls in flight finish (the grace period).
func lockOptions(cfg *config.Config, names []string, sh shard.Shard, source string) runlock.Options {
	hb := cfg.Run.LockHeartbeat.Duration
	if hb <= 0 {
		hb = 3 * time.Second
	}
	grace := cfg.Run.GracePeriod.Duration
	if grace <= 0 {
		grace = 20 * time.Second // load.Engine's default
	}
	return runlock.Options{Partners: names, ShardIndex: sh.Index, ShardCount: sh.Count, Source: source,
		Heartbeat: hb, Takeover: 3*hb + grace + 5*time.Second}
}

// concurrency is the engine's workers per partner of this run: ops in
// progress, not requests. The partner's client holds its requests in
// flight to the configured concurrency (httpx), and a worker waiting out
// a backoff, a Retry-After or its durable intent holds no request slot,
// so each configured slot is given opsPerSlot workers to keep it busy,
// and each slot max_concurrency may add one more. Not opsPerSlot for
// those too: while the limit is low they would only queue at the slots,
// ClubReady's single-use tokens ageing as they wait.
func concurrency(cfg *config.Config, names []string) map[string]int {
	out := map[string]int{}
	for _, n := range names {
		p := cfg.Partners[n]
		out[n] = opsPerSlot*p.Workers() + max(0, p.MaxConcurrency-p.Workers())
	}
	return out
}

// opsPerSlot: ClubReady's op is two requests and a commit, and a 5xx
// retry waits 200 ms and more against a 20 ms request; four workers per
// slot keep the slots full through that (the mixed bench).
const opsPerSlot = 4

func newGroupID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func printSummary(w io.Writer, runID int64, status string, code int, dry bool, c runCounts, d *dryRun, dr *dryRejects) {
	if dry {
		fmt.Fprintf(w, "\nDRY RUN %d: nothing was sent; the ledger and checkpoint are unchanged (only the run and its rejects are recorded).\n", runID)
	} else {
		fmt.Fprintf(w, "\nrun %d: %s (exit %d) in %.1fs, %d partner calls\n", runID, status, code, c.Seconds, c.Calls)
	}
	for _, f := range c.Files {
		fmt.Fprintf(w, "  %-14s %8d rows  %8d accepted  %6d rejected\n", f.File, f.Rows, f.Accepted, f.Rejected)
	}
	if skipped := int64(c.Customers) - c.Compared; skipped > 0 {
		fmt.Fprintf(w, "  %d customers unchanged since every partner had them (skipped by fingerprint), %d compared in full\n", skipped, c.Compared)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "partner\tcreate\tupdate\tunchanged\tdeactivate\tresolve\tmap-reject\tok\trejected\tfailed\tuncertain\tnot-sent\tno-update-api\tcalls\t")
	for _, n := range sortedKeys(c.Partners) {
		p := c.Partners[n]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", n, p.Create, p.Update, p.Unchanged, p.Deactivate, p.Resolve,
			p.MapRejected, p.OK, p.Rejected, p.Failed, p.Uncertain, p.NotSent, p.NoUpdateAPI, p.Calls)
	}
	tw.Flush()
	for _, n := range sortedKeys(c.Partners) {
		if k := c.Partners[n].NoUpdateAPI; k > 0 {
			fmt.Fprintf(w, "  %s: %d changed records not sent: no update API (recorded as known; see docs/operations.md)\n", n, k)
		}
	}
	for _, n := range sortedKeys(c.Partners) {
		if codes := c.Partners[n].ErrorCodes; len(codes) > 0 {
			b, _ := json.Marshal(codes)
			fmt.Fprintf(w, "  %s errors: %s\n", n, b)
		}
	}
	for _, n := range sortedKeys(c.Partners) {
		if k := c.Partners[n].ErrorCodes[partner.CodeNeedsOperator]; k > 0 {
			fmt.Fprintf(w, "  %s: %d record(s) NEED AN OPERATOR (exit %d): a rerun cannot tell whether %s has them.\n"+
				"    etl intents list --provider %s    then, for each, after looking it up at %s:\n"+
				"    etl intents settle --provider %s --entity KEY --as delivered|resend --by NAME --reason TEXT\n",
				n, k, exitNeedsOperator, n, n, n, n)
		}
	}
	for _, n := range sortedKeys(c.Stopped) {
		fmt.Fprintf(w, "  %s STOPPED: %s\n", n, c.Stopped[n])
	}
	for _, n := range sortedKeys(c.DeactivationRefused) {
		fmt.Fprintf(w, "  %s deactivation refused: %s\n", n, c.DeactivationRefused[n])
	}
	// Only a run that had nothing to do may say so: not one that refused
	// a deactivation, stopped a partner, or planned work it did not send.
	if !dry && status == "ok" && c.Calls == 0 && c.planned() == 0 && len(c.DeactivationRefused) == 0 && len(c.Stopped) == 0 {
		fmt.Fprintf(w, "  no partner calls were needed: nothing changed since the last run\n")
	}
	if d != nil && d.dir != "" {
		fmt.Fprintf(w, "  request bodies written under %s (%d files, card data masked)\n", d.dir, d.n.Load())
	}
	if total := c.allRejects(); total > 0 {
		fmt.Fprintf(w, "  %d rejects: %d input rows refused by validation + %d records refused by a partner's mapping: etl rejects %d > rejects.csv\n",
			total, c.Rejects, total-int64(c.Rejects), runID)
		if dr != nil && dr.path != "" {
			fmt.Fprintf(w, "  the same rejects are in %s (no card data)\n", dr.path)
		}
	}
}

func newProgress(ctx context.Context, mode string, quiet bool, log *zap.Logger, names []string) *progress.Progress {
	if mode == "auto" {
		mode = "lines"
		if term.IsTerminal(int(os.Stderr.Fd())) {
			mode = "bars"
		}
	}
	switch {
	case quiet || mode == "none":
		return progress.Quiet(names)
	case mode == "bars":
		return progress.NewBars(ctx, os.Stderr, names)
	default:
		return progress.NewLines(log, names, 10*time.Second)
	}
}

// runGC collects half as often as Go's default unless GOGC says otherwise.
// A run allocates for every record and keeps little: its live heap is a
// few tens of MiB whatever the export's size, so doubling the growth
// allowed between collections costs tens of MiB (peak RSS 80-90 MiB
// became 113-144 MiB at 100k and 1M customers) and took about a sixth off
// a first run's CPU (a 20k data feed run: 1.4 to 1.1 CPU-seconds).
func runGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
}
