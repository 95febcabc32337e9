package ledger_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestMigrateFromEmpty(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.EmptyDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if n, err := ledger.Pending(ctx, pool); err != nil || n == 0 {
		t.Fatalf("empty database: pending = %d, %v; want > 0", n, err)
	}
	applied, err := ledger.Migrate(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) == 0 {
		t.Fatal("no migration applied to an empty database")
	}
	for _, table := range []string{"runs", "ledger", "sync_state", "rejects", "run_seen", "schema_migrations"} {
		var ok bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil || !ok {
			t.Errorf("table %s missing after migrate (%v)", table, err)
		}
	}
	again, err := ledger.Migrate(ctx, pool)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %v, %v; want nothing", again, err)
	}
	if n, _ := ledger.Pending(ctx, pool); n != 0 {
		t.Fatalf("pending after migrate = %d", n)
	}
}

func TestWriterCommitsLedgerStateAndRejectsTogether(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := ledger.FromPool(pgtest.NewPool(t))
	run, err := store.StartRun(ctx, ledger.RunInfo{Group: "g", Source: "csv:/x", Providers: []string{"p"}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	w := store.NewWriter(run, func(err error) { t.Errorf("writer error: %v", err) })
	const n = 4500 // more than one flush batch
	for i := 0; i < n; i++ {
		id := "C" + strconv.Itoa(i)
		w.Add(ledger.Entry{Provider: "p", EntityKey: "customer/" + id, CustomerID: id, Operation: "create", Hash: "h1",
			RemoteID: "r" + strconv.Itoa(i), RequestID: "req", Outcome: "ok", Attempts: 1, Deliver: true})
		w.Seen(id)
	}
	// A later entry for the same key in the same batch wins.
	w.Add(ledger.Entry{Provider: "p", EntityKey: "customer/C1", CustomerID: "C1", Operation: "update", Hash: "h2", Outcome: "ok", Deliver: true})
	w.Reject(ledger.RejectRow{File: "customers.csv", Line: 7, EntityKey: "customer/X", Field: "email", Reason: "bad_email", Message: "not an e-mail"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var rows, states, rejects int
	pool := store.Pool()
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM ledger WHERE run_id = $1`, run).Scan(&rows)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM sync_state`).Scan(&states)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM rejects WHERE run_id = $1`, run).Scan(&rejects)
	if rows != n+1 || states != n || rejects != 1 {
		t.Fatalf("ledger rows %d (want %d), sync_state %d (want %d), rejects %d (want 1)", rows, n+1, states, n, rejects)
	}
	st, err := store.LoadState(ctx, []string{"C1", "C2"})
	if err != nil {
		t.Fatal(err)
	}
	if got := st["p"]["customer/C1"]; got.Hash != "h2" || got.RemoteID != "r1" {
		t.Fatalf("C1 state = %+v; want hash h2 and the remote id kept", got)
	}
	if len(st["p"]) != 2 {
		t.Fatalf("LoadState returned %d entities for 2 customers", len(st["p"]))
	}
}

func TestOpenFailsFastWithOneClearLine(t *testing.T) {
	_, err := ledger.Open(context.Background(), "postgres://nobody:secretpw@127.0.0.1:1/none?connect_timeout=2")
	if err == nil {
		t.Fatal("expected an error for an unreachable database")
	}
	msg := err.Error()
	if !strings.Contains(msg, "cannot reach database 127.0.0.1:1/none") || strings.Contains(msg, "secretpw") {
		t.Fatalf("error = %q: want the host named and no password", msg)
	}
}
