package bench

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/sandbox/faults"
)

func TestBound(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		workers int
		want    float64
		how     string
	}{
		{"latency: workers over latency", "latency=200ms", 8, 40, "8 in flight / 200ms"},
		{"limit alone", "rate=100", 4, 100, "limit 100/s"},
		{"limit under the latency bound", "rate=100,latency=10ms", 4, 100, "limit 100/s"},
		{"latency under the limit", "rate=1000,latency=50ms", 8, 160, "(under its limit 1000/s)"},
		{"errors take their share", "errors=0.05,latency=20ms", 4, 190, "x 95% passing"},
		{"resets and drops too", "errors=0.1,reset=0.05,drop=0.05,rate=50", 4, 40, "x 80% passing"},
		{"no latency, no limit: no bound", "errors=0.05", 4, 0, "none"},
		{"nothing", "none", 4, 0, "none"},
	}
	for _, tc := range tests {
		c, err := faults.ParseSpec(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		got, how := Bound(c, tc.workers)
		if math.Abs(got-tc.want) > 1e-9 || !strings.Contains(how, tc.how) {
			t.Errorf("%s: Bound(%s, %d) = %g %q, want %g %q", tc.name, tc.spec, tc.workers, got, how, tc.want, tc.how)
		}
	}
}

// Mixed faults merge key by key in order, like etl sandbox --faults:
// a later item changes only the keys it names, "all" reaches every
// partner, "none" clears.
func TestMergeFaults(t *testing.T) {
	known := []string{"a", "b", "c"}
	got, err := MergeFaults(known, []string{"a=latency=50ms", "all=errors=0.1", "a=rate=100", "b=none", "c=seed=3"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]faults.Config{
		"a": {Latency: 50 * time.Millisecond, ErrorRate: 0.1, RateLimit: 100},
		"b": {},
		"c": {ErrorRate: 0.1, Seed: 3},
	}
	for _, n := range known {
		if got[n] != want[n] {
			t.Errorf("%s: %+v, want %+v", n, got[n], want[n])
		}
	}
	for _, bad := range []string{"latency=50ms", "d=latency=1ms", "a=latency=fast"} {
		if _, err := MergeFaults(known, []string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The defaults parse, and give the profile: one rate-limited
// partner, latency-bound per-record partners, the data feed unbounded.
func TestDefaultMixedProfiles(t *testing.T) {
	fc, err := MergeFaults([]string{"datafeed", "synctera", "q2open", "tokenization", "clubready"}, DefaultMixedFaults)
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]float64{"datafeed": 0, "synctera": 160, "q2open": 40, "tokenization": 100, "clubready": 190} {
		if got, _ := Bound(fc[n], DefaultMixedConcurrency[n]); math.Abs(got-want) > 1e-9 {
			t.Errorf("%s: default bound %g, want %g", n, got, want)
		}
	}
}

func mixedReport() *Report {
	return &Report{
		Mixed: &MixedResult{Customers: 1000, Seconds: 27.5, Partners: []MixedPartner{
			// 50 calls for 2500 customers: 50 per request.
			{Partner: "feed", MaxBatch: 50, Customers: 2500, Calls: 50, WindowPassed: 50, Start: 0, End: 1},
			// 1000 passed at bound 40/s: 25 s of work; 950 in a 25 s window = 38/s = 95%.
			{Partner: "slow", MaxBatch: 1, Bound: 40, Passed: 1000, WindowPassed: 950, Start: 0.5, End: 25.5},
			// 100/s limit, 2000 passed: 20 s; 1900 in 20 s = 95%.
			{Partner: "limited", MaxBatch: 1, Bound: 100, RateLimited: true, Passed: 2000, WindowPassed: 1900, Start: 1, End: 21},
			{Partner: "cpu", MaxBatch: 1, Passed: 10, WindowPassed: 10, Start: 0, End: 1}, // no bound: not judged
		}},
		Shards:      []ShardResult{{Partner: "feed", Partners: []string{"feed"}, Shards: 4, Customers: 4500, Calls: 100}},
		MixedMemory: []MixedMemRun{{Customers: 100000, MaxRSSMiB: 80}, {Customers: 1000000, MaxRSSMiB: 100}},
	}
}

func TestMixedTargets(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *Report)
		missed []string
	}{
		{"every target met at its bound", func(*Report) {}, nil},
		{"feed batches collapse", func(r *Report) { r.Mixed.Partners[0].Calls = 1390 }, []string{"mixed feed customers/request"}},
		{"slow partner under 95% of its bound", func(r *Report) { r.Mixed.Partners[1].WindowPassed = 949 }, []string{"mixed slow of its bound"}},
		{"limited under 95% of its limit", func(r *Report) { r.Mixed.Partners[2].WindowPassed = 1899 }, []string{"mixed limited of its limit"}},
		{"limited partner tripped its breaker", func(r *Report) { r.Mixed.Partners[2].BreakerTrips = 1 }, []string{"mixed limited breaker trips"}},
		// Slowest bound: slow, 1000/40 = 25 s; 1.1x is 27.5 s.
		{"wall over 1.1x the slowest bound", func(r *Report) { r.Mixed.Seconds = 27.6 }, []string{"mixed wall/slowest bound"}},
		{"4 shards collapse", func(r *Report) { r.Shards[0].Calls = 101 }, []string{"4-shard feed customers/request (alone)"}},
		{"RSS grows", func(r *Report) { r.MixedMemory[1].MaxRSSMiB = 100.1 }, []string{"mixed peak RSS 1M/100k"}},
		{"RSS run cut", func(r *Report) { r.MixedMemory[1].Cut = true }, []string{"mixed peak RSS 1M/100k"}},
	}
	for _, tc := range tests {
		r := mixedReport()
		tc.change(r)
		r.evaluate()
		var got []string
		for _, m := range r.Missed() {
			got = append(got, m.Name)
		}
		if strings.Join(got, "|") != strings.Join(tc.missed, "|") {
			t.Errorf("%s: missed %q, want %q", tc.name, got, tc.missed)
		}
		if r.Mixed.Slowest != "slow" || r.Mixed.SlowestBound != 25 {
			t.Errorf("%s: slowest %s %gs, want slow 25s", tc.name, r.Mixed.Slowest, r.Mixed.SlowestBound)
		}
		var out bytes.Buffer
		r.Print(&out)
		for _, want := range []string{"Mixed mode", "4 shards at once", "Mixed-mode peak RSS"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: %q not printed:\n%s", tc.name, want, out.String())
			}
		}
		if (len(tc.missed) == 0) != strings.Contains(out.String(), "Every target met") {
			t.Errorf("%s: printed\n%s", tc.name, out.String())
		}
	}
}

// A shard run with other partners is a different target from the data
// feed alone, so both can be judged in one report.
func TestShardTargetNames(t *testing.T) {
	alone := ShardResult{Partner: "datafeed", Partners: []string{"datafeed"}, Shards: 4}
	with := ShardResult{Partner: "datafeed", Partners: []string{"clubready", "datafeed", "q2open"}, Shards: 4}
	if a, w := alone.targetName(), with.targetName(); a != "4-shard datafeed customers/request (alone)" || w != "4-shard datafeed customers/request (with clubready,q2open)" {
		t.Errorf("%q, %q", a, w)
	}
}

func TestScanLogReadsTheDebugLog(t *testing.T) {
	log := strings.Join([]string{
		`{"level":"debug","ts":"x","msg":"breaker state changed","partner":"clubready","from":"closed","to":"open"}`,
		`{"level":"debug","ts":"x","msg":"breaker state changed","partner":"clubready","from":"open","to":"half-open"}`,
		`{"level":"debug","ts":"x","msg":"breaker state changed","partner":"clubready","from":"half-open","to":"open"}`,
		`{"level":"debug","ts":"x","msg":"breaker state changed","partner":"q2open","from":"half-open","to":"closed"}`,
		`{"level":"debug","ts":"x","msg":"partner call retried","partner":"tokenization","to":"open"}`,
		`not json: breaker state changed`,
		`{"level":"debug","ts":"x","msg":"partner concurrency changed","partner":"q2open","from":8,"to":9}`,
		`{"level":"debug","ts":"x","msg":"partner concurrency changed","partner":"q2open","from":9,"to":12}`,
		`{"level":"debug","ts":"x","msg":"partner concurrency changed","partner":"q2open","from":12,"to":6}`,
	}, "\n")
	got := scanLog(bufio.NewScanner(strings.NewReader(log)))
	if len(got.trips) != 1 || got.trips["clubready"] != 2 {
		t.Errorf("trips %v, want clubready 2 only", got.trips)
	}
	if len(got.peak) != 1 || got.peak["q2open"] != 12 {
		t.Errorf("peak concurrency %v, want q2open 12 only", got.peak)
	}
}

func TestReadPromCounters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etl.prom")
	text := `# HELP etl_http_requests_total Partner HTTP attempts by status code (0 = no response).
# TYPE etl_http_requests_total counter
etl_http_requests_total{code="200",partner="tokenization"} 900
etl_http_requests_total{code="429",partner="tokenization"} 12
etl_http_requests_total{code="429",partner="q2open"} 1
etl_retries_total{partner="clubready"} 70
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r429, retries := readPromCounters(path)
	if r429["tokenization"] != 12 || r429["q2open"] != 1 || len(r429) != 2 || retries["clubready"] != 70 {
		t.Errorf("429s %v, retries %v", r429, retries)
	}
}
