package boolean_test

import (
	"testing"

	"github.com/northwind-data/etl/internal/boolean"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
		ok   bool
	}{
		{"true", true, true}, {"TRUE", true, true}, {" Yes ", true, true}, {"1", true, true}, {"YES", true, true},
		{"false", false, true}, {"False", false, true}, {"no", false, true}, {"NO", false, true}, {"0", false, true},
		{"", false, false}, {"on", false, false}, {"y", false, false}, {"t", false, false}, {"2", false, false}, {"maybe", false, false},
	} {
		got, err := boolean.Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
