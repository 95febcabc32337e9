package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/buildinfo"

	"github.com/northwind-data/etl/internal/pgtest"
)

// childEnv makes the test binary behave as the etl command: the CLI is
// tested as a real process (exit codes, stdout and stderr kept apart)
// without a separate `go build`, and under -race when the tests are.
const childEnv = "ETL_CMD_TEST_AS_ETL"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(mainCode(os.Args[1:]))
	}
	pgtest.Main(m)
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// repoRoot is where the children run, so the sample config's relative
// source.dir (sample-data) resolves as it does for `make demo`.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repo root %s: %v", root, err)
	}
	return root
}

// baseEnv is the parent's environment minus everything etl reads, so a
// developer's or CI's DATABASE_URL or ETL_* cannot change an outcome.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || k == "GORACE" || k == "SOURCE_DATABASE_URL" || k == "JOB_COMPLETION_INDEX" ||
			strings.HasPrefix(k, "ETL_") || strings.HasPrefix(k, "SANDBOX_") {
			continue
		}
		out = append(out, kv)
	}
	// The race runtime sleeps 1s at exit by default (for late reports from
	// other goroutines); every etl call here would pay it.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	// UTC: status and report print local times.
	return append(out, childEnv+"=1", "TZ=UTC", "GORACE="+gorace)
}

// etl runs the command with env (KEY=VALUE) added to baseEnv.
func etl(t testing.TB, env map[string]string, args ...string) result {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = baseEnv()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("etl %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

var (
	demoOnce sync.Once
	demoVars map[string]string
	demoErr  error
)

// demoEnv is what scripts/demo-env.sh exports, read by sourcing the script
// itself so this test follows it instead of a copy.
func demoEnv(t testing.TB) map[string]string {
	t.Helper()
	demoOnce.Do(func() {
		cmd := exec.Command("bash", "-c", ". scripts/demo-env.sh >/dev/null && env -0")
		cmd.Dir = repoRoot(t)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.Output()
		if err != nil {
			demoErr = fmt.Errorf("sourcing scripts/demo-env.sh: %v", err)
			return
		}
		demoVars = map[string]string{}
		for _, kv := range strings.Split(string(out), "\x00") {
			k, v, ok := strings.Cut(kv, "=")
			if ok && (strings.HasPrefix(k, "ETL_") || strings.HasPrefix(k, "SANDBOX_")) {
				demoVars[k] = v
			}
		}
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	if demoVars["ETL_HMAC_KEY"] == "" || demoVars["SANDBOX_SYNCTERA_TOKEN"] == "" {
		t.Fatalf("scripts/demo-env.sh no longer exports ETL_HMAC_KEY and SANDBOX_SYNCTERA_TOKEN: %v", demoVars)
	}
	out := map[string]string{}
	for k, v := range demoVars {
		out[k] = v
	}
	// Validation resolves the ledger secret but never connects.
	out["DATABASE_URL"] = "postgres://etl@127.0.0.1:1/etl?sslmode=disable"
	return out
}

// secretValues are the demo env values that are credentials (base URLs
// are not).
func secretValues(env map[string]string) []string {
	var out []string
	for k, v := range env {
		if strings.HasPrefix(k, "SANDBOX_") || k == "ETL_HMAC_KEY" {
			out = append(out, v)
		}
	}
	return out
}

func TestTopLevelUsage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"no args", nil, exitUsage, []string{"Usage: etl <command>"}},
		{"--help", []string{"--help"}, exitOK, []string{"Usage: etl <command>", "Exit codes:", "Examples:"}},
		{"-h", []string{"-h"}, exitOK, []string{"Usage: etl <command>"}},
		{"help", []string{"help"}, exitOK, []string{"Usage: etl <command>"}},
		{"unknown command", []string{"frobnicate"}, exitUsage, []string{`unknown command "frobnicate"`, "Usage: etl <command>"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := etl(t, nil, c.args...)
			if r.code != c.code {
				t.Fatalf("want exit %d, got %s", c.code, r)
			}
			for _, want := range c.contains {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r)
				}
			}
			// Every command is listed with its summary.
			for _, cmd := range commands {
				if !regexp.MustCompile(`(?m)^  ` + cmd.name + `\s+\S`).MatchString(r.stderr) {
					t.Errorf("usage does not list command %q:\n%s", cmd.name, r.stderr)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	want := "etl " + buildinfo.Read().String()
	for _, arg := range []string{"version", "--version"} {
		r := etl(t, nil, arg)
		if first, _, _ := strings.Cut(r.stdout, "\n"); r.code != exitOK || first != want {
			t.Fatalf("etl %s: want %q first on stdout, got %s", arg, want, r)
		}
	}
}

// Every subcommand explains itself with -h, including a copy-paste example.
func TestSubcommandHelp(t *testing.T) {
	t.Parallel()
	if len(commands) < 9 {
		t.Fatalf("only %d commands registered", len(commands))
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := etl(t, nil, c.name, "-h")
			if r.code != exitOK && r.code != exitUsage {
				t.Fatalf("want exit 0 or 2, got %s", r)
			}
			out := r.stdout + r.stderr
			if n := strings.Count(out, "Usage"); n != 1 {
				t.Errorf("want the usage once, got it %d times:\n%s", n, r)
			}
			if !regexp.MustCompile(`(?m)^Examples?:\n(\s+.*\n)*?\s+etl ` + c.name + `\b`).MatchString(out) {
				t.Errorf("help has no \"Example:\" section with an `etl %s ...` line:\n%s", c.name, out)
			}
		})
	}
}

// sampleConfig is sample-data/etl.yaml with edit applied; edit must
// change it, so that a moved anchor cannot turn a case into a no-op.
func sampleConfig(t *testing.T, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "sample-data", "etl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	out := src
	if edit != nil {
		if out = edit(src); out == src {
			t.Fatal("config edit changed nothing: its anchor moved in sample-data/etl.yaml")
		}
	}
	p := filepath.Join(t.TempDir(), "etl.yaml")
	if err := os.WriteFile(p, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lineOf is the 1-based line of the first line equal to s.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if l == s {
			return i + 1
		}
	}
	t.Fatalf("no line %q", s)
	return 0
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	replace := func(old, new string) func(string) string {
		return func(s string) string { return strings.Replace(s, old, new, 1) }
	}
	cases := []struct {
		name     string
		edit     func(string) string
		env      func(map[string]string)
		code     int
		stdout   []string
		stderr   []string
		problems int    // "N problem(s)" when > 0
		line     string // the edited file's line whose number the message must give
	}{
		{name: "sample config with the demo env is valid", code: exitOK, stdout: []string{"is valid"}},
		{
			name:   "unknown key names its line",
			edit:   replace("source:\n", "source:\n  colour: blue\n"),
			code:   exitUsage,
			stderr: []string{"colour"},
			line:   "  colour: blue",
		},
		{
			name:   "bad duration names its line",
			edit:   replace("    concurrency: 8\n    timeout: 30s\n", "    concurrency: 8\n    timeout: 30 seconds\n"),
			code:   exitUsage,
			stderr: []string{"30 seconds"},
			line:   "    timeout: 30 seconds",
		},
		{
			name:     "lock heartbeat out of range",
			edit:     replace("run:\n", "run:\n  lock_heartbeat: 1ms\n"),
			code:     exitUsage,
			stderr:   []string{"run.lock_heartbeat", "between 10ms and 5m"},
			problems: 1,
		},
		{
			name:     "missing secret env var",
			env:      func(e map[string]string) { delete(e, "SANDBOX_SYNCTERA_TOKEN") },
			code:     exitUsage,
			stderr:   []string{"partners.synctera.credentials.token", "SANDBOX_SYNCTERA_TOKEN"},
			problems: 1,
		},
		{
			name:     "unreadable secret file",
			edit:     replace("token: {env: SANDBOX_Q2OPEN_TOKEN}", "token: {file: /nonexistent/etl-test/q2open-token}"),
			code:     exitUsage,
			stderr:   []string{"partners.q2open.credentials.token", "/nonexistent/etl-test/q2open-token"},
			problems: 1,
		},
		{
			name:     "credential a partner does not take",
			edit:     replace("      token: {env: SANDBOX_SYNCTERA_TOKEN}\n", "      token: {env: SANDBOX_SYNCTERA_TOKEN}\n      passwd: {env: SANDBOX_SYNCTERA_TOKEN}\n"),
			code:     exitUsage,
			stderr:   []string{"partners.synctera.credentials.passwd", "not a credential of synctera"},
			problems: 1,
		},
		{
			name:     "base_url without a scheme (env override)",
			env:      func(e map[string]string) { e["ETL_SYNCTERA_BASE_URL"] = "127.0.0.1:18099/synctera/v0" },
			code:     exitUsage,
			stderr:   []string{"partners.synctera.base_url", "must start with http:// or https://"},
			problems: 1,
		},
		{
			name:     "base_url with another scheme (file)",
			edit:     replace("base_url: http://127.0.0.1:18099/q2open", "base_url: ftp://127.0.0.1:18099/q2open"),
			env:      func(e map[string]string) { delete(e, "ETL_Q2OPEN_BASE_URL") },
			code:     exitUsage,
			stderr:   []string{"partners.q2open.base_url", "must start with http:// or https://"},
			problems: 1,
		},
		{
			name:     "unknown partner",
			edit:     replace("partners:\n", "partners:\n  stripe:\n    base_url: http://127.0.0.1:18099/stripe\n"),
			code:     exitUsage,
			stderr:   []string{"partners.stripe", "unknown partner", "synctera"},
			problems: 1,
		},
		{
			name:     "hmac_key too short",
			env:      func(e map[string]string) { e["ETL_HMAC_KEY"] = "sh0rtKeyXyz" },
			code:     exitUsage,
			stderr:   []string{"hmac_key", "too short"},
			problems: 1,
		},
		{
			name:     "http base_url off loopback (env override)",
			env:      func(e map[string]string) { e["ETL_SYNCTERA_BASE_URL"] = "http://sandbox.example:18099/synctera/v0" },
			code:     exitUsage,
			stderr:   []string{"partners.synctera.base_url", "http:// is refused"},
			problems: 1,
		},
		{
			name:     "http vault_url off loopback (env override)",
			env:      func(e map[string]string) { e["ETL_CLUBREADY_OPT_VAULT_URL"] = "http://10.1.2.3/clubready" },
			code:     exitUsage,
			stderr:   []string{"partners.clubready.options.vault_url", "http:// is refused"},
			problems: 1,
		},
		{
			name:   "loopback sandboxes without the opt-in",
			edit:   replace("allow_insecure_loopback: true", "allow_insecure_loopback: false"),
			code:   exitUsage,
			stderr: []string{"partners.synctera.base_url", "partners.clubready.options.vault_url", "allow_insecure_loopback: true"},
		},
		{
			name:     "hmac_key is the example placeholder",
			env:      func(e map[string]string) { e["ETL_HMAC_KEY"] = "CHANGE_ME_32_RANDOM_BYTES_BASE64" },
			code:     exitUsage,
			stderr:   []string{"hmac_key", "placeholder"},
			problems: 1,
		},
		{
			name: "postgres source without certificate verification warns",
			edit: replace("  type: csv                 # csv | postgres\n", "  type: postgres\n  postgres: {url: {env: SOURCE_DATABASE_URL}, customers: c, cards: k}\n"),
			env: func(e map[string]string) {
				e["SOURCE_DATABASE_URL"] = "postgres://reader:s3cretPw@bank-db.example:5432/core?sslmode=require"
			},
			code:   exitOK,
			stdout: []string{"is valid"},
			stderr: []string{"warning: source.postgres.url: sslmode=require does not verify the server certificate", "verify-full"},
		},
		{
			name: "every problem in one pass",
			env: func(e map[string]string) {
				delete(e, "SANDBOX_SYNCTERA_TOKEN")
				e["ETL_HMAC_KEY"] = "sh0rtKeyXyz"
			},
			code:     exitUsage,
			stderr:   []string{"partners.synctera.credentials.token", "hmac_key"},
			problems: 2,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := demoEnv(t)
			if c.env != nil {
				c.env(env)
			}
			path := sampleConfig(t, c.edit)
			r := etl(t, env, "config", "check", "--config", path)
			if r.code != c.code {
				t.Fatalf("want exit %d, got %s", c.code, r)
			}
			for _, want := range c.stdout {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, r)
				}
			}
			for _, want := range c.stderr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r)
				}
			}
			if c.code != exitOK && r.stdout != "" {
				t.Errorf("a failed check printed to stdout:\n%s", r)
			}
			if c.line != "" {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("line %d", lineOf(t, string(b), c.line)); !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r)
				}
			}
			if c.problems > 0 && !strings.Contains(r.stderr, fmt.Sprintf("%d problem(s)", c.problems)) {
				t.Errorf("want %d problem(s):\n%s", c.problems, r)
			}
			for _, secret := range append(secretValues(env), "sh0rtKeyXyz", "s3cretPw", "CHANGE_ME_32") {
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Errorf("output reveals the secret value %q:\n%s", secret, r)
				}
			}
		})
	}
}

func TestConfigCommandMisuse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"config"}, "Usage: etl config check"},
		{"unknown subcommand", []string{"config", "lint"}, "Usage: etl config check"},
		{"missing file", []string{"config", "check", "--config", "/nonexistent/etl-test.yaml"}, "/nonexistent/etl-test.yaml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := etl(t, nil, c.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("want exit %d and %q on stderr, got %s", exitUsage, c.want, r)
			}
		})
	}
}

// A database that cannot be reached stops the run before anything is
// sent, with one line that names the host and keeps the password out.
func TestRunUnreachableDatabase(t *testing.T) {
	t.Parallel()
	// A port that was free a moment ago: connection refused, fast.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	const password = "Pa55wordNeverPrinted"
	url := fmt.Sprintf("postgres://etl:%s@127.0.0.1:%d/etl_ledger?sslmode=disable&connect_timeout=5", password, port)
	cfg := sampleConfig(t, nil)

	cases := []struct {
		name string
		env  func(map[string]string)
		args []string
	}{
		{"DATABASE_URL", func(e map[string]string) { e["DATABASE_URL"] = url }, nil},
		{"--database-url", nil, []string{"--database-url", url}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := demoEnv(t)
			if c.env != nil {
				c.env(env)
			}
			args := append([]string{"run", "--config", cfg, "--progress", "none"}, c.args...)
			r := etl(t, env, args...)
			if r.code != exitFatal {
				t.Fatalf("want exit %d, got %s", exitFatal, r)
			}
			msg := strings.TrimSuffix(r.stderr, "\n")
			if msg == "" || strings.Contains(msg, "\n") {
				t.Errorf("want exactly one line on stderr:\n%s", r)
			}
			if !strings.Contains(msg, fmt.Sprintf("127.0.0.1:%d", port)) {
				t.Errorf("message does not name the host and port 127.0.0.1:%d:\n%s", port, r)
			}
			if strings.Contains(r.stdout+r.stderr, password) {
				t.Errorf("output reveals the database password:\n%s", r)
			}
			if r.stdout != "" {
				t.Errorf("nothing should reach stdout:\n%s", r)
			}
		})
	}
}

// The operator path for records no rerun can settle explains itself and
// refuses a settlement that does not say what, who and why.
func TestIntentsCommandMisuse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", []string{"intents"}, exitUsage, "etl intents settle --entity"},
		{"unknown subcommand", []string{"intents", "fix"}, exitUsage, `unknown subcommand "fix"`},
		{"list help", []string{"intents", "list", "-h"}, exitOK, "needs-operator"},
		{"settle help", []string{"intents", "settle", "-h"}, exitOK, "--as resend"},
		{"settle without who and why", []string{"intents", "settle", "--entity", "card/C1/K1", "--as", "resend"}, exitUsage, "--by, --reason required"},
		{"settle as something else", []string{"intents", "settle", "--entity", "card/C1/K1", "--as", "maybe", "--by", "a", "--reason", "b"}, exitUsage, `--as "maybe"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := etl(t, nil, c.args...)
			if r.code != c.code || !strings.Contains(r.stdout+r.stderr, c.want) {
				t.Fatalf("want exit %d and %q, got %s", c.code, c.want, r)
			}
		})
	}
}
