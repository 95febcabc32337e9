package load_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/logx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/pgtest"
	"github.com/northwind-data/etl/internal/providers/datafeed"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const canaryPAN = "4000056655665556"

func makeCustomers(n int) []*model.Customer {
	var out []*model.Customer
	t0 := time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("C%04d", i)
		pan := model.NewPAN(canaryPAN)
		out = append(out, &model.Customer{
			Origin: model.Origin{File: "customers.csv", Line: i + 2}, ID: id, OrganizationID: "50004",
			FirstName: "First", LastName: "Last" + id, Email: id + "@example.com",
			Address: model.Address{Line1: "1 Main", PostalCode: "78753", Country: "US"}, Status: "ACTIVE",
			Created: t0, EnrollmentStart: t0,
			Accounts: []model.Account{{ID: "A" + id, CustomerIDs: []string{id}, Cards: []model.Card{{ID: "K1", CustomerID: id,
				PAN: pan, CVV: model.NewCVV("737"), ExpMonth: 12, ExpYear: 2040, Type: "debit", IIN: pan.IIN(), Last4: pan.Last4()}}}},
		})
	}
	return out
}

func source(cs []*model.Customer) load.Source {
	return load.SourceFunc(func(ctx context.Context, emit func(*model.Customer) error, _ func(model.Reject) error) error {
		for _, c := range cs {
			cp := *c
			if err := emit(&cp); err != nil {
				return err
			}
		}
		return nil
	})
}

type harness struct {
	store     *ledger.Store
	sb        *datafeed.Sandbox
	eng       *load.Engine
	logs      *bytes.Buffer
	providers []partner.Provider
	opts      []load.Option
}

// with rebuilds the engine with more options (a later one wins).
func (h *harness) with(t *testing.T, opts ...load.Option) {
	t.Helper()
	h.opts = append(h.opts, opts...)
	h.eng = newEngine(t, h.store, h.providers, h.opts...)
}

// use rebuilds the engine with other partners.
func (h *harness) use(t *testing.T, ps ...partner.Provider) {
	t.Helper()
	h.providers = ps
	h.with(t)
}

const testKey = "test-key-0123456789"

func newEngine(t *testing.T, store *ledger.Store, ps []partner.Provider, opts ...load.Option) *load.Engine {
	t.Helper()
	eng, err := load.New(store, ps, []byte(testKey), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	store := ledger.FromPool(pgtest.NewPool(t))
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Token: "tok"})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	cl, err := datafeed.New(datafeed.Config{BaseURL: srv.URL, Token: "tok", HTTP: httpx.Config{BackoffBase: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	h := &harness{store: store, sb: sb, logs: logs, providers: []partner.Provider{cl}}
	// A batch deadline far beyond any test: a busy machine must not turn
	// a slow plan into partial batches and change the call counts.
	h.with(t, load.WithLogger(logx.NewTo(zapcore.AddSync(&syncBuf{b: logs}), false, zapcore.DebugLevel)), load.WithDeactivation(0, nil),
		load.WithQueue(4096, time.Hour))
	return h
}

func (h *harness) run(t *testing.T, cs []*model.Customer) *load.Summary {
	t.Helper()
	return h.runSource(t, source(cs))
}

func (h *harness) runSource(t *testing.T, src load.Source) *load.Summary {
	t.Helper()
	ctx := context.Background()
	id, err := h.store.StartRun(ctx, ledger.RunInfo{Group: "g", Source: "test", Providers: []string{"datafeed"}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := h.eng.Run(ctx, id, src)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.FinishRun(ctx, id, "ok", nil); err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestEveryCustomerLandsInTheLedgerWithItsRequestID(t *testing.T) {
	h := newHarness(t)
	cs := makeCustomers(173)
	sum := h.run(t, cs)
	c := sum.Providers["datafeed"]
	if c.Create != 173 || c.OK != 173 || !sum.Delivered() {
		t.Fatalf("counts %+v", c)
	}
	if c.Calls != 4 { // 50+50+50+23
		t.Fatalf("calls = %d, want 4 requests of at most 50", c.Calls)
	}
	st := h.sb.State()
	if len(st.Customers) != 173 || st.MaxBatch > 50 || st.OversizedBatches != 0 {
		t.Fatalf("sandbox: %d customers, max batch %d", len(st.Customers), st.MaxBatch)
	}
	var rows, withReq, distinctReq int
	err := h.store.Pool().QueryRow(context.Background(), `SELECT count(*), count(request_id), count(DISTINCT request_id) FROM ledger WHERE provider = 'datafeed' AND outcome = 'ok'`).Scan(&rows, &withReq, &distinctReq)
	if err != nil || rows != 173 || withReq != 173 || distinctReq != 4 {
		t.Fatalf("ledger: %d rows, %d with request id, %d distinct (%v)", rows, withReq, distinctReq, err)
	}
	// Every request id in the ledger is one the partner issued.
	issued := map[string]bool{}
	for _, id := range st.RequestIDs {
		issued[id] = true
	}
	rs, _ := h.store.Pool().Query(context.Background(), `SELECT DISTINCT request_id FROM ledger WHERE provider = 'datafeed'`)
	for rs.Next() {
		var id string
		_ = rs.Scan(&id)
		if !issued[id] {
			t.Errorf("ledger request id %s was never issued by the partner", id)
		}
	}
	rs.Close()
	assertNoCardData(t, h)
}

func TestNightlyRerunMakesNoCallsAndOneChangeMakesOneUpdate(t *testing.T) {
	h := newHarness(t)
	cs := makeCustomers(120)
	h.run(t, cs)
	before := h.sb.State().Requests

	sum := h.run(t, cs)
	if sum.Calls() != 0 || sum.Providers["datafeed"].Unchanged != 120 || h.sb.State().Requests != before {
		t.Fatalf("unchanged rerun: calls %d, unchanged %d", sum.Calls(), sum.Providers["datafeed"].Unchanged)
	}

	cs[7].Address.PostalCode = "10001"
	sum = h.run(t, cs)
	c := sum.Providers["datafeed"]
	if c.Update != 1 || c.Create != 0 || c.Unchanged != 119 || c.Calls != 1 {
		t.Fatalf("one change: %+v", c)
	}
	st := h.sb.State()
	if st.Updates != 1 || st.Customers[cs[7].ID].Deliveries != 2 {
		t.Fatalf("sandbox saw %d updates", st.Updates)
	}

	h.with(t, load.WithFullResync(true))
	sum = h.run(t, cs)
	if sum.Providers["datafeed"].Update != 120 {
		t.Fatalf("full resync updated %d, want 120", sum.Providers["datafeed"].Update)
	}
}

// signalAfter closes done once n of its Sends have returned.
type signalAfter struct {
	partner.Provider
	n    int64
	sent atomic.Int64
	done chan struct{}
}

func (s *signalAfter) Send(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result {
	rs := s.Provider.Send(ctx, ops, j)
	if s.sent.Add(1) == s.n {
		close(s.done)
	}
	return rs
}

func TestCancelledRunIsRecordedAndResumable(t *testing.T) {
	h := newHarness(t)
	took := &signalAfter{Provider: h.providers[0], n: 2, done: make(chan struct{})}
	h.use(t, took)
	h.with(t, load.WithPlanning(50, 2))
	cs := makeCustomers(400)
	ctx, cancel := context.WithCancel(context.Background())
	id, _ := h.store.StartRun(ctx, ledger.RunInfo{Group: "g", Source: "test", Providers: []string{"datafeed"}, Version: "test"})
	// Cancel (as SIGTERM would) once the partner has taken some requests,
	// while the source is still being read.
	src := load.SourceFunc(func(ctx context.Context, emit func(*model.Customer) error, _ func(model.Reject) error) error {
		for i, c := range cs {
			if i == 200 {
				<-took.done
				cancel()
			}
			if err := emit(c); err != nil {
				return err
			}
		}
		return nil
	})
	sum, err := h.eng.Run(ctx, id, src)
	if err != nil || !sum.Cancelled {
		t.Fatalf("cancelled run: %v, cancelled=%v", err, sum.Cancelled)
	}
	first := len(h.sb.State().Customers)
	if first == 0 || first >= 400 {
		t.Fatalf("cancelled run delivered %d of 400", first)
	}
	// Everything the partner has is in the checkpoint, so the rerun sends
	// only the rest.
	var states int
	_ = h.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM sync_state`).Scan(&states)
	if states != first {
		t.Fatalf("sync_state has %d entities, partner has %d", states, first)
	}
	sum = h.run(t, cs)
	st := h.sb.State()
	if len(st.Customers) != 400 || st.Redeliveries != 0 || sum.Providers["datafeed"].Unchanged != int64(first) {
		t.Fatalf("rerun: partner has %d, redeliveries %d, unchanged %d", len(st.Customers), st.Redeliveries, sum.Providers["datafeed"].Unchanged)
	}
}

// assertNoCardData scans every text column of every table and the logs.
func assertNoCardData(t *testing.T, h *harness) {
	t.Helper()
	var dump string
	err := h.store.Pool().QueryRow(context.Background(), `SELECT string_agg(t::text, E'\n') FROM (
		SELECT row_to_json(l)::text AS t FROM ledger l UNION ALL SELECT row_to_json(s)::text FROM sync_state s
		UNION ALL SELECT row_to_json(r)::text FROM rejects r UNION ALL SELECT row_to_json(u)::text FROM runs u) x`).Scan(&dump)
	if err != nil {
		t.Fatal(err)
	}
	for _, where := range []struct{ name, text string }{{"database", dump}, {"logs", h.logs.String()}} {
		if strings.Contains(where.text, canaryPAN) || strings.Contains(where.text, "737") && strings.Contains(where.text, "cvv") {
			t.Errorf("card data found in %s", where.name)
		}
	}
}

// capture wraps a provider and keeps the ops the engine sends it.
type capture struct {
	partner.Provider
	mu  sync.Mutex
	ops []partner.Op
}

func (c *capture) Send(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result {
	c.mu.Lock()
	c.ops = append(c.ops, ops...)
	c.mu.Unlock()
	return c.Provider.Send(ctx, ops, j)
}

// The engine hands a client each op with Body set to the JSON it hashed,
// so the client need not encode the payload again.
func TestOpsCarryTheJSONTheirHashCovers(t *testing.T) {
	h := newHarness(t)
	cp := &capture{Provider: h.providers[0]}
	h.use(t, cp)
	if sum := h.run(t, makeCustomers(60)); !sum.Delivered() {
		t.Fatalf("not delivered: %+v", sum.Providers["datafeed"])
	}
	if len(cp.ops) != 60 {
		t.Fatalf("%d ops sent, want 60", len(cp.ops))
	}
	for _, op := range cp.ops {
		want, _ := json.Marshal(op.Payload)
		hash, _ := load.ContentHash([]byte(testKey), op.Payload)
		if !bytes.Equal(op.Body, want) || op.Hash != hash {
			t.Fatalf("%s: Body %q, Hash %s; want the payload's JSON %q and its hash %s", op.EntityKey, op.Body, op.Hash, want, hash)
		}
	}
}
