#!/usr/bin/env bash
# Shared helpers for the project scripts: paths, loopback ports, logging, apt that waits for locks.
# Every port derives from MADOGUCHI_PORT_BASE so two checkouts on one machine can run side by side.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="${MADOGUCHI_VAR_DIR:-$ROOT/var}"
VENV="${MADOGUCHI_VENV:-$ROOT/.venv}"
PORT_BASE="${MADOGUCHI_PORT_BASE:-55000}"
PG_PORT=$((PORT_BASE + 432))
REDIS_PORT=$((PORT_BASE + 379))
S3_PORT=$((PORT_BASE + 500))
PROM_PORT=$((PORT_BASE + 90))
AM_PORT=$((PORT_BASE + 93))
APP_PORT=$((PORT_BASE + 80))
export ROOT VAR VENV PORT_BASE PG_PORT REDIS_PORT S3_PORT PROM_PORT AM_PORT APP_PORT

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt-get that waits for another installer instead of failing. DPkg::Lock::Timeout covers the dpkg
# frontend lock; the retry loop covers the lists lock held by a concurrent `apt-get update`.
apt_get() {
  local tries=0 out rc
  while :; do
    set +e
    out=$(as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@" 2>&1)
    rc=$?
    set -e
    if [ $rc = 0 ]; then return 0; fi
    if printf '%s' "$out" | grep -qE 'Could not get lock|Unable to acquire|is another process using it|Unable to lock'; then
      tries=$((tries + 1))
      [ $tries -ge 60 ] && { printf '%s\n' "$out" >&2; die "apt stayed locked for 10 minutes"; }
      log "apt is locked by another installer; waiting (${tries}/60)"
      sleep 10
      continue
    fi
    printf '%s\n' "$out" >&2
    return $rc
  done
}

# Read KEY=VALUE exports written by services.sh.
load_services_env() {
  [ -f "$VAR/services.env" ] || die "var/services.env is missing: run 'make services' first"
  # shellcheck disable=SC1091
  . "$VAR/services.env"
}
