#!/usr/bin/env bash
# The demo: sandboxes on loopback, the ledger migrated, the sample data
# delivered to every partner, the summary and the ledger shown. Needs
# DATABASE_URL (make demo provides a throwaway PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
ETL=./bin/etl
addr="${SANDBOX_ADDR:-127.0.0.1:18099}"
source scripts/demo-env.sh "$addr"

$ETL sandbox --listen "$addr" 2>.tmp-sandbox.log &
sb=$!
trap 'kill $sb 2>/dev/null || true; rm -f .tmp-sandbox.log' EXIT
for _ in $(seq 1 50); do
  curl -fsS "http://$addr/datafeed/_sandbox/state" >/dev/null 2>&1 && break
  sleep 0.1
done

$ETL migrate
config=sample-data/etl.yaml
if [ "${SOURCE:-csv}" = postgres ]; then
  export SOURCE_DATABASE_URL="${SOURCE_DATABASE_URL:-$DATABASE_URL}"
  ./scripts/seed-postgres.sh
  config=sample-data/etl-postgres.yaml
fi
set +e
$ETL run --config "$config" --progress none "$@"
code=$?
echo
echo "== the same command again, as tomorrow night's cron would run it =="
$ETL run --config "$config" --progress none -q "$@"
set -e
echo
echo "== ledger: the partners' ids and request ids (first rows per partner) =="
psql "$DATABASE_URL" -X -q -P pager=off -c "SELECT provider, count(*) AS rows, count(DISTINCT request_id) AS request_ids, count(remote_id) AS remote_ids, min(entity_key) AS example_key FROM ledger WHERE outcome='ok' GROUP BY provider ORDER BY provider" \
  -c "SELECT provider, entity_key, coalesce(remote_id, '') AS remote_id, coalesce(request_id, '') AS request_id, outcome FROM (SELECT *, row_number() OVER (PARTITION BY provider ORDER BY id) AS n FROM ledger WHERE outcome='ok') l WHERE n <= 2 ORDER BY provider, id" \
  -c "SELECT file, line, entity_key, field, reason FROM rejects WHERE provider IS NULL AND run_id = (SELECT min(id) FROM runs) ORDER BY file, line LIMIT 15" 2>/dev/null \
  || echo "(install psql to see the ledger here, or run: etl report <run>)"
echo "== what each partner's sandbox holds after both runs (GET /<partner>/_sandbox/state) =="
for p in datafeed q2open synctera clubready tokenization; do
  curl -fsS "http://$addr/$p/_sandbox/state" 2>/dev/null | python3 -c '
import json, sys
p = sys.argv[1]; s = json.load(sys.stdin); t = s.get("totals", {})
n = {"datafeed": lambda: len(s["customers"]), "q2open": lambda: len(s["clients"]), "synctera": lambda: len(s["customers"]),
     "clubready": lambda: len(s["profiles"]), "tokenization": lambda: len(s["clients"])}[p]()
d = t.get("duplicates", t.get("duplicate_clients", s.get("duplicates", 0)))
print("  %-13s %4d records, %d duplicates, %d requests" % (p, n, d, t.get("requests", s.get("requests", s.get("imports", 0)))))
' "$p" 2>/dev/null || echo "  $p: state at http://$addr/$p/_sandbox/state"
done
exit $code
