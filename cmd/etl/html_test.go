package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/ledger"
)

// chromium finds Debian's browser (scripts/deps.sh installs it).
func chromium() string {
	if st, err := os.Stat("/usr/bin/chromium"); err == nil && !st.IsDir() {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// headless runs the browser once on file with extra flags, its profile and
// home in dir (fresh per run) so nothing of the developer's leaks in or out.
func headless(dir, bin, file string, extra ...string) (stdout, stderr string, err error) {
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile")}
	args = append(append(args, extra...), "file://"+file)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// The HTML report, rendered by a real browser: what Chromium builds from
// it is what a reader of the sign-off sees.
func TestHTMLReportInBrowser(t *testing.T) {
	t.Parallel()
	bin := chromium()
	if bin == "" {
		if os.Getenv("CI") == "" {
			t.Skip("chromium is not installed (make deps installs it); CI never skips this test")
		}
		t.Fatal("chromium is not installed on CI: scripts/deps.sh must install Debian's chromium package")
	}
	f := seedLedger(t)
	ctx := context.Background()
	store, err := ledger.Open(ctx, f.url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rep, err := buildReport(ctx, store, id(f.a))
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	out, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeHTML(out, rep); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}

	// One browser run gives both the DOM and the screenshot: a start costs
	// seconds on a loaded machine.
	dir := t.TempDir()
	shot := filepath.Join(dir, "report.png")
	dom, errOut, err := headless(dir, bin, page, "--dump-dom", "--screenshot="+shot, "--window-size=1200,900")
	if err != nil || !strings.Contains(dom, "</html>") {
		t.Fatalf("chromium --dump-dom: %v\nstdout:\n%s\nstderr:\n%s", err, dom, tail(errOut, 2000))
	}

	t.Run("title and run", func(t *testing.T) {
		if !strings.Contains(dom, "<title>etl run report #"+id(f.a)+"</title>") {
			t.Errorf("no title for run %d:\n%s", f.a, dom)
		}
		if !regexp.MustCompile(`<td class="l" id="status-` + id(f.a) + `">partial</td>`).MatchString(dom) {
			t.Errorf("run %d's status cell does not say partial:\n%s", f.a, dom)
		}
	})

	t.Run("partner rows", func(t *testing.T) {
		// ok, rejected, failed, uncertain, total; the clubready intent is
		// not an outcome.
		want := map[string][]string{
			"clubready": {"2", "0", "0", "0", "2"},
			"datafeed":  {"0", "0", "1", "1", "2"},
			"q2open":    {"2", "0", "1", "0", "3"},
			"synctera":  {"3", "1", "0", "0", "4"},
		}
		rows := regexp.MustCompile(`(?s)<tr class="partner" data-partner="([^"]*)">(.*?)</tr>`).FindAllStringSubmatch(dom, -1)
		if len(rows) != len(want) {
			t.Errorf("want %d partner rows, got %d:\n%s", len(want), len(rows), dom)
		}
		cell := regexp.MustCompile(`<td(?: class="n-ok")?>(\d+)</td>`)
		for _, row := range rows {
			name, body := row[1], row[2]
			var got []string
			for _, m := range cell.FindAllStringSubmatch(body, -1) {
				got = append(got, m[1])
			}
			if strings.Join(got, " ") != strings.Join(want[name], " ") {
				t.Errorf("partner %q: want ok/rejected/failed/uncertain/total %v, got %v", name, want[name], got)
			}
			if !strings.Contains(body, `<td class="n-ok">`+want[name][0]+`</td>`) {
				t.Errorf("partner %q: no n-ok cell with %s", name, want[name][0])
			}
		}
		if !strings.Contains(dom, `<div class="ok" style="width:75.0%"></div>`) {
			t.Errorf("synctera's ok bar is not 75%% wide:\n%s", dom)
		}
	})

	t.Run("top error reasons", func(t *testing.T) {
		body := table(t, dom, "errors")
		for _, want := range []string{
			`<td class="l">synctera</td><td class="l">invalid_expiration</td><td>1</td><td class="l">expiration_date: must be in the future</td>`,
			`<td class="l">q2open</td><td class="l">http_503</td><td>1</td>`,
			`<td class="l">datafeed</td><td class="l">timeout</td><td>1</td>`,
			`<td class="l">datafeed</td><td class="l">http_500</td><td>1</td>`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("errors table lacks %s:\n%s", want, body)
			}
		}
		if strings.Contains(body, "pending") {
			t.Errorf("a pending intent is listed as an error:\n%s", body)
		}
	})

	t.Run("rejects", func(t *testing.T) {
		body := table(t, dom, "rejects")
		for _, want := range []string{
			`<td class="l">(all)</td><td class="l">bad_email</td><td>1</td><td class="l">email is not an address</td>`,
			`<td class="l">(all)</td><td class="l">luhn_failed</td><td>1</td>`,
			`<td class="l">synctera</td><td class="l">partner_mapping</td><td>1</td>`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("rejects table lacks %s:\n%s", want, body)
			}
		}
	})

	t.Run("self-contained", func(t *testing.T) {
		for name, doc := range map[string]string{"file": string(raw), "DOM": dom} {
			lower := strings.ToLower(doc)
			for _, bad := range []string{"<script", "<link", "<img", "<iframe", "<object", "<embed", "@import", "url(", " src=", " href=", "http://", "https://", "//cdn"} {
				if strings.Contains(lower, bad) {
					t.Errorf("%s contains %q: the report must not load or run anything", name, bad)
				}
			}
		}
	})

	t.Run("no card numbers", func(t *testing.T) {
		if pans := panLike(dom); len(pans) > 0 {
			t.Errorf("the rendered report shows card numbers %q", pans)
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		if _, err := os.Stat(shot); err != nil {
			// A browser that takes only one of the two modes per run.
			dir := t.TempDir()
			if out, errOut, err := headless(dir, bin, page, "--screenshot="+shot, "--window-size=1200,900"); err != nil {
				t.Fatalf("chromium --screenshot: %v\n%s\n%s", err, out, tail(errOut, 2000))
			}
		}
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 8*1024 || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("want a PNG over 8 KiB, got %d bytes starting %q", len(b), b[:min(len(b), 8)])
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if sz := img.Bounds().Size(); sz.X != 1200 || sz.Y != 900 {
			t.Errorf("screenshot is %v, want 1200x900", sz)
		}
		// The legend's swatches are 10x10: thousands of bar-coloured
		// pixels mean the bars themselves were laid out and painted.
		count := func(r0, g0, b0 uint32) int {
			n := 0
			for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
				for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
					r, g, b, _ := img.At(x, y).RGBA()
					if near(r>>8, r0) && near(g>>8, g0) && near(b>>8, b0) {
						n++
					}
				}
			}
			return n
		}
		if n := count(0x2e, 0x7d, 0x32); n < 2000 {
			t.Errorf("only %d ok-green pixels: the outcome bars did not render", n)
		}
		if n := count(0xc6, 0x28, 0x28); n < 500 {
			t.Errorf("only %d failed-red pixels: the outcome bars did not render", n)
		}
	})
}

func near(a, b uint32) bool { return a+6 >= b && b+6 >= a }

func table(t *testing.T, dom, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<table id="` + id + `">(.*?)</table>`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no table#%s in the DOM:\n%s", id, dom)
	}
	return m[1]
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
