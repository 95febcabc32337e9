package extract

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/northwind-data/etl/internal/model"
)

// PostgresOptions configure the Postgres source.
type PostgresOptions struct {
	Options
	URL string
	// Customers and Cards are each a table or view name (schema.name
	// allowed) or a SELECT/WITH query, returning columns named as in the
	// CSV format. Missing optional columns read as empty; unknown ones are
	// ignored.
	Customers string
	Cards     string
	// PageSize is how many rows each cursor FETCH brings; default 2000.
	PageSize int
}

// Postgres reads customers and cards from a (possibly different,
// read-only) PostgreSQL database. Both queries run in one read-only
// REPEATABLE READ transaction, so customers and cards come from the same
// snapshot, through server-side cursors ordered by customer_id in byte
// order: memory stays flat at any table size, and the same merge join,
// validation and rejects as the CSV source apply (rejects name the table
// and key instead of file and line).
type Postgres struct {
	pool     *pgxpool.Pool
	opt      PostgresOptions
	custSQL  string
	cardSQL  string
	custName string
	cardName string
}

// OpenPostgres connects and checks that both sources have the required
// columns, so a wrong view name fails before the run starts.
func OpenPostgres(ctx context.Context, opt PostgresOptions) (*Postgres, error) {
	if opt.Validator == nil {
		return nil, errors.New("extract: Options.Validator is required")
	}
	if opt.PageSize <= 0 {
		opt.PageSize = 2000
	}
	if opt.Keep == nil {
		opt.Keep = func(string) bool { return true }
	}
	cfg, err := pgxpool.ParseConfig(opt.URL)
	if err != nil {
		return nil, fmt.Errorf("source postgres: URL is not valid")
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("source postgres: %v", pgErr(err))
	}
	p := &Postgres{pool: pool, opt: opt, custName: sourceName(opt.Customers, "customers"), cardName: sourceName(opt.Cards, "cards")}
	if p.custSQL, err = p.selectSQL(ctx, opt.Customers, customerSpec, "customer_id"); err != nil {
		pool.Close()
		return nil, err
	}
	if p.cardSQL, err = p.selectSQL(ctx, opt.Cards, cardSpec, "customer_id", "card_id"); err != nil {
		pool.Close()
		return nil, err
	}
	return p, nil
}

// Close releases the connections.
func (p *Postgres) Close() { p.pool.Close() }

func sourceName(src, what string) string {
	if isQuery(src) {
		return what + " query"
	}
	return strings.TrimSpace(src)
}

func isQuery(src string) bool {
	s := strings.ToLower(strings.TrimSpace(src))
	return strings.HasPrefix(s, "select") || strings.HasPrefix(s, "with") || strings.HasPrefix(s, "(")
}

func fromClause(src string) (string, error) {
	if isQuery(src) {
		return "(" + src + ") AS src", nil
	}
	parts := strings.Split(strings.TrimSpace(src), ".")
	for _, x := range parts {
		if x == "" {
			return "", fmt.Errorf("source postgres: %q is not a table or view name", src)
		}
	}
	return pgx.Identifier(parts).Sanitize() + " AS src", nil
}

// selectSQL inspects the source's columns and builds a SELECT that turns
// every known column into the text form the row parsers expect
// (timestamps as RFC 3339 in UTC, dates as YYYY-MM-DD).
func (p *Postgres) selectSQL(ctx context.Context, src string, spec *fileSpec, keys ...string) (string, error) {
	if strings.TrimSpace(src) == "" {
		return "", fmt.Errorf("source postgres: no %s source configured", spec.name)
	}
	from, err := fromClause(src)
	if err != nil {
		return "", err
	}
	rows, err := p.pool.Query(ctx, "SELECT * FROM "+from+" LIMIT 0")
	if err != nil {
		return "", fmt.Errorf("source postgres: %s: %v", sourceName(src, spec.name), pgErr(err))
	}
	fds := rows.FieldDescriptions()
	rows.Close()
	have := map[string]uint32{}
	for _, fd := range fds {
		have[fd.Name] = fd.DataTypeOID
	}
	var exprs, missing []string
	for _, c := range spec.columns {
		oid, ok := have[c.name]
		if !ok {
			if c.required {
				missing = append(missing, c.name)
			}
			exprs = append(exprs, "''")
			continue
		}
		col := "src." + pgx.Identifier{c.name}.Sanitize()
		switch oid {
		case 1184: // timestamptz
			exprs = append(exprs, fmt.Sprintf(`coalesce(to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '')`, col))
		case 1114: // timestamp: taken as UTC
			exprs = append(exprs, fmt.Sprintf(`coalesce(to_char(%s, 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '')`, col))
		case 1082: // date
			exprs = append(exprs, fmt.Sprintf(`coalesce(to_char(%s, 'YYYY-MM-DD'), '')`, col))
		default:
			exprs = append(exprs, fmt.Sprintf(`coalesce(%s::text, '')`, col))
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("source postgres: %s lacks required columns: %s", sourceName(src, spec.name), strings.Join(missing, ", "))
	}
	var order []string
	for _, k := range keys {
		// Byte order, like the CSV merge join: COLLATE "C".
		order = append(order, fmt.Sprintf(`src.%s::text COLLATE "C"`, pgx.Identifier{k}.Sanitize()))
	}
	// A table has no line order, so duplicates of one key are ordered by
	// their whole row: the same row wins every night.
	order = append(order, `src::text COLLATE "C"`)
	return "SELECT " + strings.Join(exprs, ", ") + " FROM " + from + " ORDER BY " + strings.Join(order, ", "), nil
}

// Read streams every customer and reject, as CSV.Read does.
func (p *Postgres) Read(ctx context.Context, emit func(*model.Customer) error, reject func(model.Reject) error) (Stats, error) {
	j := &joiner{v: p.opt.Validator, emit: emit, reject: reject, cust: FileStats{File: p.custName}, cards: FileStats{File: p.cardName}}
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return j.stats(), fmt.Errorf("source postgres: %v", pgErr(err))
	}
	defer conn.Release()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return j.stats(), fmt.Errorf("source postgres: %v", pgErr(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	for name, sql := range map[string]string{"etl_customers": p.custSQL, "etl_cards": p.cardSQL} {
		if _, err := tx.Exec(ctx, "DECLARE "+name+" NO SCROLL CURSOR FOR "+sql); err != nil {
			return j.stats(), fmt.Errorf("source postgres: %v", pgErr(err))
		}
	}
	f := startFetcher()
	defer f.stop() // before the deferred rollback: a FETCH may be in flight
	fast := p.opt.FastPath != nil && p.opt.FastPath.Unchanged != nil
	custs := &cursor[customerRec, *customerRec]{tx: tx, name: "etl_customers", page: p.opt.PageSize, keep: p.opt.Keep, src: p.custName, fetcher: f, keepCols: fast}
	cards := &cursor[cardRec, *cardRec]{tx: tx, name: "etl_cards", page: p.opt.PageSize, keep: p.opt.Keep, src: p.cardName, fetcher: f, keepCols: fast}
	if fp := p.opt.FastPath; fast {
		pf := newPGFast(fp, custs.next, cards.next)
		err = j.mergeJoin(ctx, pf.nextCustomer, pf.nextCard)
		j.cust.Rows += pf.nCust
		j.cust.Accepted += pf.nCust
		j.cards.Rows += pf.nCards
		j.cards.Accepted += pf.nCards
		j.customers += pf.nCust
		return j.stats(), err
	}
	err = j.mergeJoin(ctx, custs.next, cards.next)
	return j.stats(), err
}

// cursor pages through a server-side cursor. The next page is fetched
// while the current one is joined: without it the run and the source
// database took turns, each idle while the other worked.
type cursor[T any, P rec[T]] struct {
	tx       pgx.Tx
	name     string
	page     int
	keep     func(string) bool
	src      string
	fetcher  *fetcher
	keepCols bool // keep each row's values for the fingerprint
	buf      []*T
	done     bool
	ahead    chan fetched[T] // the page being fetched, if pending
	pending  bool
}

type fetched[T any] struct {
	recs []*T
	done bool
	err  error
}

// fetcher runs the FETCHes of one transaction one after another on its
// own goroutine (a connection serves one statement at a time); each
// cursor keeps at most one page in flight.
type fetcher struct {
	jobs chan func()
	done chan struct{}
}

func startFetcher() *fetcher {
	f := &fetcher{jobs: make(chan func(), 2), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for job := range f.jobs {
			job()
		}
	}()
	return f
}

// stop waits for the FETCH in flight, so the transaction can be ended.
func (f *fetcher) stop() {
	close(f.jobs)
	<-f.done
}

func (c *cursor[T, P]) next(ctx context.Context) (*T, error) {
	for len(c.buf) == 0 {
		if c.done {
			return nil, nil
		}
		if !c.pending {
			c.fetchAhead(ctx)
		}
		var r fetched[T]
		select {
		case r = <-c.ahead:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.pending = false
		if r.err != nil {
			return nil, r.err
		}
		c.buf, c.done = r.recs, r.done
		if !c.done {
			c.fetchAhead(ctx)
		}
	}
	r := c.buf[0]
	c.buf = c.buf[1:]
	return r, nil
}

func (c *cursor[T, P]) fetchAhead(ctx context.Context) {
	if c.ahead == nil {
		c.ahead = make(chan fetched[T], 1)
	}
	c.pending = true
	c.fetcher.jobs <- func() {
		recs, done, err := c.fetch(ctx)
		c.ahead <- fetched[T]{recs: recs, done: done, err: err}
	}
}

// fetch reads one page. It runs on the fetcher's goroutine and touches
// nothing the reader uses.
func (c *cursor[T, P]) fetch(ctx context.Context) ([]*T, bool, error) {
	rows, err := c.tx.Query(ctx, fmt.Sprintf("FETCH %d FROM %s", c.page, c.name))
	if err != nil {
		return nil, false, fmt.Errorf("source postgres: %s: %v", c.src, pgErr(err))
	}
	defer rows.Close()
	var recs []*T
	n := 0
	for rows.Next() {
		n++
		// Every column is selected as text (coalesced, never NULL), so
		// the raw bytes are the value: no decoding, no boxing.
		rec := new(T)
		row := reflect.ValueOf(rec).Elem().Field(0) // the embedded CustomerRow or CardRow
		raw := rows.RawValues()
		var cols []string
		if c.keepCols {
			cols = make([]string, len(raw))
			P(rec).meta().cols = cols
		}
		for i, v := range raw {
			s := string(v)
			row.Field(i).SetString(s)
			if cols != nil {
				cols[i] = s
			}
		}
		if !c.keep(strings.TrimSpace(row.Field(keyField(row)).String())) {
			continue
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("source postgres: %s: %v", c.src, pgErr(err))
	}
	return recs, n < c.page, nil
}

// keyField is the index of customer_id in the row struct.
func keyField(row reflect.Value) int {
	t := row.Type()
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("csv") == "customer_id" {
			return i
		}
	}
	return 0
}

// pgErr keeps connection strings (and passwords) out of messages.
func pgErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return errors.New("cannot connect: " + ce.Unwrap().Error())
	}
	return err
}
