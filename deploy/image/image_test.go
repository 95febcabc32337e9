package main

import (
	"archive/tar"
	"bufio"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// loadOCIArchive unpacks an OCI archive and returns its one image.
func loadOCIArchive(t *testing.T, archive, dir string) v1.Image {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("not an OCI image layout: %v", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("%d manifests in the archive, want 1", len(m.Manifests))
	}
	if m.Manifests[0].Annotations["org.opencontainers.image.ref.name"] == "" {
		t.Error("the image carries no ref.name annotation: docker load would leave it untagged")
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// The image contract both `make image` and the Dockerfile keep: the etl
// binary as entrypoint, static, run as 65532 with no shell in the image,
// CA certificates for TLS.
//
// ETL_IMAGE names an archive to inspect (make test passes the one `make
// image` just built); without it the test builds its own.
func TestImage(t *testing.T) {
	dir := t.TempDir()
	out := os.Getenv("ETL_IMAGE")
	if out == "" {
		bin := filepath.Join(dir, "etl")
		build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/etl")
		build.Dir = "../.."
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build etl: %v\n%s", err, b)
		}
		out = filepath.Join(dir, "etl.tar")
		if err := Write(out, Options{Binary: bin, CABundle: "/etc/ssl/certs/ca-certificates.crt", Tag: "etl:test", Version: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	img := loadOCIArchive(t, out, filepath.Join(dir, "layout"))
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Config.Entrypoint; !slices.Equal(got, []string{"/etl"}) {
		t.Errorf("entrypoint %q, want [/etl]", got)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (the CronJob's runAsUser and fsGroup)", cf.Config.User)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	mt, _ := img.MediaType()
	if !strings.Contains(string(mt), "oci") {
		t.Errorf("manifest media type %s, want OCI", mt)
	}

	files := map[string]*tar.Header{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	extracted := filepath.Join(dir, "etl-from-image")
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(strings.TrimPrefix(h.Name, "/"), "/")] = h
		if h.Name == "etl" {
			f, err := os.OpenFile(extracted, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"} {
		if _, ok := files[shell]; ok {
			t.Errorf("%s is in the image: it must need no shell", shell)
		}
	}
	for _, want := range []string{"etl", "etc/ssl/certs/ca-certificates.crt", "etc/passwd", "tmp"} {
		if _, ok := files[want]; !ok {
			t.Errorf("%s is missing from the image", want)
		}
	}
	if h := files["etl"]; h != nil && h.Mode&0o111 == 0 {
		t.Errorf("/etl mode %o is not executable", h.Mode)
	}

	ef, err := elf.Open(extracted)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("/etl is dynamically linked: the image has no libc (build with CGO_ENABLED=0)")
		}
	}
	ef.Close()
	v, err := exec.Command(extracted, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(v), "etl ") {
		t.Errorf("/etl version: %v: %s", err, v)
	}
}

// The Dockerfile builds the same image for users with Docker: its final
// stage must keep the contract TestImage checks.
func TestDockerfileKeepsTheContract(t *testing.T) {
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var final []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "FROM ") {
			final = nil
		}
		final = append(final, line)
	}
	stage := strings.Join(final, "\n")
	for _, want := range []string{"FROM scratch", "USER 65532:65532", `ENTRYPOINT ["/etl"]`, "ca-certificates.crt"} {
		if !strings.Contains(stage, want) {
			t.Errorf("the Dockerfile's final stage lacks %q", want)
		}
	}
	all, _ := os.ReadFile("../../Dockerfile")
	if !strings.Contains(string(all), "CGO_ENABLED=0") {
		t.Error("the Dockerfile does not build a static binary (CGO_ENABLED=0)")
	}
}
