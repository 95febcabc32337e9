package extract

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/gen"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/pgtest"
	"github.com/northwind-data/etl/internal/transform"
)

// The fingerprint's layout, spelt out once: a change to it is a
// decision (every customer compared in full once), not an accident.
func TestFingerprintLayout(t *testing.T) {
	f := newFingerprinter([]byte("golden-key"), fpSourcePostgres, []string{"customer_id", "first_name"}, []string{"card_id", "cvv", "pan"})
	got := f.sum(&rowMeta{cols: []string{"C1", `Ada, "the" first`}}, []fpRow{&rowMeta{cols: []string{"K1", "123", "4111111111111111"}}})

	k := hmac.New(sha256.New, []byte("golden-key"))
	k.Write([]byte("etl customer fingerprint v2 postgres\x00customer_id\x1ffirst_name\x1f\x1ecard_id\x1fcvv\x1fpan\x1f\x1e"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(`C1,"Ada, ""the"" first"` + "\n")) // quoted: it holds a comma and quotes
	m.Write([]byte("K1,,4111111111111111\n"))         // the CVV empty
	if want := m.Sum(nil); !bytes.Equal(got, want) {
		t.Errorf("fingerprint %x, want %x", got, want)
	}
}

// fpCall is one fingerprint as fingerprintTrace saw it.
type fpCall struct {
	source string
	rows   [][]string
}

// traceFingerprints records every fingerprint's inputs by customer id
// for the duration of the test.
func traceFingerprints(t *testing.T) func() map[string][]fpCall {
	var mu sync.Mutex
	calls := map[string][]fpCall{}
	fingerprintTrace = func(source string, input []byte) {
		rows := readCanonical(t, input)
		mu.Lock()
		defer mu.Unlock()
		calls[rows[0][0]] = append(calls[rows[0][0]], fpCall{source, rows})
	}
	t.Cleanup(func() { fingerprintTrace = nil })
	return func() map[string][]fpCall {
		mu.Lock()
		defer mu.Unlock()
		out := calls
		calls = map[string][]fpCall{}
		return out
	}
}

// fastRead reads src through its fast path (nothing skipped) and returns
// the fingerprints it asked about.
func fastRead(t *testing.T, read func(*FastPath) error) map[string][]byte {
	t.Helper()
	sums := map[string][]byte{}
	var mu sync.Mutex
	fp := &FastPath{Key: []byte("one-key"), Unchanged: func(_ context.Context, ids []string, s [][]byte) ([]bool, error) {
		mu.Lock()
		defer mu.Unlock()
		for i, id := range ids {
			sums[id] = s[i]
		}
		return make([]bool, len(ids)), nil
	}}
	if err := read(fp); err != nil {
		t.Fatal(err)
	}
	return sums
}

// The CSV and the Postgres source fingerprint a customer with one
// function, fed the same inputs (the row values, CVV blanked), and only
// the source label and column names in its key tell them apart: the
// same customer has another fingerprint from each source, on purpose.
func TestCSVAndPostgresShareTheFingerprint(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	if _, err := gen.Write(dir, gen.Options{Customers: 40, CardsPerCustomer: 1.5, Seed: 9, Sorted: true, Now: now}); err != nil {
		t.Fatal(err)
	}
	v := transform.NewValidator([]byte("k"), now)
	nop := func(*model.Customer) error { return nil }
	nopR := func(model.Reject) error { return nil }
	calls := traceFingerprints(t)

	var header [2][]string
	csvSums := fastRead(t, func(fp *FastPath) error {
		src, err := OpenCSV(dir, Options{Validator: v, FastPath: fp})
		if err != nil {
			return err
		}
		for i, spec := range []*fileSpec{customerSpec, cardSpec} {
			cf, err := openFile(dir, spec)
			if err != nil {
				return err
			}
			cf.f.Close()
			header[i] = cf.header
		}
		_, err = src.Read(context.Background(), nop, nopR)
		return err
	})
	csvCalls := calls()

	url, _ := pgtest.BankTables(t, dir)
	pgSums := fastRead(t, func(fp *FastPath) error {
		src, err := OpenPostgres(context.Background(), PostgresOptions{Options: Options{Validator: v, FastPath: fp},
			URL: url, Customers: "bank.customers", Cards: "bank.cards"})
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = src.Read(context.Background(), nop, nopR)
		return err
	})
	pgCalls := calls()

	var specCols [2][]string
	for i, spec := range []*fileSpec{customerSpec, cardSpec} {
		for _, c := range spec.columns {
			specCols[i] = append(specCols[i], c.name)
		}
	}
	if !slices.Equal(header[0], specCols[0]) || !slices.Equal(header[1], specCols[1]) {
		t.Fatalf("the generated headers are not in the row structs' order; the test compares values by position")
	}
	cvv := indexOf(specCols[1], "cvv")
	if len(csvCalls) != 40 || len(pgCalls) != 40 {
		t.Fatalf("fingerprinted %d customers from CSV and %d from Postgres, want 40 each", len(csvCalls), len(pgCalls))
	}
	csvF := newFingerprinter([]byte("one-key"), fpSourceCSV, header[0], header[1])
	pgF := newFingerprinter([]byte("one-key"), fpSourcePostgres, specCols[0], specCols[1])
	for id, cc := range csvCalls {
		pc := pgCalls[id]
		if len(cc) != 1 || len(pc) != 1 || cc[0].source != fpSourceCSV || pc[0].source != fpSourcePostgres {
			t.Fatalf("%s: fingerprinted as %v from CSV, %v from Postgres; want once each", id, cc, pc)
		}
		if !reflect.DeepEqual(cc[0].rows, pc[0].rows) {
			t.Errorf("%s: the sources fed the fingerprint other values:\nCSV      %q\nPostgres %q", id, cc[0].rows, pc[0].rows)
		}
		for _, card := range cc[0].rows[1:] {
			if card[cvv] != "" {
				t.Errorf("%s: a CVV went into the fingerprint", id)
			}
		}
		if len(cc[0].rows) < 2 {
			continue
		}
		// The sums asked about are this function's of these inputs.
		cust := &rowMeta{cols: cc[0].rows[0]}
		var rows []fpRow
		for _, r := range cc[0].rows[1:] {
			rows = append(rows, &rowMeta{cols: r})
		}
		if !bytes.Equal(csvF.sum(cust, rows), csvSums[id]) || !bytes.Equal(pgF.sum(cust, rows), pgSums[id]) {
			t.Errorf("%s: the fingerprint asked about is not the shared function's", id)
		}
		if bytes.Equal(csvSums[id], pgSums[id]) {
			t.Errorf("%s: the CSV and Postgres fingerprints are equal; a source switch must compare in full", id)
		}
	}
}
