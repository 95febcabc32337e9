package tokenization_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/golden"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/tokenization"
)

var ctx = context.Background()

func createOp(t *testing.T, c *tokenization.Client, cu *model.Customer) partner.Op {
	op := mapOne(t, c, cu)
	op.Kind = partner.Create
	return op
}

func mustOK(t *testing.T, what string, r partner.Result) {
	t.Helper()
	if r.Outcome != partner.OK || r.Err != nil || r.RemoteID == "" {
		t.Fatalf("%s: %+v", what, r)
	}
}

// seed creates a client behind the client's back (another system, or a
// run whose answer never reached the ledger).
func seed(t *testing.T, s *server, name string, partner int) int {
	t.Helper()
	return createDoc(t, s, []byte(fmt.Sprintf(`{"name":%q,"isActive":true,"directPartner":{"id":%d},"contact":{"firstName":"A","lastName":"B","email":"a@example.com"}}`, name, partner)))
}

func TestCreateRerunUpdateDeactivate(t *testing.T) {
	s := newSandbox(t, nil)
	c := newClient(t, s.url, nil)
	op := createOp(t, c, customer("C1"))

	m := s.rec.Mark()
	r := providertest.SendOne(t, c, op, nil)
	mustOK(t, "create", r)
	st := s.sb.State()
	cl, _ := st.Find("etl-C1")
	if r.EntityKey != "customer/C1" || r.RemoteID != strconv.Itoa(cl.ID) || r.HTTPStatus != http.StatusCreated || r.Attempts != 1 {
		t.Fatalf("create: %+v (state %+v)", r, st)
	}
	// The name is looked up first: one list page, then the create.
	if got := s.rec.Calls(m); !reflect.DeepEqual(got, []string{"GET " + clients, "POST " + clients}) {
		t.Fatalf("calls %v", got)
	}
	golden.Assert(t, "create_request.golden.json", s.rec.Last(http.MethodPost).Body)

	// A rerun of the same content in a new process, after the answer
	// never reached the ledger (no RemoteID): found by name, patched.
	fresh := newClient(t, s.url, nil)
	m = s.rec.Mark()
	again := providertest.SendOne(t, fresh, op, nil)
	mustOK(t, "rerun", again)
	if again.RemoteID != r.RemoteID || again.HTTPStatus != http.StatusOK {
		t.Fatalf("rerun: %+v", again)
	}
	if got := s.rec.Calls(m); !reflect.DeepEqual(got, []string{"GET " + clients, "PATCH " + clients + "/" + r.RemoteID}) {
		t.Fatalf("rerun calls %v", got)
	}
	golden.Assert(t, "update_request.golden.json", s.rec.Last(http.MethodPatch).Body)
	// ...and in the same process, from the index, without listing again.
	m = s.rec.Mark()
	mustOK(t, "rerun in process", providertest.SendOne(t, c, op, nil))
	if got := s.rec.Calls(m); len(got) != 1 || !strings.HasPrefix(got[0], "PATCH ") {
		t.Fatalf("calls %v", got)
	}
	st = s.sb.State()
	if len(st.Clients) != 1 || st.Totals.Creates != 1 || st.Totals.Duplicates != 0 || st.Clients[0].Version != 2 {
		t.Fatalf("after reruns: %+v", st)
	}

	// An update patches the known id and bumps the version.
	cu := customer("C1")
	cu.Email = "ada@lovelace.example"
	up := mapOne(t, c, cu)
	up.Kind, up.RemoteID = partner.Update, r.RemoteID
	ur := providertest.SendOne(t, fresh, up, nil)
	mustOK(t, "update", ur)
	id, _ := strconv.Atoi(r.RemoteID)
	d, err := c.Get(ctx, id)
	if err != nil || d.Version != 3 || d.Contact.Email != "ada@lovelace.example" || !d.IsActive || ur.RemoteID != r.RemoteID {
		t.Fatalf("after update: %+v %v", d, err)
	}

	// Deactivation: isActive false, nothing else.
	off := partner.Op{EntityKey: "customer/C1", CustomerID: "C1", Kind: partner.Deactivate, RemoteID: r.RemoteID}
	mustOK(t, "deactivate", c.Deactivate(ctx, off))
	golden.Assert(t, "deactivate_request.golden.json", s.rec.Last(http.MethodPatch).Body)
	if d, _ = c.Get(ctx, id); d.IsActive || d.Version != 4 || d.Contact.Email != "ada@lovelace.example" {
		t.Fatalf("after deactivate: %+v", d)
	}
	// Through Send too, and an update of an active customer switches it on.
	mustOK(t, "deactivate via Send", providertest.SendOne(t, c, off, nil))
	mustOK(t, "reactivate", providertest.SendOne(t, c, up, nil))
	if d, _ = c.Get(ctx, id); !d.IsActive || d.Version != 6 {
		t.Fatalf("after reactivation: %+v", d)
	}
	st = s.sb.State()
	if len(st.Clients) != 1 || st.Totals.Creates != 1 || st.Totals.Duplicates != 0 || st.Totals.DuplicateNameRefusals != 0 {
		t.Fatalf("final state %+v", st)
	}
	for _, e := range s.rec.All() {
		noCardData(t, e.Method+" "+e.Path, e.Body)
	}
	if c.Name() != tokenization.Name || c.MaxBatch() != 1 {
		t.Fatalf("Name %q MaxBatch %d", c.Name(), c.MaxBatch())
	}
}

// 25 clients already exist (a run whose ledger writes were lost): with
// pages of 10 the index must see all three pages, and nothing is created.
func TestNameIndexAcrossPages(t *testing.T) {
	s := newSandbox(t, nil)
	ids := map[string]int{}
	for i := 0; i < 25; i++ {
		cid := fmt.Sprintf("C%02d", i)
		ids[cid] = seed(t, s, "etl-"+cid, partnerID)
		if i%5 == 0 {
			seed(t, s, fmt.Sprintf("Manual client %d", i), partnerID) // not ours: never patched
		}
	}
	c := newClient(t, s.url, func(cfg *tokenization.Config) { cfg.PageSize = 10 })
	m := s.rec.Mark()
	for i := 0; i < 25; i++ {
		cid := fmt.Sprintf("C%02d", i)
		r := providertest.SendOne(t, c, createOp(t, c, customer(cid)), nil)
		mustOK(t, cid, r)
		if r.RemoteID != strconv.Itoa(ids[cid]) {
			t.Fatalf("%s: remote id %s, want %d", cid, r.RemoteID, ids[cid])
		}
	}
	var lists []string
	for _, e := range s.rec.Since(m) {
		if e.Method == http.MethodGet {
			lists = append(lists, e.Query)
		}
	}
	want := []string{"partner=792&take=10", "partner=792&skip=10&take=10", "partner=792&skip=20&take=10"}
	if !reflect.DeepEqual(lists, want) {
		t.Fatalf("list calls %v, want %v", lists, want)
	}
	// A new customer is created without listing again.
	m = s.rec.Mark()
	mustOK(t, "new", providertest.SendOne(t, c, createOp(t, c, customer("C99")), nil))
	if got := s.rec.Calls(m); !reflect.DeepEqual(got, []string{"POST " + clients}) {
		t.Fatalf("calls %v", got)
	}
	st := s.sb.State()
	if st.Totals.Creates != 31 || st.Totals.Duplicates != 0 || len(st.Clients) != 31 {
		t.Fatalf("state %+v", st.Totals)
	}
	for _, cl := range st.Clients {
		if strings.HasPrefix(cl.Name, "Manual") && cl.Version != 0 {
			t.Errorf("%s was patched", cl.Name)
		} else if strings.HasPrefix(cl.Name, "etl-C") && cl.Name != "etl-C99" && cl.Version != 1 {
			t.Errorf("%s: version %d, want 1", cl.Name, cl.Version)
		}
	}
}

// A platform that caps take below ours is still walked whole.
func TestListAllWalksPastTheTakeCap(t *testing.T) {
	s := newSandbox(t, docPartners)
	for i := 0; i < 150; i++ {
		seed(t, s, fmt.Sprintf("c%03d", i), partnerID)
	}
	seed(t, s, "elsewhere", 793)
	c := newClient(t, s.url, func(cfg *tokenization.Config) { cfg.PageSize = 500 })
	seen := map[int]bool{}
	if err := c.ListAll(ctx, func(cs tokenization.ClientSummary) error { seen[cs.ID] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 150 {
		t.Fatalf("walked %d clients, want 150", len(seen))
	}
	stop := errors.New("stop")
	n := 0
	if err := c.ListAll(ctx, func(tokenization.ClientSummary) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("ListAll did not stop: %v after %d", err, n)
	}
	l, err := c.List(ctx, "partnerName", 0, 0)
	if err != nil || l.Total != 150 || len(l.Data) != 10 {
		t.Fatalf("List defaults: %v %+v", err, l)
	}
}

// Another actor creates the name after our index was built: the create is
// refused as a duplicate, the id is found by a fresh walk and patched.
func TestCreateRaceResolvedByName(t *testing.T) {
	s := newSandbox(t, nil)
	c := newClient(t, s.url, nil)
	mustOK(t, "C1", providertest.SendOne(t, c, createOp(t, c, customer("C1")), nil)) // builds the index
	other := seed(t, s, "etl-C2", partnerID)
	m := s.rec.Mark()
	r := providertest.SendOne(t, c, createOp(t, c, customer("C2")), nil)
	mustOK(t, "C2", r)
	if r.RemoteID != strconv.Itoa(other) {
		t.Fatalf("remote id %s, want %d", r.RemoteID, other)
	}
	want := []string{"POST " + clients, "GET " + clients, "PATCH " + clients + "/" + r.RemoteID}
	if got := s.rec.Calls(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	st := s.sb.State()
	if cl, _ := st.Find("etl-C2"); len(st.Clients) != 2 || st.Totals.DuplicateNameRefusals != 1 || st.Totals.Duplicates != 0 || cl.Version != 1 {
		t.Fatalf("state %+v", st)
	}
}

// A name held by a client our partner does not list under exactly that
// name is not ours: the op is rejected and that client is left alone.
func TestNameHeldByAnotherClientIsRejected(t *testing.T) {
	for _, tc := range []struct {
		name    string
		holder  string
		partner int
	}{
		{"another partner", "etl-C5", 793},
		{"differs in case", "ETL-c5", partnerID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t, docPartners)
			seed(t, s, tc.holder, tc.partner)
			c := newClient(t, s.url, nil)
			r := providertest.SendOne(t, c, createOp(t, c, customer("C5")), nil)
			if r.Outcome != partner.Rejected || httpx.CodeOf(r.Err) != tokenization.CodeDuplicateName || r.HTTPStatus != http.StatusConflict ||
				!strings.Contains(r.Err.Error(), "does not list") {
				t.Fatalf("%+v", r)
			}
			st := s.sb.State()
			if len(st.Clients) != 1 || st.Clients[0].Version != 0 || st.Totals.Patches != 0 {
				t.Fatalf("state %+v", st)
			}
		})
	}
}

// dropFirst runs h for the first request matching method and then drops
// the connection without an answer (or, if before, drops it unanswered
// without running h).
type dropFirst struct {
	h       http.Handler
	method  string
	before  bool
	dropped atomic.Bool
}

func (d *dropFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != d.method || d.dropped.Swap(true) {
		d.h.ServeHTTP(w, r)
		return
	}
	if !d.before {
		d.h.ServeHTTP(httptest.NewRecorder(), r)
	}
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.Close()
}

func TestLostCreateAnswer(t *testing.T) {
	t.Run("create landed: found and patched at once", func(t *testing.T) {
		s := newSandbox(t, nil)
		url := providertest.Serve(t, &dropFirst{h: s.rec, method: http.MethodPost})
		c := newClient(t, url, nil)
		r := providertest.SendOne(t, c, createOp(t, c, customer("C1")), nil)
		mustOK(t, "lost answer", r)
		st := s.sb.State()
		if len(st.Clients) != 1 || st.Totals.Creates != 1 || st.Totals.Duplicates != 0 || r.RemoteID != strconv.Itoa(st.Clients[0].ID) || st.Clients[0].Version != 1 {
			t.Fatalf("%+v state %+v", r, st)
		}
		// POST is never resent blind: one create attempt in total.
		if r.Attempts != 2 { // the POST and the PATCH
			t.Fatalf("attempts %d", r.Attempts)
		}
	})
	t.Run("create did not land: uncertain, the rerun creates it once", func(t *testing.T) {
		s := newSandbox(t, nil)
		url := providertest.Serve(t, &dropFirst{h: s.rec, method: http.MethodPost, before: true})
		c := newClient(t, url, nil)
		op := createOp(t, c, customer("C1"))
		r := providertest.SendOne(t, c, op, nil)
		if r.Outcome != partner.Uncertain || httpx.KindOf(r.Err) != httpx.Uncertain {
			t.Fatalf("%+v", r)
		}
		if st := s.sb.State(); len(st.Clients) != 0 {
			t.Fatalf("state %+v", st)
		}
		mustOK(t, "rerun", providertest.SendOne(t, newClient(t, url, nil), op, nil))
		if st := s.sb.State(); len(st.Clients) != 1 || st.Totals.Creates != 1 {
			t.Fatalf("state %+v", st)
		}
	})
}

// A client deleted behind our back after the index saw it is created anew.
func TestStaleIndexEntryIsRecreated(t *testing.T) {
	s := newSandbox(t, nil)
	c := newClient(t, s.url, nil)
	first := providertest.SendOne(t, c, createOp(t, c, customer("C1")), nil)
	mustOK(t, "create", first)
	id, _ := strconv.Atoi(first.RemoteID)
	s.sb.Delete(id)
	again := providertest.SendOne(t, c, createOp(t, c, customer("C1")), nil)
	mustOK(t, "recreate", again)
	st := s.sb.State()
	if again.RemoteID == first.RemoteID || len(st.Clients) != 1 || st.Totals.Creates != 2 || again.Attempts != 2 {
		t.Fatalf("%+v state %+v", again, st)
	}
}

func TestErrorTyping(t *testing.T) {
	s := newSandbox(t, nil)
	good := newClient(t, s.url, nil)
	known := providertest.SendOne(t, good, createOp(t, good, customer("C1")), nil)
	mustOK(t, "seed", known)
	badEmail := customer("C2")
	badEmail.Email = "not-an-email"
	update := func(c *tokenization.Client, cu *model.Customer, remote string) partner.Op {
		op := mapOne(t, c, cu)
		op.Kind, op.RemoteID = partner.Update, remote
		return op
	}
	wrongPass := newClient(t, s.url, func(cfg *tokenization.Config) { cfg.Password = "wrong" })
	unknownPartner := newClient(t, s.url, func(cfg *tokenization.Config) { cfg.PartnerID, cfg.PartnerName = 1, "" })
	for _, tc := range []struct {
		name    string
		c       *tokenization.Client
		op      partner.Op
		outcome partner.Outcome
		kind    httpx.Kind
		status  int
		code    string
	}{
		{"401 on create (the list)", wrongPass, createOp(t, wrongPass, customer("C3")), partner.Failed, httpx.Fatal, 401, ""},
		{"401 on update", wrongPass, update(wrongPass, customer("C1"), known.RemoteID), partner.Failed, httpx.Fatal, 401, ""},
		{"401 on deactivate", wrongPass, partner.Op{EntityKey: "customer/C1", Kind: partner.Deactivate, RemoteID: known.RemoteID}, partner.Failed, httpx.Fatal, 401, ""},
		{"409 validation on create", good, createOp(t, good, badEmail), partner.Rejected, httpx.Rejected, 409, tokenization.CodeValidation},
		{"409 validation on update", good, update(good, badEmail, known.RemoteID), partner.Rejected, httpx.Rejected, 409, tokenization.CodeValidation},
		{"404 on update", good, update(good, customer("C1"), "999999"), partner.Rejected, httpx.Rejected, 404, tokenization.CodeNotFound},
		{"404 on deactivate", good, partner.Op{EntityKey: "customer/C1", Kind: partner.Deactivate, RemoteID: "999999"}, partner.Rejected, httpx.Rejected, 404, tokenization.CodeNotFound},
		{"bad remote id", good, update(good, customer("C1"), "abc"), partner.Rejected, httpx.Rejected, 0, "bad_remote_id"},
		{"list refused: wrong partner stops the partner", unknownPartner, createOp(t, unknownPartner, customer("C4")), partner.Failed, httpx.Fatal, 404, tokenization.CodeNotFound},
		{"not our payload", good, partner.Op{EntityKey: "customer/C1", Kind: partner.Create, Payload: "x"}, partner.Failed, httpx.Fatal, 0, "bad_payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := providertest.SendOne(t, tc.c, tc.op, nil)
			var he *httpx.Error
			if r.Outcome != tc.outcome || !errors.As(r.Err, &he) || he.Kind != tc.kind || r.HTTPStatus != tc.status || he.Code != tc.code || r.EntityKey != tc.op.EntityKey {
				t.Fatalf("%+v (err %v)", r, r.Err)
			}
			if he.Partner != tokenization.Name || strings.Contains(he.Error(), "wrong") || strings.Contains(he.Error(), pass) {
				t.Fatalf("error %q", he.Error())
			}
		})
	}
	if st := s.sb.State(); len(st.Clients) != 1 || st.Clients[0].Version != 0 {
		t.Fatalf("a refused call changed the platform: %+v", st)
	}
}

// stubbed answers the first n requests with status and body, then
// forwards to h.
func stubbed(h http.Handler, n int32, status int, body string) http.Handler {
	var seen atomic.Int32
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen.Add(1) <= n {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// The documented error body becomes Code and Message; anything else falls
// back to the status text, never to the raw body.
func TestErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		body, code, msg string
	}{
		{`{"uuid":"e6356050-599d-11ef-ae4c-3d5f4ba36a27","errorCode":7422,"message":"Bad thing."}`, "7422", "Bad thing. (uuid e6356050-599d-11ef-ae4c-3d5f4ba36a27)"},
		{`{"errorCode":"7422","message":"Bad thing."}`, "7422", "Bad thing."},
		{`{"errorCode":7422}`, "7422", "Unprocessable Entity"},
		{`{"errorCode":null,"message":""}`, "", "Unprocessable Entity"},
		{`<html>secret echo</html>`, "", "Unprocessable Entity"},
	} {
		s := newSandbox(t, nil)
		c := newClient(t, providertest.Serve(t, stubbed(s.rec, 1, http.StatusUnprocessableEntity, tc.body)), nil)
		op := mapOne(t, c, customer("C1"))
		op.Kind, op.RemoteID = partner.Update, "1001"
		r := providertest.SendOne(t, c, op, nil)
		var he *httpx.Error
		if r.Outcome != partner.Rejected || !errors.As(r.Err, &he) || he.Code != tc.code || he.Message != tc.msg {
			t.Errorf("%s: %+v", tc.body, r.Err)
		}
	}
}

// A 5xx on an idempotent PATCH is retried, and Attempts counts both tries.
func TestPatchRetriedAndAttemptsCounted(t *testing.T) {
	s := newSandbox(t, nil)
	good := newClient(t, s.url, nil)
	known := providertest.SendOne(t, good, createOp(t, good, customer("C1")), nil)
	c := newClient(t, providertest.Serve(t, stubbed(s.rec, 1, http.StatusServiceUnavailable, `{"errorCode":7503,"message":"busy"}`)), nil)
	op := mapOne(t, c, customer("C1"))
	op.Kind, op.RemoteID = partner.Update, known.RemoteID
	r := providertest.SendOne(t, c, op, nil)
	mustOK(t, "update", r)
	if r.Attempts != 2 || r.HTTPStatus != http.StatusOK {
		t.Fatalf("%+v", r)
	}
}

// A POST that met a 5xx may have landed (a gateway gave up waiting), so
// httpx does not resend it: upsert looks the name up at once. If the
// platform did create the client, it is found and patched: one client.
// If not, the op is uncertain and the rerun creates it, once.
func TestCreateRetriedOn5xx(t *testing.T) {
	t.Run("landed=false", func(t *testing.T) {
		s := newSandbox(t, nil)
		var posts atomic.Int32
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && posts.Add(1) == 1 {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			s.rec.ServeHTTP(w, r)
		})
		c := newClient(t, providertest.Serve(t, h), nil)
		r := providertest.SendOne(t, c, createOp(t, c, customer("C1")), nil)
		if r.Outcome != partner.Uncertain || posts.Load() != 1 || len(s.sb.State().Clients) != 0 {
			t.Fatalf("%+v, %d posts, state %+v", r, posts.Load(), s.sb.State())
		}
		mustOK(t, "rerun", providertest.SendOne(t, c, createOp(t, c, customer("C1")), nil))
		if st := s.sb.State(); len(st.Clients) != 1 || st.Totals.Creates != 1 {
			t.Fatalf("after the rerun: %+v", st)
		}
	})
	for _, landed := range []bool{true} {
		t.Run(fmt.Sprintf("landed=%v", landed), func(t *testing.T) {
			s := newSandbox(t, nil)
			var posts atomic.Int32
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && posts.Add(1) == 1 {
					if landed {
						s.rec.ServeHTTP(httptest.NewRecorder(), r)
					}
					w.WriteHeader(http.StatusBadGateway)
					return
				}
				s.rec.ServeHTTP(w, r)
			})
			c := newClient(t, providertest.Serve(t, h), nil)
			r := providertest.SendOne(t, c, createOp(t, c, customer("C1")), nil)
			mustOK(t, "create", r)
			st := s.sb.State()
			if posts.Load() != 1 || len(st.Clients) != 1 || st.Totals.Creates != 1 || st.Totals.Duplicates != 0 || r.RemoteID != strconv.Itoa(st.Clients[0].ID) {
				t.Fatalf("%+v, %d posts, state %+v", r, posts.Load(), st)
			}
			if want := 2; r.Attempts != want { // the POST and the PATCH
				t.Fatalf("attempts %d, want %d", r.Attempts, want)
			}
		})
	}
}

// Many workers at once: one walk builds the index, every customer is
// created once.
func TestConcurrentSends(t *testing.T) {
	s := newSandbox(t, nil)
	seed(t, s, "etl-C07", partnerID) // one already there
	c := newClient(t, s.url, func(cfg *tokenization.Config) { cfg.PageSize = 10 })
	m := s.rec.Mark()
	var wg sync.WaitGroup
	results := make([]partner.Result, 40)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cu := customer(fmt.Sprintf("C%02d", i))
			items, _ := c.Map(cu)
			ops := partner.NewOps(items)
			ops[0].Kind = partner.Create
			results[i] = c.Send(ctx, ops, nil)[0]
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.Outcome != partner.OK {
			t.Errorf("C%02d: %+v", i, r)
		}
	}
	lists := 0
	for _, call := range s.rec.Calls(m) {
		if strings.HasPrefix(call, "GET ") {
			lists++
		}
	}
	st := s.sb.State()
	if lists != 1 || len(st.Clients) != 40 || st.Totals.Creates != 40 || st.Totals.Duplicates != 0 || st.Totals.DuplicateNameRefusals != 0 {
		t.Fatalf("%d list calls, state %+v", lists, st.Totals)
	}
}

func TestSignerReplacesBasicAuth(t *testing.T) {
	s := newSandbox(t, nil)
	var signed atomic.Int32
	c := newClient(t, s.url, func(cfg *tokenization.Config) {
		cfg.Username, cfg.Password = "", ""
		cfg.Signer = tokenization.SignerFunc(func(r *http.Request) error {
			signed.Add(1)
			r.SetBasicAuth(user, pass)
			return nil
		})
	})
	mustOK(t, "create", providertest.SendOne(t, c, createOp(t, c, customer("C1")), nil))
	if signed.Load() != 2 { // the list page and the create
		t.Fatalf("signed %d requests", signed.Load())
	}
	failing := newClient(t, s.url, func(cfg *tokenization.Config) {
		cfg.Signer = tokenization.SignerFunc(func(*http.Request) error { return errors.New("no key") })
	})
	if r := providertest.SendOne(t, failing, createOp(t, failing, customer("C2")), nil); r.Outcome != partner.Failed || httpx.KindOf(r.Err) != httpx.Fatal {
		t.Fatalf("%+v", r)
	}
	if got := fmt.Sprintf("%v %+v %#v", tokenization.BasicSigner(user, pass), tokenization.BasicSigner(user, pass), tokenization.BasicSigner(user, pass)); strings.Contains(got, pass) {
		t.Fatalf("signer prints its password: %s", got)
	}
}

func TestNewChecksConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*tokenization.Config)
		want string
	}{
		{"no username", func(c *tokenization.Config) { c.Username = "" }, "username and password"},
		{"no password", func(c *tokenization.Config) { c.Password = "" }, "username and password"},
		{"no partner", func(c *tokenization.Config) { c.PartnerID, c.PartnerName = 0, " " }, "partner id or name"},
		{"negative partner", func(c *tokenization.Config) { c.PartnerID = -1 }, "partner id"},
		{"negative page size", func(c *tokenization.Config) { c.PageSize = -1 }, "page size"},
		{"bad base URL", func(c *tokenization.Config) { c.BaseURL = "portal:4010" }, "base URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("https://portal-staging.shieldconex.com:4010")
			tc.mod(&cfg)
			if _, err := tokenization.New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	cfg := testConfig("https://portal-staging.shieldconex.com:4010")
	cfg.PartnerID = 0 // a name alone will do
	if _, err := tokenization.New(cfg); err != nil {
		t.Fatal(err)
	}
}

// One Result per op, in order.
func TestResultsInOrder(t *testing.T) {
	s := newSandbox(t, nil)
	c := newClient(t, s.url, nil)
	ops := []partner.Op{createOp(t, c, customer("C1")), createOp(t, c, customer("C2"))}
	res := c.Send(ctx, ops, nil)
	st := s.sb.State()
	a, _ := st.Find("etl-C1")
	b, _ := st.Find("etl-C2")
	if len(res) != 2 || res[0].RemoteID != strconv.Itoa(a.ID) || res[1].RemoteID != strconv.Itoa(b.ID) || res[1].EntityKey != "customer/C2" {
		t.Fatalf("results %+v", res)
	}
}
