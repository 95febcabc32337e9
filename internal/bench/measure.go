package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/model"
	"github.com/northwind-data/etl/internal/partner"
)

// Measure is one throughput figure.
type Measure struct {
	Customers int     `json:"customers"` // customers whose every op succeeded
	Ops       int     `json:"ops"`
	Requests  int64   `json:"requests"` // HTTP requests the sandbox counted
	Failed    int     `json:"failed"`   // ops that did not succeed
	Seconds   float64 `json:"seconds"`
	PerSec    float64 `json:"customers_per_s"`
	CPU       CPU     `json:"cpu"`
	Error     string  `json:"error,omitempty"`
}

func (m *Measure) finish(cpu CPU, wall time.Duration) {
	m.CPU, m.Seconds = cpu, wall.Seconds()
	if m.Seconds > 0 {
		m.PerSec = float64(m.Customers) / m.Seconds
	}
}

// RunMeasure is one `etl run` process.
type RunMeasure struct {
	Measure
	ExitCode int `json:"exit_code"`
	// Cut: stopped at the bench's time budget; the figures are what it
	// did until then.
	Cut       bool    `json:"cut_at_budget,omitempty"`
	MaxRSSMiB float64 `json:"max_rss_mib"`
	Read      int     `json:"customers_read"` // customers the run read from the source
	Calls     int64   `json:"calls"`          // partner calls the run counted
	// SyncStateSeqRows is how many sync_state rows PostgreSQL read by
	// sequential scan during the run: the checkpoint lookups should go
	// through the customer_id index, so anything near customers x batches
	// means a plan that scans the table per batch.
	SyncStateSeqRows int64 `json:"sync_state_seq_rows"`
}

// prepare maps every customer and fills what the planner would (content
// hash, create, idempotency key), outside any timing: the ceiling is the
// client and the wire alone.
func prepare(p partner.Provider, key []byte, cs []*model.Customer) ([][]partner.Op, error) {
	out := make([][]partner.Op, 0, len(cs))
	for _, c := range cs {
		items, _ := p.Map(c)
		if len(items) == 0 {
			continue // the partner cannot take this record; etl run skips it too
		}
		ops := make([]partner.Op, len(items))
		for i, it := range items {
			ops[i] = partner.NewOp(it)
			if err := planCreate(p.Name(), key, &ops[i]); err != nil {
				return nil, err
			}
		}
		out = append(out, ops)
	}
	return out, nil
}

func planCreate(name string, key []byte, op *partner.Op) error {
	h, err := load.ContentHash(key, op.Payload)
	if err != nil {
		return fmt.Errorf("bench: %s %s: %w", name, op.EntityKey, err)
	}
	op.Hash, op.Kind = h, partner.Create
	op.IdemKey = load.IdempotencyKey(key, name, partner.Create, op.EntityKey, h)
	return nil
}

// ceiling sends every prepared op through the partner's own client from
// workers goroutines, batch ops per Send, as fast as the sandbox answers.
func ceiling(ctx context.Context, p partner.Provider, perCustomer [][]partner.Op, batch, workers int) Measure {
	var ops []partner.Op
	var owner []int
	for ci, cops := range perCustomer {
		for _, op := range cops {
			ops = append(ops, op)
			owner = append(owner, ci)
		}
	}
	ok := make([]bool, len(ops))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for {
				start := int(next.Add(int64(batch))) - batch
				if start >= len(ops) || ctx.Err() != nil {
					return
				}
				end := min(start+batch, len(ops))
				for i, r := range p.Send(ctx, ops[start:end], nopJournal{}) {
					ok[start+i] = r.Outcome == partner.OK
				}
			}
		})
	}
	wg.Wait()
	return tally(ok, owner, len(perCustomer))
}

// tally counts customers whose every op succeeded.
func tally(ok []bool, owner []int, customers int) Measure {
	bad := make([]bool, customers)
	m := Measure{Ops: len(ok)}
	for i, good := range ok {
		if !good {
			m.Failed++
			bad[owner[i]] = true
		}
	}
	for _, b := range bad {
		if !b {
			m.Customers++
		}
	}
	return m
}

type nopJournal struct{}

func (nopJournal) Note(context.Context, partner.Op, string) error { return nil }

// naive is the obvious first program: one goroutine maps a customer, sends
// each op on its own and writes one ledger row per op with its own
// INSERT, autocommitted, on one connection.
func naive(ctx context.Context, p partner.Provider, key []byte, cs []*model.Customer, conn *pgx.Conn, runID int64) Measure {
	var m Measure
	j := sqlJournal{conn: conn, runID: runID, provider: p.Name()}
	for _, c := range cs {
		ops, _ := p.Map(c)
		if len(ops) == 0 {
			continue
		}
		good := true
		for _, it := range ops {
			op := partner.NewOp(it)
			m.Ops++
			if err := planCreate(p.Name(), key, &op); err != nil {
				m.Error = err.Error()
				return m
			}
			start := time.Now()
			r := p.Send(ctx, []partner.Op{op}, j)[0]
			if r.Outcome != partner.OK {
				m.Failed++
				good = false
			}
			if _, err := conn.Exec(ctx, `INSERT INTO ledger (run_id, provider, entity_key, customer_id, operation, idempotency_key,
				content_hash, remote_id, request_id, http_status, outcome, attempts, latency_ms)
				VALUES ($1, $2, $3, $4, $5, $6, $7, nullif($8, ''), nullif($9, ''), $10, $11, $12, $13)`,
				runID, p.Name(), op.EntityKey.String(), op.CustomerID, string(op.Kind), op.IdemKey, op.Hash, r.RemoteID, r.RequestID,
				r.HTTPStatus, string(r.Outcome), r.Attempts, time.Since(start).Milliseconds()); err != nil {
				m.Error = fmt.Sprintf("bench: naive ledger insert: %v", err)
				return m
			}
		}
		if good {
			m.Customers++
		}
	}
	return m
}

type sqlJournal struct {
	conn     *pgx.Conn
	runID    int64
	provider string
}

func (j sqlJournal) Note(ctx context.Context, op partner.Op, detail string) error {
	_, err := j.conn.Exec(ctx, `INSERT INTO ledger (run_id, provider, entity_key, customer_id, operation, outcome, intent_detail)
		VALUES ($1, $2, $3, $4, 'intent', 'pending', $5)`, j.runID, j.provider, op.EntityKey, op.CustomerID, detail)
	return err
}

// etlRun runs `bin run` to completion as a child process and reads what
// it did from its ledger database. At deadline (if not zero) the run is
// sent SIGTERM, as cron's timeout would, and the result is marked Cut.
func etlRun(ctx context.Context, bin, cfgPath string, env []string, dbURL, provider string, deadline time.Time) RunMeasure {
	var rm RunMeasure
	env = append(append(childEnv(), env...), "BENCH_DATABASE_URL="+dbURL)
	stderr := &limitedBuffer{n: 4096}
	runCtx := ctx
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	u, err := runChild(runCtx, []string{bin, "run", "--config", cfgPath, "--providers", provider, "--progress", "none", "-q"}, env, stderr)
	if err != nil {
		rm.Error = err.Error()
		return rm
	}
	rm.Seconds, rm.ExitCode, rm.CPU.ETL = u.Wall, u.Exit, u.CPU
	rm.MaxRSSMiB = float64(u.MaxRSSKiB) / 1024
	rm.Cut = ctx.Err() == nil && runCtx.Err() != nil
	if rm.ExitCode != 0 && !rm.Cut {
		rm.Error = fmt.Sprintf("etl run exited %d: %s", rm.ExitCode, tail(stderr.String(), 600))
	}
	ctx = context.WithoutCancel(ctx)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		rm.Error = err.Error()
		return rm
	}
	defer conn.Close(ctx)
	// The database is this run's alone (the nightly rerun reads the
	// difference), so the table's counter is the run's.
	_ = conn.QueryRow(ctx, `SELECT coalesce(seq_tup_read, 0) FROM pg_stat_user_tables WHERE relname = 'sync_state'`).Scan(&rm.SyncStateSeqRows)
	// Customers delivered so far (after a rerun too): distinct, since a
	// partner may hold several entities per customer. Counted through the
	// index, so the count itself does not show as sequential reads in the
	// next measurement on this database.
	_, _ = conn.Exec(ctx, `SET enable_seqscan = off`)
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT customer_id) FROM sync_state WHERE provider = $1 AND active`, provider).Scan(&rm.Customers); err != nil {
		rm.Error = err.Error()
	}
	var counts []byte
	if err := conn.QueryRow(ctx, `SELECT counts FROM runs ORDER BY id DESC LIMIT 1`).Scan(&counts); err == nil {
		var c struct {
			Customers int   `json:"customers"`
			Calls     int64 `json:"calls"`
			Partners  map[string]struct {
				OK, Rejected, Failed, Uncertain int64
				NotSent                         int64 `json:"not_sent"`
				NoUpdateAPI                     int64 `json:"not_sent_no_update_api"`
			} `json:"partners"`
		}
		if json.Unmarshal(counts, &c) == nil {
			rm.Read, rm.Calls = c.Customers, c.Calls
			pc := c.Partners[provider]
			rm.Ops = int(pc.OK + pc.NoUpdateAPI + pc.Rejected + pc.Failed + pc.Uncertain + pc.NotSent)
			rm.Failed = int(pc.Rejected + pc.Failed + pc.Uncertain + pc.NotSent)
		}
	}
	if rm.Seconds > 0 {
		rm.PerSec = float64(rm.Customers) / rm.Seconds
	}
	return rm
}

// childEnv is this environment without ETL_* variables, which would
// override the bench's config (base URLs, ledger URL, enabled partners).
func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETL_") && !strings.HasPrefix(kv, "DATABASE_URL=") {
			out = append(out, kv)
		}
	}
	return out
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
