// Package load delivers planned operations to partners: bounded concurrent
// workers per partner, intents and outcomes written to the ledger, and
// stop-on-fatal. Partners plug in through the Provider interface.
package load

import (
	"context"

	"github.com/northwind-data/etl/internal/httpx"

	"github.com/northwind-data/etl/internal/model"
)

// Kind is what an operation does at the partner.
type Kind string

const (
	Create     Kind = "create"
	Update     Kind = "update"
	Deactivate Kind = "deactivate"
)

// Outcome is the final state of one operation, as written to the ledger.
type Outcome string

const (
	OK        Outcome = "ok"        // the partner has it
	Rejected  Outcome = "rejected"  // the partner refused the content; do not retry
	Failed    Outcome = "failed"    // did not happen (outage, retries exhausted, breaker open); the rerun sends it
	Uncertain Outcome = "uncertain" // sent, answer lost: the partner may or may not have it; the rerun resolves it
	Pending   Outcome = "pending"   // intent written, call not finished (a crash leaves this)
)

// Op is one entity to deliver to one partner. Map fills EntityKey,
// CustomerID, Origin and Payload; the planner fills Kind, Hash, IdemKey and
// RemoteID from sync_state.
type Op struct {
	EntityKey  string // stable key at this partner, e.g. "customer/C1001" or "card/C1001/K1"
	CustomerID string
	Origin     model.Origin

	// Payload is the partner's request body (its own wire type). It may hold
	// a PAN: it is hashed under a key, sent, and never logged or stored.
	Payload any

	Kind Kind
	Hash string // keyed HMAC of the payload: the content identity
	// Body is the payload's JSON exactly as the engine hashed it, set with
	// Hash when the payload is not Hashable (so the hashed bytes are the
	// wire encoding): a client may send it instead of encoding the payload
	// a second time. Nil otherwise; whoever changes Payload clears it.
	Body     []byte
	IdemKey  string // deterministic: a create's is CreateKey (entity and refusal count), others' HMAC(partner, kind, entity key, hash)
	RemoteID string // the partner's id for the entity, known after the first delivery
	Intent   string // detail saved with a previous run's unfinished intent (Resolver input)
}

// CodeNeedsOperator is the error code of an uncertain outcome that no
// rerun can settle on its own: the partner's effect cannot be looked up
// and the detail that would let a retry prove it (ClubReady's single-use
// token) is gone. The run tells the operator to look at the partner and
// settle the intent with `etl intents settle`.
const CodeNeedsOperator = "needs_operator"

// Child is a sub-entity the partner confirmed holding (or removing) while
// it handled an operation, e.g. the paymentMethodId Q2 gives each card of
// a client. The engine records children whatever the parent's outcome:
// each is a fact the partner answered, and a parent that failed for
// another reason (say, a refused delete) must not lose them.
type Child struct {
	EntityKey string
	RemoteID  string
	// Removed: the partner no longer holds it (a card deleted at Q2); its
	// sync_state row is switched off.
	Removed bool
	// RequestID of the call that confirmed it, when not the parent's.
	RequestID string
}

// Result is what happened to one Op.
type Result struct {
	EntityKey  string
	Outcome    Outcome
	RemoteID   string // the partner's object id (Synctera id, Q2 clientId, ...)
	RequestID  string // the partner's request id (data feed requestId), if any
	HTTPStatus int
	Attempts   int
	// Err explains a non-OK outcome. Use *httpx.Error so the engine can tell
	// retryable, rejected and fatal apart. Never include card data.
	Err      error
	Children []Child
}

// Journal lets a partner persist a detail durably before a call whose
// effect cannot be looked up afterwards (ClubReady's single-use token), so
// that a crash leaves something the rerun can resolve.
type Journal interface {
	Note(ctx context.Context, op Op, detail string) error
}

// Provider is everything the engine needs from a partner package.
type Provider interface {
	Name() string
	// MaxBatch is how many ops one Send may carry: 1 for per-record APIs,
	// 50 for the data feed.
	MaxBatch() int
	// Map turns a validated customer into this partner's operations. A
	// record the partner cannot take (say, a phone that is not E.164 for
	// Synctera) comes back as a reject for this partner only.
	Map(c *model.Customer) ([]Op, []model.Reject)
	// Send delivers one batch and returns exactly one Result per op, in
	// order. It retries what is safe to retry and returns when done or when
	// ctx is cancelled.
	Send(ctx context.Context, ops []Op, j Journal) []Result
}

// Deactivator is implemented by partners that can switch off an entity
// that vanished from the source. Op.Payload is nil; Op.RemoteID is set.
type Deactivator interface {
	Deactivate(ctx context.Context, op Op) Result
}

// Resolver is implemented by partners whose calls are not idempotent, so
// that an op left pending or uncertain by an earlier run is settled from
// the journal detail (Op.Intent) instead of being sent blind.
type Resolver interface {
	Resolve(ctx context.Context, op Op, j Journal) Result
}

// Finder is implemented by Resolvers whose partner can look an entity up
// by its key alone, without the record's content. The engine calls it,
// from its deactivation pass only (one goroutine), for an open intent
// whose customer vanished from the source: no rerun will plan that
// customer, so the call the intent journaled is settled from what the
// partner holds. found with remoteID: the partner has it (the engine
// records it and switches it off as vanished); !found with a nil error:
// the partner provably does not; an error: it cannot tell, and the intent
// waits for an operator.
type Finder interface {
	Find(ctx context.Context, op Op) (remoteID string, found bool, err error)
}

// Hashable lets a payload choose what its content hash covers: a CVV must
// not be stored in any form, not even inside a keyed hash, so payloads
// carrying one return a copy without it.
type Hashable interface {
	HashContent() any
}

// FailureResult is the Result for an op whose call ended in err: the
// *httpx.Error's kind decides the outcome (rejected, uncertain, or failed:
// retryable and unavailable calls did not happen, and a fatal one also
// stops the partner). Attempts is the larger of attempts and what the
// error counted (httpx.AttemptsOf).
func FailureResult(op Op, err error, attempts int) Result {
	r := Result{EntityKey: op.EntityKey, Err: err, HTTPStatus: httpx.StatusOf(err), Attempts: max(attempts, httpx.AttemptsOf(err))}
	switch httpx.KindOf(err) {
	case httpx.Rejected:
		r.Outcome = Rejected
	case httpx.Uncertain:
		r.Outcome = Uncertain
	default:
		r.Outcome = Failed
	}
	return r
}
