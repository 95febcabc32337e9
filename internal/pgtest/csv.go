package pgtest

import (
	"context"
	"fmt"
	"os"
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
