package extract_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/extract"
	"github.com/northwind-data/etl/internal/gen"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/transform"
)

// canonical prints a customer without its origin (line numbers differ
// between orderings) or fingerprint for comparison.
func canonical(t *testing.T, c *model.Customer) string {
	t.Helper()
	cp := *c
	cp.Origin = model.Origin{}
	cp.Fingerprint = nil
	cp.Accounts = slices.Clone(c.Accounts)
	for i := range cp.Accounts {
		cp.Accounts[i].Cards = slices.Clone(cp.Accounts[i].Cards)
		for j := range cp.Accounts[i].Cards {
			cp.Accounts[i].Cards[j].Origin = model.Origin{}
		}
	}
	b, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSortedAndUnsortedGiveTheSameCustomers(t *testing.T) {
	opt := gen.Options{Customers: 400, CardsPerCustomer: 1.5, BadFraction: 0.2, Seed: 9, Now: now}
	sortedDir, unsortedDir := t.TempDir(), t.TempDir()
	opt.Sorted = true
	st, err := gen.Write(sortedDir, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Sorted = false
	if _, err := gen.Write(unsortedDir, opt); err != nil {
		t.Fatal(err)
	}

	type run struct {
		name string
		dir  string
		opt  extract.Options
	}
	var outs [][]string
	var rejs [][]string
	for _, r := range []run{
		{"sorted", sortedDir, extract.Options{}},
		{"unsorted, one pass", unsortedDir, extract.Options{}},
		{"unsorted, many passes", unsortedDir, extract.Options{PartitionRows: 37}},
	} {
		res, err := read(t, r.dir, r.opt)
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		checkAccounting(t, res)
		fs := res.stats.Files
		if fs[0].Rows != st.CustomerRows || fs[0].Rejected != st.BadCustomerRows || fs[1].Rows != st.CardRows || fs[1].Rejected != st.BadCardRows {
			t.Errorf("%s: stats %+v, generator wrote %+v", r.name, res.stats, st)
		}
		var cs []string
		for _, c := range res.customers {
			cs = append(cs, canonical(t, c))
		}
		slices.Sort(cs)
		outs = append(outs, cs)
		var rs []string
		for _, x := range res.rejects {
			rs = append(rs, x.EntityKey+" "+x.Field+" "+x.Reason)
		}
		slices.Sort(rs)
		rejs = append(rejs, rs)
	}
	if len(outs[0]) == 0 || len(rejs[0]) == 0 {
		t.Fatal("the generated input produced no customers or no rejects: the test proves nothing")
	}
	for i := 1; i < len(outs); i++ {
		if !slices.Equal(outs[0], outs[i]) {
			t.Errorf("run %d emitted other customers than the sorted run", i)
		}
		if !slices.Equal(rejs[0], rejs[i]) {
			t.Errorf("run %d rejected other records than the sorted run", i)
		}
	}
	for _, want := range []string{model.ReasonBadEmail, model.ReasonLuhn, model.ReasonExpired, model.ReasonUnknownCustomer, model.ReasonDuplicateKey, model.ReasonMissingField, model.ReasonCustomerReject} {
		if !slices.ContainsFunc(rejs[0], func(s string) bool { return strings.HasSuffix(s, " "+want) }) {
			t.Errorf("generated defects never produced %s", want)
		}
	}
}

// BenchmarkReadCSV reads 10k generated customers: "merge" decodes every
// row (gocsv, validation), "fast-path-new" is a first run through the
// fast path (every customer fingerprinted, asked about and decoded),
// "fast-path-unchanged" the nightly rerun (every clean customer skipped
// before decoding). Compare the three in one run.
func BenchmarkReadCSV(b *testing.B) {
	dir := b.TempDir()
	if _, err := gen.Write(dir, gen.Options{Customers: 10_000, CardsPerCustomer: 1.5, BadFraction: 0.02, Seed: 1, Sorted: true, Now: now}); err != nil {
		b.Fatal(err)
	}
	v := transform.NewValidator([]byte("bench"), now)
	for _, c := range []struct {
		name string
		fast *extract.FastPath
	}{
		{"merge", nil},
		{"fast-path-new", &extract.FastPath{Key: []byte("k"), Unchanged: func(_ context.Context, ids []string, _ [][]byte) ([]bool, error) {
			return make([]bool, len(ids)), nil
		}}},
		{"fast-path-unchanged", &extract.FastPath{Key: []byte("k"), Unchanged: func(_ context.Context, ids []string, _ [][]byte) ([]bool, error) {
			skip := make([]bool, len(ids))
			for i := range skip {
				skip[i] = true
			}
			return skip, nil
		}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			total := 0
			for i := 0; i < b.N; i++ {
				src, err := extract.OpenCSV(dir, extract.Options{Validator: v, FastPath: c.fast})
				if err != nil {
					b.Fatal(err)
				}
				st, err := src.Read(context.Background(), func(*model.Customer) error { return nil }, func(model.Reject) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
				total += st.Customers
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "customers/s")
		})
	}
}
