package httpx

import (
	"context"
	"testing"
	"time"
)

// free counts the slots a caller could take now, and gives them back.
func free(s *Slots) int {
	n := 0
	for s.sem.TryAcquire(1) {
		n++
	}
	if n > 0 {
		s.sem.Release(int64(n))
	}
	return n
}

// A 429 after growth halves the limit, and the slots above it are taken
// back at once, not only as attempts end: callers may take exactly the new
// limit, never the old one.
func TestShrinkTakesFreeSlotsBackAtOnce(t *testing.T) {
	s := NewSlots(4, 32, "p", nil)
	ctx := context.Background()
	for range 10000 {
		if s.Limit() == 32 {
			break
		}
		if err := s.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		s.release(20*time.Millisecond, 200)
	}
	if s.Limit() != 32 || free(s) != 32 {
		t.Fatalf("limit %d, %d free after flat latency, want 32 and 32", s.Limit(), free(s))
	}
	if err := s.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	s.release(20*time.Millisecond, 429)
	if got, f := s.Limit(), free(s); got != 16 || f != 16 {
		t.Errorf("after one 429: limit %d, %d slots free; want 16 and 16", got, f)
	}
	// Held slots come back to the reserve as their attempts end.
	for range 16 {
		_ = s.acquire(ctx)
	}
	s.release(20*time.Millisecond, 429) // 16 -> 8: one returned, seven owed
	if got, f := s.Limit(), free(s); got != 8 || f != 0 {
		t.Errorf("after a second 429 with every slot held: limit %d, %d free; want 8 and 0", got, f)
	}
	for range 15 {
		s.release(20*time.Millisecond, 200)
	}
	if f := free(s); f != 8 {
		t.Errorf("%d free once every attempt ended, want 8", f)
	}
}
