package extract_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/extract"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/transform"
)

// FuzzCSV reads random bytes as customers.csv and cards.csv (behind a
// valid header when withHeader is set, so that the fuzzer spends its time
// on rows). Whatever the bytes: no panic; either OpenCSV refuses the
// header or Read succeeds and counts every row exactly once, on both
// join paths.
func FuzzCSV(f *testing.F) {
	f.Add([]byte(lines(custHdr, cust("C1"), cust("C2"))), []byte(lines(cardHdr, card("C1", "K1", "4111111111111111"), card("C3", "K3", "4111111111111111"))), false)
	f.Add([]byte("\xEF\xBB\xBF"+custHdr+"\r\nC2,\"a\nb\",c,d@e.fg,1,US,2020-01-01,\r\nC1,x\"y\r\n"), []byte(cardHdr+"\nK,C1,A,4111 1111 1111 1111,,1,2030,debit,,\nK,C1\n"), false)
	f.Add([]byte("C1,\xff,b,c@d.ef,1,US,2020-01-01,\nC1,a,b,c@d.ef,1,US,2020-01-01,\n"), []byte(",,,,,,,,,\n\"\n"), true)
	f.Add([]byte(cust("C2")+"\n"+cust("C1")+"\n"+cust("C2")), []byte(card("C1", "K1", "4111111111111111")+"\n"+card("C2", "K1", "378282246310005")), true)
	f.Fuzz(func(t *testing.T, customers, cards []byte, withHeader bool) {
		cs, ks := string(customers), string(cards)
		if withHeader {
			cs, ks = custHdr+"\n"+cs, cardHdr+"\n"+ks
		}
		dir := writeDir(t, cs, ks)
		// A few passes at most: a pass re-reads both files, and the
		// mutator likes large inputs.
		few := strings.Count(cs, "\n")/3 + 1
		var plain []string
		for i, partition := range []int{0, few, 0} {
			opt := extract.Options{Validator: transform.NewValidator([]byte("k"), now), PartitionRows: partition}
			if i == 2 {
				// The fast path, skipping nothing, must read what the
				// others read.
				opt.FastPath = (&asker{}).fastPath()
			}
			src, err := extract.OpenCSV(dir, opt)
			if err != nil {
				if withHeader {
					t.Fatalf("a valid header was refused: %v", err)
				}
				return
			}
			var res result
			res.stats, err = src.Read(context.Background(),
				func(c *model.Customer) error { res.customers = append(res.customers, c); return nil },
				func(r model.Reject) error { res.rejects = append(res.rejects, r); return nil })
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			checkAccounting(t, res)
			cs, rs := summary(t, res)
			got := append(cs, rs...)
			switch i {
			case 0:
				plain = got
			case 2:
				if !slices.Equal(plain, got) {
					t.Fatalf("the fast path read\n%q\nthe merge read\n%q", got, plain)
				}
			}
		}
	})
}
