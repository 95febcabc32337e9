package tokenization

import (
	"context"
	"sync"
)

// nameIndex maps the client names we own (those with our prefix) to their
// ids at the platform. The list API has no name filter, so the index is
// filled by walking every page of the partner's clients: once, lazily, the
// first time a create needs it, and again only when a create proves it
// stale (a duplicate-name refusal, or a lost answer). Between walks it is
// kept current by our own creates.
//
// Walks are serialised and shared: a caller that needs a walk newer than
// its own question waits for one that started after it asked, so a burst
// of refusals costs one walk, not one each.
type nameIndex struct {
	sem chan struct{} // one walk at a time

	mu      sync.Mutex
	ids     map[string]int
	started uint64 // number of the last walk started
	done    uint64 // number of the last walk completed
}

func newNameIndex() *nameIndex {
	return &nameIndex{sem: make(chan struct{}, 1), ids: map[string]int{}}
}

// walkFunc lists every client of the partner, handing each name and id to add.
type walkFunc func(ctx context.Context, add func(name string, id int)) error

// ready makes sure at least one walk has completed.
func (x *nameIndex) ready(ctx context.Context, walk walkFunc) error {
	return x.walkAfter(ctx, 0, walk)
}

// refresh makes sure a walk that started after this call has completed.
func (x *nameIndex) refresh(ctx context.Context, walk walkFunc) error {
	x.mu.Lock()
	after := x.started
	x.mu.Unlock()
	return x.walkAfter(ctx, after, walk)
}

func (x *nameIndex) walkAfter(ctx context.Context, after uint64, walk walkFunc) error {
	x.mu.Lock()
	fresh := x.done > after
	x.mu.Unlock()
	if fresh {
		return nil
	}
	select {
	case x.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-x.sem }()
	x.mu.Lock()
	if x.done > after { // another caller walked while we waited
		x.mu.Unlock()
		return nil
	}
	x.started++
	n := x.started
	x.mu.Unlock()

	found := map[string]int{}
	if err := walk(ctx, func(name string, id int) { found[name] = id }); err != nil {
		return err
	}
	x.mu.Lock()
	// Merge rather than replace: a create that finished during the walk
	// may be missing from pages read before it.
	for name, id := range found {
		x.ids[name] = id
	}
	x.done = n
	x.mu.Unlock()
	return nil
}

func (x *nameIndex) get(name string) (int, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	id, ok := x.ids[name]
	return id, ok
}

func (x *nameIndex) put(name string, id int) {
	x.mu.Lock()
	x.ids[name] = id
	x.mu.Unlock()
}

// forget drops name if it still points at id (a client the platform no
// longer has).
func (x *nameIndex) forget(name string, id int) {
	x.mu.Lock()
	if x.ids[name] == id {
		delete(x.ids, name)
	}
	x.mu.Unlock()
}
