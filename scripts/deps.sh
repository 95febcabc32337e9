#!/usr/bin/env bash
# Installs PostgreSQL server binaries, psql and curl (and, with --browser,
# Chromium) from Debian's packages when they are missing. Tests start throwaway clusters from these
# and render the HTML run report in headless Chromium. Idempotent: nothing
# is installed when everything is already there.
set -euo pipefail
have_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || [ -n "${PG_BIN:-}" ]; }
have_chromium() { [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
need=()
have_pg || [ -n "${DATABASE_URL:-}" ] || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
command -v curl >/dev/null 2>&1 || need+=(curl)
# make image puts the CA bundle into the image.
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
# Only the tests need the browser (the HTML report is rendered in it).
[ "${1:-}" = --browser ] && { have_chromium || need+=(chromium); }
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  if [ "${need[*]}" = chromium ] && [ -z "${CI:-}" ]; then
    # Only the browser test needs it, and it skips locally (never on CI).
    echo "deps: chromium is missing: the HTML report browser test will be skipped (install it: sudo apt-get install chromium)" >&2
    exit 0
  fi
  echo "deps: missing ${need[*]}: install them (sudo apt-get install ${need[*]}) or set DATABASE_URL for postgresql" >&2
  exit 1
fi
echo "deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts a cluster on install; the tests start their own.
service postgresql stop >/dev/null 2>&1 || true
