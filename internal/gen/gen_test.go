package gen_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/extract"
	"github.com/northwind-data/etl/internal/gen"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/transform"
)

var now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

func write(t *testing.T, opt gen.Options) (string, gen.Stats) {
	t.Helper()
	dir := t.TempDir()
	st, err := gen.Write(dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	return dir, st
}

func rows(t *testing.T, dir, name string) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func file(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeterministic(t *testing.T) {
	opt := gen.Options{Customers: 200, CardsPerCustomer: 1.5, BadFraction: 0.1, Seed: 5, Sorted: true, Now: now}
	a, _ := write(t, opt)
	b, _ := write(t, opt)
	opt.Seed = 6
	c, _ := write(t, opt)
	for _, name := range []string{"customers.csv", "cards.csv"} {
		if !bytes.Equal(file(t, a, name), file(t, b, name)) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
		if bytes.Equal(file(t, a, name), file(t, c, name)) {
			t.Errorf("%s is the same for another seed", name)
		}
	}
}

func TestOrderAndCounts(t *testing.T) {
	opt := gen.Options{Customers: 300, CardsPerCustomer: 1.5, BadFraction: 0.2, Seed: 3, Sorted: true, Now: now}
	sorted, st := write(t, opt)
	opt.Sorted = false
	unsorted, st2 := write(t, opt)
	if st != st2 {
		t.Errorf("stats differ with order: %+v vs %+v", st, st2)
	}
	for _, name := range []string{"customers.csv", "cards.csv"} {
		s, u := rows(t, sorted, name), rows(t, unsorted, name)
		key := slices.Index(s[0], "customer_id")
		inOrder := func(rs [][]string) bool {
			return slices.IsSortedFunc(rs[1:], func(a, b []string) int {
				switch {
				case a[key] < b[key]:
					return -1
				case a[key] > b[key]:
					return 1
				}
				return 0
			})
		}
		if !inOrder(s) {
			t.Errorf("sorted %s is not in customer_id order", name)
		}
		if inOrder(u) {
			t.Errorf("unsorted %s is in customer_id order", name)
		}
		// The same rows, only in another order.
		flat := func(rs [][]string) []string {
			var out []string
			for _, r := range rs {
				out = append(out, strings.Join(r, "\x00"))
			}
			slices.Sort(out)
			return out
		}
		if !slices.Equal(flat(s), flat(u)) {
			t.Errorf("%s: sorted and unsorted hold different rows", name)
		}
		want := map[string]int{"customers.csv": st.CustomerRows, "cards.csv": st.CardRows}[name]
		if len(s)-1 != want {
			t.Errorf("%s has %d rows, stats say %d", name, len(s)-1, want)
		}
	}
	if first := rows(t, sorted, "customers.csv")[1][0]; first != "C0000001" {
		t.Errorf("first id %q, want C0000001", first)
	}
}

// TestCleanDataIsAccepted reads a generated set without defects through
// the real CSV source: every row must pass, and the data must have the
// variety the demo and benchmarks rely on.
func TestCleanDataIsAccepted(t *testing.T) {
	dir, st := write(t, gen.Options{Customers: 500, CardsPerCustomer: 1.5, Seed: 42, Sorted: true, Now: now})
	if st.BadCustomerRows+st.BadCardRows != 0 {
		t.Fatalf("BadFraction 0 wrote bad rows: %+v", st)
	}
	src, err := extract.OpenCSV(dir, extract.Options{Validator: transform.NewValidator([]byte("k"), now)})
	if err != nil {
		t.Fatal(err)
	}
	var cs []*model.Customer
	var rejects []model.Reject
	stats, err := src.Read(context.Background(), func(c *model.Customer) error { cs = append(cs, c); return nil },
		func(r model.Reject) error { rejects = append(rejects, r); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(rejects) > 0 || len(cs) != 500 || stats.Files[1].Accepted != st.CardRows {
		t.Fatalf("%d customers, stats %+v, rejects %v", len(cs), stats, rejects)
	}
	brands, types := map[string]int{}, map[string]int{}
	members, joint, noCards, e164 := 0, 0, 0, 0
	for _, c := range cs {
		if _, err := strconv.Atoi(c.MemberID); err == nil {
			members++
		}
		if len(c.Phone) == 12 && c.Phone[:2] == "+1" {
			e164++
		}
		if len(c.Cards()) == 0 {
			noCards++
		}
		for _, a := range c.Accounts {
			if len(a.CustomerIDs) > 1 {
				joint++
			}
		}
		for _, cd := range c.Cards() {
			brands[cd.Brand]++
			types[cd.Type]++
		}
	}
	if members < 400 || members > 490 {
		t.Errorf("%d of 500 customers have a numeric member id; want about 90%%", members)
	}
	if e164 < 400 {
		t.Errorf("only %d of 500 phones normalised to E.164", e164)
	}
	if joint == 0 || noCards == 0 {
		t.Errorf("joint accounts %d, customers without cards %d: want some of each", joint, noCards)
	}
	for _, b := range []string{"visa", "mastercard", "american express", "discover"} {
		if brands[b] == 0 {
			t.Errorf("no %s cards: %v", b, brands)
		}
	}
	if types["debit"] == 0 || types["credit"] == 0 {
		t.Errorf("card types %v", types)
	}
}

func TestBadFractionOne(t *testing.T) {
	_, st := write(t, gen.Options{Customers: 100, CardsPerCustomer: 1, BadFraction: 1, Seed: 1, Sorted: true, Now: now})
	if st.BadCustomerRows == 0 || st.BadCardRows == 0 {
		t.Errorf("every customer is meant to be bad: %+v", st)
	}
	if _, err := gen.Write(t.TempDir(), gen.Options{Customers: 1, BadFraction: 2}); err == nil {
		t.Error("BadFraction 2 accepted")
	}
}
