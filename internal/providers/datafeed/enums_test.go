package datafeed_test

import (
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/golden"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/providers/datafeed"
)

func TestMapChecksThePublishedEnums(t *testing.T) {
	bank := datafeed.MapOptions{Codes: map[string]map[string]string{
		"account_type":        {"CHK": "DDA", "CREDIT": "SBCRD"},
		"alert_opt_in":        {"PUSH": "NEW"},
		"targeting_indicator": {"N": "DO_NOT_TARGET"},
		"account_status":      {"CHARGED_OFF": "CLOSED"},
		"enrollment_opt_in":   {"Y": "ACTIVE"},
	}}
	tests := []struct {
		name  string
		o     datafeed.MapOptions
		mod   func(*model.Customer)
		field string // rejected field; "" = accepted
		check func(datafeed.Customer) bool
	}{
		{"published values pass", datafeed.MapOptions{}, func(c *model.Customer) {
			c.EnrollmentOptIn, c.TargetingIndicator, c.AlertOptIn = "INACTIVE", "DO_NOT_TARGET", []string{"NEW", "CLOSE_THE_LOOP"}
			c.Accounts[0].Type, c.Accounts[0].Status = "SBDDA", "FRAUD"
		}, "", func(w datafeed.Customer) bool {
			return w.EnrollmentOptInStatus == "INACTIVE" && w.AlertOptInStatus[1] == "CLOSE_THE_LOOP" && w.Accounts[0].Type == "SBDDA"
		}},
		{"case does not matter", datafeed.MapOptions{}, func(c *model.Customer) { c.Accounts[0].Type = "sav" }, "",
			func(w datafeed.Customer) bool { return w.Accounts[0].Type == "SAV" }},
		{"default codes: CREDIT, EMAIL|SMS", datafeed.MapOptions{}, func(c *model.Customer) {
			c.Accounts[0].Type, c.AlertOptIn = "CREDIT", []string{"EMAIL", "SMS"}
		}, "", func(w datafeed.Customer) bool {
			return w.Accounts[0].Type == "CRD" && len(w.AlertOptInStatus) == 1 && w.AlertOptInStatus[0] == "ALL"
		}},
		{"a bank's codes win over the defaults", bank, func(c *model.Customer) {
			c.Accounts[0].Type, c.Accounts[0].Status, c.AlertOptIn, c.TargetingIndicator, c.EnrollmentOptIn = "CREDIT", "charged_off", []string{"PUSH"}, "N", "Y"
		}, "", func(w datafeed.Customer) bool {
			return w.Accounts[0].Type == "SBCRD" && w.Accounts[0].Status == "CLOSED" && w.AlertOptInStatus[0] == "NEW" &&
				w.TargetingIndicator == "DO_NOT_TARGET" && w.EnrollmentOptInStatus == "ACTIVE"
		}},
		{"defaults off", datafeed.MapOptions{NoDefaultCodes: true}, func(c *model.Customer) { c.Accounts[0].Type = "CREDIT" }, "account_type", nil},
		{"enrollment", datafeed.MapOptions{}, func(c *model.Customer) { c.EnrollmentOptIn = "PENDING" }, "enrollment_opt_in", nil},
		{"alert", datafeed.MapOptions{}, func(c *model.Customer) { c.AlertOptIn = []string{"ALL", "PUSH"} }, "alert_opt_in", nil},
		{"targeting", datafeed.MapOptions{}, func(c *model.Customer) { c.TargetingIndicator = "YES" }, "targeting_indicator", nil},
		{"account status", datafeed.MapOptions{}, func(c *model.Customer) { c.Accounts[0].Status = "DORMANT" }, "account_status", nil},
		{"account type", datafeed.MapOptions{}, func(c *model.Customer) { c.Accounts[0].Type = "CHEQUE" }, "account_type", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := customer("C1")
			tc.mod(c)
			ops, rej := datafeed.Map(c, tc.o)
			if tc.field == "" {
				if len(rej) != 0 || len(ops) != 1 || !tc.check(ops[0].Payload.(datafeed.Customer)) {
					t.Fatalf("rejects %+v, payload %+v", rej, ops)
				}
				return
			}
			if len(ops) != 0 || len(rej) != 1 || rej[0].Field != tc.field || rej[0].Provider != datafeed.Name || rej[0].Reason != model.ReasonPartnerMapping {
				t.Fatalf("ops %d rejects %+v; want one reject of %s", len(ops), rej, tc.field)
			}
			// The message names the allowed values and the option to map a bank's codes.
			allowed := datafeed.Enums[tc.field]
			if msg := rej[0].Message; !strings.Contains(msg, strings.Join(allowed, ", ")) || !strings.Contains(msg, "options.map_"+tc.field) {
				t.Fatalf("message %q", msg)
			}
		})
	}
}

func TestParseCodes(t *testing.T) {
	m, err := datafeed.ParseCodes("account_type", " credit=CRD , Chk=dda,")
	if err != nil || m["CREDIT"] != "CRD" || m["CHK"] != "DDA" || len(m) != 2 {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []struct{ field, s string }{
		{"account_type", "CREDIT=CREDIT"}, {"account_type", "CREDIT"}, {"account_type", "=DDA"}, {"card_type", "A=B"},
	} {
		if _, err := datafeed.ParseCodes(bad.field, bad.s); err == nil {
			t.Errorf("%s %q: want an error", bad.field, bad.s)
		}
	}
}

// What our own sample data and `etl gen` write (account type CREDIT,
// alert opt-in EMAIL|SMS) maps onto published values by default.
func TestMapGoldenBankCodes(t *testing.T) {
	c := customer("C3")
	c.AlertOptIn = []string{"EMAIL", "SMS"}
	c.Accounts[0].Type = "CREDIT"
	ops, rej := datafeed.Map(c, datafeed.MapOptions{})
	if len(rej) != 0 || len(ops) != 1 {
		t.Fatalf("ops %d rejects %v", len(ops), rej)
	}
	golden.AssertJSON(t, "customer_with_bank_codes.golden.json", datafeed.Request{Customers: []datafeed.Customer{ops[0].Payload.(datafeed.Customer)}})
}

func TestNetworkIdentifierIsThePublishedCode(t *testing.T) {
	for _, tc := range []struct {
		brand  string
		source int
		want   string
	}{{"visa", 1, "4"}, {"mastercard", 2, "5"}, {"american express", 0, "3"}, {"discover", 4, "6"}, {"maestro", 9, "9"}} {
		c := customer("C1")
		c.Accounts[0].Cards[0].Brand, c.Accounts[0].Cards[0].NetworkID = tc.brand, tc.source
		ops, _ := datafeed.Map(c, datafeed.MapOptions{})
		if got := ops[0].Payload.(datafeed.Customer).Accounts[0].Cards[0].NetworkIdentifier.String(); got != tc.want {
			t.Errorf("%s with network_id %d: %s, want %s", tc.brand, tc.source, got, tc.want)
		}
	}
}

func TestEnumRejectNeverCarriesACardNumber(t *testing.T) {
	c := customer("C1")
	c.Accounts[0].Type = "4111 1111 1111 1111" // a misaligned export
	_, rej := datafeed.Map(c, datafeed.MapOptions{})
	if len(rej) != 1 || strings.Contains(strings.NewReplacer(" ", "").Replace(rej[0].Message), "4111111111111111") {
		t.Fatalf("rejects %+v", rej)
	}
}
