package tokenization_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/northwind-data/etl/internal/partner"
)

// noteLog is a Journal that records what was noted, or refuses.
type noteLog struct {
	mu   sync.Mutex
	keys []string
	err  error
}

func (n *noteLog) Note(_ context.Context, op partner.Op, _ string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return n.err
	}
	n.keys = append(n.keys, string(op.EntityKey))
	return nil
}

// A create is journaled before its POST, so a run that dies after the
// platform committed it leaves an intent; an update of a known client
// needs none; and a create whose intent cannot be written is not sent.
func TestCreatesAreJournaled(t *testing.T) {
	s := newSandbox(t, nil)
	c := newClient(t, s.url, nil)
	j := &noteLog{}
	op := createOp(t, c, customer("C1"))
	r := c.Send(ctx, []partner.Op{op}, j)[0]
	mustOK(t, "create", r)
	if len(j.keys) != 1 || j.keys[0] != string(op.EntityKey) {
		t.Fatalf("noted %v before the create, want [%s]", j.keys, op.EntityKey)
	}

	up := op
	up.Kind, up.RemoteID = partner.Update, r.RemoteID
	mustOK(t, "update", c.Send(ctx, []partner.Op{up}, j)[0])
	if len(j.keys) != 1 {
		t.Fatalf("an update of a known client was journaled: %v", j.keys)
	}

	refused := &noteLog{err: errors.New("ledger down")}
	before := len(s.sb.State().Clients)
	r = c.Send(ctx, []partner.Op{createOp(t, c, customer("C2"))}, refused)[0]
	if r.Outcome != partner.Failed || len(s.sb.State().Clients) != before {
		t.Fatalf("create with an unwritten intent: %+v, %d clients (was %d): want failed and nothing posted", r.Outcome, len(s.sb.State().Clients), before)
	}
}

// Resolve of a create whose answer never reached the ledger finds the
// client by name and patches it: one client, its id.
func TestResolveFindsTheCreatedClient(t *testing.T) {
	s := newSandbox(t, nil)
	first := newClient(t, s.url, nil)
	op := createOp(t, first, customer("C7"))
	r := first.Send(ctx, []partner.Op{op}, &noteLog{})[0]
	mustOK(t, "create", r)

	rerun := newClient(t, s.url, nil) // a new process: a fresh name index
	res := rerun.Resolve(ctx, op, &noteLog{})
	mustOK(t, "resolve", res)
	if res.RemoteID != r.RemoteID || len(s.sb.State().Clients) != 1 {
		t.Fatalf("resolve gave %s (create gave %s), %d clients: want the same one client", res.RemoteID, r.RemoteID, len(s.sb.State().Clients))
	}
}

// Find looks a client up by the name its customer id gives it, without
// the record's content: found with its id, or provably absent.
func TestFindByName(t *testing.T) {
	s := newSandbox(t, nil)
	first := newClient(t, s.url, nil)
	r := first.Send(ctx, []partner.Op{createOp(t, first, customer("C9"))}, &noteLog{})[0]
	mustOK(t, "create", r)
	id := seed(t, s, "etl-C10", partnerID)

	c := newClient(t, s.url, nil)
	for _, tc := range []struct {
		customer string
		want     string
		found    bool
	}{
		{"C9", r.RemoteID, true},
		{"C10", strconv.Itoa(id), true},
		{"C11", "", false},
	} {
		got, found, err := c.Find(ctx, partner.Op{EntityKey: partner.CustomerKey(tc.customer), CustomerID: tc.customer, Kind: partner.Create})
		if err != nil || found != tc.found || got != tc.want {
			t.Fatalf("Find(%s) = %q, %v, %v; want %q, %v", tc.customer, got, found, err, tc.want, tc.found)
		}
	}
}
