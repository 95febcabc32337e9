package main

import (
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/partner"
)

// An intent that a run recorded needs_operator is listed so for any
// partner, not only one whose journal detail can say (ClubReady).
func TestIntentNeedingAnOperatorIsShownSoForAnyPartner(t *testing.T) {
	for _, p := range []string{"synctera", "q2open", "tokenization", "clubready"} {
		v := viewIntent(ledger.OpenIntent{Provider: p, EntityKey: "customer/C1", CustomerID: "C1", LastOutcome: "uncertain",
			LastCode: partner.CodeNeedsOperator}, time.Now())
		if v.State != stateNeedsOperator || v.EntityKey != "customer/C1" || v.CustomerID != "C1" {
			t.Errorf("%s: %+v: want state %s with entity and customer", p, v, stateNeedsOperator)
		}
	}
}
