package synctera

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
)

// MaxPageSize is the largest page the list answers (more acts as this).
const MaxPageSize = 100

// Config for the Synctera client.
type Config struct {
	BaseURL  string // e.g. https://api-sandbox.synctera.com/v0 (ends with BasePath)
	Token    string // Bearer API key
	PageSize int    // ListAll page size; default and maximum MaxPageSize
	HTTP     httpx.Config
}

// Client delivers customers to Synctera. It implements load.Provider and
// load.Deactivator. Safe for concurrent use.
type Client struct {
	http     *httpx.Client
	pageSize int
}

var (
	_ load.Provider    = (*Client)(nil)
	_ load.Deactivator = (*Client)(nil)
)

// attemptsKey carries a per-call attempt counter to the signing hook,
// which runs once per attempt: httpx reports attempts on success only.
type attemptsKey struct{}

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
	hc, err := httpx.New(h, decodeError)
	if err != nil {
		return nil, err
	}
	return &Client{http: hc, pageSize: size}, nil
}

func (c *Client) Name() string { return Name }

// MaxBatch is 1: the API takes one customer per call.
func (c *Client) MaxBatch() int { return 1 }

// HTTP exposes the underlying client (breaker state for metrics).
func (c *Client) HTTP() *httpx.Client { return c.http }

// Map turns a validated customer into one op whose payload is a
// CustomerInBody, or into a reject for this partner. Pure and
// deterministic.
func (c *Client) Map(cu *model.Customer) ([]load.Op, []model.Reject) { return mapCustomer(cu) }

// Send delivers each op in turn and returns one Result per op: Create is
// POST with Op.IdemKey as Idempotency-Key, Update (Op.RemoteID set) is PUT
// with the full body, Deactivate is PATCH {status: INACTIVE}.
func (c *Client) Send(ctx context.Context, ops []load.Op, _ load.Journal) []load.Result {
	out := make([]load.Result, len(ops))
	for i, op := range ops {
		out[i] = c.deliver(ctx, op)
	}
	return out
}

func (c *Client) deliver(ctx context.Context, op load.Op) load.Result {
	if op.Kind == load.Deactivate {
		return c.Deactivate(ctx, op)
	}
	var body CustomerInBody
	switch p := op.Payload.(type) {
	case CustomerInBody:
		body = p
	case *CustomerInBody:
		if p != nil {
			body = *p
		}
	}
	if body.Status == "" {
		// Map always sets a status: reaching here is a wiring bug.
		return load.FailureResult(op, &httpx.Error{Partner: Name, Op: string(op.Kind) + " " + op.EntityKey, Kind: httpx.Fatal, Code: "bad_payload",
			Message: "op payload is not a synctera.CustomerInBody with a status"}, 0)
	}
	ctx, n := counting(ctx)
	var (
		cu     *Customer
		status int
		err    error
	)
	if op.RemoteID != "" {
		cu, status, err = c.update(ctx, op.RemoteID, body)
	} else {
		cu, status, err = c.create(ctx, body, op.IdemKey)
	}
	if err != nil {
		return load.FailureResult(op, wrapOp(err, op), int(n.Load()))
	}
	id := cu.ID
	if id == "" {
		id = op.RemoteID // a PUT answer without an id still concerns the id we sent
	}
	return load.Result{EntityKey: op.EntityKey, Outcome: load.OK, RemoteID: id, HTTPStatus: status, Attempts: int(n.Load())}
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
func (c *Client) Deactivate(ctx context.Context, op load.Op) load.Result {
	if op.RemoteID == "" {
		return load.FailureResult(op, &httpx.Error{Partner: Name, Op: "PATCH " + CustomersPath + "/{id}", Kind: httpx.Rejected, Code: "bad_remote_id",
			Message: "no synctera customer id to deactivate"}, 0)
	}
	ctx, n := counting(ctx)
	p := customerPath(op.RemoteID)
	done := func(status int, err error) load.Result {
		switch {
		case httpx.CodeOf(err) == CodeNotFound:
			return load.Result{EntityKey: op.EntityKey, Outcome: load.OK, RemoteID: op.RemoteID, HTTPStatus: http.StatusNotFound, Attempts: int(n.Load())}
		case err != nil:
			return load.FailureResult(op, wrapOp(err, op), int(n.Load()))
		}
		return load.Result{EntityKey: op.EntityKey, Outcome: load.OK, RemoteID: op.RemoteID, HTTPStatus: status, Attempts: int(n.Load())}
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
	for _, id := range p.IDs {
		q.Add("id", id)
	}
	if p.HasAccounts != nil {
		q.Set("has_accounts", strconv.FormatBool(*p.HasAccounts))
	}
	for _, s := range p.SortBy {
		q.Add("sort_by", s)
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
// last segment of type ("invalid-fields" -> invalid_fields), or derived
// from the status when type is missing or about:blank. The message is the
// invalid fields with their reasons when there are any, else detail, else
// title. A body that is not a problem falls back to the status text, never
// to the raw body. Our requests carry no card data, so nothing echoed can
// contain any.
func decodeError(status int, body []byte) (code, message string) {
	var p Problem
	if json.Unmarshal(body, &p) != nil {
		return statusCode(status), http.StatusText(status)
	}
	code = statusCode(status)
	if t := strings.TrimSpace(p.Type); t != "" && t != "about:blank" {
		code = strings.ReplaceAll(path.Base(t), "-", "_")
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

func statusCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeInvalidFields
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
	return context.WithValue(ctx, attemptsKey{}, n), n
}

// wrapOp turns a cancellation (not an *httpx.Error) into one, so the
// engine reads every failure the same way.
func wrapOp(err error, op load.Op) error {
	var he *httpx.Error
	if errors.As(err, &he) {
		return err
	}
	return &httpx.Error{Partner: Name, Op: string(op.Kind) + " " + op.EntityKey, Kind: httpx.Retryable, Code: "cancelled", Err: err}
}
