package extract

import (
	"context"
	"strings"
)

// pgFast is the nightly fast path for the Postgres source (see FastPath):
// it sits between the two cursors and the merge join, groups their rows
// by customer, fingerprints every customer that has exactly one row,
// asks Unchanged a batch at a time and serves the merge join only the
// rows of customers that may have changed. The cursors already return
// both tables in customer_id byte order.
type pgFast struct {
	fp     *FastPath
	hash   *fingerprinter
	rows   []fpRow // scratch for hash.sum
	custs  func(context.Context) (*customerRec, error)
	cards  func(context.Context) (*cardRec, error)
	headC  *customerRec
	headK  *cardRec
	eofC   bool
	eofK   bool
	outC   []*customerRec
	outK   []*cardRec
	done   bool
	last   string // the last id asked about: Unchanged needs ascending ids
	nCust  int    // customers skipped
	nCards int    // their cards
}

type pgGroup struct {
	key   string
	cust  []*customerRec
	cards []*cardRec
	sum   []byte
}

func newPGFast(fp *FastPath, custs func(context.Context) (*customerRec, error), cards func(context.Context) (*cardRec, error)) *pgFast {
	// The same fingerprint as the CSV fast path's, over the columns the
	// cursors select (every known one, in the row structs' order).
	var cols [2][]string
	for i, spec := range []*fileSpec{customerSpec, cardSpec} {
		for _, c := range spec.columns {
			cols[i] = append(cols[i], c.name)
		}
	}
	return &pgFast{fp: fp, hash: newFingerprinter(fp.Key, fpSourcePostgres, cols[0], cols[1]), custs: custs, cards: cards}
}

// nextCustomer and nextCard feed the merge join. A customer's cards are
// queued in the same batch as the customer, so nextCard answers "none
// now" while customers of the current batch are still to be joined, and
// reads on only once they are: the queues never hold more than a batch.
func (f *pgFast) nextCustomer(ctx context.Context) (*customerRec, error) {
	for len(f.outC) == 0 {
		if f.done {
			return nil, nil
		}
		if err := f.fill(ctx); err != nil {
			return nil, err
		}
	}
	r := f.outC[0]
	f.outC = f.outC[1:]
	return r, nil
}

func (f *pgFast) nextCard(ctx context.Context) (*cardRec, error) {
	for len(f.outK) == 0 {
		if f.done || len(f.outC) > 0 {
			return nil, nil
		}
		if err := f.fill(ctx); err != nil {
			return nil, err
		}
	}
	r := f.outK[0]
	f.outK = f.outK[1:]
	return r, nil
}

func (f *pgFast) peekC(ctx context.Context) (*customerRec, error) {
	if f.headC == nil && !f.eofC {
		r, err := f.custs(ctx)
		if err != nil {
			return nil, err
		}
		f.headC, f.eofC = r, r == nil
	}
	return f.headC, nil
}

func (f *pgFast) peekK(ctx context.Context) (*cardRec, error) {
	if f.headK == nil && !f.eofK {
		r, err := f.cards(ctx)
		if err != nil {
			return nil, err
		}
		f.headK, f.eofK = r, r == nil
	}
	return f.headK, nil
}

// fill reads the next batch of groups, asks about the fingerprinted
// ones, and queues the rows of the rest.
func (f *pgFast) fill(ctx context.Context) error {
	n := f.fp.Batch
	if n <= 0 {
		n = 500
	}
	var batch []*pgGroup
	for len(batch) < n {
		g, err := f.group(ctx)
		if err != nil {
			return err
		}
		if g == nil {
			break
		}
		batch = append(batch, g)
	}
	if len(batch) == 0 {
		f.done = true
		return nil
	}
	var ids []string
	var sums [][]byte
	var at []int
	for i, g := range batch {
		if g.sum != nil {
			ids, sums, at = append(ids, g.key), append(sums, g.sum), append(at, i)
		}
	}
	skip := make([]bool, len(batch))
	if len(ids) > 0 {
		ans, err := f.fp.Unchanged(ctx, ids, sums)
		if err != nil {
			return err
		}
		for k, i := range at {
			skip[i] = ans[k]
		}
	}
	for i, g := range batch {
		if skip[i] {
			f.nCust++
			f.nCards += len(g.cards)
			continue
		}
		if g.sum != nil {
			g.cust[0].fp = g.sum
		}
		f.outC = append(f.outC, g.cust...)
		f.outK = append(f.outK, g.cards...)
	}
	return nil
}

// group takes the next customer id's rows from both cursors (a row with
// no id is a group of its own); nil at the end of both.
func (f *pgFast) group(ctx context.Context) (*pgGroup, error) {
	c, err := f.peekC(ctx)
	if err != nil {
		return nil, err
	}
	d, err := f.peekK(ctx)
	if err != nil {
		return nil, err
	}
	g := &pgGroup{}
	ck, dk := "", ""
	if c != nil {
		ck = strings.TrimSpace(c.CustomerID)
	}
	if d != nil {
		dk = strings.TrimSpace(d.CustomerID)
	}
	switch {
	case c == nil && d == nil:
		return nil, nil
	case c != nil && ck == "":
		g.cust, f.headC = []*customerRec{c}, nil
		return g, nil
	case d != nil && dk == "":
		g.cards, f.headK = []*cardRec{d}, nil
		return g, nil
	}
	g.key = ck
	if d != nil && (c == nil || dk < ck) {
		g.key = dk
	}
	for c != nil && strings.TrimSpace(c.CustomerID) == g.key {
		g.cust, f.headC = append(g.cust, c), nil
		if c, err = f.peekC(ctx); err != nil {
			return nil, err
		}
	}
	for d != nil && strings.TrimSpace(d.CustomerID) == g.key {
		g.cards, f.headK = append(g.cards, d), nil
		if d, err = f.peekK(ctx); err != nil {
			return nil, err
		}
	}
	// Only an id the engine will record under (no surrounding spaces),
	// asked in strictly ascending order; anything else is compared in
	// full, as a customer with a duplicate row is.
	if len(g.cust) == 1 && g.cust[0].CustomerID == g.key && g.key > f.last {
		g.sum = f.sum(g)
		f.last = g.key
	}
	return g, nil
}

// sum is the group's fingerprint: its rows' values as the cursors read
// them.
func (f *pgFast) sum(g *pgGroup) []byte {
	f.rows = f.rows[:0]
	for _, d := range g.cards {
		f.rows = append(f.rows, &d.rowMeta)
	}
	return f.hash.sum(&g.cust[0].rowMeta, f.rows)
}
