package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/northwind-data/etl/internal/sandbox/faults"
)

// The mixed mode's targets (issue 19), as ratios measured in one run.
const (
	TargetMixedCustomersPerRequest = 45.0 // data feed, mixed and 4-shard (50 is the most a request takes)
	TargetMixedOfBound             = 0.95 // each per-record partner, passed requests/s over its bound
	TargetMixedRateOfLimit         = 0.95 // the rate-limited partner, passed/s over its limit (and 0 breaker trips)
	TargetMixedWallOverBound       = 1.10 // the run's wall time over its slowest partner's bound
	TargetMixedRSSGrowth           = 1.25 // mixed-mode peak RSS at the largest size over the smallest
)

// DefaultMixedFaults is each partner's sandbox profile in the mixed mode:
// the example, with ClubReady given a latency as well so that its
// bound is a number (on loopback without latency a partner is bound by
// the CPU, which is not its own). -mixed-faults merges over these.
var DefaultMixedFaults = []string{
	"datafeed=none",
	"synctera=latency=50ms",
	"q2open=latency=200ms",
	"tokenization=rate=100",
	"clubready=errors=0.05,latency=20ms",
}

// DefaultMixedConcurrency is the sample config's (sample-data/etl.yaml)
// workers per partner: the setting a first deployment runs with.
var DefaultMixedConcurrency = map[string]int{"datafeed": 4, "q2open": 8, "synctera": 8, "clubready": 4, "tokenization": 4}

// MergeFaults applies PARTNER=SPEC items (PARTNER may be all) in order
// on top of each other, key by key, exactly as `etl sandbox --faults`
// does, and returns each known partner's resulting config.
func MergeFaults(known []string, items []string) (map[string]faults.Config, error) {
	out := map[string]faults.Config{}
	for _, n := range known {
		out[n] = faults.Config{}
	}
	for _, it := range items {
		name, spec, ok := strings.Cut(it, "=")
		if !ok {
			return nil, fmt.Errorf("bench: mixed faults %q: want PARTNER=SPEC", it)
		}
		targets := []string{name}
		if name == "all" {
			targets = known
		} else if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("bench: mixed faults: unknown partner %q (known: %s, or all)", name, strings.Join(known, ", "))
		}
		for _, n := range targets {
			c, err := faults.ApplySpec(out[n], spec)
			if err != nil {
				return nil, fmt.Errorf("bench: mixed faults %s: %w", name, err)
			}
			out[n] = c
		}
	}
	return out, nil
}

// Bound is the most passed requests per second a partner's sandbox can
// answer a run with concurrency requests in flight:
//
//	min(concurrency / latency, rate limit) x (1 - errors - reset - drop)
//
// where a missing latency or limit is no bound. The latency is the
// partner's: the injected one, or what the sandbox measured from each
// request's arrival to its answer when that is longer (servedLatency);
// the client's side and the loopback round trip are ours and left out,
// so the bound is an upper one. The token bucket
// passes at most its rate; a failed draw does not pass. 0 means no
// bound: a partner on loopback without latency or limit is bound by
// the machine's CPU, not by itself, and is judged otherwise.
func Bound(c faults.Config, concurrency int) (perSec float64, how string) {
	b := math.Inf(1)
	var parts []string
	if c.Latency > 0 && concurrency > 0 {
		b = float64(concurrency) / c.Latency.Seconds()
		parts = append(parts, fmt.Sprintf("%d in flight / %s", concurrency, c.Latency))
	}
	if c.RateLimit > 0 {
		if c.RateLimit < b {
			b = c.RateLimit
			parts = []string{fmt.Sprintf("limit %g/s", c.RateLimit)}
		} else {
			parts = append(parts, fmt.Sprintf("(under its limit %g/s)", c.RateLimit))
		}
	}
	if math.IsInf(b, 1) {
		return 0, "none (no latency, no limit)"
	}
	if bad := c.ErrorRate + c.ResetRate + c.DropRate; bad > 0 {
		b *= max(0, 1-bad)
		parts = append(parts, fmt.Sprintf("x %.0f%% passing", 100*max(0, 1-bad)))
	}
	return b, strings.Join(parts, " ")
}

// MixedPartner is one partner's row of the mixed mode.
type MixedPartner struct {
	Partner     string `json:"partner"`
	Faults      string `json:"sandbox_faults"`
	Concurrency int    `json:"concurrency"`
	// MaxConcurrency is the run's max_concurrency (0: none); the bound
	// is then taken at it.
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// PeakConcurrency is the most requests in flight the run allowed
	// (the debug log's concurrency changes; Concurrency when none).
	PeakConcurrency int     `json:"peak_concurrency"`
	RatePerSec      float64 `json:"rate_per_sec,omitempty"` // the run's client-side limit
	MaxBatch        int     `json:"max_batch"`
	Bound           float64 `json:"bound_passed_per_s"` // 0: none
	// InjectedBound is the bound at the injected latency alone, before
	// the measured one replaced it.
	InjectedBound float64 `json:"injected_bound_passed_per_s"`
	// LatencyMS is the sandbox's mean time from a request's arrival to its
	// answer; the bound uses it where it exceeds the injected latency.
	LatencyMS   float64 `json:"partner_latency_ms"`
	BoundHow    string  `json:"bound_how"`
	RateLimited bool    `json:"rate_limited_partner"`

	Customers int   `json:"customers"` // delivered (distinct customers active in sync_state)
	OK        int64 `json:"ok_ops"`
	NotOK     int64 `json:"not_ok_ops"`
	Calls     int64 `json:"calls"` // Sends as the run counted them (batches for the data feed)
	// The sandbox's counters.
	Requests    int64 `json:"requests"`
	Passed      int64 `json:"passed"`
	Answered429 int64 `json:"answered_429"`
	Errors5xx   int64 `json:"errors_5xx"`
	// The run's own view: its metrics textfile and debug log.
	Client429    int64  `json:"client_saw_429"`
	Retries      int64  `json:"retries"`
	BreakerTrips int    `json:"breaker_trips"`
	Stopped      string `json:"stopped,omitempty"`

	// The sending window: first to last request the sandbox counted
	// (sampled every 50 ms), start-up and exit left out.
	Start        float64 `json:"window_start_s"` // seconds after the run started
	End          float64 `json:"window_end_s"`
	WindowPassed int64   `json:"window_passed"`
	PassedPerS   float64 `json:"passed_per_s"`  // WindowPassed / (End - Start)
	OfBound      float64 `json:"of_bound"`      // PassedPerS / Bound
	BoundSecs    float64 `json:"bound_seconds"` // Passed / Bound: the least time this partner's work can take
	// CustomersPerRequest is delivered customers per Send, for a
	// partner that batches.
	CustomersPerRequest float64 `json:"customers_per_request,omitempty"`
}

// MixedResult is the mixed mode: every partner in one etl run.
type MixedResult struct {
	Customers    int            `json:"customers"`
	Seconds      float64        `json:"seconds"` // the etl run process's wall time
	ExitCode     int            `json:"exit_code"`
	MaxRSSMiB    float64        `json:"max_rss_mib"`
	Partners     []MixedPartner `json:"partners"`
	Slowest      string         `json:"slowest_partner"`
	SlowestBound float64        `json:"slowest_bound_seconds"`
	WallOverSlow float64        `json:"wall_over_slowest_bound"`
	Load         string         `json:"load"` // uptime before the run
}

// ShardResult is the data feed delivered by 4 shards at once.
type ShardResult struct {
	Partner             string    `json:"partner"`  // the one judged: the data feed
	Partners            []string  `json:"partners"` // every partner of the runs
	Faults              string    `json:"sandbox_faults"`
	Shards              int       `json:"shards"`
	Customers           int       `json:"customers"`
	Calls               int64     `json:"calls"`
	Requests            int64     `json:"sandbox_requests"`
	Seconds             float64   `json:"seconds"` // the slowest shard's wall time
	ShardSeconds        []float64 `json:"shard_seconds"`
	CustomersPerRequest float64   `json:"customers_per_request"`
	Load                string    `json:"load"`
}

// MixedMemRun is one peak-RSS run of the mixed memory check.
type MixedMemRun struct {
	Partners  []string `json:"partners"`
	Faults    string   `json:"sandbox_faults"`
	Customers int      `json:"customers"`
	Seconds   float64  `json:"seconds"`
	MaxRSSMiB float64  `json:"max_rss_mib"`
	Cut       bool     `json:"cut_at_budget,omitempty"`
	Delivered int      `json:"customers_delivered"`
}

// finish computes the mixed run's ratios from its measured counts.
func (m *MixedResult) finish() {
	m.Slowest, m.SlowestBound = "", 0
	for i := range m.Partners {
		p := &m.Partners[i]
		p.PassedPerS, p.OfBound, p.BoundSecs, p.CustomersPerRequest = 0, 0, 0, 0
		if d := p.End - p.Start; d > 0 {
			p.PassedPerS = float64(p.WindowPassed) / d
		}
		if p.Bound > 0 {
			p.OfBound = p.PassedPerS / p.Bound
			p.BoundSecs = float64(p.Passed) / p.Bound
			if p.BoundSecs > m.SlowestBound {
				m.Slowest, m.SlowestBound = p.Partner, p.BoundSecs
			}
		}
		if p.MaxBatch > 1 && p.Calls > 0 {
			p.CustomersPerRequest = float64(p.Customers) / float64(p.Calls)
		}
	}
	m.WallOverSlow = ratio(m.Seconds, m.SlowestBound)
}

// mixedTargets judges the mixed mode, the 4-shard run and the mixed
// memory check.
func (r *Report) mixedTargets(add func(name, want string, got float64, met bool)) {
	if m := r.Mixed; m != nil {
		m.finish()
		for _, p := range m.Partners {
			switch {
			case p.MaxBatch > 1:
				add("mixed "+p.Partner+" customers/request", fmt.Sprintf(">= %.0f", TargetMixedCustomersPerRequest),
					p.CustomersPerRequest, p.CustomersPerRequest >= TargetMixedCustomersPerRequest)
			case p.RateLimited:
				add("mixed "+p.Partner+" of its limit", fmt.Sprintf(">= %.0f%%", 100*TargetMixedRateOfLimit), p.OfBound, p.OfBound >= TargetMixedRateOfLimit)
				add("mixed "+p.Partner+" breaker trips", "0", float64(p.BreakerTrips), p.BreakerTrips == 0)
			case p.Bound > 0:
				add("mixed "+p.Partner+" of its bound", fmt.Sprintf(">= %.0f%%", 100*TargetMixedOfBound), p.OfBound, p.OfBound >= TargetMixedOfBound)
			}
		}
		if m.SlowestBound > 0 {
			add("mixed wall/slowest bound", fmt.Sprintf("<= %.2fx (%s)", TargetMixedWallOverBound, m.Slowest), m.WallOverSlow, m.WallOverSlow <= TargetMixedWallOverBound)
		}
	}
	for i := range r.Shards {
		s := &r.Shards[i]
		s.CustomersPerRequest = ratio(float64(s.Customers), float64(s.Calls))
		add(s.targetName(), fmt.Sprintf(">= %.0f", TargetMixedCustomersPerRequest),
			s.CustomersPerRequest, s.CustomersPerRequest >= TargetMixedCustomersPerRequest)
	}
	if n := len(r.MixedMemory); n >= 2 {
		lo, hi := r.MixedMemory[0], r.MixedMemory[n-1]
		cut := ""
		if hi.Cut {
			cut = ", run cut at the budget"
		}
		g := ratio(hi.MaxRSSMiB, lo.MaxRSSMiB)
		add(fmt.Sprintf("mixed peak RSS %s/%s", count(hi.Customers), count(lo.Customers)), fmt.Sprintf("<= %.2fx%s", TargetMixedRSSGrowth, cut),
			g, g <= TargetMixedRSSGrowth && !hi.Cut)
	}
}

// printMixed writes the mixed mode's table and the 4-shard and memory
// lines under it.
func (r *Report) printMixed(w io.Writer) {
	if m := r.Mixed; m != nil {
		fmt.Fprintf(w, "\nMixed mode: every partner in one etl run on the same %s generated customers, each sandbox with its own faults\n", count(m.Customers))
		fmt.Fprintf(w, "(load before the run: %s).\n", m.Load)
		fmt.Fprintf(w, "bound = the most passed requests/s the partner allows: min(concurrency / latency, limit) x the share not failed, latency = the\n")
		fmt.Fprintf(w, "sandbox's mean time from a request's arrival to its answer (at least the injected latency); passed/s over the partner's\n")
		fmt.Fprintf(w, "window (its first to last request); bound s = passed / bound, the least time its share of the work can take.\n\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "partner\tsandbox\tconcurrency\tlatency ms\tbound/s\tpassed/s\tof bound\twindow s\tbound s\tcalls\tcust/req\t429 (sandbox/run)\t5xx\tretries\tbreaker trips\ttarget met?\t")
		for _, p := range m.Partners {
			bound, of, bs := "-", "-", "-"
			if p.Bound > 0 {
				bound, of, bs = fmt.Sprintf("%.1f", p.Bound), fmt.Sprintf("%.1f%%", 100*p.OfBound), fmt.Sprintf("%.1f", p.BoundSecs)
			}
			cpr := "-"
			if p.MaxBatch > 1 {
				cpr = fmt.Sprintf("%.1f", p.CustomersPerRequest)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%s\t%.1f\t%s\t%.1f-%.1f\t%s\t%d\t%s\t%d/%d\t%d\t%d\t%d\t%s\t\n", p.Partner, p.Faults, p.Concurrency, p.LatencyMS, bound, p.PassedPerS, of,
				p.Start, p.End, bs, p.Calls, cpr, p.Answered429, p.Client429, p.Errors5xx, p.Retries, p.BreakerTrips, r.mixedVerdict(p))
		}
		tw.Flush()
		for _, p := range m.Partners {
			injected := ""
			if b := p.InjectedBound; b > 0 && b != p.Bound {
				injected = fmt.Sprintf(" (%.1f%% of %.1f/s at the injected latency alone)", 100*p.PassedPerS/b, b)
			}
			fmt.Fprintf(w, "  %s: bound %s%s; %d customers delivered, %d ops ok, %d not; %d requests seen by the sandbox, %d passed\n",
				p.Partner, p.BoundHow, injected, p.Customers, p.OK, p.NotOK, p.Requests, p.Passed)
			if p.Stopped != "" {
				fmt.Fprintf(w, "  %s STOPPED: %s\n", p.Partner, p.Stopped)
			}
		}
		t, ok := r.target("mixed wall/slowest bound")
		if ok {
			fmt.Fprintf(w, "  wall %.1fs (exit %d, peak RSS %.1f MiB) against the slowest partner's bound, %s %.1fs: %.2fx (target %s): %s\n",
				m.Seconds, m.ExitCode, m.MaxRSSMiB, m.Slowest, m.SlowestBound, m.WallOverSlow, t.Want, yes(t.Met))
		}
	}
	if g := r.Growth; g != nil && len(g.Partners) == 1 {
		p := g.Partners[0]
		fixed := 0.0
		if p.LatencyMS > 0 {
			fixed = float64(p.Concurrency) / (p.LatencyMS / 1000)
		}
		fmt.Fprintf(w, "\nConcurrency that grows while latency stays flat (%s alone, %s, %s customers, concurrency %d, max_concurrency %d; load %s):\n",
			p.Partner, p.Faults, count(g.Customers), p.Concurrency, p.MaxConcurrency, g.Load)
		fmt.Fprintf(w, "  %.1f passed/s (%.2fx the %.1f/s of concurrency %d at its %.1f ms), %.0f%% of the %.1f/s at %d; grew to %d in flight; wall %.1fs\n",
			p.PassedPerS, ratio(p.PassedPerS, fixed), fixed, p.Concurrency, p.LatencyMS, 100*p.OfBound, p.Bound, p.MaxConcurrency, p.PeakConcurrency, g.Seconds)
	}
	for _, s := range r.Shards {
		t, _ := r.target(s.targetName())
		fmt.Fprintf(w, "\n%d shards at once (etl run --shard i/%d --providers %s, same export, ledger and sandbox, %s customers; sandbox %s; load %s):\n",
			s.Shards, s.Shards, strings.Join(s.Partners, ","), count(s.Customers), s.Faults, s.Load)
		fmt.Fprintf(w, "  %s: %d customers in %d calls (%d sandbox requests) = %.1f customers/request (target %s: %s); slowest shard %.1fs\n",
			s.Partner, s.Customers, s.Calls, s.Requests, s.CustomersPerRequest, t.Want, yes(t.Met), s.Seconds)
	}
	if len(r.MixedMemory) > 0 {
		fmt.Fprintf(w, "\nMixed-mode peak RSS (%s; %s):\n", strings.Join(r.MixedMemory[0].Partners, ","), r.MixedMemory[0].Faults)
		for _, m := range r.MixedMemory {
			cut := ""
			if m.Cut {
				cut = ", CUT at the time budget"
			}
			fmt.Fprintf(w, "  %9s customers: %6.1f MiB   (%.1fs, %d delivered to every partner%s)\n", count(m.Customers), m.MaxRSSMiB, m.Seconds, m.Delivered, cut)
		}
		if n := len(r.MixedMemory); n >= 2 {
			if t, ok := r.target(fmt.Sprintf("mixed peak RSS %s/%s", count(r.MixedMemory[n-1].Customers), count(r.MixedMemory[0].Customers))); ok {
				fmt.Fprintf(w, "  growth %.2fx (target %s): %s\n", t.Got, t.Want, yes(t.Met))
			}
		}
	}
}

func (r *Report) mixedVerdict(p MixedPartner) string {
	var missed []string
	found := false
	for _, suffix := range []string{" customers/request", " of its limit", " breaker trips", " of its bound"} {
		if t, ok := r.target("mixed " + p.Partner + suffix); ok {
			found = true
			if !t.Met {
				missed = append(missed, strings.TrimPrefix(suffix, " ")+" "+t.Want)
			}
		}
	}
	switch {
	case !found:
		return "-"
	case len(missed) == 0:
		return "yes"
	}
	return "NO (" + strings.Join(missed, ", ") + ")"
}

func (s ShardResult) targetName() string {
	with := "alone"
	if len(s.Partners) > 1 {
		with = "with " + strings.Join(slices.DeleteFunc(slices.Clone(s.Partners), func(p string) bool { return p == s.Partner }), ",")
	}
	return fmt.Sprintf("%d-shard %s customers/request (%s)", s.Shards, s.Partner, with)
}
