// Package ledger is all Postgres access: migrations, runs, the per-call
// ledger, sync_state (the checkpoint) and rejects. The run lock is
// internal/runlock; its fence is checked here, by every commit of a run
// (fence.go).
package ledger

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/northwind-data/etl/migrations"
)

// migrateLockID serialises concurrent `etl migrate` / `etl run` starts.
const migrateLockID = 0x65746c6d6967 // "etlmig"

// Migrate applies every embedded migration not yet applied, each in its own
// transaction, under an advisory lock so that two processes starting at
// once do not race. It returns the versions applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	files, err := migrationFiles()
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLockID); err != nil {
		return nil, fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockID) //nolint:errcheck
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	done := map[int]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	for _, v := range vs {
		done[v] = true
	}
	var applied []int
	for _, f := range files {
		if done[f.version] {
			continue
		}
		sql, err := fs.ReadFile(migrations.FS, f.name)
		if err != nil {
			return applied, err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, f.version, f.name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migrate: %s: %w", f.name, err)
		}
		applied = append(applied, f.version)
	}
	return applied, nil
}

// Pending reports how many embedded migrations the database lacks.
func Pending(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	files, err := migrationFiles()
	if err != nil {
		return 0, err
	}
	var n int
	err = pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return len(files), nil
		}
		return 0, err
	}
	return len(files) - n, nil
}

type migFile struct {
	version int
	name    string
}

func migrationFiles() ([]migFile, error) {
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		return nil, err
	}
	var out []migFile
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migrate: file %s: name must start with a number", e.Name())
		}
		out = append(out, migFile{v, e.Name()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}
