// Package bench is `make bench`: in one run on one machine it measures,
// per registered partner and on generated data against the sandboxes over
// loopback, the ceiling (the partner's own client posting prepared
// payloads from many goroutines, no planning, no database), a naive
// baseline (one goroutine, one ledger INSERT per record) and `etl run`
// itself end to end; then the peak RSS of `etl run` at two sizes, the
// nightly no-change rerun rate, the achieved rate against a
// rate-limited, slow sandbox, and naive against etl run when every call
// waits on the partner. The mixed mode (bounds.go, mixed.go) runs every
// partner in one etl run, each sandbox with its own faults, and judges
// each partner against its own bound; the 4-shard runs judge the data
// feed's batches. The machine is shared, so the ratios, not the absolute
// numbers, are the result.
package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/partners"
)

// Options say what to measure. Zero values take the defaults noted.
type Options struct {
	Bin            string   // the etl binary; required
	Partners       []string // default: every registered partner
	Customers      int      // per-partner comparison size; default 20 000
	NaiveCustomers int      // the naive loop runs on the first n; default 5 000 (its rate does not depend on n)
	Concurrency    int      // etl run workers per partner and bare-client goroutines; default 16

	// RSSSizes are the sizes of the peak-RSS runs; the nightly no-change
	// rerun follows the largest. Empty: skip. RSSPartner defaults to the
	// data feed (its per-customer work is the cheapest).
	RSSSizes   []int
	RSSPartner string

	// The rate-limited mode: the sandbox adds RateLatency and answers 429
	// past RateLimit requests/s; the run is configured at rate_per_sec =
	// RateLimit with RateConcurrency workers, on RateSeconds worth of
	// requests. RateSeconds 0 skips it. RatePartner defaults to synctera
	// when registered, else q2open, else the first per-record partner.
	RateLimit       float64
	RateLatency     time.Duration
	RateSeconds     float64
	RateConcurrency int
	RatePartner     string

	// The latency mode: the sandbox adds Latency to every answer and has
	// no rate limit; the naive loop runs on LatencyNaive customers and
	// etl run (RateConcurrency workers) on LatencyCustomers, for the
	// run/naive ratio where a partner's round trip, not the CPU, is the
	// cost of a call. Latency 0 skips it. Same partner as the rate mode.
	Latency          time.Duration
	LatencyNaive     int
	LatencyCustomers int

	// Mode: "all" (default) measures everything; "mixed" only the
	// mixed mode, the 4-shard run and the mixed memory check; "single"
	// everything but those.
	Mode string

	// The mixed mode: every partner of Partners in one etl run on
	// MixedCustomers, each sandbox with the faults MixedFaults give
	// (PARTNER=SPEC items merged key by key in order over none; see
	// DefaultMixedFaults) and the workers MixedConcurrency gives
	// (default DefaultMixedConcurrency, else Concurrency). A partner with
	// a rate limit gets rate_per_sec = that limit. MixedCustomers 0
	// skips it. ShardCustomers: the 4-shard data feed run's size (0
	// skips it).
	MixedCustomers   int
	MixedFaults      []string
	MixedConcurrency map[string]int
	ShardCustomers   int
	// The mixed memory check: MixedRSSPartners in one run at each of
	// MixedRSSSizes with MixedRSSFaults (default: none).
	MixedRSSSizes    []int
	MixedRSSPartners []string
	MixedRSSFaults   []string

	DatabaseURL string // a server to create databases on; empty: start a throwaway cluster
	// NoSync starts the throwaway cluster without fsync and synchronous
	// commits, as the tests do. By default it commits as production does:
	// the naive loop's per-record commit and etl's batched ones are then
	// priced as they would be against a real ledger database.
	NoSync     bool
	WorkDir    string // generated data and configs; empty: a temp dir removed at the end
	ProfileDir string // if set, also profile the in-process equivalent of each etl run here
	// Budget bounds the whole measurement: the peak-RSS runs (the only
	// ones whose time grows with their size, and the last) are stopped
	// at it or skipped, and the report says so. 0: no bound.
	Budget time.Duration
	Log    io.Writer
}

func (o *Options) defaults() {
	if o.Customers <= 0 {
		o.Customers = 20000
	}
	if o.NaiveCustomers <= 0 {
		o.NaiveCustomers = 5000
	}
	o.NaiveCustomers = min(o.NaiveCustomers, o.Customers)
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.RateLimit <= 0 {
		o.RateLimit = 200
	}
	if o.RateConcurrency <= 0 {
		o.RateConcurrency = max(16, o.Concurrency)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.LatencyNaive <= 0 {
		o.LatencyNaive = 200
	}
	if o.LatencyCustomers <= 0 {
		o.LatencyCustomers = 4000
	}
	if o.Mode == "" {
		o.Mode = "all"
	}
	if o.MixedFaults == nil {
		o.MixedFaults = DefaultMixedFaults
	}
	if o.MixedConcurrency == nil {
		o.MixedConcurrency = DefaultMixedConcurrency
	}
	if len(o.MixedRSSPartners) == 0 {
		o.MixedRSSPartners = []string{"datafeed", "synctera"}
	}
}

// Run measures everything Options ask for and returns the report; an
// error means a measurement could not be made (a missed target is not an
// error: it is in the report).
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	if o.Bin == "" {
		return nil, fmt.Errorf("bench: Options.Bin (the etl binary) is required")
	}
	switch o.Mode {
	case "all", "mixed", "single":
	default:
		return nil, fmt.Errorf("bench: mode %q: want all, mixed or single", o.Mode)
	}
	specs, err := selectPartners(o.Partners)
	if err != nil {
		return nil, err
	}
	r := &runner{o: o, rep: &Report{Started: time.Now().UTC(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Customers: o.Customers, NaiveCustomers: o.NaiveCustomers, Concurrency: o.Concurrency, Database: databaseKind(o),
		Mode: o.Mode, Load: loadAvg()}}
	if r.work = o.WorkDir; r.work == "" {
		if r.work, err = os.MkdirTemp("", "etl-bench-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(r.work)
	} else if err := os.MkdirAll(r.work, 0o755); err != nil {
		return nil, err
	}
	r.rep.Host, _ = os.Hostname()
	if o.ProfileDir != "" {
		if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
			return nil, err
		}
	}
	r.logf("starting PostgreSQL")
	if r.db, err = openDBServer(ctx, o.DatabaseURL, o.NoSync); err != nil {
		return nil, err
	}
	defer r.db.Close()
	start := time.Now()
	if o.Budget > 0 {
		r.deadline = start.Add(o.Budget)
	}
	defer func() {
		r.rep.Seconds = time.Since(start).Seconds()
		r.rep.evaluate()
	}()

	if o.Mode == "mixed" {
		return r.rep, r.mixedAll(ctx, specs)
	}
	dir, err := dataset(r.work, o.Customers)
	if err != nil {
		return nil, err
	}
	cs, err := loadCustomers(ctx, dir)
	if err != nil {
		return nil, err
	}
	for _, sp := range specs {
		pr, err := r.partner(ctx, sp, dir, cs)
		if err != nil {
			return r.rep, fmt.Errorf("bench: %s: %w", sp.Name, err)
		}
		r.rep.Partners = append(r.rep.Partners, pr)
	}
	cs = nil // the large runs below are child processes; free the driver's copy
	if o.RateSeconds > 0 {
		if err := r.rateLimited(ctx, specs); err != nil {
			return r.rep, err
		}
	}
	if o.Latency > 0 {
		if err := r.latencyMode(ctx, specs); err != nil {
			return r.rep, err
		}
	}
	// The mixed run and the shards are bounded by their partners, not
	// by the budget; the memory runs that follow are cut at it.
	if o.Mode == "all" {
		if err := r.mixedRuns(ctx, specs); err != nil {
			return r.rep, err
		}
	}
	if len(o.RSSSizes) > 0 {
		if err := r.memory(ctx, specs); err != nil {
			return r.rep, err
		}
	}
	if o.Mode == "all" && len(o.MixedRSSSizes) > 0 {
		if err := r.mixedMemory(ctx); err != nil {
			return r.rep, err
		}
	}
	return r.rep, nil
}

// mixedAll is -mode mixed: the mixed run, the shards and the mixed
// memory check, nothing else.
func (r *runner) mixedAll(ctx context.Context, specs []partners.Spec) error {
	if err := r.mixedRuns(ctx, specs); err != nil {
		return err
	}
	if len(r.o.MixedRSSSizes) > 0 {
		return r.mixedMemory(ctx)
	}
	return nil
}

// mixedRuns is the mixed run (when MixedCustomers > 0), then the
// 4-shard runs (when ShardCustomers > 0).
func (r *runner) mixedRuns(ctx context.Context, specs []partners.Spec) error {
	if r.o.MixedCustomers > 0 {
		if err := r.mixed(ctx, specs); err != nil {
			return err
		}
		if err := r.growth(ctx, specs); err != nil {
			return err
		}
	}
	if r.o.ShardCustomers > 0 {
		return r.shardRuns(ctx, specs)
	}
	return nil
}

func databaseKind(o Options) string {
	switch {
	case o.DatabaseURL != "":
		return "the server at DATABASE_URL / -database-url, as configured there"
	case o.NoSync:
		return "a throwaway cluster without fsync or synchronous commits (-nosync)"
	}
	return "a throwaway cluster that commits durably, as production does (fsync, synchronous_commit on)"
}

func selectPartners(names []string) ([]partners.Spec, error) {
	all := partners.All()
	if len(names) == 0 {
		return all, nil
	}
	var out []partners.Spec
	for _, n := range names {
		sp, ok := partners.Get(n)
		if !ok {
			return nil, fmt.Errorf("bench: unknown partner %q (known: %v)", n, partners.Names())
		}
		out = append(out, sp)
	}
	return out, nil
}

type runner struct {
	o        Options
	deadline time.Time
	rep      *Report
	db       *dbServer
	work     string
	seq      int
}

func (r *runner) logf(format string, a ...any) {
	fmt.Fprintf(r.o.Log, "bench: "+format+"\n", a...)
}

// setup is one measurement's fresh sandbox process and its config.
type setup struct {
	sb      *sandboxProc
	cfgPath string
	env     []string
}

func (r *runner) newSetup(ctx context.Context, partner string, rc runConfig) (*setup, error) {
	sb, err := startSandbox(ctx, r.o.Bin, partner)
	if err != nil {
		return nil, err
	}
	r.seq++
	s := &setup{sb: sb, cfgPath: filepath.Join(r.work, fmt.Sprintf("etl-%d.yaml", r.seq))}
	if s.env, err = writeConfig(s.cfgPath, sb.URL, rc); err != nil {
		sb.Stop()
		return nil, err
	}
	return s, nil
}

// provider builds partner name's client from the setup's config exactly
// as `etl run` does.
func (s *setup) provider(name string) (partner.Provider, error) {
	restore := setEnv(s.env)
	defer restore()
	cfg, err := config.Load(s.cfgPath)
	if err != nil {
		return nil, err
	}
	ps, err := partners.Build(cfg, []string{name}, nil)
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

// requests is how many requests partner p's sandbox has counted.
func (s *setup) requests(ctx context.Context, p string) int64 {
	v, err := s.sb.Faults(ctx, p)
	if err != nil {
		return -1
	}
	return v.Stats.Requests
}

func (r *runner) partner(ctx context.Context, sp partners.Spec, dir string, cs []*model.Customer) (PartnerResult, error) {
	pr := PartnerResult{Name: sp.Name}
	rc := runConfig{Source: dir, Concurrency: r.o.Concurrency}

	// The ceiling: prepared payloads, the partner's client, N goroutines.
	bare := func(batch int) (Measure, error) {
		s, err := r.newSetup(ctx, sp.Name, rc)
		if err != nil {
			return Measure{}, err
		}
		defer s.sb.Stop()
		p, err := s.provider(sp.Name)
		if err != nil {
			return Measure{}, err
		}
		if batch == 0 {
			batch = p.MaxBatch()
			pr.MaxBatch = batch
		}
		ops, err := prepare(p, []byte(hmacKey), cs)
		if err != nil {
			return Measure{}, err
		}
		pr.OpsPerCustomer = opsPer(ops)
		r.logf("%s: ceiling, %d customers, %d per request, %d goroutines", sp.Name, len(ops), batch, r.o.Concurrency)
		m0 := startMeter(s.sb.PID(), r.db.PID())
		m := ceiling(ctx, p, ops, batch, r.o.Concurrency)
		m.finish(m0.stop())
		m.Requests = s.requests(ctx, sp.Name)
		r.logf("%s: ceiling %.0f customers/s (%d failed ops)", sp.Name, m.PerSec, m.Failed)
		return m, nil
	}
	var err error
	if pr.Ceiling, err = bare(0); err != nil {
		return pr, err
	}
	if pr.MaxBatch > 1 {
		m, err := bare(1)
		if err != nil {
			return pr, err
		}
		pr.CeilingSingle = &m
	}

	// The naive baseline.
	if pr.Naive, err = r.naiveRun(ctx, sp.Name, rc, "", cs[:r.o.NaiveCustomers]); err != nil {
		return pr, err
	}

	// etl run, end to end.
	rm, err := r.etlRun(ctx, sp.Name, rc, "", time.Time{}, nil)
	if err != nil {
		return pr, err
	}
	pr.Run = rm
	r.logf("%s: etl run %.0f customers/s, peak RSS %.1f MiB", sp.Name, rm.PerSec, rm.MaxRSSMiB)

	if r.o.ProfileDir != "" {
		if err := r.profile(ctx, sp.Name, rc); err != nil {
			return pr, err
		}
	}
	return pr, nil
}

// etlRun is one `etl run --providers p` against a fresh sandbox process
// (with faults, when given) and a fresh database. With after set, the sandbox and database are kept
// for it (the nightly rerun).
func (r *runner) etlRun(ctx context.Context, p string, rc runConfig, faults string, deadline time.Time, after func(s *setup, db string, rm RunMeasure) error) (RunMeasure, error) {
	s, err := r.faultySetup(ctx, p, rc, faults)
	if err != nil {
		return RunMeasure{}, err
	}
	defer s.sb.Stop()
	db, err := r.db.NewDB(ctx)
	if err != nil {
		return RunMeasure{}, err
	}
	r.logf("%s: etl run (%s)", p, filepath.Base(rc.Source))
	m0 := startMeter(s.sb.PID(), r.db.PID())
	rm := etlRun(ctx, r.o.Bin, s.cfgPath, s.env, db, p, deadline)
	cpu, _ := m0.stop()
	cpu.ETL, cpu.Driver = rm.CPU.ETL, 0
	rm.CPU = cpu
	rm.Requests = s.requests(ctx, p)
	if rm.Error != "" {
		return rm, fmt.Errorf("%s", rm.Error)
	}
	if after != nil {
		err = after(s, db, rm)
	}
	return rm, err
}

func (r *runner) profile(ctx context.Context, p string, rc runConfig) error {
	s, err := r.newSetup(ctx, p, rc)
	if err != nil {
		return err
	}
	defer s.sb.Stop()
	db, err := r.db.NewDB(ctx)
	if err != nil {
		return err
	}
	path := filepath.Join(r.o.ProfileDir, p+".cpu.prof")
	wall, err := profileRun(ctx, s.cfgPath, s.env, db, p, path)
	r.logf("%s: in-process run profiled in %s: %s", p, wall.Round(time.Millisecond), path)
	r.rep.Profiles = append(r.rep.Profiles, path)
	return err
}

// memory runs etl at each RSS size, smallest first, each followed by the
// nightly no-change rerun on the same database and sandbox. Runs are cut
// at the time budget.
func (r *runner) memory(ctx context.Context, specs []partners.Spec) error {
	p := r.o.RSSPartner
	if p == "" {
		p = pickRSSPartner(specs)
	}
	sizes := slices.Clone(r.o.RSSSizes)
	slices.Sort(sizes)
	for _, n := range sizes {
		if left := time.Until(r.deadline); !r.deadline.IsZero() && left < 30*time.Second {
			r.note("the %s-customer runs were skipped: %s of the time budget left", count(n), left.Round(time.Second))
			continue
		}
		dir, err := dataset(r.work, n)
		if err != nil {
			return err
		}
		rc := runConfig{Source: dir, Concurrency: r.o.Concurrency}
		mr := MemRun{Partner: p, Customers: n}
		rm, err := r.etlRun(ctx, p, rc, "", r.deadline, func(s *setup, db string, rm RunMeasure) error {
			if rm.Cut {
				return nil
			}
			before := s.requests(ctx, p)
			seqBefore := rm.SyncStateSeqRows
			r.logf("%s: nightly no-change rerun of %d customers", p, n)
			m0 := startMeter(s.sb.PID(), r.db.PID())
			rr := etlRun(ctx, r.o.Bin, s.cfgPath, s.env, db, p, r.deadline)
			cpu, _ := m0.stop()
			cpu.ETL, cpu.Driver = rr.CPU.ETL, 0
			if rr.Error != "" {
				return fmt.Errorf("nightly rerun: %s", rr.Error)
			}
			nr := &Nightly{Partner: p, Customers: rr.Read, Seconds: rr.Seconds, Calls: rr.Calls, Cut: rr.Cut,
				SandboxRequests: s.requests(ctx, p) - before, MaxRSSMiB: rr.MaxRSSMiB, CPU: cpu, SyncStateSeqRows: rr.SyncStateSeqRows - seqBefore}
			if rr.Seconds > 0 {
				nr.PerSec = float64(rr.Read) / rr.Seconds
			}
			mr.Rerun = nr
			r.logf("%s: nightly rerun %.0f customers/s, %d calls", p, nr.PerSec, nr.Calls)
			if r.o.ProfileDir == "" {
				return nil
			}
			path := filepath.Join(r.o.ProfileDir, fmt.Sprintf("%s-nightly-%s.cpu.prof", p, count(n)))
			// The in-process run has its own fingerprint scope (it is not the
			// etl binary): one unprofiled run records its fingerprints, so
			// the profiled one is the fast path the binary just took.
			if _, err := profileRun(ctx, s.cfgPath, s.env, db, p, path); err != nil {
				return err
			}
			wall, err := profileRun(ctx, s.cfgPath, s.env, db, p, path)
			r.logf("%s: in-process nightly rerun profiled in %s: %s", p, wall.Round(time.Millisecond), path)
			r.rep.Profiles = append(r.rep.Profiles, path)
			return err
		})
		if err != nil {
			return fmt.Errorf("bench: RSS run at %d: %w", n, err)
		}
		mr.Run = rm
		r.rep.Memory = append(r.rep.Memory, mr)
		if rm.Cut {
			r.note("the %s-customer run was stopped at the time budget after %.0fs with %d customers delivered: its RSS is the peak until then", count(n), rm.Seconds, rm.Customers)
		}
		if mr.Rerun != nil && !mr.Rerun.Cut {
			r.rep.Nightly = mr.Rerun
		}
		r.logf("%s: %d customers: peak RSS %.1f MiB, %.0f customers/s", p, n, rm.MaxRSSMiB, rm.PerSec)
	}
	return nil
}

func (r *runner) note(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	r.rep.Notes = append(r.rep.Notes, msg)
	r.logf("%s", msg)
}

func pickRSSPartner(specs []partners.Spec) string {
	for _, sp := range specs {
		if sp.Name == "datafeed" {
			return sp.Name
		}
	}
	return specs[0].Name
}

// rateLimited runs one per-record partner against a sandbox that adds
// latency and answers 429 past the limit, configured at the limit.
func (r *runner) rateLimited(ctx context.Context, specs []partners.Spec) error {
	p := r.o.RatePartner
	if p == "" {
		p = r.pickRatePartner(specs)
	}
	var per float64 = 1
	for _, pr := range r.rep.Partners {
		if pr.Name == p && pr.OpsPerCustomer > 0 {
			per = pr.OpsPerCustomer
		}
	}
	n := int(math.Ceil(r.o.RateSeconds * r.o.RateLimit / per))
	dir, err := dataset(r.work, n)
	if err != nil {
		return err
	}
	spec := fmt.Sprintf("latency=%s,rate=%g", r.o.RateLatency, r.o.RateLimit)
	rc := runConfig{Source: dir, Concurrency: r.o.RateConcurrency, RatePerSec: r.o.RateLimit}
	s, err := r.faultySetup(ctx, p, rc, spec)
	if err != nil {
		return err
	}
	defer s.sb.Stop()
	db, err := r.db.NewDB(ctx)
	if err != nil {
		return err
	}
	r.logf("%s: rate-limited run, sandbox %s, %d customers, concurrency %d", p, spec, n, r.o.RateConcurrency)
	// Sample the sandbox's counter so the sending window (first to last
	// request seen) can be told apart from process start-up and exit.
	win := watchWindow(ctx, s.sb, p)
	rm := etlRun(ctx, r.o.Bin, s.cfgPath, s.env, db, p, time.Time{})
	first, last, passedInWindow := win()
	if rm.Error != "" {
		return fmt.Errorf("bench: rate-limited run: %s", rm.Error)
	}
	v, err := s.sb.Faults(ctx, p)
	if err != nil {
		return err
	}
	rr := &RateResult{Partner: p, Faults: spec, Limit: r.o.RateLimit, Concurrency: r.o.RateConcurrency, Customers: rm.Customers,
		Seconds: rm.Seconds, Passed: v.Stats.Passed, RateLimited: v.Stats.RateLimited, Requests: v.Stats.Requests, ExitCode: rm.ExitCode}
	if rm.Seconds > 0 {
		rr.PerSec = float64(v.Stats.Passed) / rm.Seconds
		rr.Fraction = rr.PerSec / r.o.RateLimit
	}
	if d := last.Sub(first).Seconds(); d > 0 {
		rr.WindowPerSec = float64(passedInWindow) / d
	}
	r.rep.Rate = rr
	r.logf("%s: %.1f requests/s = %.1f%% of the limit, %d answered 429", p, rr.PerSec, 100*rr.Fraction, rr.RateLimited)
	return nil
}

func (r *runner) pickRatePartner(specs []partners.Spec) string {
	for _, want := range []string{"synctera", "q2open"} {
		for _, sp := range specs {
			if sp.Name == want {
				return want
			}
		}
	}
	for _, pr := range r.rep.Partners {
		if pr.MaxBatch == 1 {
			return pr.Name
		}
	}
	return specs[0].Name
}

func opsPer(ops [][]partner.Op) float64 {
	n := 0
	for _, o := range ops {
		n += len(o)
	}
	if len(ops) == 0 {
		return 0
	}
	return float64(n) / float64(len(ops))
}

// watchWindow polls partner p's passed-request counter every 50 ms until
// the returned function is called, which reports when passing started and
// last advanced and how many passed in between.
func watchWindow(ctx context.Context, sb *sandboxProc, p string) func() (first, last time.Time, passed int64) {
	stop := make(chan struct{})
	done := make(chan struct{})
	var first, last time.Time
	var n0, n1 int64
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			v, err := sb.Faults(ctx, p)
			if err != nil {
				continue
			}
			now, n := time.Now(), v.Stats.Passed
			switch {
			case n > 0 && first.IsZero():
				first, last, n0, n1 = now, now, n, n
			case n > n1:
				last, n1 = now, n
			}
		}
	}()
	return func() (time.Time, time.Time, int64) {
		close(stop)
		<-done
		return first, last, n1 - n0
	}
}

// latencyMode compares the naive loop with etl run against a sandbox that
// answers every call Latency late and limits nothing: the setting the
// engine's concurrency is for, which loopback without latency cannot show.
func (r *runner) latencyMode(ctx context.Context, specs []partners.Spec) error {
	p := r.o.RatePartner
	if p == "" {
		p = r.pickRatePartner(specs)
	}
	spec := fmt.Sprintf("latency=%s", r.o.Latency)
	lr := &LatencyResult{Partner: p, Faults: spec, Concurrency: r.o.RateConcurrency}

	dir, err := dataset(r.work, r.o.LatencyCustomers)
	if err != nil {
		return err
	}
	cs, err := loadCustomers(ctx, dir)
	if err != nil {
		return err
	}
	rc := runConfig{Source: dir, Concurrency: r.o.RateConcurrency}
	if lr.Naive, err = r.naiveRun(ctx, p, rc, spec, cs[:min(r.o.LatencyNaive, len(cs))]); err != nil {
		return err
	}
	r.logf("%s: latency mode: etl run, %d customers, concurrency %d", p, len(cs), r.o.RateConcurrency)
	rm, err := r.etlRun(ctx, p, rc, spec, time.Time{}, nil)
	if err != nil {
		return fmt.Errorf("bench: latency mode run: %w", err)
	}
	lr.Run = rm
	r.rep.Latency = lr
	r.logf("%s: latency mode: etl run %.0f customers/s", p, rm.PerSec)
	return nil
}

// naiveRun measures the naive loop for partner p on cs against a fresh
// sandbox process (with faults, when given) and a fresh database.
func (r *runner) naiveRun(ctx context.Context, p string, rc runConfig, faults string, cs []*model.Customer) (Measure, error) {
	s, err := r.faultySetup(ctx, p, rc, faults)
	if err != nil {
		return Measure{}, err
	}
	defer s.sb.Stop()
	prov, err := s.provider(p)
	if err != nil {
		return Measure{}, err
	}
	db, err := r.db.NewDB(ctx)
	if err != nil {
		return Measure{}, err
	}
	store, err := ledger.Open(ctx, db)
	if err != nil {
		return Measure{}, err
	}
	runID, err := store.StartRun(ctx, ledger.RunInfo{Group: "bench-naive", Source: "bench", Providers: []string{p}, Version: "bench"})
	store.Close()
	if err != nil {
		return Measure{}, err
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return Measure{}, err
	}
	defer conn.Close(ctx)
	r.logf("%s: naive baseline, %d customers, sandbox faults %q", p, len(cs), faults)
	m0 := startMeter(s.sb.PID(), r.db.PID())
	m := naive(ctx, prov, []byte(hmacKey), cs, conn, runID)
	m.finish(m0.stop())
	m.Requests = s.requests(ctx, p)
	r.logf("%s: naive %.0f customers/s", p, m.PerSec)
	return m, nil
}

// faultySetup is newSetup with the sandbox's faults set (none when empty).
func (r *runner) faultySetup(ctx context.Context, p string, rc runConfig, faults string) (*setup, error) {
	s, err := r.newSetup(ctx, p, rc)
	if err != nil {
		return nil, err
	}
	if faults != "" {
		if err := s.sb.SetFaults(ctx, p, faults); err != nil {
			s.sb.Stop()
			return nil, err
		}
	}
	return s, nil
}
