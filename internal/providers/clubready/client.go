package clubready

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/redact"
)

// Result.RequestID values for OK outcomes that carry no PaymentProfileId.
// ClubReady has no request id of its own, so the field is free for them.
const (
	// RequestConfirmedByReuse: ClubReady refused the token as already
	// used after an attempt whose answer was lost (or a previous run's
	// import), so that attempt imported the card. RemoteID is "".
	RequestConfirmedByReuse = "confirmed-by-token-reuse"
	// RequestImportedNoID: Success true but no PaymentProfileId in the
	// answer. RemoteID is "".
	RequestImportedNoID = "imported-without-profile-id"
	// RequestNoUpdateAPI: an Update op was not sent, because ClubReady
	// documents no way to change an imported payment profile (docs/partners/clubready.md).
	RequestNoUpdateAPI = partner.RequestNotSentNoUpdateAPI
)

// maxTokens caps the ProfileTokens one op may fetch: the first, one to
// replace a token that grew too old before its import, one after an
// "expired" answer.
const maxTokens = 3

// Config for the ClubReady client.
type Config struct {
	BaseURL string // ClubReady API root; ImportPath is appended
	ApiKey  string // the ApiKey query parameter; never in an error or a log
	// ForwardedFor, if set, is sent as the X-Forwarded-For header (the
	// DTO's XForwardedFor, "IP address of the end user", whose wire name
	// is that header).
	ForwardedFor string

	// Vault creates ProfileTokens. nil: an HTTPVault at VaultURL with
	// VaultKey, tuned like HTTP.
	Vault    Vault
	VaultURL string
	VaultKey string

	// MaxTokenAge: a token older than this when its import is about to go
	// out (say, after waiting on the rate limiter) is left unused and a
	// fresh one fetched. Default DefaultMaxTokenAge; under TokenLifetime.
	MaxTokenAge time.Duration
	// Now measures token age and, in Resolve, expiry. Default time.Now.
	Now  func() time.Time
	HTTP httpx.Config
}

// Client imports cards into ClubReady. It implements partner.Provider and
// partner.Resolver, not partner.Deactivator: no call removes a payment profile.
// Safe for concurrent use.
type Client struct {
	http   *httpx.Client
	vault  Vault
	apiKey string
	fwd    string
	maxAge time.Duration
	now    func() time.Time
}

var (
	_ partner.Provider = (*Client)(nil)
	_ partner.Resolver = (*Client)(nil)
)

// New checks the configuration before any call is made.
func New(cfg Config) (*Client, error) {
	if cfg.ApiKey == "" {
		return nil, errors.New("clubready: no API key configured (partners.clubready.credentials.api_key)")
	}
	if cfg.ForwardedFor != "" && net.ParseIP(cfg.ForwardedFor) == nil {
		return nil, errors.New("clubready: forwarded_for must be an IP address")
	}
	maxAge := cfg.MaxTokenAge
	if maxAge == 0 {
		maxAge = DefaultMaxTokenAge
	}
	if maxAge < 0 || maxAge >= TokenLifetime {
		return nil, fmt.Errorf("clubready: max token age must be between 0 and the token lifetime (%s)", TokenLifetime)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	// The vault and the import API are one partner to its operator:
	// concurrency bounds their requests together.
	cfg.HTTP.Partner = Name
	cfg.HTTP.Slots = httpx.SlotsFor(cfg.HTTP)
	v := cfg.Vault
	if v == nil {
		hv, err := NewHTTPVault(VaultConfig{BaseURL: cfg.VaultURL, Key: cfg.VaultKey, HTTP: cfg.HTTP})
		if err != nil {
			return nil, err
		}
		v = hv
	}
	h := cfg.HTTP
	h.Partner, h.BaseURL = Name, cfg.BaseURL
	sign := cfg.HTTP.Sign
	h.Sign = func(r *http.Request) error {
		if cl, ok := r.Context().Value(callKey{}).(*call); ok {
			// Sign runs after the rate limiter let the attempt through:
			// the last moment to swap a token that grew too old, as long
			// as no earlier attempt may have used it.
			if cl.stale != nil && !cl.maybeSent.Load() && cl.stale() {
				return errStaleToken
			}
			cl.attempts.Add(1)
		}
		if sign != nil {
			return sign(r)
		}
		return nil
	}
	base := h.Transport
	if base == nil {
		base = defaultTransport()
	}
	h.Transport = tracker{base: base}
	h.Classify = importClassify
	hc, err := httpx.New(h, decodeError)
	if err != nil {
		return nil, err
	}
	return &Client{http: hc, vault: v, apiKey: cfg.ApiKey, fwd: cfg.ForwardedFor, maxAge: maxAge, now: now}, nil
}

func (c *Client) Name() string { return Name }

// MaxBatch is 1: one import carries one card.
func (c *Client) MaxBatch() int { return 1 }

// HTTP exposes the import client (breaker state for metrics).
func (c *Client) HTTP() *httpx.Client { return c.http }

// Map turns a customer into one op per open card (docs/partners/clubready.md).
func (c *Client) Map(cu *model.Customer) ([]partner.Item, []model.Reject) { return mapCustomer(cu) }

// Send imports each op's card in turn and returns one Result per op.
func (c *Client) Send(ctx context.Context, ops []partner.Op, j partner.Journal) []partner.Result {
	out := make([]partner.Result, len(ops))
	for i, op := range ops {
		out[i] = c.deliver(ctx, op, j)
	}
	return out
}

// deliver fetches a token from the vault immediately before the import,
// notes it in the journal, then imports it.
func (c *Client) deliver(ctx context.Context, op partner.Op, j partner.Journal) partner.Result {
	switch op.Kind {
	case partner.Deactivate:
		// The engine deactivates only through partner.Deactivator, which
		// this client does not implement: reaching here is a wiring bug.
		return partner.FailureResult(op, &httpx.Error{Partner: Name, Op: "deactivate", Kind: httpx.Fatal, Code: "unsupported",
			Message: "ClubReady has no deactivation API"}, 0)
	case partner.Update:
		// Importing again would give the member a second copy of the
		// card, and no call changes or removes a payment profile.
		return partner.Result{EntityKey: op.EntityKey, Outcome: partner.OK, RemoteID: op.RemoteID, RequestID: RequestNoUpdateAPI}
	}
	req, ok := payload(op)
	if !ok {
		return partner.FailureResult(op, &httpx.Error{Partner: Name, Op: "POST " + ImportPath, Kind: httpx.Fatal, Code: "bad_payload",
			Message: "op payload is not a clubready.VaultRequest with a card, an owner and an ExternalRef"}, 0)
	}
	attempts, refreshed := 0, false
	for range maxTokens {
		// The age counts from before the vault call: the token cannot be
		// older than that, whenever the vault made it.
		start := c.now()
		stale := func() bool { return c.now().Sub(start) > c.maxAge }
		tok, err := c.vault.CreateProfile(ctx, req)
		if err != nil {
			return vaultFailure(op, err, attempts)
		}
		if stale() {
			continue // the vault was slow; this token is never sent
		}
		if j != nil {
			if err := j.Note(ctx, op, IntentDetail{Token: tok.ProfileToken, Last4: model.NewPAN(req.CardNumber).Last4(), Member: req.OwnerId}.String()); err != nil {
				return partner.FailureResult(op, &httpx.Error{Partner: Name, Op: "journal", Kind: httpx.Retryable, Code: "journal",
					Message: "could not record the ProfileToken before its import; nothing was imported", Err: err}, attempts)
			}
		}
		if stale() {
			continue // the journal was slow; this token is never sent
		}
		a := c.importToken(ctx, req, tok.ProfileToken, stale)
		attempts += a.attempts
		switch {
		case a.verdict == verdictStale:
			continue
		case a.verdict == verdictExpired && !a.maybeSent && !refreshed:
			// Refused before any attempt could have used it: a fresh
			// token cannot import the card twice.
			refreshed = true
			continue
		}
		return a.result(op, req, attempts, false)
	}
	return partner.FailureResult(op, &httpx.Error{Partner: Name, Op: "POST " + ImportPath, Kind: httpx.Retryable, Code: "token_stale",
		Message: "every fresh ProfileToken was too old before its import could go out (rate limit or journal too slow); nothing was imported"}, attempts)
}

// Resolve settles an op that a previous run left pending or uncertain
// after noting its ProfileToken (op.Intent). A token still within its
// lifetime is retried: single use, so it cannot import the card twice. An
// expired or missing token is never replaced by a fresh one, which could:
// the op stays uncertain and the message asks an operator to look.
func (c *Client) Resolve(ctx context.Context, op partner.Op, _ partner.Journal) partner.Result {
	req, ok := payload(op)
	tok := strings.TrimSpace(ParseIntent(op.Intent).Token)
	if tok == "" {
		return unresolved(op, req, "no ProfileToken was noted for it", 0, 0)
	}
	if !ok {
		return unresolved(op, req, "the op carries no card to retry the import with", 0, 0)
	}
	exp, err := TokenExpiry(tok)
	if err != nil {
		return unresolved(op, req, "the noted ProfileToken cannot be read, so whether it is still valid is unknown", 0, 0)
	}
	if !c.now().Before(exp) {
		return unresolved(op, req, "the noted ProfileToken expired at "+exp.UTC().Format(time.RFC3339), 0, 0)
	}
	a := c.importToken(ctx, req, tok, nil)
	if a.verdict == verdictExpired {
		return unresolved(op, req, "the noted ProfileToken expired before its retry reached ClubReady", a.status, a.attempts)
	}
	return a.result(op, req, a.attempts, true)
}

type verdict int

const (
	verdictImported   verdict = iota + 1
	verdictReused             // "already used": an earlier attempt imported the card
	verdictExpired            // ClubReady says the token expired
	verdictStale              // not sent: the token was too old when about to go out
	verdictRefused            // Success false (or a 4xx) for any other reason
	verdictError              // transport, 5xx, auth: see err
	verdictUnreadable         // a 2xx answer we cannot read
)

type importAnswer struct {
	verdict   verdict
	profileID int64
	status    int
	attempts  int
	maybeSent bool // an attempt may have reached ClubReady and its answer was lost
	message   string
	err       error
}

// importToken makes one logical import call. httpx retries it after a
// lost answer (Idempotent: the same token cannot import twice).
func (c *Client) importToken(ctx context.Context, req VaultRequest, token string, stale func() bool) importAnswer {
	owner := req.OwnerId
	body, err := json.Marshal(ImportRequest{ProfileToken: token, DoNotUpdatePaymentTypePreference: !req.Preferred, NewOwnerId: &owner})
	if err != nil {
		return importAnswer{verdict: verdictError, err: &httpx.Error{Partner: Name, Op: "POST " + ImportPath, Kind: httpx.Fatal,
			Code: "encode", Message: "cannot encode the import request"}}
	}
	hdr := http.Header{}
	if c.fwd != "" {
		// The DTO field is XForwardedFor; ServiceStack binds it from the
		// X-Forwarded-For header (published material). A header spelled
		// "XForwardedFor" is another header, which ClubReady ignores.
		hdr.Set("X-Forwarded-For", c.fwd)
	}
	cl := &call{stale: stale}
	resp, err := c.http.Do(context.WithValue(ctx, callKey{}, cl), httpx.Request{Method: http.MethodPost, Path: ImportPath,
		Query: url.Values{"ApiKey": {c.apiKey}}, Header: hdr, Body: body, Idempotent: true})
	a := importAnswer{attempts: int(cl.attempts.Load()), maybeSent: cl.maybeSent.Load()}
	if err != nil {
		err = c.hideKey(err)
		a.status = httpx.StatusOf(err)
		var he *httpx.Error
		switch {
		case errors.Is(err, errStaleToken):
			a.verdict = verdictStale
		case errors.As(err, &he) && he.Kind == httpx.Rejected:
			// A ServiceStack error may carry the refusal instead of a
			// Success:false answer. importClassify left Rejected only
			// what proves this attempt did nothing, or names the token
			// as used or expired.
			a.verdict, a.message, a.err = classify(he.Message), he.Message, err
		default:
			if httpx.KindOf(err) == httpx.Uncertain {
				// A refusal that proves nothing (importClassify), or a
				// lost answer: this attempt may have imported the card.
				a.maybeSent = true
			}
			a.verdict, a.err = verdictError, err
		}
		return a
	}
	a.status, a.attempts = resp.Status, max(a.attempts, resp.Attempts)
	// Only what we use is decoded, so that an unexpected date or number
	// format elsewhere in the profile cannot hide a successful import.
	var ans struct {
		Success        *bool
		Message        string
		PaymentProfile *struct{ PaymentProfileId int64 }
		// Not in the published response DTO, but ServiceStack fills a
		// ResponseStatus property wherever a DTO has one, and a 200 may
		// carry the refusal there.
		ResponseStatus *ResponseStatus
	}
	if json.Unmarshal(resp.Body, &ans) != nil || ans.Success == nil {
		// No Success at all is not an answer we know: it proves neither.
		a.verdict = verdictUnreadable
		return a
	}
	if *ans.Success {
		a.verdict = verdictImported
		if ans.PaymentProfile != nil {
			a.profileID = ans.PaymentProfile.PaymentProfileId
		}
		return a
	}
	msg := ans.Message
	if rs := ans.ResponseStatus; rs != nil {
		msg = joinMessages(msg, statusMessage(*rs))
	}
	a.verdict, a.message = classify(msg), c.hideKeyIn(redact.Text(msg))
	return a
}

// hideKeyIn removes the ApiKey from a partner message, in case ClubReady
// echoes the request URL back (httpx already keeps URLs out of transport
// errors).
func (c *Client) hideKeyIn(msg string) string {
	for _, k := range []string{c.apiKey, url.QueryEscape(c.apiKey)} {
		msg = strings.ReplaceAll(msg, k, "[ApiKey]")
	}
	return msg
}

func (c *Client) hideKey(err error) error {
	var he *httpx.Error
	if !errors.As(err, &he) {
		return err
	}
	if msg := c.hideKeyIn(he.Message); msg != he.Message {
		cp := *he
		cp.Message = msg
		return &cp
	}
	return err
}

// classify reads a refusal. ClubReady's exact wording is not documented;
// these match the sandbox's messages and the doc's vocabulary ("can only
// be used once", "within 5 minutes").
func classify(msg string) verdict {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "already") && (strings.Contains(m, "used") || strings.Contains(m, "imported")):
		return verdictReused
	case strings.Contains(m, "expired"):
		return verdictExpired
	}
	return verdictRefused
}

// result turns an answer into the op's Result. resolving: the token came
// from a previous run, which may have imported it, so nothing short of an
// answer settles the op.
func (a importAnswer) result(op partner.Op, req VaultRequest, attempts int, resolving bool) partner.Result {
	r := partner.Result{EntityKey: op.EntityKey, HTTPStatus: a.status, Attempts: attempts}
	opName := "POST " + ImportPath
	switch a.verdict {
	case verdictImported:
		r.Outcome = partner.OK
		if a.profileID > 0 {
			r.RemoteID = strconv.FormatInt(a.profileID, 10)
		} else {
			r.RequestID = RequestImportedNoID
		}
		return r
	case verdictReused:
		r.Outcome, r.RequestID = partner.OK, RequestConfirmedByReuse
		return r
	case verdictRefused:
		if a.maybeSent || resolving {
			// A refusal proves only that this attempt did nothing: an
			// earlier one (or the previous run's) may have imported the
			// card, and only "already used" would have said so. Keep the
			// intent open: the rerun retries the same token while it
			// lives, and asks an operator once it has expired.
			r.Outcome = partner.Uncertain
			r.Err = &httpx.Error{Partner: Name, Op: opName, Kind: httpx.Uncertain, Status: a.status, Code: "import_unsettled",
				Message: "ClubReady refused a retry of a token that an earlier attempt may have imported (" + a.message +
					"); the rerun retries the same token", Err: a.err}
			return r
		}
		r.Outcome = partner.Rejected
		r.Err = a.err
		if r.Err == nil {
			r.Err = &httpx.Error{Partner: Name, Op: opName, Kind: httpx.Rejected, Status: a.status, Code: "import_refused", Message: a.message}
		}
		return r
	case verdictExpired:
		if a.maybeSent {
			// The token is dead and an attempt may have used it: no
			// rerun can tell; only ClubReady's records can.
			return unresolved(op, req, "an attempt's answer was lost and ClubReady now refuses the token as expired", a.status, attempts)
		}
		r.Outcome = partner.Failed
		r.Err = &httpx.Error{Partner: Name, Op: opName, Kind: httpx.Retryable, Status: a.status, Code: "token_expired",
			Message: "ClubReady refused a fresh ProfileToken as expired twice; nothing was imported (check the clocks)"}
		return r
	case verdictUnreadable:
		r.Outcome = partner.Uncertain
		r.Err = &httpx.Error{Partner: Name, Op: opName, Kind: httpx.Uncertain, Status: a.status, Code: "bad_response",
			Message: "import answer cannot be read; the rerun retries the same token"}
		return r
	}
	kind := httpx.KindOf(a.err)
	switch {
	case kind == httpx.Rejected && !a.maybeSent && !resolving:
		return partner.FailureResult(op, a.err, attempts)
	case kind == httpx.Uncertain:
		r.Outcome, r.Err = partner.Uncertain, a.err
		return r
	case a.maybeSent || resolving:
		// The last attempt did not get through, but an earlier one (or
		// the previous run) may have: keep the intent open so that the
		// rerun retries this very token. A fatal error stays fatal so
		// that the engine still stops the partner.
		r.Outcome, r.Err = partner.Uncertain, a.err
		if kind != httpx.Fatal {
			r.Err = &httpx.Error{Partner: Name, Op: opName, Kind: httpx.Uncertain, Status: a.status, Code: "import_unsettled",
				Message: "the import may have been made by an attempt whose answer was lost; the rerun retries the same token", Err: a.err}
		}
		return r
	}
	return partner.FailureResult(op, a.err, attempts)
}

// unresolved is the answer when the import can be neither confirmed nor
// safely retried.
func unresolved(op partner.Op, req VaultRequest, why string, status, attempts int) partner.Result {
	card, where := op.EntityKey.String(), "a payment profile with ExternalRef "+op.EntityKey.String()
	if req.CardNumber != "" {
		p := model.NewPAN(req.CardNumber)
		card = p.Masked() + " (" + op.EntityKey.String() + ")"
		where = "a payment profile ending " + p.Last4()
	}
	if req.OwnerId > 0 {
		card += " for member " + strconv.Itoa(req.OwnerId)
		where += " on member " + strconv.Itoa(req.OwnerId)
	}
	msg := "cannot tell whether card " + card + " was imported: " + why + ". Check ClubReady for " + where +
		", then settle it: etl intents settle --entity " + op.EntityKey.String() + " --as delivered|resend --by NAME --reason TEXT" +
		" (a new ProfileToken would import the card a second time)"
	return partner.Result{EntityKey: op.EntityKey, Outcome: partner.Uncertain, HTTPStatus: status, Attempts: attempts,
		Err: &httpx.Error{Partner: Name, Op: "resolve", Kind: httpx.Uncertain, Code: partner.CodeNeedsOperator, Message: msg}}
}

// vaultFailure maps a vault error: nothing reached ClubReady, so nothing
// is uncertain.
func vaultFailure(op partner.Op, err error, attempts int) partner.Result {
	var he *httpx.Error
	if !errors.As(err, &he) {
		he = &httpx.Error{Partner: Name, Op: "POST " + VaultPath, Kind: httpx.Retryable, Code: "vault",
			Message: "the vault could not store the card", Err: err}
	} else if he.Kind == httpx.Uncertain {
		he = &httpx.Error{Partner: Name, Op: he.Op, Kind: httpx.Retryable, Status: he.Status, Code: "vault_answer_lost",
			Message: "the vault's answer was lost; no token was imported, the rerun stores the card again", Err: err}
	}
	return partner.FailureResult(op, he, attempts)
}

func payload(op partner.Op) (VaultRequest, bool) {
	req, ok := partner.PayloadOf[VaultRequest](op)
	return req, ok && req.ExternalRef != "" && req.CardNumber != "" && req.OwnerId > 0
}

// errStaleToken stops an attempt whose token grew too old before it went
// out; deliver then fetches a fresh one.
var errStaleToken = errors.New("clubready: ProfileToken too old to send")

type callKey struct{}

// call follows one logical import across httpx's attempts: how many went
// out, and whether any may have reached ClubReady without an answer. The
// final *httpx.Error alone cannot say so: a lost answer followed by a 503
// ends as a retryable error.
type call struct {
	attempts  atomic.Int32
	maybeSent atomic.Bool
	stale     func() bool
}

// tracker marks the call when an attempt's request may have been
// delivered without an answer that says what it did: any transport
// failure but a failed dial, a 408, any 5xx (a 502 or 504 from a gateway
// in front of ClubReady may come after the import committed, and
// ServiceStack's 500 after part of it ran), or a body cut while read.
type tracker struct{ base http.RoundTripper }

func (t tracker) RoundTrip(r *http.Request) (*http.Response, error) {
	cl, _ := r.Context().Value(callKey{}).(*call)
	resp, err := t.base.RoundTrip(r)
	if cl == nil {
		return resp, err
	}
	if err != nil {
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			cl.maybeSent.Store(true)
		}
		return resp, err
	}
	if resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500 {
		cl.maybeSent.Store(true)
	}
	resp.Body = &trackedBody{ReadCloser: resp.Body, cl: cl}
	return resp, nil
}

type trackedBody struct {
	io.ReadCloser
	cl *call
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.cl.maybeSent.Store(true)
	}
	return n, err
}

// defaultTransport mirrors httpx's default, which New must wrap.
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

// importClassify decides what a non-2xx import answer proves (httpx's
// Classify hook; 0 keeps httpx's reading). 401, 403, 408, 429 and 5xx
// keep theirs: auth and rate limits refuse before the service runs
// (ServiceStack's request filters; assumption), 408 and 5xx are marked
// maybe-sent by the tracker. Any other 4xx stays Rejected only when it
// proves the import did not happen, or names the token as used or
// expired; an unknown refusal becomes Uncertain, which httpx retries with
// the same token (safe: single use) and which keeps the intent open.
func importClassify(status int, body []byte) httpx.Kind {
	switch {
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusRequestTimeout,
		status == http.StatusTooManyRequests, status >= 500, status < 400:
		return 0
	case status == http.StatusNotFound, status == http.StatusMethodNotAllowed, status == http.StatusNotAcceptable,
		status == http.StatusUnsupportedMediaType:
		// No route, method or format: the service never ran.
		return httpx.Rejected
	}
	rs, refused, msg := decodeFailure(body)
	if v := classify(msg); v == verdictReused || v == verdictExpired || refused {
		// refused: the DTO itself answered Success:false, the service's
		// word that it did not import.
		return httpx.Rejected
	}
	if rs != nil && (status == http.StatusBadRequest || status == http.StatusUnprocessableEntity) && validationRefusal(*rs) {
		return httpx.Rejected
	}
	return httpx.Uncertain
}

// validationRefusal: ServiceStack's request validation and binding run
// before the service, so such a refusal proves the import did not happen.
// A validation failure lists its field errors; a body that cannot be
// bound is a SerializationException or RequestBindingException.
func validationRefusal(rs ResponseStatus) bool {
	for _, fe := range rs.Errors {
		if fe.FieldName != "" {
			return true
		}
	}
	switch rs.ErrorCode {
	case "ValidationException", "SerializationException", "RequestBindingException":
		return true
	}
	return false
}

// decodeFailure reads both published failure shapes from one body:
// ServiceStack's {ResponseStatus:{...}} and the DTO's {Success:false,
// Message}. refused: Success is present and false. msg joins what they say.
func decodeFailure(body []byte) (rs *ResponseStatus, refused bool, msg string) {
	var e struct {
		ResponseStatus *ResponseStatus `json:"ResponseStatus"`
		Success        *bool           `json:"Success"`
		Message        string          `json:"Message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return nil, false, ""
	}
	msg = e.Message
	if e.ResponseStatus != nil {
		msg = joinMessages(msg, statusMessage(*e.ResponseStatus))
	}
	return e.ResponseStatus, e.Success != nil && !*e.Success, msg
}

// statusMessage is a ResponseStatus as one line: its message, then each
// field error not already in it.
func statusMessage(rs ResponseStatus) string {
	msg := rs.Message
	for _, fe := range rs.Errors {
		if fe.Message == "" || strings.Contains(msg, fe.Message) {
			continue
		}
		part := fe.Message
		if fe.FieldName != "" {
			part = fe.FieldName + ": " + fe.Message
		}
		msg = joinMessages(msg, part)
	}
	return msg
}

func joinMessages(a, b string) string {
	switch {
	case a == "" || strings.Contains(a, b):
		if a == "" {
			return b
		}
		return a
	case b == "" || strings.Contains(b, a):
		if b == "" {
			return a
		}
		return b
	}
	return a + "; " + b
}
