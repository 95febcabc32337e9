package tokenization

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

// DefaultNamePrefix starts every client name we create.
const DefaultNamePrefix = "etl-"

// Auth schemes (Config.Auth, options.auth).
const (
	AuthBasic = "basic"
	AuthHMAC  = "hmac"
)

// DefaultPageSize is the take of each page when walking the client list.
const DefaultPageSize = 100

// Config for the tokenization client.
type Config struct {
	BaseURL string // e.g. https://portal-staging.shieldconex.com:4010
	// Auth is "basic" (default: the platform's testing scheme, Username
	// and Password) or "hmac" (production's: Username and Secret).
	// Ignored when Signer is set.
	Auth     string
	Username string
	Password string
	// Secret is the HMAC shared secret; with SecretBase64 the key is its
	// base64 decoding (the partner's generator does that: unconfirmed).
	Secret       string
	SecretBase64 bool
	// Signer replaces both, e.g. a test's or an RSA signer.
	Signer Signer
	// PartnerID and PartnerName name our partner at the platform: sent as
	// directPartner and used as the list filter. At least one is required;
	// the doc advises both.
	PartnerID   int
	PartnerName string
	// NamePrefix + customer id is each client's name; default
	// DefaultNamePrefix. Changing it renames clients on their next update
	// and makes the next create of a client without a remote id miss the
	// old name, so treat it as fixed once clients exist.
	NamePrefix string
	PageSize   int // list page size for the name index; default DefaultPageSize
	HTTP       httpx.Config
}

// Client delivers customers as tokenization clients. It implements
// partner.Provider, partner.Deactivator, partner.Resolver and partner.Finder: a create
// is journaled first (the platform has no idempotency key, and a run that
// dies after the POST but before its ledger write would otherwise leave a
// client the ledger never heard of), and its name finds it again. Safe
// for concurrent use.
type Client struct {
	http     *httpx.Client
	prefix   string
	partner  PartnerRef
	pageSize int
	idx      *nameIndex
}

var (
	_ partner.Provider    = (*Client)(nil)
	_ partner.Deactivator = (*Client)(nil)
	_ partner.Resolver    = (*Client)(nil)
	_ partner.Finder      = (*Client)(nil)
)

// intentCreate is the journal detail of a create: the name is what finds
// the client again, and it follows from the customer id.
const intentCreate = "create"

// attemptsKey carries a per-op attempt counter to the signing hook, which
// runs once per attempt: httpx reports attempts on success only.
type attemptsKey struct{}

// New checks the configuration before any call is made.
func New(cfg Config) (*Client, error) {
	signer := cfg.Signer
	if signer == nil {
		switch cfg.Auth {
		case "", AuthBasic:
			if cfg.Username == "" || cfg.Password == "" {
				return nil, errors.New("tokenization: username and password are required for auth basic (partners.tokenization.credentials) unless a signer is configured")
			}
			signer = BasicSigner(cfg.Username, cfg.Password)
		case AuthHMAC:
			if cfg.Username == "" || cfg.Secret == "" {
				return nil, errors.New("tokenization: username and secret are required for auth hmac (partners.tokenization.credentials)")
			}
			hs, err := HMACSigner(HMACOptions{Username: cfg.Username, Secret: cfg.Secret, SecretBase64: cfg.SecretBase64})
			if err != nil {
				return nil, err
			}
			signer = hs
		default:
			return nil, fmt.Errorf("tokenization: auth %q: want %s or %s", cfg.Auth, AuthBasic, AuthHMAC)
		}
	}
	if cfg.PartnerID < 0 {
		return nil, errors.New("tokenization: partner id must not be negative")
	}
	if cfg.PartnerID == 0 && strings.TrimSpace(cfg.PartnerName) == "" {
		return nil, errors.New("tokenization: a partner id or name is required (options partner_id, partner_name)")
	}
	if cfg.PageSize < 0 {
		return nil, errors.New("tokenization: page size must not be negative")
	}
	prefix := cfg.NamePrefix
	if prefix == "" {
		prefix = DefaultNamePrefix
	}
	pageSize := cfg.PageSize
	if pageSize == 0 {
		pageSize = DefaultPageSize
	}
	h := cfg.HTTP
	h.Partner, h.BaseURL = Name, cfg.BaseURL
	h.Detail = decodeDetail
	if h.RateHeaders == nil {
		// X-RateLimit-Limit (per hour), -Remaining, -Reset on 200s: the
		// common spelling httpx reads (Reset as Unix seconds or as seconds
		// from now; which one is unconfirmed).
		h.RateHeaders = httpx.ParseRateHeaders
	}
	h.Sign = func(r *http.Request) error {
		if n, ok := r.Context().Value(attemptsKey{}).(*atomic.Int32); ok && n != nil {
			n.Add(1)
		}
		return signer.Sign(r)
	}
	hc, err := httpx.New(h, decodeError)
	if err != nil {
		return nil, err
	}
	return &Client{
		http:     hc,
		prefix:   prefix,
		partner:  PartnerRef{ID: cfg.PartnerID, Name: strings.TrimSpace(cfg.PartnerName)},
		pageSize: pageSize,
		idx:      newNameIndex(),
	}, nil
}

func (c *Client) Name() string { return Name }

// MaxBatch is 1: the API takes one client per call.
func (c *Client) MaxBatch() int { return 1 }

// HTTP exposes the underlying client (breaker state for metrics).
func (c *Client) HTTP() *httpx.Client { return c.http }

// Map turns a customer into one client op. Pure and deterministic.
func (c *Client) Map(cu *model.Customer) ([]partner.Item, []model.Reject) {
	return mapCustomer(cu, c.prefix, c.partner)
}

// ClientName is the name the client of customerID has at the platform.
func (c *Client) ClientName(customerID string) string { return c.prefix + customerID }

// EntityKey is the ledger key behind a client name, or "" for a client we
// did not name (for reconciliation with the list API).
func (c *Client) EntityKey(clientName string) string {
	if id := customerOfName(c.prefix, clientName); id != "" {
		return partner.CustomerKey(id).String()
	}
	return ""
}

// Send delivers each op in turn and returns one Result per op. An op
// with no remote id may create a client, so its intent is noted first;
// when the note fails nothing is sent.
func (c *Client) Send(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result {
	out := make([]partner.Result, len(ops))
	for i, op := range ops {
		if op.Kind != partner.Deactivate && op.RemoteID == "" && j != nil {
			if err := j.Note(ctx, op, intentCreate); err != nil {
				out[i] = partner.FailureResult(op, &httpx.Error{Partner: Name, Op: "journal", Kind: httpx.Retryable, Code: "journal", Err: err,
					Message: "intent not written: create not sent"}, 0)
				continue
			}
		}
		out[i] = c.deliver(ctx, op)
	}
	return out
}

// Resolve settles an op an earlier run left pending or uncertain. The
// create path already looks the name up before it posts (and patches
// what it finds), so resolving is delivering: no new intent is needed,
// the open one stays until this outcome settles it.
func (c *Client) Resolve(ctx context.Context, op partner.Op, _ partner.Journal) partner.Result {
	return c.deliver(ctx, op)
}

// Find looks the client of op's customer up by its name alone (the
// engine calls it for an open intent whose customer left the source).
// It reads the run's name index, walked once per run and kept current by
// this run's own creates: a client created by an earlier run is in it.
func (c *Client) Find(ctx context.Context, op partner.Op) (string, bool, error) {
	if op.CustomerID == "" {
		return "", false, errors.New("tokenization: find: no customer id")
	}
	if err := c.idx.ready(ctx, c.walk); err != nil {
		return "", false, wrapOp(err, op)
	}
	id, found := c.idx.get(c.ClientName(op.CustomerID))
	if !found {
		return "", false, nil
	}
	return strconv.Itoa(id), true, nil
}

// Deactivate switches the client off with PATCH {isActive: false}. DELETE
// is never used: the doc says clients cannot be deleted (while documenting
// a DELETE), and an inactive client can be switched back on, keeps its
// templates and stays in the platform's audit trail.
func (c *Client) Deactivate(ctx context.Context, op partner.Op) partner.Result {
	id, err := c.remoteID(op, "PATCH")
	if err != nil {
		return partner.FailureResult(op, err, 0)
	}
	ctx, n := counting(ctx)
	off := false
	_, status, err := c.patch(ctx, id, PatchRequest{IsActive: &off})
	if err != nil {
		return partner.FailureResult(op, wrapOp(err, op), int(n.Load()))
	}
	return ok(op, id, status, int(n.Load()))
}

func (c *Client) deliver(ctx context.Context, op partner.Op) partner.Result {
	if op.Kind == partner.Deactivate {
		return c.Deactivate(ctx, op)
	}
	req, _ := partner.PayloadOf[ClientRequest](op)
	if req.Name == "" {
		// Map always sets a name: reaching here is a wiring bug.
		return partner.FailureResult(op, &httpx.Error{Partner: Name, Op: "deliver", Kind: httpx.Fatal, Code: "bad_payload",
			Message: "op payload is not a tokenization.ClientRequest with a name"}, 0)
	}
	ctx, n := counting(ctx)
	if op.RemoteID != "" {
		id, err := c.remoteID(op, "PATCH")
		if err != nil {
			return partner.FailureResult(op, err, 0)
		}
		_, status, err := c.patch(ctx, id, req.Patch())
		if err != nil {
			return partner.FailureResult(op, wrapOp(err, op), int(n.Load()))
		}
		return ok(op, id, status, int(n.Load()))
	}
	return c.upsert(ctx, op, req, n)
}

// upsert delivers an op with no remote id: POST is not idempotent and the
// platform has no idempotency key, but names are unique, so the name says
// whether an earlier attempt (a lost answer, a run that died before its
// ledger write) already created the client. If so it is patched instead.
func (c *Client) upsert(ctx context.Context, op partner.Op, req ClientRequest, n *atomic.Int32) partner.Result {
	if err := c.idx.ready(ctx, c.walk); err != nil {
		return partner.FailureResult(op, wrapOp(err, op), int(n.Load()))
	}
	if id, found := c.idx.get(req.Name); found {
		_, status, err := c.patch(ctx, id, req.Patch())
		if err == nil {
			return ok(op, id, status, int(n.Load()))
		}
		if httpx.CodeOf(err) != CodeNotFound {
			return partner.FailureResult(op, wrapOp(err, op), int(n.Load()))
		}
		// Gone since the walk (the doc says that cannot happen, but it
		// documents DELETE): create it anew.
		c.idx.forget(req.Name, id)
	}
	id, status, err := c.create(ctx, req)
	if err == nil {
		c.idx.put(req.Name, id)
		return ok(op, id, status, int(n.Load()))
	}
	switch {
	case duplicateName(err):
		// Someone created the name after our walk (or a page shifted under
		// it): find it and patch it.
		return c.resolve(ctx, op, req, n, err)
	case httpx.KindOf(err) == httpx.Uncertain:
		// The create may have landed: look before leaving it to the rerun.
		return c.resolve(ctx, op, req, n, err)
	}
	return partner.FailureResult(op, wrapOp(err, op), int(n.Load()))
}

// resolve settles a create that was refused as a duplicate or whose answer
// was lost, by finding the name in a fresh walk and patching that client.
func (c *Client) resolve(ctx context.Context, op partner.Op, req ClientRequest, n *atomic.Int32, cause error) partner.Result {
	if err := c.idx.refresh(ctx, c.walk); err != nil {
		if httpx.KindOf(cause) == httpx.Uncertain {
			return partner.FailureResult(op, wrapOp(cause, op), int(n.Load()))
		}
		return partner.FailureResult(op, wrapOp(err, op), int(n.Load()))
	}
	id, found := c.idx.get(req.Name)
	if !found {
		if duplicateName(cause) {
			// Names are unique across the platform and perhaps without
			// regard to case; the holder is not a client of our partner with
			// exactly this name, so it is not ours to patch.
			var he *httpx.Error
			if errors.As(cause, &he) {
				cp := *he
				cp.Message = strings.TrimSpace(cp.Message + " (the name is held by a client our partner does not list under exactly this name: another partner's client, or a name that differs only in case)")
				cause = &cp
			}
		}
		return partner.FailureResult(op, wrapOp(cause, op), int(n.Load()))
	}
	_, status, err := c.patch(ctx, id, req.Patch())
	if err != nil {
		return partner.FailureResult(op, wrapOp(err, op), int(n.Load()))
	}
	return ok(op, id, status, int(n.Load()))
}

// walk lists the partner's clients into the index. It runs on behalf of
// every op waiting for the index, so it does not count toward the
// attempts of the op that happens to run it.
func (c *Client) walk(ctx context.Context, add func(string, int)) error {
	ctx = context.WithValue(ctx, attemptsKey{}, (*atomic.Int32)(nil))
	err := c.ListAll(ctx, func(s ClientSummary) error {
		if customerOfName(c.prefix, s.Name) != "" {
			add(s.Name, s.ID)
		}
		return nil
	})
	var he *httpx.Error
	if errors.As(err, &he) && he.Kind == httpx.Rejected {
		// A refused list is our configuration, not one record: every op
		// would meet it, so stop the partner.
		cp := *he
		cp.Kind = httpx.Fatal
		cp.Message = strings.TrimSpace("listing the partner's clients was refused; check partner_id and partner_name: " + cp.Message)
		return &cp
	}
	return err
}

// Create posts a new client and returns its id. It is not idempotent: a
// resend after a lost answer could meet the first one's name.
func (c *Client) Create(ctx context.Context, req ClientRequest) (int, error) {
	id, _, err := c.create(ctx, req)
	return id, err
}

func (c *Client) create(ctx context.Context, req ClientRequest) (int, int, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, 0, &httpx.Error{Partner: Name, Op: "POST " + ClientsPath, Kind: httpx.Fatal, Code: "encode", Message: "cannot encode the client"}
	}
	resp, err := c.http.Do(ctx, httpx.Request{Method: http.MethodPost, Path: ClientsPath, Body: body})
	if err != nil {
		return 0, 0, err
	}
	var ans IDResponse
	if json.Unmarshal(resp.Body, &ans) != nil || ans.ID <= 0 {
		// Created, but we cannot tell which id: as good as a lost answer.
		return 0, resp.Status, &httpx.Error{Partner: Name, Op: "POST " + ClientsPath, Kind: httpx.Uncertain, Status: resp.Status,
			Code: "bad_response", Message: "answer carries no client id"}
	}
	return ans.ID, resp.Status, nil
}

// Patch updates the given fields of client id. PATCH sets fields to
// values, so a resend is harmless and is retried.
func (c *Client) Patch(ctx context.Context, id int, req PatchRequest) error {
	_, _, err := c.patch(ctx, id, req)
	return err
}

func (c *Client) patch(ctx context.Context, id int, req PatchRequest) (int, int, error) {
	path := ClientsPath + "/" + strconv.Itoa(id)
	body, err := json.Marshal(req)
	if err != nil {
		return 0, 0, &httpx.Error{Partner: Name, Op: "PATCH " + path, Kind: httpx.Fatal, Code: "encode", Message: "cannot encode the patch"}
	}
	resp, err := c.http.Do(ctx, httpx.Request{Method: http.MethodPatch, Path: path, Body: body, Idempotent: true})
	if err != nil {
		return 0, 0, err
	}
	return id, resp.Status, nil
}

// Get reads one client with its timestamps and full contact.
func (c *Client) Get(ctx context.Context, id int) (*ClientDetail, error) {
	path := ClientsPath + "/" + strconv.Itoa(id)
	resp, err := c.http.Do(ctx, httpx.Request{Method: http.MethodGet, Path: path, Idempotent: true})
	if err != nil {
		return nil, err
	}
	var d ClientDetail
	if err := json.Unmarshal(resp.Body, &d); err != nil {
		return nil, &httpx.Error{Partner: Name, Op: "GET " + path, Kind: httpx.Retryable, Status: resp.Status, Code: "bad_response", Message: "cannot decode the client", Err: err}
	}
	return &d, nil
}

// List reads one page of the clients of partner (an id or a name). take
// and skip of 0 leave the platform's defaults (10 and 0).
func (c *Client) List(ctx context.Context, partner string, take, skip int) (*ListResponse, error) {
	q := url.Values{"partner": {partner}}
	if take > 0 {
		q.Set("take", strconv.Itoa(take))
	}
	if skip > 0 {
		q.Set("skip", strconv.Itoa(skip))
	}
	resp, err := c.http.Do(ctx, httpx.Request{Method: http.MethodGet, Path: ClientsPath, Query: q, Idempotent: true})
	if err != nil {
		return nil, err
	}
	var l ListResponse
	if err := json.Unmarshal(resp.Body, &l); err != nil {
		return nil, &httpx.Error{Partner: Name, Op: "GET " + ClientsPath, Kind: httpx.Retryable, Status: resp.Status, Code: "bad_response", Message: "cannot decode the client list", Err: err}
	}
	return &l, nil
}

// ListAll walks every page of our partner's clients, calling fn for each,
// and stops at the first error fn returns. It advances skip by what each
// page held, so a platform that caps take below ours is still walked whole.
func (c *Client) ListAll(ctx context.Context, fn func(ClientSummary) error) error {
	partner := c.partner.Name
	if c.partner.ID != 0 {
		partner = strconv.Itoa(c.partner.ID) // an id survives a partner rename
	}
	for skip := 0; ; {
		page, err := c.List(ctx, partner, c.pageSize, skip)
		if err != nil {
			return err
		}
		for _, s := range page.Data {
			if err := fn(s); err != nil {
				return err
			}
		}
		skip += len(page.Data)
		if len(page.Data) == 0 || skip >= page.Total {
			return nil
		}
	}
}

func (c *Client) remoteID(op partner.Op, method string) (int, error) {
	id, err := strconv.Atoi(op.RemoteID)
	if err != nil || id <= 0 {
		return 0, &httpx.Error{Partner: Name, Op: method + " " + ClientsPath + "/{id}", Kind: httpx.Rejected, Code: "bad_remote_id",
			Message: fmt.Sprintf("remote id %q is not a client id", op.RemoteID)}
	}
	return id, nil
}

// duplicateName recognises the refusal of a name already taken. Its shape
// is unpublished. Validation errors are published as 409 with per-field
// errors, so a name taken is taken to be one with a field error on name
// that says so; a 409 or errorCode 7409 without field errors (the seed
// doc's {uuid, errorCode, message} shape) counts too.
func duplicateName(err error) bool {
	var he *httpx.Error
	if !errors.As(err, &he) || he.Kind != httpx.Rejected {
		return false
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		f, ok := ve.Fields["name"]
		return ok && saysTaken(f)
	}
	return he.Code == CodeDuplicateName || he.Status == http.StatusConflict
}

func saysTaken(f FieldError) bool {
	if strings.EqualFold(f.ErrorCode, FieldUnique) {
		return true
	}
	m := strings.ToLower(f.Message + " " + f.ErrorCode)
	for _, w := range []string{"unique", "exist", "taken", "duplicate", "in use"} {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}

func counting(ctx context.Context) (context.Context, *atomic.Int32) {
	n := new(atomic.Int32)
	return context.WithValue(ctx, attemptsKey{}, n), n
}

func ok(op partner.Op, id, status, attempts int) partner.Result {
	return partner.Result{EntityKey: op.EntityKey, Outcome: partner.OK, RemoteID: strconv.Itoa(id), HTTPStatus: status, Attempts: attempts}
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

// decodeError reads the documented error body {uuid, errorCode, message},
// the published 500 {errorCode, message} and the published 409
// {success, errorCode, message, errors: {<field>: {attribute, message,
// errorCode}}}, whose field errors are added to the message in field
// order. errorCode is a number in the doc; a string is accepted too. The
// uuid is kept in the message: it is what the platform's support asks
// for. Anything else (401 and 403 come without a body) falls back to the
// status text, never to the raw body. Our requests carry no card data, so
// a message cannot echo any.
func decodeError(status int, body []byte) (code, message string) {
	var e struct {
		UUID      string                     `json:"uuid"`
		ErrorCode json.RawMessage            `json:"errorCode"`
		Message   string                     `json:"message"`
		Errors    map[string]json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", http.StatusText(status)
	}
	code = rawCode(e.ErrorCode)
	fields := fieldErrors(e.Errors)
	if code == "" && e.Message == "" && len(fields) == 0 {
		return "", http.StatusText(status)
	}
	message = e.Message
	if message == "" {
		message = http.StatusText(status)
	}
	if len(fields) > 0 {
		names := make([]string, 0, len(fields))
		for n := range fields {
			names = append(names, n)
		}
		sort.Strings(names)
		parts := make([]string, 0, len(names))
		for _, n := range names {
			f := fields[n]
			p := n + ": " + f.Message
			if f.ErrorCode != "" {
				p += " [" + f.ErrorCode + "]"
			}
			parts = append(parts, p)
		}
		message += " (" + strings.Join(parts, "; ") + ")"
	}
	if e.UUID != "" {
		message += " (uuid " + e.UUID + ")"
	}
	return code, message
}

// ValidationError is the per-field detail of a published 409, kept in the
// *httpx.Error's chain (errors.As finds it).
type ValidationError struct {
	Fields map[string]FieldError
}

func (v *ValidationError) Error() string {
	names := make([]string, 0, len(v.Fields))
	for n := range v.Fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return "invalid fields: " + strings.Join(names, ", ")
}

// decodeDetail is the httpx.Config.Detail hook: the field errors of a
// validation answer, whatever its status.
func decodeDetail(_ int, body []byte) error {
	var e struct {
		Errors map[string]json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil {
		return nil
	}
	if f := fieldErrors(e.Errors); len(f) > 0 {
		return &ValidationError{Fields: f}
	}
	return nil
}

// fieldErrors reads errors.<field> as {attribute, message, errorCode}
// (errorCode a string or a number), or as a bare message string.
func fieldErrors(raw map[string]json.RawMessage) map[string]FieldError {
	out := map[string]FieldError{}
	for name, r := range raw {
		var f struct {
			Attribute string          `json:"attribute"`
			Message   string          `json:"message"`
			ErrorCode json.RawMessage `json:"errorCode"`
		}
		if json.Unmarshal(r, &f) == nil {
			out[name] = FieldError{Attribute: f.Attribute, Message: f.Message, ErrorCode: rawCode(f.ErrorCode)}
			continue
		}
		var msg string
		if json.Unmarshal(r, &msg) == nil {
			out[name] = FieldError{Attribute: name, Message: msg}
		}
	}
	return out
}

func rawCode(r json.RawMessage) string {
	c := strings.Trim(strings.TrimSpace(string(r)), `"`)
	if c == "null" {
		return ""
	}
	return c
}
