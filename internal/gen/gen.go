// Package gen writes synthetic customers.csv and cards.csv for
// benchmarks, demos and tests: realistic, a little messy (spacing, case,
// phone formats, formatted card numbers) in ways the pipeline must
// normalise, and optionally with a fraction of deliberately bad rows.
//
// Every customer is generated from (Seed, its index) alone, so any order
// of writing gives the same rows and memory stays flat at any size.
package gen

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Options say what to generate.
type Options struct {
	Customers        int     // customer ids to generate
	CardsPerCustomer float64 // mean cards per customer (Poisson, at most 6); e.g. 1.5
	// BadFraction of customers get one deliberate defect: a bad e-mail,
	// a missing required field, a duplicate customer id, cards whose
	// customer row is missing, a card failing Luhn, or an expired card.
	BadFraction float64
	Seed        uint64
	// Sorted writes both files in customer_id order (the one-pass path
	// of the CSV source); false writes customers and their card blocks
	// in a scrambled order. The zero value is false: set it.
	Sorted bool
	Now    time.Time // expiry dates are in the future of Now; zero means time.Now()
}

// Stats counts what was written. The Bad counts are the rows the CSV
// source will reject, so a test can check its accounting exactly:
// CustomerRows - BadCustomerRows customers are accepted.
type Stats struct {
	CustomerRows    int
	CardRows        int
	BadCustomerRows int // bad e-mail, missing field, second row of a duplicate id
	BadCardRows     int // Luhn, expired, cards of bad or missing customers
}

// The kinds of defect.
const (
	defectNone = iota
	defectEmail
	defectMissing
	defectDuplicate
	defectOrphan // the customer row is left out; its cards remain
	defectLuhn
	defectExpired
	defectKinds
)

var customerHeader = []string{"customer_id", "parent_customer_id", "organization_id", "organization_name", "first_name",
	"middle_name", "last_name", "email", "phone", "date_of_birth", "address_line1", "address_line2", "city", "state",
	"postal_code", "country", "status", "created_at", "enrollment_start", "enrollment_end", "enrollment_opt_in",
	"alert_opt_in", "targeting_indicator", "member_id"}

var cardHeader = []string{"card_id", "customer_id", "account_id", "account_type", "account_status", "portfolio_id",
	"account_open_date", "account_close_date", "account_holders", "pan", "cvv", "exp_month", "exp_year", "card_type",
	"brand", "name_on_card", "billing_zip", "card_status", "network_id", "open_date", "close_date", "is_default", "label"}

// Write writes dir/customers.csv and dir/cards.csv, streaming: memory
// does not depend on opt.Customers.
func Write(dir string, opt Options) (Stats, error) {
	if opt.Customers < 0 || opt.CardsPerCustomer < 0 || opt.BadFraction < 0 || opt.BadFraction > 1 {
		return Stats{}, errors.New("gen: Customers and CardsPerCustomer must be >= 0 and BadFraction in [0, 1]")
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	opt.Now = opt.Now.UTC()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Stats{}, fmt.Errorf("gen: %w", err)
	}
	g := &generator{opt: opt, width: max(7, len(strconv.Itoa(opt.Customers)))}
	var st Stats
	if err := writeFile(filepath.Join(dir, "customers.csv"), customerHeader, func(w *csv.Writer) error {
		return g.each(1, func(i int) error { return g.customerRows(w, i, &st) })
	}); err != nil {
		return Stats{}, err
	}
	if err := writeFile(filepath.Join(dir, "cards.csv"), cardHeader, func(w *csv.Writer) error {
		return g.each(2, func(i int) error { return g.cardRows(w, i, &st) })
	}); err != nil {
		return Stats{}, err
	}
	return st, nil
}

func writeFile(path string, header []string, body func(*csv.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	w := csv.NewWriter(bw)
	err = w.Write(header)
	if err == nil {
		err = body(w)
	}
	if w.Flush(); err == nil {
		err = w.Error()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("gen: %s: %w", path, err)
	}
	return nil
}

type generator struct {
	opt   Options
	width int
}

// each visits every customer index, in order when sorted, otherwise in
// a scrambled order (an affine permutation, so no index list is held).
func (g *generator) each(salt uint64, f func(int) error) error {
	n := g.opt.Customers
	a, b := 1, 0
	if !g.opt.Sorted && n > 1 {
		r := rand.New(rand.NewPCG(g.opt.Seed, salt))
		a = n/2 + 1 + r.IntN(n)
		for gcd(a, n) != 1 {
			a++
		}
		b = r.IntN(n)
	}
	for p := 0; p < n; p++ {
		if err := f((a*p + b) % n); err != nil {
			return err
		}
	}
	return nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (g *generator) id(prefix string, i int) string {
	return fmt.Sprintf("%s%0*d", prefix, g.width, i+1)
}

// rng is the customer's own random stream: the same for the same seed
// and index, however the files are ordered.
func (g *generator) rng(i int, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(g.opt.Seed^0x9e3779b97f4a7c15*stream, uint64(i)))
}

func (g *generator) defect(i int) int {
	r := g.rng(i, 1)
	if r.Float64() >= g.opt.BadFraction {
		return defectNone
	}
	return 1 + r.IntN(defectKinds-1)
}

// joint reports whether customer i shares its first account with
// customer i+1 (a household: about 3% of customers).
func (g *generator) joint(i int) bool {
	return i%2 == 0 && i+1 < g.opt.Customers && g.rng(i, 2).Float64() < 0.06
}

// person is what both files need to know about a customer.
type person struct {
	id, first, last, zip string
	city                 city
	created              time.Time
}

func (g *generator) person(i int) person {
	r := g.rng(i, 3)
	c := cities[r.IntN(len(cities))]
	p := person{
		id:    g.id("C", i),
		first: firstNames[r.IntN(len(firstNames))],
		last:  lastNames[r.IntN(len(lastNames))],
		zip:   c.zip3 + fmt.Sprintf("%02d", r.IntN(100)),
		city:  c,
	}
	start := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	span := g.opt.Now.AddDate(0, -1, 0).Sub(start)
	if span <= 0 {
		span = time.Hour
	}
	p.created = start.Add(time.Duration(r.Int64N(int64(span)))).Truncate(time.Second)
	return p
}

func (g *generator) customerRows(w *csv.Writer, i int, st *Stats) error {
	d := g.defect(i)
	if d == defectOrphan {
		return nil
	}
	p := g.person(i)
	r := g.rng(i, 4)
	c := p.city

	first, last := p.first, p.last
	if r.IntN(20) == 0 {
		first = "  " + first + " " // exports pad; the validator trims
	}
	middle := ""
	if r.IntN(10) < 3 {
		middle = middleNames[r.IntN(len(middleNames))]
	}
	email := fmt.Sprintf("%s.%s%d@%s", ascii(p.first), ascii(p.last), i+1, emailDomains[r.IntN(len(emailDomains))])
	phone := g.phone(r, c.area)
	dob := time.Date(1945+r.IntN(60), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	if r.IntN(200) == 0 {
		dob = fmt.Sprintf("%d-02-29", 1948+4*r.IntN(14)) // leap-day birthdays are valid
	}
	line2 := ""
	if r.IntN(10) == 0 {
		line2 = fmt.Sprintf("Apt %d%c", 1+r.IntN(30), 'A'+rune(r.IntN(6)))
	}
	country := "US"
	if r.IntN(25) == 0 {
		country = "us"
	}
	status := "ACTIVE"
	if r.IntN(33) == 0 {
		status = "INACTIVE"
	}
	created := p.created.Format(time.RFC3339)
	if r.IntN(5) == 0 {
		created = p.created.Format(time.DateOnly)
	}
	enrollStart := ""
	if r.IntN(2) == 0 {
		enrollStart = p.created.AddDate(0, 0, r.IntN(90)).Format(time.RFC3339)
	}
	alerts := []string{"ALL", "ALL", "", "EMAIL|SMS", "EMAIL"}[r.IntN(5)]
	member := ""
	if r.IntN(10) != 0 {
		member = strconv.Itoa(100000 + i)
	}
	parent := ""
	if i > 0 && g.joint(i-1) {
		parent = g.id("C", i-1)
	}
	zip := p.zip
	switch d {
	case defectEmail:
		email = []string{strings.Replace(email, "@", ".", 1), ascii(p.first) + "@localhost", "@" + emailDomains[0]}[r.IntN(3)]
	case defectMissing:
		if r.IntN(2) == 0 {
			last = ""
		} else {
			zip = ""
		}
	}
	row := []string{p.id, parent, "50004", "Northwind Bank", first, middle, last, email, phone, dob,
		fmt.Sprintf("%d %s %s", 1+r.IntN(9999), streets[r.IntN(len(streets))], streetSuffixes[r.IntN(len(streetSuffixes))]),
		line2, c.name, c.state, zip, country, status, created, enrollStart, "", []string{"ACTIVE", ""}[r.IntN(2)],
		alerts, []string{"TARGET", ""}[r.IntN(2)], member}
	if err := w.Write(row); err != nil {
		return err
	}
	st.CustomerRows++
	switch d {
	case defectEmail, defectMissing:
		st.BadCustomerRows++
	case defectDuplicate:
		// The same id again with other details: the first row wins.
		row[7] = "other." + email
		if err := w.Write(row); err != nil {
			return err
		}
		st.CustomerRows++
		st.BadCustomerRows++
	}
	return nil
}

func (g *generator) phone(r *rand.Rand, area string) string {
	n := fmt.Sprintf("%02d", r.IntN(100))
	switch r.IntN(10) {
	case 0:
		return ""
	case 1, 2:
		return "(" + area + ") 555-01" + n
	case 3, 4:
		return area + "-555-01" + n
	case 5:
		return area + ".555.01" + n
	case 6:
		return "+1 " + area + " 555 01" + n
	case 7:
		return "1" + area + "55501" + n
	default:
		return "+1" + area + "55501" + n
	}
}

// account is one of a customer's accounts as the card rows describe it.
type account struct {
	id, typ, holders, opened string
	debit                    bool
}

func (g *generator) cardRows(w *csv.Writer, i int, st *Stats) error {
	d := g.defect(i)
	p := g.person(i)
	r := g.rng(i, 5)
	n := poisson(r, g.opt.CardsPerCustomer)
	if n == 0 && (d == defectLuhn || d == defectExpired || d == defectOrphan) {
		n = 1 // the defect needs a card to live on
	}
	accounts := []account{}
	newAccount := func(owner int, holders string) account {
		ar := g.rng(owner, 6+uint64(len(accounts)))
		a := account{id: fmt.Sprintf("A%0*d-%d", g.width, owner+1, len(accounts)+1), holders: holders,
			opened: p.created.AddDate(0, 0, ar.IntN(30)).Format(time.RFC3339), debit: ar.IntN(10) < 4}
		a.typ = "CREDIT"
		if a.debit {
			a.typ = "DDA"
		}
		return a
	}
	rows := 0
	if i > 0 && g.joint(i-1) {
		// The household's shared account, opened by the previous
		// customer; this customer holds a card on it too.
		prev := g.id("C", i-1)
		shared := g.sharedAccount(i - 1)
		shared.holders = prev + "|" + p.id
		if err := g.writeCard(w, r, p, shared, rows, defectNone); err != nil {
			return err
		}
		rows++
	}
	for k := 0; k < n; k++ {
		var a account
		switch {
		case k == 0 && g.joint(i):
			a = g.sharedAccount(i)
			a.holders = p.id + "|" + g.id("C", i+1)
			accounts = append(accounts, a)
		case k > 0 && r.IntN(10) < 3:
			a = accounts[r.IntN(len(accounts))] // a second card on an existing account
		default:
			a = newAccount(i, "")
			accounts = append(accounts, a)
		}
		cd := defectNone
		if k == 0 {
			cd = d
		}
		if err := g.writeCard(w, r, p, a, rows, cd); err != nil {
			return err
		}
		rows++
	}
	st.CardRows += rows
	switch d {
	case defectEmail, defectMissing, defectOrphan:
		st.BadCardRows += rows
	case defectLuhn, defectExpired:
		st.BadCardRows++
	}
	return nil
}

// sharedAccount is the first account of customer i when i opens a joint
// account; both holders' card rows describe it the same way.
func (g *generator) sharedAccount(i int) account {
	p := g.person(i)
	return account{id: fmt.Sprintf("A%0*d-J", g.width, i+1), typ: "DDA", debit: true,
		opened: p.created.Format(time.RFC3339)}
}

func (g *generator) writeCard(w *csv.Writer, r *rand.Rand, p person, a account, k, defect int) error {
	b := pickBrand(r, a.debit)
	pan := luhnNumber(r, b.prefixes[r.IntN(len(b.prefixes))], b.length)
	if defect == defectLuhn {
		last := pan[len(pan)-1] - '0'
		pan = pan[:len(pan)-1] + string(rune('0'+(last+1)%10))
	}
	switch r.IntN(20) {
	case 0, 1, 2:
		pan = groups(pan, " ")
	case 3:
		pan = groups(pan, "-")
	}
	cvv := fmt.Sprintf("%0*d", b.cvvLen, r.IntN(int(math.Pow10(b.cvvLen))))
	if r.IntN(5) == 0 {
		cvv = ""
	}
	expYear := g.opt.Now.Year() + 1 + r.IntN(5)
	if defect == defectExpired {
		expYear = g.opt.Now.Year() - 1 - r.IntN(3)
	}
	typ := "credit"
	if a.debit {
		typ = "debit"
	}
	if r.IntN(10) == 0 {
		typ = strings.ToUpper(typ)
	}
	brandCol := ""
	if r.IntN(2) == 0 {
		brandCol = b.name
	}
	status, closed := "OPEN", ""
	opened := p.created.AddDate(0, 0, 1+r.IntN(60))
	if r.IntN(40) == 0 {
		status, closed = "CLOSED", opened.AddDate(1, 0, 0).Format(time.RFC3339)
	}
	zip := p.zip
	if r.IntN(5) == 0 {
		zip = ""
	}
	def := "false"
	if k == 0 {
		def = "true"
	}
	row := []string{fmt.Sprintf("K%s-%d", p.id[1:], k+1), p.id, a.id, a.typ, "OPEN", []string{"P-STD", "P-PREM", ""}[r.IntN(3)],
		a.opened, "", a.holders, pan, cvv, strconv.Itoa(1 + r.IntN(12)), strconv.Itoa(expYear), typ, brandCol,
		strings.ToUpper(p.first + " " + p.last), zip, status, strconv.Itoa(b.network), opened.Format(time.RFC3339), closed,
		def, labels[r.IntN(len(labels))]}
	return w.Write(row)
}

func pickBrand(r *rand.Rand, debit bool) brand {
	total := 0
	for _, b := range brands {
		if !debit || b.debit {
			total += b.weight
		}
	}
	x := r.IntN(total)
	for _, b := range brands {
		if debit && !b.debit {
			continue
		}
		if x < b.weight {
			return b.brand
		}
		x -= b.weight
	}
	return brands[0].brand
}

// luhnNumber fills prefix with random digits to length and appends the
// Luhn check digit.
func luhnNumber(r *rand.Rand, prefix string, length int) string {
	b := []byte(prefix)
	for len(b) < length-1 {
		b = append(b, byte('0'+r.IntN(10)))
	}
	sum := 0
	for i := len(b) - 1; i >= 0; i-- {
		d := int(b[i] - '0')
		if (len(b)-1-i)%2 == 0 { // doubled: these sit second from the right once the check digit is added
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return string(append(b, byte('0'+(10-sum%10)%10)))
}

// groups writes a card number as people type it: 4-4-4-4 (Amex 4-6-5).
func groups(pan, sep string) string {
	cuts := []int{4, 8, 12}
	if len(pan) == 15 {
		cuts = []int{4, 10}
	}
	var b strings.Builder
	prev := 0
	for _, c := range cuts {
		if c >= len(pan) {
			break
		}
		b.WriteString(pan[prev:c])
		b.WriteString(sep)
		prev = c
	}
	b.WriteString(pan[prev:])
	return b.String()
}

func poisson(r *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l || k == 6 {
			return k
		}
		k++
	}
}

// ascii folds a name into something an e-mail local part can hold.
func ascii(s string) string {
	fold := map[rune]string{'á': "a", 'à': "a", 'é': "e", 'ë': "e", 'í': "i", 'ó': "o", 'ö': "o", 'ø': "o", 'ü': "u", 'ñ': "n"}
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteRune(c)
		case fold[c] != "":
			b.WriteString(fold[c])
		}
	}
	return b.String()
}
