// Package crashpoint kills the process at named points of a run, the way
// kill -9 would, for the seeded fault-schedule suite (internal/e2e,
// docs/testing.md). ETL_CRASH_AT=after-send:37 kills the process the 37th
// time any goroutine reaches Hit(AfterSend).
//
// Hit costs one atomic load when nothing is armed, so the points stay in
// production code. The process dies by SIGKILL to itself: no deferred
// function runs, no buffer is flushed, no transaction is finished, no
// connection is closed politely.
package crashpoint

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// EnvVar names the variable FromEnv reads: "name:n", e.g. "after-send:37".
const EnvVar = "ETL_CRASH_AT"

// The points. Each is hit once per occurrence, by any goroutine.
const (
	// AfterIntent: an intent row is durable in the ledger and the
	// partner call it announces has not been made.
	AfterIntent = "after-intent"
	// AfterSend: a partner call (or batch call) returned and its
	// outcome is not yet queued for the ledger.
	AfterSend = "after-send"
	// AfterLedgerCommit: a ledger writer batch (ledger rows, sync_state,
	// fingerprints, rejects, seen ids) committed.
	AfterLedgerCommit = "after-ledger-commit"
	// BeforeFingerprint: every call of a customer came back OK and its
	// ledger rows and sync_state are committed; its fingerprint is not
	// yet written.
	BeforeFingerprint = "before-fingerprint"
	// MidPlan: a planned op is about to be queued to its partner's lane;
	// the batch's earlier ops are queued (some maybe sent), its later
	// ones not, and the batch's fingerprints are already forgotten.
	MidPlan = "mid-plan"
)

// Points lists every known point.
func Points() []string {
	return []string{AfterIntent, AfterSend, AfterLedgerCommit, BeforeFingerprint, MidPlan}
}

type target struct {
	name   string
	n      int64
	hits   atomic.Int64
	killed atomic.Bool
}

var armed atomic.Pointer[target]

// kill is the process's death; tests replace it.
var kill = func() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not synchronous: nothing may go on meanwhile
}

// Parse reads "name:n" (n >= 1). An empty spec is no crash.
func Parse(spec string) (name string, n int64, err error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return "", 0, nil
	}
	name, num, ok := strings.Cut(spec, ":")
	if !ok {
		num = "1"
	}
	if !known(name) {
		known := Points()
		sort.Strings(known)
		return "", 0, fmt.Errorf("%s=%q: unknown crash point %q (known: %s)", EnvVar, spec, name, strings.Join(known, ", "))
	}
	n, err = strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("%s=%q: want name:n with n >= 1", EnvVar, spec)
	}
	return name, n, nil
}

func known(name string) bool {
	for _, p := range Points() {
		if p == name {
			return true
		}
	}
	return false
}

// FromEnv arms the point ETL_CRASH_AT names. Call it once at startup: an
// unknown name or a bad count is an error, so a typo cannot silently test
// nothing.
func FromEnv() error {
	name, n, err := Parse(os.Getenv(EnvVar))
	if err != nil || name == "" {
		return err
	}
	Arm(name, n)
	return nil
}

// Arm makes the n-th Hit(name) kill the process; n < 1 or an empty name
// disarms.
func Arm(name string, n int64) {
	if name == "" || n < 1 {
		armed.Store(nil)
		return
	}
	armed.Store(&target{name: name, n: n})
}

// Hit marks one occurrence of the named point.
func Hit(name string) {
	t := armed.Load()
	if t == nil || t.name != name {
		return
	}
	t.hit(nil)
}

// HitUnless is Hit when err is nil: a point that only exists once an
// operation succeeded, as one line after it.
func HitUnless(name string, err error) {
	if err == nil {
		Hit(name)
	}
}

// HitAfter is Hit that, when this occurrence is the one that kills,
// first runs settle (e.g. waits for a ledger flush) so that the state the
// point's name promises is exactly the state left behind.
func HitAfter(name string, settle func()) {
	t := armed.Load()
	if t == nil || t.name != name {
		return
	}
	t.hit(settle)
}

func (t *target) hit(settle func()) {
	if t.hits.Add(1) != t.n || !t.killed.CompareAndSwap(false, true) {
		return
	}
	if settle != nil {
		settle()
	}
	// One unbuffered line, so the driver can tell an injected crash from
	// a real one.
	_, _ = fmt.Fprintf(os.Stderr, "crashpoint: killed at %s:%d\n", t.name, t.n)
	kill()
}
