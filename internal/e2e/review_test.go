package e2e

import (
	"path/filepath"
	"testing"

	"github.com/northwind-data/etl/internal/providers/synctera"
)

// dropCustomers removes the customers in ids (and their cards) from the
// CSV input, as a source export that no longer carries them.
func dropCustomers(t *testing.T, dir string, ids map[string]bool) {
	t.Helper()
	for _, f := range []string{"customers.csv", "cards.csv"} {
		path := filepath.Join(dir, f)
		rows := readCSV(t, path)
		k := col(t, rows[0], "customer_id")
		out := rows[:1]
		for _, r := range rows[1:] {
			if !ids[r[k]] {
				out = append(out, r)
			}
		}
		writeCSV(t, path, out)
	}
}

// TestReview_UncertainCreateOfVanishedCustomerIsNeverDeactivated: a
// Synctera create lands but its answer is lost (the intent stays open, no
// sync_state row), then the customer leaves the source. The next run
// plans nothing for it (the planner only sees customers in the source)
// and Vanished only lists active sync_state rows, so the customer stays
// ACTIVE at Synctera for good, while the run exits 0 and the intent stays
// open forever.
func TestReview_UncertainCreateOfVanishedCustomerIsNeverDeactivated(t *testing.T) {
	e := newEnv(t, 40, nil)
	loseAnswers(t, e)
	sb := e.sb.Partners[synctera.Name].(*synctera.Sandbox)

	// Customers Synctera holds whose outcome the ledger lost.
	rows := readCSV(t, filepath.Join(e.input, "customers.csv"))
	k, em := col(t, rows[0], "customer_id"), col(t, rows[0], "email")
	byEmail := map[string]string{}
	for _, r := range rows[1:] {
		byEmail[r[em]] = r[k]
	}
	gone := map[string]bool{}
	emails := map[string]bool{}
	for _, c := range sb.State().Customers {
		id := byEmail[c.Email]
		if id == "" || c.Status != "ACTIVE" {
			continue
		}
		if e.scalar(`SELECT count(*) FROM sync_state WHERE provider = 'synctera' AND entity_key = $1`, synctera.CustomerKey(id)) == 0 && len(gone) < 3 {
			gone[id], emails[c.Email] = true, true
		}
	}
	if len(gone) == 0 {
		t.Fatal("no create landed with its outcome lost: the test proves nothing")
	}
	dropCustomers(t, e.input, gone)

	r := e.runETL("--providers", synctera.Name)
	t.Logf("rerun after %d customers with uncertain creates left the source: exit %d", len(gone), r.code)
	for _, c := range sb.State().Customers {
		if emails[c.Email] && c.Status == "ACTIVE" {
			t.Errorf("customer %s left the source but is still ACTIVE at Synctera (its create was uncertain, so nothing deactivates it)", c.ID)
		}
	}
	if n := e.scalar(`SELECT count(*) FROM ledger WHERE provider = 'synctera' AND operation = 'intent' AND outcome = 'pending' AND customer_id = ANY($1)`, keys(gone)); n > 0 && r.code == 0 {
		t.Errorf("%d intents of vanished customers are still open and the run exited 0: nobody is told", n)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
