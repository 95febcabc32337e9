package main

import (
	"context"
	"encoding/json"

	"github.com/northwind-data/etl/internal/extract"
	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/partner"
)

// runCounts is stored in runs.counts and printed. Its JSON keys (and
// those of fileCounts and load.Counts) are the ones docs/operations.md
// lists under "Report JSON".
type runCounts struct {
	Files     []fileCounts `json:"files"`
	Customers int          `json:"customers"`
	Compared  int64        `json:"compared"` // customers compared in full; the rest were skipped by fingerprint
	// Rejects are input rows refused by validation (every partner);
	// MapRejects are records a partner's mapping refused (summed over
	// partners). Together they are the rows `etl rejects` writes.
	Rejects             int                     `json:"rejects"`
	MapRejects          int64                   `json:"map_rejects"`
	Partners            map[string]*load.Counts `json:"partners"`
	Stopped             map[string]string       `json:"stopped,omitempty"`
	DeactivationRefused map[string]string       `json:"deactivation_refused,omitempty"`
	Seconds             float64                 `json:"seconds"`
	Calls               int64                   `json:"calls"`
}

// fileCounts is extract.FileStats with the report's JSON keys.
type fileCounts struct {
	File     string `json:"file"`
	Rows     int    `json:"rows"`
	Accepted int    `json:"accepted"`
	Rejected int    `json:"rejected"`
}

func filesOf(fs []extract.FileStats) []fileCounts {
	out := make([]fileCounts, len(fs))
	for i, f := range fs {
		out[i] = fileCounts{f.File, f.Rows, f.Accepted, f.Rejected}
	}
	return out
}

// allRejects is what `etl rejects` writes for the run.
func (c *runCounts) allRejects() int64 {
	if c.MapRejects > 0 {
		return int64(c.Rejects) + c.MapRejects
	}
	// Counts written before map_rejects existed.
	n := int64(c.Rejects)
	for _, p := range c.Partners {
		n += p.MapRejected
	}
	return n
}

// planned is every operation the run planned for any partner.
func (c *runCounts) planned() int64 {
	var n int64
	for _, p := range c.Partners {
		n += p.Create + p.Update + p.Deactivate + p.Resolve
	}
	return n
}

// runView is a runs row as status and report show it: counts decoded (one
// set of JSON keys whatever release wrote them), and counted from the
// ledger for a run that never recorded final counts.
type runView struct {
	ledger.Run
	Counts runCounts `json:"counts"`
	// CountsFrom is "run" (the counts the run recorded at its end) or
	// "ledger" (counted from its ledger rows and rejects: it crashed or is
	// still running).
	CountsFrom string `json:"counts_from"`
	DryRun     bool   `json:"dry_run"`
}

func finalCounts(r ledger.Run) bool {
	if r.Status == "running" || r.Status == "crashed" {
		return false
	}
	s := string(r.Counts)
	return s != "" && s != "null" && s != "{}"
}

// viewRuns decodes each run's counts, or counts its ledger rows.
func viewRuns(ctx context.Context, store *ledger.Store, runs []ledger.Run) ([]runView, error) {
	out := make([]runView, len(runs))
	var need []int64
	for i, r := range runs {
		out[i] = runView{Run: r, CountsFrom: "run", DryRun: r.Status == ledger.StatusDryRun}
		if finalCounts(r) && json.Unmarshal(r.Counts, &out[i].Counts) == nil {
			continue
		}
		out[i].CountsFrom = "ledger"
		need = append(need, r.ID)
	}
	if len(need) == 0 {
		return out, nil
	}
	tallies, err := store.TallyRuns(ctx, need, partner.RequestNotSentNoUpdateAPI)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if t := tallies[out[i].ID]; t != nil && out[i].CountsFrom == "ledger" {
			out[i].Counts = countsFromTally(t)
		}
	}
	return out, nil
}

// countsFromTally turns ledger rows into counts: operations by ledger
// operation, outcomes by ledger outcome; calls are the rows for which
// something was sent (a batch partner's call holds many rows).
func countsFromTally(t *ledger.Tally) runCounts {
	c := runCounts{Customers: int(t.Customers), Rejects: int(t.Rejects), MapRejects: t.MappingRejectsAll, Partners: map[string]*load.Counts{}}
	get := func(p string) *load.Counts {
		if c.Partners[p] == nil {
			c.Partners[p] = &load.Counts{}
		}
		return c.Partners[p]
	}
	for p, rows := range t.Rows {
		pc := get(p)
		pc.Attempts = t.Attempts[p]
		for k, n := range rows {
			switch k[0] {
			case "create":
				pc.Create += n
			case "update":
				pc.Update += n
			case "deactivate":
				pc.Deactivate += n
			}
			switch k[1] {
			case "ok":
				pc.OK += n
			case "rejected":
				pc.Rejected += n
			case "failed":
				pc.Failed += n
			case "uncertain":
				pc.Uncertain += n
			case partner.RequestNotSentNoUpdateAPI:
				pc.NoUpdateAPI += n
			}
			if k[1] != partner.RequestNotSentNoUpdateAPI {
				pc.Calls += n
				c.Calls += n
			}
		}
	}
	for p, n := range t.MappingRejects {
		get(p).MapRejected = n
	}
	return c
}
