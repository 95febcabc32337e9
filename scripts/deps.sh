#!/usr/bin/env bash
# Installs PostgreSQL server binaries, psql and curl from Debian's packages
# when they are missing. Tests start throwaway clusters from these.
set -euo pipefail
have_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || [ -n "${PG_BIN:-}" ]; }
need=()
have_pg || [ -n "${DATABASE_URL:-}" ] || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v curl >/dev/null 2>&1 || need+=(curl)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps: missing ${need[*]}: install them (sudo apt-get install ${need[*]}) or set DATABASE_URL" >&2
  exit 1
fi
echo "deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts a cluster on install; the tests start their own.
service postgresql stop >/dev/null 2>&1 || true
