package ledger_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/pgtest"
)

// A caller decides on the SQLSTATE (a missing database is an operator's
// fix, not a retry), so redaction must keep the driver's error reachable.
func TestOpenErrorKeepsThePgErrorAndDropsThePassword(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(pgtest.URLWithDB(pgtest.NewDB(t), "no_such_db"))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "secretpw")
	_, err = ledger.Open(context.Background(), u.String())
	if err == nil {
		t.Fatal("Open of a missing database succeeded")
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "3D000" {
		t.Fatalf("errors.As(%v, *pgconn.PgError) = %v, code %v; want the driver's 3D000", err, pe != nil, pe)
	}
	var de *ledger.DBError
	if !errors.As(err, &de) {
		t.Fatalf("error %v is not a *ledger.DBError", err)
	}
	if msg := err.Error(); strings.Contains(msg, "secretpw") || !strings.Contains(msg, "SQLSTATE 3D000") {
		t.Fatalf("message %q: want the SQLSTATE and no password", msg)
	}
}

func TestOpenParseErrorKeepsItsTypeAndDropsTheURL(t *testing.T) {
	t.Parallel()
	_, err := ledger.Open(context.Background(), "postgres://etl:secretpw@localhost:notaport/db")
	if err == nil {
		t.Fatal("Open of a malformed URL succeeded")
	}
	var pce *pgconn.ParseConfigError
	if !errors.As(err, &pce) {
		t.Fatalf("errors.As(%v, *pgconn.ParseConfigError) = false", err)
	}
	if msg := err.Error(); strings.Contains(msg, "secretpw") || strings.Contains(msg, "notaport") || !strings.Contains(msg, "not valid") {
		t.Fatalf("message %q: want the reason and no connection string", msg)
	}
}
