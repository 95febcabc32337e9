package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/pgtest"
)

// agreeFixture is a ledger written the way `etl run` writes it, with the
// rows the reports used to get wrong: a finished run whose ClubReady
// updates were not sent (no update API) and whose Synctera creates were
// resolved from an earlier run; a crashed run that wrote ledger rows but
// no counts; and a run whose counts an earlier release stored under Go
// field names.
type agreeFixture struct {
	url                string
	done, crashed, old int64
}

func seedAgreement(t *testing.T) agreeFixture {
	t.Helper()
	url := pgtest.NewDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	day := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	run := func(status string, counts any, providers []string) int64 {
		t.Helper()
		raw := "{}" // what a run that never finished has
		switch c := counts.(type) {
		case nil:
		case string:
			raw = c
		default:
			b, _ := json.Marshal(c)
			raw = string(b)
		}
		var fin *time.Time
		if status != "running" {
			f := day.Add(time.Minute)
			fin = &f
		}
		var id int64
		if err := conn.QueryRow(ctx, `INSERT INTO runs (run_group, shard_index, shard_count, status, source, providers, counts, version, host, pid, started_at, finished_at)
			VALUES ('g-'||$1, 0, 1, $1, 'csv:/data/bank', $2, $3, 'test', 'batch-01', 1, $4, $5) RETURNING id`,
			status, providers, raw, day, fin).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	f := agreeFixture{url: url}
	f.done = run("ok", runCounts{Customers: 5, Rejects: 2, MapRejects: 1, Calls: 2, Partners: map[string]*load.Counts{
		"clubready": {Update: 3, NoUpdateAPI: 3},
		"synctera":  {Resolve: 2, OK: 2, Calls: 2, Attempts: 2, MapRejected: 1},
	}}, []string{"clubready", "synctera"})
	f.crashed = run("crashed", nil, []string{"synctera"})
	f.old = run("ok", `{"Files":[{"File":"customers.csv","Rows":5,"Accepted":4,"Rejected":1}],"Customers":4,"Rejects":1,"Calls":1,
		"Partners":{"synctera":{"Create":1,"MapRejected":1,"OK":1,"NotSent":0,"Calls":1,"Attempts":1,"ErrorCodes":{"x":1}}}}`, []string{"synctera"})

	type row struct {
		run                         int64
		provider, entity, operation string
		outcome, requestID          string
		attempts, latency           int
	}
	rows := []row{
		{f.done, "clubready", "card/C1/K1", "update", "ok", partner.RequestNotSentNoUpdateAPI, 0, 0},
		{f.done, "clubready", "card/C2/K1", "update", "ok", partner.RequestNotSentNoUpdateAPI, 0, 0},
		{f.done, "clubready", "card/C3/K1", "update", "ok", partner.RequestNotSentNoUpdateAPI, 0, 0},
		{f.done, "synctera", "customer/C4", "create", "ok", "", 1, 40},
		{f.done, "synctera", "customer/C5", "create", "ok", "", 1, 60},
		{f.old, "synctera", "customer/C6", "create", "ok", "", 1, 10},
	}
	for i := 0; i < 1200; i++ { // a crashed run that wrote thousands of rows
		outcome := "ok"
		if i%100 == 0 {
			outcome = "failed"
		}
		rows = append(rows, row{f.crashed, "synctera", fmt.Sprintf("customer/X%04d", i), "create", outcome, "", 1, 30})
	}
	for _, r := range rows {
		_, cust, _ := strings.Cut(r.entity, "/")
		cust, _, _ = strings.Cut(cust, "/")
		if _, err := conn.Exec(ctx, `INSERT INTO ledger (run_id, provider, entity_key, customer_id, operation, outcome, request_id, attempts, latency_ms)
			VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8, $9)`, r.run, r.provider, r.entity, cust, r.operation, r.outcome, r.requestID, r.attempts, r.latency); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []struct {
		run      int64
		provider string
	}{{f.done, ""}, {f.done, ""}, {f.done, "synctera"}, {f.crashed, ""}, {f.crashed, "synctera"}} {
		if _, err := conn.Exec(ctx, `INSERT INTO rejects (run_id, provider, file, line, entity_key, field, reason, message)
			VALUES ($1, NULLIF($2, ''), 'customers.csv', 2, 'customer/C9', 'email', 'bad_email', 'email is not an address')`, r.run, r.provider); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func TestReportsAgreeWithTheLedger(t *testing.T) {
	t.Parallel()
	f := seedAgreement(t)

	t.Run("status counts an unfinished run from its ledger", func(t *testing.T) {
		r := etl(t, nil, "status", "--database-url", f.url)
		if r.code != exitOK {
			t.Fatal(r)
		}
		var line string
		for _, l := range strings.Split(r.stdout, "\n") {
			if fs := strings.Fields(l); len(fs) > 0 && fs[0] == id(f.crashed) {
				line = l
			}
		}
		// 1200 customers with a ledger row, 2 rejects (1 validation, 1
		// mapping), 1200 records sent.
		if fs := strings.Fields(line); len(fs) < 4 || strings.Join(fs[len(fs)-4:], " ") != "1200 2 1200 synctera" {
			t.Errorf("crashed run %d: want customers 1200, rejects 2, calls 1200 from the ledger, got %q\n%s", f.crashed, line, r)
		}
		if !strings.Contains(r.stderr, "counted from their ledger rows") {
			t.Errorf("status does not say which counts come from the ledger:\n%s", r)
		}
		// The finished run: rejects are validation plus mapping, what
		// `etl rejects` writes.
		for _, l := range strings.Split(r.stdout, "\n") {
			if fs := strings.Fields(l); len(fs) > 4 && fs[0] == id(f.done) && strings.Join(fs[len(fs)-4:], " ") != "5 3 2 clubready,synctera" {
				t.Errorf("finished run: %q, want 5 customers, 3 rejects, 2 calls", l)
			}
		}
	})

	t.Run("status json", func(t *testing.T) {
		r := etl(t, nil, "status", "--database-url", f.url, "--json")
		if r.code != exitOK {
			t.Fatal(r)
		}
		assertSnakeKeys(t, r.stdout)
		var runs []struct {
			ID         int64     `json:"id"`
			CountsFrom string    `json:"counts_from"`
			Counts     runCounts `json:"counts"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil {
			t.Fatal(err)
		}
		for _, run := range runs {
			switch run.ID {
			case f.crashed:
				if run.CountsFrom != "ledger" || run.Counts.Partners["synctera"].Failed != 12 || run.Counts.Partners["synctera"].OK != 1188 {
					t.Errorf("crashed run: %+v", run)
				}
			case f.old:
				if run.CountsFrom != "run" || len(run.Counts.Files) != 1 || run.Counts.Files[0].File != "customers.csv" || run.Counts.Partners["synctera"].MapRejected != 1 {
					t.Errorf("legacy counts read as %+v", run)
				}
				if !strings.Contains(r.stdout, `"map_rejected":1`) || !strings.Contains(r.stdout, `"error_codes":{"x":1}`) {
					t.Errorf("legacy counts not printed with the report's keys:\n%s", r.stdout)
				}
			}
		}
	})

	t.Run("text report", func(t *testing.T) {
		r := etl(t, nil, "report", id(f.done), "--database-url", f.url)
		if r.code != exitOK {
			t.Fatal(r)
		}
		for _, re := range []string{
			`(?m)^  synctera\s+created 2 \(2 resolved from an earlier run\), updated 0,`,
			`(?m)^  clubready\s+created 0, updated 3, .* not sent: no update API 3$`,
			`(?m)^\s+clubready\s+update\s+not-sent-no-update-api\s+3\s+0\s`,
			`(?m)^  rejects 3: 2 input rows refused by validation \+ 1 records refused by a partner's mapping`,
			`(?m)^latency by partner and operation`,
			`(?m)^\s+synctera\s+create\s+2\s+50\.0\s+59\.0$`,
		} {
			if !regexp.MustCompile(re).MatchString(r.stdout) {
				t.Errorf("text report does not match %s:\n%s", re, r.stdout)
			}
		}
		if regexp.MustCompile(`(?m)^\s+clubready\s+update\s+ok\s`).MatchString(r.stdout) {
			t.Errorf("unsent ClubReady updates shown as ok:\n%s", r.stdout)
		}
		if regexp.MustCompile(`(?m)^\s+clubready\s+update\s+\d+\s`).MatchString(r.stdout) {
			t.Errorf("unsent ClubReady updates shown with a latency, as calls:\n%s", r.stdout)
		}
	})

	t.Run("json report", func(t *testing.T) {
		r := etl(t, nil, "report", id(f.done), "--format", "json", "--database-url", f.url)
		if r.code != exitOK {
			t.Fatal(r)
		}
		assertSnakeKeys(t, r.stdout)
		for _, k := range []string{`"not_sent_no_update_api": 3`, `"latencies": [`, `"map_rejects": 1`, `"counts_from": "run"`} {
			if !strings.Contains(r.stdout, k) {
				t.Errorf("json report lacks %s:\n%s", k, r.stdout)
			}
		}
	})

	t.Run("html report", func(t *testing.T) {
		r := etl(t, nil, "report", id(f.done), "--format", "html", "--database-url", f.url)
		if r.code != exitOK {
			t.Fatal(r)
		}
		for _, want := range []string{`<table id="latencies">`, `<tr data-partner="synctera" data-operation="create">`, `<td class="avg">50.0</td><td class="p95">59.0</td>`,
			`<tr class="partner" data-partner="clubready">`} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("html lacks %q", want)
			}
		}
		if !regexp.MustCompile(`data-partner="clubready">(?s:.*?)<td class="n-ok">0</td>.*?<td class="n-notsent">3</td>`).MatchString(r.stdout) {
			t.Errorf("html shows clubready's unsent updates as ok:\n%s", r.stdout)
		}
	})
}

var jsonKey = regexp.MustCompile(`"([^"]+)"\s*:`)

// assertSnakeKeys fails on any JSON key that is not snake_case (Go field
// names such as "File" or "OK" leaking into the output). Values of maps
// keyed by data (partner names, error codes) are lower case too.
func assertSnakeKeys(t *testing.T, out string) {
	t.Helper()
	for _, m := range jsonKey.FindAllStringSubmatch(out, -1) {
		if !regexp.MustCompile(`^[a-z0-9_]+$`).MatchString(m[1]) {
			t.Errorf("JSON key %q is not snake_case", m[1])
		}
	}
}
