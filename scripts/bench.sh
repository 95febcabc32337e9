#!/usr/bin/env bash
# make bench: one run, on this machine, of the ceiling / naive / etl run
# comparison per partner, peak RSS, the nightly no-change rerun and the
# rate-limited mode, the mixed mode (every partner in one run, each
# sandbox with its own faults), the 4-shard runs (see internal/bench),
# then the hot-path Go benchmarks. The tables are also written to
# bench-results.json.
#
# Flags go to the bench driver, e.g.
#   ./scripts/bench.sh -customers 50000 -rss-sizes 100000 -profile /tmp/prof
#   ./scripts/bench.sh -mode mixed            # the mixed mode alone (about 3.5 minutes), no Go benchmarks
#   ./scripts/bench.sh -mode mixed -mixed-rss-sizes 100000,1000000 -budget 60m
#   BENCHTIME=1s ./scripts/bench.sh
# Needs PostgreSQL server binaries (make deps) or DATABASE_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x bin/etl ] || go build -o bin/etl ./cmd/etl

go run ./internal/bench/cmd/benchrun -bin bin/etl "$@"

for a in "$@"; do
  case "$a" in -mode=mixed | --mode=mixed | mixed) exit 0 ;; esac
done

echo
echo "Go benchmarks of the hot paths (-benchtime ${BENCHTIME:-200ms}; CSV decode, validation, map + encode and"
echo "plan per partner, content hash per partner, ledger batch writes of 2000 rows on PostgreSQL):"
go test -run '^$' -bench . -benchtime "${BENCHTIME:-200ms}" -benchmem \
  ./internal/extract ./internal/transform ./internal/bench ./internal/load ./internal/ledger 2>&1 \
  | grep -Ev '^(goos|goarch|cpu|PASS)'
