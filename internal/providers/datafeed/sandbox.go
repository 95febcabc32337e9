package datafeed

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/northwind-data/etl/internal/sandbox"
)

// SandboxOptions configures the sandbox.
type SandboxOptions struct {
	Token string // the bearer session token it accepts
}

// Sandbox behaves like POST /v2/data/customers: bearer auth, the body
// validated as the doc and FACTS.md describe, at most 50 customers, a
// requestId on success and 500 on any failure (the doc knows no other
// status), customers kept by sourceCustomerId.
type Sandbox struct {
	opts SandboxOptions
	mu   sync.Mutex
	st   State
	mux  *http.ServeMux
}

// State is what GET /_sandbox/state shows.
type State struct {
	Requests         int                       `json:"requests"`
	Accepted         int                       `json:"accepted_requests"`
	Failed           int                       `json:"failed_requests"`
	Unauthorized     int                       `json:"unauthorized"`
	MaxBatch         int                       `json:"max_batch"`
	CustomersSeen    int                       `json:"customers_received"`
	Redeliveries     int                       `json:"redeliveries"` // same content again (a resend)
	Updates          int                       `json:"updates"`      // changed content for a known customer
	Customers        map[string]*CustomerState `json:"customers"`
	RequestIDs       []string                  `json:"-"`
	OversizedBatches int                       `json:"oversized_batches"`
}

// CustomerState is one customer as the partner holds it.
type CustomerState struct {
	Deliveries     int    `json:"deliveries"`
	LastRequestID  string `json:"last_request_id"`
	OrganizationID string `json:"organization_id"`
	Accounts       int    `json:"accounts"`
	Cards          int    `json:"cards"`
	hash           string
}

func NewSandbox(o SandboxOptions) *Sandbox {
	s := &Sandbox{opts: o, st: State{Customers: map[string]*CustomerState{}}, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST /v2/data/customers", s.create)
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

type detail struct {
	Index   int    `json:"index"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func fail(w http.ResponseWriter, msg string, d []detail) {
	sandbox.WriteJSON(w, http.StatusInternalServerError, map[string]any{"error": msg, "details": d})
}

func (s *Sandbox) create(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.st.Requests++
	s.mu.Unlock()
	if !sandbox.BearerOK(r, s.opts.Token) {
		s.mu.Lock()
		s.st.Unauthorized++
		s.mu.Unlock()
		sandbox.WriteJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid or missing session token"})
		return
	}
	var req Request
	if err := sandbox.DecodeStrict(r, &req, 8<<20); err != nil {
		s.failed()
		fail(w, "malformed JSON body: "+err.Error(), nil)
		return
	}
	if len(req.Customers) > MaxPerRequest {
		s.mu.Lock()
		s.st.Failed++
		s.st.OversizedBatches++
		s.mu.Unlock()
		fail(w, fmt.Sprintf("customers: %d given, at most %d at a time", len(req.Customers), MaxPerRequest), nil)
		return
	}
	if len(req.Customers) == 0 {
		s.failed()
		fail(w, "customers: required, at least one", nil)
		return
	}
	if d := validate(req.Customers); len(d) > 0 {
		s.failed()
		fail(w, "validation failed", d)
		return
	}
	id := newRequestID()
	s.mu.Lock()
	s.st.Accepted++
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
		cs.LastRequestID, cs.OrganizationID, cs.hash = id, c.OrganizationID, h
		cs.Accounts = len(c.Accounts)
		cs.Cards = 0
		for _, a := range c.Accounts {
			cs.Cards += len(a.Cards)
		}
	}
	s.mu.Unlock()
	sandbox.WriteJSON(w, http.StatusOK, Response{RequestID: id})
}

func (s *Sandbox) failed() {
	s.mu.Lock()
	s.st.Failed++
	s.mu.Unlock()
}

var (
	digits4 = regexp.MustCompile(`^\d{4}$`)
	digits6 = regexp.MustCompile(`^\d{6,8}$`)
	country = regexp.MustCompile(`^[A-Z]{2}$`)
)

// validate applies the required fields FACTS.md lists and the formats the
// doc's example shows. Details name the customer index and the field.
func validate(cs []Customer) []detail {
	var out []detail
	add := func(i int, f, m string) { out = append(out, detail{i, f, m}) }
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
		for f, v := range map[string]string{"customerCreationDate": c.CustomerCreationDate, "enrollmentStartDate": c.EnrollmentStartDate} {
			if v != "" && !isTime(v) {
				add(i, f, "must be an ISO 8601 timestamp")
			}
		}
		if c.EnrollmentEndDate != nil && !isTime(*c.EnrollmentEndDate) {
			add(i, "enrollmentEndDate", "must be an ISO 8601 timestamp or null")
		}
		if len(c.AlertOptInStatus) == 0 {
			add(i, "alertOptInStatus", "required, e.g. [\"ALL\"]")
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
			if a.Status == "" || a.Type == "" {
				add(i, p+"status/type", "required")
			}
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

func isTime(s string) bool {
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

func contentHash(c Customer) string {
	b, _ := json.Marshal(c)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
