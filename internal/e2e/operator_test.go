package e2e

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/providers/tokenization"
)

func TestDryRunSendsNothingAndWritesMaskedBodies(t *testing.T) {
	e := newEnv(t, 40, nil)
	out := filepath.Join(t.TempDir(), "bodies") // made fresh, 0700 (docs/security.md)
	r := e.runETL("--dry-run", "--dry-run-out", out)
	if r.code != 0 || !strings.Contains(r.stdout, "DRY RUN") {
		t.Fatalf("dry run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, n := range partners.Names() {
		if st := e.sb.Faults[n].Stats(); st.Requests != 0 {
			t.Errorf("%s received %d requests during a dry run", n, st.Requests)
		}
	}
	// Its only trace is its own runs row, status dry-run (for `etl
	// rejects` and `etl report`), and that row's rejects.
	if n := e.scalar(`SELECT (SELECT count(*) FROM ledger) + (SELECT count(*) FROM sync_state) + (SELECT count(*) FROM runs WHERE status <> 'dry-run')`); n != 0 {
		t.Fatalf("a dry run wrote %d rows to the ledger database", n)
	}
	files := 0
	pan := regexp.MustCompile(`\b\d{13,19}\b`)
	_ = filepath.Walk(out, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		files++
		b, _ := os.ReadFile(p)
		if m := pan.Find(b); m != nil {
			t.Errorf("%s holds an unmasked card number", p)
		}
		if strings.Contains(string(b), `"cardCode": "`) && !strings.Contains(string(b), `"cardCode": "***"`) {
			t.Errorf("%s holds a card code", p)
		}
		return nil
	})
	if files == 0 {
		t.Fatal("no request bodies were written")
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("--dry-run-out: %v, %v: want a directory made with mode 0700", st.Mode(), err)
	}
	// The plan it printed is what a real run then does.
	r = e.runETL()
	if r.code != 0 {
		t.Fatalf("real run after dry run: exit %d", r.code)
	}
}

func TestMetricsTextfileHasTheRun(t *testing.T) {
	e := newEnv(t, 30, nil)
	path := filepath.Join(t.TempDir(), "etl.prom")
	if r := e.runETL("--metrics-textfile", path); r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := string(b)
	delivered := e.scalar(`SELECT count(*) FROM ledger WHERE provider = 'datafeed' AND outcome = 'ok'`)
	for _, want := range []string{
		`etl_records_total{outcome="ok",partner="datafeed"} ` + strconv.FormatInt(delivered, 10),
		`etl_planned_total{kind="create",partner="q2open"}`,
		`etl_request_duration_seconds_bucket{partner="tokenization"`,
		`etl_breaker_state{partner="datafeed"} 0`,
		`etl_run_exit_code 0`,
		`etl_last_success_timestamp_seconds `,
		`etl_run_duration_seconds `,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, labels := range regexp.MustCompile(`\{[^}]*\}`).FindAllString(m, -1) {
		if regexp.MustCompile(`C0000\d+|\d{13,19}`).MatchString(labels) {
			t.Errorf("metric labels carry record keys or card numbers: %s", labels)
		}
	}
}

func TestVerifyFindsARecordDeletedAtThePartner(t *testing.T) {
	e := newEnv(t, 25, nil)
	if r := e.runETL(); r.code != 0 {
		t.Fatalf("exit %d", r.code)
	}
	out := filepath.Join(t.TempDir(), "drift.csv")
	r := e.run("verify", "--config", e.cfgPath, "--provider", "tokenization", "--out", out)
	if r.code != 0 || !strings.Contains(r.stdout, "missing at partner 0, extra at partner 0") {
		t.Fatalf("clean verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	sb := e.sb.Partners["tokenization"].(*tokenization.Sandbox)
	victim := sb.State().Clients[3]
	sb.Delete(victim.ID)
	r = e.run("verify", "--config", e.cfgPath, "--provider", "tokenization", "--out", out)
	if r.code != 3 || !strings.Contains(r.stdout, "missing at partner 1") {
		t.Fatalf("verify after a deletion: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	f, _ := os.Open(out)
	rows, _ := csv.NewReader(f).ReadAll()
	f.Close()
	if len(rows) != 2 || rows[1][1] != "missing_at_partner" || rows[1][3] != strconv.Itoa(victim.ID) {
		t.Fatalf("findings: %v (deleted client %d %s)", rows, victim.ID, victim.Name)
	}
	if r := e.run("verify", "--config", e.cfgPath, "--provider", "q2open"); r.code != 2 {
		t.Fatalf("verify of a partner without a list API: exit %d, want 2", r.code)
	}
}
