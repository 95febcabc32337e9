package extract

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"
)

// viaCSV is what encoding/csv reads: each record's fields and its line.
func viaCSV(data []byte) (recs [][]string, lines []int, err error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return recs, lines, nil
		}
		if err != nil {
			return recs, lines, err
		}
		line, _ := r.FieldPos(0)
		recs = append(recs, rec)
		lines = append(lines, line)
	}
}

// viaSplitter is what the splitter reads, or errIrregular.
func viaSplitter(data []byte, bufSize int) (recs [][]string, lines []int, err error) {
	s := newSplitter(bytes.NewReader(data), 1, 1<<20, bufSize)
	for {
		rec, line, err := s.next()
		if errors.Is(err, io.EOF) {
			return recs, lines, nil
		}
		if err != nil {
			return nil, nil, err
		}
		var fs []string
		for i := 0; i < s.fields(); i++ {
			fs = append(fs, string(s.field(rec, i)))
		}
		recs = append(recs, fs)
		lines = append(lines, line)
	}
}

// compareSplit: wherever the splitter does not hand the bytes to
// encoding/csv, it must read exactly what encoding/csv reads, whatever
// its buffer size (records cross buffer ends).
func compareSplit(data []byte) (regular bool, err error) {
	for _, size := range []int{1, 2, 3, 7, 64, 1 << 16} {
		got, gotLines, err := viaSplitter(data, size)
		if errors.Is(err, errIrregular) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("buffer %d: %v", size, err)
		}
		want, wantLines, werr := viaCSV(data)
		if werr != nil {
			return false, fmt.Errorf("buffer %d: the splitter read %q, but encoding/csv fails: %v", size, data, werr)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotLines, wantLines) {
			return false, fmt.Errorf("buffer %d, input %q:\nsplitter %q lines %v\ncsv      %q lines %v", size, data, got, gotLines, want, wantLines)
		}
	}
	return true, nil
}

func checkSplit(t *testing.T, data []byte) (regular bool) {
	t.Helper()
	type res struct {
		regular bool
		err     error
	}
	ch := make(chan res, 1)
	go func() {
		r, err := compareSplit(data)
		ch <- res{r, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.regular
	case <-time.After(5 * time.Second):
		t.Fatalf("the splitter does not finish on %q", data)
		return false
	}
}

func TestSplitterReadsWhatEncodingCSVReads(t *testing.T) {
	cases := []struct {
		in      string
		regular bool
	}{
		{"a,b,c\n1,2,3\n", true},
		{"a,b,c\r\n1,2,3\r\n", true},
		{"a,b\n1,2", true},       // no final line end
		{"a,b,\n1,,\n,\n", true}, // trailing and empty fields
		{"\n\na,b\n\r\n\n1,2\n\n", true},
		{`a,"b,c",d` + "\n", true},
		{`"a ""quoted"" word",x` + "\n", true},
		{"\"multi\nline\nfield\",z\nnext,row\n", true},
		{`"",""` + "\n", true},
		{`a,""` + "\n" + `"",b`, true},
		{`"a"` + "\r\n" + `"b",` + "\r\n", true},
		{`a,"b"`, true},
		{`a,"b",`, true},
		{"\xef\xbb\xbfa,b\n", true}, // a BOM is data to both (openFile strips it)
		{"a,b\"c\n", false},         // bare quote
		{`"a"b` + "\n", false},      // text after a closing quote
		{`"open` + "\n", false},     // unterminated
		{" \"a\",b\n", false},       // a space before the quote
		{"a\rb,c\n", false},         // a lone carriage return
		{"a,b\r", false},            // \r at the end of the file
		{"\"a\r\nb\",c\n", false},   // \r\n inside quotes
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q", c.in), func(t *testing.T) {
			if got := checkSplit(t, []byte(c.in)); got != c.regular {
				t.Errorf("regular = %v, want %v", got, c.regular)
			}
		})
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "\"x\"\"y\",\"m\nn\"\r\n,\n", "a,b,\r\n\r\n\"\",c", "\"a\"b\n", "x\ry"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSplit(t, data)
	})
}
