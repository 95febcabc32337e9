package bench

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/extract"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/transform"
)

// profileRun is the in-process equivalent of `etl run --providers
// provider` (the wiring of cmd/etl/run.go without metrics, progress and
// the lock), under a CPU profile written to profPath. `etl run` has no
// profiling flag; this is what a profile of it would show, minus process
// start-up. It returns the wall time.
func profileRun(ctx context.Context, cfgPath string, env []string, dbURL, provider, profPath string) (time.Duration, error) {
	restore := setEnv(append(env, "BENCH_DATABASE_URL="+dbURL))
	defer restore()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return 0, err
	}
	key, err := cfg.HMACKey.Resolve()
	if err != nil {
		return 0, err
	}
	provs, err := partners.Build(cfg, []string{provider}, nil)
	if err != nil {
		return 0, err
	}
	store, err := ledger.Open(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer store.Close()
	f, err := os.Create(profPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return 0, err
	}
	start := time.Now()
	defer pprof.StopCPUProfile()
	runID, err := store.StartRun(ctx, ledger.RunInfo{Group: "bench-profile", Source: "csv:" + cfg.Source.Dir, Providers: []string{provider}, Version: "bench"})
	if err != nil {
		return 0, err
	}
	// As `etl run` wires it: the fast path on, under a fixed scope (the
	// profiling binary is not the etl binary, so the scope is its own).
	var eng *load.Engine
	fast := &extract.FastPath{Key: []byte(key), Unchanged: func(ctx context.Context, ids []string, sums [][]byte) ([]bool, error) {
		return eng.Unchanged(ctx, ids, sums)
	}}
	src, err := extract.OpenCSV(cfg.Source.Dir, extract.Options{Validator: transform.NewValidator([]byte(key), time.Now()), FastPath: fast})
	if err != nil {
		return 0, err
	}
	conc := map[string]int{}
	for _, p := range provs {
		if n := cfg.Partners[p.Name()].Concurrency; n > 0 {
			conc[p.Name()] = n
		}
	}
	eng, err = load.New(store, provs, []byte(key), load.WithWorkers(conc), load.WithDeactivation(0, nil),
		load.WithFingerprintScope("bench-profile-"+provider))
	if err != nil {
		return 0, err
	}
	sum, err := eng.Run(ctx, runID, load.SourceFunc(func(ctx context.Context, emit func(*model.Customer) error, reject func(model.Reject) error) error {
		_, err := src.Read(ctx, emit, reject)
		return err
	}))
	wall := time.Since(start)
	if err == nil && !sum.Delivered() {
		err = fmt.Errorf("bench: profiled run of %s did not deliver everything", provider)
	}
	_ = store.FinishRun(context.WithoutCancel(ctx), runID, "ok", map[string]any{})
	return wall, err
}

// setEnv sets KEY=VALUE pairs and returns what undoes it.
func setEnv(kvs []string) func() {
	type old struct {
		k, v string
		had  bool
	}
	var olds []old
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		ov, had := os.LookupEnv(k)
		olds = append(olds, old{k, ov, had})
		os.Setenv(k, v)
	}
	return func() {
		for i := len(olds) - 1; i >= 0; i-- {
			if olds[i].had {
				os.Setenv(olds[i].k, olds[i].v)
			} else {
				os.Unsetenv(olds[i].k)
			}
		}
	}
}
