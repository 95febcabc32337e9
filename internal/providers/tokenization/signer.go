package tokenization

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Signer authenticates one attempt of a request. The platform takes Basic
// auth for testing and requires HMAC-SHA256 signing (nonce, timestamp,
// body hash) in production, so the scheme is a plug-in.
//
// Sign runs once per attempt, after every other header is set, so a retry
// gets a fresh nonce and timestamp; r.GetBody yields the body for schemes
// that hash it. It must not log or return what it adds.
type Signer interface {
	Sign(r *http.Request) error
}

// SignerFunc adapts a function to Signer.
type SignerFunc func(r *http.Request) error

func (f SignerFunc) Sign(r *http.Request) error { return f(r) }

// BasicSigner signs with the portal user's credentials. The returned value
// keeps them unexported, so printing it shows nothing secret.
func BasicSigner(username, password string) Signer {
	return basic{user: username, pass: password}
}

type basic struct{ user, pass string }

func (b basic) Sign(r *http.Request) error {
	r.SetBasicAuth(b.user, b.pass)
	return nil
}

func (b basic) String() string   { return "tokenization.BasicSigner(" + b.user + ", ***)" }
func (b basic) GoString() string { return b.String() }

// HMACOptions configure HMACSigner.
type HMACOptions struct {
	// Username goes into the header's username (most likely the portal
	// user for this API: unconfirmed).
	Username string
	// Secret is the shared secret. With SecretBase64 the key is its
	// base64 decoding (what the partner's generator script does:
	// unconfirmed); otherwise the secret's bytes are the key.
	Secret       string
	SecretBase64 bool
	// Now and Nonce are replaceable in tests; defaults: the clock and 16
	// random bytes in hex.
	Now   func() time.Time
	Nonce func() (string, error)
}

// HMACSigner signs as the Management API publishes:
//
//	Authorization: Hmac username="<user>", nonce="<nonce>", timestamp="<unix seconds>", response="<hex>"
//
// where response is the lowercase hex HMAC-SHA256, under the shared
// secret, of StringToSign. It reads the body once, hashes those bytes and
// sends exactly them.
func HMACSigner(o HMACOptions) (Signer, error) {
	if o.Username == "" || o.Secret == "" {
		return nil, errors.New("tokenization: HMAC signing needs a username and a secret")
	}
	if strings.ContainsAny(o.Username, "\",\\\r\n") {
		return nil, errors.New("tokenization: the HMAC username must not contain quotes, commas, backslashes or line breaks")
	}
	key := []byte(o.Secret)
	if o.SecretBase64 {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(o.Secret))
		if err != nil {
			// Never echo the secret, nor the decoder's byte offset into it.
			return nil, errors.New("tokenization: the HMAC secret is not valid base64 (set options.hmac_secret_encoding: raw to use it as it is)")
		}
		key = k
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Nonce == nil {
		o.Nonce = randomNonce
	}
	return &hmacSigner{user: o.Username, key: key, now: o.Now, nonce: o.Nonce}, nil
}

type hmacSigner struct {
	user  string
	key   []byte
	now   func() time.Time
	nonce func() (string, error)
}

func (h *hmacSigner) String() string   { return "tokenization.HMACSigner(" + h.user + ", ***)" }
func (h *hmacSigner) GoString() string { return h.String() }

func (h *hmacSigner) Sign(r *http.Request) error {
	body, err := takeBody(r)
	if err != nil {
		return err
	}
	nonce, err := h.nonce()
	if err != nil {
		return fmt.Errorf("tokenization: nonce: %w", err)
	}
	ts := strconv.FormatInt(h.now().Unix(), 10)
	resp := HMACResponse(h.key, StringToSign(r.Method, requestPath(r), nonce, ts, body))
	r.Header.Set("Authorization", `Hmac username="`+h.user+`", nonce="`+nonce+`", timestamp="`+ts+`", response="`+resp+`"`)
	return nil
}

// takeBody reads the request body once and puts those very bytes back as
// the body to send, so what is hashed is what goes on the wire.
func takeBody(r *http.Request) ([]byte, error) {
	var rc io.ReadCloser
	switch {
	case r.GetBody != nil:
		b, err := r.GetBody()
		if err != nil {
			return nil, fmt.Errorf("tokenization: body: %w", err)
		}
		rc = b
	case r.Body != nil && r.Body != http.NoBody:
		rc = r.Body
	default:
		return nil, nil
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("tokenization: body: %w", err)
	}
	if len(b) == 0 {
		r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
		return nil, nil
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r.ContentLength = int64(len(b))
	return b, nil
}

// requestPath is the path as it goes on the wire, without host, port or
// query.
func requestPath(r *http.Request) string {
	if p := r.URL.EscapedPath(); p != "" {
		return p
	}
	return "/"
}

// StringToSign is the published string: five lines joined by "\n" with no
// trailing newline: "<METHOD> <path>", the nonce, the timestamp, an empty
// line, and the lowercase hex SHA-256 of the body bytes (of "" when there
// is no body).
func StringToSign(method, path, nonce, timestamp string, body []byte) string {
	sum := sha256.Sum256(body)
	return strings.Join([]string{method + " " + path, nonce, timestamp, "", hex.EncodeToString(sum[:])}, "\n")
}

// HMACResponse is the lowercase hex HMAC-SHA256 of s under key.
func HMACResponse(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

func randomNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// HMACHeader is a parsed Hmac Authorization header.
type HMACHeader struct {
	Username, Nonce, Timestamp, Response string
}

// ParseHMACHeader reads `Hmac username="...", nonce="...",
// timestamp="...", response="..."`; every field is required, once.
func ParseHMACHeader(v string) (HMACHeader, bool) {
	rest, ok := strings.CutPrefix(v, "Hmac ")
	if !ok {
		return HMACHeader{}, false
	}
	var h HMACHeader
	fields := map[string]*string{"username": &h.Username, "nonce": &h.Nonce, "timestamp": &h.Timestamp, "response": &h.Response}
	seen := map[string]bool{}
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		dst, known := fields[k]
		if !ok || !known || seen[k] || len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
			return HMACHeader{}, false
		}
		seen[k] = true
		*dst = val[1 : len(val)-1]
	}
	if len(seen) != len(fields) {
		return HMACHeader{}, false
	}
	return h, true
}
