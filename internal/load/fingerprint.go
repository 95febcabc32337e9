package load

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"

	"github.com/northwind-data/etl/internal/ledger"
)

// Unchanged is the nightly fast path's question, asked by a source before
// it decodes a batch of customers: which of them hash to the fingerprint
// recorded when every partner last had their content? Those are skipped
// whole: counted unchanged and marked seen (so they are not taken for
// vanished), with no decoding, validation, mapping or sync_state lookup.
// It may be called only while Run is running, one call at a time, with
// ids in ascending byte order across calls (a sorted source): the
// recorded fingerprints are read in one ordered scan and merged.
func (e *Engine) Unchanged(ctx context.Context, ids []string, sums [][]byte) ([]bool, error) {
	skip := make([]bool, len(ids))
	rs := e.cur.Load()
	if rs == nil || e.scope == "" || e.fullResync || e.store == nil || len(ids) == 0 {
		return skip, nil
	}
	rs.fpOnce.Do(func() { rs.fpCursor = e.store.Fingerprints(rs.ctx, e.scope) })
	var seen []string
	for i, id := range ids {
		f, ok, err := rs.fpCursor.Seek(ctx, id)
		if err != nil {
			return nil, err
		}
		if !ok || !bytes.Equal(f.Sum, sums[i]) || len(f.Entities) != len(rs.order) {
			continue
		}
		skip[i] = true
		seen = append(seen, id)
		for pi, name := range rs.order {
			n := f.Entities[pi]
			atomic.AddInt64(&rs.lanes[name].counts.Unchanged, int64(n))
			if e.observer != nil {
				for range n {
					e.observer.Unchanged(name)
				}
			}
		}
	}
	// Only deactivation reads what a run saw.
	if rs.runID != 0 && rs.deactivates && len(seen) > 0 {
		if err := e.store.MarkSeen(ctx, rs.runID, seen); err != nil {
			return nil, err
		}
	}
	return skip, nil
}

// fpTracker holds the fingerprints of customers whose calls are in
// flight: one is recorded once every call of its customer came back partner.OK,
// and dropped as soon as one did not.
type fpTracker struct {
	mu sync.Mutex
	m  map[string]*fpWait
}

type fpWait struct {
	fp     ledger.Fingerprint
	left   int
	failed bool
}

func (t *fpTracker) reset() {
	t.mu.Lock()
	t.m = map[string]*fpWait{}
	t.mu.Unlock()
}

func (t *fpTracker) expect(fp ledger.Fingerprint, calls int) {
	t.mu.Lock()
	t.m[fp.CustomerID] = &fpWait{fp: fp, left: calls}
	t.mu.Unlock()
}

// done notes one call's end and returns the fingerprint to record when it
// was the customer's last and all succeeded.
func (t *fpTracker) done(customerID string, ok bool) (ledger.Fingerprint, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.m[customerID]
	if w == nil {
		return ledger.Fingerprint{}, false
	}
	w.left--
	w.failed = w.failed || !ok
	if w.left > 0 && !w.failed {
		return ledger.Fingerprint{}, false
	}
	delete(t.m, customerID) // a failed customer is forgotten at once: no fingerprint
	return w.fp, !w.failed
}
