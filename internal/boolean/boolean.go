// Package boolean is the one way etl reads a yes/no value, wherever it
// comes from: config files, environment variables, CSV columns, flags. A
// value that is not clearly one or the other is an error, never false:
// `ETL_SYNCTERA_ENABLED=TRUE` must not switch a partner off, and
// `ETL_FORBID_INLINE_SECRETS=0` must not forbid.
package boolean

import (
	"fmt"
	"strings"
)

// Parse reads true/false, 1/0 or yes/no, in any case, with surrounding
// spaces ignored. Anything else, the empty string included, is an error
// naming the value and what is accepted.
func Parse(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true/false, 1/0, yes/no)", s)
}
