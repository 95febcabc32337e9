package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/pgtest"
	"github.com/northwind-data/etl/internal/sandbox/faults"
)

// Canary card numbers (valid Luhn test numbers) and security codes. The
// last PAN fails Luhn on purpose so it travels the reject path.
var (
	canaryPANs = []string{"4000056655665556", "5200828282828210", "378282246310005", "6011000990139424", "4000056655665557"}
	canaryCVVs = []string{"7319", "8642", "9753", "6420", "5318"}
)

func canaryPattern() *regexp.Regexp {
	var alts []string
	for _, p := range canaryPANs {
		// the PAN as digits, and with any spaces or dashes between digits
		var b strings.Builder
		for i, d := range p {
			if i > 0 {
				b.WriteString(`[ -]?`)
			}
			b.WriteRune(d)
		}
		alts = append(alts, b.String())
	}
	for _, c := range canaryCVVs {
		alts = append(alts, `(?:^|[^0-9A-Za-z-])`+c+`(?:[^0-9A-Za-z-]|$)`)
	}
	return regexp.MustCompile(strings.Join(alts, "|"))
}

func writeCanaryInput(t *testing.T, dir string) {
	t.Helper()
	var cu, ca strings.Builder
	cu.WriteString("customer_id,organization_id,first_name,last_name,email,phone,date_of_birth,address_line1,city,state,postal_code,country,status,created_at,member_id\n")
	ca.WriteString("card_id,customer_id,account_id,pan,cvv,exp_month,exp_year,card_type,name_on_card,billing_zip,network_id,is_default\n")
	for i := 0; i < 30; i++ {
		id := fmt.Sprintf("K%04d", i)
		email := id + "@example.com"
		if i == 3 {
			email = "not-an-email"
		}
		fmt.Fprintf(&cu, "%s,50004,Canary,Holder%d,%s,512-555-01%02d,1980-02-29,%d Main St,Austin,TX,78753,US,ACTIVE,2020-01-01,%d\n", id, i, email, i, i+1, 1000+i)
		pan := canaryPANs[i%len(canaryPANs)]
		if i%3 == 0 {
			pan = pan[:4] + " " + pan[4:8] + "-" + pan[8:] // formatted as exports often are
		}
		exp := 2031
		if i == 7 {
			exp = 2019 // expired: a reject
		}
		fmt.Fprintf(&ca, "%s-1,%s,A%s,%s,%s,12,%d,credit,Canary Holder,78753,3,true\n", id, id, id, pan, canaryCVVs[i%len(canaryCVVs)], exp)
	}
	fmt.Fprintf(&ca, "X-1,NOPE,AX,%s,%s,12,2031,credit,Nobody,78753,3,true\n", canaryPANs[0], canaryCVVs[0]) // unknown customer
	if err := os.WriteFile(filepath.Join(dir, "customers.csv"), []byte(cu.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cards.csv"), []byte(ca.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCanaryCardDataLeavesNoTrace(t *testing.T) {
	flaky := faults.Config{Seed: 3, ErrorRate: 0.2, Latency: 2 * time.Millisecond}
	fc := map[string]faults.Config{}
	for _, n := range partners.Names() {
		fc[n] = flaky
	}
	e := newEnv(t, 0, fc)
	writeCanaryInput(t, e.input)
	tmp := t.TempDir()
	e.envv = append(e.envv, "TMPDIR="+tmp)

	// A crash mid-run, then reruns at debug level until done.
	c, _ := e.start("-v")
	time.Sleep(300 * time.Millisecond)
	kill(c)
	var r result
	for i := 0; i < 4; i++ {
		if r = e.runETL("-v"); r.code == 0 {
			break
		}
	}
	if r.code != 0 {
		t.Fatalf("canary run never completed: exit %d\n%s", r.code, r.stdout)
	}
	if e.scalar(`SELECT count(*) FROM rejects`) == 0 {
		t.Fatal("the canary input must produce rejects")
	}
	// A dry run at debug level too: its bodies and rejects.csv are under
	// tmp, which the scan reads.
	dry := filepath.Join(tmp, "dry")
	if r := e.runETL("-v", "--dry-run", "--dry-run-out", dry); r.code != 0 {
		t.Fatalf("canary dry run: exit %d\n%s", r.code, r.stdout)
	}
	if _, err := os.Stat(filepath.Join(dry, "rejects.csv")); err != nil {
		t.Fatalf("the dry run wrote no rejects.csv to scan: %v", err)
	}
	// The scan below covers every kind of debug line: each must be there.
	logs := e.logs.String()
	for _, msg := range []string{"batch flushed", "checkpoint committed", "partner call retried"} {
		if !strings.Contains(logs, `"msg":"`+msg+`"`) {
			t.Errorf("no %q debug line in the -v logs: the scan does not cover it", msg)
		}
	}

	var out bytes.Buffer
	out.WriteString(e.logs.String())
	for _, args := range [][]string{{"rejects", "1"}, {"rejects", "2"}, {"report", "1"}, {"report", "2", "--format", "json"}, {"report", "2", "--format", "html"}, {"status"}} {
		rr := e.run(args...)
		out.WriteString(rr.stdout + rr.stderr)
	}
	bin, err := pgtest.FindBin()
	if err != nil {
		t.Fatal(err)
	}
	dump, err := exec.Command(filepath.Join(bin, "pg_dump"), "--no-owner", "-d", e.db).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if !bytes.Contains(dump, []byte("COPY public.ledger")) {
		t.Fatal("pg_dump output does not hold the ledger: the scan would prove nothing")
	}
	out.Write(dump)
	_ = filepath.Walk(tmp, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(p)
			out.Write(b)
		}
		return nil
	})
	for _, sp := range partners.All() {
		out.WriteString(fmt.Sprint(e.state(sp.Name)))
	}
	if hits := canaryPattern().FindAllString(out.String(), 5); len(hits) > 0 {
		t.Fatalf("card data found in the run's traces: %q", hits)
	}
	// The scan can fail: the canaries are in the input.
	in, _ := os.ReadFile(filepath.Join(e.input, "cards.csv"))
	if !canaryPattern().Match(in) {
		t.Fatal("canary pattern does not match the input: the scan is blind")
	}
}
