package synctera

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

// MaxPageSize is the largest page the list answers (more acts as this).
const MaxPageSize = 100

// Config for the Synctera client.
type Config struct {
	BaseURL  string // e.g. https://api-sandbox.synctera.com/v0 (ends with BasePath)
	Token    string // Bearer API key
	PageSize int    // ListAll page size; default and maximum MaxPageSize
	HTTP     httpx.Config
	// KeyLife is how long Synctera replays an Idempotency-Key (published:
	// 7 days; default). Past it a lost create can no longer be proved
	// absent by resending its key.
	KeyLife time.Duration
	// Now is the client's clock (default time.Now); tests move it.
	Now func() time.Time
}

// Client delivers customers to Synctera. It implements partner.Provider,
// partner.Deactivator and partner.Resolver. Safe for concurrent use.
type Client struct {
	http     *httpx.Client
	pageSize int
	keyLife  time.Duration
	now      func() time.Time
}

var (
	_ partner.Provider    = (*Client)(nil)
	_ partner.Deactivator = (*Client)(nil)
	_ partner.Resolver    = (*Client)(nil)
)

// attemptsKey carries a per-call attempt counter to the signing hook,
// which runs once per attempt: httpx reports attempts on success only.
type attemptsKey struct{}

// lostKey carries a per-call flag the transport sets when an attempt's
// answer was lost after the request may have reached Synctera.
type lostKey struct{}

// New checks the configuration before any call is made.
func New(cfg Config) (*Client, error) {
	if strings.TrimSpace(cfg.Token) == "" {
		return nil, errors.New("synctera: token is required (partners.synctera.credentials.token)")
	}
	if cfg.PageSize < 0 {
		return nil, errors.New("synctera: page size must not be negative")
	}
	size := cfg.PageSize
	if size == 0 || size > MaxPageSize {
		size = MaxPageSize
	}
	if cfg.KeyLife < 0 {
		return nil, errors.New("synctera: key life must not be negative")
	}
	if cfg.KeyLife == 0 {
		cfg.KeyLife = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := cfg.HTTP
	h.Partner, h.BaseURL = Name, cfg.BaseURL
	auth := "Bearer " + cfg.Token
	h.Sign = func(r *http.Request) error {
		if n, ok := r.Context().Value(attemptsKey{}).(*atomic.Int32); ok {
			n.Add(1)
		}
		r.Header.Set("Authorization", auth)
		return nil
	}
	h.Classify = classify
	base := h.Transport
	if base == nil {
		base = defaultTransport()
	}
	h.Transport = lossTracker{base: base}
	hc, err := httpx.New(h, decodeError)
	if err != nil {
		return nil, err
	}
	return &Client{http: hc, pageSize: size, keyLife: cfg.KeyLife, now: cfg.Now}, nil
}

func (c *Client) Name() string { return Name }

// MaxBatch is 1: the API takes one customer per call.
func (c *Client) MaxBatch() int { return 1 }

// HTTP exposes the underlying client (breaker state for metrics).
func (c *Client) HTTP() *httpx.Client { return c.http }

// Map turns a validated customer into one op whose payload is a
// CustomerInBody, or into a reject for this partner. Pure and
// deterministic.
func (c *Client) Map(cu *model.Customer) ([]partner.Item, []model.Reject) { return mapCustomer(cu) }

// Send delivers each op in turn and returns one Result per op: Create is
// POST with Op.IdemKey as Idempotency-Key, Update (Op.RemoteID set) is PUT
// with the full body, Deactivate is PATCH {status: INACTIVE}.
//
// Before a create it notes an intent in j (the key it is about to use),
// so that a create whose answer is lost, or a kill between the call and
// the ledger write, leaves an open intent: the next run calls Resolve for
// it instead of creating blind. A create refused with
// IDEMPOTENCY_INVALID_REUSE (the key went out before with another body)
// is settled by a lookup, never by a second create.
func (c *Client) Send(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result {
	out := make([]partner.Result, len(ops))
	for i, op := range ops {
		out[i] = c.deliver(ctx, op, j)
	}
	return out
}

func payloadOf(op partner.Op) (CustomerInBody, partner.Result, bool) {
	body, _ := partner.PayloadOf[CustomerInBody](op)
	if body.Status == "" {
		// Map always sets a status: reaching here is a wiring bug.
		return body, partner.FailureResult(op, &httpx.Error{Partner: Name, Op: string(op.Kind) + " " + op.EntityKey.String(), Kind: httpx.Fatal, Code: "bad_payload",
			Message: "op payload is not a synctera.CustomerInBody with a status"}, 0), false
	}
	return body, partner.Result{}, true
}

func (c *Client) deliver(ctx context.Context, op partner.Op, j partner.Journal) partner.Result {
	if op.Kind == partner.Deactivate {
		return c.Deactivate(ctx, op)
	}
	body, bad, ok := payloadOf(op)
	if !ok {
		return bad
	}
	ctx, n := counting(ctx)
	if op.RemoteID != "" {
		return c.put(ctx, op, op.RemoteID, body, n)
	}
	if op.Kind == partner.Update {
		// The ledger knows the entity but not its Synctera id (an intent
		// an operator settled as delivered without --remote-id): the
		// customer exists, so it is found, never created a second time.
		if r, found := c.adopt(ctx, op, body, n); found {
			return r
		}
		return uncertain(op, 0, n, "no_remote_id", "the ledger holds "+string(op.EntityKey)+" as delivered without a Synctera id, and no customer carrying it was found "+
			"by e-mail, phone or name; settle it again with --remote-id", nil)
	}
	if j != nil {
		if err := j.Note(ctx, op, noteIntent(op.IdemKey, c.now())); err != nil {
			return partner.FailureResult(op, &httpx.Error{Partner: Name, Op: "journal", Kind: httpx.Retryable, Code: "journal",
				Message: "could not record the intent before the create; nothing was sent", Err: err}, 0)
		}
	}
	return c.post(ctx, op, body, op.IdemKey, n)
}

// put delivers body to customer id.
func (c *Client) put(ctx context.Context, op partner.Op, id string, body CustomerInBody, n *atomic.Int32) partner.Result {
	cu, status, err := c.update(ctx, id, body)
	if err != nil {
		return partner.FailureResult(op, wrapOp(err, op), int(n.Load()))
	}
	if cu.ID != "" {
		id = cu.ID
	}
	return partner.Result{EntityKey: op.EntityKey, Outcome: partner.OK, RemoteID: id, HTTPStatus: status, Attempts: int(n.Load())}
}

// post creates with key. IDEMPOTENCY_INVALID_REUSE (under any 4xx: its
// status is unpublished) means the key went out before with another
// body, so a customer may exist: it is looked up, not created again.
func (c *Client) post(ctx context.Context, op partner.Op, body CustomerInBody, key string, n *atomic.Int32) partner.Result {
	cu, status, err := c.create(ctx, body, key)
	switch {
	case err == nil:
		return partner.Result{EntityKey: op.EntityKey, Outcome: partner.OK, RemoteID: cu.ID, HTTPStatus: status, Attempts: int(n.Load())}
	case invalidReuse(err):
		r, found := c.adopt(ctx, op, body, n)
		if found {
			return r
		}
		return uncertain(op, httpx.StatusOf(err), n, CodeKeyReused,
			"this create's Idempotency-Key went out before with another body, so Synctera may hold the customer, and no customer carrying "+
				op.EntityKey.String()+" was found by e-mail, phone or name; see docs/partners/synctera.md, \"uncertain\"", err)
	}
	r := partner.FailureResult(op, wrapOp(err, op), int(n.Load()))
	if r.Outcome == partner.Failed && (lostAnswer(ctx) || httpx.CodeOf(err) == CodeKeyInUse) {
		// The last attempt failed, but an earlier one reached Synctera
		// and its answer was lost (httpx reports the last error), or the
		// key's first request was still running: it may have created the
		// customer. Failed would settle the intent and let a later run
		// create blind; uncertain keeps it for Resolve.
		return uncertain(op, r.HTTPStatus, n, "maybe_created",
			"the create failed after "+strconv.Itoa(r.Attempts)+" attempts, and one of them may have created the customer (its answer was lost, or its key was still in use)", err)
	}
	return r
}

// Resolve settles an op that an earlier run left pending or uncertain: a
// create whose answer was lost, or a kill between the call and the
// ledger write. It looks the customer up first (metadata carrying the
// entity key, found through the e-mail, phone and name filters), so it
// holds past the 7 days Synctera keeps a key: one match is adopted and
// gets the current content with PUT; several are reported uncertain; none
// (provably absent as far as the filters reach) is created with the key
// the intent noted, so that a create the lookup missed within the key's
// life is answered, not repeated.
func (c *Client) Resolve(ctx context.Context, op partner.Op, _ partner.Journal) partner.Result {
	if op.Kind == partner.Deactivate || op.RemoteID != "" {
		return c.deliver(ctx, op, nil)
	}
	body, bad, ok := payloadOf(op)
	if !ok {
		return bad
	}
	ctx, n := counting(ctx)
	if r, found := c.adopt(ctx, op, body, n); found {
		return r
	}
	key, noted := readIntent(op.Intent)
	if key == "" || len(key) > 255 {
		key = op.IdemKey
	}
	// Resending the noted key is safe only while Synctera still replays
	// it: past its life the POST would create a second customer if the
	// first landed and the lookup missed it (the record's e-mail, phone
	// and name all changed since). That case goes to an operator.
	if noted.IsZero() || c.now().Sub(noted) >= c.keyLife-time.Hour {
		return uncertain(op, 0, n, partner.CodeNeedsOperator,
			"a create of "+string(op.EntityKey)+" may have landed, its Idempotency-Key is past Synctera's replay window, and no customer carrying it was found "+
				"by e-mail, phone or name: look it up at Synctera, then etl intents settle --provider synctera --entity "+string(op.EntityKey), nil)
	}
	return c.post(ctx, op, body, key, n)
}

// intentNote is what a create journals before it goes out: the key it
// sends and when, so a rerun knows whether Synctera still replays it.
type intentNote struct {
	Key   string    `json:"key"`
	Noted time.Time `json:"noted"`
}

func noteIntent(key string, now time.Time) string { return IntentDetail(key, now) }

// IntentDetail is the journal detail of a create sent with key at noted
// (what Resolve reads back).
func IntentDetail(key string, noted time.Time) string {
	b, _ := json.Marshal(intentNote{Key: key, Noted: noted.UTC()})
	return string(b)
}

// readIntent reads a note; a bare key (written before notes had a time)
// has an unknown age.
func readIntent(detail string) (key string, noted time.Time) {
	detail = strings.TrimSpace(detail)
	var n intentNote
	if strings.HasPrefix(detail, "{") && json.Unmarshal([]byte(detail), &n) == nil {
		return n.Key, n.Noted
	}
	return detail, time.Time{}
}

// adopt looks the entity's customer up. found is false only when no
// customer carries the entity key; a failed lookup or several matches
// are an uncertain result, never grounds for a create.
func (c *Client) adopt(ctx context.Context, op partner.Op, body CustomerInBody, n *atomic.Int32) (partner.Result, bool) {
	ids, err := c.Lookup(ctx, op.EntityKey.String(), body)
	switch {
	case err != nil:
		return uncertain(op, httpx.StatusOf(err), n, "lookup_failed",
			"could not look up whether Synctera holds the customer; the rerun tries again", err), true
	case len(ids) > 1:
		return uncertain(op, 0, n, "ambiguous",
			strconv.Itoa(len(ids))+" Synctera customers carry "+op.EntityKey.String()+" ("+strings.Join(ids, ", ")+
				"): deactivate the extra ones at Synctera, then rerun", nil), true
	case len(ids) == 0:
		return partner.Result{}, false
	}
	r := c.put(ctx, op, ids[0], body, n)
	if r.Outcome != partner.OK {
		// The customer exists: a create must never follow. Uncertain
		// keeps the intent open, so the rerun adopts it again.
		r.Outcome, r.RemoteID = partner.Uncertain, ids[0]
		r.Err = &httpx.Error{Partner: Name, Op: "PUT " + CustomersPath + "/{id}", Kind: httpx.Uncertain, Status: r.HTTPStatus,
			Code: "adopt_update_failed", Message: "found customer " + ids[0] + " for " + op.EntityKey.String() + " but could not update it", Err: r.Err}
	}
	return r, true
}

// Lookup returns the ids of the customers whose metadata carries
// entityKey, searching with each list filter body offers: email,
// phone_number, and first_name with last_name (list cannot filter on
// metadata). Every page of each search is read, up to maxLookup
// customers per search.
func (c *Client) Lookup(ctx context.Context, entityKey string, body CustomerInBody) ([]string, error) {
	var searches []ListParams
	if body.Email != "" {
		searches = append(searches, ListParams{Email: body.Email})
	}
	if body.PhoneNumber != "" {
		searches = append(searches, ListParams{PhoneNumber: body.PhoneNumber})
	}
	if body.FirstName != "" && body.LastName != "" {
		searches = append(searches, ListParams{FirstName: body.FirstName, LastName: body.LastName})
	}
	seen := map[string]bool{}
	var ids []string
	for _, p := range searches {
		p.Limit = MaxPageSize
		read := 0
		for {
			page, err := c.list(ctx, p)
			if err != nil {
				return nil, fmt.Errorf("synctera: look up %s: %w", entityKey, err)
			}
			for _, cu := range page.Customers {
				if EntityRef(cu.Metadata) == entityKey && !seen[cu.ID] {
					seen[cu.ID] = true
					ids = append(ids, cu.ID)
				}
			}
			read += len(page.Customers)
			if page.NextPageToken == "" {
				break
			}
			if read >= maxLookup {
				return nil, &httpx.Error{Partner: Name, Op: "GET " + CustomersPath, Kind: httpx.Uncertain, Code: "lookup_too_broad",
					Message: "more than " + strconv.Itoa(maxLookup) + " customers match one lookup filter of " + entityKey}
			}
			p.PageToken = page.NextPageToken
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// maxLookup bounds one lookup search: a name shared by more customers
// than this is no way to find one.
const maxLookup = 2000

func uncertain(op partner.Op, status int, n *atomic.Int32, code, msg string, err error) partner.Result {
	return partner.Result{EntityKey: op.EntityKey, Outcome: partner.Uncertain, HTTPStatus: status, Attempts: int(n.Load()),
		Err: &httpx.Error{Partner: Name, Op: "create " + op.EntityKey.String(), Kind: httpx.Uncertain, Status: status, Code: code, Message: msg, Err: err}}
}

// invalidReuse reports whether err is Synctera's IDEMPOTENCY_INVALID_REUSE
// under any 4xx.
func invalidReuse(err error) bool {
	s := httpx.StatusOf(err)
	return s >= 400 && s < 500 && httpx.CodeOf(err) == CodeKeyReused
}

// Deactivate switches the customer off with PATCH {status: INACTIVE},
// keyed by Op.IdemKey. Synctera documents no DELETE, and an inactive
// customer keeps its history. A customer that is already gone (404) counts
// as deactivated: the goal, nothing active at the partner, holds, and a
// reject would come back every night.
//
// The engine derives the key from the entity and its last content hash,
// so deactivate, reactivate and deactivate again with unchanged content
// reuses a key, and the partner would answer the first deactivation again
// without applying it. So a replayed answer is checked with a GET and, if
// the customer is not inactive, patched again without a key: setting a
// status is idempotent by itself.
func (c *Client) Deactivate(ctx context.Context, op partner.Op) partner.Result {
	if op.RemoteID == "" {
		return partner.FailureResult(op, &httpx.Error{Partner: Name, Op: "PATCH " + CustomersPath + "/{id}", Kind: httpx.Rejected, Code: "bad_remote_id",
			Message: "no synctera customer id to deactivate"}, 0)
	}
	ctx, n := counting(ctx)
	p := customerPath(op.RemoteID)
	done := func(status int, err error) partner.Result {
		switch {
		case httpx.StatusOf(err) == http.StatusNotFound:
			// Judged by status alone: whatever type a 404 carries, the
			// customer is not there.
			return partner.Result{EntityKey: op.EntityKey, Outcome: partner.OK, RemoteID: op.RemoteID, HTTPStatus: http.StatusNotFound, Attempts: int(n.Load())}
		case err != nil:
			return partner.FailureResult(op, wrapOp(err, op), int(n.Load()))
		}
		return partner.Result{EntityKey: op.EntityKey, Outcome: partner.OK, RemoteID: op.RemoteID, HTTPStatus: status, Attempts: int(n.Load())}
	}
	_, resp, err := c.send(ctx, http.MethodPatch, p, DeactivateBody(), op.IdemKey, true)
	if err != nil || resp.Header.Get(ReplayedHeader) != "true" {
		return done(statusOf(resp), err)
	}
	cur, resp, err := c.send(ctx, http.MethodGet, p, nil, "", true)
	if err != nil || cur.Status == StatusInactive {
		return done(statusOf(resp), err)
	}
	_, resp, err = c.send(ctx, http.MethodPatch, p, DeactivateBody(), "", true)
	return done(statusOf(resp), err)
}

func statusOf(r *httpx.Response) int {
	if r == nil {
		return 0
	}
	return r.Status
}

// CreateCustomer posts a new customer. With an idempotency key the call
// is retried after a lost answer, and a repeat of the same key and body
// answers the first customer instead of creating another. Without a key it
// is sent once.
func (c *Client) CreateCustomer(ctx context.Context, body CustomerInBody, idempotencyKey string) (*Customer, error) {
	cu, _, err := c.create(ctx, body, idempotencyKey)
	if err != nil {
		return nil, fmt.Errorf("synctera: create customer: %w", err)
	}
	return cu, nil
}

func (c *Client) create(ctx context.Context, body CustomerInBody, key string) (*Customer, int, error) {
	cu, status, err := c.call(ctx, http.MethodPost, CustomersPath, body, key, key != "")
	if err != nil {
		return nil, 0, err
	}
	if cu.ID == "" {
		// Created, but we cannot tell which customer: as good as a lost
		// answer. The rerun sends the same key and gets the answer again.
		return nil, status, &httpx.Error{Partner: Name, Op: "POST " + CustomersPath, Kind: httpx.Uncertain, Status: status,
			Code: "bad_response", Message: "answer carries no customer id"}
	}
	return cu, status, nil
}

// GetCustomer reads one customer.
func (c *Client) GetCustomer(ctx context.Context, id string) (*Customer, error) {
	cu, _, err := c.call(ctx, http.MethodGet, customerPath(id), nil, "", true)
	if err != nil {
		return nil, fmt.Errorf("synctera: get customer %s: %w", id, err)
	}
	return cu, nil
}

// UpdateCustomer replaces customer id with body (PUT). PUT sets the whole
// customer, so a resend is harmless and is retried; the doc offers no
// idempotency key for it.
func (c *Client) UpdateCustomer(ctx context.Context, id string, body CustomerInBody) (*Customer, error) {
	cu, _, err := c.update(ctx, id, body)
	if err != nil {
		return nil, fmt.Errorf("synctera: update customer %s: %w", id, err)
	}
	return cu, nil
}

func (c *Client) update(ctx context.Context, id string, body CustomerInBody) (*Customer, int, error) {
	return c.call(ctx, http.MethodPut, customerPath(id), body, "", true)
}

// PatchCustomer changes the fields present in body. The call is retried
// after a lost answer: with a key a repeat is answered, not re-applied;
// without one it sets the same values again.
func (c *Client) PatchCustomer(ctx context.Context, id string, body PatchCustomer, idempotencyKey string) (*Customer, error) {
	cu, _, err := c.patch(ctx, id, body, idempotencyKey)
	if err != nil {
		return nil, fmt.Errorf("synctera: patch customer %s: %w", id, err)
	}
	return cu, nil
}

func (c *Client) patch(ctx context.Context, id string, body PatchCustomer, key string) (*Customer, int, error) {
	return c.call(ctx, http.MethodPatch, customerPath(id), body, key, true)
}

// ListCustomers reads one page.
func (c *Client) ListCustomers(ctx context.Context, p ListParams) (*CustomerList, error) {
	l, err := c.list(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("synctera: list customers: %w", err)
	}
	return l, nil
}

func (c *Client) list(ctx context.Context, p ListParams) (*CustomerList, error) {
	resp, err := c.http.Do(ctx, httpx.Request{Method: http.MethodGet, Path: CustomersPath, Query: p.query(), Idempotent: true, Header: accept()})
	if err != nil {
		return nil, err
	}
	var l CustomerList
	if err := json.Unmarshal(resp.Body, &l); err != nil {
		return nil, &httpx.Error{Partner: Name, Op: "GET " + CustomersPath, Kind: httpx.Retryable, Status: resp.Status,
			Code: "bad_response", Message: "cannot decode the customer list", Err: err}
	}
	return &l, nil
}

// ListAll walks every customer page by page, following next_page_token
// until a page comes without one, and stops at the first error fn returns.
func (c *Client) ListAll(ctx context.Context, fn func(Customer) error) error {
	seen := map[string]bool{}
	p := ListParams{Limit: c.pageSize}
	for {
		page, err := c.list(ctx, p)
		if err != nil {
			return fmt.Errorf("synctera: list customers: %w", err)
		}
		for _, cu := range page.Customers {
			if err := fn(cu); err != nil {
				return err
			}
		}
		if page.NextPageToken == "" {
			return nil
		}
		if seen[page.NextPageToken] {
			// A token that comes back would walk the same pages forever.
			return fmt.Errorf("synctera: list customers: page token repeated after %d pages", len(seen))
		}
		seen[page.NextPageToken] = true
		p.PageToken = page.NextPageToken
	}
}

// call sends one request with an optional idempotency key and decodes the
// customer it answers.
func (c *Client) call(ctx context.Context, method, p string, body any, key string, idempotent bool) (*Customer, int, error) {
	cu, resp, err := c.send(ctx, method, p, body, key, idempotent)
	return cu, statusOf(resp), err
}

func (c *Client) send(ctx context.Context, method, p string, body any, key string, idempotent bool) (*Customer, *httpx.Response, error) {
	req := httpx.Request{Method: method, Path: p, Idempotent: idempotent, Header: accept()}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, &httpx.Error{Partner: Name, Op: method + " " + p, Kind: httpx.Fatal, Code: "encode", Message: "cannot encode the customer"}
		}
		req.Body = b
	}
	if key != "" {
		req.Header.Set(IdempotencyHeader, key)
	}
	resp, err := c.http.Do(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	var cu Customer
	if err := json.Unmarshal(resp.Body, &cu); err != nil {
		kind := httpx.Retryable // nothing changed on a GET
		if method != http.MethodGet {
			kind = httpx.Uncertain // the change happened; its answer is unreadable
		}
		return nil, resp, &httpx.Error{Partner: Name, Op: method + " " + p, Kind: kind, Status: resp.Status,
			Code: "bad_response", Message: "cannot decode the customer", Err: err}
	}
	return &cu, resp, nil
}

// accept is the doc's Accept header: errors come as problem+json.
func accept() http.Header { return http.Header{"Accept": {"application/json, " + ProblemContentType}} }

func customerPath(id string) string { return CustomersPath + "/" + url.PathEscape(id) }

func (p ListParams) query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("page_token", p.PageToken)
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	set("status", p.Status)
	set("first_name", p.FirstName)
	set("last_name", p.LastName)
	set("email", p.Email)
	set("phone_number", p.PhoneNumber)
	set("ssn_last_4", p.SSNLast4)
	// Array parameters are explode: false: one parameter, comma-separated.
	if len(p.IDs) > 0 {
		q.Set("id", strings.Join(p.IDs, ","))
	}
	if p.HasAccounts != nil {
		q.Set("has_accounts", strconv.FormatBool(*p.HasAccounts))
	}
	if len(p.SortBy) > 0 {
		q.Set("sort_by", strings.Join(p.SortBy, ","))
	}
	return q
}

// classify makes a 409 for a key whose first request is still running
// retryable: the retry is answered with the first request's result once it
// is done. Every other 409 (already exists) stays a reject.
func classify(status int, body []byte) httpx.Kind {
	if status == http.StatusConflict {
		if code, _ := decodeError(status, body); code == CodeKeyInUse {
			return httpx.Retryable
		}
	}
	return 0
}

// decodeError reads an application/problem+json body. The code is the
// problem's code in lower case when it has one (BAD_REQUEST_BODY ->
// bad_request_body), else the last segment of type with "-" as "_"
// (.../bad-request-body -> bad_request_body), else one derived from the
// status (type missing or about:blank). The message is the invalid
// fields with their reasons when there are any, else detail, else title.
// A body that is not a problem falls back to the status text, never to
// the raw body. Our requests carry no card data, so nothing echoed can
// contain any.
func decodeError(status int, body []byte) (code, message string) {
	var p Problem
	if json.Unmarshal(body, &p) != nil {
		return statusCode(status), http.StatusText(status)
	}
	code = statusCode(status)
	if t := strings.TrimSpace(p.Type); t != "" && t != "about:blank" {
		code = normCode(path.Base(strings.TrimRight(t, "/")))
	}
	if k := strings.TrimSpace(p.Code); k != "" {
		code = normCode(k)
	}
	switch {
	case len(p.InvalidFields) > 0:
		parts := make([]string, len(p.InvalidFields))
		for i, f := range p.InvalidFields {
			parts[i] = f.Field + ": " + f.Message
		}
		message = strings.Join(parts, "; ")
	case p.Detail != "":
		message = p.Detail
	case p.Title != "":
		message = p.Title
	default:
		message = http.StatusText(status)
	}
	if r := []rune(message); len(r) > 500 {
		message = string(r[:500]) + "…"
	}
	return code, message
}

// normCode makes a type segment and a code the same string.
func normCode(s string) string { return strings.ToLower(strings.ReplaceAll(s, "-", "_")) }

func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusConflict:
		return "conflict"
	case http.StatusUnprocessableEntity:
		return "unprocessable"
	}
	return "http_" + strconv.Itoa(status)
}

func counting(ctx context.Context) (context.Context, *atomic.Int32) {
	n := new(atomic.Int32)
	return context.WithValue(context.WithValue(ctx, attemptsKey{}, n), lostKey{}, new(atomic.Bool)), n
}

// lostAnswer reports whether an attempt of the call in ctx lost its
// answer after it may have reached the partner.
func lostAnswer(ctx context.Context) bool {
	b, ok := ctx.Value(lostKey{}).(*atomic.Bool)
	return ok && b.Load()
}

// lossTracker marks the call's lost flag when an attempt fails after the
// connection was made (a reset, a timeout, a body cut short, a 408 or 5xx
// answer): unlike a refused dial, the partner may have run that request.
type lossTracker struct{ base http.RoundTripper }

func (t lossTracker) RoundTrip(r *http.Request) (*http.Response, error) {
	lost, _ := r.Context().Value(lostKey{}).(*atomic.Bool)
	resp, err := t.base.RoundTrip(r)
	if lost == nil {
		return resp, err
	}
	if err != nil {
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			lost.Store(true)
		}
		return resp, err
	}
	if resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500 {
		// A gateway that gave up (502, 504), a 408 or a 500 says nothing
		// about whether Synctera ran the request before it.
		lost.Store(true)
	}
	resp.Body = &trackedBody{ReadCloser: resp.Body, lost: lost}
	return resp, nil
}

type trackedBody struct {
	io.ReadCloser
	lost *atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.lost.Store(true)
	}
	return n, err
}

func defaultTransport() http.RoundTripper {
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}
}

// wrapOp turns a cancellation (not an *httpx.Error) into one, so the
// engine reads every failure the same way.
func wrapOp(err error, op partner.Op) error {
	var he *httpx.Error
	if errors.As(err, &he) {
		return err
	}
	return &httpx.Error{Partner: Name, Op: string(op.Kind) + " " + op.EntityKey.String(), Kind: httpx.Retryable, Code: "cancelled", Err: err}
}
