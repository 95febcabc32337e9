package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/northwind-data/etl/internal/ledger"
	"github.com/northwind-data/etl/internal/shard"
)

// lockRun takes the advisory lock that keeps two runs of the same source,
// partners and shard apart. It returns the release function, or nil and
// the exit code when the lock is held or cannot be taken.
func lockRun(ctx context.Context, store *ledger.Store, sourceID string, names []string, sh shard.Shard) (release func(), code int) {
	lock, err := store.TryLock(ctx, fmt.Sprintf("%s|%s|%s", sourceID, strings.Join(names, ","), sh))
	if isLocked(err) {
		return nil, fail(exitLocked, "another etl run for source %s, partners %s, shard %s is in progress; nothing was sent (exit %d)", sourceID, strings.Join(names, ","), sh, exitLocked)
	}
	if err != nil {
		return nil, fail(exitFatal, "%v", err)
	}
	return lock.Release, exitOK
}
