package q2open

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
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
	Now func() time.Time
	// ReconcileCreates sends no card in any sync, creates included: every
	// client is looked up and its cards added one by one after a list.
	// For a run whose ledger does not know what Q2 holds (a new or reset
	// ledger against a Q2 tenant that already has these clients), where
	// a create's sync with cards would add them a second time. Costs a
	// list and one add per card for each new client.
	ReconcileCreates bool
	HTTP             httpx.Config
}

// Result.RequestID values that are not Q2's request-id.
const (
	// RequestNoUpdateAPI: the client part of an Update was not sent, because
	// Q2 has no call that updates a client (a repeat sync is not documented
	// to change meta, and there is no update call). Its cards were brought
	// in step; the children carry those calls' request-ids.
	RequestNoUpdateAPI = partner.RequestNotSentNoUpdateAPI
)

// intentSyncWithCards is the journal detail written, durably, before the
// one call that carries cards in a sync: once it may have reached Q2, no
// later call for that customer may carry them again.
const intentSyncWithCards = "sync-with-cards"

// Client delivers customers to Q2 Open. Q2 dedups clients by identifier
// but not cards (a card identifier is "for correlation" only), so:
//
//   - a new client (a Create with no open intent) gets one client/sync
//     with its cards, after the journal notes it durably;
//   - every other delivery (an Update, or the Resolve of a Create whose
//     answer may have been lost) carries no card in a sync: it finds the
//     client (POST /v1/client, or the known clientId), lists its payment
//     methods and adds only those missing by card identifier, re-listing
//     before it adds again after a lost answer; cards closed at the bank
//     are deleted.
//
// It implements partner.Provider and partner.Resolver, not partner.Deactivator: Q2
// has no call that removes or disables a client.
type Client struct {
	http      *httpx.Client
	ttl       time.Duration
	now       func() time.Time
	reconcile bool
}

var (
	_ partner.Provider = (*Client)(nil)
	_ partner.Resolver = (*Client)(nil)
)

// attemptsKey carries a per-delivery attempt counter to Sign, which runs
// once per attempt: httpx reports attempts on success only.
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
	return &Client{http: hc, ttl: ttl, now: now, reconcile: cfg.ReconcileCreates}, nil
}

func (c *Client) Name() string { return Name }

// MaxBatch is 1: a sync carries one client.
func (c *Client) MaxBatch() int { return 1 }

// HTTP exposes the underlying client (breaker state for metrics).
func (c *Client) HTTP() *httpx.Client { return c.http }

// Map turns a customer into one sync op. The expiration it stamps makes a
// dry run show a realistic body; Send stamps it again at send time.
func (c *Client) Map(cu *model.Customer) ([]partner.Item, []model.Reject) {
	return mapCustomer(cu, expiration(c.now().Add(c.ttl)))
}

// Send delivers each op in turn and returns one Result per op.
func (c *Client) Send(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result {
	out := make([]partner.Result, len(ops))
	for i, op := range ops {
		out[i] = c.deliver(ctx, op, j, false)
	}
	return out
}

// Resolve settles an op whose earlier run noted a sync with cards and
// then crashed or lost the answer: the client may exist with those cards,
// so it is found without sending cards, and only missing ones are added.
func (c *Client) Resolve(ctx context.Context, op partner.Op, j partner.Journal) partner.Result {
	return c.deliver(ctx, op, j, true)
}

// delivery is one op's calls: the attempt counter, the children confirmed
// so far and the last answer's status.
type delivery struct {
	c        *Client
	ctx      context.Context
	op       partner.Op
	req      SyncRequest
	customer string
	attempts *atomic.Int32
	status   int
	children []partner.Child
	// clientRefused: Q2 refused the client itself, so no card of it can
	// be at Q2 either.
	clientRefused bool
}

func (c *Client) deliver(ctx context.Context, op partner.Op, j partner.Journal, resolving bool) partner.Result {
	if op.Kind == partner.Deactivate {
		// The engine only deactivates through partner.Deactivator, which this
		// client does not implement: reaching here is a wiring bug.
		return partner.FailureResult(op, &httpx.Error{Partner: Name, Op: "deactivate", Kind: httpx.Fatal, Code: "unsupported",
			Message: "Q2 Open has no deactivation API"}, 0)
	}
	req, _ := partner.PayloadOf[SyncRequest](op)
	if req.Client.Identifier == "" {
		return partner.FailureResult(op, &httpx.Error{Partner: Name, Op: "POST " + SyncPath, Kind: httpx.Fatal, Code: "bad_payload",
			Message: "op payload is not a q2open.SyncRequest with a client identifier"}, 0)
	}
	// Stamped here, not only in Map, so that a queued op never asks for a
	// token that is already close to expiry.
	req.Token.Expiration = expiration(c.now().Add(c.ttl))
	d := &delivery{c: c, op: op, req: req, customer: firstNonEmpty(op.CustomerID, req.Client.Identifier), attempts: &atomic.Int32{}}
	d.ctx = context.WithValue(ctx, attemptsKey{}, d.attempts)
	switch {
	case resolving:
		return d.mayHoldCards(d.recover(op.RemoteID))
	case c.reconcile && op.RemoteID == "":
		return d.recover("")
	case op.RemoteID != "":
		return d.update()
	case op.Kind == partner.Update:
		// Known to the ledger without a clientId (an intent an operator
		// settled as delivered without --remote-id): Q2 may hold the
		// client and its cards, so it is found and its cards reconciled;
		// a sync with cards would add them all again.
		return d.recover("")
	default:
		return d.create(j)
	}
}

// do makes one call and keeps its status.
func (d *delivery) do(r httpx.Request) (*httpx.Response, error) {
	resp, err := d.c.http.Do(d.ctx, r)
	if err != nil {
		d.status = httpx.StatusOf(err)
		return nil, scrub(err, d.req)
	}
	d.status = resp.Status
	return resp, nil
}

func (d *delivery) result(remoteID, requestID string) partner.Result {
	return partner.Result{EntityKey: d.op.EntityKey, Outcome: partner.OK, RemoteID: remoteID, RequestID: requestID, HTTPStatus: d.status,
		Attempts: int(d.attempts.Load()), Children: d.children}
}

func (d *delivery) failure(remoteID string, err error) partner.Result {
	r := partner.FailureResult(d.op, err, int(d.attempts.Load()))
	r.RemoteID, r.Children = remoteID, d.children
	if r.HTTPStatus == 0 {
		r.HTTPStatus = d.status
	}
	return r
}

// mayHoldCards keeps the journal's intent open (outcome uncertain) for
// anything short of success after a sync with cards may have reached Q2:
// settling it would let the next run send the cards again. Only Q2's
// refusal of the client itself proves no card of it is there. A fatal
// error keeps its kind, so the engine still stops the partner.
func (d *delivery) mayHoldCards(r partner.Result) partner.Result {
	if r.Outcome == partner.OK || d.clientRefused {
		return r
	}
	r.Outcome = partner.Uncertain
	return r
}

// create is the only path that sends cards in a sync: the intent is
// durable before the call, so a crash or a lost answer leads the rerun to
// Resolve (no cards in the sync) instead of a second sync with cards.
func (d *delivery) create(j partner.Journal) partner.Result {
	withCards := len(d.req.Cards) > 0
	if withCards && j != nil {
		if err := j.Note(d.ctx, d.op, intentSyncWithCards); err != nil {
			return d.failure("", &httpx.Error{Partner: Name, Op: "POST " + SyncPath, Kind: httpx.Retryable, Code: "journal",
				Message: "cannot note the intent before a sync with cards; nothing sent: " + err.Error()})
		}
	}
	body, err := json.Marshal(d.req.wire())
	if err != nil {
		return d.failure("", &httpx.Error{Partner: Name, Op: "POST " + SyncPath, Kind: httpx.Fatal, Code: "encode", Message: "cannot encode the sync request"})
	}
	// Not idempotent once it carries cards: a resend would add them again.
	resp, err := d.do(httpx.Request{Method: http.MethodPost, Path: SyncPath, Body: body, Idempotent: !withCards})
	if err != nil {
		switch httpx.KindOf(err) {
		case httpx.Uncertain, httpx.Rejected:
			// Q2 may have created the client and some of its cards (a
			// refusal may be partial: nothing says the sync is atomic).
			return d.mayHoldCards(d.recover(""))
		}
		return d.failure("", err) // did not take effect
	}
	// The answer type has no ssoToken field: the token is never decoded,
	// so it cannot end up in a result, a log line or the ledger.
	var ans struct {
		ClientID string       `json:"clientId"`
		Cards    []CardResult `json:"cards"`
	}
	if json.Unmarshal(resp.Body, &ans) != nil || ans.ClientID == "" {
		return d.mayHoldCards(d.recover(""))
	}
	rid := resp.Header.Get(RequestIDHeader)
	sent := make(map[string]bool, len(d.req.Cards))
	for _, cd := range d.req.Cards {
		sent[cd.Identifier] = true
	}
	for _, cr := range ans.Cards {
		if sent[cr.Identifier] && cr.PaymentMethodID != "" {
			delete(sent, cr.Identifier)
			d.children = append(d.children, partner.Child{EntityKey: partner.CardKey(d.customer, cr.Identifier), RemoteID: cr.PaymentMethodID})
		}
	}
	if len(sent) == 0 {
		return d.result(ans.ClientID, rid)
	}
	// A card the answer leaves out: learn its paymentMethodId from the
	// list (adding it only if Q2 does not hold it).
	d.children = nil
	return d.mayHoldCards(d.reconcile(ans.ClientID, rid))
}

// update brings a known client's cards in step. The client itself is not
// sent: no documented call updates it, and that is what the customer's
// ledger row says (RequestNoUpdateAPI).
func (d *delivery) update() partner.Result {
	r := d.reconcile(d.op.RemoteID, RequestNoUpdateAPI)
	if r.Outcome != partner.OK && httpx.CodeOf(r.Err) == "client_not_found" {
		// The clientId we hold is gone at Q2: find (or create) the
		// client by identifier and start again.
		d.children = nil
		return d.recover("")
	}
	if r.Outcome == partner.OK {
		r.RequestID = RequestNoUpdateAPI
	}
	return r
}

// recover finds the client without sending any card (POST /v1/client,
// which answers the existing clientId for a known identifier), then
// reconciles its cards.
func (d *delivery) recover(clientID string) partner.Result {
	rid := ""
	if clientID == "" {
		body, err := json.Marshal(d.req.Client)
		if err != nil {
			return d.failure("", &httpx.Error{Partner: Name, Op: "POST " + ClientPath, Kind: httpx.Fatal, Code: "encode", Message: "cannot encode the client"})
		}
		resp, err := d.do(httpx.Request{Method: http.MethodPost, Path: ClientPath, Body: body, Idempotent: true})
		if err != nil {
			d.clientRefused = httpx.KindOf(err) == httpx.Rejected
			return d.failure("", err)
		}
		var ans ClientResponse
		if json.Unmarshal(resp.Body, &ans) != nil || ans.ClientID == "" {
			return d.failure("", &httpx.Error{Partner: Name, Op: "POST " + ClientPath, Kind: httpx.Uncertain, Status: resp.Status,
				Code: "bad_response", Message: "answer carries no clientId"})
		}
		clientID, rid = ans.ClientID, resp.Header.Get(RequestIDHeader)
	}
	return d.reconcile(clientID, rid)
}

// reconcile lists the client's payment methods, adds the open cards Q2
// does not hold under their identifier, and deletes those of cards closed
// at the bank. Every card Q2 holds becomes a child, so the ledger has
// each card's paymentMethodId. The first failure decides the outcome;
// the other cards are still handled.
func (d *delivery) reconcile(clientID, requestID string) partner.Result {
	held, listID, err := d.list(clientID)
	if err != nil {
		return d.failure(clientID, err)
	}
	var first error
	keep := make(map[string]bool, len(d.req.Cards))
	for _, cd := range d.req.Cards {
		keep[cd.Identifier] = true
		if ms := held[cd.Identifier]; len(ms) > 0 {
			d.children = append(d.children, partner.Child{EntityKey: partner.CardKey(d.customer, cd.Identifier), RemoteID: ms[0].PaymentMethodID, RequestID: listID})
			continue
		}
		id, rid, err := d.add(clientID, cd)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		d.children = append(d.children, partner.Child{EntityKey: partner.CardKey(d.customer, cd.Identifier), RemoteID: id, RequestID: rid})
	}
	for _, ident := range d.req.Closed {
		if keep[ident] {
			continue // the same identifier is also open: never delete what we send
		}
		if len(held[ident]) == 0 {
			// Not at Q2 (never sent, or deleted by a run that died before
			// its ledger write): the ledger must not keep it active.
			d.children = append(d.children, partner.Child{EntityKey: partner.CardKey(d.customer, ident), RequestID: listID, Removed: true})
		}
		for _, m := range held[ident] {
			rid, err := d.remove(m, ident)
			if err != nil {
				if first == nil {
					first = err
				}
				continue
			}
			d.children = append(d.children, partner.Child{EntityKey: partner.CardKey(d.customer, ident), RemoteID: m.PaymentMethodID, RequestID: rid, Removed: true})
		}
	}
	if first != nil {
		return d.failure(clientID, first)
	}
	return d.result(clientID, firstNonEmpty(requestID, listID))
}

// list answers the client's payment methods by card identifier.
func (d *delivery) list(clientID string) (map[string][]PaymentMethod, string, error) {
	resp, err := d.do(httpx.Request{Method: http.MethodGet, Path: ListPath + "/" + url.PathEscape(clientID), Idempotent: true})
	if err != nil {
		if httpx.StatusOf(err) == http.StatusNotFound {
			var he *httpx.Error
			errors.As(err, &he)
			cp := *he
			cp.Code, cp.Message = "client_not_found", "Q2 does not know clientId "+clientID
			return nil, "", &cp
		}
		return nil, "", err
	}
	ms, ok := decodeList(resp.Body)
	if !ok {
		return nil, "", &httpx.Error{Partner: Name, Op: "GET " + ListPath, Kind: httpx.Retryable, Status: resp.Status, Code: "bad_response",
			Message: "cannot read the payment method list"}
	}
	out := map[string][]PaymentMethod{}
	for _, m := range ms {
		if m.Identifier != "" && m.PaymentMethodID != "" {
			out[m.Identifier] = append(out[m.Identifier], m)
		}
	}
	return out, resp.Header.Get(RequestIDHeader), nil
}

// decodeList reads the list answer: the published page names the fields
// but not the shape, so both an object with paymentMethods and a bare
// array are taken.
func decodeList(body []byte) ([]PaymentMethod, bool) {
	var obj ListResponse
	if json.Unmarshal(body, &obj) == nil && obj.PaymentMethods != nil {
		return obj.PaymentMethods, true
	}
	var arr []PaymentMethod
	if json.Unmarshal(body, &arr) == nil && arr != nil {
		return arr, true
	}
	return nil, false
}

// maxAdds bounds the add, lost answer, list, add again loop of one card.
const maxAdds = 3

// add adds one card. The call is not idempotent (a second add is a second
// payment method), so after a lost answer it lists again, and adds again
// only if the card is still missing.
func (d *delivery) add(clientID string, cd Card) (paymentMethodID, requestID string, err error) {
	body, merr := json.Marshal(addPaymentWire(addPayment(clientID, cd)))
	if merr != nil {
		return "", "", &httpx.Error{Partner: Name, Op: "POST " + PaymentPath, Kind: httpx.Fatal, Code: "encode", Message: "cannot encode the payment method"}
	}
	for try := 1; ; try++ {
		resp, err := d.do(httpx.Request{Method: http.MethodPost, Path: PaymentPath, Body: body})
		if err == nil {
			var ans AddPaymentResponse
			if json.Unmarshal(resp.Body, &ans) == nil && ans.PaymentMethodID != "" {
				return ans.PaymentMethodID, resp.Header.Get(RequestIDHeader), nil
			}
			err = &httpx.Error{Partner: Name, Op: "POST " + PaymentPath, Kind: httpx.Uncertain, Status: resp.Status, Code: "bad_response",
				Message: "answer carries no paymentMethodId"}
		}
		if httpx.KindOf(err) != httpx.Uncertain {
			return "", "", err
		}
		held, rid, lerr := d.list(clientID)
		if lerr != nil {
			return "", "", err
		}
		if ms := held[cd.Identifier]; len(ms) > 0 {
			return ms[0].PaymentMethodID, rid, nil
		}
		if try >= maxAdds {
			return "", "", err
		}
	}
}

// remove deletes the payment method of a card closed at the bank. A
// method already gone counts as removed. Q2 refuses while the method has
// paid something in the last 24 hours: that refusal (any 4xx other than
// auth and not-found, since no code is published) is retryable, so the
// customer stays planned and a later run deletes it.
func (d *delivery) remove(m PaymentMethod, ident string) (string, error) {
	resp, err := d.do(httpx.Request{Method: http.MethodDelete, Path: PaymentPath + "/" + url.PathEscape(m.PaymentMethodID), Idempotent: true})
	if err == nil {
		return resp.Header.Get(RequestIDHeader), nil
	}
	var he *httpx.Error
	if !errors.As(err, &he) {
		return "", err
	}
	switch {
	case he.Status == http.StatusNotFound:
		return "", nil
	case he.Kind == httpx.Rejected:
		cp := *he
		cp.Kind, cp.Code = httpx.Retryable, "delete_refused"
		cp.Message = "Q2 refused to delete payment method " + m.PaymentMethodID + " of closed card " + ident +
			" (it refuses while a method has paid something in the last 24 hours; a later run tries again): " + he.Message
		return "", &cp
	}
	return "", err
}

// decodeError reads Q2's published error body, {"message": "..."} (an
// older add-payment page), and the {"error": {"code", "message"}} shape
// assumed before it was found. Anything else falls back to the HTTP
// status text, never to the raw body, which might echo the request.
func decodeError(status int, body []byte) (code, message string) {
	var e struct {
		Message string `json:"message"`
		Error   struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", http.StatusText(status)
	}
	switch {
	case e.Error.Code != "" || e.Error.Message != "":
		return e.Error.Code, redact.Text(e.Error.Message)
	case e.Message != "":
		return "", redact.Text(e.Message)
	}
	return "", http.StatusText(status)
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
