package ledger_test

import (
	"context"
	"testing"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/pgtest"
)

// TestRefusedCreatesCountGenerations: every refused create adds one to its
// entity's generation, within a batch and across batches, and the
// planner's lookup returns the generations of the customers it asks for
// next to their sync_state.
func TestRefusedCreatesCountGenerations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := ledger.FromPool(pgtest.NewPool(t))
	run, err := store.StartRun(ctx, ledger.RunInfo{Group: "g", Source: "csv:/x", Providers: []string{"p"}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	refuse := func(w *ledger.Writer, id string) {
		w.Add(ledger.Entry{Provider: "p", EntityKey: "customer/" + id, CustomerID: id, Operation: "create", Outcome: "rejected", HTTPStatus: 400, Refused: true})
	}
	w := store.NewWriter(run, func(err error) { t.Errorf("writer error: %v", err) })
	refuse(w, "C1")
	refuse(w, "C1") // same batch
	refuse(w, "C2")
	w.Add(ledger.Entry{Provider: "p", EntityKey: "customer/C3", CustomerID: "C3", Operation: "create", Outcome: "failed", HTTPStatus: 503})
	w.Add(ledger.Entry{Provider: "p", EntityKey: "customer/C4", CustomerID: "C4", Operation: "create", Hash: "h", Outcome: "ok", Deliver: true})
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	refuse(w, "C1") // a later batch
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, gens, err := store.LoadPlanState(ctx, []string{"C1", "C3", "C4"})
	if err != nil {
		t.Fatal(err)
	}
	if g := gens["p"]; len(g) != 1 || g["customer/C1"] != 3 {
		t.Errorf("generations %v, want customer/C1: 3 alone (C2 not asked for, C3 failed, C4 delivered)", gens)
	}
	if len(st["p"]) != 1 || st["p"]["customer/C4"].Hash != "h" {
		t.Errorf("sync_state %v, want C4 alone", st)
	}
}
