package extract

import (
	"bytes"
	"errors"
	"io"
)

// errIrregular means the bytes are not in the plain form the splitter
// reads: a bare or stray quote, a carriage return that does not end a
// line, an unterminated quote, a record over the size bound. The caller
// then reads the file with encoding/csv, which reports such rows exactly.
var errIrregular = errors.New("extract: irregular CSV")

// splitter finds the records of well-formed CSV (RFC 4180, as
// encoding/csv reads it with its defaults) and their field boundaries,
// without decoding the fields or allocating per record. It serves the
// pre-scan and the nightly fast path, which need each record's key and
// bytes, not its values; every record the splitter accepts,
// encoding/csv splits the same way (the tests compare the two).
type splitter struct {
	r    io.Reader
	buf  []byte
	pos  int // buf[pos:end] is unread
	end  int
	eof  bool
	line int // the line buf[pos] starts on

	spans []int32 // field i of the last record is rec[spans[2i]:spans[2i+1]], quotes included (records are bounded well below 2 GiB)
	max   int     // record size bound
}

// newSplitter reads r, whose first byte is on line; buf is the initial
// buffer size (it grows for a longer record, up to maxRecord).
func newSplitter(r io.Reader, line, maxRecord, buf int) *splitter {
	return &splitter{r: r, buf: make([]byte, max(buf, 1)), line: line, max: maxRecord}
}

// errShort: the record does not end within the buffered bytes.
var errShort = errors.New("short")

// next returns the next record's bytes, without its line end, and the
// line it starts on. The bytes are valid until the next call. It returns
// io.EOF at the end and errIrregular where encoding/csv must take over.
func (s *splitter) next() ([]byte, int, error) {
	for {
		rec, line, used, err := s.parse(s.buf[s.pos:s.end])
		switch err {
		case nil:
			s.pos += used
			return rec, line, nil
		case io.EOF:
			s.pos = s.end
			return nil, 0, io.EOF
		case errShort:
			if s.eof {
				return nil, 0, errIrregular // an unterminated quote
			}
			if s.end-s.pos > s.max {
				return nil, 0, errIrregular
			}
			if err := s.fill(); err != nil {
				return nil, 0, err
			}
		default:
			return nil, 0, err
		}
	}
}

// fill moves the unread bytes to the front, grows the buffer when they
// fill it, and reads more.
func (s *splitter) fill() error {
	if s.pos > 0 {
		s.end = copy(s.buf, s.buf[s.pos:s.end])
		s.pos = 0
	}
	if s.end == len(s.buf) {
		s.buf = append(s.buf, make([]byte, len(s.buf))...)
	}
	n, err := io.ReadAtLeast(s.r, s.buf[s.end:], 1)
	s.end += n
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		s.eof = true
		return nil
	}
	return err
}

// parse reads one record from data. used counts the bytes consumed,
// blank lines and the line end included.
func (s *splitter) parse(data []byte) (rec []byte, line, used int, err error) {
	i := 0
	line = s.line
	for { // blank lines are skipped, as encoding/csv does
		switch {
		case i < len(data) && data[i] == '\n':
			i++
			line++
			continue
		case i+1 < len(data) && data[i] == '\r' && data[i+1] == '\n':
			i += 2
			line++
			continue
		case i < len(data) && data[i] == '\r' && i+1 == len(data) && !s.eof:
			return nil, 0, 0, errShort
		}
		break
	}
	if i == len(data) {
		if s.eof {
			return nil, 0, 0, io.EOF
		}
		return nil, 0, 0, errShort
	}
	start := i
	s.spans = s.spans[:0]
	inner := 0 // newlines inside quoted fields
	for {
		if data[i] == '"' {
			j := i + 1
			for {
				q := bytes.IndexByte(data[j:], '"')
				if q < 0 {
					return nil, 0, 0, errShort
				}
				q += j
				inner += bytes.Count(data[j:q], []byte{'\n'})
				if bytes.IndexByte(data[j:q], '\r') >= 0 {
					return nil, 0, 0, errIrregular // encoding/csv rewrites \r\n inside quotes; leave it to it
				}
				if q+1 == len(data) {
					if !s.eof {
						return nil, 0, 0, errShort
					}
					s.spans = append(s.spans, int32(i-start), int32(q+1-start))
					s.line = line + 1 + inner
					return data[start : q+1], line, q + 1, nil
				}
				switch data[q+1] {
				case '"':
					j = q + 2
					continue
				case ',':
					s.spans = append(s.spans, int32(i-start), int32(q+1-start))
					i = q + 2
				case '\n':
					s.spans = append(s.spans, int32(i-start), int32(q+1-start))
					s.line = line + 1 + inner
					return data[start : q+1], line, q + 2, nil
				case '\r':
					if q+2 == len(data) && !s.eof {
						return nil, 0, 0, errShort
					}
					if q+2 < len(data) && data[q+2] == '\n' {
						s.spans = append(s.spans, int32(i-start), int32(q+1-start))
						s.line = line + 1 + inner
						return data[start : q+1], line, q + 3, nil
					}
					return nil, 0, 0, errIrregular
				default:
					return nil, 0, 0, errIrregular // text after a closing quote
				}
				break
			}
			if i == len(data) {
				// A comma right at the end of the buffer: the next field
				// may be empty (end of file) or still unread.
				if !s.eof {
					return nil, 0, 0, errShort
				}
				s.spans = append(s.spans, int32(i-start), int32(i-start))
				s.line = line + 1 + inner
				return data[start:i], line, i, nil
			}
			continue
		}
		// An unquoted field runs to the next comma or line end and holds
		// neither quote nor carriage return.
		nl := bytes.IndexByte(data[i:], '\n')
		if nl < 0 {
			if !s.eof {
				return nil, 0, 0, errShort
			}
			nl = len(data) - i
		}
		lineEnd := i + nl
		for {
			c := bytes.IndexByte(data[i:lineEnd], ',')
			fe := lineEnd
			if c >= 0 {
				fe = i + c
			}
			f := data[i:fe]
			if c < 0 && len(f) > 0 && f[len(f)-1] == '\r' && lineEnd < len(data) {
				f = f[:len(f)-1] // \r\n ends the line
				fe--
			}
			if bytes.IndexByte(f, '"') >= 0 || bytes.IndexByte(f, '\r') >= 0 {
				return nil, 0, 0, errIrregular
			}
			s.spans = append(s.spans, int32(i-start), int32(fe-start))
			if c < 0 {
				used := lineEnd + 1
				if lineEnd == len(data) {
					used = lineEnd
				}
				s.line = line + 1 + inner
				return data[start:fe], line, used, nil
			}
			i = fe + 1
			if i < lineEnd && data[i] == '"' {
				break // a quoted field follows
			}
			if i == lineEnd {
				// A trailing comma: one more, empty field.
				s.spans = append(s.spans, int32(i-start), int32(i-start))
				used := lineEnd + 1
				if lineEnd == len(data) {
					used = lineEnd
				}
				s.line = line + 1 + inner
				return data[start:i], line, used, nil
			}
		}
	}
}

// fields is how many fields the last record had.
func (s *splitter) fields() int { return len(s.spans) / 2 }

// field returns field i of rec (from the last next) unquoted. It
// allocates only for a quoted field with doubled quotes.
func (s *splitter) field(rec []byte, i int) []byte {
	f := rec[s.spans[2*i]:s.spans[2*i+1]]
	if len(f) >= 2 && f[0] == '"' {
		f = f[1 : len(f)-1]
		if bytes.IndexByte(f, '"') >= 0 {
			f = bytes.ReplaceAll(f, []byte(`""`), []byte(`"`))
		}
	}
	return f
}
