#!/usr/bin/env bash
# make bench: benchmarks against the real services; results in docs/benchmarks.md and bench/results/.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/services.sh"
load_services_env
mkdir -p "$ROOT/bench/results"
exec "$VENV/bin/python" -m bench "$@"
