package q2open

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/redact"
)

// DefaultTokenTTL is how long the SSO token issued with each sync lives
// when Config.TokenTTL is not set.
const DefaultTokenTTL = 24 * time.Hour

// Config for the Q2 Open client.
type Config struct {
	BaseURL string // e.g. https://api.q2open.io
	Token   string // API bearer token
	// TokenTTL sets token.expiration = now + TokenTTL on every sync.
	// Default DefaultTokenTTL.
	TokenTTL time.Duration
	// Now is the clock behind token.expiration; default time.Now.
	Now  func() time.Time
	HTTP httpx.Config
}

// Client syncs customers to Q2 Open. It implements load.Provider but not
// load.Deactivator: Q2 documents no call that removes or disables a
// client or a card.
type Client struct {
	http *httpx.Client
	ttl  time.Duration
	now  func() time.Time
}

var _ load.Provider = (*Client)(nil)

// attemptsKey carries a per-call attempt counter to Sign, which runs once
// per attempt: httpx reports attempts on success only.
type attemptsKey struct{}

// New checks the configuration before any call is made.
func New(cfg Config) (*Client, error) {
	if cfg.Token == "" {
		return nil, errors.New("q2open: no API token configured (partners.q2open.token)")
	}
	if cfg.TokenTTL < 0 {
		return nil, errors.New("q2open: token TTL must not be negative")
	}
	ttl := cfg.TokenTTL
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	h := cfg.HTTP
	h.Partner, h.BaseURL = Name, cfg.BaseURL
	token := cfg.Token
	h.Sign = func(r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+token)
		if n, ok := r.Context().Value(attemptsKey{}).(*atomic.Int32); ok {
			n.Add(1)
		}
		return nil
	}
	hc, err := httpx.New(h, decodeError)
	if err != nil {
		return nil, err
	}
	return &Client{http: hc, ttl: ttl, now: now}, nil
}

func (c *Client) Name() string { return Name }

// MaxBatch is 1: a sync carries one client.
func (c *Client) MaxBatch() int { return 1 }

// HTTP exposes the underlying client (breaker state for metrics).
func (c *Client) HTTP() *httpx.Client { return c.http }

// Map turns a customer into one sync op. The expiration it stamps makes a
// dry run show a realistic body; Send stamps it again at send time.
func (c *Client) Map(cu *model.Customer) ([]load.Op, []model.Reject) {
	return mapCustomer(cu, expiration(c.now().Add(c.ttl)))
}

// Send syncs each op in turn and returns one Result per op. Create and
// Update are the same call: Q2 finds the client by identifier and cards by
// their identifier, so a resend after a lost answer is safe and retried.
func (c *Client) Send(ctx context.Context, ops []load.Op, _ load.Journal) []load.Result {
	out := make([]load.Result, len(ops))
	for i, op := range ops {
		out[i] = c.sync(ctx, op)
	}
	return out
}

func (c *Client) sync(ctx context.Context, op load.Op) load.Result {
	if op.Kind == load.Deactivate {
		// The engine only deactivates through load.Deactivator, which this
		// client does not implement: reaching here is a wiring bug.
		return load.FailureResult(op, &httpx.Error{Partner: Name, Op: "deactivate", Kind: httpx.Fatal, Code: "unsupported",
			Message: "Q2 Open has no deactivation API"}, 0)
	}
	var req SyncRequest
	switch p := op.Payload.(type) {
	case SyncRequest:
		req = p
	case *SyncRequest:
		if p != nil {
			req = *p
		}
	}
	if req.Client.Identifier == "" {
		return load.FailureResult(op, &httpx.Error{Partner: Name, Op: "POST " + SyncPath, Kind: httpx.Fatal, Code: "bad_payload",
			Message: "op payload is not a q2open.SyncRequest with a client identifier"}, 0)
	}
	// Stamped here, not only in Map, so that a queued op never asks for a
	// token that is already close to expiry.
	req.Token.Expiration = expiration(c.now().Add(c.ttl))
	body, err := json.Marshal(req)
	if err != nil {
		return load.FailureResult(op, &httpx.Error{Partner: Name, Op: "POST " + SyncPath, Kind: httpx.Fatal, Code: "encode",
			Message: "cannot encode the sync request"}, 0)
	}
	var attempts atomic.Int32
	resp, err := c.http.Do(context.WithValue(ctx, attemptsKey{}, &attempts),
		httpx.Request{Method: http.MethodPost, Path: SyncPath, Body: body, Idempotent: true})
	if err != nil {
		return load.FailureResult(op, scrub(err, req), int(attempts.Load()))
	}
	n := max(int(attempts.Load()), resp.Attempts)
	// The answer type has no ssoToken field: the token is never decoded,
	// so it cannot end up in a result, a log line or the ledger.
	var ans struct {
		ClientID string       `json:"clientId"`
		Cards    []CardResult `json:"cards"`
	}
	if json.Unmarshal(resp.Body, &ans) != nil || ans.ClientID == "" {
		// Q2 took the sync but we cannot read the client id: the rerun
		// sends it again and Q2 answers with the same client.
		return load.FailureResult(op, &httpx.Error{Partner: Name, Op: "POST " + SyncPath, Kind: httpx.Uncertain, Status: resp.Status,
			Code: "bad_response", Message: "answer carries no clientId"}, n)
	}
	res := load.Result{EntityKey: op.EntityKey, Outcome: load.OK, RemoteID: ans.ClientID, HTTPStatus: resp.Status, Attempts: n}
	customerID := firstNonEmpty(op.CustomerID, req.Client.Identifier)
	sent := make(map[string]bool, len(req.Cards))
	for _, cd := range req.Cards {
		sent[cd.Identifier] = true
	}
	// Whether Q2 lists cards it already had is not documented, so a card
	// missing from the answer does not fail the client; its child row
	// simply comes from the sync that did list it.
	for _, cr := range ans.Cards {
		if sent[cr.Identifier] && cr.PaymentMethodID != "" {
			delete(sent, cr.Identifier)
			res.Children = append(res.Children, load.Child{EntityKey: cardKey(customerID, cr.Identifier), RemoteID: cr.PaymentMethodID})
		}
	}
	return res
}

// decodeError reads the error body we assume Q2 sends (the doc shows
// none): {"error": {"code": "...", "message": "..."}}. Anything else
// falls back to the HTTP status text, never to the raw body, which might
// echo the request. Change this one function when the real shape is known.
func decodeError(status int, body []byte) (code, message string) {
	var e ErrorBody
	if json.Unmarshal(body, &e) != nil || (e.Error.Code == "" && e.Error.Message == "") {
		return "", http.StatusText(status)
	}
	return e.Error.Code, redact.Text(e.Error.Message)
}

// scrub removes this request's own card numbers and codes from a partner
// message: the generic masking cannot recognise a three-digit code.
func scrub(err error, req SyncRequest) error {
	var he *httpx.Error
	if !errors.As(err, &he) || he.Message == "" {
		return err
	}
	msg := he.Message
	for _, cd := range req.Cards {
		if cd.CardNumber != "" {
			msg = strings.ReplaceAll(msg, cd.CardNumber, model.NewPAN(cd.CardNumber).Masked())
		}
		if cd.CardCode != "" {
			msg = regexp.MustCompile(`\b`+regexp.QuoteMeta(cd.CardCode)+`\b`).ReplaceAllString(msg, "***")
		}
	}
	if msg == he.Message {
		return err
	}
	cp := *he
	cp.Message = msg
	return &cp
}
