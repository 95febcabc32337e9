package extract_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/northwind-data/etl/internal/extract"
	"github.com/northwind-data/etl/internal/gen"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/transform"
)

// asker is an Unchanged that records every question and skips the
// customers it is told to.
type asker struct {
	mu    sync.Mutex
	ids   []string
	sums  map[string][]byte
	skip  func(id string) bool
	calls int
}

func (a *asker) fastPath() *extract.FastPath {
	return &extract.FastPath{Key: []byte("fp-key"), Batch: 7, Unchanged: func(_ context.Context, ids []string, sums [][]byte) ([]bool, error) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.calls++
		if a.sums == nil {
			a.sums = map[string][]byte{}
		}
		out := make([]bool, len(ids))
		for i, id := range ids {
			a.ids = append(a.ids, id)
			a.sums[id] = sums[i]
			out[i] = a.skip != nil && a.skip(id)
		}
		return out, nil
	}}
}

func summary(t *testing.T, res result) (cs, rs []string) {
	for _, c := range res.customers {
		cs = append(cs, canonical(t, c))
	}
	for _, r := range res.rejects {
		rs = append(rs, fmt.Sprintf("%s %s:%d %s %s", r.EntityKey, r.Origin.File, r.Origin.Line, r.Field, r.Reason))
	}
	slices.Sort(cs)
	slices.Sort(rs)
	return cs, rs
}

// The fast path with nothing to skip reads exactly what the merge join
// reads: the same customers, rejects (with their lines) and counts.
func TestFastPathReadsWhatTheMergeJoinReads(t *testing.T) {
	dir := t.TempDir()
	if _, err := gen.Write(dir, gen.Options{Customers: 300, CardsPerCustomer: 1.7, BadFraction: 0.2, Seed: 4, Sorted: true, Now: now}); err != nil {
		t.Fatal(err)
	}
	plain, err := read(t, dir, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var a asker
	fast, err := read(t, dir, extract.Options{FastPath: a.fastPath()})
	if err != nil {
		t.Fatal(err)
	}
	checkAccounting(t, fast)
	if a.calls == 0 {
		t.Fatal("the fast path was not taken on sorted, plain input")
	}
	sameRead(t, plain, fast)
	if !slices.IsSorted(a.ids) {
		t.Error("Unchanged was not asked in ascending id order")
	}

	checkFingerprints(t, fast, a.sums)
}

// sameRead checks that the fast path read what the full read did: the
// same customers, the same rejects (with their lines) and the same counts.
func sameRead(t *testing.T, full, fast result) {
	t.Helper()
	wc, wr := summary(t, full)
	gc, gr := summary(t, fast)
	if !slices.Equal(wc, gc) || !slices.Equal(wr, gr) {
		t.Errorf("the fast path read other customers (%d vs %d) or rejects (%d vs %d)", len(gc), len(wc), len(gr), len(wr))
	}
	if fmt.Sprint(full.stats) != fmt.Sprint(fast.stats) {
		t.Errorf("stats: full read %+v, fast path %+v", full.stats, fast.stats)
	}
}

// checkFingerprints checks that a customer with any reject carries no
// fingerprint (so it is read in full, and its rejects reported, every
// run) and every other one carries the one it was asked about. It
// returns the ids with rejects.
func checkFingerprints(t *testing.T, res result, asked map[string][]byte) map[string]bool {
	t.Helper()
	rejected := map[string]bool{}
	for _, r := range res.rejects {
		if id := strings.Split(strings.TrimPrefix(strings.TrimPrefix(r.EntityKey, "customer/"), "card/"), "/")[0]; id != "" {
			rejected[id] = true
		}
	}
	with := 0
	for _, c := range res.customers {
		switch {
		case rejected[c.ID] && c.Fingerprint != nil:
			t.Errorf("%s had rejects but carries a fingerprint", c.ID)
		case !rejected[c.ID] && c.Fingerprint == nil:
			t.Errorf("%s had no rejects but carries no fingerprint", c.ID)
		case c.Fingerprint != nil:
			with++
			if !bytes.Equal(c.Fingerprint, asked[c.ID]) {
				t.Errorf("%s: emitted fingerprint is not the one asked about", c.ID)
			}
		}
	}
	if with == 0 || len(rejected) == 0 {
		t.Fatal("the input had no clean or no rejected customers: the test proves nothing")
	}
	return rejected
}

// Skipped customers are not emitted, and still counted as read rows.
func TestFastPathSkipsWhatUnchangedSkips(t *testing.T) {
	dir := t.TempDir()
	if _, err := gen.Write(dir, gen.Options{Customers: 200, CardsPerCustomer: 1.5, Seed: 5, Sorted: true, Now: now}); err != nil {
		t.Fatal(err)
	}
	plain, err := read(t, dir, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := asker{skip: func(id string) bool { return id[len(id)-1] != '7' }}
	fast, err := read(t, dir, extract.Options{FastPath: a.fastPath()})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range fast.customers {
		if a.skip(c.ID) {
			t.Errorf("%s was skipped but emitted", c.ID)
		}
	}
	want := 0
	for _, c := range plain.customers {
		if !a.skip(c.ID) {
			want++
		}
	}
	if len(fast.customers) != want || want == 0 {
		t.Errorf("emitted %d customers, want %d", len(fast.customers), want)
	}
	if fmt.Sprint(plain.stats) != fmt.Sprint(fast.stats) {
		t.Errorf("stats: merge %+v, fast %+v", plain.stats, fast.stats)
	}
}

// A fingerprint changes with any change to the customer's rows except
// the CVV, which is not kept in any form; other customers' stay.
func TestFingerprintCoversTheRowsButNotTheCVV(t *testing.T) {
	base := []string{cust("C1"), cust("C2")}
	cards := []string{card("C1", "K1", "4111111111111111"), card("C2", "K2", "5555555555554444")}
	sums := func(cs, ks []string) map[string][]byte {
		var a asker
		if _, err := read(t, writeDir(t, lines(append([]string{custHdr}, cs...)...), lines(append([]string{cardHdr}, ks...)...)),
			extract.Options{FastPath: a.fastPath()}); err != nil {
			t.Fatal(err)
		}
		return a.sums
	}
	orig := sums(base, cards)
	if len(orig) != 2 {
		t.Fatalf("asked about %d customers, want 2", len(orig))
	}
	for _, c := range []struct {
		name    string
		cs, ks  []string
		changed bool
	}{
		{"same rows", base, cards, false},
		{"cvv", base, []string{strings.Replace(cards[0], ","+cvv+",", ",123,", 1), cards[1]}, false},
		{"email", []string{strings.Replace(base[0], "c1@", "c1x@", 1), base[1]}, cards, true},
		{"pan", base, []string{strings.Replace(cards[0], "4111111111111111", "4012888888881881", 1), cards[1]}, true},
		{"expiry", base, []string{strings.Replace(cards[0], ",12,2030,", ",11,2030,", 1), cards[1]}, true},
		{"another card", base, []string{cards[0], card("C1", "K9", "378282246310005"), cards[1]}, true},
	} {
		got := sums(c.cs, c.ks)
		if !bytes.Equal(got["C2"], orig["C2"]) {
			t.Errorf("%s: C2's fingerprint changed with C1's rows", c.name)
		}
		if changed := !bytes.Equal(got["C1"], orig["C1"]); changed != c.changed {
			t.Errorf("%s: C1's fingerprint changed = %v, want %v", c.name, changed, c.changed)
		}
	}
}

// Input the splitter leaves to encoding/csv (a bare quote here) is read
// the ordinary way: nothing is asked, nothing skipped, nothing lost.
func TestIrregularInputTakesTheOrdinaryPath(t *testing.T) {
	dir := writeDir(t, lines(custHdr, cust("C1"), `C2,Ada "the",Lovelace,c2@example.com,78753,US,2020-01-01,1980-01-01`), lines(cardHdr, card("C1", "K1", "4111111111111111")))
	a := asker{skip: func(string) bool { return true }}
	res, err := read(t, dir, extract.Options{FastPath: a.fastPath()})
	if err != nil {
		t.Fatal(err)
	}
	checkAccounting(t, res)
	if a.calls != 0 || len(res.customers) != 1 || len(res.rejects) != 1 {
		t.Errorf("asked %d times, %d customers, %d rejects; want 0, 1, 1", a.calls, len(res.customers), len(res.rejects))
	}
}

// A file that stops being sorted between the scan and the read (the
// export was rewritten under the run) stops the read with an error that
// names the file and line.
func TestFastPathSourceChangedWhileRead(t *testing.T) {
	dir := writeDir(t, lines(custHdr, cust("C1"), cust("C2"), cust("C3")), lines(cardHdr))
	src, err := extract.OpenCSV(dir, extract.Options{Validator: transform.NewValidator(nil, now), FastPath: (&asker{}).fastPath()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Count(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "customers.csv"), []byte(lines(custHdr, cust("C2"), cust("C1"))), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = src.Read(context.Background(), func(*model.Customer) error { return nil }, func(model.Reject) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "customers.csv:3") || !strings.Contains(err.Error(), "changed while it was read") {
		t.Errorf("err = %v, want customers.csv:3 ... changed while it was read", err)
	}
}
