package synctera_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/synctera"
)

// moved is customer id after a move: only the city differs, so the body
// (and, before the fix, the content-keyed create key) changes.
func moved(id string) *model.Customer {
	c := customer(id)
	c.Address.City = "Round Rock"
	return c
}

// lostCreate creates c at the sandbox under its planned create key and
// forgets the answer, as a create whose answer was lost does.
func lostCreate(t *testing.T, c *synctera.Client, cu *model.Customer) (key, remoteID string) {
	t.Helper()
	op := createOp(t, cu)
	r := providertest.SendOne(t, c, op, nil)
	if r.Outcome != partner.OK {
		t.Fatalf("setup create: %+v", r)
	}
	return op.IdemKey, r.RemoteID
}

// TestClientInvalidReuseAdoptsInsteadOfCreating: the create committed, its
// answer was lost, the customer changed; the rerun sends the same key with
// the new body, Synctera refuses the reuse, and the client finds the
// customer by its metadata, adopts it and updates it.
func TestClientInvalidReuseAdoptsInsteadOfCreating(t *testing.T) {
	sb, srv := newSandbox(t, nil)
	c := newClient(t, srv.URL+synctera.BasePath, token, nil)
	_, id := lostCreate(t, c, customer("C1001"))

	res := providertest.SendOne(t, c, createOp(t, moved("C1001")), nil)
	if res.Outcome != partner.OK || res.RemoteID != id || res.HTTPStatus != http.StatusOK {
		t.Fatalf("rerun after the change: %+v", res)
	}
	st := sb.State()
	if len(st.Customers) != 1 || st.Totals.Creates != 1 || st.Totals.KeyMismatches != 1 || st.Totals.Updates != 1 || st.Totals.Duplicates != 0 {
		t.Errorf("totals %+v", st.Totals)
	}
	got, err := c.GetCustomer(context.Background(), id)
	if err != nil || got.LegalAddress.City != "Round Rock" {
		t.Errorf("the adopted customer does not hold the new content: %+v %v", got, err)
	}
}

func TestClientInvalidReuseWithoutUniqueMatchIsUncertain(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, c *synctera.Client, sb *synctera.Sandbox) partner.Op
		code  string
	}{
		{"no customer carries the entity key", func(t *testing.T, c *synctera.Client, _ *synctera.Sandbox) partner.Op {
			// The key went out with another body whose customer is
			// nowhere to be found by the new body's e-mail, phone or name
			// (or the first answer was a refusal whose ledger write was
			// lost): nothing proves it absent.
			other := customer("C1")
			other.FirstName, other.Email, other.Phone = "Grace", "grace@example.com", "+15125550199"
			op := createOp(t, other)
			op.EntityKey = "customer/C9"
			op.IdemKey = createOp(t, customer("C9")).IdemKey
			if r := providertest.SendOne(t, c, op, nil); r.Outcome != partner.OK {
				t.Fatalf("setup: %+v", r)
			}
			return createOp(t, customer("C9"))
		}, synctera.CodeKeyReused},
		{"two customers carry the entity key", func(t *testing.T, c *synctera.Client, _ *synctera.Sandbox) partner.Op {
			lostCreate(t, c, customer("C2"))
			dup := createOp(t, customer("C2"))
			dup.IdemKey = "another-key"
			if r := providertest.SendOne(t, c, dup, nil); r.Outcome != partner.OK {
				t.Fatalf("setup: %+v", r)
			}
			return createOp(t, moved("C2"))
		}, "ambiguous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, srv := newSandbox(t, nil)
			c := newClient(t, srv.URL+synctera.BasePath, token, nil)
			op := tt.setup(t, c, sb)
			before := sb.State().Totals
			res := providertest.SendOne(t, c, op, nil)
			if res.Outcome != partner.Uncertain || httpx.CodeOf(res.Err) != tt.code || httpx.KindOf(res.Err) != httpx.Uncertain {
				t.Errorf("result %+v, want uncertain %s", res, tt.code)
			}
			if after := sb.State().Totals; after.Creates != before.Creates || after.Updates != before.Updates {
				t.Errorf("an unsettled create changed the partner: %+v -> %+v", before, after)
			}
		})
	}
}

// codeOnly answers every POST with a problem whose code says
// IDEMPOTENCY_INVALID_REUSE (or only its type does), with another status
// than the sandbox's 422; everything else goes to the sandbox.
type codeOnly struct {
	h      http.Handler
	status int
	body   string
}

func (c codeOnly) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		w.Header().Set("Content-Type", synctera.ProblemContentType)
		w.WriteHeader(c.status)
		_, _ = io.WriteString(w, c.body)
		return
	}
	c.h.ServeHTTP(w, r)
}

// TestClientMatchesInvalidReuseByTypeOrCode: the code under any 4xx, or the
// type's last segment, is the reuse; the client resolves either way.
func TestClientMatchesInvalidReuseByTypeOrCode(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"code under 409", 409, `{"type":"https://dev.synctera.com/errors/conflict","title":"Conflict","status":409,"code":"IDEMPOTENCY_INVALID_REUSE"}`},
		{"code under 400", 400, `{"type":"https://dev.synctera.com/errors/bad-request","title":"Bad Request","status":400,"code":"IDEMPOTENCY_INVALID_REUSE"}`},
		{"type only", 422, `{"type":"https://dev.synctera.com/errors/idempotency-invalid-reuse","title":"Unprocessable Entity","status":422}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, srv := newSandbox(t, nil)
			c := newClient(t, srv.URL+synctera.BasePath, token, nil)
			_, id := lostCreate(t, c, customer("C1001"))
			fc := newClient(t, providertest.Serve(t, codeOnly{h: sb, status: tt.status, body: tt.body})+synctera.BasePath, token, nil)
			if res := providertest.SendOne(t, fc, createOp(t, moved("C1001")), nil); res.Outcome != partner.OK || res.RemoteID != id {
				t.Errorf("result %+v, want the customer %s adopted", res, id)
			}
		})
	}
}

// TestClientErrorCodesFromTypeAndCode: the code wins over the type's last
// segment; a 409 whose code says the key is in use is retried whatever
// its type.
func TestClientErrorCodesFromTypeAndCode(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		code     string
		attempts int
	}{
		{"published type and code", 400, `{"type":"https://dev.synctera.com/errors/bad-request-body","title":"Bad Request","status":400,"code":"BAD_REQUEST_BODY"}`, synctera.CodeBadRequest, 1},
		{"type only", 400, `{"type":"https://dev.synctera.com/errors/bad-request-body","title":"Bad Request","status":400}`, synctera.CodeBadRequest, 1},
		{"type with a trailing slash", 400, `{"type":"https://dev.synctera.com/errors/bad-request-body/","title":"Bad Request","status":400}`, synctera.CodeBadRequest, 1},
		{"concurrent use by code", 409, `{"type":"https://dev.synctera.com/errors/conflict","title":"Conflict","status":409,"code":"IDEMPOTENCY_CONCURRENT_USE"}`, synctera.CodeKeyInUse, 3},
		{"concurrent use by type", 409, `{"type":"https://dev.synctera.com/errors/idempotency-concurrent-use","title":"Conflict","status":409}`, synctera.CodeKeyInUse, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			calls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				calls++
				mu.Unlock()
				w.Header().Set("Content-Type", synctera.ProblemContentType)
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, srv.URL+synctera.BasePath, token, nil)
			res := providertest.SendOne(t, c, createOp(t, customer("C1")), nil)
			// A key still in use after every retry is an uncertain create
			// (maybe_created) that names the partner's code.
			if res.Err == nil || !strings.Contains(res.Err.Error(), " "+tt.code+":") || res.Attempts != tt.attempts || calls != tt.attempts {
				t.Errorf("result %+v (%d calls), want code %s after %d attempts", res, calls, tt.code, tt.attempts)
			}
		})
	}
}

// TestClientDeactivate404ByStatusAlone: a 404 whatever its type counts as
// deactivated.
func TestClientDeactivate404ByStatusAlone(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", synctera.ProblemContentType)
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"type":"https://dev.synctera.com/errors/resource-not-found","title":"Not Found","status":404,"code":"RESOURCE_NOT_FOUND"}`)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL+synctera.BasePath, token, nil)
	res := c.Deactivate(context.Background(), partner.Op{EntityKey: "customer/C1", Kind: partner.Deactivate, RemoteID: docID, IdemKey: "k"})
	if res.Outcome != partner.OK || res.HTTPStatus != http.StatusNotFound {
		t.Errorf("deactivate of a customer gone: %+v", res)
	}
}

// TestClientSendsCommaSeparatedArrays: explode: false.
func TestClientSendsCommaSeparatedArrays(t *testing.T) {
	sb, _ := newSandbox(t, nil)
	rec := providertest.NewRecorder(sb)
	c := newClient(t, providertest.Serve(t, rec)+synctera.BasePath, token, nil)
	ctx := context.Background()
	a, _ := c.CreateCustomer(ctx, person(1), "")
	b, _ := c.CreateCustomer(ctx, person(2), "")
	l, err := c.ListCustomers(ctx, synctera.ListParams{IDs: []string{a.ID, b.ID}, SortBy: []string{"creation_time:desc"}})
	if err != nil || len(l.Customers) != 2 || l.Customers[0].ID != b.ID {
		t.Fatalf("list by two ids: %+v %v", l, err)
	}
	q := rec.Last("").Params()
	if len(q["id"]) != 1 || q.Get("id") != a.ID+","+b.ID {
		t.Errorf("id sent as %q", q["id"])
	}
}

// journal records intents; fail makes Note fail.
type journal struct {
	mu    sync.Mutex
	notes []string
	sb    *synctera.Sandbox
	seen  []int // creates at the partner when each note was made
	fail  bool
}

func (j *journal) Note(_ context.Context, op partner.Op, detail string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail {
		return errors.New("ledger down")
	}
	j.notes = append(j.notes, op.EntityKey.String()+" "+detail)
	j.seen = append(j.seen, j.sb.State().Totals.Creates)
	return nil
}

// TestClientNotesAnIntentBeforeEachCreate: a kill between the create and
// the ledger write leaves an intent for the rerun to resolve; without a
// durable intent nothing is sent.
func TestClientNotesAnIntentBeforeEachCreate(t *testing.T) {
	sb, srv := newSandbox(t, nil)
	c := newClient(t, srv.URL+synctera.BasePath, token, nil)
	j := &journal{sb: sb}
	op := createOp(t, customer("C1"))
	res := c.Send(context.Background(), []partner.Op{op}, j)[0]
	if res.Outcome != partner.OK || len(j.notes) != 1 || !strings.HasPrefix(j.notes[0], "customer/C1 ") || !strings.Contains(j.notes[0], op.IdemKey) || j.seen[0] != 0 {
		t.Fatalf("result %+v, notes %v (creates before each %v)", res, j.notes, j.seen)
	}
	// Updates are not journaled: a PUT can be resent.
	up := plan(t, op, partner.Update, res.RemoteID)
	if r := c.Send(context.Background(), []partner.Op{up}, j)[0]; r.Outcome != partner.OK || len(j.notes) != 1 {
		t.Errorf("update: %+v, notes %v", r, j.notes)
	}
	j.fail = true
	r := c.Send(context.Background(), []partner.Op{createOp(t, customer("C2"))}, j)[0]
	if r.Outcome != partner.Failed || sb.State().Totals.Creates != 1 {
		t.Errorf("create without a durable intent: %+v, creates %d", r, sb.State().Totals.Creates)
	}
}

// TestClientResolve: an earlier run's create left open (answer lost, or a
// kill before the ledger write) is settled by a lookup, also after the
// partner forgot the key.
func TestClientResolve(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, c *synctera.Client, sb *synctera.Sandbox) (op partner.Op, adopted string)
		outcome partner.Outcome
		creates int // at the partner after Resolve
	}{
		{"created, changed, key forgotten: adopted", func(t *testing.T, c *synctera.Client, sb *synctera.Sandbox) (partner.Op, string) {
			key, id := lostCreate(t, c, customer("C1"))
			sb.AdvanceClock(8 * 24 * time.Hour)
			op := createOp(t, moved("C1"))
			op.Intent = key
			return op, id
		}, partner.OK, 1},
		{"created, unchanged, key forgotten: adopted", func(t *testing.T, c *synctera.Client, sb *synctera.Sandbox) (partner.Op, string) {
			key, id := lostCreate(t, c, customer("C1"))
			sb.AdvanceClock(8 * 24 * time.Hour)
			op := createOp(t, customer("C1"))
			op.Intent = key
			return op, id
		}, partner.OK, 1},
		{"never created: created now", func(t *testing.T, _ *synctera.Client, _ *synctera.Sandbox) (partner.Op, string) {
			op := createOp(t, customer("C1"))
			op.Intent = synctera.IntentDetail(op.IdemKey, time.Now())
			return op, ""
		}, partner.OK, 1},
		{"a bare prospect cannot be looked up: the key answers", func(t *testing.T, c *synctera.Client, _ *synctera.Sandbox) (partner.Op, string) {
			cu := customer("C1")
			cu.FirstName, cu.Email, cu.Phone, cu.Status = "", "", "", "PROSPECT"
			key, id := lostCreate(t, c, cu)
			op := createOp(t, cu)
			op.Intent = synctera.IntentDetail(key, time.Now())
			return op, id
		}, partner.OK, 1},
		{"an update with an old intent is just an update", func(t *testing.T, c *synctera.Client, _ *synctera.Sandbox) (partner.Op, string) {
			key, id := lostCreate(t, c, customer("C1"))
			op := plan(t, createOp(t, moved("C1")), partner.Update, id)
			op.Intent = key
			return op, id
		}, partner.OK, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, srv := newSandbox(t, nil)
			c := newClient(t, srv.URL+synctera.BasePath, token, nil)
			op, adopted := tt.setup(t, c, sb)
			res := c.Resolve(context.Background(), op, nil)
			if res.Outcome != tt.outcome || (adopted != "" && res.RemoteID != adopted) || res.RemoteID == "" {
				t.Errorf("resolve: %+v, want %s with %q", res, tt.outcome, adopted)
			}
			st := sb.State()
			if st.Totals.Creates != tt.creates || st.Totals.Duplicates != 0 {
				t.Errorf("totals %+v, want %d creates and no duplicate", st.Totals, tt.creates)
			}
			if got, err := c.GetCustomer(context.Background(), res.RemoteID); err != nil || !strings.EqualFold(got.LegalAddress.City, op.Payload.(synctera.CustomerInBody).LegalAddress.City) {
				t.Errorf("the customer does not hold the op's content: %+v %v", got, err)
			}
		})
	}

	// Past the key's life a POST could create a second customer when the
	// lookup misses a landed create: an operator decides, nothing is sent.
	for _, tc := range []struct {
		name   string
		detail func(key string) string
	}{
		{"noted past the key's life", func(k string) string { return synctera.IntentDetail(k, time.Now().Add(-8*24*time.Hour)) }},
		{"noted with no time (an older binary)", func(k string) string { return k }},
	} {
		t.Run("not found, "+tc.name+": needs an operator", func(t *testing.T) {
			sb, srv := newSandbox(t, nil)
			c := newClient(t, srv.URL+synctera.BasePath, token, nil)
			op := createOp(t, customer("C1"))
			op.Intent = tc.detail(op.IdemKey)
			res := c.Resolve(context.Background(), op, nil)
			if res.Outcome != partner.Uncertain || httpx.CodeOf(res.Err) != partner.CodeNeedsOperator || sb.State().Totals.Creates != 0 {
				t.Errorf("resolve: %+v, creates %d: want uncertain %s and nothing created", res, sb.State().Totals.Creates, partner.CodeNeedsOperator)
			}
		})
	}

	t.Run("a failed lookup never creates", func(t *testing.T) {
		sb, _ := newSandbox(t, nil)
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			sb.ServeHTTP(w, r)
		}))
		t.Cleanup(front.Close)
		c := newClient(t, front.URL+synctera.BasePath, token, nil)
		op := createOp(t, customer("C1"))
		op.Intent = op.IdemKey
		res := c.Resolve(context.Background(), op, nil)
		if res.Outcome != partner.Uncertain || httpx.CodeOf(res.Err) != "lookup_failed" || sb.State().Totals.Creates != 0 {
			t.Errorf("resolve with the list down: %+v, creates %d", res, sb.State().Totals.Creates)
		}
	})
}

// lostThenDown commits the first POST and loses its answer, then answers
// every other POST 503 before it reaches the sandbox.
type lostThenDown struct {
	h    http.Handler
	mu   sync.Mutex
	seen bool
}

func (d *lostThenDown) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		d.h.ServeHTTP(w, r)
		return
	}
	d.mu.Lock()
	first := !d.seen
	d.seen = true
	d.mu.Unlock()
	if first {
		d.h.ServeHTTP(httptest.NewRecorder(), r)
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

// TestClientCreateFailingAfterALostAnswerIsUncertain: the last attempt's
// 503 does not prove that the first one did not create.
func TestClientCreateFailingAfterALostAnswerIsUncertain(t *testing.T) {
	sb, _ := newSandbox(t, nil)
	c := newClient(t, providertest.Serve(t, &lostThenDown{h: sb})+synctera.BasePath, token, nil)
	res := providertest.SendOne(t, c, createOp(t, customer("C1")), nil)
	if res.Outcome != partner.Uncertain || sb.State().Totals.Creates != 1 {
		t.Errorf("result %+v with %d created, want uncertain", res, sb.State().Totals.Creates)
	}
}
