package load

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

type batcher struct{ max int }

func (b batcher) Name() string                                       { return "batcher" }
func (b batcher) MaxBatch() int                                      { return b.max }
func (batcher) Map(*model.Customer) ([]partner.Item, []model.Reject) { return nil, nil }
func (batcher) Send(context.Context, []partner.Op, partner.Journal) []partner.Result {
	return nil
}

func ops(n int) []task {
	ts := make([]task, n)
	for i := range ts {
		ts[i] = task{op: partner.Op{EntityKey: partner.CustomerKey("C"), Kind: partner.Create}, held: true}
	}
	return ts
}

// worker is a free worker: it takes every job the lane hands over.
func worker(l *lane) chan job {
	got := make(chan job, 100)
	go func() {
		for j := range l.jobs {
			got <- j
		}
	}()
	return got
}

// When a lane's partial batch goes out, decided by what the planners and
// the other lanes are doing. The lane's dispatcher runs in a synctest
// bubble: "nothing yet" means the dispatcher is durably blocked without
// having handed over a job.
func TestPartialBatchGoesOutOnlyWhenTheLaneHasNothingElseToDo(t *testing.T) {
	const wait = 10 * time.Second
	for _, tc := range []struct {
		name string
		// busy planners, stalled planners
		busy, stalled int32
		// budget held elsewhere (other lanes' queues and calls)
		elsewhere int64
		close     bool
		want      bool // the partial batch goes out before the wait
	}{
		{"planners producing", 1, 0, 0, false, false},
		{"planner stalled behind a slow partner's queue or calls", 0, 1, 3, false, false},
		{"one planner producing, one stalled", 1, 1, 0, false, false},
		{"planners waiting for the source", 0, 0, 0, false, true},
		{"planner stalled, only partial batches hold the budget", 0, 1, 0, false, true},
		{"end of input", 1, 0, 3, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFlow(100)
				l := newLane(batcher{max: 50}, 1)
				f.lanes = []*lane{l}
				f.busy.Store(tc.busy)
				f.stalled.Store(tc.stalled)
				f.used.Store(7 + tc.elsewhere) // the planners reserved the 7 ops pushed below
				go l.dispatch(context.Background(), f, wait, func(task) { t.Error("dropped") })
				jobs := worker(l)
				defer func() { l.close(); synctest.Wait() }()
				l.push(ops(7)...)
				if tc.close {
					l.close()
				}
				synctest.Wait()
				if sent := len(jobs) > 0; sent != tc.want {
					t.Fatalf("partial batch sent at once: %v, want %v", sent, tc.want)
				}
				if !tc.want {
					// A deadline long compared with one request still
					// bounds how long it waits.
					time.Sleep(wait - time.Millisecond)
					synctest.Wait()
					if len(jobs) != 0 {
						t.Fatal("the partial batch went out before its deadline")
					}
					time.Sleep(time.Millisecond)
					synctest.Wait()
				}
				if len(jobs) != 1 {
					t.Fatalf("%d jobs, want the partial batch", len(jobs))
				}
				if got := <-jobs; len(got.ops) != 7 {
					t.Fatalf("batch of %d, want 7", len(got.ops))
				}
			})
		})
	}
}

// A full batch goes out at once, whatever the planners do, and the rest
// keeps filling.
func TestFullBatchGoesOutAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlow(1000)
		l := newLane(batcher{max: 50}, 1)
		f.lanes = []*lane{l}
		f.busy.Store(1)
		go l.dispatch(context.Background(), f, time.Hour, func(task) {})
		jobs := worker(l)
		defer func() { l.close(); synctest.Wait() }()
		l.push(ops(120)...)
		synctest.Wait()
		if len(jobs) != 2 {
			t.Fatalf("%d jobs, want two full batches and the rest filling", len(jobs))
		}
		for range 2 {
			if j := <-jobs; len(j.ops) != 50 {
				t.Fatalf("batch of %d, want 50", len(j.ops))
			}
		}
		f.busy.Store(0)
		f.wakeAll()
		synctest.Wait()
		if j := <-jobs; len(j.ops) != 20 {
			t.Fatalf("tail of %d, want 20", len(j.ops))
		}
	})
}

// A planner waits for budget, not for a lane: reserve blocks once the
// budget is spent and resumes when a call releases it.
func TestBudgetBoundsQueuedOps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlow(10)
		f.planning()
		if held, err := f.reserve(context.Background(), 8); err != nil || held != 8 {
			t.Fatalf("reserve 8 = %d, %v", held, err)
		}
		done := make(chan int)
		go func() {
			held, _ := f.reserve(context.Background(), 4)
			done <- held
		}()
		synctest.Wait()
		if f.stalled.Load() != 1 || f.busy.Load() != 0 {
			t.Fatalf("stalled %d busy %d while waiting for budget", f.stalled.Load(), f.busy.Load())
		}
		f.release(2)
		if held := <-done; held != 4 {
			t.Fatalf("held %d, want 4", held)
		}
		// A customer with more ops than the whole budget goes through alone.
		f.release(10)
		if held, err := f.reserve(context.Background(), 25); err != nil || held != 10 {
			t.Fatalf("reserve 25 of 10 = %d, %v", held, err)
		}
	})
}

// Two lanes whose partial batches together hold the whole budget a
// stalled planner waits for: one of them goes out at once, so the run
// does not stand still until the batch deadline.
func TestStandstillAcrossLanesIsBroken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFlow(14)
		a, b := newLane(batcher{max: 50}, 1), newLane(batcher{max: 50}, 1)
		f.lanes = []*lane{a, b}
		f.stalled.Store(1)
		f.used.Store(14)
		for _, l := range f.lanes {
			go l.dispatch(context.Background(), f, time.Hour, func(task) { t.Error("dropped") })
		}
		ja, jb := worker(a), worker(b)
		defer func() { a.close(); b.close(); synctest.Wait() }()
		a.push(ops(7)...)
		synctest.Wait()
		if len(ja) != 0 {
			t.Fatal("lane a sent its partial batch while lane b's ops were still queued")
		}
		b.push(ops(7)...)
		synctest.Wait()
		if len(ja)+len(jb) == 0 {
			t.Fatal("no partial batch went out: the planner waits for budget only they hold")
		}
	})
}
