package datafeed_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/datafeed"
	"github.com/northwind-data/etl/internal/sandbox"
)

// sessionEnv is a sandbox and a client that starts its own sessions, both
// on one fake clock.
type sessionEnv struct {
	clock *sandbox.FakeClock
	sb    *datafeed.Sandbox
	c     *datafeed.Client
}

func newSessionEnv(t *testing.T) *sessionEnv {
	t.Helper()
	clock := sandbox.NewFakeClock(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{Clock: clock})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	c, err := datafeed.New(datafeed.Config{BaseURL: srv.URL, Session: datafeed.SessionOptions{Now: clock.Now},
		HTTP: httpx.Config{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return &sessionEnv{clock: clock, sb: sb, c: c}
}

func (e *sessionEnv) send(t *testing.T, ops []partner.Op) {
	t.Helper()
	for _, r := range e.c.Send(context.Background(), ops, nil) {
		if r.Outcome != partner.OK {
			t.Fatalf("%s: %s %v", r.EntityKey, r.Outcome, r.Err)
		}
	}
}

func TestSessionIsRenewedBeforeItsHourEnds(t *testing.T) {
	e := newSessionEnv(t)
	e.send(t, ops(2))
	e.clock.Advance(50 * time.Minute)
	e.send(t, ops(2))
	if st := e.sb.State(); st.Sessions != 1 {
		t.Fatalf("%d sessions after 50 minutes; want the first one reused", st.Sessions)
	}
	// 56 minutes in: within the renewal margin (5m) of the hour.
	e.clock.Advance(6 * time.Minute)
	e.send(t, ops(2))
	st := e.sb.State()
	if st.Sessions != 2 || st.Unauthorized != 0 {
		t.Fatalf("sessions %d, 401s %d; want a second session started before the first expired, no 401", st.Sessions, st.Unauthorized)
	}
}

func TestSessionIsRenewedOnceOn401(t *testing.T) {
	e := newSessionEnv(t)
	e.send(t, ops(2))
	e.sb.ExpireSessions() // the partner ends it early: expiry shows only as a 401
	e.send(t, ops(2))
	st := e.sb.State()
	if st.Sessions != 2 || st.Unauthorized != 1 || st.Accepted != 2 {
		t.Fatalf("sessions %d, 401s %d, accepted %d; want one new session and the call retried once", st.Sessions, st.Unauthorized, st.Accepted)
	}
}

// A token the partner refuses even when fresh (say, the wrong scope or an
// institution not enabled) is fatal after one renewal, not a loop.
func TestA401RightAfterAFreshSessionIsFatal(t *testing.T) {
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{})
	var starts atomic.Int32
	srv := httptest.NewServer(sb)
	defer srv.Close()
	ses, err := datafeed.NewSession(datafeed.SessionOptions{Start: func(context.Context) (string, error) {
		starts.Add(1)
		return "refused-token", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := datafeed.New(datafeed.Config{BaseURL: srv.URL, Tokens: ses, HTTP: httpx.Config{BackoffBase: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	res := c.Send(context.Background(), ops(3), nil)
	if res[0].Outcome != partner.Failed || httpx.KindOf(res[0].Err) != httpx.Fatal {
		t.Fatalf("result %+v; want Failed with a Fatal error", res[0])
	}
	if st := sb.State(); starts.Load() != 2 || st.Unauthorized != 2 {
		t.Fatalf("%d sessions, %d calls refused; want 2 and 2", starts.Load(), st.Unauthorized)
	}
}

func TestConcurrentWorkersShareOneSession(t *testing.T) {
	e := newSessionEnv(t)
	run := func() {
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, r := range e.c.Send(context.Background(), ops(3), nil) {
					if r.Outcome != partner.OK {
						t.Errorf("%s: %s %v", r.EntityKey, r.Outcome, r.Err)
					}
				}
			}()
		}
		wg.Wait()
	}
	run()
	if st := e.sb.State(); st.Sessions != 1 {
		t.Fatalf("16 workers started %d sessions; want 1", st.Sessions)
	}
	e.sb.ExpireSessions()
	run()
	if st := e.sb.State(); st.Sessions != 2 || st.Accepted != 32 {
		t.Fatalf("after every worker saw a 401: %d sessions, %d accepted; want one renewal for all of them and 32 accepted", st.Sessions, st.Accepted)
	}
}

func TestSessionWaitersRespectTheirContext(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ses, _ := datafeed.NewSession(datafeed.SessionOptions{Start: func(ctx context.Context) (string, error) {
		close(entered)
		<-release
		return "t", nil
	}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = ses.Token(context.Background())
	}()
	<-entered
	// The first caller holds the renewal; a second one whose context ends
	// must not wait for it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ses.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v; want context.Canceled", err)
	}
	close(release)
	<-done
	if tok, err := ses.Token(context.Background()); tok != "t" || err != nil || ses.Starts() != 1 {
		t.Fatalf("after the renewal: %q %v, %d starts; want the renewed token, one start", tok, err, ses.Starts())
	}
}

func TestStartSessionSendsTheInstitutionScope(t *testing.T) {
	var got []byte
	sb := datafeed.NewSandbox(datafeed.SandboxOptions{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == datafeed.PathStartSession {
			got = readAll(r)
			if r.Header.Get("Authorization") != "" {
				t.Error("startSession carries an Authorization header")
			}
		}
		if r.URL.Path == datafeed.PathCustomers && r.Header.Get("Authorization") != "" {
			t.Error("a data call carries an Authorization header; the partner takes X-CDLX-Session-Token")
		}
		sb.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, _ := datafeed.New(datafeed.Config{BaseURL: srv.URL})
	for _, r := range c.Send(context.Background(), ops(1), nil) {
		if r.Outcome != partner.OK {
			t.Fatalf("%v", r.Err)
		}
	}
	if string(got) != `{"scopes":["api:institution"]}` {
		t.Fatalf("startSession body %s", got)
	}
}

// A startSession the partner refuses (certificate not enabled for the
// institution scope, say) is fatal at once: no second session start.
func TestARefusedStartSessionIsFatal(t *testing.T) {
	starts := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == datafeed.PathStartSession {
			starts++
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"SessionValidationException","title":"Unauthorized","status":401}`))
	}))
	defer srv.Close()
	c, _ := datafeed.New(datafeed.Config{BaseURL: srv.URL})
	res := c.Send(context.Background(), ops(2), nil)
	if res[0].Outcome != partner.Failed || httpx.KindOf(res[0].Err) != httpx.Fatal || starts != 1 {
		t.Fatalf("%s %v after %d session starts; want fatal after one", res[0].Outcome, res[0].Err, starts)
	}
}
