package partners_test

import (
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/providers/datafeed"
)

func buildDatafeed(opts map[string]string) (*datafeed.Client, error) {
	sp, _ := partners.Get(datafeed.Name)
	p := config.Partner{BaseURL: "http://127.0.0.1:9/datafeed", Options: opts}
	prov, err := sp.Build(p, partners.HTTPConfig(p))
	if err != nil {
		return nil, err
	}
	return prov.(*datafeed.Client), nil
}

func TestDatafeedOptions(t *testing.T) {
	// No credential at all: the client starts sessions itself.
	c, err := buildDatafeed(map[string]string{"organization_id": "50004", "map_account_type": "CHK=DDA, CREDIT=SBCRD",
		"map_alert_opt_in": "PUSH=NEW", "session_renew_before": "10m", "session_scopes": "api:institution"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Tokens().(*datafeed.Session); !ok {
		t.Fatalf("token source %T; want a session", c.Tokens())
	}
	cu := &model.Customer{ID: "C1", Address: model.Address{PostalCode: "78753", Country: "US"}, AlertOptIn: []string{"PUSH", "EMAIL"},
		Accounts: []model.Account{{ID: "A1", Type: "chk"}, {ID: "A2", Type: "CREDIT"}}}
	cu.Created = cu.Created.AddDate(2020, 0, 0)
	ops, rej := c.Map(cu)
	if len(rej) != 0 {
		t.Fatalf("rejects %+v", rej)
	}
	w := ops[0].Payload.(datafeed.Customer)
	if w.Accounts[0].Type != "DDA" || w.Accounts[1].Type != "SBCRD" || strings.Join(w.AlertOptInStatus, ",") != "NEW,ALL" {
		t.Fatalf("mapped %+v %v", w.Accounts, w.AlertOptInStatus)
	}

	c, err = buildDatafeed(map[string]string{"organization_id": "1", "default_codes": "false"})
	if err != nil {
		t.Fatal(err)
	}
	if _, rej := c.Map(cu); len(rej) != 1 || rej[0].Field != "alert_opt_in" {
		t.Fatalf("default codes off: rejects %+v; want EMAIL refused", rej)
	}

	for _, bad := range []map[string]string{
		{"map_account_type": "CREDIT=CREDIT"},
		{"map_targeting_indicator": "N"},
		{"default_codes": "maybe"},
		{"session_renew_before": "soon"},
		{"session_lifetime": "30m", "session_renew_before": "45m"},
		{"client_cert_file": "/nonexistent/tls.crt"},
	} {
		if _, err := buildDatafeed(bad); err == nil {
			t.Errorf("%v: want an error", bad)
		}
	}
}
