package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/pgtest"
)

// The cursor reads one scope's fingerprints in id order across several
// keyset pages, and holds no transaction open while the run digests what
// it has read.
func TestFingerprintCursorPagesInOrderWithoutALongTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := ledger.FromPool(pgtest.NewPool(t))
	run, err := store.StartRun(ctx, ledger.RunInfo{Group: "g", Source: "csv:/x", Providers: []string{"datafeed"}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 30000 // scope A holds 20000: five pages
	w := store.NewWriter(run, func(err error) { t.Errorf("writer: %v", err) })
	id := func(i int) string { return fmt.Sprintf("C%06d", i) }
	inA := func(i int) bool { return i%3 != 0 }
	for i := n - 1; i >= 0; i-- { // written out of order: the cursor sorts
		scope := "B"
		if inA(i) {
			scope = "A"
		}
		w.Fingerprint(scope, ledger.Fingerprint{CustomerID: id(i), Sum: []byte{byte(i), byte(i >> 8)}, Entities: []int{i % 7}})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	c := store.Fingerprints(ctx, "A")
	defer c.Close()
	if _, _, err := c.Seek(ctx, id(1)); err != nil {
		t.Fatal(err)
	}
	// The reader has run ahead as far as its buffer allows and waits for
	// the run; no session of this database may sit in a transaction.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var open int
		if err := store.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still in a transaction while the cursor waits", open)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 1; i < n; i++ {
		f, ok, err := c.Seek(ctx, id(i))
		if err != nil {
			t.Fatal(err)
		}
		if ok != inA(i) {
			t.Fatalf("%s: found = %v; want %v", id(i), ok, inA(i))
		}
		if ok && (f.Sum[0] != byte(i) || f.Sum[1] != byte(i>>8) || len(f.Entities) != 1 || f.Entities[0] != i%7) {
			t.Fatalf("%s: got %v %v", id(i), f.Sum, f.Entities)
		}
	}
	if _, _, err := c.Seek(ctx, id(5)); err == nil {
		t.Fatal("Seek out of order: no error")
	}
}
