// Command etl moves bank customers, accounts and cards onto partner
// platforms: read CSV or Postgres, map onto each partner's API, deliver
// concurrently and safely, and keep a request-ID ledger in Postgres so a
// rerun sends only what is missing or changed.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/northwind-data/etl/internal/buildinfo"
	"github.com/northwind-data/etl/internal/crashpoint"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/runlock"
)

// Exit codes: cron alerts on anything but 0. Keep in step with README.
const (
	exitOK      = 0 // every valid record delivered (rejected input rows do not count)
	exitFatal   = 1 // the run could not proceed (database, source, ledger write, run lock lost: docs/locks.md)
	exitUsage   = 2 // bad flags or config
	exitPartial = 3 // some records not delivered (failed, uncertain, refused, stopped, cancelled): rerun
	exitLocked  = 4 // another run holds the lock; nothing was sent
	// exitNeedsOperator: some records are uncertain and no rerun can
	// settle them (a ClubReady token expired while its import's fate was
	// unknown): etl intents list, then etl intents settle. Wins over 3.
	exitNeedsOperator = 5
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string) int
}

var commands []command

func init() {
	commands = []command{
		{"run", "read, plan against the checkpoint, deliver to partners, record the ledger", cmdRun},
		{"migrate", "apply the embedded ledger schema migrations", cmdMigrate},
		{"status", "list runs (running and finished) with their counts", cmdStatus},
		{"report", "per-partner outcomes, error reasons and timings of a run", cmdReport},
		{"rejects", "write a run's rejects as CSV (no card data)", cmdRejects},
		{"intents", "list intents only an operator can settle (ClubReady cards of unknown fate) and settle them", cmdIntents},
		{"verify", "reconcile the ledger with a partner's list API: missing, extra, differing", cmdVerify},
		{"sandbox", "serve all partner sandboxes (with fault injection) for demos and tests", cmdSandbox},
		{"gen", "generate synthetic customers and cards (test BINs, valid Luhn)", cmdGen},
		{"config", "config check: validate a config file and its secrets", cmdConfig},
		{"version", "print the build: module version, commit (and whether dirty), Go version", cmdVersion},
	}
}

const usageHead = `etl: batch onboarding of bank customers, accounts and cards onto partner APIs.

Usage: etl <command> [flags]     (etl <command> -h for the command's flags)

Commands:
`

const usageTail = `
Exit codes:
  0  every valid record delivered        3  partial: some records not delivered; rerun
  1  fatal: the run could not proceed    4  locked: another run is in progress; nothing sent
  2  bad usage or config                 5  needs an operator: records no rerun can settle
                                            (etl intents list, then etl intents settle)

Examples:
  etl migrate --database-url postgres://etl@db/etl
  etl run --config etl.yaml
  etl run --config etl.yaml --dry-run --dry-run-out /tmp/bodies
  etl status && etl report 42 && etl rejects 42 > rejects.csv
  etl intents list && etl intents settle --entity card/C42/K1 --as resend --by ana --reason 'not at ClubReady'
`

func usage() {
	fmt.Fprint(os.Stderr, usageHead)
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(os.Stderr, usageTail)
}

func main() {
	os.Exit(mainCode(os.Args[1:]))
}

func mainCode(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" {
		args[0] = "version"
	}
	// Crash points are for the fault-schedule suite (docs/testing.md); a
	// name that is not one must not let a test silently crash nowhere.
	if err := crashpoint.FromEnv(); err != nil {
		return fail(exitUsage, "%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:])
		}
	}
	fmt.Fprintf(os.Stderr, "etl: unknown command %q\n\n", args[0])
	usage()
	return exitUsage
}

func cmdVersion(_ context.Context, args []string) int {
	fs := newFlags("version", "version", "Print the build of this binary: module version, VCS commit (and \"dirty\" when built from a\nchanged tree), and the Go version. Every run records the same line in runs.version.", "etl version")
	if code, ok := parse(fs, args, 0); !ok {
		return code
	}
	in := buildinfo.Read()
	fmt.Printf("etl %s\n", in)
	fmt.Printf("  version  %s\n  commit   %s\n  dirty    %t\n  go       %s\n", in.Version, orNone(in.Commit), in.Modified, in.Go)
	return exitOK
}

func orNone(s string) string {
	if s == "" {
		return "(not stamped: built outside a git checkout or with -buildvcs=false)"
	}
	return s
}

// fail prints one clear line and returns the code.
func fail(code int, format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "etl: "+format+"\n", a...)
	return code
}

// openLedger connects using the flag, then DATABASE_URL.
func openLedger(ctx context.Context, url string) (*ledger.Store, error) {
	if url == "" {
		url = os.Getenv("DATABASE_URL")
	}
	return ledger.Open(ctx, url)
}

func isLocked(err error) bool { return errors.Is(err, runlock.ErrLocked) }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
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
