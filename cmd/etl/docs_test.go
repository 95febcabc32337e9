package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README, `etl --help` and the code must agree: the commands listed,
// the exit codes, and every document the README links to.
func TestREADMEAgreesWithTheCode(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^etl (\w+)\s`).FindAllStringSubmatch(readme, -1) {
		listed[m[1]] = true
	}
	for _, c := range commands {
		if !listed[c.name] {
			t.Errorf("README's command list lacks %q", c.name)
		}
		delete(listed, c.name)
	}
	for name := range listed {
		t.Errorf("README lists %q, which is not an etl command", name)
	}
	for code, what := range map[int]string{exitOK: "0", exitFatal: "1", exitUsage: "2", exitPartial: "3", exitLocked: "4", exitNeedsOperator: "5"} {
		if !regexp.MustCompile(`(?m)^\| ` + what + ` \| `).MatchString(readme) {
			t.Errorf("README's exit code table lacks %d", code)
		}
	}
	if n := strings.Count(readme, "\n"); n > 300 {
		t.Errorf("README is %d lines: keep it under 300, move detail to docs/", n)
	}
	for _, doc := range append([]string{"README.md"}, docFiles(t, root)...) {
		text, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`\]\(([^)#]+)(#[^)]*)?\)`).FindAllStringSubmatch(string(text), -1) {
			link := m[1]
			if strings.Contains(link, "://") {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, filepath.Dir(doc), link)); err != nil {
				t.Errorf("%s links to %s, which is not in the repository", doc, link)
			}
		}
		for _, outside := range []string{"ARCHITECTURE.md", "FACTS.md", "../shared"} {
			if strings.Contains(string(text), outside) {
				t.Errorf("%s cites %s, which is not in the repository", doc, outside)
			}
		}
	}
}

func docFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
