package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/pgtest"
)

// Intents are group-committed: many callers at once share commits, and
// each is durable, visible to another connection, when its Note returns.
func TestConcurrentNotesAreDurableWhenNoteReturnsAndSettleClosesThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	store, err := ledger.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	other, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	var otherMu sync.Mutex
	run, err := store.StartRun(ctx, ledger.RunInfo{Group: "g", Source: "csv:/x", Providers: []string{"clubready"}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}

	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("card/C%02d/1", i)
			if err := store.Note(ctx, run, "clubready", key, fmt.Sprintf("C%02d", i), "token-"+key); err != nil {
				errs <- err
				return
			}
			otherMu.Lock()
			defer otherMu.Unlock()
			var detail string
			if err := other.QueryRow(ctx, `SELECT intent_detail FROM ledger WHERE operation = 'intent' AND outcome = 'pending' AND entity_key = $1`, key).Scan(&detail); err != nil {
				errs <- fmt.Errorf("%s: Note returned but another connection cannot see its intent: %w", key, err)
			} else if detail != "token-"+key {
				errs <- fmt.Errorf("%s: detail %q", key, detail)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A second intent for one entity (a retry with a fresh token): the
	// latest is the one reported, and one settle closes both.
	if err := store.Note(ctx, run, "clubready", "card/C00/1", "C00", "token-retry"); err != nil {
		t.Fatal(err)
	}

	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("C%02d", i)
	}
	open, err := store.OpenIntents(ctx, "clubready", ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != n || open["card/C00/1"] != "token-retry" || open["card/C63/1"] != "token-card/C63/1" {
		t.Fatalf("open intents: %d, C00 %q, C63 %q; want %d, the retry's token, C63's", len(open), open["card/C00/1"], open["card/C63/1"], n)
	}

	w := store.NewWriter(run, func(err error) { t.Errorf("writer: %v", err) })
	for i := 0; i < n; i += 2 {
		w.Add(ledger.Entry{Provider: "clubready", EntityKey: fmt.Sprintf("card/C%02d/1", i), CustomerID: ids[i], Operation: "create",
			Outcome: "ok", Attempts: 1, Deliver: true, Settle: true})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	open, err = store.OpenIntents(ctx, "clubready", ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		_, isOpen := open[fmt.Sprintf("card/%s/1", id)]
		if isOpen != (i%2 == 1) {
			t.Errorf("%s: open = %v after settling the even ones", id, isOpen)
		}
	}
	var settled, withDetail int
	if err := other.QueryRow(ctx, `SELECT count(*) FILTER (WHERE outcome = 'settled'), count(*) FILTER (WHERE outcome = 'settled' AND intent_detail IS NOT NULL)
		FROM ledger WHERE operation = 'intent'`).Scan(&settled, &withDetail); err != nil {
		t.Fatal(err)
	}
	if settled != n/2+1 || withDetail != 0 {
		t.Errorf("settled intents %d (%d still holding a token); want %d, 0", settled, withDetail, n/2+1)
	}
}

func TestNoteAfterCloseFailsInsteadOfHanging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := ledger.Open(ctx, pgtest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	run, err := store.StartRun(ctx, ledger.RunInfo{Group: "g", Source: "csv:/x", Providers: []string{"clubready"}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	done := make(chan error, 1)
	go func() { done <- store.Note(ctx, run, "clubready", "card/C1/1", "C1", "tok") }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Note after Close returned nil")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Note after Close hangs")
	}
}
