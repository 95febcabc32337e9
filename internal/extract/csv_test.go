package extract_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/extract"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/transform"
)

var now = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

const (
	custHdr = "customer_id,first_name,last_name,email,postal_code,country,created_at,date_of_birth"
	cardHdr = "card_id,customer_id,account_id,pan,cvv,exp_month,exp_year,card_type,is_default,network_id"
	cvv     = "987" // every fixture card's code; it must never appear in a message
)

// Test card numbers in the fixtures; none may appear in a message.
var fixturePANs = []string{"4111111111111111", "5555555555554444", "378282246310005", "4111111111111112", "4222222222222", "4111111111111111110"}

func cust(id string) string {
	return id + ",Ada,Lovelace," + strings.ToLower(id) + "@example.com,78753,US,2020-01-01,1980-01-01"
}

func card(custID, cardID, pan string) string {
	return cardID + "," + custID + ",A" + custID + "," + pan + "," + cvv + ",12,2030,credit,true,3"
}

func writeDir(t testing.TB, customers, cards string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"customers.csv": customers, "cards.csv": cards} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

type result struct {
	customers []*model.Customer
	rejects   []model.Reject
	stats     extract.Stats
}

func read(t testing.TB, dir string, opt extract.Options) (result, error) {
	t.Helper()
	if opt.Validator == nil {
		opt.Validator = transform.NewValidator([]byte("test-key"), now)
	}
	src, err := extract.OpenCSV(dir, opt)
	if err != nil {
		return result{}, err
	}
	var res result
	res.stats, err = src.Read(context.Background(),
		func(c *model.Customer) error { res.customers = append(res.customers, c); return nil },
		func(r model.Reject) error { res.rejects = append(res.rejects, r); return nil })
	return res, err
}

// checkAccounting asserts that every data row was counted once, as
// accepted or rejected, and that rejected rows are exactly the lines the
// rejects name.
func checkAccounting(t testing.TB, res result) {
	t.Helper()
	if len(res.stats.Files) != 2 {
		t.Fatalf("stats: %+v", res.stats)
	}
	lines := map[string]map[int]bool{}
	for _, r := range res.rejects {
		if lines[r.Origin.File] == nil {
			lines[r.Origin.File] = map[int]bool{}
		}
		if r.Origin.Line < 2 {
			t.Errorf("reject without a data line: %+v", r)
		}
		lines[r.Origin.File][r.Origin.Line] = true
	}
	cards := 0
	for _, c := range res.customers {
		cards += len(c.Cards())
	}
	accepted := map[string]int{"customers.csv": len(res.customers), "cards.csv": cards}
	for _, fs := range res.stats.Files {
		if fs.Rows != fs.Accepted+fs.Rejected {
			t.Errorf("%s: rows %d != accepted %d + rejected %d", fs.File, fs.Rows, fs.Accepted, fs.Rejected)
		}
		if fs.Rejected != len(lines[fs.File]) {
			t.Errorf("%s: %d rows rejected but rejects name %d lines", fs.File, fs.Rejected, len(lines[fs.File]))
		}
		if fs.Accepted != accepted[fs.File] {
			t.Errorf("%s: %d accepted, %d emitted", fs.File, fs.Accepted, accepted[fs.File])
		}
	}
	if res.stats.Customers != len(res.customers) {
		t.Errorf("stats say %d customers, %d emitted", res.stats.Customers, len(res.customers))
	}
}

func checkNoCardData(t testing.TB, rs []model.Reject) {
	t.Helper()
	for _, r := range rs {
		s := r.Error()
		for _, p := range fixturePANs {
			if strings.Contains(s, p) {
				t.Errorf("PAN in reject: %s", s)
			}
		}
		if strings.Contains(s, cvv) {
			t.Errorf("CVV in reject: %s", s)
		}
	}
}

func rejectStrings(rs []model.Reject) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s:%d %s %s %s", r.Origin.File, r.Origin.Line, r.EntityKey, r.Field, r.Reason)
	}
	slices.Sort(out)
	return out
}

func ids(cs []*model.Customer) []string {
	var out []string
	for _, c := range cs {
		s := c.ID + ":"
		for _, cd := range c.Cards() {
			s += cd.ID + ","
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestReadRejectsAndFormats(t *testing.T) {
	tests := []struct {
		name      string
		customers string
		cards     string
		accepted  []string // "id:card,card," sorted
		rejects   []string // "file:line key field reason"
		noUnsort  bool     // the input cannot take an extra row at its end
	}{
		{
			name:      "BOM and CRLF",
			customers: "\xEF\xBB\xBF" + strings.ReplaceAll(lines(custHdr, cust("C1")), "\n", "\r\n"),
			cards:     strings.ReplaceAll(lines(cardHdr, card("C1", "K1", "4111111111111111")), "\n", "\r\n"),
			accepted:  []string{"C1:K1,"},
		},
		{
			name:      "quoted comma and quoted newline keep line numbers",
			customers: lines(custHdr, `C1,"Ada, Countess",Lovelace,c1@example.com,78753,US,2020-01-01,`, `C2,"Two`, `Lines",X,c2@example.com,78753,US,2020-01-01,`, `C3,Bad,Mail,nope,78753,US,2020-01-01,`),
			cards:     lines(cardHdr),
			accepted:  []string{"C1:", "C2:"},
			rejects:   []string{"customers.csv:5 customer/C3 email bad_email"},
		},
		{
			name:      "bare quote is a bad row keyed by the id read before it",
			customers: lines(custHdr, cust("C1"), `C2,Ad"a,Lovelace,c2@example.com,78753,US,2020-01-01,`, cust("C3")),
			cards:     lines(cardHdr, card("C2", "K2", "4111111111111111"), card("C3", "K3", "4111111111111111")),
			accepted:  []string{"C1:", "C3:K3,"},
			rejects:   []string{"cards.csv:2 card/C2/K2 customer_id customer_rejected", "customers.csv:3 customer/C2  bad_row"},
		},
		{
			name:      "missing column in a row",
			customers: lines(custHdr, cust("C1"), "C2,Ada,Lovelace"),
			cards:     lines(cardHdr, card("C1", "K1", "4111111111111111"), "K9,C1,A1"),
			accepted:  []string{"C1:K1,"},
			rejects:   []string{"cards.csv:3 card/C1/K9  bad_row", "customers.csv:3 customer/C2  bad_row"},
		},
		{
			name:      "extra field in a row",
			customers: lines(custHdr, cust("C1")+",surplus"),
			cards:     lines(cardHdr),
			rejects:   []string{"customers.csv:2 customer/C1  bad_row"},
		},
		{
			name:      "non-UTF-8",
			customers: lines(custHdr, "C1,Ad\xffa,Lovelace,c1@example.com,78753,US,2020-01-01,"),
			cards:     lines(cardHdr),
			rejects:   []string{"customers.csv:2 customer/C1 first_name bad_encoding"},
		},
		{
			name:      "missing required values",
			customers: lines(custHdr, "C1,,Lovelace,,78753,US,2020-01-01,", ",Ada,Lovelace,x@example.com,78753,US,2020-01-01,"),
			cards:     lines(cardHdr, card("C1", "K1", "4111111111111111"), card("", "K2", "4111111111111111")),
			rejects: []string{"cards.csv:2 card/C1/K1 customer_id customer_rejected", "cards.csv:3 card//K2 customer_id missing_field",
				"customers.csv:2 customer/C1 email missing_field", "customers.csv:2 customer/C1 first_name missing_field",
				"customers.csv:3  customer_id missing_field"},
		},
		{
			name: "dates in other formats",
			customers: lines(custHdr,
				"C1,Ada,Lovelace,c1@example.com,78753,US,01/02/2017,",
				"C2,Ada,Lovelace,c2@example.com,78753,US,2017/01/01,",
				"C3,Ada,Lovelace,c3@example.com,78753,US,2017-01-01T08:00:00Z,1980-02-29",
				"C4,Ada,Lovelace,c4@example.com,78753,US,2017-01-01T08:00:00+02:00,1981-02-29",
				"C5,Ada,Lovelace,c5@example.com,78753,US,2017-01-01,29.02.1980"),
			cards:    lines(cardHdr),
			accepted: []string{"C3:"},
			rejects: []string{"customers.csv:2 customer/C1 created_at bad_date", "customers.csv:3 customer/C2 created_at bad_date",
				"customers.csv:5 customer/C4 date_of_birth bad_date", "customers.csv:6 customer/C5 date_of_birth bad_date"},
		},
		{
			name:      "card numbers",
			customers: lines(custHdr, cust("C1")),
			cards: lines(cardHdr,
				card("C1", "K1", "4111 1111 1111 1111"),
				card("C1", "K2", "5555-5555-5555-4444"),
				card("C1", "K3", "4111x11111111111"),
				card("C1", "K4", "411111111113"),
				card("C1", "K5", "41111111111111111113"),
				card("C1", "K6", "4222222222222"),
				card("C1", "K7", "4111111111111111110"),
				card("C1", "K8", "4111111111111112"),
				card("C1", "K9", "")),
			accepted: []string{"C1:K1,K2,K6,K7,"},
			rejects: []string{"cards.csv:10 card/C1/K9 pan missing_field", "cards.csv:4 card/C1/K3 pan bad_pan", "cards.csv:5 card/C1/K4 pan bad_pan",
				"cards.csv:6 card/C1/K5 pan bad_pan", "cards.csv:9 card/C1/K8 pan luhn_failed"},
		},
		{
			name:      "card fields",
			customers: lines(custHdr, cust("C1")),
			cards: lines(cardHdr,
				"K1,C1,A1,4111111111111111,987,5,2026,credit,,",
				"K2,C1,A1,4111111111111111,987,13,2030,credit,,",
				"K3,C1,A1,4111111111111111,987,12,30,credit,,",
				"K4,C1,A1,4111111111111111,98,12,2030,credit,,",
				"K5,C1,A1,4111111111111111,987,12,2030,prepaid,,",
				"K6,C1,A1,4111111111111111,987,12,2030,DEBIT,maybe,",
				"K7,C1,A1,4111111111111111,987,12,2030,Debit,yes,x3",
				"K8,C1,A1,4111111111111111,,6,2026,Debit,1,3"),
			accepted: []string{"C1:K8,"},
			rejects: []string{"cards.csv:2 card/C1/K1 exp_year card_expired", "cards.csv:3 card/C1/K2 exp_month bad_value",
				"cards.csv:4 card/C1/K3 exp_year bad_value", "cards.csv:5 card/C1/K4 cvv bad_cvv", "cards.csv:6 card/C1/K5 card_type bad_value",
				"cards.csv:7 card/C1/K6 is_default bad_value", "cards.csv:8 card/C1/K7 network_id bad_value"},
		},
		{
			name:      "customer without cards, unknown customer, card of a rejected customer",
			customers: lines(custHdr, cust("C1"), "C2,Ada,Lovelace,bad,78753,US,2020-01-01,", cust("C4")),
			cards:     lines(cardHdr, card("C2", "K2", "4111111111111111"), card("C3", "K3", "4111111111111111"), card("C9", "K9", "4111111111111111")),
			accepted:  []string{"C1:", "C4:"},
			rejects: []string{"cards.csv:2 card/C2/K2 customer_id customer_rejected", "cards.csv:3 card/C3/K3 customer_id unknown_customer",
				"cards.csv:4 card/C9/K9 customer_id unknown_customer", "customers.csv:3 customer/C2 email bad_email"},
		},
		{
			name:      "duplicate ids: the first row wins",
			customers: lines(custHdr, cust("C1"), cust("C1"), cust("C2")),
			cards:     lines(cardHdr, card("C1", "K1", "4111111111111111"), card("C1", "K1", "5555555555554444"), card("C1", "K2", "5555555555554444"), card("C2", "K1", "378282246310005")),
			accepted:  []string{"C1:K1,K2,", "C2:K1,"},
			rejects:   []string{"cards.csv:3 card/C1/K1 card_id duplicate_key", "customers.csv:3 customer/C1 customer_id duplicate_key"},
		},
		{
			name:      "duplicate ids apart (unsorted input)",
			customers: lines(custHdr, cust("C2"), cust("C1"), cust("C2")),
			cards:     lines(cardHdr, card("C2", "K1", "4111111111111111"), card("C1", "K1", "4111111111111111"), card("C2", "K1", "4111111111111111")),
			accepted:  []string{"C1:K1,", "C2:K1,"},
			rejects:   []string{"cards.csv:4 card/C2/K1 card_id duplicate_key", "customers.csv:4 customer/C2 customer_id duplicate_key"},
		},
		{
			name:      "cards and accounts",
			customers: lines(custHdr, cust("C1"), cust("C2")),
			cards: lines("card_id,customer_id,account_id,pan,exp_month,exp_year,card_type,account_holders,brand",
				"K1,C1,A1,4111111111111111,12,2030,debit,C1|C2,",
				"K2,C1,A1,5555555555554444,12,2030,debit,,Master Card",
				"K3,C1,A2,378282246310005,12,2030,credit,,",
				"K4,C2,A1,4111111111111111,12,2030,debit,C1|C2,"),
			accepted: []string{"C1:K1,K2,K3,", "C2:K4,"},
		},
		{
			name:      "unterminated quote swallows the rest of the file",
			customers: lines(custHdr, cust("C1"), `C2,"Ada,Lovelace,c2@example.com,78753,US,2020-01-01,`, cust("C3")),
			cards:     lines(cardHdr),
			accepted:  []string{"C1:"},
			rejects:   []string{"customers.csv:3 customer/C2  bad_row"},
			noUnsort:  true,
		},
		{
			name:      "header only",
			customers: lines(custHdr),
			cards:     lines(cardHdr),
		},
		{
			// An export that put the PAN in card_id: rejected by file and
			// line, and the number never shown, not even in the entity key
			// or the duplicate's message.
			name:      "card_id that is a card number",
			customers: lines(custHdr, cust("C1"), cust("C2"), "C3,Bad,Mail,nope,78753,US,2020-01-01,"),
			cards: lines(cardHdr, card("C1", "5555555555554444", "4111111111111111"), card("C1", "5555555555554444", "4111111111111111"),
				card("C2", "K2", "4111111111111111"), card("C2", "4111-1111-1111-1111", "4111111111111111"), card("C3", "378282246310005", "4111111111111111")),
			accepted: []string{"C1:", "C2:K2,"},
			rejects: []string{"cards.csv:2 card/C1/(card-number) card_id bad_value", "cards.csv:3 card/C1/(card-number) card_id duplicate_key",
				"cards.csv:5 card/C2/(card-number) card_id bad_value", "cards.csv:6 card/C3/(card-number) customer_id customer_rejected",
				"customers.csv:4 customer/C3 email bad_email"},
		},
		{
			name:      "header without a trailing newline",
			customers: custHdr,
			cards:     cardHdr,
			noUnsort:  true,
		},
	}
	for _, tc := range tests {
		// Every case runs as written (mostly sorted: one pass) and with
		// a customer appended that sorts first, which makes the input
		// unsorted and, with PartitionRows 1, takes several passes.
		variants := []struct {
			name      string
			customers string
			opt       extract.Options
			extra     []string
		}{{"as-is", tc.customers, extract.Options{}, nil}}
		if !tc.noUnsort {
			variants = append(variants, struct {
				name      string
				customers string
				opt       extract.Options
				extra     []string
			}{"unsorted", tc.customers + cust("A0") + "\n", extract.Options{PartitionRows: 1}, []string{"A0:"}})
		}
		for _, vr := range variants {
			t.Run(tc.name+"/"+vr.name, func(t *testing.T) {
				res, err := read(t, writeDir(t, vr.customers, tc.cards), vr.opt)
				if err != nil {
					t.Fatal(err)
				}
				want := append(slices.Clone(tc.accepted), vr.extra...)
				slices.Sort(want)
				if got := ids(res.customers); !slices.Equal(got, want) {
					t.Errorf("accepted %q, want %q", got, want)
				}
				wantRej := slices.Clone(tc.rejects)
				slices.Sort(wantRej)
				if got := rejectStrings(res.rejects); !slices.Equal(got, wantRej) {
					t.Errorf("rejects\n got %q\nwant %q", got, wantRej)
				}
				for _, r := range res.rejects {
					if r.Message == "" {
						t.Errorf("reject without message: %+v", r)
					}
				}
				checkAccounting(t, res)
				checkNoCardData(t, res.rejects)
			})
		}
	}
}

func TestParsedValues(t *testing.T) {
	dir := writeDir(t,
		lines("country,customer_id,first_name,last_name,email,phone,postal_code,created_at,alert_opt_in,member_id,state",
			`us,C1,"Ada, Countess",Lovelace,Ada@Example.com,(512) 555-0100,78753,2017-01-01T08:00:00+02:00,email| sms,42,tx`),
		lines("pan,card_id,customer_id,account_id,exp_month,exp_year,card_type,cvv,account_type",
			"4111 1111 1111 1111,K1,C1,A1,01,2030,Credit,987,"))
	res, err := read(t, dir, extract.Options{})
	if err != nil || len(res.customers) != 1 {
		t.Fatalf("err %v, result %+v", err, res)
	}
	c := res.customers[0]
	cd := c.Accounts[0].Cards[0]
	got := fmt.Sprintf("%s|%s|%s|%s|%s|%v|%s|%s|%s|%s|%s|%v|%s|%s|%s|%d|%s|%s|%v",
		c.FirstName, c.Email, c.Phone, c.Address.Country, c.Address.State, c.Created, c.EnrollmentStart.Format(time.RFC3339),
		c.Status, c.EnrollmentOptIn, c.TargetingIndicator, c.MemberID, c.AlertOptIn,
		c.Accounts[0].Type, c.Accounts[0].Status, c.Accounts[0].PrimaryCustomerID, cd.ExpMonth, cd.Type, cd.Brand, c.Origin)
	want := "Ada, Countess|Ada@example.com|+15125550100|US|TX|2017-01-01 06:00:00 +0000 UTC|2017-01-01T06:00:00Z|ACTIVE|ACTIVE|TARGET|42|[EMAIL SMS]|DDA|OPEN|C1|1|credit|visa|customers.csv:2"
	if got != want {
		t.Errorf("parsed\n got %s\nwant %s", got, want)
	}
	if cd.PAN.Reveal() != "4111111111111111" || cd.CVV.Reveal() != cvv || cd.Last4 != "1111" || cd.Fingerprint == "" || cd.Origin.String() != "cards.csv:2" {
		t.Errorf("card %+v", cd)
	}
}

func TestHeaderErrors(t *testing.T) {
	tests := []struct {
		name, customers, cards string
		want                   []string // substrings of the error
	}{
		{"unknown column", lines(custHdr + ",emial"), lines(cardHdr), []string{"customers.csv:1", `"emial"`}},
		{"upper-case column", lines(strings.Replace(custHdr, "email", "Email", 1)), lines(cardHdr), []string{"customers.csv:1", `"Email"`, "missing required column(s) email"}},
		{"missing required column", lines(strings.Replace(custHdr, ",email", "", 1)), lines(cardHdr), []string{"customers.csv:1", "missing required column(s) email"}},
		{"missing card column", lines(custHdr), lines(strings.Replace(cardHdr, ",pan", "", 1)), []string{"cards.csv:1", "missing required column(s) pan"}},
		{"column twice", lines(custHdr + ",email"), lines(cardHdr), []string{"customers.csv:1", "email appear more than once"}},
		{"empty customers", "", lines(cardHdr), []string{"customers.csv", "empty"}},
		{"empty cards", lines(custHdr), "", []string{"cards.csv", "empty"}},
		{"header not UTF-8", lines(custHdr + ",\xff"), lines(cardHdr), []string{"customers.csv:1", "UTF-8"}},
		{"header not CSV", lines(`customer_id,"first_name`), lines(cardHdr), []string{"customers.csv:1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := extract.OpenCSV(writeDir(t, tc.customers, tc.cards), extract.Options{Validator: transform.NewValidator(nil, now)})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := extract.OpenCSV(t.TempDir(), extract.Options{Validator: transform.NewValidator(nil, now)}); err == nil || !strings.Contains(err.Error(), "customers.csv") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := extract.OpenCSV(writeDir(t, lines(custHdr), lines(cardHdr)), extract.Options{}); err == nil {
		t.Error("no validator: no error")
	}
}

func TestHugeField(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	over := strings.Repeat("y", 64<<10+1)
	dir := writeDir(t,
		lines(custHdr, cust("C1"), "C2,"+over+",Lovelace,c2@example.com,78753,US,2020-01-01,", `C3,"`+big+`",Lovelace,c3@example.com,78753,US,2020-01-01,`, cust("C4")),
		lines(cardHdr, card("C2", "K2", "4111111111111111"), card("C4", "K4", "4111111111111111")))
	res, err := read(t, dir, extract.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"cards.csv:2 card/C2/K2 customer_id customer_rejected", "customers.csv:3 customer/C2 first_name field_too_long", "customers.csv:4 customer/C3 first_name field_too_long"}
	if got := rejectStrings(res.rejects); !slices.Equal(got, want) {
		t.Errorf("rejects %q", got)
	}
	if got := ids(res.customers); !slices.Equal(got, []string{"C1:", "C4:K4,"}) {
		t.Errorf("accepted %q", got)
	}
	for _, r := range res.rejects {
		if len(r.Message) > 200 {
			t.Errorf("message carries the field: %d bytes", len(r.Message))
		}
	}
	checkAccounting(t, res)
}

func TestShardFilter(t *testing.T) {
	dir := writeDir(t,
		lines(custHdr, cust("C1"), cust("C2"), "C3,Ada,Lovelace,bad,78753,US,2020-01-01,", `C4,"`),
		lines(cardHdr, card("C1", "K1", "4111111111111111"), card("C2", "K2", "4111111111111111"), card("C3", "K3", "4111111111111111"), card("C9", "K9", "4111111111111111")))
	keep := func(id string) bool { return id == "C2" || id == "C3" }
	for _, opt := range []extract.Options{{Keep: keep}, {Keep: keep, PartitionRows: 1}} {
		res, err := read(t, dir, opt)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(res.customers); !slices.Equal(got, []string{"C2:K2,"}) {
			t.Errorf("accepted %q", got)
		}
		want := []string{"cards.csv:4 card/C3/K3 customer_id customer_rejected", "customers.csv:4 customer/C3 email bad_email"}
		if got := rejectStrings(res.rejects); !slices.Equal(got, want) {
			t.Errorf("rejects %q", got)
		}
		if res.stats.Files[0].Rows != 2 || res.stats.Files[1].Rows != 2 {
			t.Errorf("rows outside the shard counted: %+v", res.stats)
		}
		checkAccounting(t, res)
	}
	src, err := extract.OpenCSV(dir, extract.Options{Validator: transform.NewValidator(nil, now), Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := src.Count(context.Background()); n != 2 || err != nil {
		t.Errorf("Count = %d, %v; want 2", n, err)
	}
}

func TestCardRowNeverPrintsCardData(t *testing.T) {
	r := extract.CardRow{CardID: "K1", CustomerID: "C1", PAN: "4111111111111111", CVV: cvv}
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%v %+v %#v %s", r, r, r, &r), r.String()} {
		if strings.Contains(s, "4111111111111111") || strings.Contains(s, cvv) || !strings.Contains(s, "K1") {
			t.Errorf("printed row: %s", s)
		}
	}
}

func TestStops(t *testing.T) {
	before := runtime.NumGoroutine()
	var cs, ks []string
	for i := 0; i < 2000; i++ {
		id := fmt.Sprintf("C%05d", i)
		cs = append(cs, cust(id))
		ks = append(ks, card(id, "K1", "4111111111111111"))
	}
	boom := errors.New("boom")
	for _, unsorted := range []bool{false, true} {
		customers := lines(append([]string{custHdr}, cs...)...)
		if unsorted {
			customers += cust("A0") + "\n"
		}
		dir := writeDir(t, customers, lines(append([]string{cardHdr}, ks...)...))
		src, err := extract.OpenCSV(dir, extract.Options{Validator: transform.NewValidator(nil, now), PartitionRows: 500})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		_, err = src.Read(context.Background(), func(*model.Customer) error {
			if n++; n == 10 {
				return boom
			}
			return nil
		}, func(model.Reject) error { return nil })
		if !errors.Is(err, boom) || n != 10 {
			t.Errorf("unsorted=%v: emit error: got %v after %d customers", unsorted, err, n)
		}
		ctx, cancel := context.WithCancel(context.Background())
		n = 0
		_, err = src.Read(ctx, func(*model.Customer) error {
			if n++; n == 10 {
				cancel()
			}
			return nil
		}, func(model.Reject) error { return nil })
		if !errors.Is(err, context.Canceled) || n > 10+256 {
			t.Errorf("unsorted=%v: cancel: got %v after %d customers", unsorted, err, n)
		}
		// A source can be read again after a stopped read.
		res := result{}
		res.stats, err = src.Read(context.Background(), func(c *model.Customer) error { res.customers = append(res.customers, c); return nil },
			func(r model.Reject) error { res.rejects = append(res.rejects, r); return nil })
		if err != nil || len(res.customers) != len(cs)+map[bool]int{false: 0, true: 1}[unsorted] {
			t.Errorf("unsorted=%v: reread: %v, %d customers", unsorted, err, len(res.customers))
		}
		checkAccounting(t, res)
	}
	// The decoding goroutines of the stopped reads must be gone.
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before, %d after", before, runtime.NumGoroutine())
		}
	}
}
