#!/usr/bin/env python3
"""The failover test on the local HA topology (scripts/cluster.sh; docs/testing.md).

During sustained ingest through haproxy from several simulated phones walking between outlets:
1. the whole primary node is SIGKILLed (its Patroni agent and every postgres process: a lost
   machine). Asserted: a new leader on a higher timeline; ingest answers 2xx again; every non-2xx
   answer was 503 with Retry-After; every acknowledged ping is in the database; the visits derived
   equal those of a single-node run (one instance on the project-local PostgreSQL of `make db`, a
   fresh database) over the same pings;
2. one fieldvisit instance is SIGKILLed under load: again no acknowledged ping lost.
Prints the failover time (kill -> first acknowledged ping sent after it) with Patroni's ttl and
loop_wait. Python 3 standard library only; psql from PostgreSQL 15. Exits 1 on a failed assertion.

Environment: FV_BIN (the fieldvisit binary; default target/debug/fieldvisit), FV_CLUSTER_KEEP=1
(leave the cluster up afterwards, to look at it; by default the test takes it down: it
killed a node and an instance).
"""

import http.client
import json
import math
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(ROOT, "scripts", "cluster.sh")
PSQL = "/usr/lib/postgresql/15/bin/psql"
DEFAULT_BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "debug", "fieldvisit")
FV_BIN = os.environ.get("FV_BIN", DEFAULT_BIN)
HTTP = ("127.0.0.1", 18080)
WRITE_URL = "postgres://postgres@127.0.0.1:15440/fieldvisit"
REST_PORTS = {"node1": 18441, "node2": 18442, "node3": 18443}
SINGLE_PORT = 18090
SINGLE_DB = "fieldvisit_cluster_single"

PHONES = 6
FIX_EVERY_S = 5  # simulated seconds between two fixes of a phone
BATCH = 2  # fixes per request
REQUEST_GAP_S = 0.1  # wall seconds between a phone's requests
STAY_S = 8 * 60  # simulated dwell at each outlet (the tier minimum is 5 min)
OUTLET_SPACING_M = 600
WALK_MPS = 1.4
OUTLETS_PER_PHONE = 4
RETRY_CAP_S = 1.0
HAPROXY_503 = b"no server instance is available"  # the detail of haproxy's own 503 (scripts/cluster.sh)  # Retry-After is honoured up to this, to time the failover to about a second

WARMUP_S = 8
AFTER_RECOVERY_S = 8
AFTER_INSTANCE_KILL_S = 10
PROMOTION_TIMEOUT_S = 60
RECOVERY_TIMEOUT_S = 60
DERIVE_TIMEOUT_S = 120


class Failed(Exception):
    pass


def log(msg):
    print(f"[cluster-test {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise Failed(msg)


def run(cmd, env=None, capture=True):
    full = dict(os.environ)
    full.update(env or {})
    r = subprocess.run(cmd, env=full, cwd=ROOT, text=True, capture_output=capture)
    if r.returncode != 0:
        raise Failed(f"{' '.join(cmd)} exited {r.returncode}: {(r.stderr or '')[-2000:]}")
    return r.stdout


def psql(url, sql):
    out = run([PSQL, "-X", "-q", "-tA", "-F", "\t", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
    return [line.split("\t") for line in out.splitlines() if line]


def rest(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return json.loads(r.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def cluster_members(skip=()):
    for name, port in REST_PORTS.items():
        if name in skip:
            continue
        c = rest(port, "/cluster")
        if c:
            return c["members"]
    return None


def leader(skip=()):
    members = cluster_members(skip) or []
    for m in members:
        if m["role"] == "leader" and m["state"] == "running":
            return m["name"], int(m.get("timeline") or 0)
    return None, 0


# ---------------------------------------------------------------------------------------------
# The world: an org, reps with a phone each, outlets along each rep's walk.


def offset(lat, lon, north_m, east_m):
    return lat + north_m / 111_320.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat)))


class World:
    """Created identically on the cluster and on the single node (ids differ; logins and codes not)."""

    def __init__(self, slug):
        self.slug = slug
        self.outlets = []  # (code, lat, lon)
        self.routes = {}  # rep login -> [(lat, lon)] of its outlets
        for p in range(PHONES):
            base = offset(39.90, 116.30, p * 2_000, 0)
            stops = []
            for k in range(OUTLETS_PER_PHONE):
                lat, lon = offset(base[0], base[1], 0, k * OUTLET_SPACING_M)
                self.outlets.append((f"FO-{p}-{k}", lat, lon))
                stops.append((lat, lon))
            self.routes[f"rep{p}"] = stops

    def create(self, database_url, base_url):
        env = {"DATABASE_URL": database_url}
        run([FV_BIN, "admin", "create-org", "--slug", self.slug, "--name", "Failover test"], env)
        out = run([FV_BIN, "admin", "create-user", "--org", self.slug, "--login", "admin", "--name", "Admin",
                   "--role", "admin"], env)
        admin_token = out.split(" token ")[1].split()[0]
        devices = {}
        for login in self.routes:
            run([FV_BIN, "admin", "create-user", "--org", self.slug, "--login", login, "--name", login.upper(),
                 "--role", "rep"], env)
            out = run([FV_BIN, "admin", "create-device", "--org", self.slug, "--rep", login, "--name",
                       f"phone-{login}"], env)
            # "device 1 for rep1: token fvt_... osmand_id ..."
            device_id = int(out.split()[1])
            token = out.split(" token ")[1].split()[0]
            devices[login] = (device_id, token)
        # A district round the walks, holding the outlets: it has coverage figures to read.
        ring = [[116.25, 39.75], [116.45, 39.75], [116.45, 40.05], [116.25, 40.05], [116.25, 39.75]]
        status, _, body = request(base_url, "POST", "/api/v1/territories", admin_token, {
            "code": "FT-1", "name": "Failover district", "level": "district",
            "boundary": {"type": "Polygon", "coordinates": [ring]}})
        check(status == 201, f"creating the territory: {status} {body[:300]}")
        self.territory = json.loads(body)["id"]
        for code, lat, lon in self.outlets:
            status, _, body = request(base_url, "POST", "/api/v1/outlets", admin_token, {
                "code": code, "name": f"Outlet {code}", "channel_type": "agent_point", "tier": "B",
                "lat": lat, "lon": lon, "territory_id": self.territory})
            check(status == 201, f"creating outlet {code}: {status} {body[:300]}")
        org_id = int(psql(database_url, f"SELECT id FROM orgs WHERE slug = '{self.slug}'")[0][0])
        return org_id, admin_token, devices


def request(base, method, path, token, payload):
    host, port = base
    c = http.client.HTTPConnection(host, port, timeout=30)
    try:
        c.request(method, path, body=None if payload is None else json.dumps(payload), headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace")
    finally:
        c.close()


def walk(stops, start, seed):
    """Endless fixes of a rep walking to and fro between its outlets, staying STAY_S at each."""
    rnd = random.Random(seed)
    t = start
    order = list(range(len(stops))) + list(range(len(stops) - 2, 0, -1))
    i = 0
    while True:
        here = stops[order[i % len(order)]]
        there = stops[order[(i + 1) % len(order)]]
        end = t + timedelta(seconds=STAY_S)
        while t < end:
            lat, lon = offset(here[0], here[1], rnd.uniform(-8, 8), rnd.uniform(-8, 8))
            yield fix(t, lat, lon, rnd)
            t += timedelta(seconds=FIX_EVERY_S)
        dist_n = (there[0] - here[0]) * 111_320.0
        dist_e = (there[1] - here[1]) * 111_320.0 * math.cos(math.radians(here[0]))
        dist = math.hypot(dist_n, dist_e)
        steps = max(1, int(dist / WALK_MPS / FIX_EVERY_S))
        for s in range(1, steps):
            f = s / steps
            lat, lon = offset(here[0], here[1], dist_n * f + rnd.uniform(-3, 3), dist_e * f + rnd.uniform(-3, 3))
            yield fix(t, lat, lon, rnd)
            t += timedelta(seconds=FIX_EVERY_S)
        i += 1


def fix(t, lat, lon, rnd):
    return {"fix_time": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "lat": round(lat, 7), "lon": round(lon, 7),
            "accuracy_m": rnd.choice([4, 5, 6, 8, 10, 12, 15]), "speed_mps": 0}


def epoch_s(fix_time):
    return int(datetime.strptime(fix_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


# ---------------------------------------------------------------------------------------------
# Simulated phones.


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.answers = []  # (sent_at, answered_at, status, has_retry_after, pings, from_haproxy)
        self.errors = []  # (sent_at, what): connection failures, no HTTP answer at all
        self.acked = {}  # login -> [fix]

    def answer(self, sent, status, retry_after, n, from_haproxy):
        with self.lock:
            self.answers.append((sent, time.monotonic(), status, retry_after, n, from_haproxy))

    def statuses(self, since=0.0):
        out = {}
        with self.lock:
            for sent, _, status, _, _, proxy in self.answers:
                if sent >= since:
                    key = f"{status} (haproxy)" if proxy else str(status)
                    out[key] = out.get(key, 0) + 1
        return out

    def first_ack_sent_after(self, t):
        with self.lock:
            acks = [(a, s) for s, a, st, _, _, _ in self.answers if s >= t and 200 <= st < 300]
        return min(acks)[0] if acks else None


class Phone(threading.Thread):
    def __init__(self, login, token, fixes, stats, stop, batch=BATCH, gap_s=REQUEST_GAP_S, target=HTTP):
        super().__init__(daemon=True)
        self.login, self.token, self.fixes, self.stats, self.stop = login, token, fixes, stats, stop
        self.batch, self.gap_s, self.target = batch, gap_s, target
        self.conn = None
        self.acked = []
        self.failure = None

    def post(self, batch):
        """Posts until acknowledged (as a phone does); False when stopped first."""
        while True:
            sent = time.monotonic()
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(*self.target, timeout=30)
                self.conn.request("POST", "/api/v1/pings", body=json.dumps(batch), headers={
                    "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
                r = self.conn.getresponse()
                body = r.read()
                retry_after = r.getheader("Retry-After")
                self.stats.answer(sent, r.status, retry_after is not None, len(batch), HAPROXY_503 in body)
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                if 200 <= r.status < 300:
                    reply = json.loads(body)
                    if reply.get("rejected"):
                        self.failure = f"{self.login}: pings rejected: {reply['rejected']}"
                    return True
                wait = min(float(retry_after), RETRY_CAP_S) if retry_after and retry_after.isdigit() else 0.5
            except (OSError, http.client.HTTPException) as e:
                with self.stats.lock:
                    self.stats.errors.append((sent, f"{type(e).__name__}: {e}"))
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                wait = 0.5
            if self.stop.is_set() and time.monotonic() > self.stop.deadline:
                return False
            time.sleep(wait)

    def run(self):
        try:
            while not self.stop.is_set():
                batch = [next(self.fixes) for _ in range(self.batch)]
                if not self.post(batch):
                    break
                self.acked.extend(batch)
                if self.gap_s:
                    time.sleep(self.gap_s)
        except Exception as e:  # a bug of the test itself: reported, not hidden
            self.failure = f"{self.login}: {type(e).__name__}: {e}"


# ---------------------------------------------------------------------------------------------
# Checks.


def stored_pings(url, org_id):
    rows = psql(url, f"SELECT device_id, extract(epoch FROM fix_time)::bigint FROM pings WHERE org_id = {org_id}")
    return {(int(d), int(t)) for d, t in rows}


def check_acked_stored(url, org_id, devices, phones, what):
    acked = {(devices[p.login][0], epoch_s(f["fix_time"])) for p in phones for f in list(p.acked)}
    stored = stored_pings(url, org_id)
    lost = acked - stored
    check(not lost, f"{what}: {len(lost)} of {len(acked)} acknowledged pings are not in the database, "
                    f"e.g. {sorted(lost)[:5]}")
    log(f"{what}: all {len(acked)} acknowledged pings are in the database ({len(stored)} stored)")
    return acked, stored


VISITS_SQL = """
SELECT u.login, o.code, v.rep_day, extract(epoch FROM v.arrival)::bigint, extract(epoch FROM v.departure)::bigint,
       v.dwell_s, v.verdict, v.risk_score, v.ping_count
FROM visits v JOIN users u ON u.org_id = v.org_id AND u.id = v.rep_id
JOIN outlets o ON o.org_id = v.org_id AND o.id = v.outlet_id
WHERE v.org_id = {org} ORDER BY 1, 4, 2"""


def haproxy_retries():
    """haproxy's retries and redispatches to another instance (backend fv)."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:18079/;csv", timeout=2) as r:
            lines = r.read().decode().splitlines()
    except (OSError, urllib.error.URLError):
        return "?"
    head = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(head, line.split(",")))
        if row.get("pxname") == "fv" and row.get("svname") == "BACKEND":
            return f"{row.get('wretr')} retried, {row.get('wredis')} redispatched"
    return "?"


def settled_visits(url, org_id, what):
    """The org's visits once derivation is idle: no dirty rep-day, same visits on two reads."""
    deadline = time.monotonic() + DERIVE_TIMEOUT_S
    previous = None
    while True:
        dirty = int(psql(url, f"SELECT count(*) FROM rep_day_dirty WHERE org_id = {org_id}")[0][0])
        visits = psql(url, VISITS_SQL.format(org=org_id)) if dirty == 0 else None
        if visits is not None and visits == previous:
            return [tuple(v) for v in visits]
        previous = visits
        check(time.monotonic() < deadline, f"{what}: derivation not idle after {DERIVE_TIMEOUT_S}s ({dirty} dirty rep-days)")
        time.sleep(2)


def check_answers(stats, what, since=0.0):
    bad = []
    with stats.lock:
        for sent, _, status, has_ra, _, _ in stats.answers:
            if sent < since:
                continue
            if not (200 <= status < 300) and not (status == 503 and has_ra):
                bad.append((status, has_ra))
        errors = [e for s, e in stats.errors if s >= since]
    summary = {}
    for status, has_ra in bad:
        key = f"{status}{'' if has_ra else ' without Retry-After'}"
        summary[key] = summary.get(key, 0) + 1
    check(not bad, f"{what}: answers other than 2xx or 503 + Retry-After: {summary}")
    check(not errors, f"{what}: {len(errors)} requests got no HTTP answer, e.g. {errors[:3]}")


# ---------------------------------------------------------------------------------------------
# The single-node run over the same pings.


def instance(n):
    return ("127.0.0.1", 18080 + n)


def within_path(lat, lon):
    return f"/api/v1/outlets/within?lat={lat}&lon={lon}&radius_m=50"


def metric(n, name):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{18080 + n}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " ") or line.startswith(name + "{"):
                    return line.rsplit(" ", 1)[1]
    except (OSError, urllib.error.URLError):
        pass
    return "?"


def check_listeners(world, token, devices, phones, live):
    """The instances that lived through the failover LISTEN again: an outlet created now reaches
    each one's outlet index, and each one's live positions show every phone's last acknowledged fix."""
    lat, lon = offset(39.90, 116.30, -10_000, 0)  # far from every walk: no visit can change
    code = f"FO-after-{secrets.token_hex(2)}"
    status, _, body = request(HTTP, "POST", "/api/v1/outlets", token, {
        "code": code, "name": "After the failover", "channel_type": "agent_point", "tier": "B", "lat": lat, "lon": lon})
    check(status == 201, f"creating outlet {code}: {status} {body[:300]}")
    last = {devices[p.login][0]: max(epoch_s(f["fix_time"]) for f in p.acked) for p in phones if p.acked}
    deadline = time.monotonic() + 20
    for n in live:
        while True:
            _, _, found = request(instance(n), "GET", within_path(lat, lon), token, None)
            status, _, body = request(instance(n), "GET", "/api/v1/live/positions", token, None)
            known = {}
            if status == 200:
                for pos in json.loads(body):
                    t = datetime.fromisoformat(pos["fix_time"].replace("Z", "+00:00"))
                    known[pos["device_id"]] = int(t.timestamp())
            behind = {d: (known.get(d), t) for d, t in last.items() if known.get(d) != t}
            if code in found and not behind:
                break
            check(time.monotonic() < deadline,
                  f"instance {n} after the failover: " + ("" if code in found else f"its outlet index lacks {code} created "
                  "through another instance; ") + (f"its live positions lag (device: (known, last acknowledged)) {behind}"
                                                     if behind else ""))
            time.sleep(0.5)
    return ", ".join(f"fv{n}: index resyncs {metric(n, 'fieldvisit_index_resyncs_total')}, "
                     f"listening {metric(n, 'fieldvisit_index_listening')}" for n in live)


READ_REF_PORT = 18091


def check_read_pool(token, territory, live):
    """The instances' read pool (FV_READ_DATABASE_URL = haproxy's read port) runs on a standby:
    each reports it in /metrics, the standbys hold its connections (pg_is_in_recovery() there),
    and the outlet layer and the coverage layer read through it equal, once caught up, what a
    server reading only the primary answers."""
    deadline = time.monotonic() + 30
    for n in live:
        while not (metric(n, "fieldvisit_read_pool_on_standby") == "1"
                   and metric(n, "fieldvisit_read_pool_staleness_ms") not in ("?", "-1")):
            check(time.monotonic() < deadline,
                  f"instance {n}: the read pool is not on a standby: on_standby "
                  f"{metric(n, 'fieldvisit_read_pool_on_standby')}, staleness "
                  f"{metric(n, 'fieldvisit_read_pool_staleness_ms')} ms")
            time.sleep(0.5)
    standbys = [m for m in cluster_members() or [] if m["role"] in ("replica", "sync_standby")]
    check(standbys, f"no standby to read from: {cluster_members()}")
    held = {}
    for m in standbys:
        rows = psql(f"postgres://postgres@127.0.0.1:{m['port']}/fieldvisit",
                    "SELECT pg_is_in_recovery(), count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'fieldvisit reads'")
        check(rows[0][0] == "t", f"{m['name']} is not in recovery")
        held[m["name"]] = int(rows[0][1])
    check(sum(held.values()) > 0, f"no read pool connection on a standby: {held}")
    day = (datetime.now(timezone.utc) - timedelta(days=1)).date()
    period = f"from={day - timedelta(days=1)}&to={day + timedelta(days=1)}"
    # The outlets were recorded today, after yesterday's visits, and coverage counts the outlets
    # standing at the period's start: the district's figures of tomorrow count them.
    tomorrow = datetime.now(timezone.utc).date() + timedelta(days=1)
    # The outlet status answers each outlet's valid visits and last valid visit from the instance's
    # visit ledger (kept in memory and brought up to date from `visit_outlet_changes` before each
    # use): through the survivors, whose ledgers lived through the failover and the re-derivation,
    # it must equal what a fresh server's ledger, loaded whole from the primary, answers.
    paths = [f"/api/v1/layers/outlets?{period}",
             f"/api/v1/territories/{territory}/coverage?from={tomorrow}&to={tomorrow}",
             f"/api/v1/territories/{territory}/outlet-status?{period}"]
    logf = open(os.path.join(ROOT, ".cluster", "primary-reader.log"), "w")
    ref = subprocess.Popen([FV_BIN, "serve"], cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT, env={
        **{k: v for k, v in os.environ.items() if k != "FV_READ_DATABASE_URL"},
        "DATABASE_URL": WRITE_URL, "FV_BIND": f"127.0.0.1:{READ_REF_PORT}", "FV_DERIVE_VISITS": "false",
        "FV_RETENTION_INTERVAL_S": "0"})
    try:
        wait_ready(f"http://127.0.0.1:{READ_REF_PORT}/readyz", 60, "the primary-only reader")
        for path in paths:
            want_status, _, want = request(("127.0.0.1", READ_REF_PORT), "GET", path, token, None)
            check(want_status == 200, f"primary-only reader: {path}: {want_status} {want[:300]}")
            answer = json.loads(want)
            check(answer.get("features", True), f"{path}: the primary answers no feature")
            if "/coverage?" in path:
                check(answer["outlets"]["active_outlets"] > 0, f"{path}: the primary counts no outlet: {want[:400]}")
            if "/outlet-status?" in path:
                check(any(o["valid_visits"] > 0 and o["last_valid_visit"] for o in answer["outlets"]),
                      f"{path}: the primary's ledger holds no valid visit: {want[:400]}")
            for n in live:
                deadline = time.monotonic() + 20
                while True:
                    status, _, got = request(instance(n), "GET", path, token, None)
                    if status == 200 and json.loads(got) == json.loads(want):
                        break
                    check(time.monotonic() < deadline,
                          f"instance {n}: {path} through the read pool ({status}) differs from the primary's")
                    time.sleep(0.5)
    finally:
        ref.send_signal(signal.SIGTERM)
        try:
            ref.wait(20)
        except subprocess.TimeoutExpired:
            ref.kill()
    return (f"read connections on standbys {held}; outlet and coverage layers and the outlet status (visit "
            f"ledger) equal the primary's on "
            + ", ".join(f"fv{n} (staleness {metric(n, 'fieldvisit_read_pool_staleness_ms')} ms)" for n in live))


def single_node_visits(world, phones):
    base_url = run([os.path.join(ROOT, "scripts", "db.sh"), "url"]).strip()
    admin_url = replace_db(base_url, "postgres")
    url = replace_db(base_url, SINGLE_DB)
    psql(admin_url, f'DROP DATABASE IF EXISTS "{SINGLE_DB}" WITH (FORCE)')
    psql(admin_url, f'CREATE DATABASE "{SINGLE_DB}"')
    server = None
    try:
        run([FV_BIN, "migrate"], {"DATABASE_URL": url})
        logf = open(os.path.join(ROOT, ".cluster", "single-node.log"), "w")
        server = subprocess.Popen([FV_BIN, "serve"], cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT, env={
            **os.environ, "DATABASE_URL": url, "FV_BIND": f"127.0.0.1:{SINGLE_PORT}",
            "FV_DERIVE_SETTLE_S": "2", "FV_MAP_UI_DIR": os.path.join(ROOT, "map-ui", "dist")})
        wait_ready(f"http://127.0.0.1:{SINGLE_PORT}/readyz", 60, "the single-node server")
        org_id, _, devices = world.create(url, ("127.0.0.1", SINGLE_PORT))
        for p in phones:
            _, token = devices[p.login]
            for i in range(0, len(p.acked), 500):
                status, _, body = request(("127.0.0.1", SINGLE_PORT), "POST", "/api/v1/pings", token, p.acked[i:i + 500])
                check(status == 200, f"single node: posting pings answered {status}: {body[:300]}")
        return settled_visits(url, org_id, "single node")
    finally:
        if server:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        psql(admin_url, f'DROP DATABASE IF EXISTS "{SINGLE_DB}" WITH (FORCE)')


def replace_db(url, name):
    head, _, tail = url.partition("?")
    head = head.rsplit("/", 1)[0] + "/" + name
    return head + ("?" + tail if tail else "")


def wait_ready(url, secs, what):
    deadline = time.monotonic() + secs
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        check(time.monotonic() < deadline, f"{what} not ready after {secs}s")
        time.sleep(0.3)


# ---------------------------------------------------------------------------------------------


def main():
    t0 = time.monotonic()
    check(os.access(FV_BIN, os.X_OK) or FV_BIN == DEFAULT_BIN, f"FV_BIN={FV_BIN} is not an executable")
    log("scripts/cluster.sh up")
    run([CLUSTER, "up"], {"FV_BIN": FV_BIN}, capture=False)
    up_s = time.monotonic() - t0
    config = rest(REST_PORTS[leader()[0]], "/config") or {}
    ttl, loop_wait, retry_timeout = config.get("ttl"), config.get("loop_wait"), config.get("retry_timeout")

    world = World(f"failover-{secrets.token_hex(3)}")
    org_id, admin_token, devices = world.create(WRITE_URL, HTTP)
    territory = world.territory
    # Each instance loads the org's outlet index now, so that it has one to keep coherent.
    first = world.outlets[0]
    for n in (1, 2, 3):
        status, _, body = request(instance(n), "GET", within_path(first[1], first[2]), admin_token, None)
        check(status == 200 and first[0] in body, f"instance {n}: outlets within: {status} {body[:300]}")
    log(f"org {world.slug} (id {org_id}): {PHONES} reps with a phone, {len(world.outlets)} outlets")

    stats = Stats()
    stop = threading.Event()
    stop.deadline = float("inf")
    start = (datetime.now(timezone.utc) - timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
    phones = [Phone(login, devices[login][1], walk(stops, start, i), stats, stop)
              for i, (login, stops) in enumerate(world.routes.items())]
    for p in phones:
        p.start()
    failure = None
    try:
        time.sleep(WARMUP_S)
        check(stats.first_ack_sent_after(0) is not None, "no ping acknowledged before the failover")
        old_leader, old_tl = leader()
        check(old_leader, "no leader before the failover")
        log(f"killing the primary node {old_leader} (timeline {old_tl}): SIGKILL to Patroni and every postgres process")
        run([CLUSTER, "kill-node", old_leader])
        t_kill = time.monotonic()

        # A promotion: a new leader on a higher timeline.
        while True:
            new_leader, new_tl = leader(skip=(old_leader,))
            if new_leader and new_leader != old_leader and new_tl > old_tl:
                break
            check(time.monotonic() - t_kill < PROMOTION_TIMEOUT_S,
                  f"no new leader on a timeline above {old_tl} {PROMOTION_TIMEOUT_S}s after the kill: "
                  f"{cluster_members(skip=(old_leader,))}")
            time.sleep(0.2)
        t_promoted = time.monotonic()
        log(f"promotion: {new_leader} leads on timeline {new_tl} ({t_promoted - t_kill:.1f}s after the kill)")

        # Ingest recovers on the new primary.
        while (t_ack := stats.first_ack_sent_after(t_kill)) is None:
            check(time.monotonic() - t_kill < RECOVERY_TIMEOUT_S,
                  f"no ping acknowledged {RECOVERY_TIMEOUT_S}s after the kill: {stats.statuses(t_kill)}")
            time.sleep(0.1)
        failover_s = t_ack - t_kill
        # haproxy's write port leads to the new leader (its health checks may lag the first ack
        # by a moment, and a connection to the old address is closed: ask again meanwhile).
        port, asked = None, time.monotonic()
        while port != 15440 + int(new_leader[-1]):
            try:
                port = int(psql(WRITE_URL, "SELECT inet_server_port()")[0][0])
            except Failed:
                port = None
            check(time.monotonic() - asked < 15, f"haproxy's write port reaches port {port}, not the new leader {new_leader}")
            if port != 15440 + int(new_leader[-1]):
                time.sleep(0.2)
        log(f"ingest recovered: first acknowledged ping sent after the kill answered {failover_s:.1f}s after it")
        time.sleep(AFTER_RECOVERY_S)
        during_failover = stats.statuses(t_kill)
        # Synchronous mode carries on: the surviving standby became the new primary's synchronous one.
        while not (sync := [m["name"] for m in cluster_members(skip=(old_leader,)) or []
                            if m["role"] == "sync_standby" and m["state"] in ("running", "streaming")]):
            check(time.monotonic() - t_promoted < PROMOTION_TIMEOUT_S,
                  f"no synchronous standby {PROMOTION_TIMEOUT_S}s after the promotion: {cluster_members(skip=(old_leader,))}")
            time.sleep(0.5)
        check(psql(WRITE_URL, "SHOW synchronous_standby_names")[0][0].strip() not in ("", "''"),
              "the new primary has no synchronous_standby_names")
        log(f"synchronous standby of {new_leader}: {sync[0]}")
        # Under load still: what the phones hold acknowledged so far is in the new primary.
        check_acked_stored(WRITE_URL, org_id, devices, phones, "after the failover")

        # One fieldvisit instance lost under load.
        victim = random.Random().randint(1, 3)
        log(f"killing fieldvisit instance {victim} (SIGKILL)")
        run([CLUSTER, "kill-instance", str(victim)])
        t_kill2 = time.monotonic()
        time.sleep(AFTER_INSTANCE_KILL_S)
        check(stats.first_ack_sent_after(t_kill2) is not None, "no ping acknowledged after the instance was killed")
    except Failed as e:
        failure = e
    finally:
        stop.deadline = time.monotonic() + 30
        stop.set()
        for p in phones:
            p.join(40)
    if failure:
        raise failure
    for p in phones:
        check(p.failure is None, p.failure or "")
    after_instance = stats.statuses(t_kill2)

    check_answers(stats, "ingest through the failover and the instance kill")
    acked, stored = check_acked_stored(WRITE_URL, org_id, devices, phones, "cluster")
    check(len(stored) == len(acked), f"cluster: {len(stored)} pings stored but {len(acked)} acknowledged "
                                     "(every ping was retried until acknowledged)")
    cluster_visits = settled_visits(WRITE_URL, org_id, "cluster")
    check(len(cluster_visits) >= PHONES, f"cluster: only {len(cluster_visits)} visits derived")
    log(f"cluster: {len(cluster_visits)} visits derived")
    single_visits = single_node_visits(world, phones)
    if cluster_visits != single_visits:
        only_c = sorted(set(cluster_visits) - set(single_visits))
        only_s = sorted(set(single_visits) - set(cluster_visits))
        raise Failed(f"visits differ from the single-node run: only on the cluster {only_c[:5]}, "
                     f"only on the single node {only_s[:5]}")
    log(f"single node: the same {len(single_visits)} visits")
    listeners = check_listeners(world, admin_token, devices, phones, [n for n in (1, 2, 3) if n != victim])
    reads = check_read_pool(admin_token, territory, [n for n in (1, 2, 3) if n != victim])
    log(f"read pool: {reads}")

    total = time.monotonic() - t0
    print()
    print("| failover test | value |")
    print("|---|---|")
    print(f"| Patroni ttl / loop_wait / retry_timeout | {ttl} s / {loop_wait} s / {retry_timeout} s (synchronous_mode) |")
    print(f"| primary killed -> new leader | {t_promoted - t_kill:.1f} s ({old_leader} tl {old_tl} -> {new_leader} tl {new_tl}, "
          f"synchronous standby {sync[0]}) |")
    print(f"| failover time (kill -> first acknowledged ping sent after it) | {failover_s:.1f} s |")
    print(f"| answers from the kill to 8 s after recovery | {dict(sorted(during_failover.items()))} (every 503 with Retry-After) |")
    print(f"| answers after the instance kill | {dict(sorted(after_instance.items()))} "
          f"(haproxy over the run: {haproxy_retries()}) |")
    print(f"| requests / acknowledged pings / stored | {len(stats.answers)} / {len(acked)} / {len(stored)} |")
    print(f"| acknowledged pings lost | 0 |")
    print(f"| visits (cluster = single node) | {len(cluster_visits)} |")
    print(f"| instances' listeners after the failover | {listeners} |")
    print(f"| read pool | {reads} |")
    print(f"| cluster up / whole test | {up_s:.0f} s / {total:.0f} s |")


if __name__ == "__main__":
    keep = os.environ.get("FV_CLUSTER_KEEP") == "1"
    code = 0
    try:
        main()
        print("cluster-failover: 1 passed, 0 failed")
    except Failed as e:
        print(f"cluster failover test FAILED: {e}", file=sys.stderr)
        print("cluster-failover: 0 passed, 1 failed")
        code = 1
    except KeyboardInterrupt:
        code = 130
    if not keep:
        log("scripts/cluster.sh down (FV_CLUSTER_KEEP=1 keeps it)")
        subprocess.run([CLUSTER, "down"], cwd=ROOT, check=False)
    sys.exit(code)
