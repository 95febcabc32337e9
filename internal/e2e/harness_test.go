// Package e2e drives the real etl binary against the partner sandboxes on
// loopback and a real PostgreSQL: the tests that prove nothing is lost and
// nothing is sent twice across crashes, kills, outages and reruns.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/northwind-data/etl/internal/gen"
	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/pgtest"
	"github.com/northwind-data/etl/internal/sandbox/faults"
)

var etlBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "etl-e2e-bin-")
	if err != nil {
		panic(err)
	}
	etlBin = filepath.Join(dir, "etl")
	out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", etlBin, "../../cmd/etl").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build etl: %v\n%s", err, out)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	pgtest.Main(m)
}

type env struct {
	t       *testing.T
	db      string
	pool    *pgxpool.Pool
	sb      *partners.Sandboxes
	srv     *httptest.Server
	input   string
	cfgPath string
	envv    []string
	logs    *lockedBuffer // every process's stderr, for the card-data scan
}

// lockedBuffer is written by the output copiers of several processes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newEnv starts the sandboxes, a fresh ledger database, n generated
// customers and a config pointing at them.
func newEnv(t *testing.T, n int, fc map[string]faults.Config) *env {
	t.Helper()
	return newEnvWith(t, n, 42, partners.NewSandboxes(fc))
}

// newEnvWith is newEnv with the given sandboxes, the customers generated
// from seed.
func newEnvWith(t *testing.T, n int, seed uint64, sb *partners.Sandboxes) *env {
	t.Helper()
	e := &env{t: t, db: pgtest.NewDB(t), sb: sb, logs: &lockedBuffer{}}
	e.srv = httptest.NewServer(e.sb)
	t.Cleanup(e.srv.Close)
	pool, err := pgxpool.New(context.Background(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	e.pool = pool
	t.Cleanup(pool.Close)
	e.input = t.TempDir()
	if n > 0 {
		if _, err := gen.Write(e.input, gen.Options{Customers: n, CardsPerCustomer: 1.5, Seed: seed, Sorted: true, Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	e.cfgPath = filepath.Join(t.TempDir(), "etl.yaml")
	e.envv = append(os.Environ(), "DATABASE_URL="+e.db, "ETL_HMAC_KEY=e2e-hmac-key-0123456789abcdef-sandbox-only")
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "source: {type: csv, dir: %s}\nledger: {url: {env: DATABASE_URL}}\nhmac_key: {env: ETL_HMAC_KEY}\nrun: {grace_period: 5s}\nallow_insecure_loopback: true\npartners:\n", e.input)
	for _, sp := range partners.All() {
		base := e.srv.URL + "/" + sp.Name + sp.BasePath
		fmt.Fprintf(&cfg, "  %s:\n    base_url: %s\n    timeout: 5s\n    concurrency: 4\n    credentials:\n", sp.Name, base)
		for _, k := range sortedKeys(sp.DemoCredentials) {
			v := "E2E_" + strings.ToUpper(sp.Name+"_"+k)
			fmt.Fprintf(&cfg, "      %s: {env: %s}\n", k, v)
			e.envv = append(e.envv, v+"="+sp.DemoCredentials[k])
		}
		if len(sp.DemoOptions) > 0 {
			fmt.Fprintf(&cfg, "    options:\n")
			for _, k := range sortedKeys(sp.DemoOptions) {
				v := strings.ReplaceAll(sp.DemoOptions[k], "{base}", base)
				fmt.Fprintf(&cfg, "      %s: %q\n", k, v)
			}
		}
	}
	if err := os.WriteFile(e.cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

type result struct {
	code           int
	stdout, stderr string
}

func (e *env) cmd(args ...string) *exec.Cmd {
	c := exec.Command(etlBin, args...)
	c.Env = e.envv
	return c
}

// run runs etl to completion.
func (e *env) run(args ...string) result {
	e.t.Helper()
	c := e.cmd(args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, io.MultiWriter(&errb, e.logs)
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func (e *env) runETL(extra ...string) result {
	e.t.Helper()
	return e.run(append([]string{"run", "--config", e.cfgPath, "--progress", "none"}, extra...)...)
}

// start runs etl in the background.
func (e *env) start(extra ...string) (*exec.Cmd, *lockedBuffer) {
	e.t.Helper()
	c := e.cmd(append([]string{"run", "--config", e.cfgPath, "--progress", "none"}, extra...)...)
	out := &lockedBuffer{}
	c.Stdout, c.Stderr = out, io.MultiWriter(out, e.logs)
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	return c, out
}

func kill(c *exec.Cmd) {
	_ = c.Process.Signal(syscall.SIGKILL)
	_ = c.Wait()
}

// rerunUntilDone reruns until exit 0, at most n times.
func (e *env) rerunUntilDone(n int) result {
	e.t.Helper()
	var r result
	for i := 0; i < n; i++ {
		r = e.runETL()
		if r.code == 0 {
			return r
		}
	}
	e.t.Fatalf("still not done after %d reruns: exit %d\n%s\n%s", n, r.code, r.stdout, tail(r.stderr, 2000))
	return r
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (e *env) state(p string) map[string]any {
	e.t.Helper()
	resp, err := http.Get(e.srv.URL + "/" + p + "/_sandbox/state")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) scalar(sql string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// exactlyOnce asserts every partner holds every record it should, once.
func (e *env) exactlyOnce() {
	e.t.Helper()
	for _, sp := range partners.All() {
		want := e.scalar(`SELECT count(*) FROM sync_state WHERE provider = $1 AND entity_key LIKE $2`, sp.Name, sp.EntityPrefix+"%")
		if want == 0 {
			e.t.Errorf("%s: nothing delivered", sp.Name)
			continue
		}
		got, dups := sp.Count(e.sb.Partners[sp.Name])
		if dups != 0 || int64(got) != want {
			e.t.Errorf("%s: partner holds %d records with %d duplicates; the checkpoint says %d", sp.Name, got, dups, want)
		}
	}
}
