package tokenization

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/northwind-data/etl/internal/sandbox"
)

// SandboxOptions configures the sandbox.
type SandboxOptions struct {
	// Username is the portal user. With Password it may use Basic auth
	// (the platform's testing scheme); with HMACSecret it may sign with
	// HMAC (production's). The method is enabled per user, so a user with
	// only a secret cannot use Basic.
	Username string
	Password string
	// HMACSecret is the shared secret; with HMACSecretBase64 the key is
	// its base64 decoding.
	HMACSecret       string
	HMACSecretBase64 bool
	// RateLimit is the hourly request quota announced in X-RateLimit-*
	// on 2xx answers; past it requests get 429. Default 1,000,000.
	RateLimit int
	// Partners are the partners clients may belong to, id -> name. Empty:
	// the doc example's {792: "partnerName"}.
	Partners map[int]string
	// Clock drives created/modified, the HMAC timestamp and nonce window
	// and the rate window; default the real clock.
	Clock sandbox.Clock
}

// HMACWindow is how old a signed request's timestamp may be, and how long
// a nonce is remembered (published: 15 minutes).
const HMACWindow = 15 * time.Minute

// DefaultSandboxRateLimit is the sandbox's hourly quota unless configured.
const DefaultSandboxRateLimit = 1_000_000

// Sandbox behaves like /api/v1/clients as documented and published: Basic
// auth or HMAC signing (signature, nonce seen twice in 15 minutes,
// timestamp older than 15 minutes: 401 without a body, as published);
// create validates and refuses a name already taken; validation errors
// are the published 409 {success, errorCode, message, errors}; a failure
// of its own is the published 500 {errorCode, message}; list needs a
// partner and pages with take/skip; get shows timestamps and the full
// contact; patch updates the given fields and bumps version and modified;
// delete is served because the doc documents it; 404 is the documented
// {uuid, errorCode, message}. 2xx answers carry X-RateLimit-Limit,
// -Remaining and -Reset (Unix seconds: our assumption). Safe for
// concurrent use.
type Sandbox struct {
	opts SandboxOptions
	mux  *http.ServeMux

	mu          sync.Mutex
	clients     map[int]*sbClient
	byName      map[string]int // folded name -> id: the uniqueness rule
	nextID      int
	nextContact int
	totals      Totals
	nonces      map[string]time.Time // nonce -> when first seen
	window      time.Time            // start of the current rate window
	used        int                  // requests in it
	failNext    int
	hmacKey     []byte
}

type sbClient struct {
	ClientDetail
}

// State is what GET /_sandbox/state shows.
type State struct {
	Clients []ClientState `json:"clients"` // by id
	Totals  Totals        `json:"totals"`
}

// ClientState is one client as the sandbox holds it.
type ClientState struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	IsActive bool   `json:"is_active"`
	Version  int    `json:"version"`
}

// Totals count what happened. Duplicates counts clients beyond the first
// that share a name (compared as the uniqueness rule does): it must stay 0.
type Totals struct {
	Requests              int `json:"requests"`
	Unauthorized          int `json:"unauthorized"`
	Rejected              int `json:"rejected"`
	Creates               int `json:"creates"`
	Patches               int `json:"patches"`
	Deletes               int `json:"deletes"`
	Lists                 int `json:"lists"`
	RateLimited           int `json:"rate_limited"`
	InternalErrors        int `json:"internal_errors"`
	DuplicateNameRefusals int `json:"duplicate_name_refusals"`
	Duplicates            int `json:"duplicates"`
}

// Find returns the client with exactly this name.
func (st State) Find(name string) (ClientState, bool) {
	for _, c := range st.Clients {
		if c.Name == name {
			return c, true
		}
	}
	return ClientState{}, false
}

// Active counts the active clients.
func (st State) Active() int {
	n := 0
	for _, c := range st.Clients {
		if c.IsActive {
			n++
		}
	}
	return n
}

// timeLayout is the doc's timestamp form.
const timeLayout = "2006-01-02T15:04:05.000Z"

func NewSandbox(o SandboxOptions) *Sandbox {
	if o.Clock == nil {
		o.Clock = sandbox.RealClock{}
	}
	if len(o.Partners) == 0 {
		o.Partners = map[int]string{792: "partnerName"}
	}
	if o.RateLimit <= 0 {
		o.RateLimit = DefaultSandboxRateLimit
	}
	s := &Sandbox{opts: o, mux: http.NewServeMux(), clients: map[int]*sbClient{}, byName: map[string]int{},
		nextID: 1000, nextContact: 5000, nonces: map[string]time.Time{}}
	if o.HMACSecret != "" {
		s.hmacKey = []byte(o.HMACSecret)
		if o.HMACSecretBase64 {
			k, err := base64.StdEncoding.DecodeString(o.HMACSecret)
			if err != nil {
				panic("tokenization: sandbox HMAC secret is not base64")
			}
			s.hmacKey = k
		}
	}
	s.mux.HandleFunc("POST "+ClientsPath, s.auth(s.create))
	s.mux.HandleFunc("GET "+ClientsPath, s.auth(s.list))
	s.mux.HandleFunc("GET "+ClientsPath+"/{id}", s.auth(s.get))
	s.mux.HandleFunc("PATCH "+ClientsPath+"/{id}", s.auth(s.patch))
	s.mux.HandleFunc("DELETE "+ClientsPath+"/{id}", s.auth(s.delete))
	sandbox.HandleState(s.mux, s.State)
	return s
}

func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// State returns a snapshot of the sandbox state.
func (s *Sandbox) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Clients: make([]ClientState, 0, len(s.clients)), Totals: s.totals}
	seen := map[string]int{}
	for _, c := range s.clients {
		seen[fold(c.Name)]++
		st.Clients = append(st.Clients, ClientState{ID: c.ID, Name: c.Name, IsActive: c.IsActive, Version: c.Version})
	}
	for _, n := range seen {
		st.Totals.Duplicates += n - 1
	}
	sort.Slice(st.Clients, func(i, j int) bool { return st.Clients[i].ID < st.Clients[j].ID })
	return st
}

// Delete removes a client behind the API's back, as an operator or
// another system would (tests of stale lookups).
func (s *Sandbox) Delete(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remove(id)
}

func (s *Sandbox) remove(id int) bool {
	c, ok := s.clients[id]
	if !ok {
		return false
	}
	delete(s.clients, id)
	if s.byName[fold(c.Name)] == id {
		delete(s.byName, fold(c.Name))
	}
	return true
}

// fold is the uniqueness rule: names are compared without regard to case,
// the stricter of the two plausible rules (the doc only says "unique").
func fold(name string) string { return strings.ToLower(name) }

func (s *Sandbox) count(f func(*Totals)) {
	s.mu.Lock()
	f(&s.totals)
	s.mu.Unlock()
}

func apiError(w http.ResponseWriter, status, code int, msg string) {
	sandbox.WriteJSON(w, status, ErrorBody{UUID: uuid(), ErrorCode: code, Message: msg})
}

func (s *Sandbox) reject(w http.ResponseWriter, status, code int, msg string) {
	s.count(func(t *Totals) { t.Rejected++ })
	apiError(w, status, code, msg)
}

func (s *Sandbox) notFound(w http.ResponseWriter) {
	s.reject(w, http.StatusNotFound, 7404, "Requested resource cannot be found.")
}

// problem is one field's validation error.
type problem struct{ field, code, msg string }

// invalid answers the published 409 validation error. Messages never
// repeat a value.
func (s *Sandbox) invalid(w http.ResponseWriter, problems []problem) {
	s.count(func(t *Totals) { t.Rejected++ })
	writeInvalid(w, problems)
}

func writeInvalid(w http.ResponseWriter, problems []problem) {
	body := ValidationErrorBody{Success: false, ErrorCode: 7409, Message: "Validation failed.", Errors: map[string]FieldError{}}
	for _, p := range problems {
		if _, dup := body.Errors[p.field]; !dup { // the first problem of a field
			body.Errors[p.field] = FieldError{Attribute: p.field, Message: p.msg, ErrorCode: p.code}
		}
	}
	sandbox.WriteJSON(w, http.StatusConflict, body)
}

func (s *Sandbox) internalError(w http.ResponseWriter) {
	s.count(func(t *Totals) { t.InternalErrors++ })
	sandbox.WriteJSON(w, http.StatusInternalServerError, InternalErrorBody{ErrorCode: 7500, Message: "Internal server error."})
}

// FailNext makes the next n requests answer the published 500 (tests of
// retries and of its decoding).
func (s *Sandbox) FailNext(n int) {
	s.mu.Lock()
	s.failNext = n
	s.mu.Unlock()
}

func (s *Sandbox) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if recover() != nil {
				s.internalError(w)
			}
		}()
		s.count(func(t *Totals) { t.Requests++ })
		if !s.authorized(r) {
			// Published: 401 and 403 come without a body.
			s.count(func(t *Totals) { t.Unauthorized++ })
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		fail := s.failNext > 0
		if fail {
			s.failNext--
		}
		s.mu.Unlock()
		if fail {
			s.internalError(w)
			return
		}
		q, ok := s.spend()
		if !ok {
			// Not published: 429 without a body or Retry-After, the
			// stricter reading (only the 200s' headers tell when to come
			// back).
			s.count(func(t *Totals) { t.RateLimited++ })
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		h(&quotaWriter{ResponseWriter: w, q: q}, r)
	}
}

// authorized accepts Basic when the user has a password and HMAC when the
// user has a secret.
func (s *Sandbox) authorized(r *http.Request) bool {
	v := r.Header.Get("Authorization")
	switch {
	case strings.HasPrefix(v, "Basic "):
		return s.opts.Password != "" && sandbox.BasicOK(r, s.opts.Username, s.opts.Password)
	case strings.HasPrefix(v, "Hmac "):
		return s.hmacKey != nil && s.hmacOK(r, v)
	}
	return false
}

// hmacOK checks the published scheme: the response over the five-line
// string, a timestamp within 15 minutes (in the future too: the stricter
// reading, nothing is published), and a nonce not seen in 15 minutes. It
// reads the body bytes as they arrived and puts them back.
func (s *Sandbox) hmacOK(r *http.Request, v string) bool {
	h, ok := ParseHMACHeader(v)
	if !ok || h.Username != s.opts.Username || h.Nonce == "" {
		return false
	}
	ts, err := strconv.ParseInt(h.Timestamp, 10, 64)
	if err != nil {
		return false
	}
	now := s.opts.Clock.Now()
	if age := now.Sub(time.Unix(ts, 0)); age > HMACWindow || age < -HMACWindow {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	want := HMACResponse(s.hmacKey, StringToSign(r.Method, wirePath(r), h.Nonce, h.Timestamp, body))
	if !hmac.Equal([]byte(want), []byte(h.Response)) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, seen := range s.nonces {
		if now.Sub(seen) > HMACWindow {
			delete(s.nonces, n)
		}
	}
	if _, replay := s.nonces[h.Nonce]; replay {
		return false
	}
	s.nonces[h.Nonce] = now
	return true
}

// wirePath is the path the client sent, before any mount prefix was
// stripped (etl sandbox serves this under /tokenization/).
func wirePath(r *http.Request) string {
	if r.RequestURI != "" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.EscapedPath() != "" {
			return u.EscapedPath()
		}
	}
	return requestPath(r)
}

// spend counts one request against the hourly window and returns the
// quota left after it.
func (s *Sandbox) spend() (rateQuota, bool) {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.window.IsZero() || !now.Before(s.window.Add(time.Hour)) {
		s.window, s.used = now.Truncate(time.Second), 0
	}
	reset := s.window.Add(time.Hour)
	if s.used >= s.opts.RateLimit {
		return rateQuota{}, false
	}
	s.used++
	return rateQuota{limit: s.opts.RateLimit, remaining: s.opts.RateLimit - s.used, reset: reset}, true
}

type rateQuota struct {
	limit, remaining int
	reset            time.Time
}

// quotaWriter adds the rate headers to 2xx answers only, as published.
type quotaWriter struct {
	http.ResponseWriter
	q rateQuota
}

func (w *quotaWriter) WriteHeader(code int) {
	if code >= 200 && code < 300 {
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(w.q.limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(w.q.remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(w.q.reset.Unix(), 10))
	}
	w.ResponseWriter.WriteHeader(code)
}

// input is a create or patch body with presence kept, so validation can
// tell a missing field from a zero one. mid, billingId and location are
// accepted because the doc's reference lists them.
type input struct {
	Name          *string     `json:"name"`
	IsActive      *bool       `json:"isActive"`
	DirectPartner *PartnerRef `json:"directPartner"`
	Contact       *Contact    `json:"contact"`
	Mid           *string     `json:"mid"`
	BillingID     *string     `json:"billingId"`
	Location      *int        `json:"location"`
}

const maxNameLen = 255 // assumed

// validate lists every problem by field; create requires name, isActive,
// directPartner and contact, patch requires nothing. Messages never repeat
// a value.
func (s *Sandbox) validate(in input, create bool) (PartnerRef, []problem) {
	var out []problem
	add := func(field, code, msg string) { out = append(out, problem{field, code, msg}) }
	if in.Name != nil {
		switch n := strings.TrimSpace(*in.Name); {
		case n == "":
			add("name", FieldRequired, "must not be blank")
		case len(*in.Name) > maxNameLen:
			add("name", FieldInvalid, fmt.Sprintf("must be at most %d characters", maxNameLen))
		}
	} else if create {
		add("name", FieldRequired, "required")
	}
	if in.IsActive == nil && create {
		add("isActive", FieldRequired, "required")
	}
	var partner PartnerRef
	if dp := in.DirectPartner; dp != nil {
		p, err := s.partnerOf(*dp)
		if err != "" {
			add("directPartner", FieldInvalid, err)
		}
		partner = p
	} else if create {
		add("directPartner", FieldRequired, "required: id or name of a partner")
	}
	if ct := in.Contact; ct != nil {
		// On patch, a contact without an id updates the current one in
		// place, so any subset of its fields will do.
		if create && ct.ID == 0 && (strings.TrimSpace(ct.FirstName) == "" || strings.TrimSpace(ct.LastName) == "" || strings.TrimSpace(ct.Email) == "") {
			add("contact", FieldRequired, "a new contact needs firstName, lastName and email (or give the id of an existing user)")
		}
		if ct.ID < 0 {
			add("contact.id", FieldInvalid, "must be a user id")
		}
		if ct.Email != "" {
			if a, err := mail.ParseAddress(ct.Email); err != nil || a.Address != ct.Email {
				add("contact.email", FieldInvalid, "must be an e-mail address")
			}
		}
	} else if create {
		add("contact", FieldRequired, "required")
	}
	return partner, out
}

// partnerOf finds a known partner by id or name; when both are given they
// must name the same partner.
func (s *Sandbox) partnerOf(ref PartnerRef) (PartnerRef, string) {
	if ref.ID == 0 && ref.Name == "" {
		return PartnerRef{}, "id or name is required"
	}
	if ref.ID != 0 {
		name, ok := s.opts.Partners[ref.ID]
		if !ok {
			return PartnerRef{}, "unknown partner id"
		}
		if ref.Name != "" && ref.Name != name {
			return PartnerRef{}, "id and name name different partners"
		}
		return PartnerRef{ID: ref.ID, Name: name}, ""
	}
	for id, name := range s.opts.Partners {
		if name == ref.Name {
			return PartnerRef{ID: id, Name: name}, ""
		}
	}
	return PartnerRef{}, "unknown partner name"
}

func (s *Sandbox) decode(w http.ResponseWriter, r *http.Request, create bool) (input, PartnerRef, bool) {
	var in input
	if err := sandbox.DecodeStrict(r, &in, 1<<20); err != nil {
		// Decoder errors name a field or a character, never a value.
		s.invalid(w, []problem{{"body", FieldMalformed, "malformed JSON body: " + err.Error()}})
		return in, PartnerRef{}, false
	}
	partner, problems := s.validate(in, create)
	if len(problems) > 0 {
		s.invalid(w, problems)
		return in, PartnerRef{}, false
	}
	return in, partner, true
}

// nameTaken is how the sandbox refuses a name already held: a validation
// error on name (our assumption; the published 409 shape has room for it).
var nameTaken = problem{"name", FieldUnique, "A client with this name already exists."}

func (s *Sandbox) create(w http.ResponseWriter, r *http.Request) {
	in, partner, ok := s.decode(w, r, true)
	if !ok {
		return
	}
	now := s.opts.Clock.Now().UTC().Format(timeLayout)
	s.mu.Lock()
	if _, taken := s.byName[fold(*in.Name)]; taken {
		s.totals.DuplicateNameRefusals++
		s.totals.Rejected++
		s.mu.Unlock()
		writeInvalid(w, []problem{nameTaken})
		return
	}
	s.nextID++
	c := &sbClient{ClientDetail{ID: s.nextID, Name: *in.Name, IsActive: *in.IsActive, Created: now, Modified: now,
		Partner: partner, DirectPartner: partner, Mid: in.Mid, BillingID: in.BillingID, Location: in.Location}}
	c.Contact = s.contact(Contact{}, *in.Contact)
	s.clients[c.ID] = c
	s.byName[fold(c.Name)] = c.ID
	s.totals.Creates++
	id := c.ID
	s.mu.Unlock()
	sandbox.WriteJSON(w, http.StatusCreated, IDResponse{ID: id})
}

// contact applies an incoming contact to the current one: an id names an
// existing user; without one the current contact is updated in place, or
// a new user is made when there is none. Caller holds s.mu.
func (s *Sandbox) contact(cur, in Contact) Contact {
	if in.ID != 0 {
		return in
	}
	if cur.ID == 0 {
		s.nextContact++
		cur.ID = s.nextContact
	}
	if in.FirstName != "" {
		cur.FirstName = in.FirstName
	}
	if in.LastName != "" {
		cur.LastName = in.LastName
	}
	if in.Email != "" {
		cur.Email = in.Email
	}
	return cur
}

func (s *Sandbox) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := q.Get("partner")
	if p == "" {
		s.invalid(w, []problem{{"partner", FieldRequired, "required (a partner id or name)"}})
		return
	}
	take, skip := 10, 0
	for _, v := range []struct {
		name string
		dst  *int
		min  int
	}{{"take", &take, 1}, {"skip", &skip, 0}} {
		raw := q.Get(v.name)
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < v.min {
			s.invalid(w, []problem{{v.name, FieldInvalid, fmt.Sprintf("must be an integer of at least %d", v.min)}})
			return
		}
		*v.dst = n
	}
	take = min(take, 100) // assumed cap
	ref := PartnerRef{Name: p}
	if id, err := strconv.Atoi(p); err == nil {
		ref = PartnerRef{ID: id}
	}
	partner, bad := s.partnerOf(ref)
	if bad != "" {
		s.notFound(w)
		return
	}
	s.mu.Lock()
	s.totals.Lists++
	var mine []*sbClient
	for _, c := range s.clients {
		if c.Partner.ID == partner.ID || c.DirectPartner.ID == partner.ID {
			mine = append(mine, c)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].ID < mine[j].ID })
	out := ListResponse{Total: len(mine), Data: []ClientSummary{}}
	for i := skip; i < len(mine) && i < skip+take; i++ {
		c := mine[i]
		out.Data = append(out.Data, ClientSummary{ID: c.ID, Name: c.Name, Mid: c.Mid, IsActive: c.IsActive, Version: c.Version,
			Partner: c.Partner, DirectPartner: c.DirectPartner, Contact: Contact{ID: c.Contact.ID}, BillingID: c.BillingID})
	}
	s.mu.Unlock()
	sandbox.WriteJSON(w, http.StatusOK, out)
}

// lookup finds the client of the path's id. Caller holds s.mu.
func (s *Sandbox) lookup(r *http.Request) *sbClient {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return nil
	}
	return s.clients[id]
}

func (s *Sandbox) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c := s.lookup(r)
	var d ClientDetail
	if c != nil {
		d = c.ClientDetail
	}
	s.mu.Unlock()
	if c == nil {
		s.notFound(w)
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, d)
}

func (s *Sandbox) patch(w http.ResponseWriter, r *http.Request) {
	in, partner, ok := s.decode(w, r, false)
	if !ok {
		return
	}
	now := s.opts.Clock.Now().UTC().Format(timeLayout)
	s.mu.Lock()
	c := s.lookup(r)
	if c == nil {
		s.mu.Unlock()
		s.notFound(w)
		return
	}
	if in.Name != nil {
		if other, taken := s.byName[fold(*in.Name)]; taken && other != c.ID {
			s.totals.DuplicateNameRefusals++
			s.totals.Rejected++
			s.mu.Unlock()
			writeInvalid(w, []problem{nameTaken})
			return
		}
		delete(s.byName, fold(c.Name))
		c.Name = *in.Name
		s.byName[fold(c.Name)] = c.ID
	}
	if in.IsActive != nil {
		c.IsActive = *in.IsActive
	}
	if in.DirectPartner != nil {
		c.Partner, c.DirectPartner = partner, partner
	}
	if in.Contact != nil {
		c.Contact = s.contact(c.Contact, *in.Contact)
	}
	if in.Mid != nil {
		c.Mid = in.Mid
	}
	if in.BillingID != nil {
		c.BillingID = in.BillingID
	}
	if in.Location != nil {
		c.Location = in.Location
	}
	c.Version++
	c.Modified = now
	s.totals.Patches++
	id := c.ID
	s.mu.Unlock()
	sandbox.WriteJSON(w, http.StatusOK, IDResponse{ID: id})
}

func (s *Sandbox) delete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c := s.lookup(r)
	if c != nil {
		s.remove(c.ID)
		s.totals.Deletes++
	}
	s.mu.Unlock()
	if c == nil {
		s.notFound(w)
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, IDResponse{ID: c.ID})
}

// uuid is a random version-4 UUID, like the doc's error uuid.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
