package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/northwind-data/etl/internal/ledger"
)

const template = "etl_template"

var (
	once     sync.Once
	started  *Cluster
	adminURL string
	setupErr error
	seq      atomic.Int64
)

// Main wraps testing.M: it runs the tests, then stops the cluster if this
// binary started one. Use it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if started != nil {
		started.Stop()
	}
	os.Exit(code)
}

func setup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if u := os.Getenv("DATABASE_URL"); u != "" {
		adminURL = u
	} else {
		started, setupErr = StartCluster(ctx)
		if setupErr != nil {
			return
		}
		adminURL = started.URL("postgres")
	}
	// A migrated template makes each test's database a cheap file copy.
	// The name carries the pid so two test binaries sharing one
	// DATABASE_URL server do not trip over each other's template.
	tpl := fmt.Sprintf("%s_%d", template, os.Getpid())
	if setupErr = Exec(ctx, adminURL, "DROP DATABASE IF EXISTS "+tpl); setupErr != nil {
		return
	}
	if setupErr = Exec(ctx, adminURL, "CREATE DATABASE "+tpl); setupErr != nil {
		return
	}
	pool, err := pgxpool.New(ctx, URLWithDB(adminURL, tpl))
	if err != nil {
		setupErr = err
		return
	}
	_, setupErr = ledger.Migrate(ctx, pool)
	pool.Close()
}

// NewDB returns the URL of a fresh, migrated database for this test; it is
// dropped when the test ends. Postgres is required: if it cannot be
// started the test fails (never skips), because CI must not go green
// without the ledger tested.
func NewDB(t testing.TB) string {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		t.Fatalf("pgtest: %v", setupErr)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), seq.Add(1))
	ctx := context.Background()
	tpl := fmt.Sprintf("%s_%d", template, os.Getpid())
	if err := Exec(ctx, adminURL, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tpl)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		_ = Exec(context.Background(), adminURL, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return URLWithDB(adminURL, name)
}

// NewPool is NewDB plus a pool closed at the end of the test.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// EmptyDB is a fresh database with no migrations applied.
func EmptyDB(t testing.TB) string {
	t.Helper()
	once.Do(setup)
	if setupErr != nil {
		t.Fatalf("pgtest: %v", setupErr)
	}
	name := fmt.Sprintf("e%d_%d", os.Getpid(), seq.Add(1))
	if err := Exec(context.Background(), adminURL, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = Exec(context.Background(), adminURL, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return URLWithDB(adminURL, name)
}

// Exec runs one statement on a fresh connection to u (CREATE and DROP
// DATABASE cannot run inside a pool's transaction).
func Exec(ctx context.Context, u, sql string) error {
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// URLWithDB is u with its database name replaced by db.
func URLWithDB(u, db string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.Path = "/" + db
	return p.String()
}
