package ledger_test

import (
	"context"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/pgtest"
)

// ActiveShare counts a partner's active customer records, and of those the
// ones a shard keeps: never cards (deactivation switches off customers
// only), inactive records, or other partners'.
func TestActiveShareCountsTheShardsActiveCustomers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	_, err := pool.Exec(ctx, `INSERT INTO sync_state (provider, entity_key, customer_id, content_hash, active) VALUES
		('p', 'customer/A1', 'A1', 'h', true), ('p', 'card/A1/K1', 'A1', 'h', true),
		('p', 'customer/A2', 'A2', 'h', true), ('p', 'customer/B1', 'B1', 'h', true),
		('p', 'customer/A3', 'A3', 'h', false), ('q', 'customer/A4', 'A4', 'h', true)`)
	if err != nil {
		t.Fatal(err)
	}
	s := ledger.FromPool(pool)
	for _, tc := range []struct {
		name        string
		keep        func(string) bool
		kept, total int
	}{
		{"all", nil, 3, 3},
		{"shard of A", func(id string) bool { return strings.HasPrefix(id, "A") }, 2, 3},
		{"empty shard", func(string) bool { return false }, 0, 3},
	} {
		kept, total, err := s.ActiveShare(ctx, "p", tc.keep)
		if err != nil || kept != tc.kept || total != tc.total {
			t.Errorf("%s: kept %d of %d (%v), want %d of %d", tc.name, kept, total, err, tc.kept, tc.total)
		}
	}
}
