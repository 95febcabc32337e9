package partner

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/northwind-data/etl/internal/boolean"
	"github.com/northwind-data/etl/internal/config"
)

// OptionError is one problem with a partner's settings. Field is relative
// to the partner's config section: "options.vault_url" or
// "credentials.secret"; config check prefixes it with the partner's path
// (or names the environment variable the option came from).
type OptionError struct {
	Field string
	Msg   string
}

func (e *OptionError) Error() string { return e.Field + ": " + e.Msg }

// Invalid is the error a partner's Validate returns for one option.
func Invalid(option, format string, a ...any) error {
	return &OptionError{Field: "options." + option, Msg: fmt.Sprintf(format, a...)}
}

// Credentials says which credentials a config names (set, not resolved:
// config check resolves them separately), for rules that tie an option
// to a credential.
type Credentials map[string]bool

// Has reports whether credential name is configured.
func (c Credentials) Has(name string) bool { return c[name] }

// Validator is implemented by an options struct whose fields depend on
// each other or on credentials. Validate runs after every field decoded;
// it returns nil, one error, or several joined (errors.Join), each ideally
// made with Invalid so config check can name the option.
type Validator interface {
	Validate(creds Credentials) error
}

// OptionSchema is what config check needs of a partner's options,
// whatever their Go type.
type OptionSchema interface {
	// Known lists the option names, sorted.
	Known() []string
	// Check decodes and validates opts and returns every problem.
	Check(opts map[string]string, creds Credentials) []*OptionError
}

// Options is the schema of one partner's options struct T: each exported
// field with an `option:"name"` tag is an option, of type string, int,
// bool (internal/boolean spellings), time.Duration or []string (comma
// separated), or a pointer to one of the first four (nil: not given). An option given as "" is treated as not given, because an
// unset environment override and an empty YAML value mean the same.
// Build with OptionsOf; safe for concurrent use.
type Options[T any] struct {
	fields []optField
}

type optField struct {
	name  string
	index int
}

var durationType = reflect.TypeOf(time.Duration(0))

// OptionsOf reads T's tags. It panics on a struct it cannot decode: that
// is a programming error found by any test that registers the partner.
func OptionsOf[T any]() *Options[T] {
	t := reflect.TypeOf((*T)(nil)).Elem()
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("partner.OptionsOf: %v is not a struct", t))
	}
	o := &Options[T]{}
	seen := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := f.Tag.Lookup("option")
		if !ok {
			continue
		}
		if name == "" || seen[name] || !f.IsExported() {
			panic(fmt.Sprintf("partner.OptionsOf: %v.%s: bad or duplicate option tag %q", t, f.Name, name))
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer && ft.Elem().Kind() != reflect.Slice {
			ft = ft.Elem() // nil: not given, for options whose default is not the zero value
		}
		switch {
		case ft == durationType:
		case ft.Kind() == reflect.String, ft.Kind() == reflect.Int, ft.Kind() == reflect.Bool:
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
		default:
			panic(fmt.Sprintf("partner.OptionsOf: %v.%s: type %v is not supported", t, f.Name, f.Type))
		}
		seen[name] = true
		o.fields = append(o.fields, optField{name: name, index: i})
	}
	sort.Slice(o.fields, func(i, j int) bool { return o.fields[i].name < o.fields[j].name })
	return o
}

// Known lists the option names, sorted.
func (o *Options[T]) Known() []string {
	out := make([]string, len(o.fields))
	for i, f := range o.fields {
		out[i] = f.name
	}
	return out
}

// Check decodes opts and returns every problem: unknown options, values
// of the wrong kind, then the struct's own Validate.
func (o *Options[T]) Check(opts map[string]string, creds Credentials) []*OptionError {
	_, es := o.decode(opts, creds)
	return es
}

// Decode returns p's options as T, validated. Build calls it; config
// check has normally reported any problem before.
func (o *Options[T]) Decode(p config.Partner) (T, error) {
	creds := Credentials{}
	for k, s := range p.Credentials {
		creds[k] = s.IsSet()
	}
	v, es := o.decode(p.Options, creds)
	if len(es) > 0 {
		errs := make([]error, len(es))
		for i, e := range es {
			errs[i] = e
		}
		return v, errors.Join(errs...)
	}
	return v, nil
}

func (o *Options[T]) decode(opts map[string]string, creds Credentials) (T, []*OptionError) {
	var out T
	rv := reflect.ValueOf(&out).Elem()
	var es []*OptionError
	byName := map[string]optField{}
	for _, f := range o.fields {
		byName[f.name] = f
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := byName[k]
		if !ok {
			known := "none"
			if len(o.fields) > 0 {
				known = strings.Join(o.Known(), ", ")
			}
			es = append(es, &OptionError{Field: "options." + k, Msg: "unknown option (known: " + known + ")"})
			continue
		}
		raw := strings.TrimSpace(opts[k])
		if raw == "" {
			continue
		}
		if msg := set(rv.Field(f.index), raw); msg != "" {
			es = append(es, &OptionError{Field: "options." + k, Msg: msg})
		}
	}
	if len(es) > 0 {
		// Validate would only repeat the same problems in other words.
		return out, es
	}
	if v, ok := any(&out).(Validator); ok {
		es = append(es, flatten(v.Validate(creds))...)
	}
	return out, es
}

// set stores raw in v and returns "" or what the field wants.
func set(v reflect.Value, raw string) string {
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		if msg := set(p.Elem(), raw); msg != "" {
			return msg
		}
		v.Set(p)
		return ""
	}
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Sprintf("%q is not a duration (e.g. 30s, 5m)", raw)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Sprintf("%q is not a whole number", raw)
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.Bool:
		b, err := boolean.Parse(raw)
		if err != nil {
			return fmt.Sprintf("%q is not true or false", raw)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Slice:
		var xs []string
		for _, x := range strings.Split(raw, ",") {
			if x = strings.TrimSpace(x); x != "" {
				xs = append(xs, x)
			}
		}
		v.Set(reflect.ValueOf(xs))
	}
	return ""
}

// flatten turns a Validate error into OptionErrors; an error that names
// no option is reported against the options section as a whole.
func flatten(err error) []*OptionError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*OptionError
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	var oe *OptionError
	if errors.As(err, &oe) {
		return []*OptionError{oe}
	}
	return []*OptionError{{Field: "options", Msg: err.Error()}}
}
