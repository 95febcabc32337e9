package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/providers/q2open"
	"github.com/northwind-data/etl/internal/sandbox/faults"
)

// Q2 dedups clients by identifier but keeps a card sent twice as a second
// payment method. Runs killed right after Q2 committed (before the answer
// left), answers lost after the commit, then reruns, on a first load and
// on an update that closes and reopens cards: no client may end up with
// two payment methods for one card, and the ledger must hold exactly the
// paymentMethodIds Q2 holds.
func TestQ2KillsAndLostAnswersLeaveNoDuplicatePaymentMethod(t *testing.T) {
	e := newEnv(t, 120, nil)
	inj := e.sb.Faults[q2open.Name]
	sb := e.sb.Partners[q2open.Name].(*q2open.Sandbox)

	killedRuns := func(points []int) {
		t.Helper()
		for i, after := range points {
			inj.Set(faults.Config{Seed: uint64(31 + i), DropRate: 0.05})
			if code := e.killedAfterCommits(inj, after, "--providers", q2open.Name); code == 0 {
				t.Fatalf("run %d was not killed after %d commits", i, after)
			}
		}
	}
	finish := func() {
		t.Helper()
		// Lost answers go on while the reruns settle what the kills left.
		inj.Set(faults.Config{Seed: 77, DropRate: 0.05})
		var r result
		for i := 0; i < 6; i++ {
			if r = e.runETL("--providers", q2open.Name); r.code == 0 {
				break
			}
		}
		if r.code != 0 {
			t.Fatalf("q2open still not done: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 2000))
		}
		inj.Set(faults.Config{})
	}
	check := func(stage string) {
		t.Helper()
		st := sb.State()
		if st.Totals.DuplicatePaymentMethods != 0 || st.Totals.DuplicateAdds != 0 || st.Totals.DuplicateClients != 0 {
			t.Fatalf("%s: Q2 holds duplicates: %+v", stage, st.Totals)
		}
		// The ledger and Q2 agree, card by card.
		held := 0
		for _, c := range st.Clients {
			for _, m := range c.Cards {
				held++
				key := "card/" + c.Identifier + "/" + m.Identifier
				if n := e.scalar(`SELECT count(*) FROM sync_state WHERE provider = 'q2open' AND entity_key = $1 AND active AND remote_id = $2`, key, m.PaymentMethodID); n != 1 {
					t.Errorf("%s: Q2 holds %s as %s, the ledger does not", stage, key, m.PaymentMethodID)
				}
			}
		}
		if n := e.scalar(`SELECT count(*) FROM sync_state WHERE provider = 'q2open' AND entity_key LIKE 'card/%' AND active`); n != int64(held) {
			t.Errorf("%s: the ledger holds %d active cards, Q2 %d payment methods", stage, n, held)
		}
		t.Logf("%s: %d clients, %d payment methods, totals %+v, uncertain outcomes %d", stage, len(st.Clients), held, st.Totals,
			e.scalar(`SELECT count(*) FROM ledger WHERE provider = 'q2open' AND outcome = 'uncertain'`))
	}

	killedRuns([]int{2, 9, 25, 60})
	finish()
	check("first load")
	added := sb.State().Totals.PaymentMethodsAdded
	if added == 0 {
		t.Fatal("nothing reached Q2: the test proves nothing")
	}

	// Close every fifth open card and reopen every closed one: the update
	// deletes and adds payment methods, under kills again.
	path := filepath.Join(e.input, "cards.csv")
	rows := readCSV(t, path)
	status, id := col(t, rows[0], "card_status"), col(t, rows[0], "card_id")
	var closed []string
	reopened, n := 0, 0
	for _, r := range rows[1:] {
		switch {
		case strings.EqualFold(r[status], "CLOSED"):
			r[status] = "OPEN"
			reopened++
		default:
			if n++; n%5 == 0 {
				r[status] = "CLOSED"
				closed = append(closed, r[id])
			}
		}
	}
	writeCSV(t, path, rows)
	killedRuns([]int{3, 20})
	finish()
	check("after the update")
	st := sb.State()
	for _, c := range st.Clients {
		for _, m := range c.Cards {
			for _, k := range closed {
				if m.Identifier == k {
					t.Errorf("card %s closed at the bank is still a payment method at Q2", k)
				}
			}
		}
	}
	if st.Totals.PaymentMethodsDeleted == 0 {
		t.Fatal("no payment method was deleted: the update proves nothing")
	}
	if n := e.scalar(`SELECT count(*) FROM ledger WHERE provider = 'q2open' AND request_id = $1`, q2open.RequestNoUpdateAPI); n == 0 {
		t.Error("no update recorded its client data as not sent")
	}
	t.Logf("closed %d cards, reopened %d", len(closed), reopened)
}
