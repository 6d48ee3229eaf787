#!/usr/bin/env bash
# Builds the managers' map (map-ui/) into map-ui/dist when it is missing or older than its sources:
# `npm ci` from the committed package-lock.json (the npm registry is the only download), then
# `npm run build` (esbuild bundle, MapLibre stylesheet, offline basemap from world-atlas).
# It runs no tests: the unit tests are `npm test` in map-ui/, the browser test tests/integration/map_ui.rs.
set -euo pipefail
cd "$(dirname "$0")/../map-ui"
log() { echo "map-ui: $*" >&2; }
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then log "npm missing; install Node.js 18+ and npm"; exit 1; fi
  log "installing nodejs and npm"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  log "Node.js 20 or later is needed (found $(node --version)); install it from nodejs.org or NodeSource"
  exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
newest_source=$(find src glyphs build.mjs package-lock.json -type f -newer dist/.built 2>/dev/null | head -1 || true)
if [ ! -f dist/.built ] || [ -n "$newest_source" ]; then
  log "building"
  npm run --silent build
fi
