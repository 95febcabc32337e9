package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// run wires one run together; each step that can fail maps its error to
// an exit code here and nowhere else.
func run(ctx context.Context, f runFlags, log *zap.Logger) int {
	cfg, code := loadRunConfig(f, log)
	if cfg == nil {
		return code
	}
	sh, err := shard.Parse(f.shard, os.Getenv("JOB_COMPLETION_INDEX"))
	if err != nil {
		return fail(exitUsage, "--shard: %v", err)
	}
	key, _ := cfg.HMACKey.Resolve()
	mets := metrics.New()
	provs, err := partners.Build(cfg, splitList(f.providers), func(name string, h *httpx.Config) {
		mets.Tune(name, h)
		h.Logger = log // retries, breaker transitions and rate changes at debug
		h.RatePerSec = sh.Rate(h.RatePerSec)
	})
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	store, err := openRunStore(ctx, cfg)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	defer store.Close()
	names := make([]string, len(provs))
	for i, p := range provs {
		names[i] = p.Name()
	}
	sourceID := sourceIdentity(cfg)
	if !f.dryRun {
		release, code := lockRun(ctx, store, sourceID, names, sh)
		if release == nil {
			return code
		}
		defer release()
	}

	now := time.Now()
	// The nightly fast path: the engine answers which customers are
	// unchanged since every partner last had them; the source skips
	// those before decoding.
	var eng *load.Engine
	scope, err := fingerprintScope(cfg, names, key, now)
	if err != nil {
		log.Warn("customer fingerprints off: every customer is compared in full", zap.Error(err))
	}
	fast := &extract.FastPath{Key: []byte(key), Unchanged: func(ctx context.Context, ids []string, sums [][]byte) ([]bool, error) {
		return eng.Unchanged(ctx, ids, sums)
	}}
	src, err := openSource(ctx, cfg, transform.NewValidator([]byte(key), now), sh.Keep, fast)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	deactivate := deactivates(f, cfg)
	ri := ledger.RunInfo{Group: f.runGroup, ShardIndex: sh.Index, ShardCount: sh.Count, Source: sourceID,
		Providers: names, Version: buildinfo.Read().String(), Options: map[string]any{"full_resync": f.fullResync, "deactivate": deactivate, "dry_run": f.dryRun}}
	if ri.Group == "" {
		ri.Group = newGroupID()
	}
	var runID int64
	if !f.dryRun {
		if runID, err = startRun(ctx, store, ri, log); err != nil {
			return fail(exitFatal, "%v", err)
		}
	}
	log.Info("run started", zap.Int64("run_id", runID), zap.String("run_group", ri.Group), zap.String("source", sourceID),
		zap.Strings("partners", names), zap.String("shard", sh.String()), zap.Bool("dry_run", f.dryRun))

	if f.metricsListen != "" {
		if err := serveMetrics(ctx, mets, f.metricsListen, log); err != nil {
			return fail(exitUsage, "--metrics-listen %s: %v", f.metricsListen, err)
		}
	}
	prog := newProgress(ctx, f.progress, f.quiet, log, names)
	dry := newDryRun(f.dryRunOut)
	opts := engineOptions(f, cfg, names, log, progress.Multi{mets, prog}, scope, sh, dry)
	if eng, err = load.New(store, provs, []byte(key), opts...); err != nil {
		prog.Close()
		return fail(exitUsage, "%v", err)
	}
	start := time.Now()
	var stats extract.Stats
	sum, runErr := eng.Run(ctx, runID, load.SourceFunc(func(ctx context.Context, emit func(*model.Customer) error, reject func(model.Reject) error) error {
		var err error
		stats, err = src.Read(ctx, emit, reject)
		return err
	}))
	elapsed := time.Since(start)
	prog.Close()
	return finishRun(ctx, f, log, store, mets, dry, runID, stats, sum, runErr, elapsed)
}

// openRunStore opens the ledger and brings its schema up to date.
func openRunStore(ctx context.Context, cfg *config.Config) (*ledger.Store, error) {
	dbURL, _ := cfg.Ledger.URL.Resolve()
	store, err := ledger.Open(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	if err := store.EnsureSchema(ctx); err != nil {
		store.Close()
		return nil, err
	}
	return store, nil
}

func serveMetrics(ctx context.Context, mets *metrics.Metrics, addr string, log *zap.Logger) error {
	got, err := mets.Serve(ctx, addr)
	if err != nil {
		return err
	}
	log.Info("serving metrics", zap.String("url", "http://"+got+"/metrics"))
	return nil
}

// deactivates says whether this run switches off what vanished.
func deactivates(f runFlags, cfg *config.Config) bool {
	return !f.noDeactivate && (cfg.Run.Deactivate == nil || *cfg.Run.Deactivate)
}

// engineOptions are the engine's options from the flags and config.
func engineOptions(f runFlags, cfg *config.Config, names []string, log *zap.Logger, obs load.Observer, scope string, sh shard.Shard, dry *dryRun) []load.Option {
	opts := []load.Option{load.WithLogger(log), load.WithWorkers(concurrency(cfg, names)), load.WithFullResync(f.fullResync), load.WithObserver(obs)}
	if scope != "" {
		opts = append(opts, load.WithFingerprintScope(scope))
	}
	if deactivates(f, cfg) {
		maxDeact := cfg.Run.MaxDeactivateFraction
		if f.maxDeactivate > 0 {
			maxDeact = f.maxDeactivate
		}
		opts = append(opts, load.WithDeactivation(maxDeact, sh.Keep))
	}
	if g := cfg.Run.GracePeriod.Duration; g > 0 {
		opts = append(opts, load.WithGracePeriod(g))
	}
	if f.dryRun {
		var ops func(string, partner.Op)
		if f.dryRunOut != "" {
			ops = dry.write
		}
		opts = append(opts, load.WithDryRun(ops))
	}
	return opts
}

// loadRunConfig loads and checks the config with the flags' overrides;
// nil and an exit code when it is not valid.
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
	if es := cfg.Validate(); len(es) > 0 {
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
	return cfg, exitOK
}

// startRun marks runs that died without finishing as crashed and opens
// this run's row.
func startRun(ctx context.Context, store *ledger.Store, ri ledger.RunInfo, log *zap.Logger) (int64, error) {
	if n, err := store.MarkCrashed(ctx, ri); err != nil {
		return 0, err
	} else if n > 0 {
		log.Warn("earlier runs died without finishing; marked crashed (this run resumes their work)", zap.Int64("runs", n))
	}
	return store.StartRun(ctx, ri)
}

// finishRun maps the run's outcome to an exit code, closes the run row,
// writes metrics and prints the summary.
func finishRun(ctx context.Context, f runFlags, log *zap.Logger, store *ledger.Store, mets *metrics.Metrics, dry *dryRun,
	runID int64, stats extract.Stats, sum *load.Summary, runErr error, elapsed time.Duration) int {
	code := exitOK
	status := "ok"
	switch {
	case runErr != nil:
		code, status = exitFatal, "failed"
	case sum.Cancelled:
		code, status = exitPartial, "cancelled"
	case !sum.Delivered():
		code, status = exitPartial, "partial"
	}
	// A rerun cannot settle these: say so in the exit code, not "rerun".
	operator := needsOperator(sum.Providers)
	if len(operator) > 0 && code == exitPartial {
		code = exitNeedsOperator
	}
	counts := runCounts{Files: stats.Files, Customers: stats.Customers, Compared: sum.Compared, Rejects: sum.Rejects, Partners: sum.Providers,
		Stopped: sum.Stopped, DeactivationRefused: sum.DeactGuard, Seconds: elapsed.Seconds(), Calls: sum.Calls()}
	if !f.dryRun {
		// The run row must be closed even when ctx was cancelled.
		if err := store.FinishRun(context.WithoutCancel(ctx), runID, status, counts); err != nil {
			log.Error("could not record the run's end", zap.Error(err))
		}
		if sum.Calls() > 0 || sum.Compared > 0 {
			if err := store.RefreshStats(context.WithoutCancel(ctx)); err != nil {
				log.Warn("could not refresh the checkpoint's statistics", zap.Error(err))
			}
		}
	}
	mets.Done(elapsed, code)
	if f.metricsFile != "" {
		if err := mets.WriteTextfile(f.metricsFile); err != nil {
			log.Error("could not write the metrics textfile", zap.String("path", f.metricsFile), zap.Error(err))
		}
	}
	printSummary(os.Stdout, runID, status, code, f.dryRun, counts, dry)
	if runErr != nil {
		fmt.Fprintf(os.Stderr, "etl: run %d failed: %v\n", runID, runErr)
	}
	for _, n := range sortedKeys(operator) {
		log.Warn("records need an operator: a rerun cannot tell whether the partner has them",
			zap.String("provider", n), zap.Int64("records", operator[n]),
			zap.String("list", "etl intents list --provider "+n),
			zap.String("settle", "etl intents settle --provider "+n+" --entity KEY --as delivered|resend --by NAME --reason TEXT"))
	}
	log.Info("run finished", zap.Int64("run_id", runID), zap.String("status", status), zap.Int("exit_code", code),
		zap.Int64("calls", sum.Calls()), zap.Duration("elapsed", elapsed))
	return code
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

// runCounts is stored in runs.counts and printed.
type runCounts struct {
	Files               []extract.FileStats     `json:"files"`
	Customers           int                     `json:"customers"`
	Compared            int64                   `json:"compared"` // customers compared in full; the rest were skipped by fingerprint
	Rejects             int                     `json:"rejects"`
	Partners            map[string]*load.Counts `json:"partners"`
	Stopped             map[string]string       `json:"stopped,omitempty"`
	DeactivationRefused map[string]string       `json:"deactivation_refused,omitempty"`
	Seconds             float64                 `json:"seconds"`
	Calls               int64                   `json:"calls"`
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

func sourceIdentity(cfg *config.Config) string {
	if cfg.Source.Type == "postgres" {
		return "postgres:" + cfg.Source.Postgres.Customers
	}
	abs, err := filepath.Abs(cfg.Source.Dir)
	if err != nil {
		abs = cfg.Source.Dir
	}
	return "csv:" + abs
}

// concurrency is the configured workers of the partners of this run.
func concurrency(cfg *config.Config, names []string) map[string]int {
	out := map[string]int{}
	for _, n := range names {
		if c := cfg.Partners[n].Concurrency; c > 0 {
			out[n] = c
		}
	}
	return out
}

func newGroupID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func printSummary(w io.Writer, runID int64, status string, code int, dry bool, c runCounts, d *dryRun) {
	if dry {
		fmt.Fprintf(w, "\nDRY RUN: nothing was sent and the ledger is unchanged.\n")
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
	fmt.Fprintln(tw, "partner\tcreate\tupdate\tunchanged\tdeactivate\tresolve\tmap-reject\tok\trejected\tfailed\tuncertain\tnot-sent\tcalls\t")
	for _, n := range sortedKeys(c.Partners) {
		p := c.Partners[n]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", n, p.Create, p.Update, p.Unchanged, p.Deactivate, p.Resolve,
			p.MapRejected, p.OK, p.Rejected, p.Failed, p.Uncertain, p.NotSent, p.Calls)
	}
	tw.Flush()
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
	for n, why := range c.Stopped {
		fmt.Fprintf(w, "  %s STOPPED: %s\n", n, why)
	}
	for n, why := range c.DeactivationRefused {
		fmt.Fprintf(w, "  %s deactivation refused: %s\n", n, why)
	}
	if c.Calls == 0 && !dry {
		fmt.Fprintf(w, "  no partner calls were needed: nothing changed since the last run\n")
	}
	if d != nil && d.dir != "" {
		fmt.Fprintf(w, "  request bodies written under %s (%d files, card data masked)\n", d.dir, d.n.Load())
	}
	if !dry && c.Rejects > 0 {
		fmt.Fprintf(w, "  %d rejected rows: etl rejects %d > rejects.csv\n", c.Rejects, runID)
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
