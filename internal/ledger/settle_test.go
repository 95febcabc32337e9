package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/pgtest"
)

// TestSettleIntent is issue 17 row 10's operator path: an intent no rerun
// can settle is listed with what an operator needs, refused while a run
// is marked running, and settled as delivered (sync_state, no resend) or
// resend (closed, nothing in sync_state), with who and why recorded.
func TestSettleIntent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDB(t)
	store, err := ledger.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	info := ledger.RunInfo{Group: "g", Source: "csv:/x", Providers: []string{"clubready"}, Version: "test"}
	run, err := store.StartRun(ctx, info)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"card/C1/K1", "card/C2/K1", "card/C3/K1"} {
		cust := k[5:7]
		if err := store.Note(ctx, run, "clubready", k, cust, `{"token":"t-`+k+`","last4":"1111"}`); err != nil {
			t.Fatal(err)
		}
	}
	// C1's call ended uncertain in this run (C2 and C3: the run died
	// before their calls ended).
	w := store.NewWriter(run, func(err error) { t.Error(err) })
	w.Add(ledger.Entry{Provider: "clubready", EntityKey: "card/C1/K1", CustomerID: "C1", Operation: "create", Hash: "h-c1",
		Outcome: "uncertain", ErrCode: "needs_operator"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	open, err := store.ListOpenIntents(ctx, "clubready")
	if err != nil || len(open) != 3 {
		t.Fatalf("open intents %+v, %v", open, err)
	}
	if o := open[0]; o.EntityKey != "card/C1/K1" || o.CustomerID != "C1" || o.RunID != run || o.RunStatus != "running" || o.Open != 1 ||
		o.LastOutcome != "uncertain" || o.LastCode != "needs_operator" || o.Detail == "" || o.Age < 0 {
		t.Fatalf("first %+v", o)
	}
	if o := open[1]; o.LastOutcome != "" || o.LastRunID != 0 {
		t.Fatalf("second %+v", o)
	}

	settle := func(key, as string, force bool) (ledger.Settled, error) {
		return store.SettleIntent(ctx, ledger.Settlement{Provider: "clubready", EntityKey: key, As: as, By: "ana", Reason: "checked ClubReady", Force: force})
	}
	var re *ledger.RunningError
	if _, err := settle("card/C1/K1", ledger.SettledDelivered, false); !errors.As(err, &re) || re.RunID != run {
		t.Fatalf("settle while the run is marked running: %v", err)
	}
	if err := store.FinishRun(ctx, run, "partial", nil); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []ledger.Settlement{
		{Provider: "clubready", EntityKey: "card/C1/K1", As: "maybe", By: "ana", Reason: "x"},
		{Provider: "clubready", EntityKey: "card/C1/K1", As: ledger.SettledDelivered, By: " ", Reason: "x"},
		{Provider: "clubready", EntityKey: "card/C1/K1", As: ledger.SettledDelivered, By: "ana"},
		{Provider: "clubready", EntityKey: "card/C1/K1", As: ledger.SettledResend, By: "ana", Reason: "x", RemoteID: "7"},
	} {
		if _, err := store.SettleIntent(ctx, bad); err == nil {
			t.Errorf("%+v settled", bad)
		}
	}

	if s, err := settle("card/C1/K1", ledger.SettledDelivered, false); err != nil || s.Intents != 1 || s.CustomerID != "C1" {
		t.Fatalf("delivered: %+v %v", s, err)
	}
	if s, err := settle("card/C2/K1", ledger.SettledResend, false); err != nil || s.Intents != 1 {
		t.Fatalf("resend: %+v %v", s, err)
	}
	if _, err := settle("card/C2/K1", ledger.SettledResend, false); !errors.Is(err, ledger.ErrNoOpenIntent) {
		t.Fatalf("settled twice: %v", err)
	}
	if _, err := store.SettleIntent(ctx, ledger.Settlement{Provider: "clubready", EntityKey: "card/C3/K1", As: ledger.SettledDelivered,
		By: "ana", Reason: "profile 42 ending 1111", RemoteID: "42"}); err != nil {
		t.Fatal(err)
	}

	// The checkpoint: C1 delivered with its call's hash, C3 with the
	// placeholder (no call recorded one) and the id found, C2 absent.
	st, err := store.LoadState(ctx, []string{"C1", "C2", "C3"})
	if err != nil {
		t.Fatal(err)
	}
	c1, c3 := st["clubready"]["card/C1/K1"], st["clubready"]["card/C3/K1"]
	if _, ok := st["clubready"]["card/C2/K1"]; ok || c1.Hash != "h-c1" || !c1.Active || c3.Hash == "" || c3.Hash == "h-c1" || c3.RemoteID != "42" {
		t.Fatalf("sync_state %+v", st)
	}
	if has, err := store.HasOpenIntents(ctx, "clubready"); err != nil || has {
		t.Fatalf("open intents left: %v %v", has, err)
	}
	var details, linked int
	if err := store.Pool().QueryRow(ctx, `SELECT count(intent_detail), count(settlement_id) FROM ledger WHERE operation = 'intent'`).Scan(&details, &linked); err != nil {
		t.Fatal(err)
	}
	if details != 0 || linked != 3 {
		t.Fatalf("intent rows: %d details kept, %d linked to a settlement", details, linked)
	}
	rec, err := store.Settlements(ctx, "clubready", 10)
	if err != nil || len(rec) != 3 || rec[2].EntityKey != "card/C1/K1" || rec[2].As != "delivered" || rec[2].By != "ana" ||
		rec[2].Reason != "checked ClubReady" || rec[1].As != "resend" || rec[0].RemoteID != "42" || rec[0].IntentRunID != run {
		t.Fatalf("settlements %+v, %v", rec, err)
	}
}
