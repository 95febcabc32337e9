package extract_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

// loadCSV copies a CSV file into a table of text columns named as its
// header: the shape of a bank's landing zone.
func loadCSV(t *testing.T, conn *pgx.Conn, table, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.TrimPrefix(string(b), "\ufeff"))
	header := strings.SplitN(strings.SplitN(string(b), "\n", 2)[0], ",", -1)
	var cols []string
	for _, h := range header {
		cols = append(cols, pgx.Identifier{strings.TrimSpace(h)}.Sanitize()+" text")
	}
	ctx := context.Background()
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", table, strings.Join(cols, ", "))); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(string(b)), fmt.Sprintf("COPY %s FROM STDIN WITH (FORMAT csv, HEADER true)", table)); err != nil {
		t.Fatal(err)
	}
}

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

			url := pgtest.NewDB(t)
			conn, err := pgx.Connect(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(context.Background(), "CREATE SCHEMA bank"); err != nil {
				t.Fatal(err)
			}
			loadCSV(t, conn, "bank.customers", filepath.Join(dir, "customers.csv"))
			loadCSV(t, conn, "bank.cards", filepath.Join(dir, "cards.csv"))
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
