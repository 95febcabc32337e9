package q2open_test

import (
	"context"
	"testing"

	"github.com/northwind-data/etl/internal/load"
)

// TestReview_UpdateWithoutClientIDDoesNotAddCardsAgain: sync_state can
// hold a Q2 customer active with no clientId (an intent an operator
// settled as delivered without --remote-id). The next run that sends it
// plans an update with an empty RemoteID; a sync with cards then adds
// every card a second time (Q2 dedups clients, not cards).
func TestReview_UpdateWithoutClientIDDoesNotAddCardsAgain(t *testing.T) {
	sb, srv := sandboxServer(t)
	c := newClient(t, srv.URL, token, nil)
	ctx := context.Background()
	op := mapOne(t, c, customer("C1"))
	if r := c.Send(ctx, []load.Op{op}, nil)[0]; r.Outcome != load.OK {
		t.Fatalf("create: %+v", r)
	}
	up := mapOne(t, c, customer("C1"))
	up.Kind, up.RemoteID = load.Update, ""
	r := c.Send(ctx, []load.Op{up}, nil)[0]
	cl, _ := sb.State().Find("C1")
	if len(cl.Cards) != 2 {
		t.Errorf("Q2 holds %d payment methods for C1's 2 cards after an update without a clientId (outcome %s)", len(cl.Cards), r.Outcome)
	}
}
