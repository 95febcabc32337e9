package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/gen"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/redact"
)

func dbFlag(fs *flag.FlagSet) *string {
	return fs.String("database-url", "", "ledger database URL (default: DATABASE_URL)")
}

func cmdMigrate(ctx context.Context, args []string) int {
	fs := newFlags("migrate", "migrate [--database-url URL]", "Apply the ledger schema migrations embedded in this binary (each once, under a lock).\n`etl run` also migrates when the schema is behind.",
		"etl migrate --database-url postgres://etl@ledger-db/etl", "DATABASE_URL=postgres://etl@ledger-db/etl etl migrate")
	db := dbFlag(fs)
	if code, ok := parse(fs, args, 0); !ok {
		return code
	}
	store, err := openLedger(ctx, *db)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	defer store.Close()
	applied, err := ledger.Migrate(ctx, store.Pool())
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	if len(applied) == 0 {
		fmt.Println("schema is up to date")
	} else {
		fmt.Printf("applied migrations %v\n", applied)
	}
	return exitOK
}

func cmdStatus(ctx context.Context, args []string) int {
	fs := newFlags("status", "status [-n N] [--json]", "List the latest runs, running or finished, with their status and counts.",
		"etl status", "etl status -n 5 --json")
	db := dbFlag(fs)
	limit := fs.Int("n", 20, "how many runs")
	asJSON := fs.Bool("json", false, "JSON output")
	if code, ok := parse(fs, args, 0); !ok {
		return code
	}
	store, err := openLedger(ctx, *db)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	defer store.Close()
	runs, err := store.Runs(ctx, *limit)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	views, err := viewRuns(ctx, store, runs)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	if *asJSON {
		if views == nil {
			views = []runView{}
		}
		_ = json.NewEncoder(os.Stdout).Encode(views)
		return exitOK
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tGROUP\tSHARD\tSTATUS\tSTARTED\tFINISHED\tCUSTOMERS\tREJECTS\tCALLS\tPARTNERS")
	var fromLedger []string
	for _, r := range views {
		c := r.Counts
		fin := "-"
		if r.Finished != nil {
			fin = r.Finished.Format("2006-01-02 15:04:05")
		}
		if r.CountsFrom == "ledger" {
			fromLedger = append(fromLedger, fmt.Sprint(r.ID))
		}
		fmt.Fprintf(tw, "%d\t%s\t%d/%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.ID, r.Group, r.ShardIndex, r.ShardCount, r.Status,
			r.Started.Format("2006-01-02 15:04:05"), fin, c.Customers, c.allRejects(), c.Calls, strings.Join(r.Providers, ","))
	}
	tw.Flush()
	if len(fromLedger) > 0 {
		// To stderr, so the table stays one header and one line per run.
		fmt.Fprintf(os.Stderr, "runs %s recorded no final counts (running or crashed): customers, rejects and calls are counted from their ledger rows (calls = records sent)\n",
			strings.Join(fromLedger, ", "))
	}
	return exitOK
}

func cmdRejects(ctx context.Context, args []string) int {
	fs := newFlags("rejects", "rejects RUN [flags] > rejects.csv", "Write a run's rejects as CSV: file, line, entity key, field, reason, partner, message.\nRUN is a run id or a run group (every shard). Card data never appears.",
		"etl rejects 42 > rejects-42.csv", "etl rejects nightly-2026-11-23 > rejects.csv")
	db := dbFlag(fs)
	if code, ok := parse(fs, args, 1); !ok {
		return code
	}
	store, err := openLedger(ctx, *db)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	defer store.Close()
	runs, err := store.RunsOf(ctx, fs.Arg(0))
	if errors.Is(err, ledger.ErrNoRun) {
		return fail(exitUsage, "%v", err)
	}
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	for _, r := range runs {
		if r.Status == ledger.StatusDryRun {
			// stderr: the CSV on stdout stays the same shape for every run.
			fmt.Fprintf(os.Stderr, "etl: run %d was a DRY RUN: these rows were rejected by a dry run; nothing was sent\n", r.ID)
		}
	}
	w := csv.NewWriter(os.Stdout)
	_ = w.Write([]string{"file", "line", "entity_key", "field", "reason", "partner", "message"})
	err = store.EachReject(ctx, ids(runs), func(r ledger.RejectRow) error {
		return w.Write([]string{r.File, strconv.Itoa(r.Line), r.EntityKey, r.Field, r.Reason, r.Provider, redact.Text(r.Message)})
	})
	w.Flush()
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	return exitOK
}

func ids(runs []ledger.Run) []int64 {
	out := make([]int64, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

// reorder lets flags follow the positional argument (etl report 7 --format json).
func reorder(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && !isBoolFlag(a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func isBoolFlag(a string) bool {
	a = strings.TrimLeft(a, "-")
	return a == "json" || a == "v" || a == "q"
}

func cmdGen(_ context.Context, args []string) int {
	fs := newFlags("gen", "gen --customers N --out DIR [flags]", "Write synthetic customers.csv and cards.csv: test BINs, valid Luhn, realistic names and\naddresses, a fraction of deliberately bad rows; the same seed gives the same files.",
		"etl gen --customers 100000 --out /tmp/gen100k --seed 7", "etl gen --customers 1000 --out /tmp/messy --bad 0.1 --unsorted")
	n := fs.Int("customers", 1000, "number of customers")
	out := fs.String("out", "", "output directory (required)")
	seed := fs.Uint64("seed", 1, "random seed: same seed, same files")
	bad := fs.Float64("bad", 0.02, "fraction of deliberately bad rows")
	cards := fs.Float64("cards-per-customer", 1.5, "mean cards per customer")
	unsorted := fs.Bool("unsorted", false, "shuffle rows instead of sorting by customer_id")
	if code, ok := parse(fs, args, 0); !ok {
		return code
	}
	if *out == "" {
		fmt.Fprint(fs.Output(), "etl gen: --out is required\n\n")
		fs.Usage()
		return exitUsage
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fail(exitFatal, "%v", err)
	}
	st, err := gen.Write(*out, gen.Options{Customers: *n, CardsPerCustomer: *cards, BadFraction: *bad, Seed: *seed, Sorted: !*unsorted})
	if err != nil {
		return fail(exitFatal, "gen: %v", err)
	}
	fmt.Printf("wrote %s: %+v\n", *out, st)
	return exitOK
}

func cmdConfig(_ context.Context, args []string) int {
	fs := newFlags("config", "config check [--config FILE]", "Validate the config and resolve every secret it names; print each problem with its field path.",
		"etl config check --config /etc/etl/etl.yaml")
	path := fs.String("config", "etl.yaml", "config file")
	if len(args) == 0 || args[0] != "check" {
		if code, ok := parse(fs, args, -1); !ok {
			return code
		}
		fs.Usage()
		return exitUsage
	}
	if code, ok := parse(fs, args[1:], 0); !ok {
		return code
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if es := cfg.Validate(partners.Schemas()); len(es) > 0 {
		fmt.Fprintf(os.Stderr, "config %s: %d problem(s):\n", *path, len(es))
		for _, e := range es {
			fmt.Fprintf(os.Stderr, "  %s\n", e)
		}
		return exitUsage
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(os.Stderr, "config %s: warning: %s\n", *path, w)
	}
	fmt.Printf("config %s is valid\n", *path)
	return exitOK
}

// dryRun writes the bodies a dry run would send, masked.
type dryRun struct {
	dir string
	n   atomic.Int64
}

func newDryRun(dir string) *dryRun { return &dryRun{dir: dir} }

func (d *dryRun) write(provider string, op partner.Op) {
	b, err := json.Marshal(op.Payload)
	if err != nil {
		return
	}
	masked, err := redact.JSON(b)
	if err != nil {
		return
	}
	name := strings.NewReplacer("/", "_", "\\", "_").Replace(op.EntityKey.String())
	dir := filepath.Join(d.dir, provider)
	_ = os.MkdirAll(dir, 0o700) // inside the private directory makePrivateDir checked
	doc := fmt.Sprintf("{\"operation\": %q, \"entity_key\": %q, \"remote_id\": %q, \"body\": %s}\n", op.Kind, op.EntityKey, op.RemoteID, masked)
	if os.WriteFile(filepath.Join(dir, name+".json"), []byte(doc), 0o600) == nil {
		d.n.Add(1)
	}
}
