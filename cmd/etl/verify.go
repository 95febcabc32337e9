package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/partners"
	"github.com/northwind-data/etl/internal/verify"
)

func cmdVerify(ctx context.Context, args []string) int {
	var listers []string
	for _, sp := range partners.All() {
		if sp.List != nil {
			listers = append(listers, sp.Name)
		}
	}
	fs := newFlags("verify", "verify --provider P [--config FILE] [--out FILE]", "Walk the partner's list API and compare it with the ledger: missing at the partner, extra at the\npartner, state that differs. Exit 3 when anything differs. Partners with a list API: "+strings.Join(listers, ", ")+".",
		"etl verify --config etl.yaml --provider synctera --out drift.csv")
	cfgPath := fs.String("config", "etl.yaml", "config file")
	provider := fs.String("provider", "", "partner to reconcile (required)")
	out := fs.String("out", "", "write the findings as CSV here (default: verify-<partner>.csv)")
	if code, ok := parse(fs, args, 0); !ok {
		return code
	}
	if *provider == "" {
		fmt.Fprint(fs.Output(), "etl verify: --provider is required\n\n")
		fs.Usage()
		return exitUsage
	}
	sp, ok := partners.Get(*provider)
	if !ok {
		return fail(exitUsage, "--provider %q: unknown partner", *provider)
	}
	if sp.List == nil {
		return fail(exitUsage, "%s: the partner's documented API has no list call to reconcile against", *provider)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if es := cfg.Validate(partners.Schemas()); len(es) > 0 {
		return fail(exitUsage, "config: %v", es)
	}
	provs, err := partners.Build(cfg, []string{*provider}, nil)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	dbURL, _ := cfg.Ledger.URL.Resolve()
	store, err := openLedger(ctx, dbURL)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	defer store.Close()
	res, err := verify.Run(ctx, store, *provider, sp.List(provs[0]))
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	path := *out
	if path == "" {
		path = "verify-" + *provider + ".csv"
	}
	f, err := os.Create(path)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	if err := res.WriteCSV(f); err != nil {
		f.Close()
		return fail(exitFatal, "%v", err)
	}
	f.Close()
	c := res.Counts()
	fmt.Printf("verify %s: ledger %d, partner %d, matched %d; missing at partner %d, extra at partner %d, state differs %d; findings in %s\n",
		*provider, res.Ledger, res.Partner, res.Matched, c["missing_at_partner"], c["extra_at_partner"], c["state_differs"], path)
	if len(res.Findings) > 0 {
		return exitPartial
	}
	return exitOK
}
