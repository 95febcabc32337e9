// Command benchrun is `make bench`: it measures the ceiling, the naive
// baseline and `etl run` per partner, peak RSS, the nightly no-change
// rerun and the rate-limited mode, prints one table and writes the same
// as JSON. See package bench.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/northwind-data/etl/internal/bench"
)

func main() {
	bench.ServeWrapper()
	os.Exit(run())
}

func run() int {
	var o bench.Options
	var partners, sizes, jsonPath, mixedConc, mixedSizes, mixedRSSPartners string
	var mixedFaults, mixedRSSFaults multiFlag
	var strict bool
	flag.StringVar(&o.Bin, "bin", "bin/etl", "the etl binary to measure (make bench builds it)")
	flag.StringVar(&partners, "partners", "", "comma-separated partners (default: every registered partner)")
	flag.IntVar(&o.Customers, "customers", 20000, "customers per partner for the ceiling / naive / etl run comparison")
	flag.IntVar(&o.NaiveCustomers, "naive-customers", 5000, "customers the naive baseline runs on (its rate does not depend on the size)")
	flag.IntVar(&o.Concurrency, "concurrency", 16, "etl run workers per partner, and goroutines of the bare client")
	flag.StringVar(&sizes, "rss-sizes", "100000,1000000", "customers for the peak-RSS runs, comma-separated; the nightly rerun follows the largest; empty skips")
	flag.StringVar(&o.RSSPartner, "rss-partner", "", "partner of the peak-RSS and nightly runs (default datafeed)")
	flag.Float64Var(&o.RateLimit, "rate-limit", 200, "rate-limited mode: the sandbox's limit and the run's rate_per_sec, requests/s")
	flag.DurationVar(&o.RateLatency, "rate-latency", 50*time.Millisecond, "rate-limited mode: latency the sandbox adds")
	flag.Float64Var(&o.RateSeconds, "rate-seconds", 20, "rate-limited mode: seconds' worth of requests at the limit (0 skips)")
	flag.IntVar(&o.RateConcurrency, "rate-concurrency", 32, "rate-limited mode: etl run workers")
	flag.DurationVar(&o.Latency, "latency", 20*time.Millisecond, "latency mode: what the sandbox adds to every answer, no rate limit, naive vs etl run (0 skips)")
	flag.IntVar(&o.LatencyNaive, "latency-naive", 200, "latency mode: customers of the naive loop")
	flag.IntVar(&o.LatencyCustomers, "latency-customers", 4000, "latency mode: customers of the etl run")
	flag.StringVar(&o.RatePartner, "rate-partner", "", "rate-limited mode partner (default synctera if registered, else q2open)")
	flag.BoolVar(&o.NoSync, "nosync", false, "start the throwaway PostgreSQL without fsync or synchronous commits (as the tests do); default: durable, as production")
	flag.StringVar(&o.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL server to create bench databases on (default $DATABASE_URL, else a throwaway cluster)")
	flag.StringVar(&o.WorkDir, "work", "", "directory for generated data and configs (default: a temp dir, removed)")
	flag.StringVar(&o.ProfileDir, "profile", "", "also CPU-profile the in-process equivalent of each partner's etl run into this directory")
	flag.StringVar(&jsonPath, "json", "bench-results.json", "write the results as JSON here (empty: do not)")
	flag.BoolVar(&strict, "strict", false, "exit 3 when a target is missed")
	flag.DurationVar(&o.Budget, "budget", 7*time.Minute, "time budget of the whole measurement: the peak-RSS runs are cut or skipped at it (0: none)")
	flag.StringVar(&o.Mode, "mode", "all", "all; mixed (only the mixed mode, the 4-shard run and the mixed memory check); single (all but those)")
	flag.IntVar(&o.MixedCustomers, "mixed-customers", 2000, "mixed mode: customers of the one etl run delivering to every partner (0 skips)")
	flag.Var(&mixedFaults, "mixed-faults", "mixed mode: PARTNER=SPEC sandbox faults (PARTNER may be all), repeatable, merged key by key in order over the defaults "+strings.Join(bench.DefaultMixedFaults, " "))
	flag.StringVar(&mixedConc, "mixed-concurrency", "", "mixed mode: workers, N for every partner or PARTNER=N,... over the sample config's (datafeed=4,q2open=8,synctera=8,clubready=4,tokenization=4)")
	flag.IntVar(&o.ShardCustomers, "shard-customers", 2000, "4-shard data feed run: customers (0 skips)")
	flag.StringVar(&mixedSizes, "mixed-rss-sizes", "5000,50000", "mixed memory check: customers of each run, comma-separated (empty skips)")
	flag.StringVar(&mixedRSSPartners, "mixed-rss-partners", "datafeed,synctera", "mixed memory check: the partners of its runs")
	flag.Var(&mixedRSSFaults, "mixed-rss-faults", "mixed memory check: PARTNER=SPEC sandbox faults, repeatable (default none)")
	flag.Parse()

	o.MixedFaults = append(append([]string{}, bench.DefaultMixedFaults...), mixedFaults...)
	o.MixedRSSFaults = mixedRSSFaults
	o.MixedRSSPartners = strings.Split(mixedRSSPartners, ",")
	if mixedConc != "" {
		m, err := parseConcurrency(mixedConc)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchrun: -mixed-concurrency: %v\n", err)
			return 2
		}
		o.MixedConcurrency = m
	}
	for _, s := range strings.Split(mixedSizes, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "benchrun: -mixed-rss-sizes: %q is not a positive number\n", s)
			return 2
		}
		o.MixedRSSSizes = append(o.MixedRSSSizes, n)
	}

	if partners != "" {
		o.Partners = strings.Split(partners, ",")
	}
	for _, s := range strings.Split(sizes, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "benchrun: -rss-sizes: %q is not a positive number\n", s)
			return 2
		}
		o.RSSSizes = append(o.RSSSizes, n)
	}
	if _, err := os.Stat(o.Bin); err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v (run make build, or pass -bin)\n", err)
		return 2
	}
	// ETL_* variables would override the bench's own configs (base URLs,
	// ledger URL) in the clients it builds in this process.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "ETL_") {
			os.Unsetenv(k)
		}
	}
	o.Log = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, o)
	if rep != nil {
		rep.Print(os.Stdout)
		if jsonPath != "" {
			if werr := rep.WriteJSON(jsonPath); werr != nil {
				fmt.Fprintf(os.Stderr, "benchrun: %v\n", werr)
			} else {
				fmt.Printf("results written to %s\n", jsonPath)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchrun: %v\n", err)
		return 1
	}
	if strict && len(rep.Missed()) > 0 {
		return 3
	}
	return 0
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// parseConcurrency reads "16" (every partner) or "q2open=32,synctera=16"
// (those over the sample config's).
func parseConcurrency(s string) (map[string]int, error) {
	out := map[string]int{}
	for k, v := range bench.DefaultMixedConcurrency {
		out[k] = v
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 {
			return nil, fmt.Errorf("%d: want a positive number", n)
		}
		for k := range out {
			out[k] = n
		}
		return out, nil
	}
	for _, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: want PARTNER=N with N > 0", item)
		}
		out[k] = n
	}
	return out, nil
}
