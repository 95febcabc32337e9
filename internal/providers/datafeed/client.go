package datafeed

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

// Config for the data feed client.
type Config struct {
	BaseURL string
	// Token is a fixed session token (tests, or a proxy that holds the
	// session). Empty: the client starts sessions itself, which is what
	// the partner expects.
	Token  string
	Tokens TokenSource // overrides Token and the session when set
	// Session tunes the session the client starts (Start is filled in).
	Session SessionOptions
	Scopes  []string // startSession scopes; default [api:institution]
	// Mutual TLS, which the partner requires: a client certificate and
	// key (PEM files), and a CA bundle when the partner's server
	// certificate is not in the system pool.
	ClientCertFile, ClientKeyFile, CAFile string
	Map                                   MapOptions
	HTTP                                  httpx.Config
	// RequestID makes the X-CDLX-Request-Id of one call; default a
	// random UUID.
	RequestID func() string
}

// Client delivers customers to the data feed. It implements
// partner.Provider; Send is called by many workers at once and shares one
// session between them.
type Client struct {
	http   *httpx.Client
	tokens TokenSource
	mapo   MapOptions
	scopes []string
	newID  func() string
}

func New(cfg Config) (*Client, error) {
	if err := cfg.Map.validate(); err != nil {
		return nil, err
	}
	c := &Client{mapo: cfg.Map, scopes: cfg.Scopes, newID: cfg.RequestID}
	if len(c.scopes) == 0 {
		c.scopes = []string{ScopeInstitution}
	}
	if c.newID == nil {
		c.newID = newUUID
	}
	switch {
	case cfg.Tokens != nil:
		c.tokens = cfg.Tokens
	case cfg.Token != "":
		c.tokens = StaticToken(cfg.Token)
	default:
		so := cfg.Session
		so.Start = c.startSession
		s, err := NewSession(so)
		if err != nil {
			return nil, err
		}
		c.tokens = s
	}
	h := cfg.HTTP
	h.Partner, h.BaseURL = Name, cfg.BaseURL
	if (cfg.ClientCertFile == "") != (cfg.ClientKeyFile == "") {
		return nil, errors.New("datafeed: client_cert_file and client_key_file go together (mutual TLS)")
	}
	if cfg.ClientCertFile != "" || cfg.CAFile != "" {
		tr, err := mtlsTransport(cfg)
		if err != nil {
			return nil, err
		}
		h.Transport = tr
	}
	h.Classify = classify
	hc, err := httpx.New(h, decodeError)
	if err != nil {
		return nil, err
	}
	c.http = hc
	return c, nil
}

func mtlsTransport(cfg Config) (http.RoundTripper, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.ClientCertFile, cfg.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("datafeed: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("datafeed: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("datafeed: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.MaxIdleConnsPerHost = 64
	return tr, nil
}

// startSession is the Session's StartFunc. Starting a second session is
// harmless, so the call is retried like an idempotent one.
func (c *Client) startSession(ctx context.Context) (string, error) {
	body, err := json.Marshal(StartSessionRequest{Scopes: c.scopes})
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(ctx, httpx.Request{Method: http.MethodPost, Path: PathStartSession, Body: body,
		Header: http.Header{HeaderRequestID: {c.newID()}}, Idempotent: true})
	if err != nil {
		return "", fmt.Errorf("datafeed: start session: %w", err)
	}
	var r StartSessionResponse
	if json.Unmarshal(resp.Body, &r) != nil || r.SessionToken == "" {
		return "", &httpx.Error{Partner: Name, Op: "POST " + PathStartSession, Kind: httpx.Fatal, Status: resp.Status,
			Code: "no_session_token", Message: "startSession answered without a sessionToken"}
	}
	return r.SessionToken, nil
}

// classify: a session refusal is fatal for httpx (no blind retries; the
// client starts one new session itself), and a validation failure is a
// rejection even when it comes as 500, as the seed doc's only failure
// status suggests.
func classify(status int, body []byte) httpx.Kind {
	var e ErrorBody
	if json.Unmarshal(body, &e) != nil {
		return 0
	}
	switch {
	case e.Type == ErrSession:
		return httpx.Fatal
	case e.Type == ErrValidation, len(e.Details) > 0:
		return httpx.Rejected
	}
	return 0
}

// fieldError is one validation failure; index is -1 when it names no
// customer of the request.
type fieldError struct {
	index         int
	path, message string
}

func (f fieldError) String() string {
	if f.index < 0 {
		return f.message
	}
	p := "customers[" + strconv.Itoa(f.index) + "]"
	if f.path != "" {
		p += "." + f.path
	}
	return p + ": " + f.message
}

var customerPath = regexp.MustCompile(`customers\[(\d+)\]((?:\.[A-Za-z0-9_]+(?:\[\d+\])*)*)[.:]?\s*(.*)`)

// parseValidation reads one validationErrors entry: a string (the
// published "field-level validation string") or an object with a field
// (and maybe an index) and a message.
func parseValidation(raw json.RawMessage) fieldError {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var o struct {
			Index   *int   `json:"index"`
			Field   string `json:"field"`
			Message string `json:"message"`
		}
		if json.Unmarshal(raw, &o) != nil {
			return fieldError{index: -1, message: string(raw)}
		}
		if o.Index != nil {
			return fieldError{index: *o.Index, path: o.Field, message: o.Message}
		}
		s = strings.TrimSpace(o.Field + ": " + o.Message)
	}
	m := customerPath.FindStringSubmatch(s)
	if m == nil {
		return fieldError{index: -1, message: s}
	}
	i, err := strconv.Atoi(m[1])
	if err != nil {
		return fieldError{index: -1, message: s}
	}
	return fieldError{index: i, path: strings.TrimPrefix(m[2], "."), message: strings.TrimSpace(m[3])}
}

// decodeError turns either error envelope into a code and a message. When
// every validation error names a customer of the request, the code lists
// their indices ("invalid:3,17") and the message holds one line per error
// ("customers[3].postalCode: required"), so Send can reject just those
// customers. Otherwise the code is the published type and the whole
// request fails as one.
func decodeError(status int, body []byte) (string, string) {
	var e ErrorBody
	if json.Unmarshal(body, &e) != nil {
		return "", http.StatusText(status)
	}
	var errs []fieldError
	for _, d := range e.Details {
		errs = append(errs, fieldError{index: d.Index, path: d.Field, message: d.Message})
	}
	for _, v := range e.ValidationErrors {
		errs = append(errs, parseValidation(v))
	}
	title := e.Title
	for _, t := range []string{e.Error, e.Type, http.StatusText(status)} {
		if title == "" {
			title = t
		}
	}
	if len(errs) == 0 {
		return e.Type, title
	}
	lines := make([]string, len(errs))
	seen := map[int]bool{}
	attributable := true
	for k, f := range errs {
		lines[k] = f.String()
		if f.index < 0 {
			attributable = false
		}
		seen[f.index] = true
	}
	msg := title + "\n" + strings.Join(lines, "\n")
	if !attributable {
		return or(e.Type, "invalid"), msg
	}
	idx := make([]int, 0, len(seen))
	for i := range seen {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	code := "invalid:"
	for k, i := range idx {
		if k > 0 {
			code += ","
		}
		code += strconv.Itoa(i)
	}
	return code, msg
}

func (c *Client) Name() string  { return Name }
func (c *Client) MaxBatch() int { return MaxPerRequest }

// HTTP exposes the underlying client (breaker state for metrics).
func (c *Client) HTTP() *httpx.Client { return c.http }

// Tokens is the client's session token source.
func (c *Client) Tokens() TokenSource { return c.tokens }

func (c *Client) Map(cu *model.Customer) ([]partner.Item, []model.Reject) { return Map(cu, c.mapo) }

// Send delivers ops in requests of at most 50 customers: updates with PUT,
// creates with POST, never both in one request (the engine's batches mix
// them). The partner keeps customers by sourceCustomerId, so a resend
// after a lost answer is safe. When the partner names the customers it
// could not take, only those are rejected and the rest of the request is
// sent again, so one bad record does not hold back 49 good ones.
func (c *Client) Send(ctx context.Context, ops []partner.Op, _ partner.Journal) []partner.Result {
	out := make([]partner.Result, len(ops))
	var creates, updates []int
	for i, op := range ops {
		if op.Kind == partner.Update {
			updates = append(updates, i)
		} else {
			creates = append(creates, i)
		}
	}
	var moved []int
	for start := 0; start < len(updates); start += MaxPerRequest {
		moved = append(moved, c.send(ctx, http.MethodPut, ops, updates[start:min(start+MaxPerRequest, len(updates))], out)...)
	}
	// A PUT the partner refused because it does not know the customer
	// becomes a create: the entity must exist, and sync_state was wrong.
	creates = append(creates, moved...)
	sort.Ints(creates)
	for start := 0; start < len(creates); start += MaxPerRequest {
		c.send(ctx, http.MethodPost, ops, creates[start:min(start+MaxPerRequest, len(creates))], out)
	}
	return out
}

// send delivers ops[idx...] with method and fills their results in out.
// It returns the updates to send again as creates.
func (c *Client) send(ctx context.Context, method string, ops []partner.Op, idx []int, out []partner.Result) (moved []int) {
	idx = append([]int(nil), idx...)
	for len(idx) > 0 {
		body, err := requestBody(ops, idx)
		if err != nil {
			for _, i := range idx {
				out[i] = partner.Result{EntityKey: ops[i].EntityKey, Outcome: partner.Failed, Err: fmt.Errorf("datafeed: encode request: %w", err)}
			}
			return moved
		}
		resp, reqID, err := c.call(ctx, method, body)
		if err == nil {
			var r Response
			if json.Unmarshal(resp.Body, &r) == nil && r.RequestID != "" {
				reqID = r.RequestID // the echo, which is what the partner's logs hold
			}
			for _, i := range idx {
				out[i] = partner.Result{EntityKey: ops[i].EntityKey, Outcome: partner.OK, RequestID: reqID, HTTPStatus: resp.Status, Attempts: resp.Attempts}
			}
			return moved
		}
		bad := badCustomers(err, len(idx))
		if len(bad) == 0 {
			for _, i := range idx {
				r := partner.FailureResult(ops[i], err, 0)
				r.RequestID = reqID
				out[i] = r
			}
			return moved
		}
		var rest []int
		for j, i := range idx {
			errs, isBad := bad[j]
			switch {
			case !isBad:
				rest = append(rest, i)
			case method == http.MethodPut && onlySourceID(errs):
				moved = append(moved, i)
			default:
				r := partner.FailureResult(ops[i], invalidCustomer(err, errs), 0)
				r.RequestID = reqID
				out[i] = r
			}
		}
		idx = rest
	}
	return moved
}

// call makes one partner call with the shared session token; when the
// partner refuses the token it starts one new session and calls once
// more. A second refusal right after a fresh session is left fatal.
func (c *Client) call(ctx context.Context, method string, body []byte) (*httpx.Response, string, error) {
	do := func() (*httpx.Response, string, string, error) {
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return nil, "", "", err
		}
		id := c.newID()
		resp, err := c.http.Do(ctx, httpx.Request{Method: method, Path: PathCustomers, Body: body,
			Header: http.Header{HeaderSession: {tok}, HeaderRequestID: {id}}, Idempotent: true})
		return resp, id, tok, err
	}
	resp, id, tok, err := do()
	// tok is empty when starting the session failed: that is no refusal
	// of a token, and starting another would fail the same way.
	if inv, ok := c.tokens.(Invalidator); ok && tok != "" && sessionRefused(err) {
		inv.Invalidate(tok)
		resp, id, _, err = do()
	}
	return resp, id, err
}

func sessionRefused(err error) bool {
	return err != nil && (httpx.StatusOf(err) == http.StatusUnauthorized || httpx.CodeOf(err) == ErrSession)
}

// requestBody is the Request JSON of ops[idx...], byte for byte what
// json.Marshal(Request{...}) gives, built from each op's Body when the
// engine has already encoded it (for the content hash) instead of encoding
// every customer a second time.
func requestBody(ops []partner.Op, idx []int) ([]byte, error) {
	// Sized up front: growing by doubling allocated twice the body.
	n := len(`{"customers":[]}`) + len(idx)
	for _, i := range idx {
		n += len(ops[i].Body)
	}
	buf := bytes.NewBuffer(make([]byte, 0, n))
	buf.WriteString(`{"customers":[`)
	for j, i := range idx {
		cu, ok := partner.PayloadOf[Customer](ops[i])
		if !ok {
			return nil, errors.New("op payload is not a datafeed.Customer")
		}
		b := ops[i].Body
		if b == nil {
			var err error
			if b, err = json.Marshal(cu); err != nil {
				return nil, err
			}
		}
		if j > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	buf.WriteString(`]}`)
	return buf.Bytes(), nil
}

// badCustomers reads the customers the partner named in its error (see
// decodeError), each with its errors. Nil when the error names none, or
// names one outside the request (then nothing can be attributed).
func badCustomers(err error, n int) map[int][]fieldError {
	list, ok := strings.CutPrefix(httpx.CodeOf(err), "invalid:")
	if !ok {
		return nil
	}
	bad := map[int][]fieldError{}
	for _, f := range strings.Split(list, ",") {
		i, err := strconv.Atoi(f)
		if err != nil || i < 0 || i >= n {
			return nil
		}
		bad[i] = nil
	}
	var he *httpx.Error
	if errors.As(err, &he) {
		for _, line := range strings.Split(he.Message, "\n") {
			if f := parseValidation(mustJSON(line)); f.index >= 0 {
				if _, named := bad[f.index]; named {
					bad[f.index] = append(bad[f.index], f)
				}
			}
		}
	}
	return bad
}

func mustJSON(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// onlySourceID: every error of the customer is about its sourceCustomerId,
// which on a PUT means the partner does not know it (our sandbox's reading;
// the real wording is not published).
func onlySourceID(errs []fieldError) bool {
	for _, f := range errs {
		if f.path != "sourceCustomerId" {
			return false
		}
	}
	return len(errs) > 0
}

// invalidCustomer is a named customer's own error: a stable code and only
// its own messages, not the request-wide list.
func invalidCustomer(err error, errs []fieldError) error {
	var he *httpx.Error
	if !errors.As(err, &he) {
		return err
	}
	c := *he
	c.Code = "invalid_customer"
	msgs := make([]string, len(errs))
	for k, f := range errs {
		msgs[k] = f.message
		if f.path != "" {
			msgs[k] = f.path + ": " + f.message
		}
	}
	if len(msgs) > 0 {
		c.Message = strings.Join(msgs, "; ")
	}
	return &c
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
