package bench_test

import (
	"encoding/json"
	"testing"

	"github.com/northwind-data/etl/internal/bench"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/partners"
)

// sample is shared by the benchmarks: generating and validating it is
// not what they measure.
func sample(b *testing.B) []*model.Customer {
	b.Helper()
	cs, err := bench.SampleCustomers(1000)
	if err != nil {
		b.Fatal(err)
	}
	return cs
}

// BenchmarkMapAndEncode is each partner's per-customer wire work: Map a
// validated customer, then encode every payload as the client will.
func BenchmarkMapAndEncode(b *testing.B) {
	cs := sample(b)
	for _, sp := range partners.All() {
		b.Run(sp.Name, func(b *testing.B) {
			p, err := bench.OfflineProvider(sp)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			bytes := 0
			i := 0
			for b.Loop() {
				ops, _ := p.Map(cs[i%len(cs)])
				i++
				for _, op := range ops {
					body, err := json.Marshal(op.Payload)
					if err != nil {
						b.Fatal(err)
					}
					bytes += len(body)
				}
			}
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/customer")
		})
	}
}

// BenchmarkPlan is what the planner does per customer and partner before
// it can tell a record is unchanged: Map, the keyed content hash and the
// idempotency key. A nightly no-change rerun pays this for every record.
func BenchmarkPlan(b *testing.B) {
	cs := sample(b)
	key := bench.HMACKey()
	for _, sp := range partners.All() {
		b.Run(sp.Name, func(b *testing.B) {
			p, err := bench.OfflineProvider(sp)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ops, _ := p.Map(cs[i%len(cs)])
				i++
				for _, op := range ops {
					h, err := load.ContentHash(key, op.Payload)
					if err != nil {
						b.Fatal(err)
					}
					_ = load.IdempotencyKey(key, sp.Name, partner.Create, op.EntityKey, h)
				}
			}
		})
	}
}
