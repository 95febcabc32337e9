package partners_test

import (
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/partners"
)

// --faults flags merge key by key in the order given: a later "all" does
// not undo what an earlier flag set for one partner, and a later partner
// flag overrides only the keys it names.
func TestFaultFlagsMergePerKey(t *testing.T) {
	h, err := partners.SandboxMux([]string{"synctera=rate=50,latency=20ms", "all=errors=0.2", "q2open=errors=0.5", "clubready=down", "clubready=none"})
	if err != nil {
		t.Fatal(err)
	}
	sb := h.(*partners.Sandboxes)
	sy := sb.Faults["synctera"].Config()
	if sy.RateLimit != 50 || sy.Latency != 20*time.Millisecond || sy.ErrorRate != 0.2 {
		t.Errorf("synctera: %+v: want rate 50, latency 20ms and errors 0.2", sy)
	}
	if q := sb.Faults["q2open"].Config(); q.ErrorRate != 0.5 || q.RateLimit != 0 {
		t.Errorf("q2open: %+v: want errors 0.5 only", q)
	}
	if d := sb.Faults["datafeed"].Config(); d.ErrorRate != 0.2 {
		t.Errorf("datafeed: %+v: want errors 0.2 from all", d)
	}
	if c := sb.Faults["clubready"].Config(); c.Down || c.ErrorRate != 0 {
		t.Errorf("clubready: %+v: none must clear every fault", c)
	}
	if _, err := partners.SandboxMux([]string{"synctera=rate=50", "all=bogus=1"}); err == nil {
		t.Error("an unknown key in a later flag was accepted")
	}
}
