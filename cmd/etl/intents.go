package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/load"
	"github.com/northwind-data/etl/internal/partner"
	"github.com/northwind-data/etl/internal/partners"
)

const intentsAbout = `Intents are written to the ledger before a partner call whose effect cannot be looked up
afterwards (ClubReady: the single-use ProfileToken of each card import). A rerun settles an open
intent by itself while its token lives (5 minutes); past that, or when ClubReady cannot say,
the card is uncertain and 'etl run' exits 5 until an operator settles it:

  etl intents list       open intents: entity key, customer, member, last four, age, run, state
  etl intents settle     record what the operator found at the partner:
                           --as delivered  the partner has it: recorded delivered, never resent
                           --as resend     the partner does not have it: the next run sends it
                                           afresh (ClubReady: a new token and an import)
  etl intents settled    the decisions recorded so far (who, why, when)

Look each card up at the partner first (ClubReady: the member's payment profiles, by the last
four): settling a card ClubReady has as resend imports it a second time.

Every journaling partner (ClubReady, Q2, Synctera, tokenization) also leaves an intent when a
run dies mid-call and the customer then leaves the source: no rerun plans that customer again.
A run with deactivation on settles it when the partner can look the record up by key alone
(tokenization, by client name); otherwise (Synctera) it is needs-operator: find the record at
the partner (Synctera: the customer whose metadata.etl_entity_key is the entity key), then
  etl intents settle --provider synctera --entity KEY --as delivered --remote-id ID ...
and the next run switches it off as vanished; --as resend closes it when the partner has none.`

func cmdIntents(ctx context.Context, args []string) int {
	fs := newFlags("intents", "intents list|settle|settled [flags]", intentsAbout,
		"etl intents list", "etl intents settle --entity card/C0000042/K1 --as delivered --by ana.diaz --reason 'profile 81234 ending 4242 on member 100123'",
		"etl intents settle --entity card/C0000043/K1 --as resend --by ana.diaz --reason 'no profile ending 1881 on member 100124'")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if code, ok := parse(fs, args, -1); !ok {
			return code
		}
		fs.Usage()
		return exitUsage
	}
	switch args[0] {
	case "list":
		return intentsList(ctx, args[1:])
	case "settle":
		return intentsSettle(ctx, args[1:])
	case "settled":
		return intentsSettled(ctx, args[1:])
	}
	fmt.Fprintf(fs.Output(), "etl intents: unknown subcommand %q\n\n", args[0])
	fs.Usage()
	return exitUsage
}

// intentView is one open intent as listed.
type intentView struct {
	Provider   string    `json:"provider"`
	EntityKey  string    `json:"entity_key"`
	CustomerID string    `json:"customer_id"`
	Member     string    `json:"member,omitempty"`
	Last4      string    `json:"last4,omitempty"`
	AgeSeconds int64     `json:"age_seconds"`
	Created    time.Time `json:"created_at"`
	RunID      int64     `json:"run_id"`
	RunStatus  string    `json:"run_status"`
	// State: needs-operator (only `etl intents settle` ends it), retrying
	// (the next run retries the journaled token until Expires), or open
	// (a partner whose journal cannot say).
	State       string     `json:"state"`
	Expires     *time.Time `json:"expires,omitempty"`
	LastOutcome string     `json:"last_outcome,omitempty"`
	LastCode    string     `json:"last_code,omitempty"`
}

const (
	stateNeedsOperator = "needs-operator"
	stateRetrying      = "retrying"
	stateOpen          = "open"
)

func viewIntent(o ledger.OpenIntent, now time.Time) intentView {
	v := intentView{Provider: o.Provider, EntityKey: o.EntityKey, CustomerID: o.CustomerID, AgeSeconds: int64(o.Age / time.Second),
		Created: o.Created, RunID: o.RunID, RunStatus: o.RunStatus, LastOutcome: o.LastOutcome, LastCode: o.LastCode, State: stateOpen}
	if o.LastCode == partner.CodeNeedsOperator {
		v.State = stateNeedsOperator
	}
	sp, ok := partners.Get(o.Provider)
	if !ok || sp.Intent == nil {
		return v
	}
	info := sp.Intent(o.Detail)
	v.Member, v.Last4 = info.Member, info.Last4
	switch {
	case o.LastCode == partner.CodeNeedsOperator || info.Expires.IsZero() || !now.Before(info.Expires):
		v.State = stateNeedsOperator
	default:
		v.State = stateRetrying
	}
	if !info.Expires.IsZero() {
		exp := info.Expires.UTC()
		v.Expires = &exp
	}
	return v
}

func intentsList(ctx context.Context, args []string) int {
	fs := newFlags("intents list", "intents list [--provider P] [--json]",
		"List open intents, oldest first: entity key, customer, member and last four (never the card number),\nage, the run that wrote it, and its state:\n"+
			"  needs-operator  no rerun can settle it: look the card up at the partner, then etl intents settle\n"+
			"  retrying        the next run retries the journaled token (until the time shown); run etl run\n"+
			"Exits 0 when none is open, 5 when some need an operator, 3 when all are retrying.",
		"etl intents list", "etl intents list --provider clubready --json")
	db := dbFlag(fs)
	provider := fs.String("provider", "", "only this partner's intents (default: every partner)")
	asJSON := fs.Bool("json", false, "JSON output, one array")
	if code, ok := parse(fs, args, 0); !ok {
		return code
	}
	store, err := openLedger(ctx, *db)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	defer store.Close()
	if err := store.EnsureSchema(ctx); err != nil {
		return fail(exitFatal, "%v", err)
	}
	open, err := store.ListOpenIntents(ctx, *provider)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	now := time.Now()
	views := make([]intentView, len(open))
	operator := 0
	for i, o := range open {
		views[i] = viewIntent(o, now)
		if views[i].State != stateRetrying {
			operator++
		}
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(views)
	} else if len(views) == 0 {
		fmt.Println("no open intents")
	} else {
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTNER\tENTITY\tCUSTOMER\tMEMBER\tLAST4\tAGE\tRUN\tSTATE\tLAST CALL")
		for _, v := range views {
			state := v.State
			if v.State == stateRetrying && v.Expires != nil {
				state += " until " + v.Expires.Local().Format("15:04:05")
			}
			last := "-"
			if v.LastOutcome != "" {
				last = strings.TrimSuffix(v.LastOutcome+" "+v.LastCode, " ")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d (%s)\t%s\t%s\n", v.Provider, v.EntityKey, v.CustomerID, dash(v.Member), dash(v.Last4),
				(time.Duration(v.AgeSeconds) * time.Second).String(), v.RunID, v.RunStatus, state, last)
		}
		tw.Flush()
		fmt.Printf("\n%d open, %d need an operator. For each: find the card at the partner (ClubReady: the member's payment\n"+
			"profiles, by the last four), then:\n  etl intents settle --entity KEY --as delivered|resend --by NAME --reason TEXT\n", len(views), operator)
	}
	switch {
	case operator > 0:
		return exitNeedsOperator
	case len(views) > 0:
		return exitPartial
	}
	return exitOK
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func intentsSettle(ctx context.Context, args []string) int {
	fs := newFlags("intents settle", "intents settle --entity KEY --as delivered|resend --by NAME --reason TEXT [flags]",
		"Settle one entity's open intent with what you found at the partner, and record who and why:\n"+
			"  --as delivered  the partner has it: sync_state marks it delivered, and it is never resent\n"+
			"  --as resend     the partner does not have it: the next run sends it afresh\n"+
			"                  (ClubReady: a new ProfileToken and an import)\n"+
			"Refused while a run of the partner is marked running, and while the intent is still retrying\n"+
			"(its token lives: let the next run settle it), unless --force.",
		"etl intents settle --entity card/C0000042/K1 --as delivered --by ana.diaz --reason 'profile 81234 ending 4242 on member 100123'",
		"etl intents settle --entity card/C0000043/K1 --as resend --by ana.diaz --reason 'no profile ending 1881 on member 100124'")
	db := dbFlag(fs)
	provider := fs.String("provider", "", "the partner (default: the one partner with an open intent for --entity)")
	entity := fs.String("entity", "", "entity key, as etl intents list shows it (required)")
	as := fs.String("as", "", "delivered or resend (required)")
	by := fs.String("by", "", "who decided: your name (required; recorded)")
	reason := fs.String("reason", "", "why: what you saw at the partner (required; recorded)")
	remote := fs.String("remote-id", "", "with --as delivered: the partner's id you found (ClubReady PaymentProfileId)")
	force := fs.Bool("force", false, "settle even while a run is marked running or the intent is still retrying")
	if code, ok := parse(fs, args, 0); !ok {
		return code
	}
	var missing []string
	for name, v := range map[string]string{"--entity": *entity, "--as": *as, "--by": *by, "--reason": *reason} {
		if strings.TrimSpace(v) == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 || (*as != ledger.SettledDelivered && *as != ledger.SettledResend) {
		if len(missing) > 0 {
			fmt.Fprintf(fs.Output(), "etl intents settle: %s required\n\n", strings.Join(sortedStrings(missing), ", "))
		} else {
			fmt.Fprintf(fs.Output(), "etl intents settle: --as %q: want delivered or resend\n\n", *as)
		}
		fs.Usage()
		return exitUsage
	}
	store, err := openLedger(ctx, *db)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	defer store.Close()
	if err := store.EnsureSchema(ctx); err != nil {
		return fail(exitFatal, "%v", err)
	}
	if *provider == "" {
		p, err := providerOfIntent(ctx, store, *entity)
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		*provider = p
	}
	if !*force {
		open, err := store.ListOpenIntents(ctx, *provider)
		if err != nil {
			return fail(exitFatal, "%v", err)
		}
		for _, o := range open {
			if v := viewIntent(o, time.Now()); o.EntityKey == *entity && v.State == stateRetrying {
				return fail(exitUsage, "%s %s is still retrying: its token lives until %s and the next run retries it; run `etl run` instead (or --force)",
					*provider, *entity, v.Expires.Local().Format(time.RFC3339))
			}
		}
	}
	s, err := store.SettleIntent(ctx, ledger.Settlement{Provider: *provider, EntityKey: *entity, As: *as, By: *by, Reason: *reason,
		RemoteID: *remote, Force: *force})
	var re *ledger.RunningError
	switch {
	case errors.Is(err, ledger.ErrNoOpenIntent):
		return fail(exitUsage, "%v: see `etl intents list`", err)
	case errors.As(err, &re):
		return fail(exitLocked, "not settled: %v", err)
	case err != nil:
		return fail(exitFatal, "%v", err)
	}
	next := "the next run records it unchanged and sends nothing"
	if *as == ledger.SettledResend {
		next = "the next run sends it afresh"
	}
	fmt.Printf("settled %s %s (customer %s) as %s by %s: %d intent row(s) closed, settlement %d; %s\n",
		*provider, *entity, s.CustomerID, *as, strings.TrimSpace(*by), s.Intents, s.ID, next)
	return exitOK
}

// providerOfIntent is the one partner with an open intent for entity.
func providerOfIntent(ctx context.Context, store *ledger.Store, entity string) (string, error) {
	open, err := store.ListOpenIntents(ctx, "")
	if err != nil {
		return "", err
	}
	var found []string
	for _, o := range open {
		if o.EntityKey == entity {
			found = append(found, o.Provider)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w for %s: see `etl intents list`", ledger.ErrNoOpenIntent, entity)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s has open intents at %s: pass --provider", entity, strings.Join(found, ", "))
}

func intentsSettled(ctx context.Context, args []string) int {
	fs := newFlags("intents settled", "intents settled [--provider P] [-n N] [--json]", "List the recorded operator settlements, newest first: who, why, when, what.",
		"etl intents settled", "etl intents settled -n 100 --json")
	db := dbFlag(fs)
	provider := fs.String("provider", "", "only this partner's (default: every partner)")
	limit := fs.Int("n", 50, "how many")
	asJSON := fs.Bool("json", false, "JSON output")
	if code, ok := parse(fs, args, 0); !ok {
		return code
	}
	store, err := openLedger(ctx, *db)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	defer store.Close()
	if err := store.EnsureSchema(ctx); err != nil {
		return fail(exitFatal, "%v", err)
	}
	rec, err := store.Settlements(ctx, *provider, *limit)
	if err != nil {
		return fail(exitFatal, "%v", err)
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(rec)
		return exitOK
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tPARTNER\tENTITY\tCUSTOMER\tAS\tBY\tREASON")
	for _, x := range rec {
		as := x.As
		if x.Forced {
			as += " (forced)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.At.Format("2006-01-02 15:04:05"), x.Provider, x.EntityKey, x.CustomerID, as, x.By, x.Reason)
	}
	tw.Flush()
	return exitOK
}

func sortedStrings(s []string) []string {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return sortedKeys(m)
}

// needsOperator is how many records of the run only an operator can
// settle, per partner.
func needsOperator(c map[string]*load.Counts) map[string]int64 {
	out := map[string]int64{}
	for n, p := range c {
		if k := p.ErrorCodes[partner.CodeNeedsOperator]; k > 0 {
			out[n] = k
		}
	}
	return out
}
