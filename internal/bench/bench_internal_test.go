package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/partners"
)

// The test binary doubles as the RSS wrapper, as benchrun does.
func TestMain(m *testing.M) {
	ServeWrapper()
	os.Exit(m.Run())
}

// A child started through the wrapper reports its own peak RSS, not the
// parent's: without the wrapper, Linux hands the child the high-water
// mark of the address space it was cloned from.
func TestWrapperReportsTheChildsOwnPeak(t *testing.T) {
	const parentMiB = 256
	ballast := make([]byte, parentMiB<<20)
	for i := 0; i < len(ballast); i += 4096 {
		ballast[i] = 1 // touch every page so it counts as resident
	}
	u, err := runChild(context.Background(), []string{"/bin/sh", "-c", "exit 3"}, os.Environ(), &limitedBuffer{n: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if u.Exit != 3 {
		t.Errorf("exit %d, want 3", u.Exit)
	}
	if u.MaxRSSKiB <= 0 || u.MaxRSSKiB > (parentMiB/4)<<10 {
		t.Errorf("child peak RSS %d KiB: want the shell's own few MiB, not this process's %d MiB", u.MaxRSSKiB, parentMiB)
	}
	if ballast[4096] != 1 {
		t.Fatal("ballast")
	}
}

// The generated config names every registered partner with its demo
// credentials and options, and etl's own validation accepts it.
func TestConfigCoversEveryPartnerAndValidates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etl.yaml")
	env, err := writeConfig(path, "http://127.0.0.1:9", runConfig{Source: dir, Concurrency: 16, RatePerSec: 200})
	if err != nil {
		t.Fatal(err)
	}
	restore := setEnv(append(env, "BENCH_DATABASE_URL=postgres://bench@127.0.0.1:9/x"))
	defer restore()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if es := cfg.Validate(partners.Schemas()); len(es) > 0 {
		t.Fatalf("config does not validate: %v", es)
	}
	for _, sp := range partners.All() {
		p, ok := cfg.Partners[sp.Name]
		if !ok {
			t.Errorf("%s missing from the config", sp.Name)
			continue
		}
		if p.Concurrency != 16 || p.RatePerSec != 200 || !strings.HasPrefix(p.BaseURL, "http://127.0.0.1:9/"+sp.Name) {
			t.Errorf("%s: %+v", sp.Name, p)
		}
		for k, v := range sp.DemoCredentials {
			if got := p.Cred(k); got != v {
				t.Errorf("%s credential %s not resolved", sp.Name, k)
			}
		}
		if _, err := OfflineProvider(sp); err != nil {
			t.Errorf("%s: %v", sp.Name, err)
		}
	}
}

func TestTallyCountsCustomersWithEveryOpDone(t *testing.T) {
	// Customer 0 has two ops, one failed; customer 1 one good op;
	// customer 2 two good ops.
	m := tally([]bool{true, false, true, true, true}, []int{0, 0, 1, 2, 2}, 3)
	if m.Customers != 2 || m.Failed != 1 || m.Ops != 5 {
		t.Errorf("%+v", m)
	}
}

func TestTargets(t *testing.T) {
	rm := func(perSec, rss float64, cut bool) RunMeasure {
		return RunMeasure{Measure: Measure{PerSec: perSec}, MaxRSSMiB: rss, Cut: cut}
	}
	base := func() *Report {
		return &Report{
			Partners: []PartnerResult{
				{Name: "feed", MaxBatch: 50, Ceiling: Measure{PerSec: 1000}, Naive: Measure{PerSec: 100}, Run: rm(500, 40, false)},
				{Name: "rec", MaxBatch: 1, Ceiling: Measure{PerSec: 1000}, Naive: Measure{PerSec: 20}, Run: rm(400, 40, false)},
			},
			Memory:  []MemRun{{Customers: 100000, Run: rm(1, 40, false)}, {Customers: 1000000, Run: rm(1, 50, false)}},
			Rate:    &RateResult{Fraction: 0.97},
			Nightly: &Nightly{PerSec: 200000},
		}
	}
	tests := []struct {
		name   string
		change func(r *Report)
		missed []string
	}{
		{"every target met at its bound", func(*Report) {}, nil},
		{"feed under half the ceiling", func(r *Report) { r.Partners[0].Run.PerSec = 499 }, []string{"feed run/ceiling"}},
		{"per-record under both bounds", func(r *Report) { r.Partners[1].Run.PerSec = 399 }, []string{"rec run/ceiling", "rec run/naive"}},
		{"per-record naive too fast", func(r *Report) { r.Partners[1].Naive.PerSec = 21 }, []string{"rec run/naive"}},
		{"rate", func(r *Report) { r.Rate.Fraction = 0.969 }, []string{"rate-limited fraction of limit"}},
		{"RSS growth", func(r *Report) { r.Memory[1].Run.MaxRSSMiB = 50.1 }, []string{"peak RSS 1M/100k"}},
		{"RSS size", func(r *Report) {
			r.Memory[0].Run.MaxRSSMiB, r.Memory[1].Run.MaxRSSMiB = 190, 191
		}, []string{"peak RSS at 1M (MiB)"}},
		{"largest run cut", func(r *Report) { r.Memory[1].Run.Cut = true }, []string{"peak RSS 1M/100k", "peak RSS at 1M (MiB)"}},
		{"nightly slow and calling", func(r *Report) { r.Nightly.PerSec, r.Nightly.SandboxRequests = 199999, 1 },
			[]string{"nightly no-change rerun customers/s", "nightly no-change rerun calls"}},
	}
	for _, tc := range tests {
		r := base()
		tc.change(r)
		r.evaluate()
		var got []string
		for _, m := range r.Missed() {
			got = append(got, m.Name)
		}
		if strings.Join(got, "|") != strings.Join(tc.missed, "|") {
			t.Errorf("%s: missed %q, want %q", tc.name, got, tc.missed)
		}
		var out bytes.Buffer
		r.Print(&out)
		if !strings.Contains(out.String(), "partner") || (len(tc.missed) == 0) != strings.Contains(out.String(), "Every target met") {
			t.Errorf("%s: printed\n%s", tc.name, out.String())
		}
	}
}

// The latency mode is reported with its ratio, and judges nothing: the
// targets are the loopback table's.
func TestLatencyModeIsReportedNotJudged(t *testing.T) {
	r := &Report{
		Partners: []PartnerResult{{Name: "rec", MaxBatch: 1, Ceiling: Measure{PerSec: 1000}, Naive: Measure{PerSec: 100}, Run: RunMeasure{Measure: Measure{PerSec: 500}}}},
		Latency: &LatencyResult{Partner: "rec", Faults: "latency=20ms", Concurrency: 32,
			Naive: Measure{PerSec: 40, Customers: 200}, Run: RunMeasure{Measure: Measure{PerSec: 1200, Customers: 4000}}},
	}
	r.evaluate()
	var names []string
	for _, m := range r.Missed() {
		names = append(names, m.Name)
	}
	if strings.Join(names, "|") != "rec run/naive" {
		t.Errorf("missed %q; want only the loopback table's rec run/naive", names)
	}
	var out bytes.Buffer
	r.Print(&out)
	if !strings.Contains(out.String(), "= 30.0x the naive loop") {
		t.Errorf("printed:\n%s", out.String())
	}
}
