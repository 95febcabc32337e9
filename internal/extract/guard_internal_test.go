package extract

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/transform"
)

// An open quote must fail the read with a message once the record grows
// past the bound, while a file much larger than the bound but made of
// normal records reads through.
func TestRecordBound(t *testing.T) {
	old := maxRecordBytes
	maxRecordBytes = 64 << 10
	t.Cleanup(func() { maxRecordBytes = old })

	var normal strings.Builder
	normal.WriteString("\xEF\xBB\xBFcustomer_id,first_name,last_name,email,postal_code,country,created_at\n")
	for i := 0; normal.Len() < 1<<20; i++ {
		fmt.Fprintf(&normal, "C%07d,Ada,Lovelace,a@example.com,78753,US,2020-01-01\n", i)
	}
	open := normal.String()[:200] + "C9,\"open quote,x\n" + normal.String()[200:]
	cards := "card_id,customer_id,account_id,pan,exp_month,exp_year,card_type\n"
	for _, tc := range []struct {
		name, customers string
		wantErr         bool
	}{{"normal", normal.String(), false}, {"open quote", open, true}} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "customers.csv"), []byte(tc.customers), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cards.csv"), []byte(cards), 0o600); err != nil {
			t.Fatal(err)
		}
		src, err := OpenCSV(dir, Options{Validator: transform.NewValidator(nil, time.Now())})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		_, err = src.Read(context.Background(), func(*model.Customer) error { n++; return nil }, func(model.Reject) error { return nil })
		switch {
		case tc.wantErr && (err == nil || !strings.Contains(err.Error(), "quote")):
			t.Errorf("%s: err %v", tc.name, err)
		case !tc.wantErr && (err != nil || n < 10000):
			t.Errorf("%s: err %v after %d customers", tc.name, err, n)
		}
	}
}
