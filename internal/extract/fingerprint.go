package extract

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"strings"
)

// fpRow is one source row as the fingerprint reads it. The CSV fast
// path's split records and the Postgres cursor's rows both implement it,
// so both sources hash the same inputs the same way.
type fpRow interface {
	// appendCanonical appends the row's values in canonical form (see
	// appendCanonical), value skip blank (-1: none).
	appendCanonical(b []byte, skip int) []byte
}

// appendCanonical appends vals as one canonical CSV record: joined by
// commas, a value quoted (its quotes doubled) exactly when it holds a
// comma, a quote, a CR or an LF. Each record has one such form, so equal
// forms mean equal values; and a CSV record without quoted fields is
// already in it (the splitter refuses a bare quote or CR), which lets the
// CSV fast path hash its bytes as read.
func appendCanonical(b []byte, vals []string) []byte {
	for i, v := range vals {
		if i > 0 {
			b = append(b, ',')
		}
		if !strings.ContainsAny(v, ",\"\r\n") {
			b = append(b, v...)
			continue
		}
		b = append(b, '"')
		b = append(b, strings.ReplaceAll(v, `"`, `""`)...)
		b = append(b, '"')
	}
	return b
}

// Fingerprint sources. The label goes into the key, so the same customer
// read from a CSV export and from a table has different fingerprints on
// purpose: switching sources compares every customer in full once, and
// never lets the same values under another column layout pass as
// unchanged. Both labels are v2 since the two sources share this
// function (CSV hashed the raw record bytes, Postgres length-prefixed
// values): the first run after the upgrade compares every customer in
// full once, as any new binary does anyway (the fingerprint scope names
// the binary).
const (
	fpSourceCSV      = "v2 csv"
	fpSourcePostgres = "v2 postgres"
)

// fingerprinter is the one fingerprint of a customer, for every source:
// a keyed HMAC over its customer row and then each of its card rows, in
// source order, each row in canonical form and ended by an LF. The CVV is
// hashed as empty: it is stored in no form, not even inside a keyed hash
// (the content hashes leave it out too, so a CVV-only change resends
// nothing either way). Not safe for concurrent use.
type fingerprinter struct {
	mac    hash.Hash
	buf    []byte
	cvv    int // the CVV's index among the card columns; -1 if none
	source string
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
// input, the CVV already blanked.
var fingerprintTrace func(source string, input []byte)

// sum is the fingerprint of one customer row and its card rows. The rows
// are laid out in one buffer and hashed in one write.
func (f *fingerprinter) sum(cust fpRow, cards []fpRow) []byte {
	f.buf = append(cust.appendCanonical(f.buf[:0], -1), '\n')
	for _, c := range cards {
		f.buf = append(c.appendCanonical(f.buf, f.cvv), '\n')
	}
	if fingerprintTrace != nil {
		fingerprintTrace(f.source, f.buf)
	}
	f.mac.Reset()
	f.mac.Write(f.buf)
	return f.mac.Sum(nil)
}

// A table row is fingerprinted from the values the cursor read (cols).
func (m *rowMeta) appendCanonical(b []byte, skip int) []byte {
	if skip < 0 || skip >= len(m.cols) {
		return appendCanonical(b, m.cols)
	}
	cvv := m.cols[skip]
	m.cols[skip] = ""
	b = appendCanonical(b, m.cols)
	m.cols[skip] = cvv
	return b
}
