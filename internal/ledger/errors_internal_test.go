package ledger

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestDBErrorRedactsDataExceptionValues(t *testing.T) {
	cases := []struct {
		name, code, msg, want, leak string
	}{
		{"data exception quotes the value", "22P02", `invalid input syntax for type uuid: "4111111111111111"`, "invalid input syntax for type uuid (SQLSTATE 22P02)", "4111"},
		{"unique violation names only the constraint", "23505", `duplicate key value violates unique constraint "sync_state_pkey"`, `duplicate key value violates unique constraint "sync_state_pkey" (SQLSTATE 23505)`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig := &pgconn.PgError{Code: c.code, Message: c.msg, Detail: "Key (id)=(4111111111111111) already exists."}
			err := fmt.Errorf("ledger: write: %w", redactErr(orig))
			if got := err.Error(); got != "ledger: write: "+c.want || (c.leak != "" && strings.Contains(got, c.leak)) {
				t.Fatalf("Error() = %q; want %q", got, "ledger: write: "+c.want)
			}
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe != orig {
				t.Fatal("errors.As does not reach the original *pgconn.PgError")
			}
		})
	}
}
