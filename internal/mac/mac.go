// Package mac computes HMAC-SHA256 under the run's secret key.
//
// A run hashes several values per customer under the one key (card
// fingerprints, content hashes, idempotency keys), and hmac.New costs two
// fresh SHA-256 states and the key schedule each time: about a microsecond
// and half a kilobyte of garbage per value. Keyed states are pooled per key
// and Reset instead, which restores the precomputed inner state.
package mac

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
	"sync/atomic"
	"unsafe"
)

// MAC is one keyed HMAC-SHA256 state from the pool. It is not safe for
// concurrent use; Put returns it.
type MAC struct {
	h    hash.Hash
	pool *sync.Pool
}

type keyed struct {
	key  []byte
	pool *sync.Pool
}

// last is the pool of the key seen last: a process normally has one key,
// so a lookup is one comparison. A different key replaces it (tests use
// several); states already handed out go back to their own pool.
var last atomic.Pointer[keyed]

// Get returns a MAC keyed with key, reset.
func Get(key []byte) *MAC {
	k := last.Load()
	if k == nil || !bytes.Equal(k.key, key) {
		k = &keyed{key: bytes.Clone(key)}
		kk := k.key
		k.pool = &sync.Pool{New: func() any { return &MAC{h: hmac.New(sha256.New, kk)} }}
		last.Store(k)
	}
	m := k.pool.Get().(*MAC)
	m.pool = k.pool
	return m
}

// Put resets m and returns it to its pool; m must not be used after.
// Resetting here, not in Get, leaves no message bytes (a card number,
// say) in the pooled state.
func (m *MAC) Put() {
	m.h.Reset()
	m.pool.Put(m)
}

func (m *MAC) Write(p []byte) (int, error) { return m.h.Write(p) }

// WriteString writes s without copying it: a hash's Write, like every
// io.Writer's, neither modifies nor retains its argument.
func (m *MAC) WriteString(s string) {
	m.h.Write(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// Sum appends the MAC of what was written to dst.
func (m *MAC) Sum(dst []byte) []byte { return m.h.Sum(dst) }

// Hex is the lowercase hex HMAC-SHA256 of data under key.
func Hex(key, data []byte) string {
	m := Get(key)
	m.Write(data)
	return m.hexPut()
}

// HexString is Hex of a string, without copying it to a byte slice.
func HexString(key []byte, data string) string {
	m := Get(key)
	m.WriteString(data)
	return m.hexPut()
}

// hexPut sums, returns m to its pool and encodes.
func (m *MAC) hexPut() string {
	s := m.Sum(nil)
	m.Put()
	return hex.EncodeToString(s)
}
