package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// The targets of issue 9, as ratios measured in one run.
const (
	TargetBatchRunOverCeiling  = 0.50 // data feed, 50 per request
	TargetRecordRunOverCeiling = 0.40 // per-record partners
	TargetRecordRunOverNaive   = 20.0
	TargetRateFraction         = 0.97
	TargetRSSGrowth            = 1.25 // peak RSS at the largest size over the smallest
	TargetRSSMiB               = 200.0 * 1e6 / (1 << 20)
	TargetNightlyPerSec        = 200000.0
)

// Report is everything one `make bench` measured; it is also written as
// bench-results.json.
type Report struct {
	Started        time.Time       `json:"started"`
	Seconds        float64         `json:"seconds"`
	Host           string          `json:"host"`
	CPUs           int             `json:"cpus"`
	GoVersion      string          `json:"go_version"`
	Customers      int             `json:"customers"`
	NaiveCustomers int             `json:"naive_customers"`
	Concurrency    int             `json:"concurrency"`
	Database       string          `json:"database"`
	Partners       []PartnerResult `json:"partners"`
	Memory         []MemRun        `json:"memory,omitempty"`
	Nightly        *Nightly        `json:"nightly_rerun,omitempty"`
	Rate           *RateResult     `json:"rate_limited,omitempty"`
	Latency        *LatencyResult  `json:"latency,omitempty"`
	Mixed          *MixedResult    `json:"mixed,omitempty"`
	Growth         *MixedResult    `json:"growth,omitempty"` // Q2 alone with max_concurrency
	Shards         []ShardResult   `json:"shards,omitempty"`
	MixedMemory    []MixedMemRun   `json:"mixed_memory,omitempty"`
	Mode           string          `json:"mode,omitempty"`
	Load           string          `json:"load,omitempty"` // uptime at the start
	Targets        []Target        `json:"targets"`
	Profiles       []string        `json:"profiles,omitempty"`
	Notes          []string        `json:"notes,omitempty"`
}

// PartnerResult is one row of the table.
type PartnerResult struct {
	Name           string  `json:"partner"`
	MaxBatch       int     `json:"max_batch"`
	OpsPerCustomer float64 `json:"ops_per_customer"`
	Ceiling        Measure `json:"ceiling"`
	// CeilingSingle is the ceiling at one customer per request, for a
	// partner that batches.
	CeilingSingle *Measure   `json:"ceiling_1_per_request,omitempty"`
	Naive         Measure    `json:"naive"`
	Run           RunMeasure `json:"etl_run"`
	RunOverCeil   float64    `json:"run_over_ceiling"`
	RunOverNaive  float64    `json:"run_over_naive"`
}

// MemRun is one peak-RSS run.
type MemRun struct {
	Partner   string     `json:"partner"`
	Customers int        `json:"customers"`
	Run       RunMeasure `json:"etl_run"`
	Rerun     *Nightly   `json:"nightly_rerun,omitempty"`
}

// Nightly is the no-change rerun after the largest RSS run.
type Nightly struct {
	Partner         string  `json:"partner"`
	Customers       int     `json:"customers"`
	Seconds         float64 `json:"seconds"`
	PerSec          float64 `json:"customers_per_s"`
	Calls           int64   `json:"calls"`            // as the run counted them
	SandboxRequests int64   `json:"sandbox_requests"` // as the partner saw them
	MaxRSSMiB       float64 `json:"max_rss_mib"`
	CPU             CPU     `json:"cpu"`
	Cut             bool    `json:"cut_at_budget,omitempty"`
	// SyncStateSeqRows: see RunMeasure.
	SyncStateSeqRows int64 `json:"sync_state_seq_rows"`
}

// RateResult is the rate-limited mode.
type RateResult struct {
	Partner      string  `json:"partner"`
	Faults       string  `json:"sandbox_faults"`
	Limit        float64 `json:"limit_per_s"`
	Concurrency  int     `json:"concurrency"`
	Customers    int     `json:"customers"`
	Seconds      float64 `json:"seconds"`
	Requests     int64   `json:"requests"`
	Passed       int64   `json:"passed"`
	RateLimited  int64   `json:"rate_limited"`
	PerSec       float64 `json:"passed_per_s"`        // over the process's wall time
	Fraction     float64 `json:"fraction_of_limit"`   // PerSec / Limit
	WindowPerSec float64 `json:"window_passed_per_s"` // first to last request, start-up and exit left out
	ExitCode     int     `json:"exit_code"`
}

// LatencyResult is the latency mode: naive loop and etl run against a
// sandbox that answers late and limits nothing.
type LatencyResult struct {
	Partner      string     `json:"partner"`
	Faults       string     `json:"sandbox_faults"`
	Concurrency  int        `json:"concurrency"`
	Naive        Measure    `json:"naive"`
	Run          RunMeasure `json:"etl_run"`
	RunOverNaive float64    `json:"run_over_naive"`
}

// Target is one goal and whether this run met it.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Met  bool    `json:"met"`
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// evaluate fills the ratios and checks every target.
func (r *Report) evaluate() {
	r.Targets = nil
	add := func(name, want string, got float64, met bool) {
		r.Targets = append(r.Targets, Target{name, want, got, met})
	}
	for i := range r.Partners {
		p := &r.Partners[i]
		p.RunOverCeil = ratio(p.Run.PerSec, p.Ceiling.PerSec)
		p.RunOverNaive = ratio(p.Run.PerSec, p.Naive.PerSec)
		if p.MaxBatch > 1 {
			add(p.Name+" run/ceiling", fmt.Sprintf(">= %.0f%% (%d per request)", 100*TargetBatchRunOverCeiling, p.MaxBatch),
				p.RunOverCeil, p.RunOverCeil >= TargetBatchRunOverCeiling)
			continue
		}
		add(p.Name+" run/ceiling", fmt.Sprintf(">= %.0f%%", 100*TargetRecordRunOverCeiling), p.RunOverCeil, p.RunOverCeil >= TargetRecordRunOverCeiling)
		add(p.Name+" run/naive", fmt.Sprintf(">= %.0fx", TargetRecordRunOverNaive), p.RunOverNaive, p.RunOverNaive >= TargetRecordRunOverNaive)
	}
	if x := r.Latency; x != nil {
		x.RunOverNaive = ratio(x.Run.PerSec, x.Naive.PerSec)
	}
	if x := r.Rate; x != nil {
		add("rate-limited fraction of limit", fmt.Sprintf(">= %.0f%%", 100*TargetRateFraction), x.Fraction, x.Fraction >= TargetRateFraction)
	}
	// A run cut at the budget did not show its whole-run peak: its
	// targets count as missed.
	cut := ""
	if n := len(r.Memory); n >= 1 && r.Memory[n-1].Run.Cut {
		cut = ", run cut at the budget"
	}
	if n := len(r.Memory); n >= 2 {
		lo, hi := r.Memory[0], r.Memory[n-1]
		g := ratio(hi.Run.MaxRSSMiB, lo.Run.MaxRSSMiB)
		add(fmt.Sprintf("peak RSS %s/%s", count(hi.Customers), count(lo.Customers)), fmt.Sprintf("<= %.2fx%s", TargetRSSGrowth, cut), g, g <= TargetRSSGrowth && cut == "")
	}
	if n := len(r.Memory); n >= 1 {
		hi := r.Memory[n-1]
		add(fmt.Sprintf("peak RSS at %s (MiB)", count(hi.Customers)), fmt.Sprintf("< 200 MB (%.1f MiB)%s", TargetRSSMiB, cut), hi.Run.MaxRSSMiB, hi.Run.MaxRSSMiB < TargetRSSMiB && cut == "")
	}
	if x := r.Nightly; x != nil {
		add("nightly no-change rerun customers/s", fmt.Sprintf(">= %.0f", TargetNightlyPerSec), x.PerSec, x.PerSec >= TargetNightlyPerSec)
		add("nightly no-change rerun calls", "0", float64(x.Calls+max(x.SandboxRequests, 0)), x.Calls == 0 && x.SandboxRequests == 0)
	}
	r.mixedTargets(add)
}

// Missed lists the targets not met.
func (r *Report) Missed() []Target {
	var out []Target
	for _, t := range r.Targets {
		if !t.Met {
			out = append(out, t)
		}
	}
	return out
}

func (r *Report) target(name string) (Target, bool) {
	for _, t := range r.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Print writes the table and the lines under it.
func (r *Report) Print(w io.Writer) {
	if r.Load != "" {
		fmt.Fprintf(w, "\nLoad at the start (uptime): %s\n", r.Load)
	}
	if len(r.Partners) > 0 {
		r.printPartners(w)
	}
	r.printMixed(w)
	r.printTail(w)
}

func (r *Report) printPartners(w io.Writer) {
	fmt.Fprintf(w, "\netl bench: %s generated customers per partner, sandboxes in their own process over loopback, no added latency,\n", count(r.Customers))
	fmt.Fprintf(w, "%d workers (etl run) = %d goroutines (ceiling); naive = 1 goroutine on the first %s customers.\n", r.Concurrency, r.Concurrency, count(r.NaiveCustomers))
	if r.Database != "" {
		fmt.Fprintf(w, "PostgreSQL: %s.\n", r.Database)
	}
	fmt.Fprintf(w, "This machine has %d CPUs shared by the driver, etl, the sandbox and PostgreSQL (and anyone else): the ratios, not the absolute numbers, are the result.\n\n", r.CPUs)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "partner\tceiling/s\tnaive/s\tetl run/s\trun/ceiling\trun/naive\ttarget met?\t")
	for _, p := range r.Partners {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.0f%%\t%.1fx\t%s\t\n", p.Name, p.Ceiling.PerSec, p.Naive.PerSec, p.Run.PerSec,
			100*p.RunOverCeil, p.RunOverNaive, r.partnerVerdict(p))
	}
	tw.Flush()
	for _, p := range r.Partners {
		if cn := ratio(p.Ceiling.PerSec, p.Naive.PerSec); p.MaxBatch == 1 && cn > 0 && cn < TargetRecordRunOverNaive {
			fmt.Fprintf(w, "  %s: the ceiling itself is only %.1fx the naive baseline here, so run/naive >= %.0fx cannot be met on this machine\n",
				p.Name, cn, TargetRecordRunOverNaive)
		}
		if p.MaxBatch > 1 {
			single := ""
			if p.CeilingSingle != nil {
				single = fmt.Sprintf("; at 1 per request the ceiling is %.0f/s (run = %.1fx of it)", p.CeilingSingle.PerSec, ratio(p.Run.PerSec, p.CeilingSingle.PerSec))
			}
			fmt.Fprintf(w, "  %s ceiling is at %d customers per request%s\n", p.Name, p.MaxBatch, single)
		}
		for _, m := range []struct {
			what string
			m    Measure
		}{{"ceiling", p.Ceiling}, {"naive", p.Naive}, {"etl run", p.Run.Measure}} {
			if m.m.Failed > 0 {
				fmt.Fprintf(w, "  %s %s: %d of %d ops did not succeed (not counted)\n", p.Name, m.what, m.m.Failed, m.m.Ops)
			}
		}
	}

	fmt.Fprintf(w, "\nWhere the CPU went (CPU seconds per 1000 customers; busy = cores busy on the whole machine, of %d):\n", r.CPUs)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measure\tcustomers\twall s\tdriver\tetl\tsandbox\tpostgres\tbusy\trequests\tsync_state seq rows\t")
	var seqScans []string
	row := func(name string, m Measure, seq int64) {
		k := float64(max(m.Customers, 1)) / 1000
		seqs := "-"
		if seq >= 0 {
			seqs = fmt.Sprint(seq)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t%d\t%s\t\n", name, m.Customers, m.Seconds,
			m.CPU.Driver/k, m.CPU.ETL/k, m.CPU.Sandbox/k, m.CPU.Postgres/k, m.CPU.MachineCores, m.Requests, seqs)
		if seq > int64(10*max(m.Customers, 1000)) {
			seqScans = append(seqScans, fmt.Sprintf("%s (%d rows, %.0f per customer)", name, seq, float64(seq)/float64(max(m.Customers, 1))))
		}
	}
	for _, p := range r.Partners {
		row(p.Name+" ceiling", p.Ceiling, -1)
		if p.CeilingSingle != nil {
			row(p.Name+" ceiling 1/req", *p.CeilingSingle, -1)
		}
		row(p.Name+" naive", p.Naive, -1)
		row(p.Name+" etl run", p.Run.Measure, p.Run.SyncStateSeqRows)
	}
	for _, m := range r.Memory {
		row(fmt.Sprintf("%s etl run %s", m.Partner, count(m.Customers)), m.Run.Measure, m.Run.SyncStateSeqRows)
		if x := m.Rerun; x != nil {
			row(fmt.Sprintf("%s nightly rerun %s", x.Partner, count(m.Customers)), Measure{Customers: x.Customers, Seconds: x.Seconds, CPU: x.CPU, Requests: x.SandboxRequests}, x.SyncStateSeqRows)
		}
	}
	tw.Flush()
	if len(seqScans) > 0 {
		fmt.Fprintf(w, "  PostgreSQL scanned sync_state sequentially (the checkpoint lookup planned without its index): %s\n", strings.Join(seqScans, "; "))
	}

	if len(r.Memory) > 0 {
		p := r.Memory[0].Partner
		fmt.Fprintf(w, "\nPeak RSS of etl run --providers %s (the cheapest per-customer path, so the largest run fits the time budget):\n", p)
		for _, m := range r.Memory {
			cut := ""
			if m.Run.Cut {
				cut = fmt.Sprintf(", CUT at the time budget with %d delivered", m.Run.Customers)
			}
			ofCeiling := ""
			for _, pr := range r.Partners {
				if pr.Name == m.Partner && pr.Ceiling.PerSec > 0 && !m.Run.Cut {
					// The same partner's ceiling above (at the comparison
					// size): how much of the run/ceiling gap is fixed cost.
					ofCeiling = fmt.Sprintf(", %.0f%% of the ceiling above", 100*m.Run.PerSec/pr.Ceiling.PerSec)
				}
			}
			fmt.Fprintf(w, "  %9s customers: %6.1f MiB   (%.0f customers/s%s, %.1fs%s)\n", count(m.Customers), m.Run.MaxRSSMiB, m.Run.PerSec, ofCeiling, m.Run.Seconds, cut)
		}
		if t, ok := r.target(fmt.Sprintf("peak RSS %s/%s", count(r.Memory[len(r.Memory)-1].Customers), count(r.Memory[0].Customers))); ok {
			fmt.Fprintf(w, "  growth %.2fx (target %s): %s\n", t.Got, t.Want, yes(t.Met))
		}
		if t, ok := r.target(fmt.Sprintf("peak RSS at %s (MiB)", count(r.Memory[len(r.Memory)-1].Customers))); ok {
			fmt.Fprintf(w, "  largest %.1f MiB (target %s): %s\n", t.Got, t.Want, yes(t.Met))
		}
	}
	if x := r.Nightly; x != nil {
		t1, _ := r.target("nightly no-change rerun customers/s")
		t2, _ := r.target("nightly no-change rerun calls")
		fmt.Fprintf(w, "\nNightly no-change rerun of %s (same database and sandbox, nothing changed):\n", x.Partner)
		for _, m := range r.Memory {
			if y := m.Rerun; y != nil && !y.Cut {
				fmt.Fprintf(w, "  %9s customers: %.0f customers/s in %.1fs, %d calls counted by the run, %d requests seen by the sandbox, peak RSS %.1f MiB\n",
					count(y.Customers), y.PerSec, y.Seconds, y.Calls, y.SandboxRequests, y.MaxRSSMiB)
			}
		}
		fmt.Fprintf(w, "  at %s: target >= %.0f customers/s: %s; zero calls: %s\n", count(x.Customers), TargetNightlyPerSec, yes(t1.Met), yes(t2.Met))
	}
	if x := r.Rate; x != nil {
		t, _ := r.target("rate-limited fraction of limit")
		fmt.Fprintf(w, "\nRate-limited (%s, sandbox %s, rate_per_sec %g, concurrency %d, %d customers):\n", x.Partner, x.Faults, x.Limit, x.Concurrency, x.Customers)
		fmt.Fprintf(w, "  %.1f requests/s over the process wall time (%.1fs) = %.1f%% of the limit (target >= %.0f%%: %s); %.1f/s between the first and last request; %d answered 429\n",
			x.PerSec, x.Seconds, 100*x.Fraction, 100*TargetRateFraction, yes(t.Met), x.WindowPerSec, x.RateLimited)
	}
	if x := r.Latency; x != nil {
		fmt.Fprintf(w, "\nWith partner latency (%s, sandbox %s, no rate limit; not a target, the table above is):\n", x.Partner, x.Faults)
		fmt.Fprintf(w, "  naive %.1f customers/s (%d customers); etl run %.0f customers/s (%d customers, concurrency %d) = %.1fx the naive loop\n",
			x.Naive.PerSec, x.Naive.Customers, x.Run.PerSec, x.Run.Customers, x.Concurrency, x.RunOverNaive)
	}
}

func (r *Report) printTail(w io.Writer) {
	if missed := r.Missed(); len(missed) > 0 {
		fmt.Fprintf(w, "\nTargets missed:\n")
		for _, t := range missed {
			fmt.Fprintf(w, "  %s: got %s, want %s\n", t.Name, fmtGot(t), t.Want)
		}
	} else if len(r.Targets) > 0 {
		fmt.Fprintf(w, "\nEvery target met.\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(w, "CPU profile of the in-process equivalent: go tool pprof -top %s\n", p)
	}
	fmt.Fprintf(w, "(bench took %s)\n", time.Duration(r.Seconds*float64(time.Second)).Round(time.Second))
}

func (r *Report) partnerVerdict(p PartnerResult) string {
	var parts []string
	ok := true
	for _, suffix := range []string{" run/ceiling", " run/naive"} {
		if t, found := r.target(p.Name + suffix); found {
			ok = ok && t.Met
			if !t.Met {
				parts = append(parts, strings.TrimPrefix(suffix, " ")+" "+t.Want)
			}
		}
	}
	if ok {
		return "yes"
	}
	return "NO (" + strings.Join(parts, ", ") + ")"
}

func fmtGot(t Target) string {
	switch {
	case strings.HasSuffix(t.Name, "run/ceiling"), strings.HasPrefix(t.Name, "rate-limited"), strings.HasSuffix(t.Name, "of its bound"), strings.HasSuffix(t.Name, "of its limit"):
		return fmt.Sprintf("%.1f%%", 100*t.Got)
	case strings.Contains(t.Name, "/naive"), strings.Contains(t.Name, "RSS") && strings.Contains(t.Name, "/"), strings.Contains(t.Name, "wall/"):
		return fmt.Sprintf("%.2fx", t.Got)
	}
	return fmt.Sprintf("%.1f", t.Got)
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

// count writes 100000 as 100k and 1000000 as 1M.
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
