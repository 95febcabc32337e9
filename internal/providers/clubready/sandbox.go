package clubready

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/sandbox"
)

// SandboxOptions configures the sandbox.
type SandboxOptions struct {
	ApiKey     string        // the ApiKey the import accepts (query, or body as ServiceStack allows)
	VaultKey   string        // the bearer key the vault accepts
	Clock      sandbox.Clock // token iat/exp and expiry checks; default the real clock
	SigningKey []byte        // HS256 key of the ProfileTokens; default random
}

// Sandbox serves both halves of a ClubReady card import:
//
//   - POST /vault/profiles (our assumed Vault API): bearer VaultKey; the
//     card validated; answers {ProfileToken, AcctToken}, the token an
//     HS256 JWT of about 1,500 characters with exp = now + 5 minutes and
//     non-PCI claims (owner, last4, expiry, ExternalRef, names) padded by
//     a filler claim, as the doc's 1,000 to 4,000 characters suggest.
//   - POST /sales/paymentprofile/import, as published: ApiKey checked
//     (401 in ServiceStack's {ResponseStatus:{ErrorCode, Message}});
//     unknown body fields ignored, as ServiceStack does; the end user's
//     IP from X-Forwarded-For; a token with a bad signature, an expired
//     one (checked first), or one already imported answers 200
//     Success:false with a Message; a missing ProfileToken or a malformed
//     body answers 400 with field Errors; a token whose import failed may
//     be retried; a TempStUser token needs NewOwnerId. Success answers the
//     documented PaymentProfile with sequential PaymentProfileIds.
//
// It keeps no card number or code: last four and expiry only.
type Sandbox struct {
	opts SandboxOptions
	key  []byte
	mux  *http.ServeMux

	mu        sync.Mutex
	issued    int
	used      map[string]int // token id -> PaymentProfileId it created
	profiles  []PaymentProfile
	refs      map[int]string // PaymentProfileId -> ExternalRef
	preferred map[int]int    // owner -> preferred PaymentProfileId
	fwd       map[int]string // PaymentProfileId -> X-Forwarded-For it was imported with
	totals    Totals
	offset    time.Duration // Advance: added to the clock
	gateway   gatewayFault
}

// gatewayFault answers the next n imports that commit with status
// instead of their success (see FailAfterCommit).
type gatewayFault struct {
	n, status int
	then      func()
}

// State is what GET /_sandbox/state shows. Duplicates counts payment
// profiles beyond the first per ExternalRef: a correct client keeps it 0.
type State struct {
	Profiles []ProfileState `json:"profiles"` // by id
	Totals
	Duplicates int `json:"duplicates"`
}

// ProfileState is one payment profile, without card data.
type ProfileState struct {
	ID          int    `json:"id"`
	Owner       int    `json:"owner"`
	Last4       string `json:"last4"`
	ExternalRef string `json:"externalRef"`
	Preferred   bool   `json:"preferred"`
	// ForwardedFor is the end user's IP the import carried in the
	// X-Forwarded-For header ("" without one).
	ForwardedFor string `json:"forwardedFor,omitempty"`
}

// Totals count requests and their fates.
type Totals struct {
	TokensIssued         int `json:"tokens_issued"`
	VaultRejected        int `json:"vault_rejected"`
	Imports              int `json:"imports"` // import requests past auth and validation
	TokenReuseRefusals   int `json:"token_reuse_refusals"`
	ExpiredRefusals      int `json:"expired_refusals"`
	InvalidTokenRefusals int `json:"invalid_token_refusals"`
	OwnerRefusals        int `json:"owner_refusals"`
	Unauthorized         int `json:"unauthorized"`
	BadRequests          int `json:"bad_requests"`
	// GatewayErrors counts imports that committed and were answered with
	// a gateway error (FailAfterCommit).
	GatewayErrors int `json:"gateway_errors"`
}

// Profile returns the profiles holding externalRef (more than one is a
// duplicate).
func (st State) Profile(externalRef string) []ProfileState {
	var out []ProfileState
	for _, p := range st.Profiles {
		if p.ExternalRef == externalRef {
			out = append(out, p)
		}
	}
	return out
}

// ownerTypeIDUser is our guess at ClubReady's OwnerTypeId for a User: the
// doc gives the field but not its values.
const ownerTypeIDUser = 1

// NewSandbox builds the sandbox; the zero Clock is the real one and a nil
// SigningKey a random one.
func NewSandbox(o SandboxOptions) *Sandbox {
	if o.Clock == nil {
		o.Clock = sandbox.RealClock{}
	}
	key := o.SigningKey
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	s := &Sandbox{opts: o, key: key, mux: http.NewServeMux(), used: map[string]int{}, refs: map[int]string{}, preferred: map[int]int{}, fwd: map[int]string{}}
	s.mux.HandleFunc("POST "+VaultPath, s.vaultCreate)
	s.mux.HandleFunc("POST "+ImportPath, s.importToken)
	sandbox.HandleState(s.mux, s.State)
	return s
}

func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Advance moves the sandbox's clock (token iat/exp and the 5-minute check)
// forward by d, on top of SandboxOptions.Clock: end-to-end tests age the
// tokens of a killed run without waiting.
func (s *Sandbox) Advance(d time.Duration) {
	s.mu.Lock()
	s.offset += d
	s.mu.Unlock()
}

func (s *Sandbox) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.Clock.Now().Add(s.offset)
}

// FailAfterCommit makes the next n imports that succeed commit the
// payment profile and answer status (say 504, a gateway in front of
// ClubReady that gave up waiting) with a body that is not ClubReady's,
// then calls then, if set, once after the n-th (say, to take the partner
// down). ClubReady publishes nothing against it: any proxy can do this.
func (s *Sandbox) FailAfterCommit(n, status int, then func()) {
	s.mu.Lock()
	s.gateway = gatewayFault{n: n, status: status, then: then}
	s.mu.Unlock()
}

// State returns a snapshot.
func (s *Sandbox) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Profiles: make([]ProfileState, 0, len(s.profiles)), Totals: s.totals}
	perRef := map[string]int{}
	for _, p := range s.profiles {
		ref := s.refs[p.PaymentProfileId]
		perRef[ref]++
		st.Profiles = append(st.Profiles, ProfileState{ID: p.PaymentProfileId, Owner: p.OwnerId, Last4: p.Last4, ExternalRef: ref,
			Preferred: s.preferred[p.OwnerId] == p.PaymentProfileId, ForwardedFor: s.fwd[p.PaymentProfileId]})
	}
	for _, n := range perRef {
		st.Duplicates += n - 1
	}
	sort.Slice(st.Profiles, func(i, j int) bool { return st.Profiles[i].ID < st.Profiles[j].ID })
	return st
}

func (s *Sandbox) count(f func(*Totals)) {
	s.mu.Lock()
	f(&s.totals)
	s.mu.Unlock()
}

// serviceError answers in ServiceStack's error shape.
func serviceError(w http.ResponseWriter, status int, code, msg string, fields ...ResponseError) {
	sandbox.WriteJSON(w, status, ErrorResponse{ResponseStatus: ResponseStatus{ErrorCode: code, Message: msg, Errors: fields}})
}

// claims is what the sandbox puts in a ProfileToken: non-PCI only.
type claims struct {
	Iss         string `json:"iss"`
	Jti         string `json:"jti"`
	Iat         int64  `json:"iat"`
	Exp         int64  `json:"exp"`
	OwnerType   string `json:"owner_type"`
	OwnerId     int    `json:"owner_id"`
	ExternalRef string `json:"external_ref"`
	Last4       string `json:"last4"`
	CcExpMonth  int    `json:"cc_exp_month"`
	CcExpYear   int    `json:"cc_exp_year"`
	FirstName   string `json:"first_name,omitempty"`
	LastName    string `json:"last_name,omitempty"`
	Address1    string `json:"address1,omitempty"`
	Address2    string `json:"address2,omitempty"`
	City        string `json:"city,omitempty"`
	State       string `json:"state,omitempty"`
	PostalCode  string `json:"postal_code,omitempty"`
	CountryCode string `json:"country_code,omitempty"`
	AcctToken   string `json:"acct_token"`
	// Pad brings the token to the doc's "around 1,000 to 4,000
	// characters", so that clients are tested with realistic sizes.
	Pad string `json:"pad"`
}

var tokenPad = strings.Repeat("non-pci-sandbox-padding.", 32)

var (
	reCardNumber = regexp.MustCompile(`^[0-9]{12,19}$`)
	reCvv        = regexp.MustCompile(`^[0-9]{3,4}$`)
)

func (s *Sandbox) vaultCreate(w http.ResponseWriter, r *http.Request) {
	if !sandbox.BearerOK(r, s.opts.VaultKey) {
		s.count(func(t *Totals) { t.Unauthorized++ })
		serviceError(w, http.StatusUnauthorized, "Unauthorized", "missing or invalid vault key")
		return
	}
	var req VaultRequest
	if err := sandbox.DecodeStrict(r, &req, 1<<20); err != nil {
		// Decoder errors name a field or a character, never a value.
		s.count(func(t *Totals) { t.VaultRejected++ })
		serviceError(w, http.StatusBadRequest, "SerializationException", "malformed JSON body: "+err.Error())
		return
	}
	now := s.now()
	if problems := validateVault(req, now); len(problems) > 0 {
		s.count(func(t *Totals) { t.VaultRejected++ })
		serviceError(w, http.StatusBadRequest, "ValidationException", problems[0].Message, problems...)
		return
	}
	s.mu.Lock()
	s.issued++
	s.totals.TokensIssued++
	jti := fmt.Sprintf("vt_%08d", s.issued)
	s.mu.Unlock()
	acct := s.acctToken(jti)
	tok := s.sign(claims{
		Iss: "clubready-vault-sandbox", Jti: jti, Iat: now.Unix(), Exp: now.Add(TokenLifetime).Unix(),
		OwnerType: req.OwnerType, OwnerId: req.OwnerId, ExternalRef: req.ExternalRef,
		Last4: model.NewPAN(req.CardNumber).Last4(), CcExpMonth: req.ExpMonth, CcExpYear: req.ExpYear,
		FirstName: req.FirstName, LastName: req.LastName, Address1: req.Address1, Address2: req.Address2,
		City: req.City, State: req.State, PostalCode: req.PostalCode, CountryCode: req.CountryCode,
		AcctToken: acct, Pad: tokenPad,
	})
	sandbox.WriteJSON(w, http.StatusOK, VaultResponse{ProfileToken: tok, AcctToken: acct})
}

// validateVault lists problems by field. Messages never repeat a value:
// a refused card number must not come back in the answer.
func validateVault(req VaultRequest, now time.Time) []ResponseError {
	var out []ResponseError
	add := func(code, field, msg string) {
		out = append(out, ResponseError{ErrorCode: code, FieldName: field, Message: msg})
	}
	if req.OwnerType != OwnerTypeTempStUser && req.OwnerType != OwnerTypeUser {
		add("Enum", "OwnerType", "OwnerType must be TempStUser or User")
	}
	if req.OwnerId <= 0 {
		add("GreaterThan", "OwnerId", "OwnerId must be a positive user id")
	}
	if strings.TrimSpace(req.ExternalRef) == "" {
		add("NotEmpty", "ExternalRef", "ExternalRef must not be empty")
	}
	switch {
	case !reCardNumber.MatchString(req.CardNumber):
		add("CardNumber", "CardNumber", "CardNumber must be 12 to 19 digits")
	case !model.NewPAN(req.CardNumber).Luhn():
		add("CardNumber", "CardNumber", "CardNumber fails the Luhn check")
	}
	if req.Cvv != "" && !reCvv.MatchString(req.Cvv) {
		add("Cvv", "Cvv", "Cvv must be 3 or 4 digits")
	}
	switch {
	case req.ExpMonth < 1 || req.ExpMonth > 12:
		add("InclusiveBetween", "ExpMonth", "ExpMonth must be 1 to 12")
	case req.ExpYear < 1000 || req.ExpYear > 9999:
		add("InclusiveBetween", "ExpYear", "ExpYear must have four digits")
	case time.Date(req.ExpYear, time.Month(req.ExpMonth)+1, 1, 0, 0, 0, 0, time.UTC).Before(now):
		add("Expired", "ExpYear", "the card has expired")
	}
	return out
}

// importBody is the import DTO as ServiceStack binds it: every documented
// parameter may also come in the body, as the doc's sample request shows,
// and a field the DTO does not have is ignored, as ServiceStack does (so a
// field we send by mistake is dropped silently here too: the golden
// request bodies are what catch it).
type importBody struct {
	ImportRequest
	ApiKey        string `json:"ApiKey,omitempty"`
	XForwardedFor string `json:"XForwardedFor,omitempty"`
}

func (s *Sandbox) importToken(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	var body importBody
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err = dec.Decode(&body); err == nil && dec.More() {
			err = errors.New("trailing data after JSON body")
		}
	}
	key := r.URL.Query().Get("ApiKey")
	if key == "" {
		key = body.ApiKey
	}
	if s.opts.ApiKey == "" || subtle.ConstantTimeCompare([]byte(key), []byte(s.opts.ApiKey)) != 1 {
		s.count(func(t *Totals) { t.Unauthorized++ })
		serviceError(w, http.StatusUnauthorized, "Unauthorized", "Invalid ApiKey")
		return
	}
	if err != nil {
		s.count(func(t *Totals) { t.BadRequests++ })
		serviceError(w, http.StatusBadRequest, "SerializationException", "malformed JSON body: "+err.Error())
		return
	}
	if strings.TrimSpace(body.ProfileToken) == "" {
		s.count(func(t *Totals) { t.BadRequests++ })
		serviceError(w, http.StatusBadRequest, "NotEmpty", "'Profile Token' must not be empty.",
			ResponseError{ErrorCode: "NotEmpty", FieldName: "ProfileToken", Message: "'Profile Token' must not be empty."})
		return
	}
	now := s.now()
	// The end user's IP: the DTO's XForwardedFor is bound from the
	// X-Forwarded-For header (FACTS.md, published material); ServiceStack
	// also binds it from the body.
	fwd := r.Header.Get("X-Forwarded-For")
	if fwd == "" {
		fwd = body.XForwardedFor
	}
	refuse := func(f func(*Totals), msg string) {
		s.totals.Imports++
		f(&s.totals)
		s.mu.Unlock()
		sandbox.WriteJSON(w, http.StatusOK, ImportResponse{Success: false, Message: msg})
	}
	c, verr := s.verify(body.ProfileToken)
	s.mu.Lock()
	switch {
	case verr != nil:
		refuse(func(t *Totals) { t.InvalidTokenRefusals++ }, "ProfileToken is not valid: "+verr.Error())
		return
	case !now.Before(time.Unix(c.Exp, 0)):
		// Checked before reuse: which of the two ClubReady checks first
		// is not published, and this order is the stricter one for a
		// client (a late retry learns nothing about an earlier attempt).
		refuse(func(t *Totals) { t.ExpiredRefusals++ }, "ProfileToken has expired: it must be imported within 5 minutes of its creation")
		return
	case s.used[c.Jti] != 0:
		// Single use: a token that imported once never imports again,
		// which is what makes a retry after a lost answer safe.
		refuse(func(t *Totals) { t.TokenReuseRefusals++ }, "ProfileToken has already been used")
		return
	}
	owner := c.OwnerId
	if c.OwnerType == OwnerTypeTempStUser {
		if body.NewOwnerId == nil || *body.NewOwnerId <= 0 {
			refuse(func(t *Totals) { t.OwnerRefusals++ }, "NewOwnerId is required to import a ProfileToken whose OwnerType is TempStUser")
			return
		}
		owner = *body.NewOwnerId
	}
	s.totals.Imports++
	id := len(s.profiles) + 1
	month, year := c.CcExpMonth, c.CcExpYear%100
	stamp := now.UTC().Format(time.RFC3339)
	p := PaymentProfile{
		PaymentProfileId: id, AcctToken: c.AcctToken, OwnerId: owner, OwnerTypeId: ownerTypeIDUser, AcctTypeId: 1,
		FirstName: c.FirstName, LastName: c.LastName, Address1: c.Address1, Address2: c.Address2, City: c.City,
		State: c.State, PostalCode: c.PostalCode, CountryCode: c.CountryCode, Last4: c.Last4,
		CcExpMonth: &month, CcExpYear: &year, IsTemp: true, CreatedUtc: stamp, ModifiedUtc: stamp,
	}
	s.profiles = append(s.profiles, p)
	s.refs[id] = c.ExternalRef
	s.used[c.Jti] = id
	if fwd != "" {
		s.fwd[id] = fwd
	}
	if !body.DoNotUpdatePaymentTypePreference {
		s.preferred[owner] = id
	}
	var then func()
	status := 0
	if g := &s.gateway; g.n > 0 {
		g.n--
		status = g.status
		s.totals.GatewayErrors++
		if g.n == 0 {
			then, g.then = g.then, nil
		}
	}
	s.mu.Unlock()
	if status != 0 {
		if then != nil {
			then()
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "<html><body><h1>"+strconv.Itoa(status)+" "+http.StatusText(status)+"</h1></body></html>\n")
		return
	}
	sandbox.WriteJSON(w, http.StatusOK, ImportResponse{Success: true, Message: "Payment profile imported", PaymentProfile: &p})
}

func (s *Sandbox) acctToken(jti string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("acct:" + jti))
	return "AT" + hex.EncodeToString(m.Sum(nil))
}

var b64 = base64.RawURLEncoding

const jwtHeader = `{"alg":"HS256","typ":"JWT"}`

func (s *Sandbox) sign(c claims) string {
	body, _ := json.Marshal(c)
	signing := b64.EncodeToString([]byte(jwtHeader)) + "." + b64.EncodeToString(body)
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(signing))
	return signing + "." + b64.EncodeToString(m.Sum(nil))
}

// verify checks the token's form and signature. Its messages never echo
// the token.
func (s *Sandbox) verify(tok string) (claims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return claims{}, errors.New("not a JWT")
	}
	hdr, err1 := b64.DecodeString(parts[0])
	sig, err2 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil {
		return claims{}, errors.New("not a JWT")
	}
	var h struct{ Alg string }
	if json.Unmarshal(hdr, &h) != nil || h.Alg != "HS256" {
		return claims{}, errors.New("unsupported signature algorithm")
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, m.Sum(nil)) {
		return claims{}, errors.New("signature check failed (not issued by the Vault API, or modified)")
	}
	raw, err := b64.DecodeString(parts[1])
	var c claims
	if err != nil || json.Unmarshal(raw, &c) != nil || c.Jti == "" {
		return claims{}, errors.New("unreadable claims")
	}
	return c, nil
}
