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
	raw    []byte // the record's bytes, line end excluded
	line   int
	key    string // the customer id, as fill would read it
	clean  bool   // the right number of fields, all valid UTF-8 and within the field bound
	quoted bool   // a field is quoted: raw is not the record's canonical form
	cut    [2]int // the CVV field's span in raw (cards.csv), left out of fingerprints
}

// next reads the next record; io.EOF at the end.
func (sf *splitFile) next(maxField int) (srec, error) {
	rec, line, err := sf.sp.next()
	if err != nil {
		return srec{}, err
	}
	r := srec{line: line, raw: rec}
	n := sf.sp.fields()
	if sf.keyIdx < n {
		if v := sf.sp.field(rec, sf.keyIdx); len(v) <= maxField && utf8.Valid(v) {
			r.key = strings.TrimSpace(string(v))
		}
	}
	r.clean = n == sf.fields && utf8.Valid(rec)
	spans := sf.sp.spans
	for i := 0; i < n; i++ {
		r.clean = r.clean && int(spans[2*i+1]-spans[2*i]) <= maxField
		r.quoted = r.quoted || (spans[2*i+1] > spans[2*i] && rec[spans[2*i]] == '"')
	}
	if sf.cvvIdx >= 0 && sf.cvvIdx < n {
		r.cut = [2]int{int(spans[2*sf.cvvIdx]), int(spans[2*sf.cvvIdx+1])}
	}
	return r, nil
}

// appendCanonical appends the record in canonical form (see
// appendCanonical), the CVV blank when skip is not -1: skip is the
// cards.csv CVV column, whose span next kept in cut. A record without
// quoted fields is its own canonical form: the nightly fast path hashes
// its bytes as they are.
func (r *srec) appendCanonical(b []byte, skip int) []byte {
	if !r.quoted {
		if skip < 0 {
			return append(b, r.raw...)
		}
		return append(append(b, r.raw[:r.cut[0]]...), r.raw[r.cut[1]:]...)
	}
	vals := r.fields()
	if skip >= 0 && skip < len(vals) {
		vals[skip] = ""
	}
	return appendCanonical(b, vals)
}

// fields returns the record's fields unquoted, as encoding/csv reads
// them: substrings of one copy of the record, so a record costs one
// string allocation unless a field has doubled quotes. The record is
// split again: keeping every record's field spans from the first split
// cost the nightly fast path more than splitting the few it decodes.
func (r *srec) fields() []string {
	sp := splitter{eof: true}
	if _, _, _, err := sp.parse(r.raw); err != nil {
		return nil // cannot happen: the splitter accepted these bytes; the row becomes a reject
	}
	s := string(r.raw)
	out := make([]string, sp.fields())
	for i := range out {
		f := s[sp.spans[2*i]:sp.spans[2*i+1]]
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
