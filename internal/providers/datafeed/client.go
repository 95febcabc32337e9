package datafeed

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
)

// TokenSource yields the session token from the partner's authentication
// API. The real one caches and renews; StaticToken serves the sandbox.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// StaticToken is a fixed bearer token.
type StaticToken string

func (s StaticToken) Token(context.Context) (string, error) { return string(s), nil }

// Config for the data feed client.
type Config struct {
	BaseURL string
	Token   string      // static session token (sandbox, tests)
	Tokens  TokenSource // overrides Token when set
	// Mutual TLS, which the partner requires in production.
	ClientCertFile, ClientKeyFile, CAFile string
	Map                                   MapOptions
	HTTP                                  httpx.Config
}

// Client delivers customers to the data feed. It implements load.Provider.
type Client struct {
	http   *httpx.Client
	tokens TokenSource
	mapo   MapOptions
}

func New(cfg Config) (*Client, error) {
	ts := cfg.Tokens
	if ts == nil {
		if cfg.Token == "" {
			return nil, errors.New("datafeed: no session token configured (partners.datafeed.token)")
		}
		ts = StaticToken(cfg.Token)
	}
	h := cfg.HTTP
	h.Partner, h.BaseURL = Name, cfg.BaseURL
	h.Sign = func(r *http.Request) error {
		tok, err := ts.Token(r.Context())
		if err != nil {
			return err
		}
		r.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
	if cfg.ClientCertFile != "" || cfg.CAFile != "" {
		tr, err := mtlsTransport(cfg)
		if err != nil {
			return nil, err
		}
		h.Transport = tr
	}
	h.Classify = classify
	c, err := httpx.New(h, decodeError)
	if err != nil {
		return nil, err
	}
	return &Client{http: c, tokens: ts, mapo: cfg.Map}, nil
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

// The doc knows only 200 and 500, so validation failures arrive as 500
// too; a 500 that names the bad customers is a rejection, not an outage.
func classify(status int, body []byte) httpx.Kind {
	var e ErrorBody
	if json.Unmarshal(body, &e) == nil && len(e.Details) > 0 {
		return httpx.Rejected
	}
	return 0
}

// decodeError carries the indices of the customers the partner named in
// the code ("invalid:3,17") so Send can fail just those.
func decodeError(status int, body []byte) (string, string) {
	var e ErrorBody
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return "", http.StatusText(status)
	}
	if len(e.Details) == 0 {
		return "", e.Error
	}
	code, msg := "invalid:", e.Error
	for i, d := range e.Details {
		if i > 0 {
			code += ","
		}
		code += strconv.Itoa(d.Index)
		if i < 5 {
			msg += fmt.Sprintf("; customers[%d].%s: %s", d.Index, d.Field, d.Message)
		}
	}
	return code, msg
}

func (c *Client) Name() string  { return Name }
func (c *Client) MaxBatch() int { return MaxPerRequest }

// HTTP exposes the underlying client (breaker state for metrics).
func (c *Client) HTTP() *httpx.Client { return c.http }

func (c *Client) Map(cu *model.Customer) ([]load.Op, []model.Reject) { return Map(cu, c.mapo) }

// Send posts ops in requests of at most 50 customers. The partner dedups
// re-sent customers by sourceCustomerId, so a resend after a lost answer
// is safe. When the partner names the customers it could not take, those
// are failed and the rest of the request is sent again, so that one bad
// record does not hold back 49 good ones.
func (c *Client) Send(ctx context.Context, ops []load.Op, _ load.Journal) []load.Result {
	out := make([]load.Result, len(ops))
	for start := 0; start < len(ops); start += MaxPerRequest {
		end := min(start+MaxPerRequest, len(ops))
		c.send(ctx, ops[start:end], out[start:end])
	}
	return out
}

func (c *Client) send(ctx context.Context, ops []load.Op, out []load.Result) {
	idx := make([]int, len(ops))
	for i := range idx {
		idx[i] = i
	}
	for len(idx) > 0 {
		body, err := requestBody(ops, idx)
		if err != nil {
			for _, i := range idx {
				out[i] = load.Result{EntityKey: ops[i].EntityKey, Outcome: load.Failed, Err: fmt.Errorf("datafeed: encode request: %w", err)}
			}
			return
		}
		resp, err := c.http.Do(ctx, httpx.Request{Method: http.MethodPost, Path: "/v2/data/customers", Body: body, Idempotent: true})
		if err == nil {
			var r Response
			if jerr := json.Unmarshal(resp.Body, &r); jerr != nil || r.RequestID == "" {
				// The partner took the batch but we cannot read its id:
				// the customers are there; say so without an id.
				r.RequestID = ""
			}
			for _, i := range idx {
				out[i] = load.Result{EntityKey: ops[i].EntityKey, Outcome: load.OK, RequestID: r.RequestID, HTTPStatus: resp.Status, Attempts: resp.Attempts}
			}
			return
		}
		bad := badIndices(err, len(idx))
		if len(bad) == 0 || len(bad) == len(idx) {
			for _, i := range idx {
				out[i] = load.FailureResult(ops[i], err, 0)
			}
			return
		}
		var rest []int
		for j, i := range idx {
			if bad[j] {
				out[i] = load.FailureResult(ops[i], invalidCustomer(err), 0)
			} else {
				rest = append(rest, i)
			}
		}
		idx = rest
	}
}

// requestBody is the Request JSON of ops[idx...], byte for byte what
// json.Marshal(Request{...}) gives, built from each op's Body when the
// engine has already encoded it (for the content hash) instead of encoding
// every customer a second time.
func requestBody(ops []load.Op, idx []int) ([]byte, error) {
	// Sized up front: growing by doubling allocated twice the body.
	n := len(`{"customers":[]}`) + len(idx)
	for _, i := range idx {
		n += len(ops[i].Body)
	}
	buf := bytes.NewBuffer(make([]byte, 0, n))
	buf.WriteString(`{"customers":[`)
	for j, i := range idx {
		cu, ok := ops[i].Payload.(Customer)
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

// badIndices reads the customer indices the partner named in its error.
func badIndices(err error, n int) map[int]bool {
	list, ok := strings.CutPrefix(httpx.CodeOf(err), "invalid:")
	if !ok {
		return nil
	}
	bad := map[int]bool{}
	for _, f := range strings.Split(list, ",") {
		if i, err := strconv.Atoi(f); err == nil && i >= 0 && i < n {
			bad[i] = true
		}
	}
	return bad
}

// invalidCustomer gives a named bad customer a stable error code instead
// of the request-wide index list.
func invalidCustomer(err error) error {
	var he *httpx.Error
	if !errors.As(err, &he) {
		return err
	}
	c := *he
	c.Code = "invalid_customer"
	return &c
}
