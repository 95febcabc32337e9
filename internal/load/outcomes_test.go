package load_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zapcore"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/logx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

// An update the partner has no API for (ClubReady, Q2 client meta) is
// neither an ok delivery nor a call: the summary counts it apart, while
// the ledger row and the checkpoint keep today's meaning (outcome ok, the
// new content recorded, so the next run does not plan it again).
func TestUpdateWithoutAPIIsCountedNotSent(t *testing.T) {
	p := &fake{}
	p.send = func(_ context.Context, ops []partner.Op, _ partner.Journal) []partner.Result {
		out := allOK(ops)
		for i, op := range ops {
			if op.Kind == partner.Update {
				out[i] = partner.Result{EntityKey: op.EntityKey, Outcome: partner.OK, RemoteID: op.RemoteID, RequestID: partner.RequestNotSentNoUpdateAPI}
			}
		}
		return out
	}
	r := newFakeRig(t, p)
	cs := makeCustomers(10)
	r.run(t, cs)
	for _, c := range cs[:3] {
		c.LastName = "Changed"
	}
	sum := r.run(t, cs)
	c := sum.Providers["fake"]
	if c.Update != 3 || c.NoUpdateAPI != 3 || c.OK != 0 || c.Calls != 0 || c.Attempts != 0 {
		t.Fatalf("counts %+v: want 3 updates, all not sent (no update API), no ok, no calls", c)
	}
	if !sum.Delivered() {
		t.Fatal("an update with no API made the run partial")
	}
	if n := r.count(t, `SELECT count(*) FROM ledger WHERE operation = 'update' AND outcome = 'ok' AND request_id = $1 AND attempts = 0`, partner.RequestNotSentNoUpdateAPI); n != 3 {
		t.Fatalf("%d ledger rows record the unsent updates, want 3", n)
	}
	p.reset()
	sum = r.run(t, cs)
	if c := sum.Providers["fake"]; c.Unchanged != 10 || c.Update != 0 || p.calls.Load() != 0 {
		t.Fatalf("third run: counts %+v, %d calls: the checkpoint must keep the unsent content as known", c, p.calls.Load())
	}
}

// A failed row records the attempts that were made: at least one, even
// when the client built its failure with a count of 0, and the error's own
// count when httpx kept one.
func TestFailedRowsRecordTheirAttempts(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *httpx.Error
		want int
	}{
		{"client lost count", &httpx.Error{Partner: "fake", Kind: httpx.Retryable, Status: 503, Code: "http_503"}, 1},
		{"httpx counted", &httpx.Error{Partner: "fake", Kind: httpx.Retryable, Status: 503, Code: "http_503", Attempts: 4}, 4},
		{"breaker never let it out", &httpx.Error{Partner: "fake", Kind: httpx.Unavailable, Code: "breaker_open"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &fake{send: func(_ context.Context, ops []partner.Op, _ partner.Journal) []partner.Result {
				out := make([]partner.Result, len(ops))
				for i, op := range ops {
					out[i] = partner.FailureResult(op, tc.err, 0)
				}
				return out
			}}
			r := newFakeRig(t, p)
			sum := r.run(t, makeCustomers(3))
			if n := r.count(t, `SELECT count(*) FROM ledger WHERE outcome = 'failed' AND attempts = $1`, tc.want); n != 3 {
				t.Fatalf("%d failed rows with attempts=%d, want 3", n, tc.want)
			}
			if c := sum.Providers["fake"]; c.Attempts != int64(3*tc.want) {
				t.Fatalf("summary attempts %d, want %d", c.Attempts, 3*tc.want)
			}
		})
	}
}

// rejectingFake maps a customer whose last name says so to a reject.
type rejectingFake struct{ fake }

func (f *rejectingFake) Map(c *model.Customer) ([]partner.Item, []model.Reject) {
	if strings.HasPrefix(c.LastName, "Bad") {
		return nil, []model.Reject{{EntityKey: "customer/" + c.ID, Origin: c.Origin, Field: "last_name", Reason: "partner_mapping", Message: "bad name"}}
	}
	return f.fake.Map(c)
}

// A dry run hands over every reject a real run would write (validation
// and partner mapping), and still writes nothing.
func TestDryRunReportsItsRejects(t *testing.T) {
	p := &rejectingFake{}
	r := newFakeRig(t, &p.fake)
	cs := makeCustomers(6)
	cs[1].LastName, cs[4].LastName = "Bad1", "Bad4"
	var mu sync.Mutex
	var got []ledger.RejectRow
	eng, err := load.New(r.store, []partner.Provider{p}, []byte("outcomes-test-key-0123456789abcdef"), load.WithDryRun(nil),
		load.WithDryRunRejects(func(rr ledger.RejectRow) {
			mu.Lock()
			got = append(got, rr)
			mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	r.eng = eng
	src := load.SourceFunc(func(ctx context.Context, emit func(*model.Customer) error, reject func(model.Reject) error) error {
		if err := reject(model.Reject{Origin: model.Origin{File: "customers.csv", Line: 99}, EntityKey: "customer/X", Field: "email", Reason: "bad_email"}); err != nil {
			return err
		}
		return source(cs).Read(ctx, emit, reject)
	})
	sum, err := r.eng.Run(context.Background(), 0, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || sum.Rejects != 1 || sum.Providers["fake"].MapRejected != 2 {
		t.Fatalf("dry run handed over %d rejects (%+v), summary %d validation + %d mapping: want 1 + 2", len(got), got, sum.Rejects, sum.Providers["fake"].MapRejected)
	}
	for _, rr := range got {
		if rr.Reason == "partner_mapping" && rr.Provider != "fake" {
			t.Fatalf("mapping reject %+v does not name its partner", rr)
		}
	}
	if n := r.count(t, `SELECT (SELECT count(*) FROM ledger) + (SELECT count(*) FROM rejects) + (SELECT count(*) FROM sync_state)`); n != 0 {
		t.Fatalf("dry run wrote %d rows", n)
	}
}

// At debug level every batch the engine hands to a worker is logged with
// its partner, size and why it went.
func TestBatchFlushesAreLoggedAtDebug(t *testing.T) {
	p := &fake{batch: 4}
	r := newFakeRig(t, p)
	var logs bytes.Buffer
	r.with(t, load.WithLogger(logx.NewTo(zapcore.AddSync(&syncBuf{b: &logs}), false, zapcore.DebugLevel)))
	r.run(t, makeCustomers(10))
	out := logs.String()
	// Which reason each batch went for depends on timing (a quiet queue
	// flushes early); that every op went in a logged batch does not.
	sent := 0
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, `"msg":"batch flushed"`) {
			continue
		}
		var l struct {
			Partner, Reason string
			Size            int
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if l.Partner != "fake" || l.Size < 1 || l.Size > 4 || !strings.Contains(" full deadline idle drain cancelled ", " "+l.Reason+" ") {
			t.Errorf("batch line %s", line)
		}
		sent += l.Size
	}
	if sent != 10 {
		t.Fatalf("batch flush lines account for %d ops, want 10:\n%s", sent, out)
	}
	if !strings.Contains(out, `"msg":"checkpoint committed"`) || !strings.Contains(out, `"ledger_rows":`) {
		t.Fatalf("no debug line for a ledger checkpoint commit in:\n%s", out)
	}
}

// runs.counts keeps one set of snake_case keys, and still reads the Go
// field names earlier releases stored.
func TestCountsJSON(t *testing.T) {
	b, err := json.Marshal(&load.Counts{MapRejected: 2, NotSent: 3, NoUpdateAPI: 4, OK: 5, ErrorCodes: map[string]int64{"x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"map_rejected":2`, `"not_sent":3`, `"not_sent_no_update_api":4`, `"ok":5`, `"error_codes":{"x":1}`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("%s lacks %s", b, k)
		}
	}
	if strings.ContainsAny(string(b[1:2]), "ABCDEFGHIJKLMNOPQRSTUVWXYZ") || strings.Contains(string(b), `"OK"`) {
		t.Errorf("Go field names in %s", b)
	}
	var old load.Counts
	if err := json.Unmarshal([]byte(`{"Create":1,"MapRejected":2,"NotSent":3,"OK":4,"ErrorCodes":{"y":2}}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.Create != 1 || old.MapRejected != 2 || old.NotSent != 3 || old.OK != 4 || old.ErrorCodes["y"] != 2 {
		t.Errorf("legacy counts read as %+v", &old)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
