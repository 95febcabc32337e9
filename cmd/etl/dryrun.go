package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/redact"
)

// dryRejects records a dry run's rejects: in the rejects table under the
// dry run's own runs row (so `etl rejects` and `etl report` show them), and
// as rejects.csv under --dry-run-out when given, with the columns of `etl
// rejects` and messages masked the same way. The engine calls add from the
// source's goroutine and its planners at once.
type dryRejects struct {
	store *ledger.Store
	runID int64
	path  string // rejects.csv, or "" without --dry-run-out

	mu     sync.Mutex
	f      *os.File
	csv    *csv.Writer
	buf    []ledger.RejectRow
	byWhy  map[string]int64
	err    error
	stored int
}

func newDryRejects(store *ledger.Store, runID int64, dir string) (*dryRejects, error) {
	d := &dryRejects{store: store, runID: runID, byWhy: map[string]int64{}}
	if dir != "" {
		d.path = filepath.Join(dir, "rejects.csv")
		f, err := os.OpenFile(d.path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, err
		}
		d.f, d.csv = f, csv.NewWriter(f)
		_ = d.csv.Write([]string{"file", "line", "entity_key", "field", "reason", "partner", "message"})
	}
	return d, nil
}

const dryRejectBatch = 2000

func (d *dryRejects) add(r ledger.RejectRow) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r.Message = redact.Text(r.Message)
	d.byWhy[r.Reason]++
	if d.csv != nil {
		_ = d.csv.Write([]string{r.File, strconv.Itoa(r.Line), r.EntityKey, r.Field, r.Reason, r.Provider, r.Message})
	}
	d.buf = append(d.buf, r)
	if len(d.buf) >= dryRejectBatch {
		d.flush(context.Background())
	}
}

func (d *dryRejects) flush(ctx context.Context) {
	if d.err == nil && len(d.buf) > 0 {
		d.err = d.store.AddRejects(ctx, d.runID, d.buf)
		d.stored += len(d.buf)
	}
	d.buf = d.buf[:0]
}

// close writes what is buffered and closes rejects.csv.
func (d *dryRejects) close(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flush(ctx)
	if d.csv != nil {
		d.csv.Flush()
		if err := d.csv.Error(); err != nil && d.err == nil {
			d.err = fmt.Errorf("%s: %w", d.path, err)
		}
		if err := d.f.Close(); err != nil && d.err == nil {
			d.err = fmt.Errorf("%s: %w", d.path, err)
		}
		d.csv = nil
	}
	return d.err
}

func (d *dryRejects) reasons() map[string]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]int64, len(d.byWhy))
	for k, v := range d.byWhy {
		out[k] = v
	}
	return out
}

// checkTextfileDir fails when the metrics textfile's directory is missing,
// not a directory, or not writable (the collector writes a temporary file
// beside the target and renames it).
func checkTextfileDir(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".etl-textfile-check-*")
	if err != nil {
		return fmt.Errorf("directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
