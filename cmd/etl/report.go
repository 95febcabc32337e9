package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/redact"
)

// Report is everything `etl report` shows, in every format.
// Its JSON keys are listed in docs/operations.md, "Report JSON".
type Report struct {
	Runs      []runView             `json:"runs"`
	Outcomes  []ledger.OutcomeCount `json:"outcomes"`
	Latencies []ledger.Latency      `json:"latencies"`
	Errors    []ledger.ErrorCount   `json:"top_errors"`
	Rejects   []ledger.ErrorCount   `json:"rejects"`
}

func cmdReport(ctx context.Context, args []string) int {
	fs := newFlags("report", "report RUN [--format text|json|html]", "Per partner: created, updated, unchanged, deactivated, rejected, failed, uncertain; top error\nreasons; rejects by reason; latencies. RUN is a run id or a run group (aggregates every shard).",
		"etl report 42", "etl report 42 --format html > run42.html", "etl report migration-2026-11 --format json")
	db := dbFlag(fs)
	format := fs.String("format", "text", "text, json or html")
	if code, ok := parse(fs, args, 1); !ok {
		return code
	}
	store, err := openLedger(ctx, *db)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	defer store.Close()
	rep, err := buildReport(ctx, store, fs.Arg(0))
	if errors.Is(err, ledger.ErrNoRun) {
		return fail(exitUsage, "%v", err)
	}
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	case "html":
		if err := writeHTML(os.Stdout, rep); err != nil {
			return fail(exitFatal, "%v", err)
		}
	case "text":
		writeText(rep)
	default:
		return fail(exitUsage, "--format %q: use text, json or html", *format)
	}
	return exitOK
}

func buildReport(ctx context.Context, store *ledger.Store, ref string) (*Report, error) {
	runs, err := store.RunsOf(ctx, ref)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	if rep.Runs, err = viewRuns(ctx, store, runs); err != nil {
		return nil, err
	}
	if rep.Outcomes, err = store.ReportedOutcomes(ctx, ids(runs), partner.RequestNotSentNoUpdateAPI); err != nil {
		return nil, err
	}
	if rep.Latencies, err = store.Latencies(ctx, ids(runs), partner.RequestNotSentNoUpdateAPI); err != nil {
		return nil, err
	}
	if rep.Errors, err = store.TopErrors(ctx, ids(runs), 20); err != nil {
		return nil, err
	}
	if rep.Rejects, err = store.RejectCounts(ctx, ids(runs)); err != nil {
		return nil, err
	}
	// Stored messages are masked when written; mask again on the way out
	// for ledgers written by anything else.
	for _, es := range [][]ledger.ErrorCount{rep.Errors, rep.Rejects} {
		for i := range es {
			es[i].Message = redact.Text(es[i].Message)
		}
	}
	return rep, nil
}

func writeText(rep *Report) {
	for _, r := range rep.Runs {
		fin := "running"
		if r.Finished != nil {
			fin = r.Finished.Sub(r.Started).Round(1e6).String()
		}
		fmt.Printf("run %d (group %s, shard %d/%d): %s, %s, source %s\n", r.ID, r.Group, r.ShardIndex, r.ShardCount, r.Status, fin, r.Source)
		if r.DryRun {
			fmt.Printf("  DRY RUN: nothing was sent; the counts are what a real run would have done, the rejects are the dry run's\n")
		}
		if r.CountsFrom == "ledger" {
			fmt.Printf("  no final counts (the run did not finish): counted from its ledger rows\n")
		}
		c := r.Counts
		for _, n := range sortedKeys(c.Partners) {
			p := c.Partners[n]
			// A resolve settles a create an earlier run left uncertain or
			// pending: the ledger records it as a create.
			created := fmt.Sprint(p.Create + p.Resolve)
			if p.Resolve > 0 {
				created += fmt.Sprintf(" (%d resolved from an earlier run)", p.Resolve)
			}
			fmt.Printf("  %-13s created %s, updated %d, unchanged %d, deactivated %d, partner-rejected %d, map-rejected %d, failed %d, uncertain %d, not sent %d, not sent: no update API %d\n",
				n, created, p.Update, p.Unchanged, p.Deactivate, p.Rejected, p.MapRejected, p.Failed, p.Uncertain, p.NotSent, p.NoUpdateAPI)
		}
		if total := c.allRejects(); total > 0 {
			fmt.Printf("  rejects %d: %d input rows refused by validation + %d records refused by a partner's mapping (etl rejects %d)\n",
				total, c.Rejects, total-int64(c.Rejects), r.ID)
		}
	}
	fmt.Println("\nledger rows by partner, operation and outcome:")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PARTNER\tOPERATION\tOUTCOME\tCOUNT\tATTEMPTS\tAVG ms\tP95 ms")
	for _, o := range rep.Outcomes {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%.1f\t%.1f\n", o.Provider, o.Operation, o.Outcome, o.Count, o.Attempts, o.AvgMS, o.P95MS)
	}
	tw.Flush()
	if len(rep.Latencies) > 0 {
		fmt.Println("\nlatency by partner and operation (calls made):")
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  PARTNER\tOPERATION\tROWS\tAVG ms\tP95 ms")
		for _, l := range rep.Latencies {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%.1f\t%.1f\n", l.Provider, l.Operation, l.Count, l.AvgMS, l.P95MS)
		}
		tw.Flush()
	}
	if len(rep.Errors) > 0 {
		fmt.Println("\ntop error reasons:")
		for _, e := range rep.Errors {
			fmt.Printf("  %-13s %-24s %6d  e.g. %s\n", e.Provider, e.Code, e.Count, e.Message)
		}
	}
	if len(rep.Rejects) > 0 {
		fmt.Println("\nrejects by reason:")
		for _, e := range rep.Rejects {
			p := e.Provider
			if p == "" {
				p = "(all)"
			}
			fmt.Printf("  %-13s %-20s %6d  e.g. %s\n", p, e.Code, e.Count, e.Message)
		}
	}
}
