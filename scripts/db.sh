#!/usr/bin/env bash
# Project-local PostgreSQL + PostGIS for development and tests.
#   scripts/db.sh ensure   install (apt) if missing, init, start, create database; prints nothing
#   scripts/db.sh install  install PostgreSQL 15 + PostGIS with apt when missing (scripts/cluster.sh)
#   scripts/db.sh url      print the DATABASE_URL to use
#   scripts/db.sh stop     stop the local cluster
#   scripts/db.sh clean    stop and remove the local cluster
# With DATABASE_URL set in the environment, nothing is installed or started: that database is used.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
DBNAME="${FV_DB_NAME:-fieldvisit}"
ROOT_HASH="$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)"
DATA="$ROOT/.pgdata"
SOCK="$ROOT/.run"
# PostgreSQL runs as `postgres` when we are root: if that user cannot reach the checkout (e.g. it
# lives under /root), keep the cluster in a per-checkout folder it can reach.
if [ "$(id -u)" = "0" ] && id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
  DATA="/var/tmp/fieldvisit-$ROOT_HASH/pgdata"
  SOCK="/var/tmp/fieldvisit-$ROOT_HASH/run"
fi
# Unix socket paths are limited to ~107 bytes: fall back to /tmp for deep checkouts.
if [ "${#SOCK}" -gt 80 ]; then
  SOCK="/tmp/fieldvisit-$ROOT_HASH"
fi
PORT=5432

log() { echo "[db] $*" >&2; }

as_pg() {
  if [ "$(id -u)" = "0" ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

install_if_missing() {
  if [ -x "$PGBIN/initdb" ] && [ -f /usr/share/postgresql/15/extension/postgis.control ]; then
    return
  fi
  if [ "$(id -u)" != "0" ]; then
    log "PostgreSQL 15 + PostGIS 3 missing; run as root or: apt-get install postgresql-15 postgresql-15-postgis-3"
    exit 1
  fi
  log "installing postgresql-15 and postgresql-15-postgis-3 (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql-15 postgresql-15-postgis-3 >/dev/null
}

psql_local() {
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres "$@"
}

ensure() {
  if [ -n "${DATABASE_URL:-}" ]; then
    return
  fi
  install_if_missing
  mkdir -p "$SOCK"
  if [ ! -f "$DATA/PG_VERSION" ]; then
    log "initialising cluster in $DATA"
    mkdir -p "$DATA"
    if [ "$(id -u)" = "0" ]; then chown postgres:postgres "$DATA" "$SOCK"; fi
    if [ "$(id -u)" = "0" ] && [ "$DATA" != "$ROOT/.pgdata" ]; then ln -sfn "$DATA" "$ROOT/.pgdata"; fi
    as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$SOCK'
port = $PORT
fsync = on
max_connections = 200
shared_buffers = 256MB
logging_collector = off
CONF
  fi
  if [ "$(id -u)" = "0" ]; then chown postgres:postgres "$SOCK"; fi
  if ! as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 -o "-k $SOCK" start >/dev/null
  fi
  # PostGIS in template1 makes every test database (created from it) PostGIS-ready and fast.
  psql_local -d template1 -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
  if ! psql_local -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'" | grep -q 1; then
    psql_local -d postgres -c "CREATE DATABASE \"$DBNAME\"" >/dev/null
  fi
}

url() {
  if [ -n "${DATABASE_URL:-}" ]; then
    echo "$DATABASE_URL"
  else
    echo "postgres://postgres@localhost:$PORT/$DBNAME?host=$SOCK"
  fi
}

stop() {
  if [ -f "$DATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  fi
}

case "${1:-}" in
  ensure) ensure ;;
  install) install_if_missing ;;
  url) url ;;
  stop) stop ;;
  clean) stop; rm -rf "$DATA" "$SOCK" "$ROOT/.pgdata" "$ROOT/.run" ;;
  *) echo "usage: $0 ensure|install|url|stop|clean" >&2; exit 2 ;;
esac
