package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// docker-compose.yml runs the image, not the toolchain, and shards start
// only once the sandbox answers. No Docker engine here, so the file is
// held to that by reading it.
func TestComposeUsesTheImage(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Image       string         `yaml:"image"`
			Build       any            `yaml:"build"`
			Command     []string       `yaml:"command"`
			Healthcheck map[string]any `yaml:"healthcheck"`
			DependsOn   map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "go run") {
		t.Error("docker-compose.yml still runs the Go toolchain")
	}
	names := map[string]bool{}
	for _, c := range commands {
		names[c.name] = true
	}
	for name, s := range f.Services {
		if name == "db" {
			continue
		}
		if s.Image != "etl:dev" || s.Build == nil {
			t.Errorf("%s: image %q, build %v: want the etl image built from the Dockerfile", name, s.Image, s.Build)
		}
		if len(s.Command) == 0 || !names[s.Command[0]] {
			t.Errorf("%s: command %q is not an etl command", name, s.Command)
		}
		if strings.HasPrefix(name, "shard-") {
			if s.DependsOn["sandbox"].Condition != "service_healthy" {
				t.Errorf("%s does not wait for a healthy sandbox", name)
			}
			if !slices.Contains(s.Command, "--shard") {
				t.Errorf("%s: no --shard", name)
			}
		}
	}
	hc, _ := f.Services["sandbox"].Healthcheck["test"].([]any)
	if len(hc) < 3 || hc[1] != "/etl" || !slices.Contains(hc, "--healthcheck") {
		t.Errorf("sandbox healthcheck %v: want etl's own --healthcheck (the image has no shell)", hc)
	}
}
