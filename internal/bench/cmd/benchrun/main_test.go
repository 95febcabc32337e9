package main

import "testing"

func TestParseConcurrency(t *testing.T) {
	all, err := parseConcurrency("16")
	if err != nil || all["q2open"] != 16 || all["datafeed"] != 16 || len(all) != 5 {
		t.Errorf("16: %v %v", all, err)
	}
	some, err := parseConcurrency("q2open=32, synctera=2")
	if err != nil || some["q2open"] != 32 || some["synctera"] != 2 || some["datafeed"] != 4 {
		t.Errorf("PARTNER=N over the sample config's: %v %v", some, err)
	}
	for _, bad := range []string{"0", "q2open", "q2open=0", "q2open=x"} {
		if _, err := parseConcurrency(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
