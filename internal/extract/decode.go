package extract

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/gocarina/gocsv"

	"github.com/northwind-data/etl/internal/model"
)

// customerRec and cardRec are a decoded row and what the reader learnt
// below gocsv. gocsv fills the row; the rowMeta travels beside it (an
// embedded unexported struct, which gocsv's reflection skips).
type customerRec struct {
	CustomerRow
	rowMeta
}

type cardRec struct {
	CardRow
	rowMeta
}

// rowMeta is a row's origin and state as the reader found it.
type rowMeta struct {
	line    int         // the line the row starts on; 0 for a table row
	problem *rowProblem // nil when the row read cleanly
	fp      []byte      // customers only: the fast path's fingerprint, else nil
	cols    []string    // a table row's values in column order (the Postgres fast path hashes them)
}

func (m *rowMeta) meta() *rowMeta { return m }

// rowProblem is a problem found below gocsv: the row could not be parsed
// as CSV, had the wrong number of fields, bad bytes or a field too long.
type rowProblem struct{ reason, field, message string }

// csvFile is one open input file with its header checked.
type csvFile struct {
	f        *os.File
	r        *csv.Reader
	guard    *guardReader
	spec     *fileSpec
	header   []string
	keyIdx   int
	lastLine int
}

// maxRecordBytes bounds one record. encoding/csv holds a whole record in
// memory, and an unterminated quote makes the rest of the file one
// record: without a bound, a stray quote near the top of a large export
// would exhaust memory instead of failing with a message. It is well
// above a record of a few over-long fields, which are rejects.
var maxRecordBytes int64 = 64 << 20

var errRecordTooLong = errors.New("record too long")

// guardReader sits below the CSV reader and fails once more than limit
// bytes have been read past the end of the last complete record.
type guardReader struct {
	r     io.Reader
	read  int64 // bytes read from r
	skew  int64 // bytes of r the CSV reader never saw (a byte order mark)
	base  int64 // offset in r where the current record starts
	limit int64
}

func (g *guardReader) recordStart(csvOffset int64) { g.base = g.skew + csvOffset }

func (g *guardReader) Read(p []byte) (int, error) {
	if g.read-g.base > g.limit {
		return 0, errRecordTooLong
	}
	n, err := g.r.Read(p)
	g.read += int64(n)
	return n, err
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// openFile opens dir/spec.name, skips a UTF-8 byte order mark and checks
// the header: every column known, none twice, every required one there.
func openFile(dir string, spec *fileSpec) (*csvFile, error) {
	path := filepath.Join(dir, spec.name)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	guard := &guardReader{r: f, limit: maxRecordBytes}
	br := bufio.NewReaderSize(guard, 256<<10)
	if b, err := br.Peek(len(bom)); err == nil && bytes.Equal(b, bom) {
		_, _ = br.Discard(len(bom))
		guard.skew = int64(len(bom))
	}
	r := csv.NewReader(br)
	r.FieldsPerRecord = -1 // a short or long row is a reject, not the end of the file
	r.ReuseRecord = true   // the decoder copies what it keeps
	header, err := r.Read()
	if err != nil {
		f.Close()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("extract: %s: the file is empty; it needs a header row (line 1)", path)
		}
		return nil, fmt.Errorf("extract: %s:1: header: %w", path, err)
	}
	header = append([]string(nil), header...)
	if err := checkHeader(header, spec); err != nil {
		f.Close()
		return nil, fmt.Errorf("extract: %s:1: %w", path, err)
	}
	cf := &csvFile{f: f, r: r, guard: guard, spec: spec, header: header, keyIdx: -1, lastLine: 1}
	guard.recordStart(r.InputOffset())
	for i, h := range header {
		if h == spec.key {
			cf.keyIdx = i
		}
	}
	return cf, nil
}

func checkHeader(header []string, spec *fileSpec) error {
	var unknown, dup, missing []string
	seen := map[string]bool{}
	for _, h := range header {
		if !utf8.ValidString(h) {
			return fmt.Errorf("the header is not valid UTF-8")
		}
		switch {
		case seen[h]:
			dup = append(dup, h)
		case !spec.known(h):
			unknown = append(unknown, strconv.Quote(h))
		}
		seen[h] = true
	}
	for _, c := range spec.columns {
		if c.required && !seen[c.name] {
			missing = append(missing, c.name)
		}
	}
	var msgs []string
	if len(unknown) > 0 {
		msgs = append(msgs, "unknown column(s) "+strings.Join(unknown, ", ")+" (names are exact and lower-case)")
	}
	if len(dup) > 0 {
		msgs = append(msgs, "column(s) "+strings.Join(dup, ", ")+" appear more than once")
	}
	if len(missing) > 0 {
		msgs = append(msgs, "missing required column(s) "+strings.Join(missing, ", "))
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

// rawRow is one row below gocsv: its fields (as many as the header), the
// customer id (key; "" when unknown) and what travels beside the decoded
// row (line, problem, fingerprint).
type rawRow struct {
	fields []string
	key    string
	rowMeta
}

// next reads one row with encoding/csv and checks it at the CSV level. A
// row-level problem is returned in the row; only I/O errors and io.EOF
// are errors.
func (cf *csvFile) next(maxField int) (rawRow, error) {
	rec, err := cf.r.Read()
	cf.guard.recordStart(cf.r.InputOffset())
	if err != nil {
		var pe *csv.ParseError
		if errors.Is(err, errRecordTooLong) {
			return rawRow{}, fmt.Errorf("the record after line %d is longer than %d MiB; is a quote left open?", cf.lastLine, maxRecordBytes>>20)
		}
		if !errors.As(err, &pe) {
			return rawRow{}, err
		}
		cf.lastLine = pe.Line
		row := rawRow{rowMeta: rowMeta{line: pe.StartLine, problem: &rowProblem{model.ReasonBadRow, "",
			fmt.Sprintf("not valid CSV: %v (column %d, line %d)", pe.Err, pe.Column, pe.Line)}}}
		// A partial record holds the fields read completely before the
		// error; if the ids are among them, the reject can name the
		// record.
		cf.fill(&row, rec, maxField)
		return row, nil
	}
	line, _ := cf.r.FieldPos(0)
	cf.lastLine = line
	return cf.row(line, rec, maxField), nil
}

// row is a complete record's row, from encoding/csv or the splitter
// alike: the field count checked, then fill.
func (cf *csvFile) row(line int, rec []string, maxField int) rawRow {
	row := rawRow{rowMeta: rowMeta{line: line}}
	if len(rec) != len(cf.header) {
		row.problem = &rowProblem{model.ReasonBadRow, "", fmt.Sprintf("row has %d fields; the header has %d", len(rec), len(cf.header))}
	}
	cf.fill(&row, rec, maxField)
	return row
}

// fill sets row.fields to rec cut or padded to the header's length, with
// unusable fields blanked (the first one becomes the row's problem unless
// it has one) so a 10 MB field is not carried further, and sets the key.
// For a short, long or partial row the positions may not match the
// header; the fields then only serve to name the rejected record.
func (cf *csvFile) fill(row *rawRow, rec []string, maxField int) {
	if len(rec) > len(cf.header) {
		rec = rec[:len(cf.header)]
	}
	for i, v := range rec {
		var p *rowProblem
		switch {
		case len(v) > maxField:
			p = &rowProblem{model.ReasonFieldTooLong, cf.header[i], fmt.Sprintf("%s is %d bytes; the limit is %d", cf.header[i], len(v), maxField)}
		case !utf8.ValidString(v):
			p = &rowProblem{model.ReasonEncoding, cf.header[i], fmt.Sprintf("%s is not valid UTF-8 (save the export as UTF-8)", cf.header[i])}
		default:
			continue
		}
		rec[i] = ""
		if row.problem == nil {
			row.problem = p
		}
	}
	for len(rec) < len(cf.header) {
		rec = append(rec, "")
	}
	row.fields = rec
	if cf.keyIdx >= 0 {
		row.key = strings.TrimSpace(rec[cf.keyIdx])
	}
}

// decoder adapts a stream of raw rows to gocsv.SimpleDecoder: the
// header, then every row's fields, nothing else. Each row's rowMeta goes
// into metas as the row goes to gocsv; gocsv turns every row into exactly
// one record, in order, so the reader pairs the nth record with the nth
// rowMeta. It stops with errStopped once done is closed.
type decoder struct {
	header  []string
	pull    func() (rawRow, error) // the next row; io.EOF at the end
	metas   chan<- rowMeta
	done    <-chan struct{}
	sentHdr bool
	buf     []string
}

var errStopped = errors.New("extract: reading stopped")

func (d *decoder) GetCSVRow() ([]string, error) {
	if !d.sentHdr {
		d.sentHdr = true
		return append([]string(nil), d.header...), nil
	}
	select {
	case <-d.done:
		return nil, errStopped
	default:
	}
	row, err := d.pull()
	if err != nil {
		return nil, err
	}
	select {
	case d.metas <- row.rowMeta:
	case <-d.done:
		return nil, errStopped
	}
	// gocsv copies every value into the record before asking for the
	// next row, so one buffer serves all rows.
	d.buf = append(d.buf[:0], row.fields...)
	return d.buf, nil
}

func (d *decoder) GetCSVRows() ([][]string, error) {
	return nil, errors.New("extract: the decoder streams rows one at a time")
}

// rec is what a stream decodes into: customerRec or cardRec.
type rec[T any] interface {
	*T
	meta() *rowMeta
}

// stream is a running gocsv decode of one file into a channel: the one
// decode path of CSV rows, whichever reader (encoding/csv or the
// splitter) found them.
type stream[T any, P rec[T]] struct {
	ch    chan *T
	metas chan rowMeta
	errc  chan error
	done  chan struct{}
	once  sync.Once
	cf    *csvFile
}

const streamBuffer = 256

// startStream opens the file and decodes it on a goroutine. keep filters
// rows below gocsv (shard and partition), so skipped rows cost no
// reflection. The caller must call stop.
func startStream[T any, P rec[T]](dir string, spec *fileSpec, maxField int, keep func(rawRow) bool) (*stream[T, P], error) {
	cf, err := openFile(dir, spec)
	if err != nil {
		return nil, err
	}
	pull := func() (rawRow, error) {
		for {
			row, err := cf.next(maxField)
			if err != nil || keep == nil || keep(row) {
				return row, err
			}
		}
	}
	return decodeStream[T, P](cf, pull), nil
}

// decodeStream decodes the rows pull returns with gocsv on a goroutine.
// cf names the file and is closed by stop.
func decodeStream[T any, P rec[T]](cf *csvFile, pull func() (rawRow, error)) *stream[T, P] {
	// gocsv holds at most streamBuffer records in ch, one it is filling
	// and one it is sending: metas never holds more rowMetas.
	s := &stream[T, P]{ch: make(chan *T, streamBuffer), metas: make(chan rowMeta, streamBuffer+2),
		errc: make(chan error, 1), done: make(chan struct{}), cf: cf}
	dec := &decoder{header: cf.header, pull: pull, metas: s.metas, done: s.done}
	go func() {
		err := gocsv.UnmarshalDecoderToChan(dec, s.ch)
		if errors.Is(err, io.EOF) {
			err = nil
		}
		s.errc <- err
	}()
	return s
}

// next returns the next record, or nil at the end; err is a read error.
func (s *stream[T, P]) next(ctx context.Context) (*T, error) {
	// Checked first: select picks at random among ready cases, and the
	// channel is nearly always ready.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r, ok := <-s.ch:
		if ok {
			*P(r).meta() = <-s.metas // sent before gocsv saw the row
			return r, nil
		}
	}
	if err := <-s.errc; err != nil {
		s.errc <- err
		return nil, fmt.Errorf("extract: %s: %w", s.cf.spec.name, err)
	}
	s.errc <- nil
	return nil, nil
}

// stop ends the decode goroutine and closes the file. The decoder sees
// done before its next row; draining unblocks a pending send.
func (s *stream[T, P]) stop() {
	s.once.Do(func() {
		close(s.done)
		for range s.ch {
		}
		<-s.errc
		s.cf.f.Close()
	})
}
