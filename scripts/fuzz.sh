#!/usr/bin/env bash
# HTTP-level fuzzing of every operation in /openapi.json with Schemathesis (PyPI), against a
# running server: `scripts/fuzz.sh URL TOKEN [schemathesis options…]`; `--install-only` just
# installs. The suite runs it with `--max-examples 10` (tests/integration/fuzz.rs); run it at
# length by hand, e.g.
#   scripts/fuzz.sh http://127.0.0.1:8080 "$ADMIN_TOKEN" --max-examples 200
# Schemathesis is installed into .tools/venv on first use. Operations and checks left out are
# listed, with their reasons, in schemathesis.toml.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.tools/venv"
if ! "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
  echo "fuzz: installing schemathesis into $venv" >&2
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4.3,<5'
fi
[ "${1:-}" = "--install-only" ] && exit 0
url="$1"; token="$2"; shift 2
cd "$root"
exec "$venv/bin/schemathesis" --config-file "$root/schemathesis.toml" run "$url/openapi.json" \
  -H "Authorization: Bearer $token" --seed "${FUZZ_SEED:-1}" "$@"
