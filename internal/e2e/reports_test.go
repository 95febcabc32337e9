package e2e

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/gen"
)

// withBadRows regenerates the input with a share of deliberately bad rows
// (validation rejects, and records some partner's mapping refuses).
func (e *env) withBadRows(n int) {
	e.t.Helper()
	if _, err := gen.Write(e.input, gen.Options{Customers: n, CardsPerCustomer: 1.5, BadFraction: 0.15, Seed: 42, Sorted: true, Now: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
}

var rejectsLine = regexp.MustCompile(`(?m)^  (\d+) rejects: (\d+) input rows refused by validation \+ (\d+) records refused by a partner's mapping: etl rejects (\d+) > rejects.csv$`)

// summaryRejects reads the summary's rejects line: total, validation,
// mapping, and the run id it names.
func summaryRejects(t *testing.T, out string) (total, validation, mapping int, run string) {
	t.Helper()
	m := rejectsLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no rejects line in the summary:\n%s", out)
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return n(m[1]), n(m[2]), n(m[3]), m[4]
}

func csvRows(t *testing.T, s string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil {
		t.Fatalf("%v:\n%s", err, s)
	}
	return rows
}

// The summary's counts are the ledger's: its rejects add up to what `etl
// rejects` writes, and updates a partner has no API for are shown as not
// sent, not as ok calls, while the checkpoint keeps them as known.
func TestSummaryAgreesWithTheLedger(t *testing.T) {
	e := newEnv(t, 0, nil)
	e.withBadRows(60)
	r := e.runETL()
	if r.code != 0 {
		t.Fatalf("first run: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 2000))
	}
	total, validation, mapping, run := summaryRejects(t, r.stdout)
	if validation == 0 || mapping == 0 || total != validation+mapping {
		t.Fatalf("want validation and mapping rejects that add up, got %d = %d + %d\n%s", total, validation, mapping, r.stdout)
	}
	rj := e.run("rejects", run)
	if rows := csvRows(t, rj.stdout); rj.code != 0 || len(rows)-1 != total {
		t.Fatalf("etl rejects %s wrote %d rows, the summary said %d\n%s", run, len(rows)-1, total, rj.stderr)
	}

	// Customers renamed: ClubReady has no call that changes an imported
	// card, so it sends nothing for them.
	rows := readCSV(t, filepath.Join(e.input, "customers.csv"))
	fn := col(t, rows[0], "first_name")
	for _, row := range rows[1:] {
		row[fn] = "Renamed"
	}
	writeCSV(t, filepath.Join(e.input, "customers.csv"), rows)
	r = e.runETL()
	if r.code != 0 {
		t.Fatalf("rename run: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 2000))
	}
	cr := e.lastCounts()["clubready"]
	if cr.Update == 0 || cr.NoUpdateAPI != cr.Update || cr.OK != 0 || cr.Calls != 0 {
		t.Fatalf("clubready after a rename: %+v: want every update counted not sent (no update API), none ok, no calls\n%s", cr, r.stdout)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("clubready: %d changed records not sent: no update API", cr.Update)) {
		t.Errorf("the summary does not say the updates were not sent:\n%s", r.stdout)
	}
	if n := e.scalar(`SELECT count(*) FROM ledger WHERE run_id = (SELECT max(id) FROM runs) AND provider = 'clubready' AND operation = 'update' AND request_id = 'not-sent-no-update-api' AND attempts = 0`); n != cr.Update {
		t.Errorf("%d ledger rows record the unsent updates, the summary %d", n, cr.Update)
	}
	rep := e.run("report", fmt.Sprint(e.scalar(`SELECT max(id) FROM runs`)))
	if !regexp.MustCompile(`(?m)^\s+clubready\s+update\s+not-sent-no-update-api\s+` + fmt.Sprint(cr.Update) + `\s`).MatchString(rep.stdout) {
		t.Errorf("etl report does not show the unsent updates as such:\n%s", rep.stdout)
	}
	// The checkpoint behaviour is unchanged: the next run does not plan
	// them again.
	r = e.runETL()
	if c := e.lastCounts()["clubready"]; r.code != 0 || c.Update != 0 || c.Calls != 0 {
		t.Fatalf("run after the rename: exit %d, clubready %+v", r.code, c)
	}
}

// A dry run reports its rejects like a real run (log summary, rejects.csv
// beside the bodies, `etl rejects` and `etl report` on its run id, marked
// dry) and writes no ledger, checkpoint, intent or fingerprint.
func TestDryRunReportsItsRejects(t *testing.T) {
	e := newEnv(t, 0, nil)
	e.withBadRows(60)
	out := filepath.Join(t.TempDir(), "bodies")
	r := e.runETL("--dry-run", "--dry-run-out", out)
	if r.code != 0 {
		t.Fatalf("dry run: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 2000))
	}
	total, validation, mapping, run := summaryRejects(t, r.stdout)
	if validation == 0 || mapping == 0 {
		t.Fatalf("dry run found %d + %d rejects, want both kinds\n%s", validation, mapping, r.stdout)
	}
	if !strings.Contains(r.stdout, "DRY RUN "+run) || !strings.Contains(r.stderr, `"msg":"dry run rejects"`) {
		t.Errorf("dry run summary or log lacks its rejects:\n%s\n%s", r.stdout, tail(r.stderr, 2000))
	}
	b, err := os.ReadFile(filepath.Join(out, "rejects.csv"))
	if err != nil {
		t.Fatal(err)
	}
	file := csvRows(t, string(b))
	if len(file)-1 != total || strings.Join(file[0], ",") != "file,line,entity_key,field,reason,partner,message" {
		t.Errorf("rejects.csv has %d rows (header %v), the summary said %d", len(file)-1, file[0], total)
	}
	rj := e.run("rejects", run)
	if rows := csvRows(t, rj.stdout); rj.code != 0 || len(rows)-1 != total || !strings.Contains(rj.stderr, "DRY RUN") {
		t.Errorf("etl rejects %s on the dry run: exit %d, %d rows (want %d), stderr %q", run, rj.code, len(rows)-1, total, rj.stderr)
	}
	rep := e.run("report", run)
	if rep.code != 0 || !strings.Contains(rep.stdout, "DRY RUN") || !strings.Contains(rep.stdout, ": dry-run,") {
		t.Errorf("etl report %s on the dry run is not marked dry:\n%s", run, show(rep))
	}
	if n := e.scalar(`SELECT (SELECT count(*) FROM ledger) + (SELECT count(*) FROM sync_state) + (SELECT count(*) FROM customer_fingerprints) + (SELECT count(*) FROM run_seen)`); n != 0 {
		t.Fatalf("the dry run wrote %d ledger, checkpoint, fingerprint or seen rows", n)
	}
	// A real run after it is not confused by the dry run's row.
	if r := e.runETL(); r.code != 0 {
		t.Fatalf("run after the dry run: exit %d\n%s", r.code, r.stdout)
	}
	if n := e.scalar(`SELECT count(*) FROM runs WHERE status = 'dry-run'`); n != 1 {
		t.Errorf("%d dry-run rows after a real run, want 1", n)
	}
}

func show(r result) string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, tail(r.stderr, 2000))
}

// A refused mass deactivation is not "nothing changed".
func TestRefusedDeactivationIsNotNothingChanged(t *testing.T) {
	e := newEnv(t, 60, nil)
	if r := e.runETL(); r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stdout)
	}
	// A truncated export: 20 customers of 60.
	for _, name := range []string{"customers.csv", "cards.csv"} {
		path := filepath.Join(e.input, name)
		rows := readCSV(t, path)
		k := col(t, rows[0], "customer_id")
		keep := rows[:1]
		for _, row := range rows[1:] {
			if n, _ := strconv.Atoi(strings.TrimLeft(row[k], "C")); n < 20 {
				keep = append(keep, row)
			}
		}
		writeCSV(t, path, keep)
	}
	r := e.runETL()
	if r.code != 3 || !strings.Contains(r.stdout, "deactivation refused") {
		t.Fatalf("truncated export: want exit 3 and a refusal\n%s", show(r))
	}
	if strings.Contains(r.stdout, "nothing changed") {
		t.Errorf("a refused deactivation says nothing changed:\n%s", r.stdout)
	}
}

// --metrics-textfile is checked before the run; a textfile that cannot be
// written at the end names its path and fails the run.
func TestMetricsTextfileFailures(t *testing.T) {
	e := newEnv(t, 10, nil)
	missing := filepath.Join(t.TempDir(), "no-such-dir", "etl.prom")
	r := e.runETL("--metrics-textfile", missing)
	if r.code != 2 || !strings.Contains(r.stderr, "--metrics-textfile "+missing) {
		t.Fatalf("missing directory: want exit 2 naming the flag and path\n%s", show(r))
	}
	if n := e.scalar(`SELECT count(*) FROM runs`); n != 0 {
		t.Fatalf("a run started (%d runs rows) although its metrics textfile could not be written", n)
	}
	// The target itself is a directory: the check passes (its parent is
	// writable) but the rename at the end cannot replace it.
	target := filepath.Join(t.TempDir(), "etl.prom")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	r = e.runETL("--metrics-textfile", target)
	if r.code == 0 || !strings.Contains(r.stderr, "--metrics-textfile "+target+": not written") {
		t.Fatalf("unwritable textfile: want a non-zero exit naming %s\n%s", target, show(r))
	}
}
