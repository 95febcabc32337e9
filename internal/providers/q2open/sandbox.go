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

// SandboxOptions configures the sandbox.
type SandboxOptions struct {
	Token string        // the bearer API token it accepts
	Clock sandbox.Clock // now, for token.expiration and the SSO token; default the real clock
}

// Sandbox behaves like POST /v1/client/sync: bearer auth; the body decoded
// strictly and validated (required fields, formats, the documented enums);
// a client found or created by identifier, so the same identifier always
// answers the same clientId; cards found or created by identifier within
// the client, their data updated; a JWT-shaped ssoToken. Errors use the
// assumed shape {"error": {"code", "message"}}: 400 validation, 401 auth.
// It never holds a card number or code: last four, brand and type only.
type Sandbox struct {
	opts SandboxOptions
	key  []byte // signs the sandbox's SSO tokens
	mux  *http.ServeMux

	mu      sync.Mutex
	clients []*sbClient          // creation order; duplicates would show here
	byIdent map[string]*sbClient // the dedup index
	totals  Totals
}

type sbClient struct {
	identifier, clientID string
	meta                 Meta
	syncs                int
	cards                map[string]*CardState
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
	Cards      []CardState `json:"cards"` // sorted by identifier
}

// CardState is one payment method: never the number, never the code.
type CardState struct {
	Identifier      string `json:"identifier"`
	PaymentMethodID string `json:"payment_method_id"`
	Last4           string `json:"last4"`
	Brand           string `json:"brand"`
	Type            string `json:"type"`
}

// Totals count what happened. DuplicateClients counts clients beyond the
// first that share an identifier: a correct partner keeps it at 0.
type Totals struct {
	Requests         int `json:"requests"`
	Unauthorized     int `json:"unauthorized"`
	Rejected         int `json:"rejected"`
	ClientsCreated   int `json:"clients_created"`
	DuplicateClients int `json:"duplicate_clients"`
	CardsCreated     int `json:"cards_created"`
	CardDedups       int `json:"card_dedups"`
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

func NewSandbox(o SandboxOptions) *Sandbox {
	if o.Clock == nil {
		o.Clock = sandbox.RealClock{}
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := &Sandbox{opts: o, key: key, mux: http.NewServeMux(), byIdent: map[string]*sbClient{}}
	s.mux.HandleFunc("POST "+SyncPath, s.sync)
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
		seen[c.identifier]++
		cs := ClientState{Identifier: c.identifier, ClientID: c.clientID, FirstName: c.meta.FirstName, LastName: c.meta.LastName,
			Email: c.meta.Email, Syncs: c.syncs, Cards: make([]CardState, 0, len(c.cards))}
		for _, cd := range c.cards {
			cs.Cards = append(cs.Cards, *cd)
		}
		sort.Slice(cs.Cards, func(i, j int) bool { return cs.Cards[i].Identifier < cs.Cards[j].Identifier })
		st.Clients = append(st.Clients, cs)
	}
	for _, n := range seen {
		st.Totals.DuplicateClients += n - 1
	}
	sort.SliceStable(st.Clients, func(i, j int) bool { return st.Clients[i].Identifier < st.Clients[j].Identifier })
	return st
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	sandbox.WriteJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: msg}})
}

func (s *Sandbox) count(f func(*Totals)) {
	s.mu.Lock()
	f(&s.totals)
	s.mu.Unlock()
}

func (s *Sandbox) sync(w http.ResponseWriter, r *http.Request) {
	s.count(func(t *Totals) { t.Requests++ })
	if !sandbox.BearerOK(r, s.opts.Token) {
		s.count(func(t *Totals) { t.Unauthorized++ })
		apiError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token")
		return
	}
	var req SyncRequest
	if err := sandbox.DecodeStrict(r, &req, 1<<20); err != nil {
		// Decoder errors name a field or a character, never a value.
		s.count(func(t *Totals) { t.Rejected++ })
		apiError(w, http.StatusBadRequest, "invalid_request", "malformed JSON body: "+err.Error())
		return
	}
	now := s.opts.Clock.Now()
	if problems := validate(req, now); len(problems) > 0 {
		s.count(func(t *Totals) { t.Rejected++ })
		apiError(w, http.StatusBadRequest, "validation_error", strings.Join(problems, "; "))
		return
	}
	exp := now.Add(24 * time.Hour)
	if req.Token.Expiration != "" {
		exp, _ = time.Parse(time.RFC3339, req.Token.Expiration)
	}

	s.mu.Lock()
	c := s.byIdent[req.Client.Identifier]
	if c == nil {
		c = &sbClient{identifier: req.Client.Identifier, clientID: objectID(), cards: map[string]*CardState{}}
		s.clients = append(s.clients, c)
		s.byIdent[c.identifier] = c
		s.totals.ClientsCreated++
	}
	c.meta = req.Client.Meta
	c.syncs++
	resp := SyncResponse{ClientID: c.clientID, Cards: make([]CardResult, 0, len(req.Cards))}
	for _, in := range req.Cards {
		cd := c.cards[in.Identifier]
		if cd == nil {
			cd = &CardState{Identifier: in.Identifier, PaymentMethodID: objectID()}
			c.cards[in.Identifier] = cd
			s.totals.CardsCreated++
		} else {
			s.totals.CardDedups++
		}
		pan := model.NewPAN(in.CardNumber)
		cd.Last4, cd.Brand, cd.Type = pan.Last4(), in.CardBrand, in.CardType
		resp.Cards = append(resp.Cards, CardResult{PaymentMethodID: cd.PaymentMethodID, Identifier: in.Identifier})
	}
	s.mu.Unlock()

	resp.SSOToken = s.ssoToken(resp.ClientID, now, exp)
	sandbox.WriteJSON(w, http.StatusOK, resp)
}

var (
	reCardNumber = regexp.MustCompile(`^[0-9]{12,19}$`)
	reCardCode   = regexp.MustCompile(`^[0-9]{3,4}$`)
	reExpMonth   = regexp.MustCompile(`^(0[1-9]|1[0-2])$`)
	reExpYear    = regexp.MustCompile(`^[0-9]{4}$`)
)

// validate lists every problem by field path. Messages never repeat a
// value: a refused card number must not come back in the answer.
func validate(req SyncRequest, now time.Time) []string {
	var out []string
	add := func(field, msg string) { out = append(out, field+": "+msg) }
	if strings.TrimSpace(req.Client.Identifier) == "" {
		add("client.identifier", "required")
	}
	if e := req.Token.Expiration; e != "" {
		if t, err := time.Parse(time.RFC3339, e); err != nil {
			add("token.expiration", "must be an ISO 8601 timestamp such as 2025-01-30T00:00:00.000Z")
		} else if !t.After(now) {
			add("token.expiration", "must be in the future")
		}
	}
	seen := map[string]bool{}
	for i, cd := range req.Cards {
		f := func(name string) string { return fmt.Sprintf("cards[%d].%s", i, name) }
		switch {
		case strings.TrimSpace(cd.Identifier) == "":
			add(f("identifier"), "required")
		case seen[cd.Identifier]:
			add(f("identifier"), "appears twice in this request")
		}
		seen[cd.Identifier] = true
		switch {
		case !reCardNumber.MatchString(cd.CardNumber):
			add(f("cardNumber"), "must be 12 to 19 digits")
		case !model.NewPAN(cd.CardNumber).Luhn():
			add(f("cardNumber"), "fails the Luhn check")
		}
		if cd.CardCode != "" && !reCardCode.MatchString(cd.CardCode) {
			add(f("cardCode"), "must be 3 or 4 digits")
		}
		if !reExpMonth.MatchString(cd.ExpMonth) {
			add(f("expMonth"), "must be two digits, 01 to 12")
		}
		if !reExpYear.MatchString(cd.ExpYear) {
			add(f("expYear"), "must be four digits")
		}
		if cd.CardType != "" && !cardTypes[cd.CardType] {
			add(f("cardType"), "must be one of credit, debit")
		}
		if cd.CardBrand != "" && !brands[cd.CardBrand] {
			add(f("cardBrand"), "must be one of american express, discover, maestro, mastercard, uatp, visa")
		}
		if cd.SetAsDefault != "" && cd.SetAsDefault != "true" && cd.SetAsDefault != "false" {
			add(f("setAsDefault"), `must be "true" or "false"`)
		}
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
