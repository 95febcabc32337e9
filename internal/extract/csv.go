// Package extract reads the bank's export into canonical customers. The
// CSV source streams customers.csv and cards.csv, joins each customer
// with its accounts and cards, validates them and hands every accepted
// customer and every reject to the caller. The row types and parsers are
// shared with the Postgres source. The README describes the file format.
package extract

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"sync"

	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/transform"
)

// FileStats counts one input file. Every data row read is either
// accepted or rejected: Rows = Accepted + Rejected. Rows that belong to
// another shard are not read and not counted.
type FileStats struct {
	File     string
	Rows     int
	Accepted int
	Rejected int
}

// Stats is what a Read saw.
type Stats struct {
	Files     []FileStats
	Customers int // customers emitted
}

// Options configure the CSV source.
type Options struct {
	// Validator normalises and checks every customer; required.
	Validator *transform.Validator
	// Keep is the shard filter: rows whose customer id it refuses are
	// skipped before any parsing or validation. nil keeps everything.
	// Rows whose customer id cannot be read are kept where Keep("") is
	// true, so exactly one shard reports them. It is called from several
	// goroutines at once and must be pure.
	Keep func(customerID string) bool
	// MaxFieldBytes bounds one field; a longer one is a field_too_long
	// reject. Default 64 KiB.
	MaxFieldBytes int
	// PartitionRows is how many customers an unsorted input holds in
	// memory per pass. Default 50 000.
	PartitionRows int
	// FastPath, if set, skips unchanged customers of a sorted CSV input
	// before decoding them (see FastPath).
	FastPath *FastPath
}

const (
	defaultMaxField      = 64 << 10
	defaultPartitionRows = 50_000
)

// CSV is the CSV source over one directory. Read may be called more than
// once (each call re-reads the files); calls must not overlap.
type CSV struct {
	dir string
	opt Options

	mu      sync.Mutex
	scanned *scanResult
}

type scanResult struct {
	customers int  // customer rows this shard reads
	sorted    bool // both files are in customer_id byte order
	regular   bool // both files are plain enough for the splitter (the fast path)
}

// OpenCSV checks that dir holds customers.csv and cards.csv with valid
// headers. Errors name the file (and line 1 for header problems).
func OpenCSV(dir string, opt Options) (*CSV, error) {
	if opt.Validator == nil {
		return nil, errors.New("extract: Options.Validator is required")
	}
	if opt.MaxFieldBytes <= 0 {
		opt.MaxFieldBytes = defaultMaxField
	}
	if opt.PartitionRows <= 0 {
		opt.PartitionRows = defaultPartitionRows
	}
	if opt.Keep == nil {
		opt.Keep = func(string) bool { return true }
	}
	for _, spec := range []*fileSpec{customerSpec, cardSpec} {
		cf, err := openFile(dir, spec)
		if err != nil {
			return nil, err
		}
		cf.f.Close()
	}
	return &CSV{dir: dir, opt: opt}, nil
}

// Count is a fast pre-scan: it splits the rows of both files and looks
// only at the customer id (no gocsv, no parsing, no validation); it returns how many customer rows
// this shard will read, which is the progress total. It also learns
// whether both files are sorted by customer_id, which Read needs; Read
// runs it when Count was not called.
func (s *CSV) Count(ctx context.Context) (int, error) {
	sc, err := s.scan(ctx)
	if err != nil {
		return 0, err
	}
	return sc.customers, nil
}

func (s *CSV) scan(ctx context.Context) (scanResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scanned != nil {
		return *s.scanned, nil
	}
	// Both files at once: the scan is a full pass over each.
	type result struct {
		kept            int
		sorted, regular bool
		err             error
	}
	var res [2]result
	var wg sync.WaitGroup
	for i, spec := range []*fileSpec{customerSpec, cardSpec} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &res[i]
			r.kept, r.sorted, r.err = s.splitScanFile(ctx, spec)
			r.regular = r.err == nil
			if errors.Is(r.err, errIrregular) {
				r.kept, r.sorted, r.err = s.scanFile(ctx, spec)
			}
		}()
	}
	wg.Wait()
	for _, r := range res {
		if r.err != nil {
			return scanResult{}, r.err
		}
	}
	sc := scanResult{customers: res[0].kept, sorted: res[0].sorted && res[1].sorted, regular: res[0].regular && res[1].regular}
	s.scanned = &sc
	return sc, nil
}

func (s *CSV) scanFile(ctx context.Context, spec *fileSpec) (kept int, sorted bool, err error) {
	cf, err := openFile(s.dir, spec)
	if err != nil {
		return 0, false, err
	}
	defer cf.f.Close()
	kept, sorted, err = s.scanKeys(ctx, func() (string, error) {
		row, err := cf.next(s.opt.MaxFieldBytes)
		return row.key, err
	})
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("extract: %s: %w", spec.name, err)
	}
	return kept, sorted, err
}

// splitScanFile is scanFile with the splitter, for plain files: it
// returns errIrregular at the first record the splitter leaves to
// encoding/csv.
func (s *CSV) splitScanFile(ctx context.Context, spec *fileSpec) (kept int, sorted bool, err error) {
	cf, err := openFile(s.dir, spec)
	if err != nil {
		return 0, false, err
	}
	cf.f.Close()
	sf, err := openSplit(s.dir, cf)
	if err != nil {
		return 0, false, err
	}
	defer sf.f.Close()
	kept, sorted, err = s.scanKeys(ctx, func() (string, error) {
		r, err := sf.next(s.opt.MaxFieldBytes)
		return r.key, err
	})
	if err != nil && !errors.Is(err, errIrregular) && ctx.Err() == nil {
		err = fmt.Errorf("extract: %s: %w", spec.name, err)
	}
	return kept, sorted, err
}

// scanKeys counts the keys next returns that this shard keeps, until
// io.EOF, and whether they come in byte order.
func (s *CSV) scanKeys(ctx context.Context, next func() (string, error)) (kept int, sorted bool, err error) {
	sorted = true
	last := ""
	for i := 0; ; i++ {
		if i%4096 == 0 && ctx.Err() != nil {
			return 0, false, ctx.Err()
		}
		key, err := next()
		if errors.Is(err, io.EOF) {
			return kept, sorted, nil
		}
		if err != nil {
			return 0, false, err
		}
		if s.opt.Keep(key) {
			kept++
		}
		if key != "" {
			if key < last {
				sorted = false
			}
			last = key
		}
	}
}

// Read streams every accepted customer, with its accounts and accepted
// cards, to emit, and every reject to reject, both on the calling
// goroutine. Emitted customers belong to the receiver. An error from
// emit or reject, or ctx ending, stops the read and is returned.
//
// Sorted input (both files in customer_id byte order) is merge-joined in
// one pass with constant memory. Unsorted input is hash-joined in
// partitions: pass k of K holds only the customers whose id hashes to k,
// K = ceil(customers / PartitionRows), re-reading both files each pass.
// Nothing is written to disk either way: card data must not be.
func (s *CSV) Read(ctx context.Context, emit func(*model.Customer) error, reject func(model.Reject) error) (Stats, error) {
	sc, err := s.scan(ctx)
	if err != nil {
		return Stats{}, err
	}
	j := &joiner{v: s.opt.Validator, emit: emit, reject: reject,
		cust: FileStats{File: customerSpec.name}, cards: FileStats{File: cardSpec.name}}
	switch {
	case sc.sorted && sc.regular && s.opt.FastPath != nil:
		err = s.mergeFast(ctx, j)
	case sc.sorted:
		err = s.merge(ctx, j)
	default:
		k := (sc.customers + s.opt.PartitionRows - 1) / s.opt.PartitionRows
		for pass := 0; pass < max(k, 1) && err == nil; pass++ {
			err = s.partition(ctx, j, pass, max(k, 1))
		}
	}
	return j.stats(), err
}

// partitionOf spreads customer ids over K passes. FNV-1a alone would not
// do: the shard filter takes FNV-1a modulo N too, and FNV's low bits are
// the same in both, so within one shard whole partitions would be empty
// and others twice as full. A 64-bit finalizer decorrelates them.
func partitionOf(key string, k int) int {
	if key == "" || k <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return int(x % uint64(k))
}

func (s *CSV) merge(ctx context.Context, j *joiner) error {
	keep := func(r rawRow) bool { return s.opt.Keep(r.key) }
	cs, err := startStream[customerRec](s.dir, customerSpec, s.opt.MaxFieldBytes, keep)
	if err != nil {
		return err
	}
	defer cs.stop()
	ks, err := startStream[cardRec](s.dir, cardSpec, s.opt.MaxFieldBytes, keep)
	if err != nil {
		return err
	}
	defer ks.stop()
	return j.mergeJoin(ctx, cs.next, ks.next)
}

// mergeJoin joins two streams sorted by customer_id (byte order): each
// customer with its adjacent cards, in constant memory. The CSV and
// Postgres sources share it.
func (j *joiner) mergeJoin(ctx context.Context, nextCustomer func(context.Context) (*customerRec, error), nextCard func(context.Context) (*cardRec, error)) error {
	var head *cardRec
	lastCard := ""
	peek := func() (*cardRec, error) {
		if head == nil {
			r, err := nextCard(ctx)
			if err != nil || r == nil {
				return nil, err
			}
			k := strings.TrimSpace(r.CustomerID)
			if k != "" && k < lastCard {
				return nil, fmt.Errorf("extract: %s: customer_id %q comes after %q: the source changed while it was read", j.where(j.cards.File, r.line), k, lastCard)
			}
			if k != "" {
				lastCard = k
			}
			head = r
		}
		return head, nil
	}
	// drain hands every card before key (or all, when key is nil) to
	// the joiner as having no customer.
	drainBefore := func(key *string) error {
		for {
			r, err := peek()
			if err != nil || r == nil {
				return err
			}
			k := strings.TrimSpace(r.CustomerID)
			if key != nil && k != "" && k >= *key {
				return nil
			}
			head = nil
			if err := j.cardRow(r, nil); err != nil {
				return err
			}
		}
	}

	last := ""
	for {
		rec, err := nextCustomer(ctx)
		if err != nil {
			return err
		}
		if rec == nil {
			break
		}
		key := strings.TrimSpace(rec.CustomerID)
		if key != "" && key < last {
			return fmt.Errorf("extract: %s: customer_id %q comes after %q: the source changed while it was read", j.where(j.cust.File, rec.line), key, last)
		}
		dup := key != "" && key == last
		p, err := j.customerRow(rec, dup)
		if err != nil {
			return err
		}
		if key == "" || dup {
			continue
		}
		last = key
		if err := drainBefore(&key); err != nil {
			return err
		}
		for {
			r, err := peek()
			if err != nil {
				return err
			}
			if r == nil || strings.TrimSpace(r.CustomerID) != key {
				break
			}
			head = nil
			if err := j.cardRow(r, p); err != nil {
				return err
			}
		}
		if p.c != nil {
			if err := j.finish(p); err != nil {
				return err
			}
		}
	}
	return drainBefore(nil)
}

func (s *CSV) partition(ctx context.Context, j *joiner, pass, passes int) error {
	keep := func(r rawRow) bool { return s.opt.Keep(r.key) && partitionOf(r.key, passes) == pass }
	cs, err := startStream[customerRec](s.dir, customerSpec, s.opt.MaxFieldBytes, keep)
	if err != nil {
		return err
	}
	defer cs.stop()
	byID := map[string]*pending{}
	var order []*pending
	for {
		rec, err := cs.next(ctx)
		if err != nil {
			return err
		}
		if rec == nil {
			break
		}
		key := strings.TrimSpace(rec.CustomerID)
		dup := key != "" && byID[key] != nil
		p, err := j.customerRow(rec, dup)
		if err != nil {
			return err
		}
		if key == "" || dup {
			continue
		}
		byID[key] = p
		if p.c != nil {
			order = append(order, p)
		}
	}
	cs.stop()

	ks, err := startStream[cardRec](s.dir, cardSpec, s.opt.MaxFieldBytes, keep)
	if err != nil {
		return err
	}
	defer ks.stop()
	for {
		rec, err := ks.next(ctx)
		if err != nil {
			return err
		}
		if rec == nil {
			break
		}
		if err := j.cardRow(rec, byID[strings.TrimSpace(rec.CustomerID)]); err != nil {
			return err
		}
	}
	for i, p := range order {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := j.finish(p); err != nil {
			return err
		}
		order[i] = nil // let the emitted customer go as soon as the receiver does
	}
	return nil
}

// pending is a customer row that claimed its id, waiting for its cards.
// c is nil when the row was rejected; its cards are then rejected too.
type pending struct {
	c       *model.Customer
	origin  model.Origin
	cardIDs map[string]bool
	nCards  int
	fp      []byte // the fast path's fingerprint; dropped on any reject
}

// joiner turns rows into customers, rejects and counts.
type joiner struct {
	v           *transform.Validator
	emit        func(*model.Customer) error
	reject      func(model.Reject) error
	cust, cards FileStats
	customers   int
}

// origin names a row: file and line for CSV, table and key for a table
// source (Line 0).
func (j *joiner) origin(file string, line int, key string) model.Origin {
	if line > 0 {
		return model.Origin{File: file, Line: line}
	}
	return model.Origin{File: file, Key: key}
}

func (j *joiner) where(file string, line int) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d", file, line)
	}
	return file
}

func (j *joiner) stats() Stats {
	return Stats{Files: []FileStats{j.cust, j.cards}, Customers: j.customers}
}

func (j *joiner) rejectAll(rs []model.Reject) error {
	for _, r := range rs {
		if err := j.reject(r); err != nil {
			return err
		}
	}
	return nil
}

func customerKey(id string) string {
	if id == "" {
		return ""
	}
	return partner.CustomerKey(id).String()
}

func cardKey(customerID, cardID string) string {
	if customerID == "" && cardID == "" {
		return ""
	}
	return transform.CardKey(customerID, cardID)
}

// customerRow handles one customers.csv row. It returns the pending
// customer (possibly rejected) unless the row was a duplicate.
func (j *joiner) customerRow(rec *customerRec, dup bool) (*pending, error) {
	key := strings.TrimSpace(rec.CustomerID)
	o := j.origin(j.cust.File, rec.line, key)
	j.cust.Rows++
	rejected := func(rs ...model.Reject) (*pending, error) {
		j.cust.Rejected++
		return &pending{origin: o}, j.rejectAll(rs)
	}
	switch {
	case dup:
		j.cust.Rejected++
		return nil, j.reject(model.Reject{Origin: o, EntityKey: customerKey(key), Field: "customer_id", Reason: model.ReasonDuplicateKey,
			Message: fmt.Sprintf("customer_id %s appears more than once; the first row wins", transform.Quote(key))})
	case rec.problem != nil:
		p := rec.problem
		return rejected(model.Reject{Origin: o, EntityKey: customerKey(key), Field: p.field, Reason: p.reason, Message: p.message})
	}
	c, rs := ParseCustomer(&rec.CustomerRow, o)
	if len(rs) > 0 {
		return rejected(rs...)
	}
	return &pending{c: c, origin: o, cardIDs: map[string]bool{}, fp: rec.fp}, nil
}

// cardRow handles one cards.csv row for owner (nil: no such customer).
func (j *joiner) cardRow(rec *cardRec, owner *pending) error {
	custID, cardID := strings.TrimSpace(rec.CustomerID), strings.TrimSpace(rec.CardID)
	o := j.origin(j.cards.File, rec.line, custID+"/"+transform.SafeCardID(cardID))
	key := cardKey(custID, cardID)
	j.cards.Rows++
	if owner != nil {
		// A customer with a rejected card is not fingerprinted, so the
		// reject is reported again every run until it is fixed.
		before := j.cards.Rejected
		defer func() {
			if j.cards.Rejected != before {
				owner.fp = nil
			}
		}()
	}
	one := func(field, reason, msg string) error {
		j.cards.Rejected++
		return j.reject(model.Reject{Origin: o, EntityKey: key, Field: field, Reason: reason, Message: msg})
	}
	switch {
	case rec.problem != nil:
		p := rec.problem
		return one(p.field, p.reason, p.message)
	case owner == nil && custID != "":
		return one("customer_id", model.ReasonUnknownCustomer, fmt.Sprintf("customer_id %s is not in %s", transform.Quote(custID), j.cust.File))
	case owner != nil && owner.c == nil:
		return one("customer_id", model.ReasonCustomerReject, fmt.Sprintf("customer %s was rejected (%s)", custID, owner.origin))
	}
	cd, acc, rs := ParseCard(&rec.CardRow, o)
	if len(rs) == 0 && owner == nil { // cannot happen: no customer id is a parse reject
		rs = []model.Reject{{Origin: o, EntityKey: key, Field: "customer_id", Reason: model.ReasonMissingField, Message: "customer_id is required"}}
	}
	if len(rs) > 0 {
		j.cards.Rejected++
		return j.rejectAll(rs)
	}
	if owner.cardIDs[cd.ID] {
		return one("card_id", model.ReasonDuplicateKey, fmt.Sprintf("card_id %s appears more than once for customer %s; the first row wins", transform.Quote(transform.SafeCardID(cd.ID)), custID))
	}
	owner.cardIDs[cd.ID] = true
	owner.nCards++
	c := owner.c
	for i := range c.Accounts {
		if c.Accounts[i].ID == acc.ID {
			// The first row of an account describes it; later rows only
			// add their card.
			c.Accounts[i].Cards = append(c.Accounts[i].Cards, *cd)
			return nil
		}
	}
	acc.Cards = []model.Card{*cd}
	c.Accounts = append(c.Accounts, *acc)
	return nil
}

// finish validates a customer that has all its cards and emits it.
func (j *joiner) finish(p *pending) error {
	ok, rs := j.v.Validate(p.c)
	kept := len(p.c.Cards())
	j.cards.Accepted += kept
	j.cards.Rejected += p.nCards - kept
	if !ok {
		j.cust.Rejected++
	} else {
		j.cust.Accepted++
	}
	if err := j.rejectAll(rs); err != nil {
		return err
	}
	if !ok {
		return nil
	}
	j.customers++
	c := p.c
	p.c = nil
	if len(rs) == 0 {
		c.Fingerprint = p.fp
	}
	return j.emit(c)
}
