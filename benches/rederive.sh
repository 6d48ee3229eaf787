#!/usr/bin/env bash
# Whole-org re-derivation of visits (issue 28): how fast the derivation workers of 1 and of 3
# instances recompute a year of an org after `POST /api/v1/visits/recompute` (goal: >= 1,000
# rep-days/s on this machine; if not met, where the time goes per rep-day).
#
# Usage: DATABASE_URL=$(scripts/db.sh url) benches/rederive.sh [--reps 100] [--days 365]
#                                            [--mark-days M] [--keep] [--reuse]
#   --mark-days M: mark (and time) only the last M of the loaded days (default: all of them).
#   --keep: keep the database; --reuse: measure again on a database a --keep run left (no load).
#   FV_BIN (default target/release): the directory of the release `fieldvisit` and `fieldvisit-demo`;
#   FV_DEMO_BIN (default $FV_BIN/fieldvisit-demo): another loader (it only builds the org: not timed).
#   BENCH_PORT (default 18780): the first of the three instances' ports (BENCH_PORT..BENCH_PORT+2).
#
# 1. Creates a fresh database `fieldvisit_rederive` on DATABASE_URL's server, migrates it and loads
#    the demo (`fieldvisit-demo --reps N --weeks 1`): the Beijing org, its territories and outlets,
#    N reps with one phone each. The demo's own week is left alone: the benchmark's days are the
#    N days (every calendar day, weekends included) that end the day before the demo's first ping.
#    Pings are generated in SQL (INSERT ... SELECT generate_series; partitions first with
#    `ensure_ping_partition`): per rep and day 1 fix every 30 s from 09:00 to 18:00 local time
#    (1,080 per rep-day, source 'import', accuracy 8 m), 18 half-hour stops at the rep's 12 outlets
#    nearest to an anchor outlet of its own: a stay of 15-25 min within ~3 m of the outlet, then a
#    straight walk to the next one. Outlets recorded after the first day get their first location
#    row backdated (else the year's days have no outlets to visit). Then ANALYZE; prints the size.
# 2. Starts 1 release instance (its own FV_BIND; FV_DERIVE_SETTLE_S=0 so that marked rep-days are
#    claimable at once, FV_RETENTION_INTERVAL_S=0, FV_DB_BACKGROUND_CONNECTIONS left at its
#    default), marks the period (or its last --mark-days) with `POST /api/v1/visits/recompute` as
#    the org's admin and measures the wall time from the mark until `GET /api/v1/visits/recompute` answers
#    `pending_rep_days` 0 (polled every second). Then deletes the period's visits, starts 3
#    instances on the same database and does it again.
# 3. Per run prints rep-days, wall seconds, rep-days/s, visits derived and per rep-day: wall ms, CPU
#    ms of the fieldvisit process(es) and CPU ms of PostgreSQL (utime + stime from /proc/<pid>/stat
#    of the backends connected to the database, sampled every second so that each is counted until
#    its last sample; also of every postgres process on the machine, which includes the server's
#    own background processes and anybody else's work), and markdown rows for BENCHMARKS.md.
# 4. Times each of the worker's statements alone with EXPLAIN ANALYZE (the reads of 6 random groups
#    of 16 consecutive days of a rep, the group the worker derives at once; `mark_outlet_additions`,
#    which runs before every claim, in a rolled-back transaction).
# Drops the database at the end unless --keep. Mind the disk: 100 reps x 365 days is 39.4M pings
# (5.9 GB with the index; `df -h /`). On this 2-core machine the whole year (36,500 rep-days) takes
# about an hour per run (2026-12-07: 8-11 rep-days/s); BENCHMARKS.md's rows mark the last 60 days.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?DATABASE_URL must point at a PostGIS database (scripts/db.sh url)}"
reps=100 days=365 keep=0 reuse=0 mark_days=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --reps) reps=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --mark-days) mark_days=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --reuse) reuse=1; keep=1; shift ;;
    *) echo "usage: benches/rederive.sh [--reps 100] [--days 365] [--mark-days M] [--keep] [--reuse]" >&2; exit 2 ;;
  esac
done
(( days >= 1 && days <= 366 )) || { echo "--days must be 1-366 (one POST /visits/recompute)" >&2; exit 2; }
bin=${FV_BIN:-target/release}
demo=${FV_DEMO_BIN:-$bin/fieldvisit-demo}
for b in "$bin/fieldvisit" "$demo"; do
  [[ -x "$b" ]] || { echo "$b missing (cargo build --release --workspace, or set FV_BIN)" >&2; exit 2; }
done
scratch=fieldvisit_rederive
url="${DATABASE_URL/\/fieldvisit?//$scratch?}"
[[ "$url" != "$DATABASE_URL" ]] || url="${DATABASE_URL%/*}/$scratch"
work=$(mktemp -d)
cleanup() {
  for f in "$work"/fv*.pid; do [[ -f "$f" ]] && kill "$(cat "$f")" 2>/dev/null || true; done
  if [[ $keep == 0 ]]; then
    sleep 1
    psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
if [[ $reuse == 1 ]]; then
  read -r org first last reps days < <(psql "$url" -AtF' ' -c "SELECT org_id, first_day, last_day, reps, days FROM bench_meta")
  admin=$(DATABASE_URL="$url" "$bin/fieldvisit" admin issue-token --org demo-beijing --login admin 2>&1 | grep -o 'fvt_[0-9a-f]*')
  echo "reusing $scratch: org $org, $reps reps, days $first .. $last"
else
psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $scratch WITH (FORCE)" -c "CREATE DATABASE $scratch"
DATABASE_URL="$url" "$bin/fieldvisit" migrate >/dev/null
t0=$(date +%s.%N)
DATABASE_URL="$url" "$demo" --data-dir fixtures --reps "$reps" --weeks 1 >"$work/tokens" 2>"$work/demo.log"
admin=$(awk '$1 == "demo-beijing" && $3 == "admin" {print $4}' "$work/tokens")
org=$(psql "$url" -Atc "SELECT id FROM orgs WHERE slug = 'demo-beijing'")
# The N days ending the day before the demo's first local day.
read -r first last < <(psql "$url" -AtF' ' -c "
  SELECT d - $days, d - 1 FROM (SELECT min((p.fix_time AT TIME ZONE o.timezone)::date) AS d
    FROM pings p JOIN orgs o ON o.id = p.org_id WHERE p.org_id = $org) x")
echo "demo loaded in $(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s; org $org, $reps reps, days $first .. $last (every day)"

t0=$(date +%s.%N)
psql "$url" -v ON_ERROR_STOP=1 -q <<SQL
-- One phone per rep (the demo gives each one).
CREATE TABLE bench_reps AS
SELECT (row_number() OVER (ORDER BY rep_id) - 1)::int AS k, rep_id, min(id) AS device_id
  FROM devices WHERE org_id = $org AND rep_id IS NOT NULL GROUP BY rep_id;
CREATE TABLE bench_outlets AS
SELECT (row_number() OVER (ORDER BY outlet_id) - 1)::int AS i, outlet_id, ST_Y(location) AS lat, ST_X(location) AS lon
  FROM outlet_locations WHERE org_id = $org AND valid_to IS NULL;
-- Rep k's anchor is outlet k * outlets / reps; its stops j = 0..11 are the 12 outlets nearest to it.
CREATE TABLE bench_stops AS
SELECT r.k, n.j, n.lat, n.lon
  FROM bench_reps r
  CROSS JOIN LATERAL (SELECT a.lat, a.lon FROM bench_outlets a
                       WHERE a.i = r.k * (SELECT count(*) FROM bench_outlets) / (SELECT count(*) FROM bench_reps)) a
  CROSS JOIN LATERAL (SELECT (row_number() OVER (ORDER BY d) - 1)::int AS j, lat, lon
                        FROM (SELECT o.lat, o.lon, (o.lat - a.lat) ^ 2 + ((o.lon - a.lon) * cos(radians(a.lat))) ^ 2 AS d
                                FROM bench_outlets o ORDER BY d LIMIT 12) x) n;
CREATE UNIQUE INDEX ON bench_stops (k, j);
CREATE TABLE bench_meta AS SELECT $org AS org_id, '$first'::date AS first_day, '$last'::date AS last_day,
                                  $reps AS reps, $days AS days;
-- The outlets' first location also holds for the year (the demo records them about a year back).
UPDATE outlet_locations l SET valid_from = '$first'::date - 30
 WHERE l.org_id = $org AND l.valid_from > '$first'::date - 30
   AND NOT EXISTS (SELECT 1 FROM outlet_locations e WHERE e.org_id = l.org_id AND e.outlet_id = l.outlet_id
                                                      AND e.valid_from < l.valid_from);
SELECT count(*) FROM (SELECT ensure_ping_partition(d::date)
                        FROM generate_series('$first'::date - 1, '$last'::date + 1, interval '1 day') d) x \gset
SQL
# The pings: one INSERT per day, two sessions at once (odd and even days).
insert_days() {  # $1: 0 or 1 (parity of the day's index)
  psql "$url" -v ON_ERROR_STOP=1 -q -o /dev/null <<SQL
SELECT setseed(0.28 + $1 * 0.1);
SELECT format(\$\$
INSERT INTO pings (org_id, device_id, fix_time, received_at, lat, lon, accuracy_m, source, flags)
SELECT $org, r.device_id, t.at, t.at + interval '2 s',
       CASE WHEN m < st.n THEN a.lat + (random() - 0.5) * 6 / 111320.0
            ELSE a.lat + (b.lat - a.lat) * (m - st.n + 1) / (61.0 - st.n) END,
       CASE WHEN m < st.n THEN a.lon + (random() - 0.5) * 6 / (111320.0 * cos(radians(a.lat)))
            ELSE a.lon + (b.lon - a.lon) * (m - st.n + 1) / (61.0 - st.n) END,
       8, 'import', 0
  FROM bench_reps r
  CROSS JOIN generate_series(0, 17) c
  CROSS JOIN generate_series(0, 59) m
  CROSS JOIN LATERAL (SELECT 30 + (r.k * 7 + c * 13 + %1\$s * 5) %% 21 AS n) st
  JOIN bench_stops a ON a.k = r.k AND a.j = (c + %1\$s) %% 12
  JOIN bench_stops b ON b.k = r.k AND b.j = (c + 1 + %1\$s) %% 12
  CROSS JOIN LATERAL (SELECT (('$first'::date + %1\$s + time '09:00') AT TIME ZONE o.timezone)
                             + make_interval(secs => (c * 60 + m) * 30) AS at FROM orgs o WHERE o.id = $org) t
\$\$, i) FROM generate_series($1, $days - 1, 2) i
\gexec
SQL
}
insert_days 0 & p0=$!
insert_days 1 & p1=$!
wait $p0; wait $p1
psql "$url" -qc "ANALYZE"
echo "pings generated in $(printf '%.1f' "$(echo "$(date +%s.%N) - $t0" | bc)") s (with ANALYZE): $(psql "$url" -Atc "
  SELECT to_char(count(*), 'FM999,999,999') || ' pings, database ' || pg_size_pretty(pg_database_size(current_database()))
    FROM pings WHERE org_id = $org AND source = 'import'")"
df -h / | tail -1
fi
mark_days=${mark_days:-$days}
(( mark_days >= 1 && mark_days <= days )) || { echo "--mark-days must be 1-$days" >&2; exit 2; }
mark_first=$(date -d "$last - $((mark_days - 1)) days" +%F)

export BENCH_URL="$url" BENCH_ADMIN="$admin" BENCH_ORG="$org" BENCH_FIRST="$mark_first" BENCH_LAST="$last" \
  BENCH_REPS="$reps" BENCH_DAYS="$days" BENCH_MARK_DAYS="$mark_days" BENCH_BIN="$bin" BENCH_WORK="$work" BENCH_PORT="${BENCH_PORT:-18780}"
python3 - <<'PY'
"""The measured runs: 1 instance, then 3, each from a fresh mark of the whole period."""
import json, os, subprocess, time, urllib.request

E = os.environ
URL, ADMIN, ORG = E["BENCH_URL"], E["BENCH_ADMIN"], int(E["BENCH_ORG"])
FIRST, LAST, REPS, DAYS = E["BENCH_FIRST"], E["BENCH_LAST"], int(E["BENCH_REPS"]), int(E["BENCH_DAYS"])
MARK_DAYS = int(E["BENCH_MARK_DAYS"])  # the period [FIRST, LAST] marked: the last MARK_DAYS of the DAYS loaded
BIN, WORK, PORT = E["BENCH_BIN"], E["BENCH_WORK"], int(E["BENCH_PORT"])
TCK = os.sysconf("SC_CLK_TCK")
DB = "fieldvisit_rederive"


def psql(sql):
    return subprocess.run(["psql", URL, "-Atc", sql], check=True, capture_output=True, text=True).stdout.strip()


def cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TCK  # utime, stime
    except (FileNotFoundError, ProcessLookupError):
        return None


def all_postgres_cpu():
    total = 0.0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() != "postgres":
                        continue
            except OSError:
                continue
            c = cpu_s(pid)
            total += c or 0.0
    return total


def backends():
    # The instances' connections (not this script's psql sessions).
    return [int(p) for p in psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{DB}' "
                                 "AND application_name <> 'psql'").split()]


def db_stats():
    """Transactions committed, blocks read from outside shared buffers, blocks found in them."""
    row = psql(f"SELECT xact_commit, blks_read, blks_hit FROM pg_stat_database WHERE datname = '{DB}'")
    return [int(x) for x in row.split("|")]


def api(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def metric(port, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name))


def start(n):
    procs = []
    for i in range(n):
        port = PORT + i
        env = dict(os.environ, DATABASE_URL=URL, FV_BIND=f"127.0.0.1:{port}", FV_DERIVE_SETTLE_S="0",
                   FV_RETENTION_INTERVAL_S="0", FV_LOG_FORMAT="text")
        log = open(f"{WORK}/fv{i + 1}.log", "w")
        p = subprocess.Popen([f"{BIN}/fieldvisit", "serve"], env=env, stdout=log, stderr=log)
        with open(f"{WORK}/fv{i + 1}.pid", "w") as f:
            f.write(str(p.pid))
        procs.append((port, p))
    for port, p in procs:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except OSError:
                if p.poll() is not None:
                    raise SystemExit(f"instance on {port} exited; see {WORK}/fv*.log")
                time.sleep(0.5)
        else:
            raise SystemExit(f"instance on {port} not ready")
    return procs


def stop(procs):
    for _, p in procs:
        p.terminate()
    for _, p in procs:
        p.wait(30)


def run(n):
    # The same start for both runs: no visits in the period, nothing dirty.
    psql(f"DELETE FROM visits WHERE org_id = {ORG} AND rep_day BETWEEN '{FIRST}' AND '{LAST}'")
    psql(f"DELETE FROM rep_day_dirty WHERE org_id = {ORG}")
    procs = start(n)
    for _ in range(120):  # the workers' first rounds (rule version, outlet additions) are over
        left = api(PORT, "GET", "/visits/recompute")
        if left["pending_rep_days"] == 0 and left["outlets_to_check"] == 0:
            break
        time.sleep(1)
    else:
        raise SystemExit(f"derivation backlog before the mark: {left}")
    seen = {}  # backend pid -> (cpu at first sight, cpu at last sight)
    for pid in backends():
        c = cpu_s(pid)
        if c is not None:
            seen[pid] = [c, c]
    fv0 = {p.pid: cpu_s(p.pid) for _, p in procs}
    pg_all0 = all_postgres_cpu()
    stats0 = db_stats()
    done0 = sum(metric(port, 'fieldvisit_rep_days_derived_total{outcome="done"}') for port, _ in procs)
    t0 = time.monotonic()
    marked = api(PORT, "POST", "/visits/recompute", {"from": FIRST, "to": LAST})["rep_days"]
    t_mark = time.monotonic() - t0
    polls = 0
    while True:
        for pid in backends():
            c = cpu_s(pid)
            if c is not None:
                seen.setdefault(pid, [0.0, 0.0])[1] = c  # a backend new since the start: all its CPU
        pending = api(PORT + polls % n, "GET", "/visits/recompute")["pending_rep_days"]
        polls += 1
        if pending == 0:
            break
        time.sleep(1)
    wall = time.monotonic() - t0
    fv_cpu = sum(cpu_s(p.pid) - fv0[p.pid] for _, p in procs)
    for pid in backends():
        c = cpu_s(pid)
        if c is not None and pid in seen:
            seen[pid][1] = c
    pg_cpu = sum(b - a for a, b in seen.values())
    pg_all = all_postgres_cpu() - pg_all0
    time.sleep(1.5)  # backends report their counters at most once a second
    stats = [b - a for a, b in zip(stats0, db_stats())]
    done = sum(metric(port, 'fieldvisit_rep_days_derived_total{outcome="done"}') for port, _ in procs) - done0
    other = {o: sum(metric(port, f'fieldvisit_rep_days_derived_total{{outcome="{o}"}}') for port, _ in procs)
             for o in ("changed_meanwhile", "error", "panic")}
    visits = int(psql(f"SELECT count(*) FROM visits WHERE org_id = {ORG} AND rep_day BETWEEN '{FIRST}' AND '{LAST}'"))
    days_with = int(psql(f"SELECT count(DISTINCT (rep_id, rep_day)) FROM visits WHERE org_id = {ORG} "
                         f"AND rep_day BETWEEN '{FIRST}' AND '{LAST}'"))
    stop(procs)
    per = 1000 / max(marked, 1)
    print(f"\n{n} instance(s): {marked:,} rep-days marked in {t_mark:.1f} s; derived ({done:,.0f} by the workers' "
          f"counters, other outcomes {other}) in {wall:.1f} s wall from the mark = {marked / wall:,.1f} rep-days/s; "
          f"{visits:,} visits ({visits / max(marked, 1):.1f} per rep-day, {days_with:,} rep-days with visits)")
    print(f"  per rep-day: wall {wall * per:.2f} ms; CPU fieldvisit {fv_cpu * per:.2f} ms, PostgreSQL backends "
          f"of the database {pg_cpu * per:.2f} ms ({len(seen)} backends), every postgres process "
          f"{pg_all * per:.2f} ms; cores busy {(fv_cpu + pg_all) / wall:.2f} of {os.cpu_count()}")
    print(f"  per rep-day: {stats[0] / max(marked, 1):.1f} transactions committed in the database, "
          f"{stats[1] / max(marked, 1):.1f} blocks read into shared buffers, {stats[2] / max(marked, 1):.0f} found there")
    return dict(n=n, marked=marked, wall=wall, t_mark=t_mark, visits=visits, fv=fv_cpu, pg=pg_cpu, pg_all=pg_all,
                xact=stats[0] / max(marked, 1), blks_read=stats[1] / max(marked, 1))


GROUP = 16  # the worker's group of rep-days (derive::GROUP_SIZE)


def statements(sample=6):
    """PostgreSQL's planning + execution time of each read of a group of rep-days (`derive_days`'s
    SQL: day bounds, fixes, candidate outlets probed with the boxes of those fixes, photos, accepted
    check-in claims), by EXPLAIN ANALYZE of prepared statements (as the server runs them) over
    `sample` random groups of GROUP consecutive days of one rep of the period (the worker claims in
    rep, day order); per rep-day = per group / GROUP."""
    n = min(GROUP, MARK_DAYS)
    cand = open("src/db/sql/visit_candidates.sql").read()
    script = ["\\set ON_ERROR_STOP 1", "SELECT setseed(0.5);",
              "PREPARE bounds(bigint, date[]) AS SELECT (d.day::timestamp AT TIME ZONE o.timezone), "
              "((d.day + 1)::timestamp AT TIME ZONE o.timezone) FROM unnest($2::date[]) WITH ORDINALITY AS d(day, k) "
              "JOIN orgs o ON o.id = $1 ORDER BY d.k;",
              "PREPARE fixes(bigint, bigint[], timestamptz[], timestamptz[]) AS SELECT r.k::int, p.fix_time, "
              "p.received_at, p.lat, p.lon, p.accuracy_m, p.mock, p.flags FROM unnest($2::bigint[], $3::timestamptz[], "
              "$4::timestamptz[]) WITH ORDINALITY AS r(rep, f, t, k) CROSS JOIN LATERAL (SELECT p.fix_time, p.received_at, "
              "p.lat, p.lon, p.accuracy_m, p.mock, p.flags FROM pings p WHERE p.org_id = $1 AND p.fix_time >= r.f "
              "AND p.fix_time < r.t AND p.device_id IN (SELECT id FROM devices WHERE org_id = $1 AND rep_id = r.rep) "
              "OFFSET 0) p;",
              f"PREPARE cand(bigint, float8[], float8[], float8[], float8[], int[], timestamptz[], timestamptz[], float8, "
              f"int) AS {cand.strip().rstrip(';')};",
              "PREPARE photos(bigint, bigint[], date[]) AS SELECT r.k::int AS k, p.id, p.outlet_id, p.visit_arrival, "
              "p.taken_at, p.exif_lat, p.exif_lon, p.reused_photo_id, p.capture_at, p.capture_lat, p.capture_lon, "
              "p.capture_accuracy_m FROM unnest($2::bigint[], $3::date[]) WITH ORDINALITY AS r(rep, day, k) "
              "JOIN photos p ON p.org_id = $1 AND p.rep_id = r.rep AND p.rep_day = r.day ORDER BY r.k, p.id;",
              "PREPARE claims(bigint, bigint[], timestamptz[], timestamptz[]) AS SELECT r.k::int AS k, c.* "
              "FROM unnest($2::bigint[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS r(rep, f, t, k) "
              "JOIN checkins c ON c.org_id = $1 AND c.rep_id = r.rep AND c.checked_in_at >= r.f "
              "AND c.checked_in_at < r.t WHERE c.claim_decision = 'accepted' ORDER BY r.k, c.checked_in_at, c.id;"]
    groups = psql(f"SELECT r.rep_id || ' ' || d::date FROM bench_reps r, generate_series('{FIRST}'::date, "
                  f"'{LAST}'::date - {n - 1}, interval '1 day') d "
                  f"ORDER BY hashtext(r.rep_id || ' ' || d::date) LIMIT {sample}").split("\n")
    names = ["day bounds", "fixes", "candidate outlets", "photos", "check-in claims"]
    for g in groups:
        rep, day = g.split()
        script += [f"SELECT array_agg(('{day}'::date + i)::date ORDER BY i) AS days, "
                   f"array_fill({rep}::bigint, ARRAY[{n}]) AS reps FROM generate_series(0, {n - 1}) i \\gset",
                   f"SELECT array_agg((d::timestamp AT TIME ZONE o.timezone) ORDER BY d) AS f, "
                   f"array_agg(((d + 1)::timestamp AT TIME ZONE o.timezone) ORDER BY d) AS t "
                   f"FROM unnest(:'days'::date[]) d, orgs o WHERE o.id = {ORG} \\gset",
                   # The boxes the worker computes from the fixes (domain::visit::track_boxes).
                   "SELECT array_agg(x0 ORDER BY k, cx, cy) AS x0, array_agg(y0 ORDER BY k, cx, cy) AS y0, "
                   "array_agg(x1 ORDER BY k, cx, cy) AS x1, array_agg(y1 ORDER BY k, cx, cy) AS y1, "
                   "array_agg(k ORDER BY k, cx, cy) AS k FROM (SELECT r.k::int AS k, floor(p.lon / 0.002) AS cx, "
                   "floor(p.lat / 0.002) AS cy, min(p.lon) AS x0, min(p.lat) AS y0, max(p.lon) AS x1, max(p.lat) AS y1 "
                   "FROM unnest(:'reps'::bigint[], :'f'::timestamptz[], :'t'::timestamptz[]) WITH ORDINALITY AS r(rep, f, t, k) "
                   f"CROSS JOIN LATERAL (SELECT p.lat, p.lon FROM pings p WHERE p.org_id = {ORG} AND p.fix_time >= r.f "
                   f"AND p.fix_time < r.t AND p.device_id IN (SELECT id FROM devices WHERE org_id = {ORG} "
                   "AND rep_id = r.rep) OFFSET 0) p GROUP BY 1, 2, 3) b \\gset",
                   f"EXPLAIN (ANALYZE, TIMING OFF) EXECUTE bounds({ORG}, :'days');",
                   "SET plan_cache_mode = force_generic_plan;",  # as the server runs the fixes read
                   f"EXPLAIN (ANALYZE, TIMING OFF) EXECUTE fixes({ORG}, :'reps', :'f', :'t');",
                   "RESET plan_cache_mode;",
                   f"EXPLAIN (ANALYZE, TIMING OFF) EXECUTE cand({ORG}, :'x0', :'y0', :'x1', :'y1', :'k', :'f', :'t', 50, 7);",
                   f"EXPLAIN (ANALYZE, TIMING OFF) EXECUTE photos({ORG}, :'reps', :'days');",
                   f"EXPLAIN (ANALYZE, TIMING OFF) EXECUTE claims({ORG}, :'reps', :'f', :'t');"]
    out = subprocess.run(["psql", URL, "-Atq"], input="\n".join(script), check=True, capture_output=True,
                         text=True).stdout
    ms, planning = [], 0.0  # each EXPLAIN's planning time (when it planned) + execution time
    for line in out.splitlines():
        if line.startswith("Planning Time:"):
            planning += float(line.split(":")[1].split()[0])
        elif line.startswith("Execution Time:"):
            ms.append(planning + float(line.split(":")[1].split()[0]))
            planning = 0.0
    assert len(ms) == len(names) * len(groups), (len(ms), out[-500:])
    means = {n: sum(ms[i::len(names)]) / len(groups) for i, n in enumerate(names)}
    print(f"\nPostgreSQL planning + execution time of the worker's reads of a group of {n} rep-days, mean over "
          f"{len(groups)} random groups (EXPLAIN ANALYZE, one at a time, no concurrency; not the rows' transfer): "
          + ", ".join(f"{k} {v:.2f} ms" for k, v in means.items())
          + f"; all five {sum(means.values()):.2f} ms a group = {sum(means.values()) / n:.3f} ms a rep-day")
    means = {f"{k} (a group of {n})": v for k, v in means.items()}
    # The worker's round also runs mark_outlet_additions (before each claim of 48 rep-days), even
    # with nothing queued: timed the same way, three times, in a transaction rolled back.
    adds = open("src/db/sql/mark_outlet_additions.sql").read().strip().rstrip(";")
    script = ["\\set ON_ERROR_STOP 1", f"PREPARE adds(bigint, float8, int) AS {adds};"]
    for _ in range(3):
        script += ["BEGIN;", "EXPLAIN (ANALYZE, TIMING OFF) EXECUTE adds(10000, 50, 7);", "ROLLBACK;"]
    out = subprocess.run(["psql", URL, "-Atq"], input="\n".join(script), check=True, capture_output=True,
                         text=True).stdout
    t = [float(l.split(":")[1].split()[0]) for l in out.splitlines() if l.startswith(("Execution Time:", "Planning Time:"))]
    means["queued outlet additions, once per round of 48 (none queued)"] = sum(t) / 3
    return means


rows = [run(1), run(3)]
reads = statements()
cmd = (f"`DATABASE_URL=$(scripts/db.sh url) benches/rederive.sh --reps {REPS} --days {DAYS}"
       + (f" --mark-days {MARK_DAYS}" if MARK_DAYS != DAYS else "") + "`")
span = f"{REPS} reps x {DAYS} days" + (f" loaded, the last {MARK_DAYS} marked" if MARK_DAYS != DAYS else "")
print("\n| feature | ours | peer | ratio | command |\n|---|---|---|---|---|")
for r in rows:
    per = 1000 / max(r["marked"], 1)
    inst = "1 instance" if r["n"] == 1 else f"{r['n']} instances on the same database"
    print(f"| whole-org re-derivation (issue 28), {span}, 1,080 pings a rep-day, "
          f"{inst} (goal >= 1,000 rep-days/s) | {r['marked'] / r['wall']:,.1f} rep-days/s: {r['marked']:,} rep-days "
          f"in {r['wall']:.1f} s from the mark (the mark itself {r['t_mark']:.1f} s), {r['visits']:,} visits; per "
          f"rep-day {r['wall'] * per:.1f} ms wall, CPU {r['fv'] * per:.1f} ms fieldvisit + {r['pg'] * per:.1f} ms "
          f"PostgreSQL backends ({r['pg_all'] * per:.1f} ms every postgres process), {r['xact']:.1f} transactions "
          f"and {r['blks_read']:.0f} blocks read from outside shared buffers | - | "
          f"{r['marked'] / r['wall'] / 1000:.3f}x the goal | {cmd} |")
print(f"| whole-org re-derivation (issue 28), where PostgreSQL's time goes: the worker's reads of a group of rep-days, "
      f"{REPS} reps x {DAYS} days loaded | " + ", ".join(f"{n} {v:.2f} ms" for n, v in reads.items())
      + " (EXPLAIN ANALYZE, mean of 6 random groups of 16 days of a rep, one at a time, the server otherwise idle) | - | - | "
      + cmd + " |")
PY
