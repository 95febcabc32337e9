package buildinfo_test

import (
	"runtime/debug"
	"testing"

	"github.com/northwind-data/etl/internal/buildinfo"
)

func TestFrom(t *testing.T) {
	cases := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"stamped clean", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}},
			"v1.2.3 0123456789ab go1.26.8"},
		{"stamped dirty", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel) abc dirty go1.26.8"},
		{"not stamped", debug.BuildInfo{GoVersion: "go1.26.8"}, "(devel) unstamped go1.26.8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildinfo.From(&tc.bi).String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadKnowsTheToolchain(t *testing.T) {
	if in := buildinfo.Read(); in.Go == "" {
		t.Fatalf("Read() = %+v: no Go version", in)
	}
}
