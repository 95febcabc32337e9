package synctera_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/synctera"
)

func TestNewConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  synctera.Config
		want string
	}{
		{"no token", synctera.Config{BaseURL: "https://api-sandbox.synctera.com/v0"}, "token is required"},
		{"blank token", synctera.Config{BaseURL: "https://api-sandbox.synctera.com/v0", Token: "  "}, "token is required"},
		{"relative base URL", synctera.Config{BaseURL: "api-sandbox.synctera.com/v0", Token: "t"}, "base URL"},
		{"negative page size", synctera.Config{BaseURL: "https://api-sandbox.synctera.com/v0", Token: "t", PageSize: -1}, "page size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := synctera.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	c, err := synctera.New(synctera.Config{BaseURL: "https://api-sandbox.synctera.com/v0", Token: "t"})
	if err != nil || c.Name() != synctera.Name || c.MaxBatch() != 1 {
		t.Errorf("New: %v %v", c, err)
	}
}

func TestClientCreateTwiceSameKey(t *testing.T) {
	sb, _ := newSandbox(t, nil)
	rec := providertest.NewRecorder(sb)
	c := newClient(t, providertest.Serve(t, rec)+synctera.BasePath, token, nil)

	op := createOp(t, customer("C1001"))
	first := providertest.SendOne(t, c, op, nil)
	if first.Outcome != partner.OK || !reUUID.MatchString(first.RemoteID) || first.HTTPStatus != http.StatusCreated || first.Attempts != 1 || first.Err != nil {
		t.Fatalf("first send: %+v", first)
	}
	// The rerun of the same content plans the same op with the same key.
	again := providertest.SendOne(t, c, createOp(t, customer("C1001")), nil)
	if again.Outcome != partner.OK || again.RemoteID != first.RemoteID {
		t.Fatalf("second send: %+v, want remote id %s", again, first.RemoteID)
	}
	st := sb.State()
	if len(st.Customers) != 1 || st.Totals.Creates != 1 || st.Totals.Replays != 1 || st.Totals.Duplicates != 0 {
		t.Errorf("state %+v", st)
	}
	for _, r := range rec.All() {
		if r.Method != http.MethodPost || r.Path != "/v0/customers" || r.Header.Get(synctera.IdempotencyHeader) != op.IdemKey ||
			r.Header.Get("Authorization") != bearer || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get("Accept") != "application/json, application/problem+json" {
			t.Errorf("request %s %s key=%q auth=%q", r.Method, r.Path, r.Header.Get(synctera.IdempotencyHeader), r.Header.Get("Authorization"))
		}
	}
	got, err := c.GetCustomer(context.Background(), first.RemoteID)
	if err != nil || got.FirstName != "Ada" || got.Dob != "1985-12-10" || got.ShippingAddress == nil || *got.ShippingAddress != *got.LegalAddress {
		t.Errorf("GetCustomer: %+v %v", got, err)
	}
}

func TestClientUpdate(t *testing.T) {
	sb, _ := newSandbox(t, nil)
	rec := providertest.NewRecorder(sb)
	c := newClient(t, providertest.Serve(t, rec)+synctera.BasePath, token, nil)
	created := providertest.SendOne(t, c, createOp(t, customer("C1001")), nil)

	cu := customer("C1001")
	cu.Email, cu.Address.Line1 = "ada.l@example.com", "2 Elm St"
	ops, _ := c.Map(cu)
	op := plan(t, partner.NewOp(ops[0]), partner.Update, created.RemoteID)
	res := providertest.SendOne(t, c, op, nil)
	if res.Outcome != partner.OK || res.RemoteID != created.RemoteID || res.HTTPStatus != http.StatusOK || res.Attempts != 1 {
		t.Fatalf("update: %+v", res)
	}
	last := rec.Last("")
	if last.Method != http.MethodPut || last.Path != "/v0/customers/"+created.RemoteID || last.Header.Get(synctera.IdempotencyHeader) != "" {
		t.Errorf("update went as %s %s key=%q", last.Method, last.Path, last.Header.Get(synctera.IdempotencyHeader))
	}
	got, err := c.GetCustomer(context.Background(), created.RemoteID)
	if err != nil || got.Email != "ada.l@example.com" || got.ShippingAddress.AddressLine1 != "2 Elm St" {
		t.Errorf("after update: %+v %v", got, err)
	}
	st := sb.State()
	if s, _ := st.Find(created.RemoteID); s.Version != 2 || st.Totals.Updates != 1 || len(st.Customers) != 1 {
		t.Errorf("state %+v", st)
	}
}

func TestClientDeactivate(t *testing.T) {
	sb, _ := newSandbox(t, nil)
	rec := providertest.NewRecorder(sb)
	c := newClient(t, providertest.Serve(t, rec)+synctera.BasePath, token, nil)
	created := providertest.SendOne(t, c, createOp(t, customer("C1001")), nil)

	op := partner.Op{EntityKey: "customer/C1001", CustomerID: "C1001", Kind: partner.Deactivate, RemoteID: created.RemoteID,
		IdemKey: load.IdempotencyKey(hmacKey, synctera.Name, partner.Deactivate, "customer/C1001", "h")}
	// The engine calls Deactivate; Send routes a deactivation the same way.
	for i, res := range []partner.Result{c.Deactivate(context.Background(), op), providertest.SendOne(t, c, op, nil)} {
		if res.Outcome != partner.OK || res.RemoteID != created.RemoteID || res.HTTPStatus != http.StatusOK {
			t.Errorf("deactivate %d: %+v", i+1, res)
		}
	}
	// Create, PATCH, PATCH replayed, GET to check the replay.
	var calls []string
	for _, r := range rec.All() {
		calls = append(calls, r.Method+" key="+r.Header.Get(synctera.IdempotencyHeader))
	}
	want := []string{"POST key=" + createOp(t, customer("C1001")).IdemKey, "PATCH key=" + op.IdemKey, "PATCH key=" + op.IdemKey, "GET key="}
	if strings.Join(calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	st := sb.State()
	if s, _ := st.Find(created.RemoteID); s.Status != synctera.StatusInactive || s.Version != 2 || st.Totals.Patches != 1 || st.Totals.Replays != 1 {
		t.Errorf("state %+v", st)
	}

	// Reactivated (the customer came back unchanged), then gone again: the
	// engine plans the same key, the sandbox replays the first answer, and
	// the client notices and patches again.
	ops, _ := c.Map(customer("C1001"))
	if res := providertest.SendOne(t, c, plan(t, partner.NewOp(ops[0]), partner.Update, created.RemoteID), nil); res.Outcome != partner.OK {
		t.Fatalf("reactivate: %+v", res)
	}
	if res := c.Deactivate(context.Background(), op); res.Outcome != partner.OK || res.HTTPStatus != http.StatusOK {
		t.Errorf("deactivate again: %+v", res)
	}
	st = sb.State()
	if s, _ := st.Find(created.RemoteID); s.Status != synctera.StatusInactive || st.Totals.Patches != 2 || st.Totals.Replays != 2 {
		t.Errorf("after the second deactivation: %+v, totals %+v", s, st.Totals)
	}

	// Gone at the partner already: the goal holds.
	sb.Delete(created.RemoteID)
	op.IdemKey = "another-key"
	if res := c.Deactivate(context.Background(), op); res.Outcome != partner.OK || res.HTTPStatus != http.StatusNotFound {
		t.Errorf("deactivate a deleted customer: %+v", res)
	}
	op.RemoteID = ""
	if res := c.Deactivate(context.Background(), op); res.Outcome != partner.Rejected || httpx.CodeOf(res.Err) != "bad_remote_id" {
		t.Errorf("deactivate without a remote id: %+v", res)
	}
}

func TestClientErrorTyping(t *testing.T) {
	sb, srv := newSandbox(t, func(o *synctera.SandboxOptions) { o.RejectDuplicates = true })
	base := srv.URL + synctera.BasePath
	c := newClient(t, base, token, nil)
	existing := providertest.SendOne(t, c, createOp(t, customer("C1")), nil)
	gone := providertest.SendOne(t, c, createOp(t, customer("C2")), nil) // same person: refused with 409 by RejectDuplicates
	if gone.Outcome != partner.Rejected || httpx.CodeOf(gone.Err) != synctera.CodeAlreadyExists || gone.HTTPStatus != http.StatusConflict {
		t.Fatalf("duplicate person: %+v", gone)
	}
	other := customer("C3")
	other.FirstName = "Grace"
	deleted := providertest.SendOne(t, c, createOp(t, other), nil)
	sb.Delete(deleted.RemoteID)

	badDob := createOp(t, customer("C4"))
	body := badDob.Payload.(synctera.CustomerInBody)
	body.FirstName, body.Dob = "Bad", "1985-13-01"
	badDob.Payload = body

	update := func(op partner.Op, id string) partner.Op { op.Kind, op.RemoteID = partner.Update, id; return op }
	tests := []struct {
		name    string
		client  *synctera.Client
		op      partner.Op
		outcome partner.Outcome
		kind    httpx.Kind
		status  int
		code    string
		inMsg   string
	}{
		{"401 is fatal", newClient(t, base, "wrong", nil), createOp(t, customer("C9")), partner.Failed, httpx.Fatal, 401, synctera.CodeUnauthorized, "bearer"},
		{"400 names the field", c, badDob, partner.Rejected, httpx.Rejected, 400, synctera.CodeBadRequest, "dob"},
		{"404 on update of a deleted customer", c, update(createOp(t, other), deleted.RemoteID), partner.Rejected, httpx.Rejected, 404, synctera.CodeNotFound, "no customer"},
		{"409 already exists", c, createOp(t, customer("C6")), partner.Rejected, httpx.Rejected, 409, synctera.CodeAlreadyExists, "already exists"},
		{"payload of the wrong type", c, partner.Op{EntityKey: "customer/X", Kind: partner.Create, Payload: "nope"}, partner.Failed, httpx.Fatal, 0, "bad_payload", "CustomerInBody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := providertest.SendOne(t, tt.client, tt.op, nil)
			var he *httpx.Error
			if !errors.As(res.Err, &he) {
				t.Fatalf("result %+v: Err is not an *httpx.Error", res)
			}
			if res.Outcome != tt.outcome || he.Kind != tt.kind || res.HTTPStatus != tt.status || he.Code != tt.code ||
				!strings.Contains(he.Error(), tt.inMsg) {
				t.Errorf("result %+v, err %v; want %s/%s/%d/%s containing %q", res, he, tt.outcome, tt.kind, tt.status, tt.code, tt.inMsg)
			}
			if tt.status != 0 && res.Attempts != 1 {
				t.Errorf("attempts %d, want 1 (no retry of a refusal)", res.Attempts)
			}
		})
	}
	if st := sb.State(); len(st.Customers) != 1 || st.Customers[0].ID != existing.RemoteID {
		t.Errorf("state %+v", st)
	}
}

// TestClientKeyInFlightIsRetried: a second request with a key whose first
// request is still running gets 409, waits and gets the first one's answer.
func TestClientKeyInFlightIsRetried(t *testing.T) {
	hook, entered, release := holdFirst()
	sb, srv := newSandbox(t, func(o *synctera.SandboxOptions) { o.InFlight = hook })
	t.Cleanup(release)
	c := newClient(t, srv.URL+synctera.BasePath, token, func(cfg *synctera.Config) {
		cfg.HTTP.MaxAttempts, cfg.HTTP.BackoffBase, cfg.HTTP.BackoffMax = 20, 2*time.Millisecond, 10*time.Millisecond
	})
	op := createOp(t, customer("C1001"))
	firstDone := make(chan partner.Result, 1)
	go func() { firstDone <- c.Send(context.Background(), []partner.Op{op}, nil)[0] }()
	providertest.WaitFor(t, entered, "the first request to hold its key")
	secondDone := make(chan partner.Result, 1)
	go func() { secondDone <- c.Send(context.Background(), []partner.Op{op}, nil)[0] }()
	deadline := time.Now().Add(5 * time.Second)
	for sb.State().Totals.KeyConflicts == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the second request never met the key in flight")
		}
		time.Sleep(time.Millisecond)
	}
	release()
	first, second := providertest.Recv(t, firstDone), providertest.Recv(t, secondDone)
	if first.Outcome != partner.OK || second.Outcome != partner.OK || first.RemoteID != second.RemoteID || second.Attempts < 2 {
		t.Errorf("first %+v, second %+v", first, second)
	}
	if st := sb.State(); st.Totals.Creates != 1 || len(st.Customers) != 1 {
		t.Errorf("totals %+v", st.Totals)
	}
}

// dropFirst runs the sandbox for the first POST, then drops the answer
// (the customer is created; the client never hears so).
type dropFirst struct {
	h       http.Handler
	dropped atomic.Bool
}

func (d *dropFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && d.dropped.CompareAndSwap(false, true) {
		d.h.ServeHTTP(httptest.NewRecorder(), r)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	d.h.ServeHTTP(w, r)
}

func TestClientLostAnswerIsReplayed(t *testing.T) {
	sb, _ := newSandbox(t, nil)
	c := newClient(t, providertest.Serve(t, &dropFirst{h: sb})+synctera.BasePath, token, nil)
	res := providertest.SendOne(t, c, createOp(t, customer("C1001")), nil)
	if res.Outcome != partner.OK || res.RemoteID == "" {
		t.Fatalf("result %+v", res)
	}
	st := sb.State()
	if st.Totals.Creates != 1 || st.Totals.Replays != 1 || st.Totals.Duplicates != 0 {
		t.Errorf("totals %+v", st.Totals)
	}
	if got := st.Customers[0].ID; got != res.RemoteID {
		t.Errorf("remote id %s, sandbox holds %s", res.RemoteID, got)
	}
}

func TestClientListAll(t *testing.T) {
	sb, srv := newSandbox(t, nil)
	rec := providertest.NewRecorder(sb)
	c := newClient(t, providertest.Serve(t, rec)+synctera.BasePath, token, nil)
	ctx := context.Background()
	ids := map[string]bool{}
	for i := range 250 {
		cu, err := c.CreateCustomer(ctx, person(i), "")
		if err != nil {
			t.Fatal(err)
		}
		ids[cu.ID] = true
	}
	var victim string
	for id := range ids {
		victim = id
		break
	}
	sb.Delete(victim) // behind our back
	delete(ids, victim)

	before := rec.Mark()
	seen := map[string]bool{}
	err := c.ListAll(ctx, func(cu synctera.Customer) error {
		if seen[cu.ID] || !ids[cu.ID] {
			t.Errorf("unexpected or repeated %s", cu.ID)
		}
		seen[cu.ID] = true
		return nil
	})
	if err != nil || len(seen) != 249 {
		t.Fatalf("ListAll: %d customers, %v", len(seen), err)
	}
	pages := rec.Since(before)
	if len(pages) != 3 || pages[0].Params().Get("limit") != "100" || pages[0].Params().Has("page_token") || !pages[2].Params().Has("page_token") {
		t.Errorf("%d list calls, first query %q", len(pages), pages[0].Query)
	}

	stop := errors.New("stop")
	n := 0
	if err := c.ListAll(ctx, func(synctera.Customer) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("ListAll with a failing callback: %v after %d", err, n)
	}

	small := newClient(t, srv.URL+synctera.BasePath, token, func(cfg *synctera.Config) { cfg.PageSize = 7 })
	count := 0
	if err := small.ListAll(ctx, func(synctera.Customer) error { count++; return nil }); err != nil || count != 249 {
		t.Errorf("ListAll with page size 7: %d, %v", count, err)
	}

	_, err = c.GetCustomer(ctx, victim)
	if httpx.CodeOf(err) != synctera.CodeNotFound || !strings.Contains(err.Error(), victim) {
		t.Errorf("GetCustomer of a deleted customer: %v", err)
	}
	if err := newClient(t, srv.URL+synctera.BasePath, "wrong", nil).ListAll(ctx, func(synctera.Customer) error { return nil }); httpx.KindOf(err) != httpx.Fatal {
		t.Errorf("ListAll with a wrong token: %v", err)
	}
}

func TestClientPublicCalls(t *testing.T) {
	_, srv := newSandbox(t, nil)
	c := newClient(t, srv.URL+synctera.BasePath, token, nil)
	ctx := context.Background()
	a, err := c.CreateCustomer(ctx, person(1), "key-1")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := c.CreateCustomer(ctx, person(1), "key-1"); err != nil || b.ID != a.ID {
		t.Errorf("create again with the key: %+v %v", b, err)
	}
	p, err := c.PatchCustomer(ctx, a.ID, synctera.PatchCustomer{Status: synctera.StatusDormant}, "")
	if err != nil || p.Status != synctera.StatusDormant {
		t.Errorf("patch: %+v %v", p, err)
	}
	body := person(1)
	body.LastName = "Changed"
	u, err := c.UpdateCustomer(ctx, a.ID, body)
	if err != nil || u.LastName != "Changed" || u.Status != synctera.StatusActive {
		t.Errorf("update: %+v %v", u, err)
	}
	_, _ = c.CreateCustomer(ctx, synctera.CustomerInBody{Status: synctera.StatusProspect}, "")
	l, err := c.ListCustomers(ctx, synctera.ListParams{Status: synctera.StatusProspect, Limit: 5})
	if err != nil || len(l.Customers) != 1 || l.Customers[0].Status != synctera.StatusProspect || l.NextPageToken != "" {
		t.Errorf("list prospects: %+v %v", l, err)
	}
	l, err = c.ListCustomers(ctx, synctera.ListParams{LastName: "Changed", IDs: []string{a.ID}, SortBy: []string{"creation_time:desc"}})
	if err != nil || len(l.Customers) != 1 || l.Customers[0].ID != a.ID {
		t.Errorf("list by name and id: %+v %v", l, err)
	}
	_, err = c.ListCustomers(ctx, synctera.ListParams{PageToken: "forged"})
	if httpx.KindOf(err) != httpx.Rejected || !strings.Contains(err.Error(), "page_token") {
		t.Errorf("list with a forged token: %v", err)
	}
}

// TestClientDecodesForeignErrors: answers that are not the sandbox's own
// problems (a proxy's HTML page, a bare problem) still get a code and a
// message, and never the raw body.
func TestClientDecodesForeignErrors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		ctype   string
		body    string
		outcome partner.Outcome
		code    string
		msg     string
	}{
		{"html 400", 400, "text/html", "<html>card 4111111111111111</html>", partner.Rejected, synctera.CodeBadRequest, "Bad Request"},
		{"about:blank 404", 404, synctera.ProblemContentType, `{"type":"about:blank","title":"Not Found","status":404}`, partner.Rejected, synctera.CodeNotFound, "Not Found"},
		{"problem with detail only", 409, synctera.ProblemContentType, `{"title":"Conflict","status":409,"detail":"customer exists"}`, partner.Rejected, "conflict", "customer exists"},
		{"403", 403, "application/json", `{}`, partner.Failed, "forbidden", "Forbidden"},
		// A create that only ever met a gateway's 502 may have landed
		// behind it: uncertain, with the 502 decoded underneath.
		{"502 retried then uncertain", 502, "text/plain", "bad gateway 4111111111111111", partner.Uncertain, "http_502", "Bad Gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.Header().Set("Content-Type", tt.ctype)
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, srv.URL+synctera.BasePath, token, nil)
			res := providertest.SendOne(t, c, createOp(t, customer("C1")), nil)
			var he *httpx.Error
			ok := errors.As(res.Err, &he)
			if ok && res.Outcome == partner.Uncertain {
				ok = errors.As(he.Err, &he) // the answer's own error, under "maybe created"
			}
			if !ok || res.Outcome != tt.outcome || he.Code != tt.code || he.Message != tt.msg || res.HTTPStatus != tt.status {
				t.Errorf("result %+v err %v; want %s %s %q", res, res.Err, tt.outcome, tt.code, tt.msg)
			}
			if strings.Contains(res.Err.Error(), "4111") {
				t.Errorf("error echoes the body: %v", res.Err)
			}
			want := 1 // a refusal is not retried
			if tt.status >= 500 {
				want = 3 // MaxAttempts
			}
			if int(calls.Load()) != want || res.Attempts != want {
				t.Errorf("%d calls, %d attempts, want %d", calls.Load(), res.Attempts, want)
			}
		})
	}
}
