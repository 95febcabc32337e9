package transform

import (
	"strconv"
	"strings"

	"github.com/northwind-data/etl/internal/model"
)

// Brand names as every partner mapper expects them.
const (
	BrandVisa       = "visa"
	BrandMastercard = "mastercard"
	BrandAmex       = "american express"
	BrandDiscover   = "discover"
	BrandMaestro    = "maestro"
	BrandUnionPay   = "unionpay"
	BrandUATP       = "uatp"
)

// binRange is an inclusive range of prefixes of one length: "51".."55"
// matches every PAN whose first two digits are 51 to 55.
type binRange struct {
	lo, hi int
	digits int
	brand  string
}

// binRanges follows braintree's credit-card-type (see FACTS.md). Ranges
// may overlap; the longest matching prefix wins, which is how 6011 is
// Discover although 6 alone is Maestro.
var binRanges = func() []binRange {
	spec := []struct{ lo, hi, brand string }{
		{"4", "4", BrandVisa},
		{"51", "55", BrandMastercard},
		{"2221", "2720", BrandMastercard},
		{"34", "34", BrandAmex},
		{"37", "37", BrandAmex},
		{"6011", "6011", BrandDiscover},
		{"644", "649", BrandDiscover},
		{"65", "65", BrandDiscover},
		{"493698", "493698", BrandMaestro},
		{"500000", "504174", BrandMaestro},
		{"504176", "506698", BrandMaestro},
		{"506779", "508999", BrandMaestro},
		{"56", "59", BrandMaestro},
		{"63", "63", BrandMaestro},
		{"67", "67", BrandMaestro},
		{"6", "6", BrandMaestro},
		{"622126", "622925", BrandUnionPay},
	}
	out := make([]binRange, len(spec))
	for i, s := range spec {
		lo, _ := strconv.Atoi(s.lo)
		hi, _ := strconv.Atoi(s.hi)
		out[i] = binRange{lo: lo, hi: hi, digits: len(s.lo), brand: s.brand}
	}
	return out
}()

// BrandFromPAN names the card brand from the number's prefix, or "" when
// no known range matches. It reads only the IIN and the length, which
// may be handled freely, never the full number.
func BrandFromPAN(p model.PAN) string {
	iin := p.IIN()
	if iin == "" {
		return ""
	}
	// UATP is not in braintree's table; its only mark is a leading 1 on a
	// 15-digit number.
	if iin[0] == '1' {
		if p.Len() == 15 {
			return BrandUATP
		}
		return ""
	}
	best, bestLen := "", 0
	for _, r := range binRanges {
		if r.digits <= bestLen {
			continue
		}
		v, _ := strconv.Atoi(iin[:r.digits])
		if v >= r.lo && v <= r.hi {
			best, bestLen = r.brand, r.digits
		}
	}
	return best
}

// brandAliases maps the spellings exports commonly use onto the
// canonical names.
var brandAliases = map[string]string{
	"visa": BrandVisa, "visa electron": BrandVisa,
	"mastercard": BrandMastercard, "master card": BrandMastercard, "mc": BrandMastercard, "master": BrandMastercard,
	"american express": BrandAmex, "americanexpress": BrandAmex, "american_express": BrandAmex, "amex": BrandAmex,
	"discover": BrandDiscover, "discover card": BrandDiscover,
	"maestro":  BrandMaestro,
	"unionpay": BrandUnionPay, "union pay": BrandUnionPay, "china unionpay": BrandUnionPay, "china union pay": BrandUnionPay,
	"uatp": BrandUATP,
}

// normalizeBrand returns the canonical brand for a given label, and false
// when the label names no brand the partners know.
func normalizeBrand(s string) (string, bool) {
	b, ok := brandAliases[strings.ToLower(strings.Join(strings.Fields(s), " "))]
	return b, ok
}
