#!/usr/bin/env bash
# A local high-availability topology: the reference production layout on one machine, loopback only.
#   scripts/cluster.sh up       install what is missing, start everything, wait until healthy, migrate
#   scripts/cluster.sh down     kill everything `up` started and remove .cluster/
#   scripts/cluster.sh status   what runs, the Patroni cluster (leader, sync standby, timeline)
#   scripts/cluster.sh kill-node NAME      SIGKILL a PostgreSQL node: its Patroni and all its postgres processes
#   scripts/cluster.sh kill-instance N     SIGKILL fieldvisit instance N (1-3)
#
# Topology (docs/operations.md, "Reference production layout"):
#   etcd            127.0.0.1:2379 (client) / 2380 (peer), one member
#   PostgreSQL 15   node1..node3 on 127.0.0.1:15441-15443, Patroni REST on 127.0.0.1:18441-18443,
#                   synchronous_mode (non-strict), run as `postgres` when we are root
#   haproxy         127.0.0.1:15440 writes -> the node whose GET /primary answers 200
#                   127.0.0.1:15439 reads  -> nodes whose GET /replica answers 200, else the primary
#                   127.0.0.1:18080 HTTP   -> fieldvisit instances whose GET /readyz answers 200
#                   127.0.0.1:18079 haproxy's own stats page
#   fieldvisit      three instances on 127.0.0.1:18081-18083
# Everything lives in .cluster/ (gitignored). FV_BIN names the fieldvisit binary (default:
# target/debug/fieldvisit under CARGO_TARGET_DIR or target/, built with cargo when missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/.cluster"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
DEFAULT_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/fieldvisit"
FV_BIN="${FV_BIN:-$DEFAULT_BIN}"
SCOPE=fieldvisit
NODES=(node1 node2 node3)
PG_PORT_BASE=15440   # node i: 15440+i
REST_PORT_BASE=18440 # node i: 18440+i
WRITE_PORT=15440
READ_PORT=15439
HTTP_PORT=18080
STATS_PORT=18079
FV_PORT_BASE=18080   # instance i: 18080+i
ETCD_CLIENT=2379
ETCD_PEER=2380
# Patroni's timing (seconds); the failover test prints them beside the failover time.
TTL="${FV_CLUSTER_TTL:-10}"
LOOP_WAIT="${FV_CLUSTER_LOOP_WAIT:-2}"
RETRY_TIMEOUT="${FV_CLUSTER_RETRY_TIMEOUT:-3}"
WRITE_URL="postgres://postgres@127.0.0.1:$WRITE_PORT/fieldvisit"
READ_URL="postgres://postgres@127.0.0.1:$READ_PORT/fieldvisit"

log() { echo "[cluster] $*" >&2; }
die() { log "$*"; exit 1; }

is_root() { [ "$(id -u)" = "0" ]; }

install_if_missing() {
  # PostgreSQL 15 + PostGIS: the same install as `make db`.
  "$ROOT/scripts/db.sh" install
  local missing=()
  command -v patroni >/dev/null || missing+=(patroni)
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v haproxy >/dev/null || missing+=(haproxy)
  [ ${#missing[@]} -eq 0 ] && return
  is_root || die "missing ${missing[*]}; run as root or: apt-get install ${missing[*]}"
  log "installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  # The packages' own services (etcd, haproxy) must not start: refuse every start during the
  # install (policy-rc.d), then stop whatever a init system started anyway.
  local policy=/usr/sbin/policy-rc.d restore=""
  if [ -e "$policy" ]; then restore="$(mktemp)"; cp -p "$policy" "$restore"; fi
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  local rc=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || rc=$?
  if [ -n "$restore" ]; then mv "$restore" "$policy"; else rm -f "$policy"; fi
  [ $rc -eq 0 ] || die "apt-get install ${missing[*]} failed"
  stop_package_services
}

stop_package_services() {
  is_root || return 0
  local s
  for s in etcd haproxy; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$s" 2>/dev/null; then
      systemctl stop "$s" || true
      systemctl disable "$s" >/dev/null 2>&1 || true
    fi
    if pgrep -x "$s" -u "$s" >/dev/null 2>&1 || { [ -f "/run/$s.pid" ] && kill -0 "$(cat "/run/$s.pid")" 2>/dev/null; }; then
      service "$s" stop >/dev/null 2>&1 || true
    fi
  done
  # The default cluster postgresql-common creates (15/main on 5432) must not run either.
  if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | awk '$1=="15" && $2=="main" && $4=="online"' | grep -q .; then
    pg_ctlcluster 15 main stop || true
  fi
}

pidfile_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2
  shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || die "timed out after ${secs}s waiting for $what (logs in $DIR)"
    sleep 0.5
  done
}

start_etcd() {
  pidfile_alive "$DIR/etcd.pid" && return
  mkdir -p "$DIR/etcd"
  setsid etcd --name fv-etcd --data-dir "$DIR/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster "fv-etcd=http://127.0.0.1:$ETCD_PEER" --initial-cluster-state new \
    --initial-cluster-token fieldvisit-local >"$DIR/etcd/etcd.log" 2>&1 </dev/null &
  echo $! >"$DIR/etcd.pid"
  wait_for 30 etcd curl -sf "http://127.0.0.1:$ETCD_CLIENT/health"
}

patroni_yml() { # patroni_yml INDEX NAME
  local i=$1 name=$2 nd="$DIR/$2"
  cat <<YML
scope: $SCOPE
namespace: /service/
name: $name
log:
  level: INFO
restapi:
  listen: 127.0.0.1:$((REST_PORT_BASE + i))
  connect_address: 127.0.0.1:$((REST_PORT_BASE + i))
etcd3:
  hosts: 127.0.0.1:$ETCD_CLIENT
bootstrap:
  dcs:
    ttl: $TTL
    loop_wait: $LOOP_WAIT
    retry_timeout: $RETRY_TIMEOUT
    maximum_lag_on_failover: 1048576
    # A commit is acknowledged only once the synchronous standby has it, so it survives the loss of
    # the primary. Non-strict: with no standby left the primary keeps writing alone.
    synchronous_mode: true
    synchronous_mode_strict: false
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: 'on'
        wal_log_hints: 'on'
        max_connections: 300
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
        shared_buffers: 128MB
        fsync: 'on'
        synchronous_commit: 'on'
  initdb:
  - encoding: UTF8
  - locale: C.UTF-8
  - data-checksums
postgresql:
  listen: 127.0.0.1:$((PG_PORT_BASE + i))
  connect_address: 127.0.0.1:$((PG_PORT_BASE + i))
  data_dir: $nd/data
  bin_dir: $PGBIN
  pgpass: $nd/pgpass
  authentication:
    superuser:
      username: postgres
      password: postgres
    replication:
      username: replicator
      password: replicator
    rewind:
      username: postgres
      password: postgres
  # Loopback only, trusted: a real deployment uses scram-sha-256 and TLS (docs/operations.md).
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 trust
  - host replication replicator 127.0.0.1/32 trust
  parameters:
    unix_socket_directories: '$nd'
    logging_collector: 'off'
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
YML
}

start_node() { # start_node INDEX NAME
  local i=$1 name=$2 nd="$DIR/$2"
  pidfile_alive "$nd/patroni.pid" && return
  mkdir -p "$nd"
  patroni_yml "$i" "$name" >"$nd/patroni.yml"
  if is_root; then chown -R postgres:postgres "$nd"; fi
  local run=(patroni "$nd/patroni.yml")
  if is_root; then run=(setpriv --reuid=postgres --regid=postgres --init-groups -- "${run[@]}"); fi
  # Its own session (process group), so that kill-node can take the node down whole.
  (cd / && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$nd/patroni.pid" "${run[@]}" \
    >>"$nd/patroni.log" 2>&1 </dev/null) &
  wait_for 5 "node $name to start" test -s "$nd/patroni.pid"
}

rest() { curl -sf --max-time 2 "http://127.0.0.1:$1$2"; }

has_leader_and_sync() {
  local c
  c="$(rest $((REST_PORT_BASE + 1)) /cluster)" || return 1
  python3 - "$c" <<'PY'
import json, sys
m = json.loads(sys.argv[1])["members"]
roles = [x["role"] for x in m if x["state"] in ("running", "streaming")]
sys.exit(0 if "leader" in roles and "sync_standby" in roles else 1)
PY
}

# Exactly one server of haproxy's pg_primary backend is up, and the write port reaches a primary.
primary_only() {
  [ "$(curl -sf --max-time 2 "http://127.0.0.1:$STATS_PORT/;csv" | awk -F, '$1=="pg_primary" && $2!="BACKEND" && $18 ~ /^UP/' | wc -l)" = 1 ] &&
    [ "$("$PGBIN/psql" -X -tA "postgres://postgres@127.0.0.1:$WRITE_PORT/postgres" -c "SELECT pg_is_in_recovery()")" = f ]
}

# A backend of the three PostgreSQL nodes, each up while its Patroni answers CHECK_PATH with 200.
pg_backend() { # pg_backend NAME CHECK_PATH
  local i
  printf 'backend %s\n  mode tcp\n  balance roundrobin\n  option httpchk GET %s\n  http-check expect status 200\n' "$1" "$2"
  for i in 1 2 3; do
    echo "  server node$i 127.0.0.1:$((PG_PORT_BASE + i)) check port $((REST_PORT_BASE + i)) on-marked-down shutdown-sessions"
  done
}

haproxy_cfg() {
  local i
  cat <<CFG
# Generated by scripts/cluster.sh; see docs/operations.md.
global
  maxconn 4000
  pidfile $DIR/haproxy/haproxy.pid
  stats socket $DIR/haproxy/admin.sock mode 600 level admin
  log stdout format raw local0 warning

defaults
  log global
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  timeout check 2s
  default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2

listen stats
  mode http
  bind 127.0.0.1:$STATS_PORT
  stats enable
  stats uri /
  stats refresh 2s

# PostgreSQL writes: only the node whose Patroni says it is the primary. Sessions to a node marked
# down are cut, so clients reconnect to the new primary instead of hanging on a dead one.
frontend pg_write
  mode tcp
  bind 127.0.0.1:$WRITE_PORT
  default_backend pg_primary

CFG
  pg_backend pg_primary /primary
  cat <<CFG

# PostgreSQL reads: the streaming standbys, else the primary.
frontend pg_read
  mode tcp
  bind 127.0.0.1:$READ_PORT
  use_backend pg_replicas if { nbsrv(pg_replicas) gt 0 }
  default_backend pg_primary

CFG
  pg_backend pg_replicas /replica
  cat <<CFG

# fieldvisit: any ready instance answers any request. Ingest is idempotent (a device and fix time is
# stored once), so a request whose instance died before answering is sent to another one. With no
# instance ready (their /readyz fails while the database fails over) requests still go to the live
# ones (/healthz), which answer 503 + Retry-After themselves and commit nothing they cannot.
frontend fv_http
  mode http
  bind 127.0.0.1:$HTTP_PORT
  option forwardfor
  timeout client 75s
  use_backend fv_live if { nbsrv(fv) eq 0 }
  default_backend fv
CFG
  fv_backend fv /readyz
  fv_backend fv_live /healthz
}

# A backend of the three instances, each up while it answers CHECK_PATH with 200.
fv_backend() { # fv_backend NAME CHECK_PATH
  local i
  cat <<CFG

backend $1
  mode http
  balance roundrobin
  option httpchk GET $2
  http-check expect status 200
  option redispatch 1
  retries 3
  retry-on conn-failure empty-response
  timeout server 65s
  errorfile 502 $DIR/haproxy/503.http
  errorfile 503 $DIR/haproxy/503.http
  errorfile 504 $DIR/haproxy/503.http
CFG
  for i in 1 2 3; do
    echo "  server fv$i 127.0.0.1:$((FV_PORT_BASE + i)) check"
  done
}

start_haproxy() {
  pidfile_alive "$DIR/haproxy/haproxy.pid" && return
  mkdir -p "$DIR/haproxy"
  # No ready instance (the database failing over) or an instance lost mid-request: answered as the
  # server answers an unavailable database, 503 problem+json with Retry-After (docs/api.md).
  local body='{"type":"/problems/unavailable","title":"Service Unavailable","status":503,"detail":"no server instance is available; retry shortly"}'
  printf 'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nRetry-After: 2\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s' \
    "${#body}" "$body" >"$DIR/haproxy/503.http"
  haproxy_cfg >"$DIR/haproxy/haproxy.cfg"
  haproxy -c -q -f "$DIR/haproxy/haproxy.cfg" || die "invalid haproxy configuration"
  haproxy -D -f "$DIR/haproxy/haproxy.cfg" >"$DIR/haproxy/haproxy.log" 2>&1 </dev/null
  wait_for 10 haproxy pidfile_alive "$DIR/haproxy/haproxy.pid"
}

ensure_bin() {
  [ -x "$FV_BIN" ] && return
  [ "$FV_BIN" = "$DEFAULT_BIN" ] || die "FV_BIN=$FV_BIN is not an executable"
  log "building $FV_BIN"
  (cd "$ROOT" && cargo build --bin fieldvisit --locked)
}

start_instance() { # start_instance N
  local n=$1 d="$DIR/fv$1"
  pidfile_alive "$d/fieldvisit.pid" && return
  mkdir -p "$d"
  (cd "$ROOT" && DATABASE_URL="$WRITE_URL" FV_READ_DATABASE_URL="$READ_URL" \
    FV_BIND="127.0.0.1:$((FV_PORT_BASE + n))" FV_PUBLIC_URL="http://127.0.0.1:$HTTP_PORT" \
    FV_TRUSTED_PROXIES=127.0.0.1 FV_DERIVE_SETTLE_S="${FV_DERIVE_SETTLE_S:-2}" \
    FV_MAP_UI_DIR="$ROOT/map-ui/dist" RUST_LOG="${RUST_LOG:-info,sqlx=warn}" \
    exec setsid "$FV_BIN" serve >>"$d/fieldvisit.log" 2>&1 </dev/null) &
  echo $! >"$d/fieldvisit.pid"
}

up() {
  install_if_missing
  stop_package_services
  ensure_bin
  mkdir -p "$DIR"
  if is_root; then chmod 755 "$DIR"; fi
  start_etcd
  local i
  for i in 1 2 3; do start_node "$i" "node$i"; done
  wait_for 120 "a leader and a synchronous standby" has_leader_and_sync
  start_haproxy
  # haproxy counts a server up until its first checks fail: wait until only the primary is.
  wait_for 30 "haproxy to route writes to the primary only" primary_only
  if ! "$PGBIN/psql" -X -tA "postgres://postgres@127.0.0.1:$WRITE_PORT/postgres" \
    -c "SELECT 1 FROM pg_database WHERE datname = 'fieldvisit'" | grep -q 1; then
    "$PGBIN/psql" -X -q "postgres://postgres@127.0.0.1:$WRITE_PORT/postgres" -c 'CREATE DATABASE fieldvisit' >/dev/null
  fi
  DATABASE_URL="$WRITE_URL" "$FV_BIN" migrate >"$DIR/migrate.log" 2>&1 || die "migrate failed: $(tail -5 "$DIR/migrate.log")"
  for i in 1 2 3; do start_instance "$i"; done
  for i in 1 2 3; do wait_for 60 "fieldvisit instance $i" curl -sf "http://127.0.0.1:$((FV_PORT_BASE + i))/readyz"; done
  wait_for 30 "haproxy to see the instances" curl -sf "http://127.0.0.1:$HTTP_PORT/readyz"
  cat <<EOF
cluster up ($DIR):
  fieldvisit      http://127.0.0.1:$HTTP_PORT  (instances 127.0.0.1:$((FV_PORT_BASE + 1))-$((FV_PORT_BASE + 3)))
  writes          $WRITE_URL
  reads           $READ_URL
  Patroni REST    http://127.0.0.1:$((REST_PORT_BASE + 1))/cluster (nodes 127.0.0.1:$((REST_PORT_BASE + 1))-$((REST_PORT_BASE + 3)))
  haproxy stats   http://127.0.0.1:$STATS_PORT/
  etcd            http://127.0.0.1:$ETCD_CLIENT
  patroni         ttl=$TTL loop_wait=$LOOP_WAIT retry_timeout=$RETRY_TIMEOUT synchronous_mode=true (non-strict)
EOF
}

kill_group() { # kill_group PIDFILE: SIGKILL the process group the pid leads
  local pid
  [ -f "$1" ] || return 0
  pid="$(cat "$1")"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

kill_node() { # kill_node NAME: a lost machine, not a restart in place
  local nd="$DIR/$1" pids
  [ -f "$nd/patroni.pid" ] || die "no node $1"
  # Patroni, its postmaster and every backend: all in the node's session, plus any postgres of
  # the node's data directory that would have escaped it.
  pids="$(pgrep -s "$(cat "$nd/patroni.pid")" || true) $(pgrep -f -- "-D $nd/data" || true)"
  if [ -f "$nd/data/postmaster.pid" ]; then pids="$pids $(head -1 "$nd/data/postmaster.pid")"; fi
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
}

down() {
  [ -d "$DIR" ] || return 0
  local f
  for f in "$DIR"/fv*/fieldvisit.pid; do [ -e "$f" ] && kill_group "$f"; done
  [ -f "$DIR/haproxy/haproxy.pid" ] && kill -KILL "$(cat "$DIR/haproxy/haproxy.pid")" 2>/dev/null || true
  for f in "${NODES[@]}"; do [ -f "$DIR/$f/patroni.pid" ] && kill_node "$f"; done
  kill_group "$DIR/etcd.pid"
  sleep 0.5
  rm -rf "$DIR"
}

MEMBERS_PY='
import json, sys
for m in json.load(sys.stdin)["members"]:
    print("%-6s %-13s %-10s timeline %s lag %s" % (m["name"], m["role"], m["state"], m.get("timeline", "-"), m.get("lag", "-")))'

status() {
  [ -d "$DIR" ] || { echo "no cluster ($DIR missing)"; return 0; }
  local i f
  for f in "$DIR/etcd.pid" "$DIR/haproxy/haproxy.pid" "$DIR"/node*/patroni.pid "$DIR"/fv*/fieldvisit.pid; do
    [ -e "$f" ] || continue
    if pidfile_alive "$f"; then echo "up    ${f#"$DIR"/}"; else echo "down  ${f#"$DIR"/}"; fi
  done
  for i in 1 2 3; do
    local c
    c="$(rest $((REST_PORT_BASE + i)) /cluster)" || continue
    python3 -c "$MEMBERS_PY" <<<"$c"
    return 0
  done
  echo "no Patroni node answers"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  kill-node) kill_node "${2:?node name}" ;;
  kill-instance) kill_group "$DIR/fv${2:?instance number}/fieldvisit.pid" ;;
  *) echo "usage: $0 up|down|status|kill-node NAME|kill-instance N" >&2; exit 2 ;;
esac
