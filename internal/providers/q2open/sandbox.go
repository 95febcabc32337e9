package q2open

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/sandbox"
)

// PaidWindow is how long after a payment Q2 refuses to delete the method
// that made it (published, 2020 source).
const PaidWindow = 24 * time.Hour

// SandboxOptions configures the sandbox.
type SandboxOptions struct {
	Token string        // the bearer API token it accepts
	Clock sandbox.Clock // now, for token.expiration, the SSO token and the 24-hour rule; default the real clock
}

// Sandbox behaves like Q2 Open's published calls, never like our client:
//
//   - POST /v1/client/sync finds or creates the client by identifier (the
//     same identifier always answers the same clientId) and adds every card
//     it carries as a new payment method, whatever its identifier: Q2
//     promises dedup for the client only, and a card identifier is "for
//     correlation" only. A repeat sync does not change meta (not published
//     either way: the stricter reading).
//   - POST /v1/client finds or creates a client by identifier.
//   - POST /v1/payment adds one payment method; GET /v1/payment/list/{id}
//     lists a client's; DELETE /v1/payment/{id} removes one, refused while
//     it paid something within PaidWindow (MarkPaid records a payment).
//
// Every answer carries a request-id header. Errors are {"message": "..."}
// with 400 (input), 401 (auth) or 404 (unknown id). It never holds a card
// number or code: IIN and last four, brand and type only.
type Sandbox struct {
	opts SandboxOptions
	key  []byte // signs the sandbox's SSO tokens
	mux  *http.ServeMux

	mu      sync.Mutex
	clients []*sbClient          // creation order; duplicates would show here
	byIdent map[string]*sbClient // the client dedup index
	byID    map[string]*sbClient
	methods map[string]*sbMethod // live payment methods by id
	totals  Totals
}

type sbClient struct {
	identifier, clientID string
	meta                 Meta
	syncs                int
	methods              []*sbMethod // live, in creation order
}

type sbMethod struct {
	client                               *sbClient
	id, identifier, masked, last4, brand string
	typ, status                          string
	isDefault                            bool
	paidAt                               time.Time
}

// State is what GET /_sandbox/state shows.
type State struct {
	Clients []ClientState `json:"clients"` // sorted by identifier
	Totals  Totals        `json:"totals"`
}

// ClientState is one client as the sandbox holds it.
type ClientState struct {
	Identifier string      `json:"identifier"`
	ClientID   string      `json:"client_id"`
	FirstName  string      `json:"first_name"`
	LastName   string      `json:"last_name"`
	Email      string      `json:"email"`
	Syncs      int         `json:"syncs"`
	Cards      []CardState `json:"cards"` // live payment methods, in creation order
}

// CardState is one payment method: never the number, never the code.
type CardState struct {
	Identifier      string `json:"identifier"`
	PaymentMethodID string `json:"payment_method_id"`
	Last4           string `json:"last4"`
	Brand           string `json:"brand"`
	Type            string `json:"type"`
	Status          string `json:"status"`
	Default         bool   `json:"default"`
}

// Totals count what happened. DuplicateClients counts clients beyond the
// first that share an identifier (Q2 promises 0). DuplicatePaymentMethods
// counts live payment methods beyond the first that share a client and a
// card identifier, and DuplicateAdds every add that found one already
// there: Q2 keeps such duplicates, so a correct client keeps both at 0.
type Totals struct {
	Requests                int `json:"requests"`
	Unauthorized            int `json:"unauthorized"`
	Rejected                int `json:"rejected"`
	ClientsCreated          int `json:"clients_created"`
	DuplicateClients        int `json:"duplicate_clients"`
	PaymentMethodsAdded     int `json:"payment_methods_added"`
	PaymentMethodsDeleted   int `json:"payment_methods_deleted"`
	DeletesRefused          int `json:"deletes_refused"`
	DuplicatePaymentMethods int `json:"duplicate_payment_methods"`
	DuplicateAdds           int `json:"duplicate_adds"`
}

// Find returns the client with the given identifier.
func (st State) Find(identifier string) (ClientState, bool) {
	for _, c := range st.Clients {
		if c.Identifier == identifier {
			return c, true
		}
	}
	return ClientState{}, false
}

// Method returns the client's live payment methods with the given card
// identifier (more than one is a duplicate).
func (c ClientState) Method(identifier string) []CardState {
	var out []CardState
	for _, m := range c.Cards {
		if m.Identifier == identifier {
			out = append(out, m)
		}
	}
	return out
}

func NewSandbox(o SandboxOptions) *Sandbox {
	if o.Clock == nil {
		o.Clock = sandbox.RealClock{}
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := &Sandbox{opts: o, key: key, mux: http.NewServeMux(), byIdent: map[string]*sbClient{}, byID: map[string]*sbClient{},
		methods: map[string]*sbMethod{}}
	s.mux.HandleFunc("POST "+SyncPath, s.api(s.sync))
	s.mux.HandleFunc("POST "+ClientPath, s.api(s.createClient))
	s.mux.HandleFunc("POST "+PaymentPath, s.api(s.addPayment))
	s.mux.HandleFunc("GET "+ListPath+"/{clientId}", s.api(s.list))
	s.mux.HandleFunc("DELETE "+PaymentPath+"/{id}", s.api(s.deletePayment))
	sandbox.HandleState(s.mux, s.State)
	return s
}

// ServeHTTP sets the request-id header every Q2 answer carries.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(RequestIDHeader, "req-"+objectID())
	s.mux.ServeHTTP(w, r)
}

// api counts the request and checks the bearer token.
func (s *Sandbox) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.count(func(t *Totals) { t.Requests++ })
		if !sandbox.BearerOK(r, s.opts.Token) {
			s.count(func(t *Totals) { t.Unauthorized++ })
			apiError(w, http.StatusUnauthorized, "missing or invalid bearer token")
			return
		}
		h(w, r)
	}
}

// MarkPaid records that the payment method paid something at the given
// time, so that its deletion is refused for PaidWindow after it. It
// reports whether the method exists.
func (s *Sandbox) MarkPaid(paymentMethodID string, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.methods[paymentMethodID]
	if m != nil {
		m.paidAt = at
	}
	return m != nil
}

// State returns a snapshot of the sandbox state.
func (s *Sandbox) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Clients: make([]ClientState, 0, len(s.clients)), Totals: s.totals}
	seen := map[string]int{}
	for _, c := range s.clients {
		seen[c.identifier]++
		cs := ClientState{Identifier: c.identifier, ClientID: c.clientID, FirstName: c.meta.FirstName, LastName: c.meta.LastName,
			Email: c.meta.Email, Syncs: c.syncs, Cards: make([]CardState, 0, len(c.methods))}
		idents := map[string]int{}
		for _, m := range c.methods {
			cs.Cards = append(cs.Cards, CardState{Identifier: m.identifier, PaymentMethodID: m.id, Last4: m.last4, Brand: m.brand, Type: m.typ,
				Status: m.status, Default: m.isDefault})
			if m.identifier != "" {
				idents[m.identifier]++
			}
		}
		for _, n := range idents {
			st.Totals.DuplicatePaymentMethods += n - 1
		}
		st.Clients = append(st.Clients, cs)
	}
	for _, n := range seen {
		st.Totals.DuplicateClients += n - 1
	}
	sort.SliceStable(st.Clients, func(i, j int) bool { return st.Clients[i].Identifier < st.Clients[j].Identifier })
	return st
}

func apiError(w http.ResponseWriter, status int, msg string) {
	sandbox.WriteJSON(w, status, ErrorBody{Message: msg})
}

func (s *Sandbox) count(f func(*Totals)) {
	s.mu.Lock()
	f(&s.totals)
	s.mu.Unlock()
}

func (s *Sandbox) reject(w http.ResponseWriter, msg string) {
	s.count(func(t *Totals) { t.Rejected++ })
	apiError(w, http.StatusBadRequest, msg)
}

// client finds or creates a client by identifier; s.mu must be held. A
// repeat does not change meta (the stricter reading: no page says it does).
func (s *Sandbox) client(identifier string, meta Meta) *sbClient {
	c := s.byIdent[identifier]
	if c == nil {
		c = &sbClient{identifier: identifier, clientID: objectID(), meta: meta}
		s.clients = append(s.clients, c)
		s.byIdent[identifier] = c
		s.byID[c.clientID] = c
		s.totals.ClientsCreated++
	}
	return c
}

// add adds a payment method, always a new one; s.mu must be held.
func (s *Sandbox) add(c *sbClient, cd Card) *sbMethod {
	for _, m := range c.methods {
		if cd.Identifier != "" && m.identifier == cd.Identifier {
			s.totals.DuplicateAdds++
			break
		}
	}
	pan := model.NewPAN(cd.CardNumber)
	m := &sbMethod{client: c, id: objectID(), identifier: cd.Identifier, masked: pan.Masked(), last4: pan.Last4(), brand: cd.CardBrand,
		typ: cd.CardType, status: "verified"}
	if cd.SetAsDefault == "true" {
		for _, o := range c.methods {
			o.isDefault = false
		}
		m.isDefault = true
	}
	c.methods = append(c.methods, m)
	s.methods[m.id] = m
	s.totals.PaymentMethodsAdded++
	return m
}

func (s *Sandbox) sync(w http.ResponseWriter, r *http.Request) {
	var req SyncRequest
	if err := sandbox.DecodeStrict(r, &req, 1<<20); err != nil {
		// Decoder errors name a field or a character, never a value.
		s.reject(w, "malformed JSON body: "+err.Error())
		return
	}
	now := s.opts.Clock.Now()
	if problems := validate(req, now); len(problems) > 0 {
		s.reject(w, strings.Join(problems, "; "))
		return
	}
	exp := now.Add(24 * time.Hour)
	if req.Token.Expiration != "" {
		exp, _ = time.Parse(time.RFC3339, req.Token.Expiration)
	}

	s.mu.Lock()
	c := s.client(req.Client.Identifier, req.Client.Meta)
	c.syncs++
	resp := SyncResponse{ClientID: c.clientID, Cards: make([]CardResult, 0, len(req.Cards))}
	for _, in := range req.Cards {
		m := s.add(c, in)
		resp.Cards = append(resp.Cards, CardResult{PaymentMethodID: m.id, Identifier: in.Identifier})
	}
	s.mu.Unlock()

	resp.SSOToken = s.ssoToken(resp.ClientID, now, exp)
	sandbox.WriteJSON(w, http.StatusOK, resp)
}

func (s *Sandbox) createClient(w http.ResponseWriter, r *http.Request) {
	var req ClientRequest
	if err := sandbox.DecodeStrict(r, &req, 1<<20); err != nil {
		s.reject(w, "malformed JSON body: "+err.Error())
		return
	}
	if strings.TrimSpace(req.Identifier) == "" {
		s.reject(w, "identifier: required")
		return
	}
	s.mu.Lock()
	c := s.client(req.Identifier, req.Meta)
	s.mu.Unlock()
	sandbox.WriteJSON(w, http.StatusOK, ClientResponse{ClientID: c.clientID})
}

func (s *Sandbox) addPayment(w http.ResponseWriter, r *http.Request) {
	var req AddPaymentRequest
	if err := sandbox.DecodeStrict(r, &req, 1<<20); err != nil {
		s.reject(w, "malformed JSON body: "+err.Error())
		return
	}
	var problems []string
	if req.ClientID == "" {
		problems = append(problems, "clientId: required")
	}
	if req.PaymentType != "card" {
		problems = append(problems, `paymentType: must be "card"`)
	}
	cd := Card{Identifier: req.Identifier, CardNumber: req.CardNumber, CardCode: req.CardCode, CardType: req.CardType, CardBrand: req.CardBrand,
		ExpMonth: req.ExpMonth, ExpYear: req.ExpYear, Zipcode: req.Zipcode, Name: req.Name, SetAsDefault: req.SetAsDefault, CustomLabel: req.CustomLabel}
	problems = append(problems, validateCard(cd, false, func(name string) string { return name })...)
	if len(problems) > 0 {
		s.reject(w, strings.Join(problems, "; "))
		return
	}
	s.mu.Lock()
	c := s.byID[req.ClientID]
	var m *sbMethod
	if c != nil {
		m = s.add(c, cd)
	}
	s.mu.Unlock()
	if c == nil {
		s.count(func(t *Totals) { t.Rejected++ })
		apiError(w, http.StatusNotFound, "client not found")
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, AddPaymentResponse{PaymentMethodID: m.id})
}

func (s *Sandbox) list(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c := s.byID[r.PathValue("clientId")]
	var out ListResponse
	if c != nil {
		out.PaymentMethods = make([]PaymentMethod, 0, len(c.methods))
		for _, m := range c.methods {
			out.PaymentMethods = append(out.PaymentMethods, PaymentMethod{PaymentMethodID: m.id, Identifier: m.identifier, Status: m.status,
				IsDefault: m.isDefault, MaskedNumber: m.masked})
		}
	}
	s.mu.Unlock()
	if c == nil {
		apiError(w, http.StatusNotFound, "client not found")
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, out)
}

func (s *Sandbox) deletePayment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	now := s.opts.Clock.Now()
	s.mu.Lock()
	m := s.methods[id]
	status, msg := http.StatusOK, ""
	switch {
	case m == nil:
		status, msg = http.StatusNotFound, "payment method not found"
	case !m.paidAt.IsZero() && now.Sub(m.paidAt) < PaidWindow:
		status, msg = http.StatusBadRequest, "payment method has made a payment in the last 24 hours and cannot be deleted"
		s.totals.DeletesRefused++
	default:
		delete(s.methods, id)
		c := m.client
		for i, o := range c.methods {
			if o == m {
				c.methods = append(c.methods[:i], c.methods[i+1:]...)
				break
			}
		}
		s.totals.PaymentMethodsDeleted++
	}
	s.mu.Unlock()
	if status != http.StatusOK {
		apiError(w, status, msg)
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, AddPaymentResponse{PaymentMethodID: id})
}

var (
	reCardNumber = regexp.MustCompile(`^[0-9]{12,19}$`)
	reCardCode   = regexp.MustCompile(`^[0-9]{3,4}$`)
	reExpMonth   = regexp.MustCompile(`^(0[1-9]|1[0-2])$`)
	reExpYear    = regexp.MustCompile(`^[0-9]{4}$`)
)

// validate lists every problem by field path. Messages never repeat a
// value: a refused card number must not come back in the answer. Two
// cards with one identifier are not refused: Q2 promises nothing about
// card identifiers, and would hold two payment methods.
func validate(req SyncRequest, now time.Time) []string {
	var out []string
	if strings.TrimSpace(req.Client.Identifier) == "" {
		out = append(out, "client.identifier: required")
	}
	if e := req.Token.Expiration; e != "" {
		if t, err := time.Parse(time.RFC3339, e); err != nil {
			out = append(out, "token.expiration: must be an ISO 8601 timestamp such as 2025-01-30T00:00:00.000Z")
		} else if !t.After(now) {
			out = append(out, "token.expiration: must be in the future")
		}
	}
	for i, cd := range req.Cards {
		out = append(out, validateCard(cd, true, func(name string) string { return fmt.Sprintf("cards[%d].%s", i, name) })...)
	}
	return out
}

// validateCard checks one card; f names a field. The identifier is
// required in a sync (the seed doc's example always has one) but only
// "optional, for correlation" in add payment.
func validateCard(cd Card, requireIdentifier bool, f func(string) string) []string {
	var out []string
	add := func(field, msg string) { out = append(out, f(field)+": "+msg) }
	if requireIdentifier && strings.TrimSpace(cd.Identifier) == "" {
		add("identifier", "required")
	}
	switch {
	case !reCardNumber.MatchString(cd.CardNumber):
		add("cardNumber", "must be 12 to 19 digits")
	case !model.NewPAN(cd.CardNumber).Luhn():
		add("cardNumber", "fails the Luhn check")
	}
	if cd.CardCode != "" && !reCardCode.MatchString(cd.CardCode) {
		add("cardCode", "must be 3 or 4 digits")
	}
	if !reExpMonth.MatchString(cd.ExpMonth) {
		add("expMonth", "must be two digits, 01 to 12")
	}
	if !reExpYear.MatchString(cd.ExpYear) {
		add("expYear", "must be four digits")
	}
	if cd.CardType != "" && !cardTypes[cd.CardType] {
		add("cardType", "must be one of credit, debit")
	}
	if cd.CardBrand != "" && !brands[cd.CardBrand] {
		add("cardBrand", "must be one of american express, discover, maestro, mastercard, uatp, visa")
	}
	if cd.SetAsDefault != "" && cd.SetAsDefault != "true" && cd.SetAsDefault != "false" {
		add("setAsDefault", `must be "true" or "false"`)
	}
	return out
}

// objectID looks like the doc's ids: 24 hex digits.
func objectID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ssoToken is an HS256 JWT shaped like the doc's example.
func (s *Sandbox) ssoToken(clientID string, now, exp time.Time) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(struct {
		Subject string `json:"subject"`
		IAT     int64  `json:"iat"`
		Exp     int64  `json:"exp"`
		Iss     string `json:"iss"`
		Sub     string `json:"sub"`
	}{clientID, now.Unix(), exp.Unix(), "Q2OPEN-SANDBOX", clientID})
	signing := header + "." + enc.EncodeToString(claims)
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(m.Sum(nil))
}
