#!/usr/bin/env python3
"""Benchmarks of the local HA topology (scripts/cluster.sh; docs/operations.md). Prints markdown rows:
(a) the failover time (SIGKILL of the primary node -> first acknowledged ping sent after it),
(b) ingest throughput through haproxy with 1 and with 3 instances on the same database, with each
    instance's CPU seconds per 1,000 pings (utime + stime from /proc/<pid>/stat),
(c) standby replay lag (pg_stat_replication: replay_lag and bytes behind) during that ingest.

Usage: benches/cluster.py   (FV_BIN as for scripts/cluster.sh; BENCH_SECONDS per measurement, default 15)
Starts the cluster when it is down and takes it down at the end (FV_CLUSTER_KEEP=1 keeps it).
"""

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import cluster_failover as cf  # noqa: E402  (the failover test's world, phones and helpers)

SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))
PHONES = 12
BATCH = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")
SOCK = os.path.join(cf.ROOT, ".cluster", "haproxy", "admin.sock")


def haproxy(cmd):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(SOCK)
        s.sendall((cmd + "\n").encode())
        return s.recv(65536).decode()


def instance_pids():
    pids = {}
    for n in (1, 2, 3):
        with open(os.path.join(cf.ROOT, ".cluster", f"fv{n}", "fieldvisit.pid")) as f:
            pids[n] = int(f.read())
    return pids


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def lag_sampler(stop, out):
    sql = ("SELECT coalesce(extract(epoch FROM replay_lag) * 1000, 0), "
           "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication")
    while not stop.is_set():
        try:
            for ms, b in cf.psql(cf.WRITE_URL, sql):
                out.append((float(ms), int(float(b))))
        except cf.Failed:
            pass
        stop.wait(0.5)


def ingest(phones_fixes, devices, instances):
    """Closed-loop ingest by PHONES phones for SECONDS through haproxy with `instances` enabled."""
    for n in (1, 2, 3):
        haproxy(f"{'enable' if n <= instances else 'disable'} server fv/fv{n}")
    time.sleep(1)
    pids = instance_pids()
    before = {n: cpu_s(p) for n, p in pids.items()}
    stats, stop = cf.Stats(), threading.Event()
    stop.deadline = float("inf")
    phones = [cf.Phone(login, devices[login][1], phones_fixes[login], stats, stop, batch=BATCH, gap_s=0)
              for login in phones_fixes]
    lags, lag_stop = [], threading.Event()
    sampler = threading.Thread(target=lag_sampler, args=(lag_stop, lags), daemon=True)
    sampler.start()
    t0 = time.monotonic()
    for p in phones:
        p.start()
    time.sleep(SECONDS)
    stop.deadline = time.monotonic() + 10
    stop.set()
    for p in phones:
        p.join(20)
    wall = time.monotonic() - t0
    lag_stop.set()
    sampler.join(5)
    acked = sum(len(p.acked) for p in phones)
    cpu = {n: cpu_s(p) - before[n] for n, p in pids.items() if n <= instances}
    statuses = stats.statuses()
    return acked / wall, cpu, acked, lags, statuses


def main():
    cf.run([cf.CLUSTER, "up"], {"FV_BIN": cf.FV_BIN}, capture=False)
    ttl = (cf.rest(cf.REST_PORTS[cf.leader()[0]], "/config") or {}).get("ttl")
    world = cf.World(f"bench-{os.getpid()}")
    world.routes = {f"rep{p}": world.routes[f"rep{p % cf.PHONES}"] for p in range(PHONES)}
    _, _, devices = world.create(cf.WRITE_URL, cf.HTTP)
    start = (datetime.now(timezone.utc) - timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
    fixes = {login: cf.walk(stops, start, i) for i, (login, stops) in enumerate(world.routes.items())}
    rows = []
    for instances in (1, 3):
        rate, cpu, acked, lags, statuses = ingest(fixes, devices, instances)
        per_k = ", ".join(f"fv{n} {c * 1000 / max(acked, 1) * instances:.2f}" for n, c in sorted(cpu.items()))
        total_per_k = sum(cpu.values()) * 1000 / max(acked, 1)
        lag_ms = max((m for m, _ in lags), default=0)
        lag_b = max((b for _, b in lags), default=0)
        mean_b = sum(b for _, b in lags) / len(lags) if lags else 0
        rows.append(f"| ingest through haproxy, {instances} instance{'s' if instances > 1 else ''} "
                    f"({PHONES} phones × {BATCH} pings a request, closed loop, {SECONDS:.0f} s) "
                    f"| {rate:,.0f} pings/s; CPU s per 1,000 pings: {total_per_k:.2f} in all"
                    f"{f' ({per_k} per 1,000 of its own share)' if instances > 1 else ''}; answers {statuses} "
                    f"| replay lag max {lag_ms:.0f} ms, bytes behind max {lag_b:,} (mean {mean_b:,.0f}) |")
    for n in (1, 2, 3):
        haproxy(f"enable server fv/fv{n}")
    # (a) the failover time, under the failover test's light load (6 phones, 20 pings/s each).
    stats, stop = cf.Stats(), threading.Event()
    stop.deadline = float("inf")
    phones = [cf.Phone(login, devices[login][1], fixes[login], stats, stop) for login in list(fixes)[:cf.PHONES]]
    for p in phones:
        p.start()
    time.sleep(5)
    old, old_tl = cf.leader()
    cf.run([cf.CLUSTER, "kill-node", old])
    t_kill = time.monotonic()
    while (new := cf.leader(skip=(old,)))[0] in (None, old) or new[1] <= old_tl:
        time.sleep(0.2)
    t_promoted = time.monotonic()
    while (t_ack := stats.first_ack_sent_after(t_kill)) is None:
        time.sleep(0.1)
    stop.deadline = time.monotonic() + 10
    stop.set()
    for p in phones:
        p.join(20)
    rows.insert(0, f"| failover (SIGKILL of the primary node, ttl {ttl} s) | promotion after {t_promoted - t_kill:.1f} s, "
                   f"first acknowledged ping after {t_ack - t_kill:.1f} s | timeline {old_tl} -> {new[1]} |")
    print("\n| measurement | result | notes |\n|---|---|---|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    try:
        main()
    finally:
        if os.environ.get("FV_CLUSTER_KEEP") != "1":
            subprocess.run([cf.CLUSTER, "down"], check=False)
