package gen_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/extract"
	"github.com/northwind-data/etl/internal/gen"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/transform"
)

func TestSmoke(t *testing.T) {
	dir := "/tmp/gt"
	st, err := gen.Write(dir, gen.Options{Customers: 50, CardsPerCustomer: 1.5, BadFraction: 0.3, Seed: 1, Sorted: true, Now: time.Now()})
	fmt.Printf("%+v %v\n", st, err)
	s, err := extract.OpenCSV(dir, extract.Options{Validator: transform.NewValidator([]byte("k"), time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := s.Read(context.Background(), func(c *model.Customer) error { return nil }, func(r model.Reject) error { fmt.Println(r.Error()); return nil })
	fmt.Printf("%+v %v\n", rs, err)
}
