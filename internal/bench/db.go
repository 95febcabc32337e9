package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/pgtest"
)

// dbServer hands out fresh ledger databases: on the server in a given URL,
// or on a throwaway cluster started here (whose CPU can then be counted).
type dbServer struct {
	admin   string
	cluster *pgtest.Cluster
	seq     atomic.Int64
	made    []string
}

func openDBServer(ctx context.Context, adminURL string, noSync bool) (*dbServer, error) {
	if adminURL != "" {
		return &dbServer{admin: adminURL}, nil
	}
	start := pgtest.StartDurableCluster
	if noSync {
		start = pgtest.StartCluster
	}
	c, err := start(ctx)
	if err != nil {
		return nil, err
	}
	return &dbServer{admin: c.URL("postgres"), cluster: c}, nil
}

// PID is the postmaster's pid, 0 when the server is not ours.
func (d *dbServer) PID() int {
	if d.cluster == nil {
		return 0
	}
	return postmasterPID(filepath.Join(d.cluster.Dir, "data"))
}

// NewDB creates an empty database with the ledger schema applied, so a
// measured run does not time a one-off migration.
func (d *dbServer) NewDB(ctx context.Context) (string, error) {
	name := fmt.Sprintf("etl_bench_%d_%d", os.Getpid(), d.seq.Add(1))
	if err := pgtest.Exec(ctx, d.admin, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("bench: create database: %w", err)
	}
	d.made = append(d.made, name)
	u := pgtest.URLWithDB(d.admin, name)
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		return "", err
	}
	defer pool.Close()
	if _, err := ledger.Migrate(ctx, pool); err != nil {
		return "", err
	}
	return u, nil
}

// Close drops the databases made here and stops a cluster started here.
func (d *dbServer) Close() {
	if d.cluster != nil {
		d.cluster.Stop()
		return
	}
	for _, n := range d.made {
		_ = pgtest.Exec(context.Background(), d.admin, "DROP DATABASE IF EXISTS "+n+" WITH (FORCE)")
	}
}
