package buildinfo_test

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/northwind-data/etl/internal/buildinfo"
)

// The fingerprint scope names the build by the Go build ID in the
// executable's ELF note (what `go tool buildid` prints), and by a digest
// of the whole file when there is no such note.
func TestBinaryIdentity(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "buildid", exe).Output()
	if err != nil {
		t.Fatalf("go tool buildid: %v", err)
	}
	got, err := buildinfo.BinaryIdentity(exe)
	if err != nil {
		t.Fatal(err)
	}
	if want := "go-buildid:" + strings.TrimSpace(string(out)); string(got) != want {
		t.Fatalf("identity of the test binary = %q; want %q", got, want)
	}

	script := filepath.Join(t.TempDir(), "etl")
	body := []byte("#!/bin/sh\necho not a Go binary\n")
	if err := os.WriteFile(script, body, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err = buildinfo.BinaryIdentity(script)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if want := append([]byte("sha256:"), sum[:]...); !bytes.Equal(got, want) {
		t.Fatalf("identity of a non-ELF file = %x; want its SHA-256", got)
	}
}
