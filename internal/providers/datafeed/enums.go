package datafeed

import (
	"fmt"
	"sort"
	"strings"

	"github.com/northwind-data/etl/internal/redact"
)

// The fields whose values the partner publishes as enums, by the name of
// their source column (the name rejects and the map_<field> options use).
const (
	FieldEnrollmentOptIn = "enrollment_opt_in"   // enrollmentOptInStatus
	FieldAlertOptIn      = "alert_opt_in"        // alertOptInStatus[]
	FieldTargeting       = "targeting_indicator" // targetingIndicator
	FieldAccountStatus   = "account_status"      // accounts[].status
	FieldAccountType     = "account_type"        // accounts[].type
)

// Enums are the published values, per field, in the published order.
var Enums = map[string][]string{
	FieldEnrollmentOptIn: {"ACTIVE", "INACTIVE"},
	FieldAlertOptIn:      {"ALL", "NEW", "ACTIVATED", "EXPIRING", "REDEMPTION", "CLOSE_THE_LOOP", "MISSED_OPPORTUNITY"},
	FieldTargeting:       {"TARGET", "DO_NOT_TARGET"},
	FieldAccountStatus:   {"OPEN", "CLOSED", "DISPUTE", "FRAUD"},
	FieldAccountType:     {"PPD", "MMA", "CRD", "DDA", "SAV", "SBCRD", "SBDDA", "SBS"},
}

// wireName is the field's name in the partner's payload (for messages).
var wireName = map[string]string{
	FieldEnrollmentOptIn: "enrollmentOptInStatus",
	FieldAlertOptIn:      "alertOptInStatus",
	FieldTargeting:       "targetingIndicator",
	FieldAccountStatus:   "accounts[].status",
	FieldAccountType:     "accounts[].type",
}

// DefaultCodes translate the codes our own export and `etl gen` write
// (and that bank cores commonly use) to the published values. A bank's
// map_<field> option adds to them and wins where both name a code; the
// defaults are off with the option default_codes: "false".
var DefaultCodes = map[string]map[string]string{
	FieldAccountType: {"CREDIT": "CRD", "CHECKING": "DDA", "SAVINGS": "SAV"},
	FieldAlertOptIn:  {"EMAIL": "ALL", "SMS": "ALL"},
}

// ParseCodes reads a map_<field> option: "FROM=TO,FROM=TO", for example
// "CREDIT=CRD,CHK=DDA". Codes are compared without regard to case; every
// TO must be a published value of field.
func ParseCodes(field, s string) (map[string]string, error) {
	allowed, ok := Enums[field]
	if !ok {
		return nil, fmt.Errorf("no enum field %q (known: %s)", field, strings.Join(enumFields(), ", "))
	}
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		from, to, ok := strings.Cut(pair, "=")
		from, to = upper(strings.TrimSpace(from)), upper(strings.TrimSpace(to))
		if !ok || from == "" || to == "" {
			return nil, fmt.Errorf("%q: want FROM=TO", pair)
		}
		if !contains(allowed, to) {
			return nil, fmt.Errorf("%q: %s is not one of %s", pair, to, strings.Join(allowed, ", "))
		}
		out[from] = to
	}
	return out, nil
}

func enumFields() []string {
	out := make([]string, 0, len(Enums))
	for f := range Enums {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// validate checks that every configured code maps onto a published value.
func (o MapOptions) validate() error {
	for f, m := range o.Codes {
		allowed, ok := Enums[f]
		if !ok {
			return fmt.Errorf("datafeed: options.map_%s: no such enum field (known: %s)", f, strings.Join(enumFields(), ", "))
		}
		for from, to := range m {
			if !contains(allowed, to) {
				return fmt.Errorf("datafeed: options.map_%s: %s=%s: %s is not one of %s", f, from, to, to, strings.Join(allowed, ", "))
			}
		}
	}
	return nil
}

// enum maps v (after the default for an empty value) onto field's
// published values; ok is false when nothing maps it there.
func (o MapOptions) enum(field, v string) (string, bool) {
	v = upper(strings.TrimSpace(v))
	if to, ok := o.Codes[field][v]; ok {
		return to, true
	}
	if !o.NoDefaultCodes {
		if to, ok := DefaultCodes[field][v]; ok {
			return to, true
		}
	}
	return v, contains(Enums[field], v)
}

// enumMessage names the allowed values and the value found, masked and cut
// short: a misaligned export can put anything in a code column, a card
// number included, and rejects are stored.
func enumMessage(field, got string) string {
	got = redact.Text(got)
	if len(got) > 40 {
		got = got[:40] + "..."
	}
	return fmt.Sprintf("the data feed takes %s %s; got %q (map it with options.map_%s)",
		wireName[field], strings.Join(Enums[field], ", "), got, field)
}
