// Package verify reconciles the ledger's checkpoint with what a partner
// actually holds, by walking the partner's list API: records missing at
// the partner, records the partner has that we never sent (or lost track
// of), and records whose state differs.
package verify

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"

	"github.com/northwind-data/etl/internal/ledger"
)

// Remote is one record as the partner lists it.
type Remote struct {
	ID     string            // the partner's id (matches sync_state.remote_id)
	Key    string            // our entity key when the partner echoes it (e.g. a name we chose); may be empty
	Active bool              // false when the partner shows the record switched off
	Fields map[string]string // a few comparable fields, for the report
}

// Lister walks every record the partner holds for us.
type Lister func(ctx context.Context, fn func(Remote) error) error

// Finding is one difference.
type Finding struct {
	Kind      string // missing_at_partner, extra_at_partner, state_differs
	EntityKey string
	RemoteID  string
	Detail    string
}

// Result of one verification.
type Result struct {
	Provider string
	Ledger   int // active + inactive entities in sync_state with a remote id
	Partner  int // records the partner listed
	Matched  int
	Findings []Finding
}

// Run compares sync_state for provider with list.
func Run(ctx context.Context, store *ledger.Store, provider string, list Lister) (*Result, error) {
	res := &Result{Provider: provider}
	byID := map[string]ledger.State{}
	err := store.SyncState(ctx, provider, func(st ledger.State) error {
		if st.RemoteID != "" {
			byID[st.RemoteID] = st
			res.Ledger++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	err = list(ctx, func(r Remote) error {
		res.Partner++
		st, ok := byID[r.ID]
		if !ok {
			res.Findings = append(res.Findings, Finding{Kind: "extra_at_partner", EntityKey: r.Key, RemoteID: r.ID, Detail: "the partner holds a record the ledger does not know"})
			return nil
		}
		seen[r.ID] = true
		// Only a record we switched off and the partner still shows
		// active is drift: a customer the bank itself marks inactive is
		// delivered that way and is not.
		if !st.Active && r.Active {
			res.Findings = append(res.Findings, Finding{Kind: "state_differs", EntityKey: st.EntityKey, RemoteID: r.ID,
				Detail: fmt.Sprintf("ledger active=%v, partner active=%v", st.Active, r.Active)})
			return nil
		}
		res.Matched++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify %s: list partner: %w", provider, err)
	}
	var missing []Finding
	for id, st := range byID {
		if !seen[id] && st.Active {
			missing = append(missing, Finding{Kind: "missing_at_partner", EntityKey: st.EntityKey, RemoteID: id, Detail: "delivered according to the ledger, absent at the partner"})
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i].EntityKey < missing[j].EntityKey })
	res.Findings = append(res.Findings, missing...)
	return res, nil
}

// Counts by finding kind.
func (r *Result) Counts() map[string]int {
	out := map[string]int{}
	for _, f := range r.Findings {
		out[f.Kind]++
	}
	return out
}

// WriteCSV writes the findings.
func (r *Result) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"provider", "finding", "entity_key", "remote_id", "detail"})
	for _, f := range r.Findings {
		_ = cw.Write([]string{r.Provider, f.Kind, f.EntityKey, f.RemoteID, f.Detail})
	}
	cw.Flush()
	return cw.Error()
}
