package datafeed

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/northwind-data/etl/internal/sandbox"
)

// SandboxOptions configures the sandbox.
type SandboxOptions struct {
	// Token, if set, is a fixed session token that never expires (for
	// tests and old configs); sessions from startSession work beside it.
	Token string
	// SessionTTL is how long a started session lives: "a JWT valid one
	// hour". Default 1h.
	SessionTTL time.Duration
	Clock      sandbox.Clock // default the real clock; tests expire sessions with a FakeClock
	// RequireClientCert refuses (403) any request that did not come over
	// TLS with a client certificate. Serve the sandbox with a tls.Config
	// that verifies client certificates (RequireAndVerifyClientCert) for
	// the handshake itself to enforce it, as the partner's does.
	RequireClientCert bool
}

// Sandbox behaves like the published data feed: sessions from
// POST /v2/session/startSession sent as X-CDLX-Session-Token (401
// SessionValidationException when missing, unknown or expired), POST
// /v2/data/customers creates and PUT updates at most 50 customers, the
// body validated (required fields, formats, published enums) with 400
// ValidationException naming each bad field as
// "customers[i].field: message", X-CDLX-Request-Id echoed as requestId,
// customers kept by sourceCustomerId. Where nothing is published it takes
// the stricter reading: a request with any invalid customer changes
// nothing, a PUT of a customer it does not hold is a validation error on
// that customer's sourceCustomerId, and unknown JSON fields are
// unreadable. A POST of a customer it already holds replaces it (the seed
// doc's "create" dedups by sourceCustomerId; our resend safety relies on
// it).
type Sandbox struct {
	opts SandboxOptions
	key  []byte // signs session JWTs
	mu   sync.Mutex
	st   State
	ses  map[string]time.Time // session token -> expiry
	mux  *http.ServeMux
}

// State is what GET /_sandbox/state shows.
type State struct {
	Requests         int                       `json:"requests"`
	Accepted         int                       `json:"accepted_requests"`
	Failed           int                       `json:"failed_requests"`
	Unauthorized     int                       `json:"unauthorized"`
	Sessions         int                       `json:"sessions_started"`
	Posts            int                       `json:"post_requests"` // accepted creates
	Puts             int                       `json:"put_requests"`  // accepted updates
	UnknownPuts      int                       `json:"unknown_puts"`  // customers a PUT named that the sandbox did not hold
	MaxBatch         int                       `json:"max_batch"`
	CustomersSeen    int                       `json:"customers_received"`
	Redeliveries     int                       `json:"redeliveries"` // same content again (a resend)
	Updates          int                       `json:"updates"`      // changed content for a known customer
	Customers        map[string]*CustomerState `json:"customers"`
	RequestIDs       []string                  `json:"-"` // requestId of every accepted request
	OversizedBatches int                       `json:"oversized_batches"`
}

// CustomerState is one customer as the partner holds it.
type CustomerState struct {
	Deliveries     int    `json:"deliveries"`
	LastRequestID  string `json:"last_request_id"`
	LastMethod     string `json:"last_method"`
	OrganizationID string `json:"organization_id"`
	Accounts       int    `json:"accounts"`
	Cards          int    `json:"cards"`
	hash           string
}

func NewSandbox(o SandboxOptions) *Sandbox {
	if o.SessionTTL <= 0 {
		o.SessionTTL = time.Hour
	}
	if o.Clock == nil {
		o.Clock = sandbox.RealClock{}
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := &Sandbox{opts: o, key: key, st: State{Customers: map[string]*CustomerState{}}, ses: map[string]time.Time{}, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST "+PathStartSession, s.startSession)
	s.mux.HandleFunc("POST "+PathCustomers, s.customers)
	s.mux.HandleFunc("PUT "+PathCustomers, s.customers)
	sandbox.HandleState(s.mux, s.State)
	return s
}

func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// State returns a copy of the sandbox state.
func (s *Sandbox) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Customers = make(map[string]*CustomerState, len(s.st.Customers))
	for k, v := range s.st.Customers {
		c := *v
		st.Customers[k] = &c
	}
	st.RequestIDs = append([]string(nil), s.st.RequestIDs...)
	return st
}

// fail answers the published error envelope.
func fail(w http.ResponseWriter, status int, typ, title, reqID string, verrs []string) {
	sandbox.WriteJSON(w, status, map[string]any{"type": typ, "title": title, "status": status,
		"validationErrors": verrs, "requestId": reqID})
}

// requestID is the caller's X-CDLX-Request-Id, or a new UUID.
func requestID(r *http.Request) string {
	if id := r.Header.Get(HeaderRequestID); id != "" {
		return id
	}
	return newUUID()
}

func (s *Sandbox) certOK(w http.ResponseWriter, r *http.Request, id string) bool {
	if !s.opts.RequireClientCert || (r.TLS != nil && len(r.TLS.PeerCertificates) > 0) {
		return true
	}
	s.count(func(st *State) { st.Unauthorized++ })
	fail(w, http.StatusForbidden, "Forbidden", "a client certificate is required (mutual TLS)", id, nil)
	return false
}

func (s *Sandbox) startSession(w http.ResponseWriter, r *http.Request) {
	id := requestID(r)
	s.count(func(st *State) { st.Requests++ })
	if !s.certOK(w, r, id) {
		return
	}
	// The published request also has sourceCustomerId and organizationId
	// (the customer scope); the institution scope needs neither.
	var req struct {
		Scopes           []string `json:"scopes"`
		SourceCustomerID string   `json:"sourceCustomerId"`
		OrganizationID   string   `json:"organizationId"`
	}
	if err := sandbox.DecodeStrict(r, &req, 1<<16); err != nil {
		s.failed()
		fail(w, http.StatusBadRequest, ErrNotReadable, "Request could not be parsed", id, nil)
		return
	}
	if !contains(req.Scopes, ScopeInstitution) {
		s.failed()
		fail(w, http.StatusBadRequest, ErrValidation, "Bad request", id, []string{"scopes: must include " + ScopeInstitution + " for the data APIs"})
		return
	}
	now := s.opts.Clock.Now()
	tok := s.jwt(now, now.Add(s.opts.SessionTTL))
	s.mu.Lock()
	s.ses[tok] = now.Add(s.opts.SessionTTL)
	s.st.Sessions++
	s.mu.Unlock()
	sandbox.WriteJSON(w, http.StatusOK, StartSessionResponse{SessionToken: tok, RequestID: id})
}

// jwt is an HS256 JWT the way the partner's looks; only the sandbox
// itself reads it (the client reads exp, unverified).
func (s *Sandbox) jwt(iat, exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	var jti [8]byte
	_, _ = rand.Read(jti[:])
	head := enc([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"iat": iat.Unix(), "exp": exp.Unix(), "scope": ScopeInstitution, "jti": hex.EncodeToString(jti[:])})
	body := head + "." + enc(claims)
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(body))
	return body + "." + enc(m.Sum(nil))
}

// ExpireSessions ends every started session at once, as a partner restart
// or an early revocation would: the next call with one gets a 401.
func (s *Sandbox) ExpireSessions() {
	s.mu.Lock()
	clear(s.ses)
	s.mu.Unlock()
}

func (s *Sandbox) sessionOK(r *http.Request) bool {
	tok := r.Header.Get(HeaderSession)
	if tok == "" {
		return false
	}
	if s.opts.Token != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.opts.Token)) == 1 {
		return true
	}
	s.mu.Lock()
	exp, ok := s.ses[tok]
	s.mu.Unlock()
	return ok && s.opts.Clock.Now().Before(exp)
}

func (s *Sandbox) customers(w http.ResponseWriter, r *http.Request) {
	id := requestID(r)
	s.count(func(st *State) { st.Requests++ })
	if !s.certOK(w, r, id) {
		return
	}
	if !s.sessionOK(r) {
		s.count(func(st *State) { st.Unauthorized++ })
		fail(w, http.StatusUnauthorized, ErrSession, "Session expired or invalid", id, nil)
		return
	}
	var req Request
	if err := sandbox.DecodeStrict(r, &req, 8<<20); err != nil {
		s.failed()
		fail(w, http.StatusBadRequest, ErrNotReadable, "Request could not be parsed", id, nil)
		return
	}
	if n := len(req.Customers); n == 0 || n > MaxPerRequest {
		s.count(func(st *State) {
			st.Failed++
			if n > MaxPerRequest {
				st.OversizedBatches++
			}
		})
		fail(w, http.StatusBadRequest, ErrValidation, "Bad request", id, []string{fmt.Sprintf("customers: size must be between 1 and %d, got %d", MaxPerRequest, n)})
		return
	}
	put := r.Method == http.MethodPut
	s.mu.Lock()
	defer s.mu.Unlock()
	verrs := validate(req.Customers)
	if put {
		for i, c := range req.Customers {
			if c.SourceCustomerID != "" && s.st.Customers[c.SourceCustomerID] == nil {
				s.st.UnknownPuts++
				verrs = append(verrs, fmt.Sprintf("customers[%d].sourceCustomerId: no customer with this sourceCustomerId; create it with POST", i))
			}
		}
	}
	if len(verrs) > 0 {
		s.st.Failed++
		fail(w, http.StatusBadRequest, ErrValidation, "Bad request", id, verrs)
		return
	}
	s.st.Accepted++
	if put {
		s.st.Puts++
	} else {
		s.st.Posts++
	}
	s.st.MaxBatch = max(s.st.MaxBatch, len(req.Customers))
	s.st.RequestIDs = append(s.st.RequestIDs, id)
	for _, c := range req.Customers {
		s.st.CustomersSeen++
		h := contentHash(c)
		cs := s.st.Customers[c.SourceCustomerID]
		if cs == nil {
			cs = &CustomerState{}
			s.st.Customers[c.SourceCustomerID] = cs
		} else if cs.hash == h {
			s.st.Redeliveries++
		} else {
			s.st.Updates++
		}
		cs.Deliveries++
		cs.LastRequestID, cs.LastMethod, cs.OrganizationID, cs.hash = id, r.Method, c.OrganizationID, h
		cs.Accounts = len(c.Accounts)
		cs.Cards = 0
		for _, a := range c.Accounts {
			cs.Cards += len(a.Cards)
		}
	}
	sandbox.WriteJSON(w, http.StatusOK, Response{RequestID: id})
}

func (s *Sandbox) count(f func(*State)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

func (s *Sandbox) failed() { s.count(func(st *State) { st.Failed++ }) }

var (
	digits4 = regexp.MustCompile(`^\d{4}$`)
	digits6 = regexp.MustCompile(`^\d{6,8}$`)
	country = regexp.MustCompile(`^[A-Z]{2}$`)
)

// validate applies the required fields and enums FACTS.md lists and the
// formats the doc's example shows, one "customers[i].field: message"
// string per failure.
func validate(cs []Customer) []string {
	var out []string
	add := func(i int, f, m string) { out = append(out, fmt.Sprintf("customers[%d].%s: %s", i, f, m)) }
	enum := func(i int, f, v, field string) {
		if v != "" && !contains(Enums[field], v) {
			add(i, f, "must be one of "+joinComma(Enums[field]))
		}
	}
	for i, c := range cs {
		req := map[string]string{"sourceCustomerId": c.SourceCustomerID, "organizationId": c.OrganizationID, "postalCode": c.PostalCode,
			"country": c.Country, "customerCreationDate": c.CustomerCreationDate, "enrollmentStartDate": c.EnrollmentStartDate,
			"enrollmentOptInStatus": c.EnrollmentOptInStatus, "targetingIndicator": c.TargetingIndicator}
		keys := make([]string, 0, len(req))
		for k := range req {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if req[k] == "" {
				add(i, k, "required")
			}
		}
		if c.Country != "" && !country.MatchString(c.Country) {
			add(i, "country", "must be an ISO 3166-1 alpha-2 code")
		}
		for _, f := range []struct{ name, v string }{{"customerCreationDate", c.CustomerCreationDate}, {"enrollmentStartDate", c.EnrollmentStartDate}} {
			if f.v != "" && !isTime(f.v) {
				add(i, f.name, "must be an ISO 8601 timestamp")
			}
		}
		if c.EnrollmentEndDate != nil && !isTime(*c.EnrollmentEndDate) {
			add(i, "enrollmentEndDate", "must be an ISO 8601 timestamp or null")
		}
		enum(i, "enrollmentOptInStatus", c.EnrollmentOptInStatus, FieldEnrollmentOptIn)
		enum(i, "targetingIndicator", c.TargetingIndicator, FieldTargeting)
		if len(c.AlertOptInStatus) == 0 {
			add(i, "alertOptInStatus", "required, e.g. [\"ALL\"]")
		}
		for k, a := range c.AlertOptInStatus {
			enum(i, fmt.Sprintf("alertOptInStatus[%d]", k), a, FieldAlertOptIn)
		}
		if c.Accounts == nil {
			add(i, "accounts", "required")
		}
		for j, a := range c.Accounts {
			p := fmt.Sprintf("accounts[%d].", j)
			if a.SourceAccountID == "" {
				add(i, p+"sourceAccountId", "required")
			}
			if len(a.SourceCustomerIDs) == 0 {
				add(i, p+"sourceCustomerIds", "required")
			}
			if a.Status == "" {
				add(i, p+"status", "required")
			}
			if a.Type == "" {
				add(i, p+"type", "required")
			}
			enum(i, p+"status", a.Status, FieldAccountStatus)
			enum(i, p+"type", a.Type, FieldAccountType)
			for k, cd := range a.Cards {
				q := fmt.Sprintf("%scards[%d].", p, k)
				if !digits4.MatchString(cd.Last4) {
					add(i, q+"last4", "must be 4 digits")
				}
				if !digits6.MatchString(cd.IIN) {
					add(i, q+"iin", "must be 6 to 8 digits")
				}
				if cd.CardType != "CREDIT" && cd.CardType != "DEBIT" {
					add(i, q+"cardType", "must be CREDIT or DEBIT")
				}
				if _, err := cd.NetworkIdentifier.Int64(); err != nil {
					add(i, q+"networkIdentifier", "must be an integer")
				}
			}
		}
	}
	return out
}

func joinComma(v []string) string { return strings.Join(v, ", ") }

func isTime(s string) bool {
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

func contentHash(c Customer) string {
	b, _ := json.Marshal(c)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}
