package load_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/providers/datafeed"
)

// fastSource is what the CSV fast path does, over canonical customers:
// ask Unchanged about every fingerprinted customer, emit the others.
func fastSource(e *load.Engine, cs []*model.Customer) load.Source {
	return load.SourceFunc(func(ctx context.Context, emit func(*model.Customer) error, _ func(model.Reject) error) error {
		var ids []string
		var sums [][]byte
		for _, c := range cs {
			ids = append(ids, c.ID)
			sums = append(sums, c.Fingerprint)
		}
		skip, err := e.Unchanged(ctx, ids, sums)
		if err != nil {
			return err
		}
		for i, c := range cs {
			if !skip[i] {
				cp := *c
				if err := emit(&cp); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func fingerprinted(cs []*model.Customer, version byte) []*model.Customer {
	for _, c := range cs {
		c.Fingerprint = []byte{version, c.ID[len(c.ID)-1]}
	}
	return cs
}

func (h *harness) fingerprints(t *testing.T) map[string][]byte {
	t.Helper()
	rows, err := h.store.Pool().Query(context.Background(), `SELECT customer_id, fingerprint FROM customer_fingerprints`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var id string
		var fp []byte
		if err := rows.Scan(&id, &fp); err != nil {
			t.Fatal(err)
		}
		out[id] = fp
	}
	return out
}

func (h *harness) runFast(t *testing.T, cs []*model.Customer) *load.Summary {
	t.Helper()
	return h.runSource(t, fastSource(h.eng, cs))
}

// A fingerprint is recorded once the partner has the customer, lets the
// next run skip it whole, and is forgotten before a call that may change
// what the partner holds, even when that call then fails.
func TestFingerprintsSkipUnchangedAndAreForgottenBeforeACall(t *testing.T) {
	h := newHarness(t)
	h.with(t, load.WithFingerprintScope("scope-1"))
	cs := fingerprinted(makeCustomers(60), 1)

	sum := h.runFast(t, cs)
	if c := sum.Providers["datafeed"]; c.OK != 60 {
		t.Fatalf("first run: %+v", c)
	}
	if fps := h.fingerprints(t); len(fps) != 60 {
		t.Fatalf("%d fingerprints after delivering 60 customers", len(fps))
	}

	sum = h.runFast(t, cs)
	if c := sum.Providers["datafeed"]; c.Unchanged != 60 || c.Calls != 0 || sum.Compared != 0 {
		t.Fatalf("unchanged rerun: compared %d, %+v", sum.Compared, c)
	}

	// Another scope (a new binary, other partners, a new month) vouches
	// for nothing: everything is compared in full, nothing sent, and the
	// fingerprints are recorded for the new scope.
	h.with(t, load.WithFingerprintScope("scope-2"))
	sum = h.runFast(t, cs)
	if c := sum.Providers["datafeed"]; c.Unchanged != 60 || c.Calls != 0 || sum.Compared != 60 {
		t.Fatalf("new scope: compared %d, %+v", sum.Compared, c)
	}

	// C0007 changes while the partner is down: its old fingerprint is gone
	// (the failed call might have landed), and no new one is recorded.
	cs[7].Address.PostalCode = "10001"
	cs[7].Fingerprint = []byte{2, '7'}
	down := httptest.NewServer(nil)
	down.Close()
	cl, err := datafeed.New(datafeed.Config{BaseURL: down.URL, Token: "tok", HTTP: httpx.Config{MaxAttempts: 1, BackoffBase: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	up := h.providers
	h.use(t, cl)
	sum = h.runFast(t, cs)
	if c := sum.Providers["datafeed"]; c.Update != 1 || c.Failed != 1 || sum.Compared != 1 {
		t.Fatalf("changed customer, partner down: compared %d, %+v", sum.Compared, c)
	}
	if _, ok := h.fingerprints(t)["C0007"]; ok {
		t.Fatal("C0007's fingerprint survived a call that may have changed what the partner holds")
	}

	// The partner is back: the update lands and the new fingerprint is
	// recorded; everyone else was skipped.
	h.use(t, up...)
	sum = h.runFast(t, cs)
	if c := sum.Providers["datafeed"]; c.Update != 1 || c.OK != 1 || c.Unchanged != 59 || sum.Compared != 1 {
		t.Fatalf("partner back: compared %d, %+v", sum.Compared, c)
	}
	if fp := h.fingerprints(t)["C0007"]; !bytes.Equal(fp, []byte{2, '7'}) {
		t.Fatalf("C0007's fingerprint after delivery: %v", fp)
	}
}
