package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --dry-run-out is made fresh with mode 0700, or taken only if it is this
// user's and 0700: bodies are masked but still customer data.
func TestDryRunOutIsAPrivateDirectory(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	private := mk("private", 0o700)
	link := filepath.Join(base, "link")
	if err := os.Symlink(private, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, dir, want string // want: "" accepted, else part of the refusal
	}{
		{"fresh", filepath.Join(base, "new", "bodies"), ""},
		{"ours and 0700", private, ""},
		{"group-readable", mk("g", 0o750), "mode 0750"},
		{"world-writable", mk("w", 0o777), "mode 0777"},
		{"sticky", mk("s", 0o700|os.ModeSticky), "not 0700"},
		{"symlink to a private dir", link, "not a directory"},
		{"a file", file, "not a directory"},
	}
	if os.Geteuid() == 0 {
		other := mk("other", 0o700)
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ name, dir, want string }{"another user's", other, "belongs to uid 65534"})
	}
	for _, tc := range cases {
		err := makePrivateDir(tc.dir)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", tc.name, err)
				continue
			}
			st, err := os.Lstat(tc.dir)
			if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
				t.Errorf("%s: after makePrivateDir: %v, %v", tc.name, st.Mode(), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want a refusal naming %q", tc.name, err, tc.want)
		}
	}
}
