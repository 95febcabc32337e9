package clubready_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/golden"
	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/clubready"
	"github.com/northwind-data/etl/internal/providers/providertest"
	"github.com/northwind-data/etl/internal/sandbox"
)

func indent(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	return append(out.Bytes(), '\n')
}

// TestGoldenBodies pins both requests of an import, for the default card
// (with a code) and a second card (no code: fallbacks).
func TestGoldenBodies(t *testing.T) {
	var rec *providertest.Recorder
	e := newEnv(t, func(h http.Handler) http.Handler { rec = providertest.NewRecorder(h); return rec })
	c := newClient(t, e, nil)
	for i, name := range []string{"default_card", "second_card"} {
		op := ops(t, c, customer("C1"))[i]
		if r := providertest.SendOne(t, c, op, nil); r.Outcome != partner.OK {
			t.Fatalf("%s: %+v", name, r)
		}
		vault, imp := rec.ByPath(clubready.VaultPath)[i], rec.ByPath(clubready.ImportPath)[i]
		golden.Assert(t, "vault_request_"+name+".golden.json", indent(t, vault.Body))

		var issued clubready.VaultResponse
		var body map[string]any
		if json.Unmarshal(vault.Resp, &issued) != nil || json.Unmarshal(imp.Body, &body) != nil {
			t.Fatal("unreadable bodies")
		}
		if body["ProfileToken"] != issued.ProfileToken {
			t.Fatalf("%s: the import does not carry the token the vault just issued", name)
		}
		golden.Assert(t, "import_request_"+name+".golden.json",
			indent(t, bytes.Replace(imp.Body, []byte(issued.ProfileToken), []byte("PROFILE-TOKEN-ISSUED-BY-THE-VAULT"), 1)))

		if vault.Header.Get("Authorization") != "Bearer "+vaultKey || strings.Contains(vault.Query, apiKey) {
			t.Errorf("vault auth: %q, query %q", vault.Header.Get("Authorization"), vault.Query)
		}
		// The end user's IP travels in X-Forwarded-For, the wire name of
		// the DTO's XForwardedFor (published material).
		if imp.Query != "ApiKey="+apiKey || imp.Header.Get("X-Forwarded-For") != fwdIP || len(imp.Header.Values("XForwardedFor")) != 0 ||
			imp.Header.Get("Authorization") != "" {
			t.Errorf("import: query %q, X-Forwarded-For %q, XForwardedFor %q", imp.Query, imp.Header.Get("X-Forwarded-For"), imp.Header.Get("XForwardedFor"))
		}
	}
}

func TestImportCreatesProfilesAndNotesTheTokenFirst(t *testing.T) {
	e := newEnv(t, nil)
	c := newClient(t, e, nil)
	// The token must be durable before the import goes out: at each note,
	// the sandbox has imported nothing new yet.
	imported := 0
	j := &journal{before: func(string) error {
		if got := e.sb.State().Imports; got != imported {
			t.Errorf("note after the import: %d imports at note time, want %d", got, imported)
		}
		imported++
		return nil
	}}
	all := ops(t, c, customer("C1"))
	for i, op := range all {
		r := providertest.SendOne(t, c, op, j)
		want := []string{"1", "2"}[i]
		if r.Outcome != partner.OK || r.Err != nil || r.RemoteID != want || r.RequestID != "" || r.HTTPStatus != 200 || r.Attempts != 1 {
			t.Fatalf("op %d: %+v", i, r)
		}
	}
	st := e.sb.State()
	want := []clubready.ProfileState{
		{ID: 1, Owner: 100123, Last4: "1111", ExternalRef: "card/C1/K1", Preferred: true, ForwardedFor: fwdIP},
		{ID: 2, Owner: 100123, Last4: "4444", ExternalRef: "card/C1/K2", Preferred: false, ForwardedFor: fwdIP},
	}
	if len(st.Profiles) != 2 || st.Profiles[0] != want[0] || st.Profiles[1] != want[1] || st.Duplicates != 0 || st.TokensIssued != 2 {
		t.Fatalf("state %+v", st)
	}
	if notes := j.all(); len(notes) != 2 || notes[0] == notes[1] || len(notes[0]) < 1000 {
		t.Fatalf("notes: %d", len(notes))
	}
}

// advancingVault moves the clock by `by` after each of its first `times`
// tokens: the token waited that long before its import.
type advancingVault struct {
	clubready.Vault
	clock *sandbox.FakeClock
	by    time.Duration
	times int
	calls int
}

func (v *advancingVault) CreateProfile(ctx context.Context, req clubready.VaultRequest) (clubready.VaultToken, error) {
	tok, err := v.Vault.CreateProfile(ctx, req)
	v.calls++
	if v.calls <= v.times {
		v.clock.Advance(v.by)
	}
	return tok, err
}

func TestTokenTooOldIsReplacedBeforeTheImport(t *testing.T) {
	const wait = 4*time.Minute + 30*time.Second
	tests := []struct {
		name  string
		slow  string // "vault" or "journal"
		notes int
	}{
		{"slow vault", "vault", 1},     // never noted: it was too old on arrival
		{"slow journal", "journal", 2}, // noted, then too old to send
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			v := &advancingVault{Vault: newVault(t, e.url, vaultKey), clock: e.clock}
			j := &journal{}
			if tc.slow == "vault" {
				v.by, v.times = wait, 1
			} else {
				j.before = func(string) error {
					if len(j.all()) == 0 {
						e.clock.Advance(wait)
					}
					return nil
				}
			}
			c := newClient(t, e, func(cfg *clubready.Config) { cfg.Vault = v })
			r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], j)
			st := e.sb.State()
			if r.Outcome != partner.OK || r.RemoteID != "1" || r.Attempts != 1 {
				t.Fatalf("result %+v", r)
			}
			// The first token was never sent: no refusal, one profile.
			if v.calls != 2 || st.TokensIssued != 2 || st.Imports != 1 || st.ExpiredRefusals != 0 || len(st.Profiles) != 1 || st.Duplicates != 0 {
				t.Fatalf("vault calls %d, state %+v", v.calls, st)
			}
			if notes := j.all(); len(notes) != tc.notes || notes[len(notes)-1] == notes[0] && tc.notes > 1 {
				t.Fatalf("%d notes, want %d", len(notes), tc.notes)
			}
		})
	}
}

func TestTokenGrownOldWhileRetryingIsReplaced(t *testing.T) {
	// The first attempt meets a 429 (refused before processing) and the
	// token ages past MaxTokenAge before the retry goes out: the retry
	// takes a new token instead of sending one about to expire.
	var e *env
	e = newEnv(t, faulty(func(n int, _ http.Handler, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			e.clock.Advance(4*time.Minute + 30*time.Second)
			rateLimited(w)
			return true
		}
		return false
	}))
	c := newClient(t, e, nil)
	r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], &journal{})
	st := e.sb.State()
	if r.Outcome != partner.OK || r.RemoteID != "1" || r.Attempts != 2 {
		t.Fatalf("result %+v", r)
	}
	if st.TokensIssued != 2 || st.Imports != 1 || st.ExpiredRefusals != 0 || len(st.Profiles) != 1 {
		t.Fatalf("state %+v", st)
	}
}

func TestExpiredAnswerFetchesANewTokenOnce(t *testing.T) {
	// Our clock stands still while the partner's moves on (a slow
	// network, or drift): the import answers "expired".
	e := newEnv(t, nil)
	v := &advancingVault{Vault: newVault(t, e.url, vaultKey), clock: e.clock, by: 6 * time.Minute, times: 1}
	c := newClient(t, e, func(cfg *clubready.Config) {
		cfg.Vault, cfg.Now = v, func() time.Time { return providertest.T0 }
	})
	r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], &journal{})
	st := e.sb.State()
	if r.Outcome != partner.OK || r.RemoteID != "1" || r.Err != nil || r.Attempts != 2 {
		t.Fatalf("result %+v", r)
	}
	if st.ExpiredRefusals != 1 || st.TokensIssued != 2 || len(st.Profiles) != 1 || st.Duplicates != 0 {
		t.Fatalf("state %+v", st)
	}

	// A second "expired" is not refreshed again: something is wrong with
	// the clocks, and the op fails (retryable) without importing.
	v2 := &advancingVault{Vault: newVault(t, e.url, vaultKey), clock: e.clock, by: 6 * time.Minute, times: 2}
	c2 := newClient(t, e, func(cfg *clubready.Config) {
		cfg.Vault, cfg.Now = v2, func() time.Time { return providertest.T0 }
	})
	r = providertest.SendOne(t, c2, ops(t, c2, customer("C2"))[0], &journal{})
	if r.Outcome != partner.Failed || httpx.KindOf(r.Err) != httpx.Retryable || httpx.CodeOf(r.Err) != "token_expired" || v2.calls != 2 {
		t.Fatalf("second expiry: %+v (vault calls %d)", r, v2.calls)
	}
	if st := e.sb.State(); len(st.Profiles) != 1 {
		t.Fatalf("state %+v", st)
	}
}

func TestForgedTokenIsRejected(t *testing.T) {
	e := newEnv(t, nil)
	// Another vault, signing with another key: the import must refuse it.
	forger := httptest.NewServer(clubready.NewSandbox(clubready.SandboxOptions{VaultKey: vaultKey, Clock: e.clock, SigningKey: []byte("not the vault's key")}))
	t.Cleanup(forger.Close)
	c := newClient(t, e, func(cfg *clubready.Config) { cfg.Vault = newVault(t, forger.URL, vaultKey) })
	r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], nil)
	var he *httpx.Error
	if r.Outcome != partner.Rejected || !errors.As(r.Err, &he) || he.Kind != httpx.Rejected || he.Status != 200 ||
		!strings.Contains(he.Message, "signature") {
		t.Fatalf("result %+v", r)
	}
	if st := e.sb.State(); st.InvalidTokenRefusals != 1 || len(st.Profiles) != 0 {
		t.Fatalf("state %+v", st)
	}
}

func TestSuccessFalseIsARejectWithThePartnersMessage(t *testing.T) {
	tests := []struct {
		message, want string
	}{
		{"Payment method declined by the processor", "Payment method declined by the processor"},
		// A message echoing a card number is masked.
		{"Card 4111111111111111 is not accepted", "Card 411111******1111 is not accepted"},
	}
	for _, tc := range tests {
		e := newEnv(t, faulty(func(_ int, _ http.Handler, w http.ResponseWriter, _ *http.Request) bool {
			sandbox.WriteJSON(w, http.StatusOK, clubready.ImportResponse{Success: false, Message: tc.message})
			return true
		}))
		c := newClient(t, e, nil)
		r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], nil)
		var he *httpx.Error
		if r.Outcome != partner.Rejected || r.RemoteID != "" || !errors.As(r.Err, &he) || he.Kind != httpx.Rejected ||
			he.Message != tc.want || he.Code != "import_refused" || r.HTTPStatus != 200 {
			t.Errorf("%q: %+v", tc.message, r)
		}
		noCardData(t, "error", r.Err.Error())
	}
}

func TestLostAnswerIsRetriedWithTheSameToken(t *testing.T) {
	e := newEnv(t, faulty(func(n int, next http.Handler, w http.ResponseWriter, r *http.Request) bool {
		if n == 1 {
			drop(t, next, w, r)
			return true
		}
		return false
	}))
	c := newClient(t, e, nil)
	j := &journal{}
	r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], j)
	if r.Outcome != partner.OK || r.Err != nil || r.RemoteID != "" || r.RequestID != clubready.RequestConfirmedByReuse || r.Attempts != 2 {
		t.Fatalf("result %+v", r)
	}
	st := e.sb.State()
	if len(st.Profiles) != 1 || st.Duplicates != 0 || st.TokenReuseRefusals != 1 || st.Imports != 2 || st.TokensIssued != 1 {
		t.Fatalf("state %+v", st)
	}
	if len(j.all()) != 1 {
		t.Fatalf("a retry of the same token needs no new note: %d notes", len(j.all()))
	}
}

func TestLostAnswerThenOutageStaysUncertain(t *testing.T) {
	// The answer to the first attempt is lost, then the partner answers
	// 503 until httpx gives up: the last error is retryable, but the card
	// may be imported, so the op must stay uncertain (its intent open),
	// not failed (which the rerun would send with a fresh token).
	e := newEnv(t, faulty(func(n int, next http.Handler, w http.ResponseWriter, r *http.Request) bool {
		if n == 1 {
			drop(t, next, w, r)
		} else {
			unavailable(w)
		}
		return true
	}))
	c := newClient(t, e, nil)
	r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], &journal{})
	if r.Outcome != partner.Uncertain || httpx.KindOf(r.Err) != httpx.Uncertain || r.Attempts != 3 {
		t.Fatalf("result %+v", r)
	}
}

// TestRefusedBeforeProcessingFails: answers that prove the import did
// not happen close the op as failed (the rerun vaults a new token).
func TestRefusedBeforeProcessingFails(t *testing.T) {
	e := newEnv(t, faulty(func(_ int, _ http.Handler, w http.ResponseWriter, _ *http.Request) bool {
		rateLimited(w)
		return true
	}))
	c := newClient(t, e, nil)
	r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], &journal{})
	if r.Outcome != partner.Failed || httpx.KindOf(r.Err) != httpx.Retryable || r.HTTPStatus != 429 || r.Attempts != 3 {
		t.Fatalf("result %+v", r)
	}
}

func TestResolve(t *testing.T) {
	ctx := context.Background()

	t.Run("live token whose import succeeded", func(t *testing.T) {
		e := newEnv(t, faulty(func(n int, next http.Handler, w http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				drop(t, next, w, r)
				return true
			}
			return false
		}))
		c := newClient(t, e, func(cfg *clubready.Config) { cfg.HTTP.MaxAttempts = 1 })
		j := &journal{}
		op := ops(t, c, customer("C1"))[0]
		if r := providertest.SendOne(t, c, op, j); r.Outcome != partner.Uncertain {
			t.Fatalf("lost answer, no retry: %+v", r)
		}
		// The rerun: the engine hands the noted token back.
		op.Intent = j.all()[0]
		e.clock.Advance(2 * time.Minute)
		r := c.Resolve(ctx, op, j)
		if r.Outcome != partner.OK || r.Err != nil || r.RequestID != clubready.RequestConfirmedByReuse || r.EntityKey != op.EntityKey {
			t.Fatalf("resolve %+v", r)
		}
		if st := e.sb.State(); len(st.Profiles) != 1 || st.TokensIssued != 1 || len(j.all()) != 1 {
			t.Fatalf("state %+v", st)
		}
	})

	t.Run("live token never sent", func(t *testing.T) {
		// A crash between the note and the import.
		e := newEnv(t, nil)
		c := newClient(t, e, nil)
		op := ops(t, c, customer("C1"))[0]
		tok, err := newVault(t, e.url, vaultKey).CreateProfile(ctx, op.Payload.(clubready.VaultRequest))
		if err != nil || !tok.Expires.Equal(providertest.T0.Add(5*time.Minute)) {
			t.Fatalf("vault: %v, expires %v", err, tok.Expires)
		}
		op.Intent = tok.ProfileToken
		r := c.Resolve(ctx, op, nil)
		if r.Outcome != partner.OK || r.RemoteID != "1" || r.HTTPStatus != 200 {
			t.Fatalf("resolve %+v", r)
		}
		if st := e.sb.State(); len(st.Profiles) != 1 || st.TokensIssued != 1 || !st.Profiles[0].Preferred {
			t.Fatalf("state %+v", st)
		}
	})

	unresolved := []struct {
		name   string
		intent func(t *testing.T, e *env, op partner.Op) string
	}{
		{"expired token", func(t *testing.T, e *env, op partner.Op) string {
			tok, err := newVault(t, e.url, vaultKey).CreateProfile(ctx, op.Payload.(clubready.VaultRequest))
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(5*time.Minute + time.Second)
			return tok.ProfileToken
		}},
		{"no token", func(*testing.T, *env, partner.Op) string { return "" }},
		{"unreadable token", func(*testing.T, *env, partner.Op) string { return "not-a-jwt" }},
	}
	for _, tc := range unresolved {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			c := newClient(t, e, nil)
			op := ops(t, c, customer("C1"))[0]
			op.Intent = tc.intent(t, e, op)
			r := c.Resolve(ctx, op, nil)
			var he *httpx.Error
			if r.Outcome != partner.Uncertain || !errors.As(r.Err, &he) || he.Kind != httpx.Uncertain || he.Code != partner.CodeNeedsOperator {
				t.Fatalf("resolve %+v", r)
			}
			for _, want := range []string{"411111******1111", "card/C1/K1", "member 100123", "ending 1111", "etl intents settle --entity card/C1/K1"} {
				if !strings.Contains(he.Message, want) {
					t.Errorf("message lacks %q: %s", want, he.Message)
				}
			}
			noCardData(t, "resolve error", r.Err.Error())
			if st := e.sb.State(); st.Imports != 0 || len(st.Profiles) != 0 {
				t.Fatalf("resolve sent blind: %+v", st)
			}
		})
	}

	t.Run("outage keeps it uncertain", func(t *testing.T) {
		e := newEnv(t, faulty(func(_ int, _ http.Handler, w http.ResponseWriter, _ *http.Request) bool {
			unavailable(w)
			return true
		}))
		c := newClient(t, e, nil)
		op := ops(t, c, customer("C1"))[0]
		tok, err := newVault(t, e.url, vaultKey).CreateProfile(ctx, op.Payload.(clubready.VaultRequest))
		if err != nil {
			t.Fatal(err)
		}
		op.Intent = tok.ProfileToken
		// Failed would settle the intent and let the rerun send a fresh
		// token, though the previous run's import may have gone through.
		if r := c.Resolve(ctx, op, nil); r.Outcome != partner.Uncertain || r.Attempts != 3 {
			t.Fatalf("resolve %+v", r)
		}
	})
}

func TestBadCredentialsAreFatal(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		mod  func(*clubready.Config)
		op   string
	}{
		{"api key", func(cfg *clubready.Config) { cfg.ApiKey = "wrong-key-Qe19" }, "POST " + clubready.ImportPath},
		{"vault key", func(cfg *clubready.Config) { cfg.VaultKey = "wrong-key-Qe19" }, "POST " + clubready.VaultPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, e, tc.mod)
			r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], &journal{})
			var he *httpx.Error
			if r.Outcome != partner.Failed || !errors.As(r.Err, &he) || he.Kind != httpx.Fatal || he.Status != 401 ||
				he.Code != "Unauthorized" || he.Op != tc.op || r.HTTPStatus != 401 {
				t.Fatalf("result %+v", r)
			}
			if strings.Contains(r.Err.Error(), "wrong-key-Qe19") {
				t.Fatalf("the key leaked: %v", r.Err)
			}
		})
	}
	if st := e.sb.State(); len(st.Profiles) != 0 || st.Unauthorized != 2 {
		t.Fatalf("state %+v", st)
	}
}

func TestApiKeyNeverInAnError(t *testing.T) {
	var errs []error
	collect := func(r partner.Result) {
		if r.Err == nil {
			t.Errorf("no error: %+v", r)
			return
		}
		errs = append(errs, r.Err)
	}

	// Refused connection.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	e := newEnv(t, nil)
	c := newClient(t, e, func(cfg *clubready.Config) { cfg.BaseURL = deadURL })
	collect(providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], nil))

	// Timeout, lost answer, 503, Success:false, 401, 404.
	faults := []func(w http.ResponseWriter, r *http.Request){
		func(w http.ResponseWriter, r *http.Request) {
			// Reading the body lets the server notice the client leaving.
			_, _ = io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		},
		func(w http.ResponseWriter, _ *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			_ = conn.Close()
		},
		func(w http.ResponseWriter, _ *http.Request) { unavailable(w) },
		func(w http.ResponseWriter, r *http.Request) {
			// A partner echoing the request URL must not leak it either.
			sandbox.WriteJSON(w, 200, clubready.ImportResponse{Message: "no such token for " + r.URL.String()})
		},
		func(w http.ResponseWriter, r *http.Request) {
			sandbox.WriteJSON(w, 401, clubready.ErrorResponse{ResponseStatus: clubready.ResponseStatus{ErrorCode: "Unauthorized", Message: "bad key " + r.URL.RawQuery}})
		},
		func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
	}
	for _, f := range faults {
		e := newEnv(t, faulty(func(_ int, _ http.Handler, w http.ResponseWriter, r *http.Request) bool { f(w, r); return true }))
		c := newClient(t, e, func(cfg *clubready.Config) { cfg.HTTP.Timeout = 100 * time.Millisecond; cfg.HTTP.MaxAttempts = 2 })
		collect(providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], nil))
		op := ops(t, c, customer("C1"))[0]
		tok, err := newVault(t, e.url, vaultKey).CreateProfile(context.Background(), op.Payload.(clubready.VaultRequest))
		if err != nil {
			t.Fatal(err)
		}
		op.Intent = tok.ProfileToken
		collect(c.Resolve(context.Background(), op, nil))
	}
	if len(errs) != 13 {
		t.Fatalf("%d errors collected", len(errs))
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), apiKey) {
			t.Errorf("the ApiKey leaked: %v", err)
		}
		noCardData(t, "error", err.Error())
	}
}

func TestUpdateAndDeactivateAreNotSent(t *testing.T) {
	e := newEnv(t, nil)
	c := newClient(t, e, nil)
	op := ops(t, c, customer("C1"))[0]
	op.Kind, op.RemoteID = partner.Update, "42"
	r := providertest.SendOne(t, c, op, &journal{})
	if r.Outcome != partner.OK || r.RemoteID != "42" || r.RequestID != clubready.RequestNoUpdateAPI {
		t.Fatalf("update %+v", r)
	}
	op.Kind, op.Payload = partner.Deactivate, nil
	if r := providertest.SendOne(t, c, op, nil); r.Outcome != partner.Failed || httpx.KindOf(r.Err) != httpx.Fatal {
		t.Fatalf("deactivate %+v", r)
	}
	if _, ok := any(c).(partner.Deactivator); ok {
		t.Error("ClubReady documents no deactivation, yet the client claims to deactivate")
	}
	if st := e.sb.State(); st.TokensIssued != 0 || st.Imports != 0 {
		t.Fatalf("state %+v", st)
	}
}

func TestJournalFailureSendsNothing(t *testing.T) {
	e := newEnv(t, nil)
	c := newClient(t, e, nil)
	j := &journal{before: func(string) error { return errors.New("ledger down") }}
	r := providertest.SendOne(t, c, ops(t, c, customer("C1"))[0], j)
	if r.Outcome != partner.Failed || httpx.KindOf(r.Err) != httpx.Retryable || httpx.CodeOf(r.Err) != "journal" {
		t.Fatalf("result %+v", r)
	}
	if st := e.sb.State(); st.Imports != 0 || st.TokensIssued != 1 {
		t.Fatalf("state %+v", st)
	}
}

func TestVaultRefusalIsARejectWithoutCardData(t *testing.T) {
	e := newEnv(t, nil)
	c := newClient(t, e, nil)
	op := ops(t, c, customer("C1"))[0]
	req := op.Payload.(clubready.VaultRequest)
	req.ExpYear = 2020 // expired by the sandbox's clock
	op.Payload = req
	r := providertest.SendOne(t, c, op, &journal{})
	var he *httpx.Error
	if r.Outcome != partner.Rejected || !errors.As(r.Err, &he) || he.Status != 400 || he.Code != "ValidationException" ||
		he.Op != "POST "+clubready.VaultPath || !strings.Contains(he.Message, "expired") {
		t.Fatalf("result %+v", r)
	}
	noCardData(t, "error", r.Err.Error())
}

func TestNewValidatesConfig(t *testing.T) {
	ok := clubready.Config{BaseURL: "http://127.0.0.1:1", ApiKey: apiKey, VaultURL: "http://127.0.0.1:1", VaultKey: vaultKey}
	tests := []struct {
		name string
		mod  func(*clubready.Config)
	}{
		{"no api key", func(c *clubready.Config) { c.ApiKey = "" }},
		{"no vault key", func(c *clubready.Config) { c.VaultKey = "" }},
		{"no vault url", func(c *clubready.Config) { c.VaultURL = "" }},
		{"bad base url", func(c *clubready.Config) { c.BaseURL = "clubready.com" }},
		{"bad forwarded for", func(c *clubready.Config) { c.ForwardedFor = "not an ip" }},
		{"token age past the lifetime", func(c *clubready.Config) { c.MaxTokenAge = 5 * time.Minute }},
		{"negative token age", func(c *clubready.Config) { c.MaxTokenAge = -time.Second }},
	}
	for _, tc := range tests {
		cfg := ok
		tc.mod(&cfg)
		if _, err := clubready.New(cfg); err == nil {
			t.Errorf("%s: no error", tc.name)
		} else if strings.Contains(err.Error(), apiKey) || strings.Contains(err.Error(), vaultKey) {
			t.Errorf("%s: a key leaked: %v", tc.name, err)
		}
	}
	// A vault of one's own needs no vault URL or key.
	cfg := ok
	cfg.VaultURL, cfg.VaultKey, cfg.Vault = "", "", &advancingVault{}
	if _, err := clubready.New(cfg); err != nil {
		t.Fatalf("custom vault: %v", err)
	}
}
