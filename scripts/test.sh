#!/usr/bin/env bash
# The README's test command: install what is missing, start the services, lint, run the suite.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/services.sh"
load_services_env
"$ROOT/scripts/lint.sh"
log "running the test suite"
exec "$VENV/bin/pytest" "$@"
