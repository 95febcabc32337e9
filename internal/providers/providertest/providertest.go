// Package providertest is the conformance suite every partner package
// passes against its own sandbox, in the spirit of golang-migrate's driver
// suite: the same questions asked of every partner, through the same
// partner.Provider contract the engine uses.
//
// A partner's conformance_test.go calls Run with its registered name. The
// suite builds the partner's client and sandbox from the partner registry
// (internal/partners), puts fault middleware between them, and checks:
//
//   - one Result per op, in order, each naming its op's entity key;
//   - 401 and 403 are fatal; other 4xx (400, 422) are rejected; 5xx and 429
//     are retried and, when they pass, end ok with no duplicate;
//   - a partner that stays down leaves the op failed or uncertain, never ok
//     or rejected;
//   - an answer lost after the partner committed is replayed harmlessly or
//     reported uncertain, and the rerun (Send again, or Resolve where the
//     partner journals) leaves exactly one copy at the partner, under the
//     partner's published semantics (the sandbox keeps what the real
//     partner would keep);
//   - concurrent Send calls (the engine runs several workers per partner)
//     deliver each entity once;
//   - Deactivate, where implemented, answers ok and can be repeated;
//   - no PAN or CVV appears in any error or result.
//
// The suite never sleeps for timing: faults are counted, not timed, and the
// clients' back-off is configured to a millisecond.
package providertest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/partners"
)

// hmacKey is the suite's content-hash and idempotency key.
var hmacKey = []byte("providertest-hmac-key-0123456789abcdef")

// Run runs every conformance check against the named partner.
func Run(t *testing.T, name string) {
	t.Helper()
	sp, ok := partners.Get(name)
	if !ok {
		t.Fatalf("partner %q is not registered", name)
	}
	s := &suite{sp: sp}
	t.Run("ResultsInOrder", s.resultsInOrder)
	t.Run("AuthRefusedIsFatal", s.authFatal)
	t.Run("OtherClientErrorsAreRejected", s.rejected)
	t.Run("TransientErrorsAreRetried", s.transient)
	t.Run("OutageIsNotDelivered", s.outage)
	t.Run("LostAnswerCreatesNoDuplicate", s.lostAnswer)
	t.Run("ConcurrentSend", s.concurrent)
	t.Run("Deactivate", s.deactivate)
}

type suite struct {
	sp partners.Spec
}

// env is one sandbox behind fault middleware, and a client pointed at it.
type env struct {
	t       *testing.T
	sp      partners.Spec
	sandbox http.Handler
	mw      *middleware
	client  partner.Provider
	journal *journal
	errs    *errLog
}

type envOpts struct {
	wrongCredentials bool
	attempts         int
}

func (s *suite) newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	sb := s.sp.Sandbox(s.sp.DemoCredentials)
	mw := &middleware{next: sb}
	srv := httptest.NewServer(mw)
	t.Cleanup(srv.Close)
	base := srv.URL + s.sp.BasePath
	p := config.Partner{BaseURL: base, Credentials: map[string]config.Secret{}, Options: map[string]string{}}
	for k, v := range s.sp.DemoCredentials {
		if o.wrongCredentials {
			// Same length and alphabet, so a secret that must decode
			// (base64) still does: the partner, not our config check,
			// must refuse it.
			v = strings.Repeat("A", len(v))
		}
		p.Credentials[k] = config.Secret{Value: v}
	}
	for k, v := range s.sp.DemoOptions {
		p.Options[k] = strings.ReplaceAll(v, "{base}", srv.URL)
	}
	h := partners.HTTPConfig(p)
	h.BackoffBase, h.BackoffMax = time.Millisecond, 2*time.Millisecond
	h.Timeout = 10 * time.Second
	h.MaxAttempts = 4
	if o.attempts > 0 {
		h.MaxAttempts = o.attempts
	}
	c, err := s.sp.Build(p, h)
	if err != nil {
		t.Fatalf("build %s client: %v", s.sp.Name, err)
	}
	return &env{t: t, sp: s.sp, sandbox: sb, mw: mw, client: c, journal: &journal{notes: map[partner.Key]string{}}, errs: &errLog{}}
}

// ops maps customers 0..n-1 (offset by base) and plans them as creates.
func (e *env) ops(base, n int) []partner.Op {
	e.t.Helper()
	var out []partner.Op
	for i := base; i < base+n; i++ {
		ops, rejects := e.client.Map(Customer(i))
		if len(rejects) > 0 {
			e.t.Fatalf("%s: Map(customer %d) rejected: %+v", e.sp.Name, i, rejects)
		}
		if len(ops) == 0 {
			e.t.Fatalf("%s: Map(customer %d) gave no op", e.sp.Name, i)
		}
		for _, op := range ops {
			out = append(out, Plan(e.t, e.sp.Name, op, partner.Create, ""))
		}
	}
	return out
}

// Plan fills what the engine's planner fills for an op of kind.
func Plan(t testing.TB, name string, it partner.Item, kind partner.Kind, remoteID string) partner.Op {
	t.Helper()
	op := partner.NewOp(it)
	h, err := load.ContentHash(hmacKey, op.Payload)
	if err != nil {
		t.Fatal(err)
	}
	op.Kind, op.Hash, op.RemoteID = kind, h, remoteID
	op.IdemKey = load.IdempotencyKey(hmacKey, name, kind, op.EntityKey, h)
	if kind == partner.Create {
		op.IdemKey = load.CreateKey(hmacKey, name, op.EntityKey, 0)
	}
	return op
}

// send delivers ops in batches of the partner's MaxBatch and checks the
// contract's shape: one result per op, in order.
func (e *env) send(ops []partner.Op) []partner.Result {
	e.t.Helper()
	var out []partner.Result
	max := e.client.MaxBatch()
	if max <= 0 {
		e.t.Fatalf("%s: MaxBatch %d", e.sp.Name, max)
	}
	for len(ops) > 0 {
		n := min(max, len(ops))
		batch := ops[:n]
		ops = ops[n:]
		rs := e.client.Send(context.Background(), batch, e.journal)
		e.checkShape(batch, rs)
		out = append(out, rs...)
	}
	return out
}

func (e *env) checkShape(ops []partner.Op, rs []partner.Result) {
	e.t.Helper()
	if len(rs) != len(ops) {
		e.t.Fatalf("%s: Send of %d ops returned %d results", e.sp.Name, len(ops), len(rs))
	}
	for i := range ops {
		if rs[i].EntityKey != ops[i].EntityKey {
			e.t.Fatalf("%s: result %d is for %q, want %q (results must be in op order)", e.sp.Name, i, rs[i].EntityKey, ops[i].EntityKey)
		}
		e.errs.add(rs[i])
	}
}

// settle finishes what a rerun would: uncertain or failed ops are sent
// again, through Resolve when the partner journals intents.
func (e *env) settle(ops []partner.Op, rs []partner.Result) []partner.Result {
	e.t.Helper()
	res, isResolver := e.client.(partner.Resolver)
	out := append([]partner.Result(nil), rs...)
	for i, r := range rs {
		if r.Outcome == partner.OK || r.Outcome == partner.Rejected {
			continue
		}
		op := ops[i]
		if isResolver {
			if d, ok := e.journal.detail(op.EntityKey); ok {
				op.Intent = d
				out[i] = res.Resolve(context.Background(), op, e.journal)
				e.checkShape([]partner.Op{op}, []partner.Result{out[i]})
				continue
			}
		}
		out[i] = e.send([]partner.Op{op})[0]
	}
	return out
}

// count reads the sandbox's records and duplicates.
func (e *env) count() (records, duplicates int) {
	return e.sp.Count(e.sandbox)
}

func (e *env) wantDelivered(ops []partner.Op, rs []partner.Result) {
	e.t.Helper()
	for i, r := range rs {
		if r.Outcome != partner.OK {
			e.t.Errorf("%s: %s: outcome %s (%v), want ok", e.sp.Name, ops[i].EntityKey, r.Outcome, r.Err)
		}
	}
	records, dups := e.count()
	if dups != 0 {
		e.t.Errorf("%s: the sandbox holds %d duplicates, want 0", e.sp.Name, dups)
	}
	if want := entities(ops); records != want {
		e.t.Errorf("%s: the sandbox holds %d records, want %d", e.sp.Name, records, want)
	}
	e.errs.check(e.t, e.sp.Name)
}

// entities is how many partner records the ops stand for.
func entities(ops []partner.Op) int {
	seen := map[partner.Key]bool{}
	for _, op := range ops {
		seen[op.EntityKey] = true
	}
	return len(seen)
}

func (s *suite) resultsInOrder(t *testing.T) {
	e := s.newEnv(t, envOpts{})
	ops := e.ops(0, 3)
	rs := e.send(ops)
	e.wantDelivered(ops, rs)
	// A rerun whose ledger write was lost after the partner answered: the
	// engine sends the op again, or resolves it from its open intent
	// where the partner journals. Either way no second copy.
	lost := make([]partner.Result, len(rs))
	for i := range rs {
		lost[i] = partner.Result{EntityKey: ops[i].EntityKey, Outcome: partner.Uncertain}
	}
	e.wantDelivered(ops, e.settle(ops, lost))
}

func (s *suite) authFatal(t *testing.T) {
	cases := []struct {
		name   string
		status int // 0: wrong credentials at the sandbox itself
	}{
		{"wrong credentials", 0},
		{"401", http.StatusUnauthorized},
		{"403", http.StatusForbidden},
	}
	for _, tc := range cases {
		if tc.status == 0 && len(s.sp.DemoCredentials) == 0 {
			// Nothing to get wrong: the partner authenticates by client
			// certificate and session (the 401 and 403 cases cover it).
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			e := s.newEnv(t, envOpts{wrongCredentials: tc.status == 0})
			if tc.status != 0 {
				e.mw.answerAll(tc.status)
			}
			ops := e.ops(0, 1)
			rs := e.send(ops)
			for _, r := range rs {
				if r.Outcome == partner.OK || httpx.KindOf(r.Err) != httpx.Fatal {
					t.Errorf("outcome %s, error kind %v (%v): want a fatal failure", r.Outcome, httpx.KindOf(r.Err), r.Err)
				}
			}
			if records, _ := e.count(); records != 0 {
				t.Errorf("the sandbox holds %d records after an auth failure", records)
			}
			e.errs.check(t, s.sp.Name)
		})
	}
}

func (s *suite) rejected(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnprocessableEntity} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := s.newEnv(t, envOpts{})
			// Lookups pass: the partner refuses the content it is sent.
			e.mw.answerWrites(status)
			ops := e.ops(0, 1)
			rs := e.send(ops)
			for _, r := range rs {
				if r.Outcome != partner.Rejected && r.Outcome != partner.Uncertain {
					t.Errorf("outcome %s (%v), want rejected (or uncertain, for a partner that cannot tell whether a refused step committed)", r.Outcome, r.Err)
				}
				if r.Outcome == partner.Rejected && httpx.KindOf(r.Err) != httpx.Rejected {
					t.Errorf("rejected outcome with error kind %v (%v)", httpx.KindOf(r.Err), r.Err)
				}
			}
			if e.mw.calls.Load() > 4 {
				t.Errorf("%d calls for one refused op: a refusal must not be retried", e.mw.calls.Load())
			}
			e.errs.check(t, s.sp.Name)
		})
	}
}

func (s *suite) transient(t *testing.T) {
	for _, status := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			e := s.newEnv(t, envOpts{})
			e.mw.failFirst(2, status)
			ops := e.ops(0, 2)
			rs := e.send(ops)
			for i, r := range rs {
				if r.Outcome != partner.OK && r.Outcome != partner.Uncertain {
					t.Errorf("%s: outcome %s (%v) after %d transient %d answers, want ok (retried) or uncertain", ops[i].EntityKey, r.Outcome, r.Err, 2, status)
				}
			}
			e.wantDelivered(ops, e.settle(ops, rs))
		})
	}
}

func (s *suite) outage(t *testing.T) {
	e := s.newEnv(t, envOpts{attempts: 2})
	e.mw.answerAll(http.StatusServiceUnavailable)
	ops := e.ops(0, 1)
	for _, r := range e.send(ops) {
		if r.Outcome != partner.Failed && r.Outcome != partner.Uncertain {
			t.Errorf("outcome %s (%v) while the partner is down, want failed or uncertain", r.Outcome, r.Err)
		}
		if k := httpx.KindOf(r.Err); k == httpx.Fatal || k == httpx.Rejected {
			t.Errorf("error kind %v while the partner is down: the rerun must send it", k)
		}
	}
	e.errs.check(t, s.sp.Name)
}

func (s *suite) lostAnswer(t *testing.T) {
	// Lose the answer to the first, then the second, write the client
	// makes: for two-step partners (vault then import, list then add) the
	// loss lands on each step in turn.
	for nth := 1; nth <= 2; nth++ {
		t.Run(fmt.Sprintf("write %d", nth), func(t *testing.T) {
			e := s.newEnv(t, envOpts{})
			e.mw.dropWrite(nth)
			ops := e.ops(0, 1)
			rs := e.send(ops)
			for i, r := range rs {
				if r.Outcome != partner.OK && r.Outcome != partner.Uncertain && r.Outcome != partner.Failed {
					t.Errorf("%s: outcome %s (%v) after a lost answer, want ok, uncertain or failed", ops[i].EntityKey, r.Outcome, r.Err)
				}
			}
			e.wantDelivered(ops, e.settle(ops, rs))
		})
	}
}

func (s *suite) concurrent(t *testing.T) {
	e := s.newEnv(t, envOpts{})
	const workers = 8
	per := max(1, min(e.client.MaxBatch(), 3))
	var wg sync.WaitGroup
	all := make([][]partner.Op, workers)
	res := make([][]partner.Result, workers)
	for w := range workers {
		all[w] = e.ops(w*per, per)
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[w] = e.client.Send(context.Background(), all[w], e.journal)
		}()
	}
	wg.Wait()
	var ops []partner.Op
	var rs []partner.Result
	for w := range workers {
		e.checkShape(all[w], res[w])
		ops = append(ops, all[w]...)
		rs = append(rs, res[w]...)
	}
	e.wantDelivered(ops, rs)
}

func (s *suite) deactivate(t *testing.T) {
	e := s.newEnv(t, envOpts{})
	d, ok := e.client.(partner.Deactivator)
	if !ok {
		if s.sp.Deactivates {
			t.Fatalf("%s is registered as deactivating but its client is no partner.Deactivator", s.sp.Name)
		}
		return
	}
	ops := e.ops(0, 1)
	rs := e.send(ops)
	e.wantDelivered(ops, rs)
	for i, op := range ops {
		if rs[i].RemoteID == "" {
			t.Fatalf("%s: create gave no remote id to deactivate", op.EntityKey)
		}
		dop := partner.Op{EntityKey: op.EntityKey, CustomerID: op.CustomerID, Kind: partner.Deactivate, RemoteID: rs[i].RemoteID, Hash: op.Hash}
		dop.IdemKey = load.IdempotencyKey(hmacKey, s.sp.Name, partner.Deactivate, op.EntityKey, op.Hash)
		for round := range 2 {
			r := d.Deactivate(context.Background(), dop)
			e.errs.add(r)
			if r.Outcome != partner.OK {
				t.Errorf("deactivate %s (round %d): outcome %s (%v), want ok", op.EntityKey, round+1, r.Outcome, r.Err)
			}
		}
	}
	e.errs.check(t, s.sp.Name)
}

// journal is the engine's Journal: it keeps the last detail noted per
// entity, as the ledger's intent rows do.
type journal struct {
	mu    sync.Mutex
	notes map[partner.Key]string
}

func (j *journal) Note(_ context.Context, op partner.Op, detail string) error {
	j.mu.Lock()
	j.notes[op.EntityKey] = detail
	j.mu.Unlock()
	return nil
}

func (j *journal) detail(key partner.Key) (string, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	d, ok := j.notes[key]
	return d, ok
}

// errLog keeps every result for the card-data check.
type errLog struct {
	mu sync.Mutex
	rs []partner.Result
}

func (l *errLog) add(r partner.Result) {
	l.mu.Lock()
	l.rs = append(l.rs, r)
	l.mu.Unlock()
}

// check fails when a PAN or CVV of any suite customer appears in an error
// or a result, in any format the engine might write.
func (l *errLog) check(t *testing.T, name string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.rs {
		var texts []string
		texts = append(texts, fmt.Sprintf("%v", r), fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r))
		if r.Err != nil {
			texts = append(texts, r.Err.Error(), fmt.Sprintf("%+v", r.Err), fmt.Sprintf("%#v", r.Err))
		}
		for _, s := range texts {
			if secret, ok := containsCardData(s); ok {
				t.Errorf("%s: card data %s...%s in a result or error", name, secret[:2], secret[len(secret)-2:])
			}
		}
	}
}

// middleware sits between the client and the sandbox and injects the
// faults each check needs. Counting, never timing.
type middleware struct {
	next http.Handler

	mu       sync.Mutex
	all      int // answer every request with this status (0: pass)
	writes4  int // answer every write (not GET) with this status
	failLeft int // answer this many more requests with failWith
	failWith int
	dropNth  int // lose the answer of the nth write, after the sandbox committed
	writes   int

	calls atomic.Int64
}

func (m *middleware) answerAll(status int)    { m.mu.Lock(); m.all = status; m.mu.Unlock() }
func (m *middleware) answerWrites(status int) { m.mu.Lock(); m.writes4 = status; m.mu.Unlock() }
func (m *middleware) failFirst(n, status int) {
	m.mu.Lock()
	m.failLeft, m.failWith = n, status
	m.mu.Unlock()
}
func (m *middleware) dropWrite(nth int) { m.mu.Lock(); m.dropNth = nth; m.mu.Unlock() }

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.calls.Add(1)
	m.mu.Lock()
	status := m.all
	if status == 0 && r.Method != http.MethodGet {
		status = m.writes4
	}
	if status == 0 && m.failLeft > 0 {
		m.failLeft--
		status = m.failWith
	}
	drop := false
	if status == 0 && r.Method != http.MethodGet {
		m.writes++
		drop = m.writes == m.dropNth
	}
	m.mu.Unlock()
	if status != 0 {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{}`))
		return
	}
	if drop {
		// The sandbox commits; the client never hears of it.
		m.next.ServeHTTP(httptest.NewRecorder(), r)
		panic(http.ErrAbortHandler)
	}
	m.next.ServeHTTP(w, r)
}

// Customer is suite customer i: complete for every partner, one account
// with one card, unique name, e-mail, phone and card number.
func Customer(i int) *model.Customer {
	id := fmt.Sprintf("PT%04d", i)
	pan := model.NewPAN(cardNumber(i))
	created := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	card := model.Card{
		Origin: model.Origin{File: "cards.csv", Line: i + 2}, ID: "K" + id, CustomerID: id, AccountID: "A" + id,
		PAN: pan, CVV: model.NewCVV(fmt.Sprintf("%03d", 100+i%900)), ExpMonth: 2, ExpYear: 2040,
		Type: "credit", Brand: "visa", NameOnCard: "Ada Tester" + id, BillingZip: "78753", Status: "OPEN",
		NetworkID: 4, OpenDate: created, IsDefault: true, Label: "Rewards",
		IIN: pan.IIN(), Last4: pan.Last4(), Fingerprint: fmt.Sprintf("fp%060d", i),
	}
	return &model.Customer{
		Origin: model.Origin{File: "customers.csv", Line: i + 2}, ID: id, OrganizationID: "50004",
		FirstName: "Ada" + letters(i), LastName: "Tester", Email: fmt.Sprintf("pt%04d@example.com", i),
		Phone: fmt.Sprintf("+1512555%04d", i), DOB: model.Date{Year: 1985, Month: time.December, Day: 10},
		Address: model.Address{Line1: fmt.Sprintf("%d Main St", i+1), City: "Austin", State: "TX", PostalCode: "78753", Country: "US"},
		Status:  "ACTIVE", Created: created, MemberID: fmt.Sprint(1000 + i),
		EnrollmentStart: created, EnrollmentOptIn: "ACTIVE", AlertOptIn: []string{"ALL"}, TargetingIndicator: "TARGET",
		Accounts: []model.Account{{ID: "A" + id, Type: "DDA", Status: "OPEN", OpenDate: created,
			CustomerIDs: []string{id}, PrimaryCustomerID: id, Cards: []model.Card{card}}},
	}
}

// letters spells i in letters, for names that must differ per customer
// but contain no digits.
func letters(i int) string {
	s := ""
	for {
		s = string(rune('a'+i%26)) + s
		i /= 26
		if i == 0 {
			return s
		}
	}
}

// cardNumber is a Luhn-valid 16-digit Visa test number unique to i.
func cardNumber(i int) string {
	body := fmt.Sprintf("411111%09d", i)
	return body + string(rune('0'+luhnDigit(body)))
}

func luhnDigit(body string) int {
	sum := 0
	for k := 0; k < len(body); k++ {
		d := int(body[len(body)-1-k] - '0')
		if k%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// suiteSecrets are every PAN and CVV the suite's customers carry (first
// 64 customers, more than any check maps).
var suiteSecrets = func() []string {
	var out []string
	for i := range 64 {
		out = append(out, cardNumber(i))
	}
	return out
}()

func containsCardData(s string) (string, bool) {
	for _, p := range suiteSecrets {
		if strings.Contains(s, p) {
			return p, true
		}
	}
	return "", false
}
