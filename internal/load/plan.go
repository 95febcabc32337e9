package load

import (
	"context"
	"fmt"
	"github.com/northwind-data/etl/internal/crashpoint"
	"sync/atomic"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

// planner maps customers for every partner, compares them with sync_state
// and queues what changed. Several planners run at once (WithPlanning),
// each on its own batch of customers.
type planner struct {
	e         *Engine
	rs        *runState
	w         *ledger.Writer // nil in a dry run
	resolvers map[string]bool
}

// known is what the ledger holds about one batch of customers.
type known struct {
	state   map[string]map[string]ledger.State
	gens    map[string]map[string]int    // create key generations
	intents map[string]map[string]string // open intents of Resolver partners
}

// laneOp is a planned op and the lane it goes to.
type laneOp struct {
	l  *lane
	op partner.Op
}

// plan plans one batch and queues it.
func (p *planner) plan(ctx context.Context, batch []*model.Customer) error {
	atomic.AddInt64(&p.e.compared, int64(len(batch)))
	ids := make([]string, len(batch))
	seen := p.w != nil && p.rs.deactivates // only deactivation reads what a run saw
	for i, c := range batch {
		ids[i] = c.ID
		if seen {
			p.w.Seen(c.ID)
		}
	}
	k, err := p.lookup(ctx, ids)
	if err != nil {
		return err
	}
	perCustomer := make([][]laneOp, 0, len(batch))
	var changed []string // customers with something to send
	for _, c := range batch {
		ops, err := p.customer(c, k)
		if err != nil {
			return err
		}
		if len(ops) > 0 {
			perCustomer = append(perCustomer, ops)
			changed = append(changed, c.ID)
		}
	}
	// A fingerprint must not outlive a call that may change what the
	// partner holds: forget it, durably, before the first call.
	if len(changed) > 0 && !p.e.dryRun {
		if err := p.e.store.ForgetFingerprints(ctx, changed); err != nil {
			return err
		}
	}
	return p.enqueue(ctx, perCustomer)
}

func (p *planner) lookup(ctx context.Context, ids []string) (known, error) {
	var k known
	var err error
	if k.state, k.gens, err = p.e.store.LoadPlanState(ctx, ids); err != nil {
		return k, err
	}
	k.intents = map[string]map[string]string{}
	for name, has := range p.resolvers {
		if !has {
			continue
		}
		m, err := p.e.store.OpenIntents(ctx, name, ids)
		if err != nil {
			return k, err
		}
		k.intents[name] = m
	}
	return k, nil
}

// customer plans one customer for every partner: the ops to send, its
// rejects written, and its fingerprint recorded (nothing to send) or
// expected (once every op comes back OK).
func (p *planner) customer(c *model.Customer, k known) ([]laneOp, error) {
	e := p.e
	fp := ledger.Fingerprint{CustomerID: c.ID, Sum: c.Fingerprint, Entities: make([]int, len(p.rs.order))}
	var out []laneOp
	for pi, name := range p.rs.order {
		l := p.rs.lanes[name]
		items, rejects := l.p.Map(c)
		fp.Entities[pi] = len(items)
		if len(rejects) > 0 {
			fp.Sum = nil // a customer with rejects is compared in full every run
		}
		for _, r := range rejects {
			atomic.AddInt64(&l.counts.MapRejected, 1)
			if r.Provider == "" {
				r.Provider = name
			}
			if p.w != nil {
				p.w.Reject(rejectRow(r))
			} else if e.dryRun && e.dryRunRejects != nil {
				e.dryRunRejects(rejectRow(r))
			}
		}
		for _, it := range items {
			op, send, err := p.op(name, l, it, k)
			if err != nil {
				return nil, err
			}
			if send {
				out = append(out, laneOp{l, op})
			}
		}
	}
	if e.scope != "" && len(fp.Sum) > 0 && p.w != nil {
		if len(out) == 0 {
			p.w.Fingerprint(e.scope, fp)
		} else {
			e.fps.expect(fp, len(out))
		}
	}
	return out, nil
}

// op plans one item: unchanged (send is false), or the op to send with
// its kind and keys. A dry run hands it to the dry-run observer instead.
func (p *planner) op(name string, l *lane, it partner.Item, k known) (op partner.Op, send bool, err error) {
	e := p.e
	op = partner.NewOp(it)
	key := string(op.EntityKey)
	if op.Hash, op.Body, err = hashContent(e.key, op.Payload); err != nil {
		return op, false, fmt.Errorf("%s: %s: %w", name, op.EntityKey, err)
	}
	st, seen := k.state[name][key]
	intent, open := k.intents[name][key]
	if seen && st.Active && st.Hash == op.Hash && !e.fullResync && !open {
		atomic.AddInt64(&l.counts.Unchanged, 1)
		if e.observer != nil {
			e.observer.Unchanged(name)
		}
		return op, false, nil
	}
	op.Kind = partner.Create
	if seen {
		op.Kind, op.RemoteID = partner.Update, st.RemoteID
	}
	if op.Kind == partner.Create {
		op.IdemKey = CreateKey(e.key, name, op.EntityKey, k.gens[name][key])
	} else {
		op.IdemKey = IdempotencyKey(e.key, name, op.Kind, op.EntityKey, op.Hash)
	}
	switch {
	case open:
		op.Intent = intent
		atomic.AddInt64(&l.counts.Resolve, 1)
	case op.Kind == partner.Create:
		atomic.AddInt64(&l.counts.Create, 1)
	default:
		atomic.AddInt64(&l.counts.Update, 1)
	}
	if e.observer != nil {
		e.observer.Planned(name, op.Kind)
	}
	if e.dryRun {
		if e.dryRunOps != nil {
			e.dryRunOps(name, op)
		}
		return op, false, nil
	}
	return op, true, nil
}

// enqueue queues each customer's ops once the run's budget has room for
// them. It waits for nothing else: a full lane does not block the others.
func (p *planner) enqueue(ctx context.Context, perCustomer [][]laneOp) error {
	f := p.rs.flow
	for i, ops := range perCustomer {
		held, err := f.reserve(ctx, len(ops))
		if err != nil {
			// Not queued: the tracker must not wait for these.
			for _, rest := range perCustomer[i:] {
				for range rest {
					p.e.fps.done(rest[0].op.CustomerID, false)
				}
			}
			return err
		}
		for j, q := range ops {
			crashpoint.Hit(crashpoint.MidPlan)
			q.l.push(task{op: q.op, held: j < held})
		}
	}
	return nil
}
