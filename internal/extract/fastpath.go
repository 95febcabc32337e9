package extract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// FastPath turns on the nightly fast path of a sorted CSV input or of the
// Postgres source. Each customer's rows (its customer row and every card
// row with its id, in source order, CVV left out) are fingerprinted (see
// fingerprinter), and Unchanged is asked, a batch at a time, which
// customers may be skipped.
// A skipped customer is not decoded, validated or emitted; its rows count
// as accepted. Every other customer is read as usual and, when it had no
// rejects, carries its fingerprint (model.Customer.Fingerprint).
//
// Customers with more than one row, a row-level problem or no customer
// row are never fingerprinted. Unsorted CSV input does not use the fast
// path; the Postgres source groups its rows in pgfast.go, with the same
// fingerprint function.
type FastPath struct {
	Key []byte
	// Unchanged reports, for each (id, fingerprint) pair, whether the
	// customer may be skipped. It is called from another goroutine.
	Unchanged func(ctx context.Context, ids []string, sums [][]byte) ([]bool, error)
	// Batch is how many customers one Unchanged call covers; default 500.
	Batch int
}

// group is one customer's rows (or one row that has no customer).
type group struct {
	cust, cards []srec
	sum         []byte
}

// rawCursor walks one file's read-ahead rows and checks they stay sorted.
type rawCursor struct {
	ch   <-chan srecBatch
	file string
	rows []srec
	i    int
	last string
	done bool
}

// peek returns the next row, or nil at the end.
func (c *rawCursor) peek(ctx context.Context) (*srec, error) {
	for c.i == len(c.rows) {
		if c.done {
			return nil, nil
		}
		select {
		case b, ok := <-c.ch:
			if !ok {
				c.done = true
				continue
			}
			if b.err != nil {
				return nil, b.err
			}
			c.rows, c.i = b.recs, 0
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	r := &c.rows[c.i]
	if r.key != "" && r.key < c.last {
		return nil, fmt.Errorf("extract: %s:%d: customer_id %q comes after %q: the source changed while it was read", c.file, r.line, r.key, c.last)
	}
	return r, nil
}

func (c *rawCursor) pop() {
	if k := c.rows[c.i].key; k != "" {
		c.last = k
	}
	c.rows[c.i] = srec{}
	c.i++
}

// producer groups the two files' rows by customer, asks which groups are
// unchanged, and passes the others on: the group to the joiner, its rows
// (fields cut at the splitter's spans, checked as encoding/csv rows are)
// to the two gocsv decoders.
type producer struct {
	maxField         int
	custFile         *csvFile // the headers the rows are checked against
	cardFile         *csvFile
	fp               *FastPath
	cust, cards      *rawCursor
	hash             *fingerprinter
	cardRows         []fpRow // scratch for hash.sum
	groups           chan *group
	custOut, cardOut chan rawRow
	skippedCustomers int
	skippedCards     int
}

func (p *producer) run(ctx context.Context) error {
	n := p.fp.Batch
	if n <= 0 {
		n = 500
	}
	// The questions overlap with the work: while one batch's answer is
	// awaited, the next batches are grouped and hashed, and the answered
	// ones passed on. Unchanged is asked one batch at a time, in order.
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan *lookup, 1)
	answered := make(chan *lookup, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- p.group(gctx, n, batches)
		close(batches)
	}()
	go func() {
		defer close(answered)
		for l := range batches {
			p.ask(gctx, l)
			if send(gctx, answered, l) != nil {
				return
			}
		}
	}()
	stop := func(err error) error {
		cancel()
		for range answered {
		}
		<-errc
		return err
	}
	for l := range answered {
		if l.err != nil {
			return stop(fmt.Errorf("extract: fast path: %w", l.err))
		}
		if err := p.pass(ctx, l.batch, l.skip); err != nil {
			return stop(err)
		}
	}
	return <-errc
}

// lookup is one batch and its Unchanged answer.
type lookup struct {
	batch []*group
	skip  []bool
	err   error
}

// group cuts the input into batches of n groups and asks about each on
// its own goroutine.
func (p *producer) group(ctx context.Context, n int, batches chan<- *lookup) error {
	batch := make([]*group, 0, n)
	ask := func() error {
		l := &lookup{batch: batch, skip: make([]bool, len(batch))}
		batch = make([]*group, 0, n)
		return send(ctx, batches, l)
	}
	for {
		g, err := p.next(ctx)
		if err != nil {
			return err
		}
		if g == nil {
			if len(batch) > 0 {
				return ask()
			}
			return nil
		}
		batch = append(batch, g)
		if len(batch) == n {
			if err := ask(); err != nil {
				return err
			}
		}
	}
}

func (p *producer) ask(ctx context.Context, l *lookup) {
	var ids []string
	var sums [][]byte
	var at []int
	for i, g := range l.batch {
		if g.sum != nil {
			ids = append(ids, g.cust[0].key)
			sums = append(sums, g.sum)
			at = append(at, i)
		}
	}
	if len(ids) == 0 {
		return
	}
	ans, err := p.fp.Unchanged(ctx, ids, sums)
	if err != nil {
		l.err = err
		return
	}
	for k, i := range at {
		l.skip[i] = ans[k]
	}
}

// next is the next group in file order, nil at the end.
func (p *producer) next(ctx context.Context) (*group, error) {
	c, err := p.cust.peek(ctx)
	if err != nil {
		return nil, err
	}
	d, err := p.cards.peek(ctx)
	if err != nil {
		return nil, err
	}
	g := &group{}
	switch {
	case c == nil && d == nil:
		return nil, nil
	case c != nil && c.key == "":
		g.cust = []srec{*c}
		p.cust.pop()
		return g, nil
	case d != nil && d.key == "":
		g.cards = []srec{*d}
		p.cards.pop()
		return g, nil
	}
	key := ""
	if c != nil {
		key = c.key
	}
	if d != nil && (c == nil || d.key < key) {
		key = d.key
	}
	for c != nil && c.key == key {
		g.cust = append(g.cust, *c)
		p.cust.pop()
		if c, err = p.cust.peek(ctx); err != nil {
			return nil, err
		}
	}
	for d != nil && d.key == key {
		g.cards = append(g.cards, *d)
		p.cards.pop()
		if d, err = p.cards.peek(ctx); err != nil {
			return nil, err
		}
	}
	if len(g.cust) == 1 && clean(g.cust) && clean(g.cards) {
		p.cardRows = p.cardRows[:0]
		for i := range g.cards {
			p.cardRows = append(p.cardRows, &g.cards[i])
		}
		g.sum = p.hash.sum(&g.cust[0], p.cardRows)
	}
	return g, nil
}

func clean(recs []srec) bool {
	for i := range recs {
		if !recs[i].clean {
			return false
		}
	}
	return true
}

// pass counts the skipped groups of a batch and hands the others on.
func (p *producer) pass(ctx context.Context, batch []*group, skip []bool) error {
	for i, g := range batch {
		if skip[i] {
			p.skippedCustomers++
			p.skippedCards += len(g.cards)
			continue
		}
		// The group first, then its rows in the order the joiner pulls
		// them: however many rows a group has, the joiner is never
		// waiting on one decoder while the producer waits on the other.
		if err := send(ctx, p.groups, g); err != nil {
			return err
		}
		for i := range g.cust {
			r := &g.cust[i]
			row := p.custFile.row(r.line, r.fields(), p.maxField)
			if i == 0 {
				row.fp = g.sum
			}
			if err := send(ctx, p.custOut, row); err != nil {
				return err
			}
		}
		for i := range g.cards {
			r := &g.cards[i]
			if err := send(ctx, p.cardOut, p.cardFile.row(r.line, r.fields(), p.maxField)); err != nil {
				return err
			}
		}
	}
	return nil
}

func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mergeFast is merge with the fast path: see FastPath. The scan found
// both files plain enough for the splitter.
func (s *CSV) mergeFast(ctx context.Context, j *joiner) error {
	ccf, err := openFile(s.dir, customerSpec)
	if err != nil {
		return err
	}
	defer ccf.f.Close()
	kcf, err := openFile(s.dir, cardSpec)
	if err != nil {
		return err
	}
	defer kcf.f.Close()
	csf, err := openSplit(s.dir, ccf)
	if err != nil {
		return fmt.Errorf("extract: %s: %w", customerSpec.name, err)
	}
	defer csf.f.Close()
	ksf, err := openSplit(s.dir, kcf)
	if err != nil {
		return fmt.Errorf("extract: %s: %w", cardSpec.name, err)
	}
	defer ksf.f.Close()

	ctx, cancel := context.WithCancel(ctx)
	p := &producer{
		fp:       s.opt.FastPath,
		maxField: s.opt.MaxFieldBytes,
		custFile: ccf,
		cardFile: kcf,
		cust:     &rawCursor{ch: readRecords(ctx, csf, s.opt.MaxFieldBytes, s.opt.Keep), file: customerSpec.name},
		cards:    &rawCursor{ch: readRecords(ctx, ksf, s.opt.MaxFieldBytes, s.opt.Keep), file: cardSpec.name},
		hash:     newFingerprinter(s.opt.FastPath.Key, fpSourceCSV, ccf.header, kcf.header),
		groups:   make(chan *group, 64),
		custOut:  make(chan rawRow, 256),
		cardOut:  make(chan rawRow, 256),
	}
	var perr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		perr = p.run(ctx)
		close(p.groups)
		close(p.custOut)
		close(p.cardOut)
	}()
	pull := func(ch <-chan rawRow) func() (rawRow, error) {
		return func() (rawRow, error) {
			if r, ok := <-ch; ok {
				return r, nil
			}
			return rawRow{}, io.EOF
		}
	}
	cs := decodeStream[customerRec](ccf, pull(p.custOut))
	ks := decodeStream[cardRec](kcf, pull(p.cardOut))
	err = j.groupJoin(ctx, p.groups, cs.next, ks.next)
	cancel() // stops the producer and the readers if the join ended early
	wg.Wait()
	cs.stop()
	ks.stop()
	j.cust.Rows += p.skippedCustomers
	j.cust.Accepted += p.skippedCustomers
	j.cards.Rows += p.skippedCards
	j.cards.Accepted += p.skippedCards
	j.customers += p.skippedCustomers
	if perr != nil && !errors.Is(perr, context.Canceled) {
		return perr // the cause; the join only saw its streams end
	}
	return err
}

// groupJoin joins what the producer passed on, a group at a time: the
// group says how many customer and card records to take from each
// decoded stream.
func (j *joiner) groupJoin(ctx context.Context, groups <-chan *group, nextCustomer func(context.Context) (*customerRec, error), nextCard func(context.Context) (*cardRec, error)) error {
	for {
		var g *group
		select {
		case g = <-groups:
		case <-ctx.Done():
			return ctx.Err()
		}
		if g == nil {
			return ctx.Err()
		}
		var owner *pending
		for i := range g.cust {
			rec, err := nextCustomer(ctx)
			if err != nil {
				return err
			}
			if rec == nil {
				return errors.New("extract: customers.csv ended before its last row was decoded")
			}
			p, err := j.customerRow(rec, i > 0)
			if err != nil {
				return err
			}
			if i == 0 && g.cust[0].key != "" {
				owner = p
			}
		}
		for range g.cards {
			rec, err := nextCard(ctx)
			if err != nil {
				return err
			}
			if rec == nil {
				return errors.New("extract: cards.csv ended before its last row was decoded")
			}
			if err := j.cardRow(rec, owner); err != nil {
				return err
			}
		}
		if owner != nil && owner.c != nil {
			if err := j.finish(owner); err != nil {
				return err
			}
		}
	}
}
