#!/usr/bin/env bash
# Runs a command with DATABASE_URL pointing at a PostgreSQL server: the one
# already in DATABASE_URL, or a throwaway cluster started here from the
# local PostgreSQL binaries and removed afterwards.
set -euo pipefail
if [ -n "${DATABASE_URL:-}" ]; then exec "$@"; fi

bin="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  bin="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
fi
if [ ! -x "$bin/initdb" ]; then
  echo "with-postgres: no PostgreSQL server binaries found: apt-get install postgresql, set PG_BIN, or set DATABASE_URL (docker compose up -d db)" >&2
  exit 1
fi
dir="$(mktemp -d /tmp/etl-demo-pg.XXXXXX)"
as=()
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; as=(runuser -u postgres --); fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)"
cleanup() { "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
"${as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
  || { cat "$dir/log" >&2; exit 1; }
"${as[@]}" "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres etl
export DATABASE_URL="postgres://postgres@127.0.0.1:$port/etl?sslmode=disable"
echo "with-postgres: throwaway PostgreSQL at 127.0.0.1:$port (removed on exit)" >&2
"$@"
