package load_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/bench"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/partners"
)

// BenchmarkContentHash is the keyed hash of one mapped payload per
// partner: the planner computes it for every op of every run, unchanged
// records included.
func BenchmarkContentHash(b *testing.B) {
	cs, err := bench.SampleCustomers(500)
	if err != nil {
		b.Fatal(err)
	}
	key := bench.HMACKey()
	for _, sp := range partners.All() {
		p, err := bench.OfflineProvider(sp)
		if err != nil {
			b.Fatal(err)
		}
		var payloads []any
		for _, c := range cs {
			ops, _ := p.Map(c)
			for _, op := range ops {
				payloads = append(payloads, op.Payload)
			}
		}
		if len(payloads) == 0 {
			continue
		}
		b.Run(sp.Name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := load.ContentHash(key, payloads[i%len(payloads)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
