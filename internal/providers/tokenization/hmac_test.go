package tokenization_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/northwind-data/etl/internal/providers/providertest"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/tokenization"
	"github.com/northwind-data/etl/internal/sandbox"
)

// The golden responses were computed independently of this package:
//
//	import hmac, hashlib, base64
//	def sts(m, p, n, t, b):
//	    return "\n".join([m + " " + p, n, t, "", hashlib.sha256(b).hexdigest()])
//	n, t = "0123456789abcdef0123456789abcdef", "1795000000"
//	raw = b"shieldconex-shared-secret"
//	b64 = base64.b64encode(raw).decode()  # c2hpZWxkY29uZXgtc2hhcmVkLXNlY3JldA==
//	hmac.new(raw, sts("POST", "/api/v1/clients", n, t, b'{"name":"etl-C1","isActive":true}').encode(), hashlib.sha256).hexdigest()
//	hmac.new(raw, sts("GET", "/api/v1/clients", n, t, b"").encode(), hashlib.sha256).hexdigest()
//	hmac.new(base64.b64decode(b64), sts("PATCH", "/api/v1/clients/872", n, t, b'{"isActive":false}').encode(), hashlib.sha256).hexdigest()
//	hmac.new(b64.encode(), sts("PATCH", "/api/v1/clients/872", n, t, b'{"isActive":false}').encode(), hashlib.sha256).hexdigest()
const (
	goldenNonce  = "0123456789abcdef0123456789abcdef"
	goldenTime   = 1795000000
	goldenSecret = "shieldconex-shared-secret"
	goldenB64    = "c2hpZWxkY29uZXgtc2hhcmVkLXNlY3JldA=="
)

func TestHMACGoldenVectors(t *testing.T) {
	tests := []struct {
		name, method, url, body string
		secret                  string
		base64                  bool
		wantToSign, wantResp    string
	}{
		{name: "POST with a body", method: "POST", url: "https://portal-staging.shieldconex.com:4010/api/v1/clients",
			body: `{"name":"etl-C1","isActive":true}`, secret: goldenSecret,
			wantToSign: "POST /api/v1/clients\n" + goldenNonce + "\n1795000000\n\n6cf9dcf8747e6895dc73a282ce11b1b94fdba1d5e929001b1fea0f227209e688",
			wantResp:   "5c563768f790d88802cdbc1fc0b7981cf1cbe8818d865e80b161f88c9cfcf69a"},
		{name: "GET without a body: path only, no query, host or port", method: "GET",
			url: "https://portal-staging.shieldconex.com:4010/api/v1/clients?partner=792&take=100", secret: goldenSecret,
			wantToSign: "GET /api/v1/clients\n" + goldenNonce + "\n1795000000\n\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			wantResp:   "7fe8075dc95eb4d7286afd716b714d7ff39c3e93b023bae9a9dcd955ddc43a3d"},
		{name: "base64 secret decoded", method: "PATCH", url: "https://portal.shieldconex.com:4010/api/v1/clients/872",
			body: `{"isActive":false}`, secret: goldenB64, base64: true,
			wantToSign: "PATCH /api/v1/clients/872\n" + goldenNonce + "\n1795000000\n\n5ec1ef39624b7e51bdf3164d7d56f669999e2b744720b8633d76e0223a16d164",
			wantResp:   "a08a9c3ef7c88ae38a3e2a8edf213edffbe81e816e3cc84b01f80507232e3fde"},
		{name: "base64-looking secret used raw", method: "PATCH", url: "https://portal.shieldconex.com:4010/api/v1/clients/872",
			body: `{"isActive":false}`, secret: goldenB64,
			wantToSign: "PATCH /api/v1/clients/872\n" + goldenNonce + "\n1795000000\n\n5ec1ef39624b7e51bdf3164d7d56f669999e2b744720b8633d76e0223a16d164",
			wantResp:   "5c2ca243ab835067294a8e6689bcdfc0edf99eaef8d2f2cd89eda5a14b17dfa5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tokenization.HMACSigner(tokenization.HMACOptions{Username: user, Secret: tc.secret, SecretBase64: tc.base64,
				Now: func() time.Time { return time.Unix(goldenTime, 0) }, Nonce: func() (string, error) { return goldenNonce, nil }})
			if err != nil {
				t.Fatal(err)
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r, _ := http.NewRequest(tc.method, tc.url, body)
			if err := s.Sign(r); err != nil {
				t.Fatal(err)
			}
			want := `Hmac username="` + user + `", nonce="` + goldenNonce + `", timestamp="1795000000", response="` + tc.wantResp + `"`
			if got := r.Header.Get("Authorization"); got != want {
				t.Errorf("Authorization\n got %s\nwant %s", got, want)
			}
			var b []byte
			if tc.body != "" {
				b = []byte(tc.body)
			}
			if got := tokenization.StringToSign(tc.method, r.URL.EscapedPath(), goldenNonce, "1795000000", b); got != tc.wantToSign {
				t.Errorf("string to sign\n got %q\nwant %q", got, tc.wantToSign)
			}
			// The bytes hashed are the bytes sent.
			var sent []byte
			if r.Body != nil {
				sent, _ = io.ReadAll(r.Body)
			}
			if string(sent) != tc.body || r.ContentLength != int64(len(tc.body)) {
				t.Errorf("sends %q (length %d), signed %q", sent, r.ContentLength, tc.body)
			}
		})
	}
}

// A body that cannot be rewound (no GetBody) is read once, and exactly
// those bytes are sent; a retry signs afresh.
func TestHMACBodyWithoutGetBody(t *testing.T) {
	s, _ := tokenization.HMACSigner(tokenization.HMACOptions{Username: user, Secret: goldenSecret,
		Now: func() time.Time { return time.Unix(goldenTime, 0) }, Nonce: func() (string, error) { return goldenNonce, nil }})
	r, _ := http.NewRequest("POST", "https://portal-staging.shieldconex.com:4010/api/v1/clients", nil)
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader(`{"name":"etl-C1",`), strings.NewReader(`"isActive":true}`)))
	if err := s.Sign(r); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(r.Header.Get("Authorization"), `response="5c563768f790d88802cdbc1fc0b7981cf1cbe8818d865e80b161f88c9cfcf69a"`) {
		t.Fatalf("Authorization %s", r.Header.Get("Authorization"))
	}
	if b, _ := io.ReadAll(r.Body); string(b) != `{"name":"etl-C1","isActive":true}` {
		t.Fatalf("sends %q", b)
	}
}

func TestHMACSignerChecksOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    tokenization.HMACOptions
	}{
		{"no username", tokenization.HMACOptions{Secret: "s"}},
		{"no secret", tokenization.HMACOptions{Username: user}},
		{"quote in username", tokenization.HMACOptions{Username: `a"b`, Secret: "s"}},
		{"comma in username", tokenization.HMACOptions{Username: "Doe, J", Secret: "s"}},
		{"secret not base64", tokenization.HMACOptions{Username: user, Secret: "not base64!", SecretBase64: true}},
	} {
		_, err := tokenization.HMACSigner(tc.o)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
		} else if strings.Contains(err.Error(), "base64!") {
			t.Errorf("%s: error echoes the secret: %v", tc.name, err)
		}
	}
	s, _ := tokenization.HMACSigner(tokenization.HMACOptions{Username: user, Secret: goldenSecret})
	if got := fmt.Sprintf("%v %+v %#v", s, s, s); strings.Contains(got, goldenSecret) {
		t.Fatalf("signer prints its secret: %s", got)
	}
}

// hmacSandbox serves a sandbox whose user may sign only (no password).
func hmacSandbox(t *testing.T, clock sandbox.Clock) (*tokenization.Sandbox, string) {
	t.Helper()
	sb := tokenization.NewSandbox(tokenization.SandboxOptions{Username: user, HMACSecret: goldenB64, HMACSecretBase64: true, Clock: clock})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return sb, srv.URL
}

// The sandbox checks signature, nonce and timestamp as published and
// answers 401 without a body.
func TestSandboxHMACChecks(t *testing.T) {
	clock := providertest.Clock()
	sb, url := hmacSandbox(t, clock)
	key := []byte("shieldconex-shared-secret") // goldenB64 decoded
	type req struct {
		method, path, body string
		signPath, signBody *string // what the signature covers, when not what is sent
		user, nonce        string
		ts                 time.Time
		rawAuth            string
		key                []byte
	}
	send := func(r req) (int, []byte) {
		if r.user == "" {
			r.user = user
		}
		if r.key == nil {
			r.key = key
		}
		sp, _, _ := strings.Cut(r.path, "?") // the published string has the path only
		sbody := r.body
		if r.signPath != nil {
			sp = *r.signPath
		}
		if r.signBody != nil {
			sbody = *r.signBody
		}
		ts := fmt.Sprint(r.ts.Unix())
		var b []byte
		if sbody != "" {
			b = []byte(sbody)
		}
		auth := `Hmac username="` + r.user + `", nonce="` + r.nonce + `", timestamp="` + ts + `", response="` +
			tokenization.HMACResponse(r.key, tokenization.StringToSign(r.method, sp, r.nonce, ts, b)) + `"`
		if r.rawAuth != "" {
			auth = r.rawAuth
		}
		var body any
		if r.body != "" {
			body = r.body
		}
		rep := providertest.Call(t, r.method, url+r.path, map[string]string{"Authorization": auth}, body)
		return rep.Status, rep.Body
	}
	list := clients + "?partner=792"
	create := `{"name":"etl-H1","isActive":true,"directPartner":{"id":792},"contact":{"firstName":"A","lastName":"B","email":"a@example.com"}}`
	other := `{"name":"etl-H2","isActive":true,"directPartner":{"id":792},"contact":{"firstName":"A","lastName":"B","email":"a@example.com"}}`
	listPath := clients
	now := providertest.T0
	tests := []struct {
		name    string
		advance time.Duration
		r       req
		want    int
	}{
		{"signed list", 0, req{method: "GET", path: list, nonce: "n1", ts: now}, 200},
		{"signed create", 0, req{method: "POST", path: clients, body: create, nonce: "n2", ts: now}, 201},
		{"nonce seen again", time.Minute, req{method: "GET", path: list, nonce: "n1", ts: now.Add(time.Minute)}, 401},
		{"body not the one signed", 0, req{method: "POST", path: clients, body: other, signBody: &create, nonce: "n3", ts: now.Add(time.Minute)}, 401},
		{"query signed with the path", 0, req{method: "GET", path: list, signPath: &list, nonce: "n4", ts: now.Add(time.Minute)}, 401},
		{"path only is signed", 0, req{method: "GET", path: list, signPath: &listPath, nonce: "n5", ts: now.Add(time.Minute)}, 200},
		{"another method", 0, req{method: "DELETE", path: clients + "/1", signPath: nil, nonce: "n6", ts: now.Add(time.Minute), rawAuth: ""}, 404},
		{"wrong secret", 0, req{method: "GET", path: list, nonce: "n7", ts: now.Add(time.Minute), key: []byte(goldenB64)}, 401},
		{"wrong user", 0, req{method: "GET", path: list, nonce: "n8", ts: now.Add(time.Minute), user: "someone@example.com"}, 401},
		{"timestamp 14 minutes old", 0, req{method: "GET", path: list, nonce: "n9", ts: now.Add(time.Minute - 14*time.Minute)}, 200},
		{"timestamp 16 minutes old", 0, req{method: "GET", path: list, nonce: "n10", ts: now.Add(time.Minute - 16*time.Minute)}, 401},
		{"timestamp 16 minutes ahead", 0, req{method: "GET", path: list, nonce: "n11", ts: now.Add(17 * time.Minute)}, 401},
		{"malformed header", 0, req{method: "GET", path: list, rawAuth: `Hmac username="` + user + `", nonce="n12"`}, 401},
		{"basic for a user without a password", 0, req{method: "GET", path: list, rawAuth: "Basic cG9ydGFsQGV4YW1wbGUuY29tOg=="}, 401},
		// 16 minutes after its first use the nonce is forgotten.
		{"nonce reused after the window", 16 * time.Minute, req{method: "GET", path: list, nonce: "n1", ts: now.Add(17 * time.Minute)}, 200},
	}
	for _, tc := range tests {
		clock.Advance(tc.advance)
		status, out := send(tc.r)
		if status != tc.want {
			t.Errorf("%s: HTTP %d %s, want %d", tc.name, status, out, tc.want)
		}
		if status == http.StatusUnauthorized && len(out) != 0 {
			t.Errorf("%s: 401 with a body %q; published without", tc.name, out)
		}
	}
	if st := sb.State(); st.Totals.Creates != 1 || st.Totals.Unauthorized != 9 {
		t.Fatalf("totals %+v", st.Totals)
	}
}

// The client signs with HMAC when configured, and every kind of call the
// run makes passes the sandbox's checks, retries included (a fresh nonce
// each attempt).
func TestHMACClientAgainstSandbox(t *testing.T) {
	sb, url := hmacSandbox(t, sandbox.RealClock{})
	c := newClient(t, url, func(cfg *tokenization.Config) {
		cfg.Auth, cfg.Password, cfg.Secret, cfg.SecretBase64 = tokenization.AuthHMAC, "", goldenB64, true
	})
	first := providertest.SendOne(t, c, createOp(t, c, customer("C1")), nil)
	mustOK(t, "create", first)
	upd := mapOne(t, c, customer("C1"))
	upd.Kind, upd.RemoteID = partner.Update, first.RemoteID
	sb.FailNext(1) // a 500, then the retry with a fresh nonce
	r := providertest.SendOne(t, c, upd, nil)
	mustOK(t, "update", r)
	if r.Attempts != 2 {
		t.Fatalf("update took %d attempts, want 2 (a 500 and a retry)", r.Attempts)
	}
	mustOK(t, "deactivate", c.Deactivate(ctx, partner.Op{EntityKey: "customer/C1", Kind: partner.Deactivate, RemoteID: first.RemoteID}))
	if st := sb.State(); st.Totals.Unauthorized != 0 || st.Totals.Creates != 1 || st.Totals.Patches != 2 {
		t.Fatalf("totals %+v", st.Totals)
	}
	// The same user with Basic is refused: the method is per user.
	basic := newClient(t, url, nil)
	if r := providertest.SendOne(t, basic, createOp(t, basic, customer("C2")), nil); httpx.KindOf(r.Err) != httpx.Fatal || r.HTTPStatus != 401 {
		t.Fatalf("basic: %+v", r)
	}
}

// The published 409 and 500 bodies are decoded: codes, messages and the
// field errors (found with errors.As); a field error other than a taken
// name is a plain rejection, never mistaken for a duplicate.
func TestPublishedErrorBodies(t *testing.T) {
	s := newSandbox(t, nil)
	c := newClient(t, s.url, nil)
	bad := customer("C2")
	bad.Email = "not-an-email"
	r := providertest.SendOne(t, c, createOp(t, c, bad), nil)
	var he *httpx.Error
	var ve *tokenization.ValidationError
	if r.Outcome != partner.Rejected || !errors.As(r.Err, &he) || he.Status != 409 || he.Code != tokenization.CodeValidation ||
		he.Message != "Validation failed. (contact.email: must be an e-mail address [invalid])" {
		t.Fatalf("409: %+v", r.Err)
	}
	if !errors.As(r.Err, &ve) || ve.Fields["contact.email"].ErrorCode != tokenization.FieldInvalid || len(ve.Fields) != 1 {
		t.Fatalf("409 detail: %+v", ve)
	}
	if strings.Contains(he.Message, "held by") || strings.Count(strings.Join(s.rec.Calls(0), ","), "POST") != 1 {
		t.Fatalf("a validation error was taken for a taken name: %v %v", he, s.rec.Calls(0))
	}

	s.sb.FailNext(10)
	up := mapOne(t, c, customer("C1"))
	up.Kind, up.RemoteID = partner.Update, "1001"
	r = providertest.SendOne(t, c, up, nil)
	if r.Outcome != partner.Failed || !errors.As(r.Err, &he) || he.Kind != httpx.Retryable || he.Status != 500 || he.Code != tokenization.CodeInternal || he.Message != "Internal server error." {
		t.Fatalf("500: %+v", r.Err)
	}

	for _, tc := range []struct{ body, code, msg string }{
		{`{"errorCode":7500,"message":"Internal server error."}`, "7500", "Internal server error."},
		{`{"success":false,"errorCode":7409,"message":"Validation failed.","errors":{"name":{"attribute":"name","message":"must be unique","errorCode":1062},"email":"is bad"}}`,
			"7409", "Validation failed. (email: is bad; name: must be unique [1062])"},
	} {
		s := newSandbox(t, nil)
		c := newClient(t, providertest.Serve(t, stubbed(s.rec, 1, http.StatusUnprocessableEntity, tc.body)), nil)
		op := mapOne(t, c, customer("C1"))
		op.Kind, op.RemoteID = partner.Update, "1001"
		r := providertest.SendOne(t, c, op, nil)
		if !errors.As(r.Err, &he) || he.Code != tc.code || he.Message != tc.msg {
			t.Errorf("%s: %+v", tc.body, r.Err)
		}
	}
}

// memTransport serves requests in-process, so a synctest bubble holds
// every goroutine involved.
type memTransport struct{ h http.Handler }

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
	}
	in := r.Clone(r.Context())
	in.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, in)
	return rec.Result(), nil
}

// X-RateLimit-Remaining on the sandbox's 200s slows the client before the
// hourly quota runs out, so no call meets a 429.
func TestRateHeadersKeepTheClientWithinTheQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sb := tokenization.NewSandbox(tokenization.SandboxOptions{Username: user, Password: pass, RateLimit: 20, Clock: sandbox.RealClock{}})
		c := newClient(t, "http://portal.test", func(cfg *tokenization.Config) {
			cfg.HTTP.Transport = memTransport{sb}
			cfg.HTTP.MaxAttempts = 1 // a 429 would fail the op
		})
		start := time.Now()
		for i := range 25 {
			r := providertest.SendOne(t, c, createOp(t, c, customer(fmt.Sprintf("C%d", i))), nil)
			mustOK(t, fmt.Sprint("create ", i), r)
		}
		st := sb.State()
		if st.Totals.RateLimited != 0 || st.Totals.Creates != 25 {
			t.Fatalf("totals %+v", st.Totals)
		}
		// 26 calls (the list and 25 creates) against 20 an hour: the client
		// waited for the window to turn.
		if d := time.Since(start); d < time.Hour {
			t.Fatalf("25 creates against 20 an hour took %v", d)
		}
	})
}
