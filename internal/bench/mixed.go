package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/sandbox/faults"
)

// mixedPlan is what the mixed mode runs: every selected partner in one
// `etl run`, each sandbox with its own faults and the run with each
// partner's own concurrency.
type mixedPlan struct {
	names  []string
	faults map[string]faults.Config
	rc     runConfig
}

func (r *runner) mixedPlan(specs []partners.Spec, dir string, items []string, conc map[string]int) (mixedPlan, error) {
	var names []string
	for _, sp := range specs {
		names = append(names, sp.Name)
	}
	fc, err := MergeFaults(partners.Names(), items)
	if err != nil {
		return mixedPlan{}, err
	}
	rc := runConfig{Source: dir, Concurrency: r.o.Concurrency, PerPartner: map[string]partnerRC{}}
	for _, n := range names {
		c := conc[n]
		if c <= 0 {
			c = r.o.Concurrency
		}
		// The operator configures a partner's published limit as its
		// rate_per_sec, as the rate-limited mode does.
		rc.PerPartner[n] = partnerRC{Concurrency: c, RatePerSec: fc[n].RateLimit}
	}
	return mixedPlan{names: names, faults: fc, rc: rc}, nil
}

// sandboxArgs are the --faults flags that give each partner its config.
func (m mixedPlan) sandboxArgs() []string {
	var out []string
	for _, n := range m.names {
		if c := m.faults[n]; c != (faults.Config{}) {
			out = append(out, "--faults", n+"="+c.String())
		}
	}
	return out
}

// mixed runs the mixed mode.
func (r *runner) mixed(ctx context.Context, specs []partners.Spec) error {
	dir, err := dataset(r.work, r.o.MixedCustomers)
	if err != nil {
		return err
	}
	plan, err := r.mixedPlan(specs, dir, r.o.MixedFaults, r.o.MixedConcurrency)
	if err != nil {
		return err
	}
	res, err := r.mixedRun(ctx, plan, r.o.MixedCustomers)
	if err != nil {
		return fmt.Errorf("bench: mixed mode: %w", err)
	}
	r.rep.Mixed = res
	res.finish()
	for _, p := range res.Partners {
		r.logf("mixed: %s: %.1f passed/s of bound %.1f (%.0f%%), %d calls, %d 429, %d breaker trips", p.Partner, p.PassedPerS, p.Bound, 100*p.OfBound, p.Calls, p.Answered429, p.BreakerTrips)
	}
	r.logf("mixed: wall %.1fs, slowest bound %s %.1fs", res.Seconds, res.Slowest, res.SlowestBound)
	return nil
}

// Growth run: Q2 alone at its mixed-mode latency with room to grow, so
// that "concurrency that grows while latency stays flat" is a figure: its
// passed/s against the bound of its configured concurrency, and against
// that of its maximum.
const (
	growthPartner     = "q2open"
	growthConcurrency = 8
	growthMax         = 32
	growthCustomers   = 2000
)

func (r *runner) growth(ctx context.Context, specs []partners.Spec) error {
	var q []partners.Spec
	for _, sp := range specs {
		if sp.Name == growthPartner {
			q = append(q, sp)
		}
	}
	if len(q) == 0 {
		return nil
	}
	n := min(r.o.MixedCustomers, growthCustomers)
	dir, err := dataset(r.work, n)
	if err != nil {
		return err
	}
	plan, err := r.mixedPlan(q, dir, r.o.MixedFaults, map[string]int{growthPartner: growthConcurrency})
	if err != nil {
		return err
	}
	pp := plan.rc.PerPartner[growthPartner]
	pp.MaxConcurrency = growthMax
	plan.rc.PerPartner[growthPartner] = pp
	res, err := r.mixedRun(ctx, plan, n)
	if err != nil {
		return fmt.Errorf("bench: growth run: %w", err)
	}
	res.finish()
	r.rep.Growth = res
	p := res.Partners[0]
	r.logf("growth: %s, concurrency %d, max_concurrency %d: %.1f passed/s, %.0f%% of the bound at %d", p.Partner, p.Concurrency, p.MaxConcurrency, p.PassedPerS, 100*p.OfBound, p.MaxConcurrency)
	return nil
}

// mixedRun is one `etl run` of every partner in plan against one sandbox
// process with plan's faults.
func (r *runner) mixedRun(ctx context.Context, plan mixedPlan, n int) (*MixedResult, error) {
	sb, err := startSandbox(ctx, r.o.Bin, plan.names[0], plan.sandboxArgs()...)
	if err != nil {
		return nil, err
	}
	defer sb.Stop()
	for _, p := range plan.names {
		v, err := sb.Faults(ctx, p)
		if err != nil {
			return nil, err
		}
		if v.Config.String() != plan.faults[p].String() {
			return nil, fmt.Errorf("%s sandbox has faults %q, want %q", p, v.Config, plan.faults[p])
		}
	}
	r.seq++
	cfgPath := filepath.Join(r.work, fmt.Sprintf("etl-%d.yaml", r.seq))
	env, err := writeConfig(cfgPath, sb.URL, plan.rc)
	if err != nil {
		return nil, err
	}
	db, err := r.db.NewDB(ctx)
	if err != nil {
		return nil, err
	}
	res := &MixedResult{Customers: n, Load: loadAvg()}
	for _, p := range plan.names {
		prov, err := (&setup{cfgPath: cfgPath, env: env}).provider(p)
		if err != nil {
			return nil, err
		}
		c := plan.faults[p]
		pp := plan.rc.PerPartner[p]
		b, how := Bound(c, max(pp.Concurrency, pp.MaxConcurrency))
		res.Partners = append(res.Partners, MixedPartner{Partner: p, Faults: c.String(), Concurrency: pp.Concurrency, MaxConcurrency: pp.MaxConcurrency,
			RatePerSec: plan.rc.PerPartner[p].RatePerSec, MaxBatch: prov.MaxBatch(), Bound: b, InjectedBound: b, BoundHow: how, RateLimited: c.RateLimit > 0})
	}
	logPath := cfgPath + ".log"
	metricsPath := cfgPath + ".prom"
	r.logf("mixed: etl run --providers %s, %d customers, sandbox %s", strings.Join(plan.names, ","), n, strings.Join(plan.sandboxArgs(), " "))
	watch := watchAll(ctx, sb, plan.names)
	u, err := runETL(ctx, r.o.Bin, cfgPath, env, db, logPath, time.Time{},
		"--providers", strings.Join(plan.names, ","), "--metrics-textfile", metricsPath)
	t0, wins := watch()
	if err != nil {
		return nil, err
	}
	res.Seconds, res.ExitCode, res.MaxRSSMiB = u.Wall, u.Exit, float64(u.MaxRSSKiB)/1024
	if u.Exit != 0 && u.Exit != 3 { // 3: partial (a record failed or a partner stopped): still measured
		return res, fmt.Errorf("etl run exited %d: %s", u.Exit, tail(readTail(logPath), 600))
	}
	rows, err := readRuns(ctx, db)
	if err != nil {
		return res, err
	}
	delivered, err := deliveredCustomers(ctx, db)
	if err != nil {
		return res, err
	}
	events, _ := readLog(logPath)
	m429, retries := readPromCounters(metricsPath)
	for i := range res.Partners {
		p := &res.Partners[i]
		v, err := sb.Faults(ctx, p.Partner)
		if err != nil {
			return res, err
		}
		p.Requests, p.Passed, p.Answered429, p.Errors5xx = v.Stats.Requests, v.Stats.Passed, v.Stats.RateLimited, v.Stats.Errors5xx
		if v.Stats.Requests > 0 {
			p.LatencyMS = float64(v.Stats.AnswerTime.Microseconds()) / 1000 / float64(v.Stats.Requests)
			p.Bound, p.BoundHow = Bound(servedLatency(plan.faults[p.Partner], p.LatencyMS), max(p.Concurrency, p.MaxConcurrency))
		}
		p.Customers = delivered[p.Partner]
		for _, row := range rows {
			if c, ok := row.Partners[p.Partner]; ok {
				p.OK += c.OK
				p.NotOK += c.Rejected + c.Failed + c.Uncertain + c.NotSent
				p.Calls += c.Calls
			}
			if why := row.Stopped[p.Partner]; why != "" {
				p.Stopped = why
			}
		}
		p.Client429, p.Retries, p.BreakerTrips = m429[p.Partner], retries[p.Partner], events.trips[p.Partner]
		p.PeakConcurrency = max(p.Concurrency, events.peak[p.Partner])
		w := wins[p.Partner]
		if !w.first.IsZero() {
			p.Start, p.End = w.first.Sub(t0).Seconds(), w.last.Sub(t0).Seconds()
			p.WindowPassed = w.passed
		}
	}
	return res, nil
}

// servedLatency is c with its injected latency replaced by the one the
// sandbox measured answering, when that is longer: the partner's latency
// is its injected wait plus its own work on each request. A partner
// without injected latency keeps none (its measured time is the CPU's).
func servedLatency(c faults.Config, ms float64) faults.Config {
	if d := time.Duration(ms * float64(time.Millisecond)); c.Latency > 0 && d > c.Latency {
		c.Latency = d.Round(10 * time.Microsecond)
	}
	return c
}

// shards runs `etl run --shard i/N` for i in 0..N-1 at once, on the same
// export, ledger and sandbox (with plan's partners, faults and workers),
// and reports the data feed's customers per request.
func (r *runner) shards(ctx context.Context, plan mixedPlan, nShards, n int) error {
	const p = "datafeed"
	sb, err := startSandbox(ctx, r.o.Bin, plan.names[0], plan.sandboxArgs()...)
	if err != nil {
		return err
	}
	defer sb.Stop()
	r.seq++
	cfgPath := filepath.Join(r.work, fmt.Sprintf("etl-%d.yaml", r.seq))
	env, err := writeConfig(cfgPath, sb.URL, plan.rc)
	if err != nil {
		return err
	}
	db, err := r.db.NewDB(ctx)
	if err != nil {
		return err
	}
	var spec []string
	for _, q := range plan.names {
		spec = append(spec, q+"="+plan.faults[q].String())
	}
	sr := ShardResult{Partner: p, Partners: plan.names, Faults: strings.Join(spec, " "), Shards: nShards, Load: loadAvg(), ShardSeconds: make([]float64, nShards)}
	r.logf("%d shards at once, partners %s, %d customers", nShards, strings.Join(plan.names, ","), n)
	group := fmt.Sprintf("bench-shards-%d", time.Now().UnixNano())
	var wg sync.WaitGroup
	errs := make([]error, nShards)
	for i := 0; i < nShards; i++ {
		wg.Go(func() {
			log := fmt.Sprintf("%s.shard%d.log", cfgPath, i)
			u, err := runETL(ctx, r.o.Bin, cfgPath, env, db, log, time.Time{},
				"--providers", strings.Join(plan.names, ","), "--shard", fmt.Sprintf("%d/%d", i, nShards), "--run-group", group)
			if err == nil && u.Exit != 0 && u.Exit != 3 {
				err = fmt.Errorf("shard %d exited %d: %s", i, u.Exit, tail(readTail(log), 600))
			}
			errs[i], sr.ShardSeconds[i] = err, u.Wall
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	sr.Seconds = slices.Max(sr.ShardSeconds)
	rows, err := readRuns(ctx, db)
	if err != nil {
		return err
	}
	for _, row := range rows {
		if c, ok := row.Partners[p]; ok {
			sr.Calls += c.Calls
		}
	}
	delivered, err := deliveredCustomers(ctx, db)
	if err != nil {
		return err
	}
	sr.Customers = delivered[p]
	if v, err := sb.Faults(ctx, p); err == nil {
		sr.Requests = v.Stats.Requests
	}
	sr.CustomersPerRequest = ratio(float64(sr.Customers), float64(sr.Calls))
	r.rep.Shards = append(r.rep.Shards, sr)
	r.logf("%d shards (%s): %s: %d customers in %d calls = %.1f per request", nShards, strings.Join(plan.names, ","), p, sr.Customers, sr.Calls, sr.CustomersPerRequest)
	return nil
}

// shardRuns is the 4-shard data feed run twice: the data feed alone,
// then every partner of the mixed mode with its faults (a migration
// as the issue saw it, where a slower partner's lane fills).
func (r *runner) shardRuns(ctx context.Context, specs []partners.Spec) error {
	df, ok := partners.Get("datafeed")
	if !ok {
		return nil
	}
	dir, err := dataset(r.work, r.o.ShardCustomers)
	if err != nil {
		return err
	}
	for _, set := range [][]partners.Spec{{df}, specs} {
		plan, err := r.mixedPlan(set, dir, r.o.MixedFaults, r.o.MixedConcurrency)
		if err != nil {
			return err
		}
		if !slices.Contains(plan.names, "datafeed") {
			continue
		}
		if err := r.shards(ctx, plan, 4, r.o.ShardCustomers); err != nil {
			return fmt.Errorf("bench: 4-shard run: %w", err)
		}
		if len(specs) == 1 {
			break
		}
	}
	return nil
}

// mixedMemory runs the mixed mode's memory check: every partner of
// MixedRSSPartners in one run at each size, with MixedRSSFaults.
func (r *runner) mixedMemory(ctx context.Context) error {
	sizes := slices.Clone(r.o.MixedRSSSizes)
	slices.Sort(sizes)
	var specs []partners.Spec
	for _, n := range r.o.MixedRSSPartners {
		sp, ok := partners.Get(n)
		if !ok {
			return fmt.Errorf("bench: mixed RSS: unknown partner %q", n)
		}
		specs = append(specs, sp)
	}
	for _, n := range sizes {
		if left := time.Until(r.deadline); !r.deadline.IsZero() && left < 30*time.Second {
			r.note("the mixed %s-customer memory run was skipped: %s of the time budget left", count(n), left.Round(time.Second))
			continue
		}
		dir, err := dataset(r.work, n)
		if err != nil {
			return err
		}
		plan, err := r.mixedPlan(specs, dir, r.o.MixedRSSFaults, r.o.MixedConcurrency)
		if err != nil {
			return err
		}
		sb, err := startSandbox(ctx, r.o.Bin, plan.names[0], plan.sandboxArgs()...)
		if err != nil {
			return err
		}
		r.seq++
		cfgPath := filepath.Join(r.work, fmt.Sprintf("etl-%d.yaml", r.seq))
		env, err := writeConfig(cfgPath, sb.URL, plan.rc)
		if err != nil {
			sb.Stop()
			return err
		}
		db, err := r.db.NewDB(ctx)
		if err != nil {
			sb.Stop()
			return err
		}
		r.logf("mixed memory: etl run --providers %s, %d customers", strings.Join(plan.names, ","), n)
		u, err := runETL(ctx, r.o.Bin, cfgPath, env, db, cfgPath+".log", r.deadline, "--providers", strings.Join(plan.names, ","))
		sb.Stop()
		if err != nil {
			return err
		}
		var spec []string
		for _, p := range plan.names {
			spec = append(spec, p+"="+plan.faults[p].String())
		}
		mr := MixedMemRun{Partners: plan.names, Faults: strings.Join(spec, " "), Customers: n, Seconds: u.Wall, MaxRSSMiB: float64(u.MaxRSSKiB) / 1024, Cut: u.cut}
		if !u.cut && u.Exit != 0 {
			return fmt.Errorf("bench: mixed memory run at %d exited %d: %s", n, u.Exit, tail(readTail(cfgPath+".log"), 600))
		}
		if d, err := deliveredCustomers(ctx, db); err == nil {
			mr.Delivered = n
			for _, p := range plan.names {
				mr.Delivered = min(mr.Delivered, d[p])
			}
		}
		r.rep.MixedMemory = append(r.rep.MixedMemory, mr)
		if u.cut {
			r.note("the mixed %s-customer memory run was stopped at the time budget after %.0fs", count(n), u.Wall)
		}
		r.logf("mixed memory: %d customers: peak RSS %.1f MiB in %.1fs", n, mr.MaxRSSMiB, mr.Seconds)
	}
	return nil
}

type runUsage struct {
	childUsage
	cut bool
}

// runETL runs `bin run` with args through the RSS wrapper, its whole
// stderr (the debug log) written to logPath. At deadline (if not zero)
// the run is sent SIGTERM and cut is set.
func runETL(ctx context.Context, bin, cfgPath string, env []string, dbURL, logPath string, deadline time.Time, args ...string) (runUsage, error) {
	env = append(append(childEnv(), env...), "BENCH_DATABASE_URL="+dbURL)
	f, err := os.Create(logPath)
	if err != nil {
		return runUsage{}, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<16)
	defer bw.Flush()
	runCtx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	argv := append([]string{bin, "run", "--config", cfgPath, "--progress", "none", "-v"}, args...)
	u, err := runChild(runCtx, argv, env, &limitedBuffer{n: 4096, all: bw})
	return runUsage{u, ctx.Err() == nil && runCtx.Err() != nil}, err
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// runRow is what a run recorded in runs.counts.
type runRow struct {
	Partners map[string]struct {
		OK, Rejected, Failed, Uncertain, NotSent, Calls int64
	} `json:"partners"`
	Stopped map[string]string `json:"stopped"`
}

func readRuns(ctx context.Context, dbURL string) ([]runRow, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT coalesce(counts, '{}') FROM runs ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []runRow
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var rr runRow
		if err := json.Unmarshal(b, &rr); err != nil {
			return nil, fmt.Errorf("runs.counts: %w", err)
		}
		out = append(out, rr)
	}
	return out, rows.Err()
}

// deliveredCustomers is, per partner, the distinct customers active in
// sync_state.
func deliveredCustomers(ctx context.Context, dbURL string) (map[string]int, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT provider, count(DISTINCT customer_id) FROM sync_state WHERE active GROUP BY provider`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var p string
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			return nil, err
		}
		out[p] = n
	}
	return out, rows.Err()
}

// logEvents is what the mixed runs read from the run's debug log, per
// partner: breaker transitions to open, and the most requests in flight
// the partner's concurrency grew to (httpx logs both at debug).
type logEvents struct {
	trips map[string]int
	peak  map[string]int
}

func readLog(logPath string) (logEvents, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return logEvents{}, err
	}
	defer f.Close()
	return scanLog(bufio.NewScanner(f)), nil
}

func scanLog(sc *bufio.Scanner) logEvents {
	out := logEvents{trips: map[string]int{}, peak: map[string]int{}}
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case strings.Contains(string(line), "breaker state changed"):
			var e struct{ Msg, Partner, To string }
			if json.Unmarshal(line, &e) == nil && e.Msg == "breaker state changed" && e.To == "open" {
				out.trips[e.Partner]++
			}
		case strings.Contains(string(line), "partner concurrency changed"):
			var e struct {
				Msg, Partner string
				To           int
			}
			if json.Unmarshal(line, &e) == nil && e.Msg == "partner concurrency changed" {
				out.peak[e.Partner] = max(out.peak[e.Partner], e.To)
			}
		}
	}
	return out
}

// readPromCounters reads, per partner, the run's etl_http_requests_total
// with code 429 and etl_retries_total from its metrics textfile.
func readPromCounters(path string) (answered429, retries map[string]int64) {
	answered429, retries = map[string]int64{}, map[string]int64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, "{")
		if !ok {
			continue
		}
		labels, val, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			continue
		}
		l := promLabels(labels)
		switch {
		case name == "etl_http_requests_total" && l["code"] == "429":
			answered429[l["partner"]] += int64(v)
		case name == "etl_retries_total":
			retries[l["partner"]] += int64(v)
		}
	}
	return
}

func promLabels(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return out
}

type window struct {
	first, last time.Time
	passed      int64 // passed between first and last
}

// watchAll samples each partner's sandbox counters every 50 ms until the
// returned function is called; it returns when sampling started and each
// partner's window (first to last time its request count moved).
func watchAll(ctx context.Context, sb *sandboxProc, names []string) func() (time.Time, map[string]window) {
	stop, done := make(chan struct{}), make(chan struct{})
	t0 := time.Now()
	wins := map[string]window{}
	first := map[string]int64{}
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
			for _, p := range names {
				v, err := sb.Faults(ctx, p)
				if err != nil {
					continue
				}
				now, w := time.Now(), wins[p]
				switch {
				case v.Stats.Requests > 0 && w.first.IsZero():
					// The first sample that sees requests: those before it
					// fell in the last 50 ms, counted from here on.
					w.first, w.last = now, now
					first[p] = v.Stats.Passed
				case !w.first.IsZero() && v.Stats.Passed-first[p] != w.passed:
					w.last, w.passed = now, v.Stats.Passed-first[p]
				}
				wins[p] = w
			}
		}
	}()
	return func() (time.Time, map[string]window) {
		close(stop)
		<-done
		return t0, wins
	}
}

// loadAvg is uptime's line: the machine is shared, so figures carry it.
func loadAvg() string {
	out, err := exec.Command("uptime").Output()
	if err != nil {
		b, _ := os.ReadFile("/proc/loadavg")
		return strings.TrimSpace(string(b))
	}
	return strings.TrimSpace(string(out))
}
