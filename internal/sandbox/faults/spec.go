package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// specKeys lists the keys ParseSpec accepts, in the order String writes them.
var specKeys = []string{"rate", "errors", "latency", "jitter", "reset", "drop", "down", "seed", "retry-after"}

// ParseSpec reads the flag form of a Config: comma-separated key=value
// pairs, e.g. "rate=200,errors=0.2,latency=50ms,jitter=10ms,reset=0.01,
// drop=0.1,down=true,seed=7,retry-after=date". An empty spec (or "none")
// injects nothing; "down" alone means down=true.
func ParseSpec(s string) (Config, error) { return ApplySpec(Config{}, s) }

// ApplySpec sets the keys that spec names on top of base and leaves the
// others as base has them, so repeated --faults flags merge key by key in
// the order given ("all=errors=0.2" then "synctera=rate=50" gives synctera
// both).
func ApplySpec(base Config, s string) (Config, error) {
	c := base
	s = strings.TrimSpace(s)
	switch s {
	case "":
		return c, nil
	case "none":
		return Config{}, nil
	}
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		k, v, hasValue := strings.Cut(strings.TrimSpace(item), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" {
			return Config{}, fmt.Errorf("faults: spec %q: empty item", s)
		}
		if seen[k] {
			return Config{}, fmt.Errorf("faults: spec: %s given twice", k)
		}
		seen[k] = true
		if !hasValue && k == "down" {
			v = "true"
		}
		var err error
		switch k {
		case "rate":
			c.RateLimit, err = parseRate(v)
		case "errors":
			c.ErrorRate, err = parseFraction(v)
		case "reset":
			c.ResetRate, err = parseFraction(v)
		case "drop":
			c.DropRate, err = parseFraction(v)
		case "latency":
			c.Latency, err = parseDuration(v)
		case "jitter":
			c.Jitter, err = parseDuration(v)
		case "down":
			c.Down, err = strconv.ParseBool(v)
		case "seed":
			c.Seed, err = strconv.ParseUint(v, 10, 64)
		case "retry-after":
			switch v {
			case "date":
				c.RetryAfterDate = true
			case "seconds":
			default:
				err = errors.New("want seconds or date")
			}
		default:
			return Config{}, fmt.Errorf("faults: spec: unknown key %q (known: %s)", k, strings.Join(specKeys, ", "))
		}
		if err != nil {
			return Config{}, fmt.Errorf("faults: spec: %s=%q: %w", k, v, err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func parseRate(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, errors.New("not a number")
	}
	if f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, errors.New("want a finite rate >= 0")
	}
	return f, nil
}

func parseFraction(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, errors.New("not a number")
	}
	if !(f >= 0 && f <= 1) {
		return 0, errors.New("want a fraction in [0, 1]")
	}
	return f, nil
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("not a duration (e.g. 50ms)")
	}
	if d < 0 {
		return 0, errors.New("negative duration")
	}
	return d, nil
}

// String writes c in the form ParseSpec reads; zero fields are left out.
func (c Config) String() string {
	var parts []string
	add := func(k, v string) { parts = append(parts, k+"="+v) }
	ff := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
	if c.RateLimit != 0 {
		add("rate", ff(c.RateLimit))
	}
	if c.ErrorRate != 0 {
		add("errors", ff(c.ErrorRate))
	}
	if c.Latency != 0 {
		add("latency", c.Latency.String())
	}
	if c.Jitter != 0 {
		add("jitter", c.Jitter.String())
	}
	if c.ResetRate != 0 {
		add("reset", ff(c.ResetRate))
	}
	if c.DropRate != 0 {
		add("drop", ff(c.DropRate))
	}
	if c.Down {
		add("down", "true")
	}
	if c.Seed != 0 {
		add("seed", strconv.FormatUint(c.Seed, 10))
	}
	if c.RetryAfterDate {
		add("retry-after", "date")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// Validate reports values out of range: fractions outside [0, 1], a
// negative or non-finite rate, negative durations, or reset+errors+drop
// above 1 (they split one draw, so they cannot overlap).
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    float64
	}{{"errors", c.ErrorRate}, {"reset", c.ResetRate}, {"drop", c.DropRate}} {
		if !(f.v >= 0 && f.v <= 1) {
			errs = append(errs, fmt.Errorf("%s=%v: want a fraction in [0, 1]", f.name, f.v))
		}
	}
	if !(c.RateLimit >= 0) || math.IsInf(c.RateLimit, 0) {
		errs = append(errs, fmt.Errorf("rate=%v: want a finite rate >= 0", c.RateLimit))
	}
	if c.Latency < 0 || c.Jitter < 0 {
		errs = append(errs, errors.New("latency and jitter must not be negative"))
	}
	if sum := c.ErrorRate + c.ResetRate + c.DropRate; sum > 1+1e-9 {
		errs = append(errs, fmt.Errorf("errors+reset+drop = %v: must not exceed 1", sum))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("faults: invalid config: %w", err)
	}
	return nil
}

// clamped brings every value into range so Set never has to fail.
func (c Config) clamped() Config {
	frac := func(f float64) float64 {
		if !(f > 0) {
			return 0
		}
		return min(f, 1)
	}
	c.ErrorRate, c.ResetRate, c.DropRate = frac(c.ErrorRate), frac(c.ResetRate), frac(c.DropRate)
	// Past 1 the later outcomes lose their share, in draw order.
	c.ErrorRate = min(c.ErrorRate, 1-c.ResetRate)
	c.DropRate = min(c.DropRate, max(0, 1-c.ResetRate-c.ErrorRate))
	if !(c.RateLimit > 0) || math.IsInf(c.RateLimit, 0) {
		c.RateLimit = 0
	}
	c.Latency, c.Jitter = max(c.Latency, 0), max(c.Jitter, 0)
	return c
}

// configJSON is Config on the wire: snake_case keys, durations as Go
// duration strings ("50ms").
type configJSON struct {
	Seed           uint64       `json:"seed"`
	RateLimit      float64      `json:"rate_limit"`
	RetryAfterDate bool         `json:"retry_after_date"`
	ErrorRate      float64      `json:"error_rate"`
	Latency        jsonDuration `json:"latency"`
	Jitter         jsonDuration `json:"jitter"`
	ResetRate      float64      `json:"reset_rate"`
	DropRate       float64      `json:"drop_rate"`
	Down           bool         `json:"down"`
}

// MarshalJSON writes durations as strings such as "50ms".
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(configJSON{c.Seed, c.RateLimit, c.RetryAfterDate, c.ErrorRate,
		jsonDuration(c.Latency), jsonDuration(c.Jitter), c.ResetRate, c.DropRate, c.Down})
}

// UnmarshalJSON reads what MarshalJSON writes; durations may also be
// numbers of milliseconds. Unknown keys are refused so a typo cannot
// silently leave a fault off. Missing keys are zero.
func (c *Config) UnmarshalJSON(b []byte) error {
	var j configJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	*c = Config{j.Seed, j.RateLimit, j.RetryAfterDate, j.ErrorRate,
		time.Duration(j.Latency), time.Duration(j.Jitter), j.ResetRate, j.DropRate, j.Down}
	return nil
}

type statsJSON struct {
	Requests      int64        `json:"requests"`
	Passed        int64        `json:"passed"`
	RateLimited   int64        `json:"rate_limited"`
	Errors5xx     int64        `json:"errors_5xx"`
	Resets        int64        `json:"resets"`
	Dropped       int64        `json:"dropped"`
	DownRefusals  int64        `json:"down_refusals"`
	EarlyRetries  int64        `json:"early_retries"`
	MaxEarlyRetry jsonDuration `json:"max_early_retry"`
	AnswerTime    jsonDuration `json:"answer_time"`
}

// MarshalJSON writes the durations as duration strings.
func (s Stats) MarshalJSON() ([]byte, error) {
	return json.Marshal(statsJSON{s.Requests, s.Passed, s.RateLimited, s.Errors5xx, s.Resets,
		s.Dropped, s.DownRefusals, s.EarlyRetries, jsonDuration(s.MaxEarlyRetry), jsonDuration(s.AnswerTime)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Stats) UnmarshalJSON(b []byte) error {
	var j statsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Stats{j.Requests, j.Passed, j.RateLimited, j.Errors5xx, j.Resets,
		j.Dropped, j.DownRefusals, j.EarlyRetries, time.Duration(j.MaxEarlyRetry), time.Duration(j.AnswerTime)}
	return nil
}

type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: want e.g. \"50ms\"", s)
		}
		*d = jsonDuration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("duration %s: want a string such as \"50ms\" or milliseconds", b)
	}
	*d = jsonDuration(ms * float64(time.Millisecond))
	return nil
}
