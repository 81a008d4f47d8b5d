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
# A background-job worker for the life of the server.
"$M" worker > "$VAR/worker.log" 2>&1 &
worker_pid=$!
trap 'kill $worker_pid 2>/dev/null || true' EXIT INT TERM
log "Madoguchi is starting on http://127.0.0.1:$APP_PORT/ (demo login: demo / madoguchi-demo)"
log "  staff UI: http://127.0.0.1:$APP_PORT/osaka/  /gobo/  /yamaguchi/   API: /api/openapi.json"
"$VENV/bin/gunicorn" --bind "127.0.0.1:$APP_PORT" --workers "${MADOGUCHI_WORKERS:-2}" \
  --max-requests 100000 --access-logfile - --error-logfile - app.wsgi:application
