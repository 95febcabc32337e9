// Package pgtest gives tests (and `make demo`) a real, throwaway PostgreSQL:
// one cluster per test binary started from the local PostgreSQL binaries,
// or the server in DATABASE_URL when set, and a fresh database per test
// cloned from a migrated template. There is no mock of Postgres anywhere.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Cluster is a PostgreSQL server this process started in a temp dir.
type Cluster struct {
	Dir  string
	Port int
	bin  string
	asPG bool // run the binaries as the postgres user (we are root)
}

// URL is a connection URL for database db on the cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// FindBin locates the PostgreSQL server binaries: $PG_BIN, then the newest
// /usr/lib/postgresql/*/bin (Debian), then $PATH.
func FindBin() (string, error) {
	if b := os.Getenv("PG_BIN"); b != "" {
		return b, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("pgtest: no PostgreSQL server binaries (initdb, pg_ctl): install postgresql (apt-get install postgresql), set PG_BIN, or set DATABASE_URL")
}

func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// StartCluster initdb's and starts a cluster tuned for throwaway use
// (fsync off: the data dies with the test anyway).
func StartCluster(ctx context.Context) (*Cluster, error) {
	return startCluster(ctx, "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
}

// StartDurableCluster starts a throwaway cluster that commits as a
// production server does (fsync, synchronous_commit and full-page writes
// on), for measurements whose cost depends on commits: a benchmark on a
// cluster that never flushes flatters every design that commits often.
func StartDurableCluster(ctx context.Context) (*Cluster, error) {
	return startCluster(ctx, "-c fsync=on -c synchronous_commit=on -c full_page_writes=on")
}

func startCluster(ctx context.Context, durability string) (*Cluster, error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "etl-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, bin: bin, asPG: os.Geteuid() == 0}
	if c.asPG {
		// initdb refuses to run as root; hand the directory to postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		_ = os.Chmod(dir, 0o700)
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		c.Stop()
		return nil, fmt.Errorf("pgtest: initdb: %w: %s", err, out)
	}
	for attempt := 0; attempt < 5; attempt++ {
		c.Port, err = freePort()
		if err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 %s -c max_connections=200 -c shared_buffers=128MB", c.Port, dir, durability)
		var out string
		out, err = c.run(ctx, "pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start")
		if err == nil {
			return c, nil
		}
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		if !strings.Contains(string(log), "already in use") {
			c.Stop()
			return nil, fmt.Errorf("pgtest: pg_ctl start: %w: %s %s", err, out, tail(string(log), 800))
		}
	}
	c.Stop()
	return nil, fmt.Errorf("pgtest: could not find a free port: %w", err)
}

// Stop shuts the cluster down and removes its directory.
func (c *Cluster) Stop() {
	data := filepath.Join(c.Dir, "data")
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, _ = c.run(ctx, "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
		cancel()
	}
	_ = os.RemoveAll(c.Dir)
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) (string, error) {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.asPG {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = c.Dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
