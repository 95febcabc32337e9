package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// LoadCSV copies a CSV file into a new table of text columns named as its
// header: the shape of a bank's landing zone, for the Postgres source.
func LoadCSV(t testing.TB, conn *pgx.Conn, table, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.TrimPrefix(string(b), "\ufeff"))
	header := strings.Split(strings.SplitN(string(b), "\n", 2)[0], ",")
	cols := make([]string, len(header))
	for i, h := range header {
		cols[i] = pgx.Identifier{strings.TrimSpace(h)}.Sanitize() + " text"
	}
	ctx := context.Background()
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (%s)", table, strings.Join(cols, ", "))); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.PgConn().CopyFrom(ctx, strings.NewReader(string(b)), fmt.Sprintf("COPY %s FROM STDIN WITH (FORMAT csv, HEADER true)", table)); err != nil {
		t.Fatal(err)
	}
}

// BankTables creates a fresh database holding the CSV export in dir as the
// tables bank.customers and bank.cards, and returns its URL and an open
// connection (closed when the test ends) for the test's own changes.
func BankTables(t testing.TB, dir string) (string, *pgx.Conn) {
	t.Helper()
	url := NewDB(t)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(context.Background(), "CREATE SCHEMA bank"); err != nil {
		t.Fatal(err)
	}
	LoadCSV(t, conn, "bank.customers", filepath.Join(dir, "customers.csv"))
	LoadCSV(t, conn, "bank.cards", filepath.Join(dir, "cards.csv"))
	return url, conn
}
