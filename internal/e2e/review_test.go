package e2e

import (
	"path/filepath"
	"testing"

	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/partners"

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
func TestReview_UncertainCreateOfVanishedCustomerGoesToAnOperator(t *testing.T) {
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
		if e.scalar(`SELECT count(*) FROM sync_state WHERE provider = 'synctera' AND entity_key = $1`, string(partner.CustomerKey(id))) == 0 && len(gone) < 3 {
			gone[id], emails[c.Email] = true, true
		}
	}
	if len(gone) == 0 {
		t.Fatal("no create landed with its outcome lost: the test proves nothing")
	}
	dropCustomers(t, e.input, gone)

	// Synctera cannot look a customer up by our key alone, and the record
	// left the source: the run says an operator is needed (exit 5) and
	// keeps the intents open; nobody is left untold.
	r := e.runETL("--providers", synctera.Name)
	if r.code != 5 {
		t.Fatalf("rerun after %d customers with uncertain creates left the source: exit %d, want 5 (needs an operator)\n%s", len(gone), r.code, r.stdout)
	}
	if n := e.scalar(`SELECT count(*) FROM ledger WHERE provider = 'synctera' AND operation = 'intent' AND outcome = 'pending' AND customer_id = ANY($1)`, keys(gone)); n != int64(len(gone)) {
		t.Fatalf("%d of %d intents of vanished customers are open: each must wait for the operator", n, len(gone))
	}
	// The operator finds each at Synctera and settles it with its id; the
	// next run switches them off as vanished.
	for _, c := range sb.State().Customers {
		if !emails[c.Email] {
			continue
		}
		r := e.run("intents", "settle", "--provider", synctera.Name, "--entity", string(partner.CustomerKey(byEmail[c.Email])), "--as", "delivered",
			"--remote-id", c.ID, "--by", "review", "--reason", "found at Synctera by e-mail")
		if r.code != 0 {
			t.Fatalf("settle: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	if r := e.runETL("--providers", synctera.Name); r.code != 0 {
		t.Fatalf("run after the operator settled: exit %d\n%s", r.code, r.stdout)
	}
	for _, c := range sb.State().Customers {
		if emails[c.Email] && c.Status == "ACTIVE" {
			t.Errorf("customer %s left the source and was settled by the operator, but is still ACTIVE at Synctera", c.ID)
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// landedWithoutOutcome returns customer id -> Synctera customer id for
// creates Synctera holds whose outcome the ledger lost.
func landedWithoutOutcome(t *testing.T, e *env) map[string]string {
	t.Helper()
	sb := e.sb.Partners[synctera.Name].(*synctera.Sandbox)
	rows := readCSV(t, filepath.Join(e.input, "customers.csv"))
	k, em := col(t, rows[0], "customer_id"), col(t, rows[0], "email")
	byEmail := map[string]string{}
	for _, r := range rows[1:] {
		byEmail[r[em]] = r[k]
	}
	out := map[string]string{}
	for _, c := range sb.State().Customers {
		id := byEmail[c.Email]
		if id != "" && e.scalar(`SELECT count(*) FROM sync_state WHERE provider = 'synctera' AND entity_key = $1`, string(partner.CustomerKey(id))) == 0 {
			out[id] = c.ID
		}
	}
	return out
}

// TestReview_SettledDeliveredWithoutRemoteIDCreatesTwice: an operator
// finds a lost Synctera create at the partner and settles its intent as
// delivered, without --remote-id (the flag is optional and documented for
// ClubReady). sync_state then holds the entity active with no remote id;
// the next run that sends it (--full-resync here, any content change
// otherwise) plans an update with an empty RemoteID, and the Synctera
// client, finding no id, POSTs a create under the update's key: a second
// customer.
func TestReview_SettledDeliveredWithoutRemoteIDCreatesTwice(t *testing.T) {
	sp, _ := partners.Get(synctera.Name)
	e := newEnv(t, 40, nil)
	loseAnswers(t, e)
	sb := e.sb.Partners[synctera.Name].(*synctera.Sandbox)
	landed := landedWithoutOutcome(t, e)
	if len(landed) == 0 {
		t.Fatal("no create landed with its outcome lost: the test proves nothing")
	}
	for id, remote := range landed {
		r := e.run("intents", "settle", "--provider", synctera.Name, "--entity", string(partner.CustomerKey(id)), "--as", "delivered",
			"--by", "review", "--reason", "found customer "+remote+" at Synctera")
		if r.code != 0 {
			t.Fatalf("settle %s: exit %d\n%s%s", id, r.code, r.stdout, r.stderr)
		}
		break // one is enough
	}
	r := e.runETL("--providers", synctera.Name, "--full-resync")
	t.Logf("full resync after one settle: exit %d", r.code)
	got, dups := sp.Count(sb)
	if dups != 0 {
		t.Errorf("Synctera holds %d customers (%d duplicates) after a settle as delivered and a full resync", got, dups)
	}
}
