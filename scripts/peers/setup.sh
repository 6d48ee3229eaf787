#!/usr/bin/env bash
# Python venv with the peer implementations our stay detection is compared with (trackintel,
# movingpandas), pinned to the versions the committed fixtures were generated with.
#   scripts/peers/setup.sh          create target/pypeers (repo-relative) if missing and install the pins;
#                                   a quick no-op when they are already installed
# Prints the venv's python path on success. PYTHON picks the interpreter (default python3, >= 3.10).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/target/pypeers"
PY="$VENV/bin/python"

# Direct dependencies and the libraries whose behaviour the results depend on. pip resolves the
# rest (pyproj, pyogrio, geopy, scipy, ...) within these.
PINS=(
  "trackintel==1.4.2"
  "movingpandas==0.23.0"
  "pandas==3.1.1"
  "geopandas==1.2.0"
  "shapely==2.2.0"
  "numpy==2.4.6"
  "pyproj==3.7.2"
  "geopy==2.5.0"
)

installed() {
  [ -x "$PY" ] || return 1
  "$PY" - "${PINS[@]}" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PYEOF
}

if ! installed; then
  [ -x "$PY" ] || "${PYTHON:-python3}" -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check "${PINS[@]}" >&2
  installed || { echo "setup.sh: pinned versions not installed in $VENV" >&2; exit 1; }
fi
echo "$PY"
