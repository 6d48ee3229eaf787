#!/usr/bin/env bash
# The time `fieldvisit-demo` takes on a fresh database (issue 26: under a minute after the build).
# Usage: DATABASE_URL=$(scripts/db.sh url) benches/demo_load.sh   (after `cargo build --release --workspace`)
# Creates a scratch database next to DATABASE_URL's, migrates it, loads the demo with the default
# team (20 reps, 5 weeks) and prints the wall time, the peak memory and the loader's phases.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?DATABASE_URL must point at a PostGIS database (scripts/db.sh url)}"
scratch=fieldvisit_bench_demo
url="${DATABASE_URL/\/fieldvisit?//$scratch?}"
[[ "$url" != "$DATABASE_URL" ]] || url="${DATABASE_URL%/*}/$scratch"
psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $scratch" -c "CREATE DATABASE $scratch"
DATABASE_URL="$url" target/release/fieldvisit migrate >/dev/null
log=$(mktemp)
/usr/bin/time -f 'wall %e s, peak RSS %M KiB' env DATABASE_URL="$url" target/release/fieldvisit-demo >/dev/null 2>"$log"
sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E 'demo team:|wall '
psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $scratch"
