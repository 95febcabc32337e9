// Package buildinfo says which build of etl is running, from the module
// build information the Go toolchain stamps into every binary: the module
// version, the VCS commit and whether the tree was dirty, and the Go
// version. `etl version` prints it and every run records it in
// runs.version, so a ledger row can be traced to the code that wrote it.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Info is what a binary knows about its own build.
type Info struct {
	Version  string // module version (e.g. v1.4.0), "(devel)" for a local build
	Commit   string // VCS revision, empty when the build was not stamped
	Time     string // commit time (RFC 3339), empty when not stamped
	Modified bool   // the work tree had uncommitted changes
	Go       string // the Go toolchain that built it
}

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown"}
	}
	return From(bi)
}

// From extracts Info from build information (Read's seam for tests).
func From(bi *debug.BuildInfo) Info {
	in := Info{Version: bi.Main.Version, Go: bi.GoVersion}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String is the one-line form stored in runs.version, e.g.
// "(devel) 5a9593c1d2e3 dirty go1.26.8".
func (in Info) String() string {
	parts := []string{in.Version}
	if in.Commit != "" {
		c := in.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		parts = append(parts, c)
		if in.Modified {
			parts = append(parts, "dirty")
		}
	} else {
		parts = append(parts, "unstamped")
	}
	if in.Go != "" {
		parts = append(parts, in.Go)
	}
	return strings.Join(parts, " ")
}
