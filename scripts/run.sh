#!/usr/bin/env bash
# make run: set up, start services, provision the three cities with demo data, serve on loopback.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/services.sh"
load_services_env
M="$VENV/bin/madoguchi"
"$M" tenants sync
"$M" demo seed --scale small
# A background-job worker for the life of the server. Not in metrics multiprocess mode: its forked
# work horses would each leave counter files behind; job figures come from the database instead.
env -u PROMETHEUS_MULTIPROC_DIR "$M" worker > "$VAR/worker.log" 2>&1 &
worker_pid=$!
trap 'kill $worker_pid 2>/dev/null || true' EXIT INT TERM
# prometheus_client multiprocess mode: the folder is in the environment before Python starts and is
# emptied before gunicorn starts (files of a previous run would be added to the new counters).
export PROMETHEUS_MULTIPROC_DIR="$VAR/metrics-multiproc"
rm -rf "$PROMETHEUS_MULTIPROC_DIR"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
# MADOGUCHI_ALERTMANAGER_WEBHOOK_TOKEN comes from var/services.env (the file Alertmanager reads).
# The worker model is in the config module (ADR 0009 addendum): gthread, MADOGUCHI_THREADS threads
# (default 4) in each of the MADOGUCHI_WORKERS processes; MADOGUCHI_THREADS=1 gives sync workers.
log "Madoguchi is starting on http://127.0.0.1:$APP_PORT/ (demo login: demo / madoguchi-demo)"
log "  staff UI: http://127.0.0.1:$APP_PORT/osaka/  /gobo/  /yamaguchi/   API: /api/openapi.json"
log "  metrics: /metrics   incidents: /ops/incidents   Prometheus: http://127.0.0.1:$PROM_PORT/"
"$VENV/bin/gunicorn" --config python:app.observability.gunicorn_conf \
  --bind "127.0.0.1:$APP_PORT" --workers "${MADOGUCHI_WORKERS:-2}" \
  --access-logfile - --error-logfile - app.wsgi:application
