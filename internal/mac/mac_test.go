package mac_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"

	"github.com/northwind-data/etl/internal/mac"
)

func want(key []byte, data string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return hex.EncodeToString(m.Sum(nil))
}

// Pooled states must give exactly what a fresh hmac.New gives, whatever was
// hashed before under the same or another key, from many goroutines.
func TestPooledStatesMatchAFreshHMAC(t *testing.T) {
	keys := [][]byte{[]byte("run key"), []byte("another key"), {}, []byte("run key")}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				key := keys[(g+i)%len(keys)]
				data := fmt.Sprintf("4111111111111111/%d/%d", g, i)
				if got, w := mac.HexString(key, data), want(key, data); got != w {
					errs <- fmt.Sprintf("HexString(%q, %q) = %s, want %s", key, data, got, w)
					return
				}
				if got, w := mac.Hex(key, []byte(data)), want(key, data); got != w {
					errs <- fmt.Sprintf("Hex(%q, %q) = %s, want %s", key, data, got, w)
					return
				}
				// A state written in parts and summed into a caller's buffer.
				m := mac.Get(key)
				m.WriteString(data[:5])
				m.Write([]byte(data[5:]))
				got := hex.EncodeToString(m.Sum([]byte("prefix"))[len("prefix"):])
				m.Put()
				if w := want(key, data); got != w {
					errs <- fmt.Sprintf("Get/Write/Sum(%q, %q) = %s, want %s", key, data, got, w)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// A state handed back without being summed (an error path) must not leak
// its half-written message into the next caller's sum.
func TestPutDiscardsWhatWasWritten(t *testing.T) {
	key := []byte("k")
	for i := 0; i < 100; i++ {
		m := mac.Get(key)
		m.WriteString("left over")
		m.Put()
		if got, w := mac.HexString(key, "x"), want(key, "x"); got != w {
			t.Fatalf("after an abandoned state: %s, want %s", got, w)
		}
	}
}
