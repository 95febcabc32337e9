package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/providers/clubready"
	"github.com/northwind-data/etl/internal/sandbox/faults"
)

type listedIntent struct {
	Provider   string `json:"provider"`
	EntityKey  string `json:"entity_key"`
	CustomerID string `json:"customer_id"`
	Member     string `json:"member"`
	Last4      string `json:"last4"`
	RunID      int64  `json:"run_id"`
	State      string `json:"state"`
}

func (e *env) intents() (result, []listedIntent) {
	e.t.Helper()
	r := e.run("intents", "list", "--provider", "clubready", "--json")
	var out []listedIntent
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		e.t.Fatalf("intents list: exit %d: %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if m := regexp.MustCompile(`\b\d{13,19}\b`).FindString(r.stdout + r.stderr); m != "" {
		e.t.Fatalf("intents list shows a card number")
	}
	return r, out
}

// noneMissing: every card any run planned for ClubReady is in the
// checkpoint, and ClubReady holds each once (exactlyOnce).
func (e *env) noneMissing() {
	e.t.Helper()
	planned := e.scalar(`SELECT count(DISTINCT entity_key) FROM ledger WHERE provider = 'clubready' AND entity_key LIKE 'card/%'`)
	held := e.scalar(`SELECT count(*) FROM sync_state WHERE provider = 'clubready'`)
	if planned == 0 || planned != held {
		e.t.Fatalf("clubready: %d cards planned, %d in the checkpoint", planned, held)
	}
}

// Issue 17 row 4: ClubReady commits an import and a gateway answers 504,
// then ClubReady goes down until the retries give up. The op must stay
// uncertain with its intent open (not failed, which made the rerun vault
// a new token and import the card a second time); the rerun retries the
// same token and finds the profile.
func TestClubReady504AfterCommitThenOutageImportsEachCardOnce(t *testing.T) {
	e := newEnv(t, 40, nil)
	sb := e.sb.Partners["clubready"].(*clubready.Sandbox)
	inj := e.sb.Faults["clubready"]
	sb.FailAfterCommit(1, http.StatusGatewayTimeout, func() { inj.Set(faults.Config{Down: true}) })
	r := e.runETL()
	if r.code != 3 {
		t.Fatalf("run with a 504 after commit, then an outage: exit %d, want 3\n%s", r.code, r.stdout)
	}
	st := sb.State()
	// Workers run side by side: an import already on its way when the
	// outage began may have committed too. The one answered 504 is the
	// card whose intent stays open.
	if st.GatewayErrors != 1 || len(st.Profiles) < 1 {
		t.Fatalf("the fault did not fire as planned: %+v", st.Totals)
	}
	committed, last4 := "", ""
	for _, p := range st.Profiles {
		if e.scalar(`SELECT count(*) FROM ledger WHERE provider = 'clubready' AND entity_key = $1 AND operation = 'intent' AND outcome = 'pending'`, p.ExternalRef) > 0 {
			if committed != "" {
				t.Fatalf("two imported cards have open intents (%s, %s): only one answer was a 504", committed, p.ExternalRef)
			}
			committed, last4 = p.ExternalRef, p.Last4
		}
	}
	if committed == "" {
		t.Fatalf("no imported card kept its intent open after the 504: %+v", st.Profiles)
	}
	if n := e.scalar(`SELECT count(*) FROM ledger WHERE provider = 'clubready' AND entity_key = $1 AND operation = 'intent' AND outcome = 'pending'`, committed); n != 1 {
		t.Fatalf("%s: ClubReady has it, its answer was a 504: %d open intents, want 1 (the op must stay uncertain)", committed, n)
	}
	var last string
	if err := e.pool.QueryRow(t0ctx(), `SELECT outcome FROM ledger WHERE provider = 'clubready' AND entity_key = $1 AND operation <> 'intent' ORDER BY id DESC LIMIT 1`,
		committed).Scan(&last); err != nil || last != "uncertain" {
		t.Fatalf("%s: last outcome %q (%v), want uncertain", committed, last, err)
	}
	// The operator sees it waiting for the rerun, not for them.
	lr, open := e.intents()
	found := false
	for _, o := range open {
		if o.EntityKey == committed {
			found = o.State == "retrying" && o.Last4 == last4
		}
	}
	if lr.code != 3 || !found {
		t.Fatalf("intents list: exit %d, %+v", lr.code, open)
	}

	inj.Set(faults.Config{})
	e.rerunUntilDone(2)
	e.settled()
	e.noneMissing()
	if p := sb.State().Profile(committed); len(p) != 1 {
		t.Fatalf("%s imported %d times", committed, len(p))
	}
}

// Issue 17 row 10: a run killed mid-import, rerun after the tokens' five
// minutes: the cards whose fate is unknown are uncertain and every rerun
// would say so forever. The rerun exits 5 and names the command; the
// operator lists the intents, looks each card up at ClubReady and
// settles it; the next run exits 0 with nothing missing and nothing twice.
func TestClubReadyKilledRunPastTokenLifeIsSettledByAnOperator(t *testing.T) {
	e := newEnv(t, 80, map[string]faults.Config{"clubready": {Latency: 500 * time.Millisecond, Jitter: time.Second}})
	sb := e.sb.Partners["clubready"].(*clubready.Sandbox)
	inj := e.sb.Faults["clubready"]
	// Kill it at an import's commit (before its answer leaves: ClubReady
	// has that card, the ledger cannot know) while another card's intent
	// is durable and its import still waits in the injected latency
	// (ClubReady will never have it): both fates in one kill.
	c, _ := e.start()
	var mu sync.Mutex
	waiting, lastImports, killed := "", 0, false
	var waitingSince time.Time
	inj.AfterCommit(func() {
		mu.Lock()
		defer mu.Unlock()
		st := sb.State()
		imported := st.Imports > lastImports
		lastImports = st.Imports
		// The waiting import must be far from the end of its latency.
		if !killed && imported && waiting != "" && len(st.Profile(waiting)) == 0 && time.Since(waitingSince) < 400*time.Millisecond {
			killed = true
			_ = c.Process.Signal(syscall.SIGKILL)
			time.Sleep(50 * time.Millisecond)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		mu.Lock()
		done := killed
		mu.Unlock()
		if done || c.ProcessState != nil {
			break
		}
		if sb.State().Imports < 2 {
			continue
		}
		rows, err := e.pool.Query(t0ctx(), `SELECT entity_key FROM ledger WHERE provider = 'clubready' AND operation = 'intent' AND outcome = 'pending' ORDER BY id DESC`)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for rows.Next() {
			var k string
			_ = rows.Scan(&k)
			keys = append(keys, k)
		}
		rows.Close()
		st := sb.State()
		for _, k := range keys {
			if len(st.Profile(k)) == 0 {
				mu.Lock()
				if waiting != k {
					waiting, waitingSince = k, time.Now()
				}
				mu.Unlock()
				break
			}
		}
	}
	_ = c.Wait()
	inj.AfterCommit(nil)
	if c.ProcessState.ExitCode() == 0 || !killed {
		t.Fatal("the run was not killed")
	}
	inj.Set(faults.Config{})
	sb.Advance(6 * time.Minute) // past every noted token's life

	r := e.runETL()
	if r.code != 5 || !strings.Contains(r.stdout, "NEED AN OPERATOR") || !strings.Contains(r.stdout, "etl intents list --provider clubready") ||
		!strings.Contains(r.stderr, "etl intents settle") {
		t.Fatalf("rerun past the tokens' life: exit %d, want 5 naming the command\n%s\n%s", r.code, r.stdout, tail(r.stderr, 2000))
	}
	// Rerunning does not help: the same cards, the same exit.
	if r := e.runETL(); r.code != 5 {
		t.Fatalf("second rerun: exit %d, want 5", r.code)
	}
	lr, open := e.intents()
	if lr.code != 5 || len(open) == 0 {
		t.Fatalf("intents list: exit %d, %d open", lr.code, len(open))
	}
	delivered, resent := 0, 0
	for _, o := range open {
		if o.State != "needs-operator" || o.Last4 == "" || o.Member == "" || o.CustomerID == "" || o.RunID == 0 ||
			!strings.HasPrefix(o.EntityKey, "card/"+o.CustomerID+"/") {
			t.Fatalf("listed intent %+v", o)
		}
		// The operator's look-up at ClubReady: the member's profiles by
		// the last four (the sandbox also knows the entity key).
		args := []string{"intents", "settle", "--entity", o.EntityKey, "--by", "e2e.operator"}
		if p := sb.State().Profile(o.EntityKey); len(p) == 1 {
			if p[0].Last4 != o.Last4 || strconv.Itoa(p[0].Owner) != o.Member {
				t.Fatalf("%s: ClubReady has last four %s on member %d, the list says %s on %s", o.EntityKey, p[0].Last4, p[0].Owner, o.Last4, o.Member)
			}
			args = append(args, "--as", "delivered", "--remote-id", strconv.Itoa(p[0].ID), "--reason", "profile "+strconv.Itoa(p[0].ID)+" ending "+o.Last4)
			delivered++
		} else if len(p) == 0 {
			args = append(args, "--as", "resend", "--reason", "no profile ending "+o.Last4+" on member "+o.Member)
			resent++
		} else {
			t.Fatalf("%s is at ClubReady %d times already", o.EntityKey, len(p))
		}
		if r := e.run(args...); r.code != 0 || !strings.Contains(r.stdout, "settled clubready "+o.EntityKey) {
			t.Fatalf("settle %s: exit %d\n%s%s", o.EntityKey, r.code, r.stdout, r.stderr)
		}
	}
	t.Logf("%d intents left by the killed run: %d were at ClubReady (settled delivered), %d were not (settled resend)", len(open), delivered, resent)
	if resent == 0 || delivered == 0 {
		t.Fatal("the kill did not leave cards of both fates: the test proves less than it says")
	}
	if n := e.scalar(`SELECT count(*) FROM intent_settlements WHERE settled_by = 'e2e.operator' AND reason <> ''`); n != int64(len(open)) {
		t.Fatalf("%d settlements recorded, want %d", n, len(open))
	}
	if lr, open := e.intents(); lr.code != 0 || len(open) != 0 {
		t.Fatalf("after settling: exit %d, %d open", lr.code, len(open))
	}

	r = e.runETL()
	if r.code != 0 {
		t.Fatalf("run after settling: exit %d\n%s", r.code, r.stdout)
	}
	e.settled()
	e.noneMissing()
}
