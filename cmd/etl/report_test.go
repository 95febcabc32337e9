package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/pgtest"
)

// Card numbers a partner or a bad input row could echo into a stored
// message. The ledger writers should never store them; the reports are the
// second line of defence and must mask them anyway (as `etl rejects` does).
const (
	echoedPAN   = "4111111111111111"
	rejectedPAN = "4000056655665556"
)

// fixture is three runs written the way `etl run` writes them: run A on its
// own, runs B and C the two shards of one run group.
type fixture struct {
	url           string
	a, b, c       int64
	groupA, group string
}

type ledgerRow struct {
	run                         int64
	provider, entity, operation string
	outcome, code, message      string
	latency                     int
}

type rejectRow struct {
	run                            int64
	provider, file                 string
	line                           int
	entity, field, reason, message string
}

func seedLedger(t *testing.T) fixture {
	t.Helper()
	url := pgtest.NewDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	f := fixture{url: url, groupA: "nightly-2026-11-22", group: "nightly-2026-11-23"}

	run := func(group string, shard, shards int, status string, started time.Time, finished *time.Time, providers []string, c runCounts) int64 {
		t.Helper()
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var id int64
		err = conn.QueryRow(ctx, `INSERT INTO runs (run_group, shard_index, shard_count, status, source, providers, counts, version, host, pid, started_at, finished_at)
			VALUES ($1, $2, $3, $4, 'csv:/data/bank', $5, $6, 'test', 'batch-01', 4242, $7, $8) RETURNING id`,
			group, shard, shards, status, providers, string(b), started, finished).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	day1 := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	fin1 := day1.Add(3*time.Minute + 10*time.Second)
	f.a = run(f.groupA, 0, 1, "partial", day1, &fin1, []string{"clubready", "datafeed", "q2open", "synctera"}, runCounts{
		Customers: 4, Rejects: 3, Calls: 14, Seconds: 190,
		Partners: map[string]*load.Counts{
			"synctera":  {Create: 4, OK: 3, Rejected: 1, Calls: 4, Attempts: 4},
			"q2open":    {Create: 3, OK: 2, Failed: 1, Calls: 3, Attempts: 6},
			"clubready": {Create: 2, OK: 2, Calls: 2, Attempts: 2},
			"datafeed":  {Create: 1, Update: 1, Uncertain: 1, Failed: 1, Calls: 2, Attempts: 5},
		},
	})
	day2 := day1.Add(24 * time.Hour)
	fin2 := day2.Add(40 * time.Second)
	f.b = run(f.group, 0, 2, "ok", day2, &fin2, []string{"synctera"}, runCounts{Customers: 1, Rejects: 1, Calls: 1,
		Partners: map[string]*load.Counts{"synctera": {Create: 1, OK: 1, Calls: 1}}})
	f.c = run(f.group, 1, 2, "running", day2.Add(5*time.Second), nil, []string{"synctera"}, runCounts{})

	for _, l := range []ledgerRow{
		{f.a, "synctera", "customer/C001", "create", "ok", "", "", 40},
		{f.a, "synctera", "customer/C002", "create", "ok", "", "", 50},
		{f.a, "synctera", "customer/C003", "create", "ok", "", "", 60},
		{f.a, "synctera", "card/C003/K1", "create", "rejected", "invalid_expiration", "expiration_date: must be in the future", 45},
		{f.a, "q2open", "customer/C001", "create", "ok", "", "", 120},
		{f.a, "q2open", "customer/C002", "create", "ok", "", "", 130},
		{f.a, "q2open", "customer/C003", "create", "failed", "http_503", "service unavailable after 4 attempts", 900},
		{f.a, "clubready", "customer/C001", "create", "ok", "", "", 70},
		{f.a, "clubready", "customer/C002", "create", "ok", "", "", 80},
		// An intent is bookkeeping, not a delivery: it must not count as
		// clubready's outcome.
		{f.a, "clubready", "card/C002/K7", "intent", "pending", "", "", 0},
		{f.a, "datafeed", "customer/C004", "create", "uncertain", "timeout", "no response in 30s; lookup found nothing", 30000},
		{f.a, "datafeed", "customer/C001", "update", "failed", "http_500", echoedPAN, 210},
		{f.b, "synctera", "customer/C010", "create", "ok", "", "", 35},
		{f.c, "synctera", "customer/C011", "create", "ok", "", "", 36},
		{f.c, "synctera", "customer/C001", "update", "ok", "", "", 37},
	} {
		_, cust, _ := strings.Cut(l.entity, "/")
		cust, _, _ = strings.Cut(cust, "/")
		_, err := conn.Exec(ctx, `INSERT INTO ledger (run_id, provider, entity_key, customer_id, operation, outcome, attempts, latency_ms, error_code, error_message)
			VALUES ($1, $2, $3, $4, $5, $6, 1, $7, NULLIF($8, ''), NULLIF($9, ''))`,
			l.run, l.provider, l.entity, cust, l.operation, l.outcome, l.latency, l.code, l.message)
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []rejectRow{
		{f.a, "", "customers.csv", 7, "customer/C009", "email", "bad_email", "email is not an address"},
		{f.a, "", "cards.csv", 4, "card/C002/K9", "pan", "luhn_failed", "pan 411111******1112 fails the Luhn check (mistyped digit?)"},
		{f.a, "synctera", "cards.csv", 12, "card/C004/K2", "pan", "partner_mapping", rejectedPAN},
		{f.b, "", "customers.csv", 3, "customer/C012", "last_name", "missing_field", "last_name is required"},
	} {
		_, err := conn.Exec(ctx, `INSERT INTO rejects (run_id, provider, file, line, entity_key, field, reason, message)
			VALUES ($1, NULLIF($2, ''), $3, $4, $5, $6, $7, $8)`,
			r.run, r.provider, r.file, r.line, r.entity, r.field, r.reason, r.message)
		if err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func id(n int64) string { return fmt.Sprint(n) }

func TestStatus(t *testing.T) {
	t.Parallel()
	f := seedLedger(t)

	t.Run("table", func(t *testing.T) {
		r := etl(t, nil, "status", "--database-url", f.url)
		if r.code != exitOK {
			t.Fatal(r)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "RUN ") {
			t.Fatalf("want a header and 3 runs:\n%s", r)
		}
		// Newest first; the last four columns are customers, rejects,
		// calls and partners. The running run has no final counts: they
		// are counted from its two ledger rows (two customers).
		want := []struct {
			id, group, shard, status string
			tail                     []string
		}{
			{id(f.c), f.group, "1/2", "running", []string{"2", "0", "2", "synctera"}},
			{id(f.b), f.group, "0/2", "ok", []string{"1", "1", "1", "synctera"}},
			{id(f.a), f.groupA, "0/1", "partial", []string{"4", "3", "14", "clubready,datafeed,q2open,synctera"}},
		}
		for i, w := range want {
			fs := strings.Fields(lines[i+1])
			if len(fs) < 9 || fs[0] != w.id || fs[1] != w.group || fs[2] != w.shard || fs[3] != w.status ||
				strings.Join(fs[len(fs)-4:], " ") != strings.Join(w.tail, " ") {
				t.Errorf("row %d: want %+v, got %q", i, w, lines[i+1])
			}
		}
		if !strings.Contains(lines[3], "2026-11-22 02:00:00") || !strings.Contains(lines[3], "2026-11-22 02:03:10") {
			t.Errorf("run A's start and finish are not shown: %q", lines[3])
		}
	})

	t.Run("json with limit", func(t *testing.T) {
		r := etl(t, nil, "status", "--database-url", f.url, "--json", "-n", "2")
		if r.code != exitOK {
			t.Fatal(r)
		}
		var runs []ledger.Run
		if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil {
			t.Fatalf("%v:\n%s", err, r)
		}
		if len(runs) != 2 || runs[0].ID != f.c || runs[1].ID != f.b || runs[0].Finished != nil || runs[1].Finished == nil {
			t.Fatalf("want runs %d (running) and %d (finished), got %+v", f.c, f.b, runs)
		}
	})
}

func TestReport(t *testing.T) {
	t.Parallel()
	f := seedLedger(t)

	t.Run("text", func(t *testing.T) {
		r := etl(t, nil, "report", id(f.a), "--database-url", f.url)
		if r.code != exitOK {
			t.Fatal(r)
		}
		for _, re := range []string{
			fmt.Sprintf(`(?m)^run %d \(group %s, shard 0/1\): partial, 3m10s, source csv:/data/bank$`, f.a, f.groupA),
			`(?m)^  synctera\s+created 4, updated 0, unchanged 0, deactivated 0, partner-rejected 1, map-rejected 0, failed 0, uncertain 0, not sent 0, not sent: no update API 0$`,
			`(?m)^  datafeed\s+created 1, updated 1, .* failed 1, uncertain 1, not sent 0, not sent: no update API 0$`,
			`(?m)^\s+PARTNER\s+OPERATION\s+OUTCOME\s+COUNT\s+ATTEMPTS\s+AVG ms\s+P95 ms$`,
			`(?m)^\s+synctera\s+create\s+ok\s+3\s+3\s+50\.0\s+59\.0$`,
			`(?m)^\s+clubready\s+intent\s+pending\s+1\s`,
			`(?m)^top error reasons:$`,
			`(?m)^\s+q2open\s+http_503\s+1\s+e\.g\. service unavailable after 4 attempts$`,
			`(?m)^rejects by reason:$`,
			`(?m)^\s+\(all\)\s+bad_email\s+1\s+e\.g\. email is not an address$`,
			`(?m)^\s+synctera\s+partner_mapping\s+1\s`,
		} {
			if !regexp.MustCompile(re).MatchString(r.stdout) {
				t.Errorf("text report does not match %s:\n%s", re, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "(group "+f.group) {
			t.Errorf("report of run %d shows another group's runs:\n%s", f.a, r.stdout)
		}
	})

	t.Run("json for a run group", func(t *testing.T) {
		r := etl(t, nil, "report", f.group, "--format", "json", "--database-url", f.url)
		if r.code != exitOK {
			t.Fatal(r)
		}
		var rep Report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("%v:\n%s", err, r)
		}
		if len(rep.Runs) != 2 || rep.Runs[0].ID != f.b || rep.Runs[1].ID != f.c {
			t.Fatalf("want both shards %d and %d, got %+v", f.b, f.c, rep.Runs)
		}
		got := map[string]int64{}
		for _, o := range rep.Outcomes {
			got[o.Provider+"/"+o.Operation+"/"+o.Outcome] = o.Count
		}
		if want := map[string]int64{"synctera/create/ok": 2, "synctera/update/ok": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("outcomes: want %v, got %v", want, got)
		}
		if len(rep.Errors) != 0 || len(rep.Rejects) != 1 || rep.Rejects[0].Code != "missing_field" || rep.Rejects[0].Provider != "" {
			t.Errorf("errors %+v, rejects %+v: want none and one missing_field for every partner", rep.Errors, rep.Rejects)
		}
	})

	t.Run("html", func(t *testing.T) {
		r := etl(t, nil, "report", f.group, "--format", "html", "--database-url", f.url)
		if r.code != exitOK {
			t.Fatal(r)
		}
		for _, want := range []string{"<!doctype html>", "<title>etl run report " + f.group + "</title>",
			`<tr class="partner" data-partner="synctera">`, `<td class="n-ok">3</td>`, "</html>"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("html lacks %q:\n%s", want, r.stdout)
			}
		}
	})

	t.Run("unknown format", func(t *testing.T) {
		r := etl(t, nil, "report", id(f.a), "--format", "xml", "--database-url", f.url)
		if r.code != exitUsage || !strings.Contains(r.stderr, `"xml"`) || r.stdout != "" {
			t.Fatalf("want exit %d naming the format, got %s", exitUsage, r)
		}
	})

	t.Run("unknown run", func(t *testing.T) {
		for _, cmd := range []string{"report", "rejects"} {
			r := etl(t, nil, cmd, "999", "--database-url", f.url)
			if r.code == exitOK || !strings.Contains(r.stderr, `no run "999"`) || !strings.Contains(r.stderr, "etl status") {
				t.Errorf("etl %s 999: want a non-zero exit and `no run \"999\" ... see etl status`, got %s", cmd, r)
			}
			if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || r.stdout != "" {
				t.Errorf("etl %s 999: want one line on stderr and nothing on stdout, got %s", cmd, r)
			}
		}
	})
}

func TestRejectsCSV(t *testing.T) {
	t.Parallel()
	f := seedLedger(t)
	cases := []struct {
		ref  string
		want [][]string
	}{
		{id(f.a), [][]string{
			{"file", "line", "entity_key", "field", "reason", "partner", "message"},
			{"cards.csv", "4", "card/C002/K9", "pan", "luhn_failed", "", "pan 411111******1112 fails the Luhn check (mistyped digit?)"},
			{"cards.csv", "12", "card/C004/K2", "pan", "partner_mapping", "synctera", "400005******5556"},
			{"customers.csv", "7", "customer/C009", "email", "bad_email", "", "email is not an address"},
		}},
		{f.group, [][]string{
			{"file", "line", "entity_key", "field", "reason", "partner", "message"},
			{"customers.csv", "3", "customer/C012", "last_name", "missing_field", "", "last_name is required"},
		}},
	}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			r := etl(t, nil, "rejects", c.ref, "--database-url", f.url)
			if r.code != exitOK {
				t.Fatal(r)
			}
			got, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
			if err != nil {
				t.Fatalf("%v:\n%s", err, r)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.want) {
				t.Errorf("want\n%q\ngot\n%q", c.want, got)
			}
		})
	}
}

// Every report format masks card numbers that reached a stored message,
// as `etl rejects` does: the HTML is attached to sign-offs and the text
// and JSON land in tickets.
func TestReportMasksCardNumbers(t *testing.T) {
	t.Parallel()
	f := seedLedger(t)
	for _, format := range []string{"text", "json", "html"} {
		t.Run(format, func(t *testing.T) {
			r := etl(t, nil, "report", id(f.a), "--format", format, "--database-url", f.url)
			if r.code != exitOK {
				t.Fatal(r)
			}
			if pans := panLike(r.stdout); len(pans) > 0 {
				t.Errorf("%s report shows card numbers %q", format, pans)
			}
		})
	}
}

var panRun = regexp.MustCompile(`[0-9](?:[ -]?[0-9]){12,18}`)

// panLike finds 13-19 digit runs (spaces or dashes allowed between
// digits) that are not the fraction of a decimal number (bar widths such
// as 33.333333333333336%).
func panLike(s string) []string {
	var out []string
	for _, m := range panRun.FindAllStringIndex(s, -1) {
		if m[0] > 0 && (s[m[0]-1] == '.' || s[m[0]-1] >= '0' && s[m[0]-1] <= '9') {
			continue
		}
		if m[1] < len(s) && s[m[1]] >= '0' && s[m[1]] <= '9' {
			continue
		}
		out = append(out, s[m[0]:m[1]])
	}
	return out
}

func TestPanLike(t *testing.T) {
	cases := map[string]bool{
		echoedPAN:                   true,
		"4111 1111 1111 1111":       true,
		"card 4000-0566-5566-5556.": true,
		"411111******1111":          false,
		"width:33.333333333333336%": false,
		"2026-11-22 02:03:10":       false,
		"12345678901234567890":      false, // 20 digits: not a card number
	}
	for in, want := range cases {
		if got := len(panLike(in)) > 0; got != want {
			t.Errorf("panLike(%q) = %v, want %v", in, got, want)
		}
	}
}
