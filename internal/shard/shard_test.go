package shard_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/shard"
)

func TestRate(t *testing.T) {
	for _, tc := range []struct {
		s          shard.Shard
		rate, want float64
	}{
		{shard.Shard{}, 10, 10},
		{shard.Shard{Index: 0, Count: 1}, 10, 10},
		{shard.Shard{Index: 1, Count: 4}, 10, 2.5},
		{shard.Shard{Index: 3, Count: 4}, 0, 0}, // no limit stays no limit
	} {
		if got := tc.s.Rate(tc.rate); got != tc.want {
			t.Errorf("%v.Rate(%v) = %v, want %v", tc.s, tc.rate, got, tc.want)
		}
	}
}

func TestSharesAddUp(t *testing.T) {
	s, err := shard.Parse("/3", "2")
	if err != nil || s != (shard.Shard{Index: 2, Count: 3}) {
		t.Fatalf("Parse = %v, %v", s, err)
	}
	var sum float64
	for i := range 3 {
		sum += shard.Shard{Index: i, Count: 3}.Rate(9)
	}
	if sum != 9 {
		t.Errorf("shares add up to %v, want 9", sum)
	}
}
