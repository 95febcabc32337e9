package extract

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// fpRow is one source row as the fingerprint reads it: its values in
// column order. The CSV fast path's split records and the Postgres
// cursor's rows both implement it, so both sources hash the same
// inputs the same way.
type fpRow interface {
	numFields() int
	// appendValues appends every value but skip's to vals, unquoted, and
	// each one's length (appendLen; 0 for skip) to lens. One call per row,
	// not per value: the loop is the fast path's hot spot.
	appendValues(lens, vals []byte, skip int) ([]byte, []byte)
}

// appendLen appends a value's length as a uvarint.
func appendLen(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	return binary.AppendUvarint(b, uint64(n))
}

// Fingerprint sources. The label goes into the key, so the same customer
// read from a CSV export and from a table has different fingerprints on
// purpose: switching sources compares every customer in full once, and
// never lets the same values under another column layout pass as
// unchanged. Both labels are v2 since the two sources share this
// function (CSV hashed the raw record bytes, Postgres fixed-width value
// lengths): the first run after the upgrade compares every customer in
// full once, as any new binary does anyway (the fingerprint scope names
// the binary).
const (
	fpSourceCSV      = "v2 csv"
	fpSourcePostgres = "v2 postgres"
)

// fingerprinter is the one fingerprint of a customer, for every source:
// a keyed HMAC over its customer row and then each of its card rows, in
// source order; each row is its field count, every value's length (all
// uvarints) and the values. The CVV is hashed as empty: it is stored in
// no form, not even inside a keyed hash (the content hashes leave it out
// too, so a CVV-only change resends nothing either way). Not safe for
// concurrent use.
type fingerprinter struct {
	mac        hash.Hash
	lens, vals []byte // one row's encoding: field count and lengths, values
	cvv        int    // the CVV's index among the card columns; -1 if none
	source     string
}

// newFingerprinter keys the HMAC with key, the source label and the
// column names: a reordered or renamed column makes every fingerprint
// differ (one full comparison) rather than the same bytes mean other
// fields.
func newFingerprinter(key []byte, source string, custCols, cardCols []string) *fingerprinter {
	k := hmac.New(sha256.New, key)
	k.Write([]byte("etl customer fingerprint " + source + "\x00"))
	for _, cols := range [][]string{custCols, cardCols} {
		for _, c := range cols {
			k.Write([]byte(c))
			k.Write([]byte{0x1f})
		}
		k.Write([]byte{0x1e})
	}
	return &fingerprinter{mac: hmac.New(sha256.New, k.Sum(nil)), cvv: indexOf(cardCols, "cvv"), source: source}
}

// fingerprintTrace, when set (by tests), sees every fingerprint's
// inputs, the CVV already blanked.
var fingerprintTrace func(source string, rows [][]string)

// sum is the fingerprint of one customer row and its card rows.
func (f *fingerprinter) sum(cust fpRow, cards []fpRow) []byte {
	if fingerprintTrace != nil {
		fingerprintTrace(f.source, traceRows(cust, cards, f.cvv))
	}
	f.mac.Reset()
	f.row(cust, -1)
	for _, c := range cards {
		f.row(c, f.cvv)
	}
	return f.mac.Sum(nil)
}

// row hashes one row: its field count and every value's length (all
// uvarints), then the values. Lengths in a byte or two, not a fixed
// eight: the hash is most of the fast path's cost, and fixed-width
// lengths more than doubled its input.
func (f *fingerprinter) row(r fpRow, skip int) {
	f.lens = appendLen(f.lens[:0], r.numFields())
	f.lens, f.vals = r.appendValues(f.lens, f.vals[:0], skip)
	f.mac.Write(f.lens)
	f.mac.Write(f.vals)
}

// A table row is fingerprinted from the values the cursor read (cols).
func (m *rowMeta) numFields() int { return len(m.cols) }

func (m *rowMeta) appendValues(lens, vals []byte, skip int) ([]byte, []byte) {
	for i, v := range m.cols {
		if i == skip {
			v = ""
		}
		lens = appendLen(lens, len(v))
		vals = append(vals, v...)
	}
	return lens, vals
}

// traceRows returns the values sum hashes, for fingerprintTrace.
func traceRows(cust fpRow, cards []fpRow, cvv int) [][]string {
	row := func(r fpRow, skip int) []string {
		lens, vals := r.appendValues(nil, nil, skip)
		out := make([]string, r.numFields())
		for i := range out {
			n, k := binary.Uvarint(lens)
			lens = lens[k:]
			out[i], vals = string(vals[:n]), vals[n:]
		}
		return out
	}
	rows := [][]string{row(cust, -1)}
	for _, c := range cards {
		rows = append(rows, row(c, cvv))
	}
	return rows
}
