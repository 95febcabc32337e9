package extract

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// openTestFile writes customers.csv with header into a temp dir and
// opens it.
func openTestFile(t *testing.T, header string) *csvFile {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "customers.csv"), []byte(header+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cf, err := openFile(dir, customerSpec)
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

// gocsv sees only the file's columns; a row's line, problem and
// fingerprint travel beside it and come out as fields of the decoded
// record, the nth record with the nth row's.
func TestDecodeStreamCarriesRowMetaAsFields(t *testing.T) {
	cf := openTestFile(t, "customer_id,first_name,last_name,email,postal_code,country,created_at")
	bad := &rowProblem{"bad_row", "email", "a message with \x1f and , in it"}
	rows := []rawRow{
		{fields: []string{"C1", "Ada", "Lovelace", "a@x.io", "1", "US", "2020-01-01"}, key: "C1", rowMeta: rowMeta{line: 7, fp: []byte{1, 2, 3}}},
		{fields: []string{"C2", "x\x1fy", "", "", "", "", ""}, key: "C2", rowMeta: rowMeta{line: 9, problem: bad}},
		{fields: []string{"C3", "", "", "", "", "", ""}, key: "C3", rowMeta: rowMeta{line: 12}},
	}

	// What gocsv is handed: the header and the fields, nothing more.
	metas := make(chan rowMeta, len(rows))
	i := 0
	d := &decoder{header: cf.header, metas: metas, pull: func() (rawRow, error) {
		if i == len(rows) {
			return rawRow{}, io.EOF
		}
		i++
		return rows[i-1], nil
	}}
	got, err := d.GetCSVRow()
	if err != nil || !slices.Equal(got, cf.header) {
		t.Fatalf("header handed to gocsv: %q, %v; want %q", got, err, cf.header)
	}
	for _, r := range rows {
		got, err := d.GetCSVRow()
		if err != nil || !slices.Equal(got, r.fields) {
			t.Fatalf("row handed to gocsv: %q, %v; want %q", got, err, r.fields)
		}
		if m := <-metas; !reflect.DeepEqual(m, r.rowMeta) {
			t.Errorf("rowMeta %+v, want %+v", m, r.rowMeta)
		}
	}
	if _, err := d.GetCSVRow(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last row: %v, want io.EOF", err)
	}

	// Through gocsv.
	i = 0
	s := decodeStream[customerRec](cf, d.pull)
	defer s.stop()
	for _, want := range rows {
		rec, err := s.next(context.Background())
		if err != nil || rec == nil {
			t.Fatalf("next: %v, %v", rec, err)
		}
		if rec.CustomerID != want.fields[0] || rec.FirstName != want.fields[1] {
			t.Errorf("decoded %q %q, want %q %q", rec.CustomerID, rec.FirstName, want.fields[0], want.fields[1])
		}
		if rec.line != want.line || rec.problem != want.problem || !bytes.Equal(rec.fp, want.fp) {
			t.Errorf("%s: line %d problem %v fp %x, want %d %v %x", rec.CustomerID, rec.line, rec.problem, rec.fp, want.line, want.problem, want.fp)
		}
	}
	if rec, err := s.next(context.Background()); rec != nil || err != nil {
		t.Errorf("after the last row: %v, %v", rec, err)
	}
}

// The fast path builds its rows from the splitter's field spans: they
// must be what encoding/csv reads, and the fingerprint's canonical form
// must hold the same values.
func TestSplitRecordFieldsAreWhatEncodingCSVReads(t *testing.T) {
	for _, in := range []string{
		"a,b,c\n1,2,3\n",
		"a,b,c\r\n1,2,3\r\n",
		"a,b,\n1,,\n,\n",
		`a,"b,c",d` + "\n",
		`"a ""quoted"" word",x,"""",""""""` + "\n",
		"\"multi\nline\nfield\",z\nnext,row\n",
		`"",""` + "\n" + `a,"b",`,
	} {
		want, _, err := viaCSV([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		sp := newSplitter(strings.NewReader(in), 1, 1<<20, 64)
		for k := 0; ; k++ {
			raw, _, err := sp.next()
			if errors.Is(err, io.EOF) {
				if k != len(want) {
					t.Errorf("%q: %d records, want %d", in, k, len(want))
				}
				break
			}
			if err != nil {
				t.Fatalf("%q: %v", in, err)
			}
			r := srec{raw: raw}
			for i := 0; i < sp.fields(); i++ {
				r.quoted = r.quoted || len(sp.field(raw, i)) != int(sp.spans[2*i+1]-sp.spans[2*i])
			}
			if got := r.fields(); !slices.Equal(got, want[k]) {
				t.Errorf("%q record %d: fields %q, want %q", in, k, got, want[k])
			}
			if got := readCanonical(t, r.appendCanonical(nil, -1)); len(got) != 1 || !slices.Equal(got[0], want[k]) {
				t.Errorf("%q record %d: canonical form reads as %q, want %q", in, k, got, want[k])
			}
		}
	}
}

// readCanonical reads a fingerprint input back into its rows.
func readCanonical(t *testing.T, b []byte) [][]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("canonical form %q: %v", b, err)
	}
	return rows
}
