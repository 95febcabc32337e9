package clubready_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/providers/clubready"
	"github.com/northwind-data/etl/internal/providers/providertest"
)

// The vault and the import API are one partner: concurrency bounds their
// requests together, however many workers call Send at once. In a
// synctest bubble with an in-process transport, each request takes 20 ms
// of fake time, so separate bounds would overlap vault and import calls
// for certain.
func TestVaultAndImportShareConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var flight providertest.InFlight
		var vault, imports atomic.Int32
		sb := clubready.NewSandbox(clubready.SandboxOptions{ApiKey: apiKey, VaultKey: vaultKey, Clock: providertest.Clock(), SigningKey: signingKey})
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, done := flight.Enter()
			defer done()
			if r.URL.Path == clubready.VaultPath {
				vault.Add(1)
			} else {
				imports.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
			sb.ServeHTTP(w, r)
		})
		hc := providertest.FastHTTP()
		hc.Concurrency = 3
		hc.Transport = inProcess{h}
		c, err := clubready.New(clubready.Config{BaseURL: "http://clubready.test", ApiKey: apiKey, VaultURL: "http://clubready.test", VaultKey: vaultKey,
			ForwardedFor: fwdIP, HTTP: hc})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				cu := customer(fmt.Sprintf("C%03d", i))
				var j noteJournal
				for _, r := range c.Send(context.Background(), ops(t, c, cu), &j) {
					if r.Outcome != partner.OK {
						t.Errorf("%s: %s %v", r.EntityKey, r.Outcome, r.Err)
					}
				}
			})
		}
		wg.Wait()
		if got := flight.Peak(); got != 3 {
			t.Errorf("peak requests in flight over the vault and the import API %d, want the concurrency, 3", got)
		}
		if vault.Load() == 0 || imports.Load() == 0 {
			t.Errorf("vault %d, imports %d: want both", vault.Load(), imports.Load())
		}
	})
}

// inProcess serves requests in the bubble (a loopback socket would not
// be durably blocking and would stall fake time).
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

type noteJournal struct{ n atomic.Int32 }

func (j *noteJournal) Note(context.Context, partner.Op, string) error { j.n.Add(1); return nil }
