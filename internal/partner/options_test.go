package partner_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/partner"
)

type opts struct {
	URL     string        `option:"url"`
	N       int           `option:"n"`
	On      bool          `option:"on"`
	Wait    time.Duration `option:"wait"`
	Tags    []string      `option:"tags"`
	Default *bool         `option:"default"`
	//lint:ignore U1000 present so the test shows the decoder skips unexported fields
	ignored string
}

func (o *opts) Validate(creds partner.Credentials) error {
	var errs []error
	if o.URL == "" {
		errs = append(errs, partner.Invalid("url", "required"))
	}
	if o.On && !creds.Has("secret") {
		errs = append(errs, partner.Invalid("on", "needs credentials.secret"))
	}
	if o.N > 10 {
		errs = append(errs, errors.New("n and url disagree"))
	}
	return errors.Join(errs...)
}

var schema = partner.OptionsOf[opts]()

func TestKnownIsSortedTaggedFieldsOnly(t *testing.T) {
	want := []string{"default", "n", "on", "tags", "url", "wait"}
	if got := schema.Known(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Known() = %v, want %v", got, want)
	}
}

func TestDecodeEveryKind(t *testing.T) {
	p := config.Partner{
		Options:     map[string]string{"url": "https://x.example", "n": " 7 ", "on": "yes", "wait": "90s", "tags": "a, b,,c", "default": "false"},
		Credentials: map[string]config.Secret{"secret": {Env: "X"}},
	}
	o, err := schema.Decode(p)
	if err != nil {
		t.Fatal(err)
	}
	if o.URL != "https://x.example" || o.N != 7 || !o.On || o.Wait != 90*time.Second ||
		!reflect.DeepEqual(o.Tags, []string{"a", "b", "c"}) || o.Default == nil || *o.Default {
		t.Fatalf("decoded %+v", o)
	}
	o, err = schema.Decode(config.Partner{Options: map[string]string{"url": "u", "n": ""}})
	if err != nil || o.N != 0 || o.Default != nil {
		t.Fatalf("an empty value is not given: %+v, %v", o, err)
	}
}

func TestCheckNamesEachProblem(t *testing.T) {
	cases := []struct {
		name  string
		opts  map[string]string
		creds partner.Credentials
		want  []string // "field: message"
	}{
		{"valid", map[string]string{"url": "u"}, nil, nil},
		{"unknown option lists the known ones", map[string]string{"url": "u", "urll": "x"},
			nil, []string{"options.urll: unknown option (known: default, n, on, tags, url, wait)"}},
		{"whole number", map[string]string{"url": "u", "n": "seven"}, nil, []string{`options.n: "seven" is not a whole number`}},
		{"boolean", map[string]string{"url": "u", "on": "maybe"}, nil, []string{`options.on: "maybe" is not true or false`}},
		{"pointer to boolean", map[string]string{"url": "u", "default": "2"}, nil, []string{`options.default: "2" is not true or false`}},
		{"duration", map[string]string{"url": "u", "wait": "soon"}, nil, []string{`options.wait: "soon" is not a duration (e.g. 30s, 5m)`}},
		{"every field problem at once, and no Validate on top", map[string]string{"n": "x", "zz": "1"}, nil,
			[]string{`options.n: "x" is not a whole number`, "options.zz: unknown option (known: default, n, on, tags, url, wait)"}},
		{"Validate: required", map[string]string{}, nil, []string{"options.url: required"}},
		{"Validate: credentials", map[string]string{"url": "u", "on": "true"}, nil, []string{"options.on: needs credentials.secret"}},
		{"Validate: credentials present", map[string]string{"url": "u", "on": "true"}, partner.Credentials{"secret": true}, nil},
		{"Validate: an error naming no option", map[string]string{"url": "u", "n": "11"}, nil, []string{"options: n and url disagree"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, e := range schema.Check(tc.opts, tc.creds) {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestDecodeFailsWithEveryProblem(t *testing.T) {
	_, err := schema.Decode(config.Partner{Options: map[string]string{"n": "x", "zz": "1"}})
	if err == nil || !strings.Contains(err.Error(), "options.n") || !strings.Contains(err.Error(), "options.zz") {
		t.Fatalf("err %v", err)
	}
	var oe *partner.OptionError
	if !errors.As(err, &oe) {
		t.Fatalf("%T is not an *OptionError underneath", err)
	}
}

func TestUnsupportedFieldPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a float option was accepted")
		}
	}()
	type bad struct {
		F float64 `option:"f"`
	}
	partner.OptionsOf[bad]()
}

// A partner without options refuses any.
func TestRegistrationWithoutOptionsRefusesAny(t *testing.T) {
	s := partner.Registration{Name: "p", Credentials: []string{"token"}}.Schema()
	if es := s.CheckOptions(nil, nil); len(es) != 0 {
		t.Fatalf("no options: %v", es)
	}
	es := s.CheckOptions(map[string]string{"x": "1"}, nil)
	if len(es) != 1 || es[0].Path != "options.x" || !strings.Contains(es[0].Msg, "known: none") {
		t.Fatalf("got %v", es)
	}
}
