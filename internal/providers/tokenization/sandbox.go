package tokenization

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/mail"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/northwind-data/etl/internal/sandbox"
)

// SandboxOptions configures the sandbox.
type SandboxOptions struct {
	Username string // the Basic credentials it accepts
	Password string
	// Partners are the partners clients may belong to, id -> name. Empty:
	// the doc example's {792: "partnerName"}.
	Partners map[int]string
	Clock    sandbox.Clock // created/modified; default the real clock
}

// Sandbox behaves like /api/v1/clients as documented: Basic auth; create
// validates and refuses a name already taken (409, errorCode 7409: our
// assumption); list needs a partner and pages with take/skip; get shows
// timestamps and the full contact; patch updates the given fields and
// bumps version and modified; delete is served because the doc documents
// it. Errors use the documented {uuid, errorCode, message}. Safe for
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
	s := &Sandbox{opts: o, mux: http.NewServeMux(), clients: map[int]*sbClient{}, byName: map[string]int{},
		nextID: 1000, nextContact: 5000}
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

func (s *Sandbox) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.count(func(t *Totals) { t.Requests++ })
		if !sandbox.BasicOK(r, s.opts.Username, s.opts.Password) {
			s.count(func(t *Totals) { t.Unauthorized++ })
			apiError(w, http.StatusUnauthorized, 7401, "Invalid credentials.")
			return
		}
		h(w, r)
	}
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
func (s *Sandbox) validate(in input, create bool) (PartnerRef, []string) {
	var out []string
	add := func(field, msg string) { out = append(out, field+": "+msg) }
	if in.Name != nil {
		switch n := strings.TrimSpace(*in.Name); {
		case n == "":
			add("name", "must not be blank")
		case len(*in.Name) > maxNameLen:
			add("name", fmt.Sprintf("must be at most %d characters", maxNameLen))
		}
	} else if create {
		add("name", "required")
	}
	if in.IsActive == nil && create {
		add("isActive", "required")
	}
	var partner PartnerRef
	if dp := in.DirectPartner; dp != nil {
		p, err := s.partnerOf(*dp)
		if err != "" {
			add("directPartner", err)
		}
		partner = p
	} else if create {
		add("directPartner", "required: id or name of a partner")
	}
	if ct := in.Contact; ct != nil {
		// On patch, a contact without an id updates the current one in
		// place, so any subset of its fields will do.
		if create && ct.ID == 0 && (strings.TrimSpace(ct.FirstName) == "" || strings.TrimSpace(ct.LastName) == "" || strings.TrimSpace(ct.Email) == "") {
			add("contact", "a new contact needs firstName, lastName and email (or give the id of an existing user)")
		}
		if ct.ID < 0 {
			add("contact.id", "must be a user id")
		}
		if ct.Email != "" {
			if a, err := mail.ParseAddress(ct.Email); err != nil || a.Address != ct.Email {
				add("contact.email", "must be an e-mail address")
			}
		}
	} else if create {
		add("contact", "required")
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
		s.reject(w, http.StatusBadRequest, 7400, "malformed JSON body: "+err.Error())
		return in, PartnerRef{}, false
	}
	partner, problems := s.validate(in, create)
	if len(problems) > 0 {
		s.reject(w, http.StatusBadRequest, 7400, strings.Join(problems, "; "))
		return in, PartnerRef{}, false
	}
	return in, partner, true
}

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
		apiError(w, http.StatusConflict, 7409, "A client with this name already exists.")
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
		s.reject(w, http.StatusBadRequest, 7400, "partner: required (a partner id or name)")
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
			s.reject(w, http.StatusBadRequest, 7400, fmt.Sprintf("%s: must be an integer of at least %d", v.name, v.min))
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
			apiError(w, http.StatusConflict, 7409, "A client with this name already exists.")
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
