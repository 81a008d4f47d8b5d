#!/usr/bin/env bash
# ruff (lint + format check) and mypy, exactly as make test runs them.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$VENV/bin/ruff" check app agent migrations tests bench scripts
"$VENV/bin/ruff" format --check app agent migrations tests bench scripts
"$VENV/bin/mypy"
