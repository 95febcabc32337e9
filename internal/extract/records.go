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
	"strings"
	"unicode/utf8"

	"github.com/northwind-data/etl/internal/model"
)

// splitFile is one input file read with the splitter: its header is
// checked to be the one openFile validated.
type splitFile struct {
	f      *os.File
	sp     *splitter
	spec   *fileSpec
	fields int // columns in the header
	keyIdx int
	cvvIdx int // -1 when the file has no cvv column
}

// openSplit opens the file for the splitter, after openFile (cf) checked
// its header. errIrregular: the header itself is not plain.
func openSplit(dir string, cf *csvFile) (*splitFile, error) {
	f, err := os.Open(filepath.Join(dir, cf.spec.name))
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	if b, err := br.Peek(len(bom)); err == nil && bytes.Equal(b, bom) {
		_, _ = br.Discard(len(bom))
	}
	sp := newSplitter(br, 1, int(maxRecordBytes), 256<<10)
	hdr, _, err := sp.next()
	if err != nil {
		f.Close()
		if errors.Is(err, io.EOF) {
			err = errIrregular
		}
		return nil, err
	}
	if sp.fields() != len(cf.header) {
		f.Close()
		return nil, errIrregular
	}
	for i, h := range cf.header {
		if string(sp.field(hdr, i)) != h {
			f.Close()
			return nil, errIrregular
		}
	}
	return &splitFile{f: f, sp: sp, spec: cf.spec, fields: len(cf.header), keyIdx: cf.keyIdx, cvvIdx: indexOf(cf.header, "cvv")}, nil
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// srec is one record as the splitter found it.
type srec struct {
	raw   []byte // the record's bytes, line end excluded
	line  int
	key   string // the customer id, as fill would read it
	clean bool   // the right number of fields, all valid UTF-8 and within the field bound
	cut   [2]int // the CVV field's span in raw, left out of fingerprints
}

// next reads the next record; io.EOF at the end.
func (sf *splitFile) next(maxField int) (srec, error) {
	rec, line, err := sf.sp.next()
	if err != nil {
		return srec{}, err
	}
	r := srec{line: line}
	n := sf.sp.fields()
	if sf.keyIdx < n {
		if v := sf.sp.field(rec, sf.keyIdx); len(v) <= maxField && utf8.Valid(v) {
			r.key = strings.TrimSpace(string(v))
		}
	}
	r.clean = n == sf.fields && utf8.Valid(rec)
	for i := 0; r.clean && i < n; i++ {
		r.clean = sf.sp.spans[2*i+1]-sf.sp.spans[2*i] <= maxField
	}
	if sf.cvvIdx >= 0 && sf.cvvIdx < n {
		r.cut = [2]int{sf.sp.spans[2*sf.cvvIdx], sf.sp.spans[2*sf.cvvIdx+1]}
	}
	r.raw = rec
	return r, nil
}

// recordDecoder turns a record the splitter found into the row the
// encoding/csv path would have read, for the few records the fast path
// does decode. One csv.Reader is fed one record at a time.
type recordDecoder struct {
	cf   *csvFile
	feed feeder
	r    *csv.Reader
	buf  []byte
}

type feeder struct{ b []byte }

func (f *feeder) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

func newRecordDecoder(cf *csvFile) *recordDecoder {
	d := &recordDecoder{cf: cf}
	d.reset()
	return d
}

func (d *recordDecoder) reset() {
	d.feed.b = nil
	d.r = csv.NewReader(&d.feed)
	d.r.FieldsPerRecord = -1
}

func (d *recordDecoder) decode(r *srec, maxField int) rawRow {
	// The record plus a line end: the reader stops at it, before asking
	// for more, so the next record can be fed to the same reader.
	// The reader copies what it returns, so one buffer serves all records.
	d.buf = append(append(d.buf[:0], r.raw...), '\n')
	d.feed.b = d.buf
	rec, err := d.r.Read()
	row := rawRow{line: r.line}
	if err != nil || len(d.feed.b) > 0 {
		// Cannot happen for a record the splitter accepted; reported
		// rather than trusted if it does.
		d.reset()
		row.problem = &rowProblem{model.ReasonBadRow, "", fmt.Sprintf("not valid CSV: %v", err)}
		d.cf.fill(&row, nil, maxField)
		return row
	}
	if len(rec) != len(d.cf.header) {
		row.problem = &rowProblem{model.ReasonBadRow, "", fmt.Sprintf("row has %d fields; the header has %d", len(rec), len(d.cf.header))}
	}
	d.cf.fill(&row, rec, maxField)
	return row
}

// srecBatch carries records read ahead by a file's reader goroutine.
type srecBatch struct {
	recs []srec
	err  error
}

// readRecords reads the file's records that keep accepts on a goroutine,
// in batches (each record's bytes copied), until the end, an error or
// ctx.
func readRecords(ctx context.Context, sf *splitFile, maxField int, keep func(string) bool) <-chan srecBatch {
	ch := make(chan srecBatch, 2)
	go func() {
		defer close(ch)
		const n = 512
		recs := make([]srec, 0, n)
		arena := make([]byte, 0, 64<<10)
		send := func(err error) bool {
			select {
			case ch <- srecBatch{recs, err}:
				recs = make([]srec, 0, n)
				arena = make([]byte, 0, 64<<10)
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			r, err := sf.next(maxField)
			if errors.Is(err, io.EOF) {
				send(nil)
				return
			}
			if err != nil {
				if errors.Is(err, errIrregular) {
					err = fmt.Errorf("the file is no longer the one scanned at the start (line %d): the source changed while it was read", sf.sp.line)
				}
				send(fmt.Errorf("extract: %s: %w", sf.spec.name, err))
				return
			}
			if !keep(r.key) {
				continue
			}
			// One allocation per batch, not per record.
			if len(arena)+len(r.raw) > cap(arena) {
				arena = make([]byte, 0, max(64<<10, len(r.raw)))
			}
			at := len(arena)
			arena = append(arena, r.raw...)
			r.raw = arena[at:len(arena):len(arena)]
			recs = append(recs, r)
			if len(recs) == n && !send(nil) {
				return
			}
		}
	}()
	return ch
}
