#!/usr/bin/env bash
# Install what is missing: Debian packages, the virtualenv and the project. Idempotent and quick
# when nothing changed (a stamp keyed on pyproject.toml + constraints.txt skips pip).
. "$(dirname "$0")/lib.sh"

missing=()
while read -r pkg _; do
  case "$pkg" in ''|'#'*) continue ;; esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < "$ROOT/scripts/apt-packages.txt"
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  # Debian's packages try to start their own system services; ours run from var/ instead.
  apt_get update
  apt_get install -y --no-install-recommends "${missing[@]}"
fi

PY="${MADOGUCHI_PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || die "Python >= 3.11 is required ($("$PY" --version 2>&1))"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv in $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.madoguchi-installed"
want=$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing Python packages into $VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -c "$ROOT/constraints.txt" -e "$ROOT[dev,bench]"
  echo "$want" > "$stamp"
fi
log "setup done"
