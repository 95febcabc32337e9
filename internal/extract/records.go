package extract

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// splitFile is one input file read with the splitter: its header is
// checked to be the one openFile validated.
type splitFile struct {
	f      *os.File
	sp     *splitter
	spec   *fileSpec
	fields int // columns in the header
	keyIdx int
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
	return &splitFile{f: f, sp: sp, spec: cf.spec, fields: len(cf.header), keyIdx: cf.keyIdx}, nil
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
	raw   []byte  // the record's bytes, line end excluded
	spans []int32 // field i is raw[spans[2i]:spans[2i+1]], quotes included (set by readRecords)
	line  int
	key   string // the customer id, as fill would read it
	clean bool   // the right number of fields, all valid UTF-8 and within the field bound
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
		r.clean = int(sf.sp.spans[2*i+1]-sf.sp.spans[2*i]) <= maxField
	}
	r.raw = rec
	return r, nil
}

func (r *srec) numFields() int { return len(r.spans) / 2 }

func (r *srec) appendValues(lens, vals []byte, skip int) ([]byte, []byte) {
	for i := 0; i < len(r.spans); i += 2 {
		at := len(vals)
		switch f := r.raw[r.spans[i]:r.spans[i+1]]; {
		case i == 2*skip:
		case len(f) == 0 || f[0] != '"':
			vals = append(vals, f...) // the common case, inline
		default:
			vals = appendUnquoted(vals, f)
		}
		lens = appendLen(lens, len(vals)-at)
	}
	return lens, vals
}

// appendUnquoted appends field f (as the splitter cut it) unquoted, as
// encoding/csv reads it.
func appendUnquoted(b, f []byte) []byte {
	if len(f) < 2 || f[0] != '"' {
		return append(b, f...)
	}
	f = f[1 : len(f)-1]
	for {
		q := bytes.IndexByte(f, '"')
		if q < 0 {
			return append(b, f...)
		}
		b = append(b, f[:q+1]...) // a doubled quote: keep one
		f = f[q+2:]
	}
}

// fields returns the record's fields unquoted, as encoding/csv reads
// them: substrings of one copy of the record, so a record costs one
// string allocation unless a field has doubled quotes.
func (r *srec) fields() []string {
	s := string(r.raw)
	out := make([]string, r.numFields())
	for i := range out {
		f := s[r.spans[2*i]:r.spans[2*i+1]]
		if len(f) >= 2 && f[0] == '"' {
			f = f[1 : len(f)-1]
			if strings.IndexByte(f, '"') >= 0 {
				f = strings.ReplaceAll(f, `""`, `"`)
			}
		}
		out[i] = f
	}
	return out
}

// srecBatch carries records read ahead by a file's reader goroutine.
type srecBatch struct {
	recs []srec
	err  error
}

// spanChunk is the size of one allocation of record spans: at most
// 32 KiB, the largest the allocator serves from its per-size caches.
const spanChunk = 8 << 10

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
		spans := make([]int32, 0, spanChunk)
		send := func(err error) bool {
			select {
			case ch <- srecBatch{recs, err}:
				recs = make([]srec, 0, n)
				arena = make([]byte, 0, 64<<10)
				spans = make([]int32, 0, spanChunk)
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
			if len(spans)+len(sf.sp.spans) > cap(spans) {
				spans = make([]int32, 0, max(spanChunk, len(sf.sp.spans)))
			}
			at = len(spans)
			spans = append(spans, sf.sp.spans...)
			r.spans = spans[at:len(spans):len(spans)]
			recs = append(recs, r)
			if len(recs) == n && !send(nil) {
				return
			}
		}
	}()
	return ch
}
