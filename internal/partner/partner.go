// Package partner is the contract between the delivery engine
// (internal/load) and the partner packages (internal/providers/...). It
// holds only types and small helpers, so that a partner package imports it
// and never the engine, the ledger or a database driver.
//
// The engine drives a partner through Provider:
//
//   - Map is called by the planner, from one or more planner goroutines at
//     once, once per validated customer. It returns Items: what the partner
//     would hold for that customer, without any knowledge of the ledger.
//   - The planner compares each Item with sync_state and wraps those that
//     changed into an Op: it adds the Kind, the content Hash, the
//     idempotency key, the partner's RemoteID and an unfinished intent.
//   - Send is called by the partner's workers, several at once (the
//     partner's configured concurrency), each with its own batch of at most
//     MaxBatch ops. It returns exactly one Result per op, in order. The ops
//     slice and the ops in it belong to Send for the duration of the call
//     only: the engine reads them again to record the results, so Send must
//     not keep or modify them after it returns.
//   - A call is done when its Result is returned: the engine records the
//     Result in the ledger and never calls again for that op in this run.
//     Send must return when ctx is cancelled, with Failed or Uncertain
//     results for what it did not finish.
package partner

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

// Item is what a partner's mapper makes of one customer: one entity the
// partner should hold, and the request body that makes it so. It knows
// nothing of the ledger; the planner turns it into an Op.
type Item struct {
	EntityKey  Key // stable key at this partner: CustomerKey or CardKey
	CustomerID string
	Origin     model.Origin

	// Payload is the partner's request body (its own wire type). It may
	// hold a PAN: it is hashed under a key, sent, and never logged or
	// stored. A payload carrying a CVV must be Hashable.
	Payload any
}

// Op is one entity to deliver to one partner: the mapper's Item and what
// the planner added from sync_state.
type Op struct {
	EntityKey  Key
	CustomerID string
	Origin     model.Origin
	Payload    any // the Item's payload; nil for a Deactivate

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

// Item is the part of the op that the mapper produced.
func (o Op) Item() Item {
	return Item{EntityKey: o.EntityKey, CustomerID: o.CustomerID, Origin: o.Origin, Payload: o.Payload}
}

// CodeNeedsOperator is the error code of an uncertain outcome that no
// rerun can settle on its own: the partner's effect cannot be looked up
// and the detail that would let a retry prove it (ClubReady's single-use
// token) is gone. The run tells the operator to look at the partner and
// settle the intent with `etl intents settle`.
const CodeNeedsOperator = "needs_operator"

// RequestNotSentNoUpdateAPI is the Result.RequestID (and ledger
// request_id) of an OK outcome for an update the partner has no API for:
// nothing was sent, and the engine counts it as not sent, not as ok.
const RequestNotSentNoUpdateAPI = "not-sent-no-update-api"

// Child is a sub-entity the partner confirmed holding (or removing) while
// it handled an operation, e.g. the paymentMethodId Q2 gives each card of
// a client. The engine records children whatever the parent's outcome:
// each is a fact the partner answered, and a parent that failed for
// another reason (say, a refused delete) must not lose them.
type Child struct {
	EntityKey Key
	RemoteID  string
	// Removed: the partner no longer holds it (a card deleted at Q2); its
	// sync_state row is switched off.
	Removed bool
	// RequestID of the call that confirmed it, when not the parent's.
	RequestID string
}

// Result is what happened to one Op. The engine owns it once returned.
type Result struct {
	EntityKey  Key
	Outcome    Outcome
	RemoteID   string // the partner's object id (Synctera id, Q2 clientId, ...)
	RequestID  string // the partner's request id (data feed requestId), if any
	HTTPStatus int
	Attempts   int
	// Err explains a non-OK outcome. Use *httpx.Error so the engine can tell
	// retryable, rejected and fatal apart (a Fatal kind stops the partner
	// for the rest of the run). Never include card data.
	Err      error
	Children []Child
}

// Journal lets a partner persist a detail durably before a call whose
// effect cannot be looked up afterwards (ClubReady's single-use token), so
// that a crash leaves something the rerun can resolve. It is safe for
// concurrent use by the partner's workers; Note returns once the detail is
// committed, and an error means it is not (do not make the call).
type Journal interface {
	Note(ctx context.Context, op Op, detail string) error
}

// Provider is everything the engine needs from a partner package. Map is
// called concurrently by the planners, Send concurrently by the workers
// (see the package comment); an implementation holds no per-run state
// that those calls share without synchronisation.
type Provider interface {
	// Name is the partner's name in config, the ledger and metrics; it
	// must not change between runs.
	Name() string
	// MaxBatch is how many ops one Send may carry: 1 for per-record APIs,
	// 50 for the data feed. The engine fills batches up to it.
	MaxBatch() int
	// Map turns a validated customer into this partner's items. A
	// record the partner cannot take (say, a phone that is not E.164 for
	// Synctera) comes back as a reject for this partner only. Map must not
	// keep or modify c.
	Map(c *model.Customer) ([]Item, []model.Reject)
	// Send delivers one batch and returns exactly one Result per op, in
	// order. It retries what is safe to retry and returns when done or when
	// ctx is cancelled. It does not keep ops after it returns.
	Send(ctx context.Context, ops []Op, j Journal) []Result
}

// Deactivator is implemented by partners that can switch off an entity
// that vanished from the source. Op.Payload is nil; Op.RemoteID is set.
// The engine calls it from the partner's workers, concurrently, one op a
// call, only after a complete read of the source.
type Deactivator interface {
	Deactivate(ctx context.Context, op Op) Result
}

// Resolver is implemented by partners whose calls are not idempotent, so
// that an op left pending or uncertain by an earlier run is settled from
// the journal detail (Op.Intent) instead of being sent blind. The engine
// calls it from the partner's workers, one op a call, instead of Send.
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

// NewOp is the op of an item before the planner fills in what sync_state
// says (Kind, Hash, keys, RemoteID, Intent).
func NewOp(it Item) Op {
	return Op{EntityKey: it.EntityKey, CustomerID: it.CustomerID, Origin: it.Origin, Payload: it.Payload}
}

// NewOps is NewOp of each item.
func NewOps(items []Item) []Op {
	ops := make([]Op, len(items))
	for i, it := range items {
		ops[i] = NewOp(it)
	}
	return ops
}

// PayloadOf is op's payload as the partner's own wire type P, accepting P
// or a non-nil *P (what Map put in, or a test's pointer). ok is false for
// anything else, which is a wiring bug: the client answers it with a Fatal
// "bad_payload" result instead of a panic. It is the one place a payload's
// dynamic type is checked, so that no client switches on it.
//
// The engine keeps payloads as any because it holds partners of different
// payload types in one list and hashes payloads without knowing them; a
// generic Provider[P] would need an adapter per partner to erase P again
// before the engine could hold it, for no check the compiler could make
// at that boundary either.
func PayloadOf[P any](op Op) (p P, ok bool) {
	switch v := op.Payload.(type) {
	case P:
		return v, true
	case *P:
		if v != nil {
			return *v, true
		}
	}
	return p, false
}
