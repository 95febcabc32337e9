package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/pgtest"
)

// BenchmarkWriterFlush writes batches of 2000 delivered entries (the
// writer's batch size) through the Writer on real PostgreSQL: the ledger
// COPY, the sync_state upsert and the settle update in one transaction.
func BenchmarkWriterFlush(b *testing.B) {
	const batch = 2000
	ctx := context.Background()
	store, err := ledger.Open(ctx, pgtest.NewDB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	runID, err := store.StartRun(ctx, ledger.RunInfo{Group: "bench", Source: "bench", Providers: []string{"datafeed"}, Version: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	w := store.NewWriter(runID, nil)
	defer w.Close()
	n := 0
	for b.Loop() {
		for k := 0; k < batch; k++ {
			n++
			id := fmt.Sprintf("C%07d", n)
			w.Add(ledger.Entry{Provider: "datafeed", EntityKey: "customer/" + id, CustomerID: id, Operation: "create",
				IdemKey: "0f8fad5b-d9cb-469f-a165-70867728950e", Hash: "9b74c9897bac770ffc029102a200c5de9b74c9897bac770ffc029102a200c5de",
				RequestID: "req-1", HTTPStatus: 200, Outcome: "ok", Attempts: 1, Latency: 3 * time.Millisecond, Deliver: true, Settle: true})
		}
		if err := w.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
}
