package e2e

// The seeded fault-schedule suite (docs/testing.md): each seed draws a
// schedule of crashes, partner faults, lock loss, overlapping runs and
// source changes, plays it against the real etl binary, a fresh ledger
// database and all five sandboxes, reruns until a run exits 0, and checks
// the invariants against a reference: the final source delivered once,
// with no fault, to fresh sandboxes.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/crashpoint"
	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/providers/clubready"
	"github.com/northwind-data/etl/internal/providers/datafeed"
	"github.com/northwind-data/etl/internal/providers/q2open"
	"github.com/northwind-data/etl/internal/providers/synctera"
	"github.com/northwind-data/etl/internal/providers/tokenization"
	"github.com/northwind-data/etl/internal/sandbox"
	"github.com/northwind-data/etl/internal/sandbox/faults"
)

// Environment knobs (see docs/testing.md).
const (
	envSeed      = "ETL_CHAOS_SEED"      // replay one seed (ignores the skip list)
	envSchedules = "ETL_CHAOS_SCHEDULES" // how many schedules (default ciSchedules)
	envBase      = "ETL_CHAOS_BASE_SEED" // first seed tried (default 1)
	envSkip      = "ETL_CHAOS_SKIP"      // kinds whose schedules are not run (default ciSkip; "none": run every kind)
	envRepeat    = "ETL_CHAOS_REPEAT"    // with ETL_CHAOS_SEED: play each seed this many times
	envList      = "ETL_CHAOS_LIST"      // print the schedules that would be played, play none
	ciSchedules  = 24
)

// ciSkip lists the step kinds today's code is known to fail (see
// docs/testing.md): seeds whose schedule holds one are passed over unless
// ETL_CHAOS_SKIP says otherwise. Empty it once the fixes are merged.
const ciSkip = ""

// Step kinds. A crash's kind is "crash:" + its point; a fault's that hits
// one partner is kind + ":" + partner, so that one partner's kind can be
// skipped alone.
const (
	kRun       = "run"       // a run with no fault
	kCrash     = "crash"     // a run killed at a crash point
	kDrop      = "drop"      // answers lost after the partner committed
	kCommit5xx = "commit5xx" // the partner commits, then answers 5xx
	kStorm     = "storm429"  // a tight rate limit: 429 with Retry-After
	kLockLoss  = "lockloss"  // the run's lock session terminated, a second run started
	kOverlapP  = "overlap-partners"
	kOverlapS  = "overlap-shards"
	kEdit      = "edit"   // customers' e-mail and postal code changed
	kDelete    = "delete" // customers removed from the export
	kExpire    = "expire" // a sandbox clock advanced 25 h (keys and tokens expire)
)

type step struct {
	Kind     string
	Point    string   // crash
	N        int64    // crash: the n-th hit
	Partners []string // faulted partners; overlap: the first run's partners
	Other    []string // overlap-partners: the second run's partners
	Shards   [2]string
	Rate     float64
	IDs      []string // edit, delete
}

// label is what the skip list matches.
func (s step) label() string {
	switch s.Kind {
	case kCrash:
		return kCrash + ":" + s.Point
	case kDrop, kCommit5xx, kExpire:
		return s.Kind + ":" + s.Partners[0]
	}
	return s.Kind
}

func (s step) String() string {
	switch s.Kind {
	case kCrash:
		return fmt.Sprintf("crash ETL_CRASH_AT=%s:%d", s.Point, s.N)
	case kDrop, kCommit5xx:
		return fmt.Sprintf("%s %s rate=%.2f", s.Kind, s.Partners[0], s.Rate)
	case kStorm:
		return fmt.Sprintf("%s %s rate=%g/s for %v", s.Kind, strings.Join(s.Partners, ","), s.Rate, stormLength)
	case kOverlapP:
		return fmt.Sprintf("%s --providers %s || --providers %s", s.Kind, strings.Join(s.Partners, ","), strings.Join(s.Other, ","))
	case kOverlapS:
		return fmt.Sprintf("%s --shard %s || --shard %s", s.Kind, s.Shards[0], s.Shards[1])
	case kEdit, kDelete:
		return fmt.Sprintf("%s %s", s.Kind, strings.Join(s.IDs, ","))
	case kExpire:
		return fmt.Sprintf("%s %s +25h", s.Kind, s.Partners[0])
	}
	return s.Kind
}

type schedule struct {
	Seed      uint64
	Customers int
	Steps     []step
}

func (s schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %d customers\n", s.Seed, s.Customers)
	for i, st := range s.Steps {
		fmt.Fprintf(&b, "  %d. %s\n", i+1, st)
	}
	fmt.Fprintf(&b, "  then: reruns with no fault until exit 0 (at most %d)\n", maxReruns)
	return b.String()
}

// labels are the skip labels of every step, plus "after-fault:" + the
// label of an edit, a deletion or a clock jump whose latest run before it
// was not a clean one: the change meets whatever that run left open (an
// uncertain create, a partner record the ledger never heard of).
func (s schedule) labels() []string {
	var out []string
	faulted := false
	for _, st := range s.Steps {
		out = append(out, st.label())
		switch st.Kind {
		case kEdit, kDelete:
			if faulted {
				out = append(out, "after-fault:"+st.Kind)
			}
		case kExpire:
			if faulted {
				out = append(out, "after-fault:"+st.label())
			}
		case kRun:
			faulted = false
		default:
			faulted = true
		}
	}
	return out
}

const maxReruns = 6

// stormLength is how long a 429 storm lasts.
const stormLength = 2 * time.Second

// crashRange is how far into a run each point's count is drawn: about
// as many hits as a run of a few dozen customers makes.
var crashRange = map[string]int{
	crashpoint.AfterIntent:       60,
	crashpoint.AfterSend:         80,
	crashpoint.AfterLedgerCommit: 8,
	crashpoint.BeforeFingerprint: 40,
	crashpoint.MidPlan:           200,
}

// clocked are the sandboxes where time makes something of ours expire:
// Synctera forgets idempotency keys (after KeyTTL), ClubReady's
// ProfileTokens die after five minutes. Q2's and the tokenization
// sandbox's clocks date records and check expirations our client sets
// from its own clock, so advancing them is clock skew, not expiry. The
// data feed has no clock yet: its session tokens are the hook to add.
var clocked = []string{clubready.Name, synctera.Name}

// draw makes seed's schedule. It depends on the seed alone (and on the
// lists of partners and crash points), never on the skip list, so a seed
// names the same schedule everywhere.
func draw(seed uint64) schedule {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed5eed))
	s := schedule{Seed: seed, Customers: 20 + rng.IntN(21)}
	names := partners.Names()
	ids := make([]string, s.Customers)
	for i := range ids {
		ids[i] = fmt.Sprintf("C%07d", i+1)
	}
	gone := map[string]bool{}
	pick := func(n int) []string {
		var live []string
		for _, id := range ids {
			if !gone[id] {
				live = append(live, id)
			}
		}
		rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
		out := live[:min(n, len(live))]
		slices.Sort(out)
		return slices.Clone(out)
	}
	subset := func(min int) []string {
		for {
			var out []string
			for _, n := range names {
				if rng.IntN(2) == 0 {
					out = append(out, n)
				}
			}
			if len(out) >= min {
				return out
			}
		}
	}
	if rng.IntN(2) == 0 {
		s.Steps = append(s.Steps, step{Kind: kRun})
	}
	points := crashpoint.Points()
	deleted := 0
	for range 2 + rng.IntN(4) {
		var st step
		switch r := rng.IntN(100); {
		case r < 30:
			p := points[rng.IntN(len(points))]
			st = step{Kind: kCrash, Point: p, N: 1 + int64(rng.IntN(crashRange[p]))}
		case r < 40:
			st = step{Kind: kDrop, Partners: []string{names[rng.IntN(len(names))]}, Rate: 0.1 + 0.3*rng.Float64()}
		case r < 50:
			st = step{Kind: kCommit5xx, Partners: []string{names[rng.IntN(len(names))]}, Rate: 0.1 + 0.3*rng.Float64()}
		case r < 56:
			st = step{Kind: kStorm, Partners: subset(1), Rate: float64(20 + rng.IntN(61))}
		case r < 62:
			st = step{Kind: kLockLoss}
		case r < 68:
			a := subset(2)
			b := subset(2)
			if !overlaps(a, b) {
				b = append(b, a[0])
				slices.Sort(b)
				b = slices.Compact(b)
			}
			st = step{Kind: kOverlapP, Partners: a, Other: b}
		case r < 73:
			n, m := 2+rng.IntN(2), 2+rng.IntN(3)
			if n == m {
				m++
			}
			st = step{Kind: kOverlapS, Shards: [2]string{fmt.Sprintf("%d/%d", rng.IntN(n), n), fmt.Sprintf("%d/%d", rng.IntN(m), m)}}
		case r < 85:
			st = step{Kind: kEdit, IDs: pick(1 + rng.IntN(3))}
		case r < 93:
			if deleted >= 8 {
				st = step{Kind: kRun}
				break
			}
			st = step{Kind: kDelete, IDs: pick(1 + rng.IntN(2))}
			deleted += len(st.IDs)
			for _, id := range st.IDs {
				gone[id] = true
			}
		default:
			st = step{Kind: kExpire, Partners: []string{clocked[rng.IntN(len(clocked))]}}
		}
		s.Steps = append(s.Steps, st)
	}
	return s
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// skipped reports the first of labels the skip list names: an entry is a
// label (a step kind, or "seed=N" for one schedule) or a prefix ending in
// "*".
func skipped(labels []string, skip string) string {
	for _, e := range splitList(skip) {
		for _, l := range labels {
			if l == e || (strings.HasSuffix(e, "*") && strings.HasPrefix(l, strings.TrimSuffix(e, "*"))) {
				return l
			}
		}
	}
	return ""
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// commit5xx lets the partner commit, then answers 5xx: what a gateway
// timing out behind a partner that finished looks like. It sits inside
// the fault injector, so both can be on.
type commit5xx struct {
	h     http.Handler
	mu    sync.Mutex
	rate  float64
	rng   *rand.Rand
	fired atomic.Int64
}

func (c *commit5xx) set(rate float64) {
	c.mu.Lock()
	c.rate = rate
	c.mu.Unlock()
}

func (c *commit5xx) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.URL.Path, "/_sandbox/") {
		c.h.ServeHTTP(w, r)
		return
	}
	c.mu.Lock()
	fire := c.rate > 0 && c.rng.Float64() < c.rate
	code := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[c.rng.IntN(3)]
	c.mu.Unlock()
	if !fire {
		c.h.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, r)
	if rec.Code < 200 || rec.Code > 299 {
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	c.fired.Add(1)
	sandbox.WriteJSON(w, code, map[string]any{"error": "server_error", "message": "committed, then failed (injected)", "status": code})
}

// chaosSandboxes are the five sandboxes with a clock of their own each
// (where the sandbox has one) and a commit-then-5xx wrapper inside each
// fault injector.
type chaosSandboxes struct {
	*partners.Sandboxes
	clocks map[string]*sandbox.FakeClock
	c5xx   map[string]*commit5xx
}

func newChaosSandboxes(seed uint64) *chaosSandboxes {
	cs := &chaosSandboxes{Sandboxes: &partners.Sandboxes{Faults: map[string]*faults.Injector{}, Partners: map[string]http.Handler{}},
		clocks: map[string]*sandbox.FakeClock{}, c5xx: map[string]*commit5xx{}}
	mux := http.NewServeMux()
	now := time.Now()
	for i, sp := range partners.All() {
		c := sandbox.NewFakeClock(now)
		cred := sp.DemoCredentials
		var h http.Handler
		switch sp.Name {
		case synctera.Name:
			// Stripe's 24 hours, since Synctera publishes no retention.
			h = synctera.NewSandbox(synctera.SandboxOptions{Token: cred["token"], Clock: c, KeyTTL: 24 * time.Hour})
		case q2open.Name:
			h = q2open.NewSandbox(q2open.SandboxOptions{Token: cred["token"], Clock: c})
		case tokenization.Name:
			h = tokenization.NewSandbox(tokenization.SandboxOptions{Username: cred["username"], Password: cred["password"],
				HMACSecret: cred["secret"], HMACSecretBase64: true, Clock: c})
		case clubready.Name:
			h = clubready.NewSandbox(clubready.SandboxOptions{ApiKey: cred["api_key"], VaultKey: cred["vault_key"], Clock: c})
		case datafeed.Name:
			// No clock: the hook for its session tokens' expiry.
			h, c = datafeed.NewSandbox(datafeed.SandboxOptions{Token: cred["token"]}), nil
		default:
			h, c = sp.Sandbox(cred), nil
		}
		if c != nil {
			cs.clocks[sp.Name] = c
		}
		c5 := &commit5xx{h: h, rng: rand.New(rand.NewPCG(seed, uint64(i)))}
		inj := faults.New(faults.Config{Seed: seed + uint64(i)})
		cs.Faults[sp.Name], cs.Partners[sp.Name], cs.c5xx[sp.Name] = inj, h, c5
		mux.Handle("/"+sp.Name+"/_sandbox/faults", inj.ControlHandler())
		mux.Handle("/"+sp.Name+"/", http.StripPrefix("/"+sp.Name, inj.Wrap(c5)))
	}
	cs.Handler = mux
	return cs
}

// clear switches every fault off.
func (cs *chaosSandboxes) clear(seed uint64) {
	for i, n := range partners.Names() {
		cs.Faults[n].Set(faults.Config{Seed: seed + uint64(i)})
		cs.c5xx[n].set(0)
	}
}

// proc is one etl process of a schedule.
type proc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	args []string
	done chan struct{}
	code int
	sig  string
	took time.Duration
}

// startProc starts etl with extra environment; it is killed if it runs
// for more than two minutes (a hang is a finding, not a stuck suite).
func (e *env) startProc(extraEnv []string, args ...string) *proc {
	e.t.Helper()
	p := &proc{out: &lockedBuffer{}, args: args, done: make(chan struct{})}
	p.cmd = exec.Command(etlBin, append([]string{"run", "--config", e.cfgPath, "--progress", "none"}, args...)...)
	p.cmd.Env = append(slices.Clone(e.envv), extraEnv...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	start := time.Now()
	go func() {
		defer close(p.done)
		defer func() { p.took = time.Since(start) }()
		t := time.AfterFunc(2*time.Minute, func() { _ = p.cmd.Process.Kill(); p.sig = "hung: killed after 2m" })
		err := p.cmd.Wait()
		t.Stop()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && p.sig == "" {
				p.sig = ws.Signal().String()
			}
		}
	}()
	return p
}

func (p *proc) wait() *proc { <-p.done; return p }

func (p *proc) summary() string {
	s := fmt.Sprintf("exit %d", p.code)
	if p.sig != "" {
		s = p.sig
	}
	if strings.Contains(p.out.String(), "crashpoint: killed at") {
		s = "crashed at its point"
	}
	return fmt.Sprintf("etl run %s: %s (%v)", strings.Join(p.args, " "), s, p.took.Round(time.Millisecond))
}

// player plays one schedule.
type player struct {
	t   *testing.T
	s   schedule
	e   *env
	sb  *chaosSandboxes
	log []string
}

func (pl *player) note(format string, a ...any) { pl.log = append(pl.log, fmt.Sprintf(format, a...)) }

func (pl *player) run(extraEnv []string, args ...string) *proc {
	p := pl.e.startProc(extraEnv, args...).wait()
	pl.note("%s", p.summary())
	return p
}

func (pl *player) play(st step) {
	e, sb := pl.e, pl.sb
	defer sb.clear(pl.s.Seed)
	switch st.Kind {
	case kRun:
		pl.run(nil)
	case kCrash:
		pl.run([]string{crashpoint.EnvVar + "=" + st.Point + ":" + strconv.FormatInt(st.N, 10)})
	case kDrop:
		sb.Faults[st.Partners[0]].Set(faults.Config{Seed: pl.s.Seed, DropRate: st.Rate})
		pl.run(nil)
		pl.note("  %s answers lost after commit: %d", st.Partners[0], sb.Faults[st.Partners[0]].Stats().Dropped)
	case kCommit5xx:
		sb.c5xx[st.Partners[0]].set(st.Rate)
		pl.run(nil)
		pl.note("  %s 5xx after commit: %d", st.Partners[0], sb.c5xx[st.Partners[0]].fired.Load())
	case kStorm:
		for _, n := range st.Partners {
			sb.Faults[n].Set(faults.Config{Seed: pl.s.Seed, RateLimit: st.Rate})
		}
		// A storm passes: the run is not to give up on every record.
		calm := time.AfterFunc(stormLength, func() { sb.clear(pl.s.Seed) })
		pl.run(nil)
		calm.Stop()
		for _, n := range st.Partners {
			pl.note("  %s answered 429 %d times", n, sb.Faults[n].Stats().RateLimited)
		}
	case kLockLoss:
		pl.lockLoss()
	case kOverlapP:
		slow(sb, pl.s.Seed)
		a := e.startProc(nil, "--providers", strings.Join(st.Partners, ","))
		b := e.startProc(nil, "--providers", strings.Join(st.Other, ","))
		pl.note("%s", a.wait().summary())
		pl.note("%s", b.wait().summary())
	case kOverlapS:
		slow(sb, pl.s.Seed)
		a := e.startProc(nil, "--shard", st.Shards[0])
		b := e.startProc(nil, "--shard", st.Shards[1])
		pl.note("%s", a.wait().summary())
		pl.note("%s", b.wait().summary())
	case kEdit:
		for i, id := range st.IDs {
			if !hasCustomer(pl.t, e.input, id) {
				continue
			}
			editCSV(pl.t, filepath.Join(e.input, "customers.csv"), id, "email", fmt.Sprintf("chaos%d.%d.%s@example.com", pl.s.Seed, len(pl.log), strings.ToLower(id)))
			editCSV(pl.t, filepath.Join(e.input, "customers.csv"), id, "postal_code", fmt.Sprintf("%05d", (pl.s.Seed*7+uint64(i)*131+uint64(len(pl.log)))%90000+10000))
		}
	case kDelete:
		for _, id := range st.IDs {
			removeRows(pl.t, e.input, id)
		}
	case kExpire:
		sb.clocks[st.Partners[0]].Advance(25 * time.Hour)
	}
}

// slow adds latency so that two runs started together overlap.
func slow(sb *chaosSandboxes, seed uint64) {
	for i, n := range partners.Names() {
		sb.Faults[n].Set(faults.Config{Seed: seed + uint64(i), Latency: 5 * time.Millisecond, Jitter: 10 * time.Millisecond})
	}
}

// lockLoss starts a slow run, terminates the database sessions holding
// its advisory locks once it is under way, and starts a second run for
// the same source, partners and shard while the first goes on.
func (pl *player) lockLoss() {
	e := pl.e
	slow(pl.sb, pl.s.Seed)
	a := e.startProc(nil)
	deadline := time.Now().Add(30 * time.Second)
	terminated := int64(0)
	for time.Now().Before(deadline) {
		select {
		case <-a.done:
			deadline = time.Time{}
			continue
		default:
		}
		if e.scalar(`SELECT count(*) FROM runs WHERE status = 'running'`) > 0 {
			terminated = e.scalar(`SELECT count(*) FROM (SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
				WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database() AND l.pid <> pg_backend_pid()) x`)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b := e.startProc(nil)
	pl.note("%s", a.wait().summary())
	pl.note("%s", b.wait().summary())
	pl.note("  lock sessions terminated: %d", terminated)
}

func hasCustomer(t *testing.T, dir, id string) bool {
	rows := readCSV(t, filepath.Join(dir, "customers.csv"))
	k := col(t, rows[0], "customer_id")
	for _, r := range rows[1:] {
		if r[k] == id {
			return true
		}
	}
	return false
}

// TestChaosSchedules plays seeded fault schedules; see docs/testing.md.
func TestChaosSchedules(t *testing.T) {
	var seeds []uint64
	skip := ciSkip
	if v, ok := os.LookupEnv(envSkip); ok {
		skip = v
	}
	if skip == "none" {
		skip = ""
	}
	if v := os.Getenv(envSeed); v != "" {
		for _, f := range splitList(v) {
			s, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				t.Fatalf("%s=%q: want seeds (comma-separated)", envSeed, v)
			}
			seeds = append(seeds, s)
		}
		skip = "" // a replay runs the schedule it names
		if v := os.Getenv(envRepeat); v != "" {
			// Timing is not replayed, only the schedule: an interleaving
			// failure may need a few tries.
			one := seeds
			for range atoiT(t, envRepeat, v) - 1 {
				seeds = append(seeds, one...)
			}
		}
	} else {
		n, base := ciSchedules, uint64(1)
		if v := os.Getenv(envSchedules); v != "" {
			n = atoiT(t, envSchedules, v)
		}
		if v := os.Getenv(envBase); v != "" {
			base = uint64(atoiT(t, envBase, v))
		}
		passed := map[string]int{}
		for s := base; len(seeds) < n; s++ {
			if l := skipped(append(draw(s).labels(), fmt.Sprintf("seed=%d", s)), skip); l != "" {
				passed[l]++
				continue
			}
			seeds = append(seeds, s)
		}
		if len(passed) > 0 {
			t.Logf("seeds passed over for skipped kinds (%s=%q): %v", envSkip, skip, passed)
		}
	}
	if os.Getenv(envList) != "" {
		for _, seed := range seeds {
			t.Logf("%s", draw(seed))
		}
		return
	}
	start := time.Now()
	var failed []uint64
	kinds := map[string]int{}
	for _, seed := range seeds {
		s := draw(seed)
		for _, l := range s.labels() {
			kinds[l]++
		}
		ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { playSchedule(t, s) })
		if !ok && !slices.Contains(failed, seed) {
			failed = append(failed, seed)
		}
	}
	el := time.Since(start)
	t.Logf("%d schedules in %v (%.2f schedules/s); exit-5 runs an operator settled: %d; step kinds played: %v", len(seeds), el.Round(time.Millisecond),
		float64(len(seeds))/el.Seconds(), operatorRuns.Load(), kinds)
	if len(failed) > 0 {
		t.Errorf("failing seeds: %v\nreplay: %s=%s go test -count=1 -run 'TestChaosSchedules' -v ./internal/e2e/",
			failed, envSeed, joinSeeds(failed))
	}
}

func joinSeeds(s []uint64) string {
	var out []string
	for _, v := range s {
		out = append(out, strconv.FormatUint(v, 10))
	}
	return strings.Join(out, ",")
}

func atoiT(t *testing.T, name, v string) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a count", name, v)
	}
	return n
}

func playSchedule(t *testing.T, s schedule) {
	sb := newChaosSandboxes(s.Seed)
	e := newEnvWith(t, s.Customers, s.Seed, sb.Sandboxes)
	pl := &player{t: t, s: s, e: e, sb: sb}
	for i, st := range s.Steps {
		pl.note("step %d: %s", i+1, st)
		pl.play(st)
	}
	var last *proc
	converged := false
	for i := 0; i < maxReruns; i++ {
		last = pl.run(nil)
		if last.code == 0 && last.sig == "" {
			converged = true
			break
		}
		if last.code == exitNeedsOperator && last.sig == "" {
			// What no rerun can settle, an operator does, as at a bank.
			if pl.operate() > 0 {
				operatorRuns.Add(1)
			}
		}
	}
	var v []string
	if !converged {
		v = append(v, fmt.Sprintf("no-convergence: %d reruns with no fault and the last still ended %s\n%s", maxReruns, last.summary(), tail(last.out.String(), 1500)))
	}
	v = append(v, pl.invariants()...)
	t.Logf("schedule %s\nplayed:\n  %s", s, strings.Join(pl.log, "\n  "))
	if len(v) > 0 {
		t.Errorf("schedule %s\nplayed:\n  %s\nviolations:\n- %s\nreplay: %s=%d go test -count=1 -run 'TestChaosSchedules' -v ./internal/e2e/",
			s, strings.Join(pl.log, "\n  "), strings.Join(v, "\n- "), envSeed, s.Seed)
	}
}

// exitNeedsOperator is etl run's exit code when records need an operator.
const exitNeedsOperator = 5

// operatorRuns counts the exit-5 runs after which the operator settled
// something, over every schedule of the test binary.
var operatorRuns atomic.Int64

// operate plays the bank's operator after a run that exited 5: it lists
// the open intents, looks each entity up in the sandbox as the operator
// would at the partner's console, and settles it as delivered (with the
// id found) or resend. It returns how many it settled; each is in the log.
func (pl *player) operate() int {
	r := pl.e.run("intents", "list", "--json")
	var open []struct {
		Provider   string `json:"provider"`
		EntityKey  string `json:"entity_key"`
		CustomerID string `json:"customer_id"`
		State      string `json:"state"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &open); err != nil {
		pl.note("  operator: etl intents list --json: exit %d, unreadable: %v", r.code, err)
		return 0
	}
	n := 0
	for _, o := range open {
		if o.State == "retrying" {
			continue // the next run retries it on its own
		}
		args := []string{"intents", "settle", "--provider", o.Provider, "--entity", o.EntityKey, "--by", "chaos"}
		id, found := pl.lookup(o.Provider, o.EntityKey, o.CustomerID)
		as := "resend"
		if found {
			as = "delivered"
			args = append(args, "--as", as, "--remote-id", id, "--reason", "found at the sandbox as "+id)
		} else {
			args = append(args, "--as", as, "--reason", "not at the sandbox")
		}
		res := pl.e.run(args...)
		pl.note("  operator acted: %s %s (customer %s) settled as %s: exit %d", o.Provider, o.EntityKey, o.CustomerID, as, res.code)
		if res.code == 0 {
			n++
		}
	}
	return n
}

// lookup finds an entity in a sandbox by what the partner's console would
// show an operator: Synctera's metadata.etl_entity_key, ClubReady's
// external ref, Q2's client identifier, the tokenization client's name.
func (pl *player) lookup(provider, key, customerID string) (string, bool) {
	switch sb := pl.sb.Partners[provider].(type) {
	case *synctera.Sandbox:
		for _, c := range sb.State().Customers {
			if c.EntityKey == key {
				return c.ID, true
			}
		}
	case *clubready.Sandbox:
		for _, p := range sb.State().Profiles {
			if p.ExternalRef == key {
				return strconv.Itoa(p.ID), true
			}
		}
	case *q2open.Sandbox:
		for _, c := range sb.State().Clients {
			if c.Identifier == customerID && key == "customer/"+customerID {
				return c.ClientID, true
			}
		}
	case *tokenization.Sandbox:
		for _, c := range sb.State().Clients {
			if c.Name == tokenization.DefaultNamePrefix+customerID {
				return strconv.Itoa(c.ID), true
			}
		}
	}
	return "", false
}

// invariants compares every sandbox with the reference (the final source
// delivered once to fresh sandboxes), runs etl verify where the partner
// lists, and looks for open intents nobody is shown.
func (pl *player) invariants() []string {
	t, e := pl.t, pl.e
	var v []string
	ref := reference(t, e.input, pl.s.Seed, pl.s.Customers)
	deleted := map[string]bool{}
	for _, st := range pl.s.Steps {
		if st.Kind == kDelete {
			for _, id := range st.IDs {
				deleted[id] = true
			}
		}
	}
	for _, sp := range partners.All() {
		got, gotDups := project(sp.Name, pl.sb.Partners[sp.Name])
		want, _ := project(sp.Name, ref.Partners[sp.Name])
		if gotDups != 0 {
			v = append(v, fmt.Sprintf("duplicates %s: the sandbox counts %d", sp.Name, gotDups))
		}
		var missing, extra []string
		for k, n := range want {
			if got[k] < n {
				missing = append(missing, k)
			}
		}
		for k, n := range got {
			if n > want[k] {
				if n > 1 || !deletedRecord(k, deleted) {
					extra = append(extra, fmt.Sprintf("%s (x%d)", k, n))
				}
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		if len(missing) > 0 {
			v = append(v, fmt.Sprintf("missing %s: %d records the final source holds are not there as the reference has them: %s", sp.Name, len(missing), clip(missing)))
		}
		if len(extra) > 0 {
			v = append(v, fmt.Sprintf("extra %s: %d records beyond the reference (twice, stale content, or a deleted customer left active): %s", sp.Name, len(extra), clip(extra)))
		}
		if sp.List != nil {
			r := e.run("verify", "--config", e.cfgPath, "--provider", sp.Name, "--out", filepath.Join(t.TempDir(), "verify-"+sp.Name+".csv"))
			if r.code != 0 {
				v = append(v, fmt.Sprintf("verify %s: exit %d: %s", sp.Name, r.code, strings.TrimSpace(tail(r.stdout+r.stderr, 600))))
			}
		}
	}
	if n := e.scalar(`SELECT count(*) FROM ledger i WHERE i.operation = 'intent' AND i.outcome = 'pending'
		AND NOT EXISTS (SELECT 1 FROM ledger u WHERE u.provider = i.provider AND u.entity_key = i.entity_key AND u.id > i.id
			AND u.outcome = 'uncertain' AND u.error_message IS NOT NULL)`); n != 0 {
		v = append(v, fmt.Sprintf("open-intent: %d intents left pending with no uncertain outcome to show an operator", n))
	}
	return v
}

func deletedRecord(k string, deleted map[string]bool) bool {
	for id := range deleted {
		// Cards are K<customer digits>-<n>.
		if strings.Contains(k, id) || strings.Contains(k, "K"+id[1:]+"-") {
			return true
		}
	}
	return false
}

func clip(s []string) string {
	if len(s) > 8 {
		return strings.Join(s[:8], "; ") + fmt.Sprintf("; ... (%d more)", len(s)-8)
	}
	return strings.Join(s, "; ")
}

// reference delivers the final source once, with no fault, to fresh
// sandboxes and a fresh ledger: what every partner must end up holding.
func reference(t *testing.T, input string, seed uint64, n int) *partners.Sandboxes {
	t.Helper()
	sb := partners.NewSandboxes(nil)
	ref := newEnvWith(t, 0, seed, sb)
	for _, f := range []string{"customers.csv", "cards.csv"} {
		b, err := os.ReadFile(filepath.Join(input, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ref.input, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r := ref.runETL(); r.code != 0 {
		t.Fatalf("the reference run of the final source failed: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 2000))
	}
	return sb
}

// project reads a sandbox as a multiset of records, each named by our
// key for it and the content the schedule can change, and the sandbox's
// own duplicate count. Records switched off are left out: deleted
// customers must be off, and the reference has none.
func project(name string, h http.Handler) (map[string]int, int) {
	out := map[string]int{}
	switch sb := h.(type) {
	case *datafeed.Sandbox:
		for k, c := range sb.State().Customers {
			out[fmt.Sprintf("%s org=%s accounts=%d cards=%d", k, c.OrganizationID, c.Accounts, c.Cards)]++
		}
		return out, 0
	case *q2open.Sandbox:
		st := sb.State()
		// Q2 has no call that updates a client's meta, and a card added
		// with POST /v1/payment carries no brand or type: the client's
		// identifier and its cards' identifiers and last four are what a
		// delivery can and must get right (docs/partners/q2open.md).
		for _, c := range st.Clients {
			var cards []string
			for _, k := range c.Cards {
				cards = append(cards, fmt.Sprintf("%s/%s", k.Identifier, k.Last4))
			}
			sort.Strings(cards)
			out[fmt.Sprintf("%s cards=[%s]", c.Identifier, strings.Join(cards, " "))]++
		}
		return out, st.Totals.DuplicateClients + max(st.Totals.DuplicatePaymentMethods, st.Totals.DuplicateAdds)
	case *tokenization.Sandbox:
		st := sb.State()
		for _, c := range st.Clients {
			if c.IsActive {
				out[c.Name]++
			}
		}
		return out, st.Totals.Duplicates
	case *clubready.Sandbox:
		st := sb.State()
		for _, p := range st.Profiles {
			out[fmt.Sprintf("%s last4=%s preferred=%v", p.ExternalRef, p.Last4, p.Preferred)]++
		}
		return out, st.Duplicates
	case *synctera.Sandbox:
		st := sb.State()
		for _, c := range st.Customers {
			if c.Status != "INACTIVE" {
				out[fmt.Sprintf("%s %s %s %s", c.FirstName, c.LastName, c.Email, c.Status)]++
			}
		}
		return out, st.Totals.Duplicates
	}
	panic("project: no projection for partner " + name)
}

// An unknown crash point is refused before anything runs.
func TestChaosUnknownCrashPointIsAStartupError(t *testing.T) {
	e := newEnv(t, 5, nil)
	c := e.cmd("run", "--config", e.cfgPath, "--progress", "none")
	c.Env = append(slices.Clone(e.envv), crashpoint.EnvVar+"=after-sendd:3")
	var out bytes.Buffer
	var errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(errb.String(), "unknown crash point") {
		t.Fatalf("etl run with an unknown crash point: %v\n%q %q %v", err, out.String(), errb.String(), c.Args)
	}
	if n := e.scalar(`SELECT count(*) FROM runs`); n != 0 {
		t.Fatalf("%d runs recorded", n)
	}
}

// Every crash point is reached by a run of a few customers, kills it as
// kill -9 would, and the rerun still delivers everything once.
func TestChaosEveryCrashPointFires(t *testing.T) {
	for _, p := range crashpoint.Points() {
		t.Run(p, func(t *testing.T) {
			e := newEnv(t, 20, nil)
			c := e.startProc([]string{crashpoint.EnvVar + "=" + p + ":1"}).wait()
			if c.sig != syscall.SIGKILL.String() || !strings.Contains(c.out.String(), "crashpoint: killed at "+p+":1") {
				t.Fatalf("%s: %s\n%s", p, c.summary(), tail(c.out.String(), 1500))
			}
			e.rerunUntilDone(3)
			e.settled()
		})
	}
}

// The invariants see a record missing at a partner: the suite can fail.
func TestChaosInvariantsCatchARecordGoneAtThePartner(t *testing.T) {
	s := schedule{Seed: 9, Customers: 12, Steps: []step{{Kind: kRun}}}
	sb := newChaosSandboxes(s.Seed)
	pl := &player{t: t, s: s, e: newEnvWith(t, s.Customers, s.Seed, sb.Sandboxes), sb: sb}
	pl.play(s.Steps[0])
	if v := pl.invariants(); len(v) != 0 {
		t.Fatalf("a clean run violates: %v", v)
	}
	tok := sb.Partners[tokenization.Name].(*tokenization.Sandbox)
	tok.Delete(tok.State().Clients[2].ID)
	v := strings.Join(pl.invariants(), "\n")
	if !strings.Contains(v, "missing tokenization: 1 records") || !strings.Contains(v, "verify tokenization: exit 3") {
		t.Fatalf("a client deleted at the partner is not caught:\n%s", v)
	}
}
