package partner_test

import (
	"context"
	"fmt"

	"github.com/northwind-data/etl/internal/httpx"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

// echo is the smallest partner: one item per customer, every op accepted
// except those whose payload the partner refuses.
type echo struct{}

type echoBody struct{ Name string }

func (echo) Name() string  { return "echo" }
func (echo) MaxBatch() int { return 50 }

func (echo) Map(c *model.Customer) ([]partner.Item, []model.Reject) {
	return []partner.Item{{EntityKey: partner.CustomerKey(c.ID), CustomerID: c.ID, Origin: c.Origin,
		Payload: echoBody{Name: c.FirstName}}}, nil
}

// Send may be called by several workers at once; it keeps nothing of ops.
func (echo) Send(ctx context.Context, ops []partner.Op, _ partner.Journal) []partner.Result {
	out := make([]partner.Result, len(ops))
	for i, op := range ops {
		if op.Payload.(echoBody).Name == "" {
			out[i] = partner.FailureResult(op, &httpx.Error{Partner: "echo", Kind: httpx.Rejected, Status: 422, Code: "name_required"}, 1)
			continue
		}
		out[i] = partner.Result{EntityKey: op.EntityKey, Outcome: partner.OK, RemoteID: "echo-" + op.CustomerID, Attempts: 1}
	}
	return out
}

// A partner maps a customer to items; the engine plans them into ops
// (kind, hash, idempotency key) and hands them to Send in batches of at
// most MaxBatch, then records one Result per op.
func Example() {
	var p partner.Provider = echo{}
	items, _ := p.Map(&model.Customer{ID: "C1", FirstName: "Ada"})
	more, _ := p.Map(&model.Customer{ID: "C2"})
	ops := partner.NewOps(append(items, more...))
	for i := range ops {
		ops[i].Kind = partner.Create // the planner's job
	}
	for _, r := range p.Send(context.Background(), ops, nil) {
		fmt.Println(r.EntityKey, r.Outcome, r.HTTPStatus)
	}
	// Output:
	// customer/C1 ok 0
	// customer/C2 rejected 422
}

func ExampleParseKey() {
	for _, k := range []partner.Key{partner.CustomerKey("C1001"), partner.CardKey("C1001", "K1"), "account/A1"} {
		id, card, err := partner.ParseKey(k.String())
		fmt.Printf("%s: customer %q card %q error %v, is a customer: %v\n", k, id, card, err != nil, k.IsCustomer())
	}
	// Output:
	// customer/C1001: customer "C1001" card "" error false, is a customer: true
	// card/C1001/K1: customer "C1001" card "K1" error false, is a customer: false
	// account/A1: customer "" card "" error true, is a customer: false
}

func ExamplePayloadOf() {
	op := partner.Op{EntityKey: partner.CustomerKey("C1"), Payload: &echoBody{Name: "Ada"}}
	b, ok := partner.PayloadOf[echoBody](op)
	fmt.Println(b.Name, ok)
	_, ok = partner.PayloadOf[echoBody](partner.Op{Payload: "not a body"})
	fmt.Println(ok)
	_, ok = partner.PayloadOf[echoBody](partner.Op{Payload: (*echoBody)(nil)})
	fmt.Println(ok)
	// Output:
	// Ada true
	// false
	// false
}
