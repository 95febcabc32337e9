package clubready

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/redact"
)

// Vault stores a card and answers with the single-use ProfileToken that
// the import consumes. The Vault API's card-creation call is not public:
// HTTPVault is our assumed version, and the real vault client replaces it
// through Config.Vault. Errors must never carry card data; an
// *httpx.Error lets the client tell rejected, fatal and retryable apart.
type Vault interface {
	CreateProfile(ctx context.Context, req VaultRequest) (VaultToken, error)
}

// VaultToken is the vault's answer. AcctToken "should not be stored for
// long-term use": the client never records it.
type VaultToken struct {
	ProfileToken string
	AcctToken    string
	Expires      time.Time // from the token's exp claim; zero if unknown
}

// VaultConfig configures HTTPVault.
type VaultConfig struct {
	BaseURL string // the vault host (www.clubreadygateway.com in production)
	Key     string // sent as "Authorization: Bearer <Key>" (assumed)
	HTTP    httpx.Config
}

// HTTPVault creates payment methods with POST {BaseURL}/vault/profiles
// (assumed shape, see docs/partners/clubready.md).
type HTTPVault struct {
	http *httpx.Client
	key  string
}

var _ Vault = (*HTTPVault)(nil)

// NewHTTPVault checks the configuration before any call is made.
func NewHTTPVault(cfg VaultConfig) (*HTTPVault, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("clubready: no vault URL configured (partners.clubready.options.vault_url)")
	}
	if cfg.Key == "" {
		return nil, errors.New("clubready: no vault key configured (partners.clubready.credentials.vault_key)")
	}
	h := cfg.HTTP
	h.Partner, h.BaseURL = Name, cfg.BaseURL
	key, sign := cfg.Key, cfg.HTTP.Sign
	h.Sign = func(r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+key)
		if sign != nil {
			return sign(r)
		}
		return nil
	}
	hc, err := httpx.New(h, decodeError)
	if err != nil {
		return nil, err
	}
	return &HTTPVault{http: hc, key: cfg.Key}, nil
}

// HTTP exposes the underlying client (breaker state for metrics).
func (v *HTTPVault) HTTP() *httpx.Client { return v.http }

// CreateProfile stores the card. The call is marked idempotent: a payment
// method the vault created but whose token we never received is not in
// ClubReady until imported, and its token expires unused in five minutes,
// so a resend cannot give the member a second card.
func (v *HTTPVault) CreateProfile(ctx context.Context, req VaultRequest) (VaultToken, error) {
	op := "POST " + VaultPath
	body, err := json.Marshal(req)
	if err != nil {
		return VaultToken{}, &httpx.Error{Partner: Name, Op: op, Kind: httpx.Fatal, Code: "encode", Message: "cannot encode the vault request"}
	}
	resp, err := v.http.Do(ctx, httpx.Request{Method: http.MethodPost, Path: VaultPath, Body: body, Idempotent: true})
	if err != nil {
		return VaultToken{}, scrub(err, req, v.key)
	}
	var ans VaultResponse
	if json.Unmarshal(resp.Body, &ans) != nil || ans.ProfileToken == "" {
		return VaultToken{}, &httpx.Error{Partner: Name, Op: op, Kind: httpx.Retryable, Status: resp.Status, Code: "bad_response",
			Message: "vault answer carries no ProfileToken"}
	}
	tok := VaultToken{ProfileToken: ans.ProfileToken, AcctToken: ans.AcctToken}
	if exp, err := TokenExpiry(ans.ProfileToken); err == nil {
		tok.Expires = exp
	}
	return tok, nil
}

// TokenExpiry reads the exp claim of a ProfileToken without checking the
// signature: the doc says the token may be parsed but its public key is
// not available (and its format may change, hence the error path).
func TokenExpiry(token string) (time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, errors.New("clubready: ProfileToken is not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, errors.New("clubready: ProfileToken payload is not base64url")
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.Exp == nil {
		return time.Time{}, errors.New("clubready: ProfileToken has no exp claim")
	}
	f, err := claims.Exp.Float64()
	if err != nil || f <= 0 {
		return time.Time{}, errors.New("clubready: ProfileToken exp claim is not a number")
	}
	return time.Unix(int64(f), 0).UTC(), nil
}

// decodeError reads ServiceStack's {ResponseStatus:{ErrorCode, Message,
// Errors[]}} (FACTS.md: likely, unconfirmed), or a response DTO's
// {Success:false, Message}. Anything else falls back to the status text,
// never to the raw body, which might echo the request.
func decodeError(status int, body []byte) (code, message string) {
	var e struct {
		ResponseStatus *ResponseStatus `json:"ResponseStatus"`
		Message        string          `json:"Message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return "", http.StatusText(status)
	}
	if rs := e.ResponseStatus; rs != nil && (rs.ErrorCode != "" || rs.Message != "" || len(rs.Errors) > 0) {
		msg := joinMessages(e.Message, statusMessage(*rs))
		if msg == "" {
			msg = http.StatusText(status)
		}
		return rs.ErrorCode, redact.Text(msg)
	}
	if e.Message != "" {
		return "", redact.Text(e.Message)
	}
	return "", http.StatusText(status)
}

// scrub removes this request's own card number and code, and the vault
// key, from a partner message: the generic masking cannot recognise a
// three-digit code.
func scrub(err error, req VaultRequest, key string) error {
	var he *httpx.Error
	if !errors.As(err, &he) || he.Message == "" {
		return err
	}
	msg := he.Message
	if req.CardNumber != "" {
		msg = strings.ReplaceAll(msg, req.CardNumber, model.NewPAN(req.CardNumber).Masked())
	}
	if key != "" {
		msg = strings.ReplaceAll(msg, key, "[key]")
	}
	if req.Cvv != "" {
		msg = regexp.MustCompile(`\b`+regexp.QuoteMeta(req.Cvv)+`\b`).ReplaceAllString(msg, "***")
	}
	if msg == he.Message {
		return err
	}
	cp := *he
	cp.Message = msg
	return &cp
}
