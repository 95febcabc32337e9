package tokenization

import "net/http"

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
