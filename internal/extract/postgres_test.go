package extract_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/northwind-data/etl/internal/extract"
	"github.com/northwind-data/etl/internal/gen"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/pgtest"
	"github.com/northwind-data/etl/internal/transform"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type collected struct {
	customers map[string]string // id -> JSON without origins
	rejects   []string          // key|field|reason
	stats     extract.Stats
}

type reader interface {
	Read(context.Context, func(*model.Customer) error, func(model.Reject) error) (extract.Stats, error)
}

func collect(t *testing.T, r reader) collected {
	t.Helper()
	c := collected{customers: map[string]string{}}
	st, err := r.Read(context.Background(), func(cu *model.Customer) error {
		cu.Origin = model.Origin{}
		for i := range cu.Accounts {
			for j := range cu.Accounts[i].Cards {
				cu.Accounts[i].Cards[j].Origin = model.Origin{}
			}
		}
		b, _ := json.Marshal(cu)
		c.customers[cu.ID] = string(b)
		return nil
	}, func(rj model.Reject) error {
		c.rejects = append(c.rejects, rj.EntityKey+"|"+rj.Field+"|"+rj.Reason)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(c.rejects)
	c.stats = st
	return c
}

func TestPostgresSourceMatchesCSV(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"sample-data", func(*testing.T) string { return "../../sample-data" }},
		{"generated", func(t *testing.T) string {
			d := t.TempDir()
			if _, err := gen.Write(d, gen.Options{Customers: 700, CardsPerCustomer: 1.6, BadFraction: 0.05, Seed: 9, Sorted: false}); err != nil {
				t.Fatal(err)
			}
			return d
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
			v := transform.NewValidator([]byte("k-0123456789abcdef"), now)
			csvSrc, err := extract.OpenCSV(dir, extract.Options{Validator: v})
			if err != nil {
				t.Fatal(err)
			}
			want := collect(t, csvSrc)

			url, _ := pgtest.BankTables(t, dir)
			pg, err := extract.OpenPostgres(context.Background(), extract.PostgresOptions{Options: extract.Options{Validator: v},
				URL: url, Customers: "bank.customers", Cards: "SELECT * FROM bank.cards", PageSize: 37})
			if err != nil {
				t.Fatal(err)
			}
			defer pg.Close()
			got := collect(t, pg)

			if len(want.customers) == 0 || len(got.customers) != len(want.customers) {
				t.Fatalf("postgres emitted %d customers, csv %d", len(got.customers), len(want.customers))
			}
			dups := map[string]bool{}
			for _, r := range want.rejects {
				if strings.HasSuffix(r, "|duplicate_key") {
					dups[strings.SplitN(strings.TrimPrefix(r, "customer/"), "|", 2)[0]] = true
				}
			}
			for id, w := range want.customers {
				// Which of two rows with one customer_id wins is by line
				// in a file and by row content in a table.
				if dups[id] {
					continue
				}
				if got.customers[id] != w {
					t.Fatalf("customer %s differs:\npg  %s\ncsv %s", id, got.customers[id], w)
				}
			}
			if strings.Join(got.rejects, "\n") != strings.Join(want.rejects, "\n") {
				t.Fatalf("rejects differ:\npg:\n%s\ncsv:\n%s", strings.Join(got.rejects, "\n"), strings.Join(want.rejects, "\n"))
			}
			for i, f := range got.stats.Files {
				if f.Rows != f.Accepted+f.Rejected || f.Rows != want.stats.Files[i].Rows {
					t.Fatalf("accounting: pg %+v csv %+v", f, want.stats.Files[i])
				}
			}
		})
	}
}

func TestPostgresSourceNamesMissingColumns(t *testing.T) {
	url := pgtest.NewDB(t)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	_, _ = conn.Exec(context.Background(), "CREATE TABLE c (customer_id text, first_name text); CREATE TABLE k (card_id text, customer_id text)")
	v := transform.NewValidator([]byte("k-0123456789abcdef"), time.Now())
	_, err = extract.OpenPostgres(context.Background(), extract.PostgresOptions{Options: extract.Options{Validator: v}, URL: url, Customers: "c", Cards: "k"})
	if err == nil || !strings.Contains(err.Error(), "c lacks required columns: last_name, email") {
		t.Fatalf("err = %v", err)
	}
	_, err = extract.OpenPostgres(context.Background(), extract.PostgresOptions{Options: extract.Options{Validator: v}, URL: url, Customers: "nope", Cards: "k"})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err = %v", err)
	}
}

// pgRead reads the bank.customers / bank.cards tables of url.
func pgRead(t *testing.T, url string, fp *extract.FastPath) result {
	t.Helper()
	v := transform.NewValidator([]byte("test-key"), now)
	pg, err := extract.OpenPostgres(context.Background(), extract.PostgresOptions{Options: extract.Options{Validator: v, FastPath: fp},
		URL: url, Customers: "bank.customers", Cards: "bank.cards", PageSize: 53})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	var res result
	res.stats, err = pg.Read(context.Background(),
		func(c *model.Customer) error { res.customers = append(res.customers, c); return nil },
		func(r model.Reject) error { res.rejects = append(res.rejects, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The Postgres source takes the nightly fast path too: with nothing to
// skip it reads what it reads without it; skipped customers are not
// emitted but still counted; only customers without rejects carry a
// fingerprint, the one they were asked about.
func TestPostgresFastPath(t *testing.T) {
	dir := t.TempDir()
	if _, err := gen.Write(dir, gen.Options{Customers: 400, CardsPerCustomer: 1.7, BadFraction: 0.2, Seed: 4, Sorted: false, Now: now}); err != nil {
		t.Fatal(err)
	}
	url, _ := pgtest.BankTables(t, dir)
	plain := pgRead(t, url, nil)
	var a asker
	fast := pgRead(t, url, a.fastPath())
	if a.calls == 0 {
		t.Fatal("the Postgres source did not take the fast path")
	}
	sameRead(t, plain, fast)
	if !slices.IsSorted(a.ids) || len(slices.Compact(slices.Clone(a.ids))) != len(a.ids) {
		t.Error("Unchanged was not asked in strictly ascending id order")
	}
	rejected := checkFingerprints(t, fast, a.sums)

	// As the ledger would answer: a customer with rejects never has a
	// recorded fingerprint, so it is never skipped.
	skip := asker{skip: func(id string) bool { return !rejected[id] && id[len(id)-1] != '7' }}
	some := pgRead(t, url, skip.fastPath())
	want := 0
	for _, c := range plain.customers {
		if !skip.skip(c.ID) {
			want++
		}
	}
	for _, c := range some.customers {
		if skip.skip(c.ID) {
			t.Errorf("%s was skipped but emitted", c.ID)
		}
	}
	if len(some.customers) != want || want == len(plain.customers) {
		t.Errorf("emitted %d customers, want %d of %d", len(some.customers), want, len(plain.customers))
	}
	if fmt.Sprint(plain.stats) != fmt.Sprint(some.stats) {
		t.Errorf("stats with skips: plain %+v, fast %+v", plain.stats, some.stats)
	}
}

// A customer's fingerprint follows its rows in the tables, the CVV
// excepted; other customers' stay.
func TestPostgresFingerprintCoversTheRowsButNotTheCVV(t *testing.T) {
	dir := t.TempDir()
	if _, err := gen.Write(dir, gen.Options{Customers: 30, CardsPerCustomer: 1.5, Seed: 8, Sorted: true, Now: now}); err != nil {
		t.Fatal(err)
	}
	url, conn := pgtest.BankTables(t, dir)
	sums := func() map[string][]byte {
		var a asker
		pgRead(t, url, a.fastPath())
		return a.sums
	}
	var id, other string
	if err := conn.QueryRow(context.Background(), `SELECT min(customer_id), max(customer_id) FROM bank.cards`).Scan(&id, &other); err != nil {
		t.Fatal(err)
	}
	orig := sums()
	if orig[id] == nil || orig[other] == nil {
		t.Fatalf("%s or %s was not fingerprinted", id, other)
	}
	for _, c := range []struct {
		name, sql string
		changed   bool
	}{
		{"nothing", `SELECT 1`, false},
		{"cvv", `UPDATE bank.cards SET cvv = '999' WHERE customer_id = $1`, false},
		{"email", `UPDATE bank.customers SET email = 'x' || email WHERE customer_id = $1`, true},
		{"expiry", `UPDATE bank.cards SET exp_year = '2039' WHERE customer_id = $1`, true},
		{"card gone", `DELETE FROM bank.cards WHERE customer_id = $1`, true},
	} {
		args := []any{id}
		if c.sql == `SELECT 1` {
			args = nil
		}
		if _, err := conn.Exec(context.Background(), c.sql, args...); err != nil {
			t.Fatal(err)
		}
		got := sums()
		if !bytes.Equal(got[other], orig[other]) {
			t.Errorf("%s: %s's fingerprint changed with %s's rows", c.name, other, id)
		}
		if changed := !bytes.Equal(got[id], orig[id]); changed != c.changed {
			t.Errorf("%s: fingerprint changed = %v, want %v", c.name, changed, c.changed)
		}
		orig = got
	}
}
