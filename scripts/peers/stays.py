#!/usr/bin/env python3
"""Stay detection by the peer libraries on the GeoLife sample, for comparison with ours.

    target/pypeers/bin/python scripts/peers/stays.py --input CSV --d 100 --t 300 \
        [--repeat N] [--out-trackintel CSV] [--out-movingpandas CSV] \
        [--gap-minutes G] [--exclude-last] [--max-diameter M]

Run scripts/peers/setup.sh first (it prints the python to use). Prints ONE JSON line:

    {"pings": n, "trackintel": {"seconds": s, "stays": k, ...}, "movingpandas": {"seconds": s, "stays": k, ...}}

Input: the GeoLife sample's format, `X;Y;fid;id;sequence;trajectory_id;tracker;t` (X = lon, Y = lat,
WGS84, t UTC).

trackintel: `generate_staypoints(method="sliding", distance_metric="haversine",
dist_threshold=D, time_threshold=T/60 minutes)` with one user per `tracker` (as ours runs per rep).
- gap_threshold: by default larger than any gap in any data set (10^7 minutes, 19 years). Ours has no
  gap threshold, and trackintel's gap rule does not just split a stay: a gap longer than the threshold
  makes the fix after it the new anchor and drops the run before it, even if that run lasted longer
  than T (see `_generate_staypoints_sliding_user`). trackintel's default (15 min) can be given with
  `--gap-minutes 15` to see what it changes.
- include_last: True by default. Ours reports a stay that lasts to the end of the data; trackintel's
  Li et al. loop only emits a stay when a fix leaves it, unless include_last. `--exclude-last` gives
  trackintel's default.
- exclude_duplicate_pfs: default (True); the sample has no duplicate rows.

movingpandas: `TrajectoryStopDetector(collection).get_stop_segments(max_diameter=M,
min_duration=T)` on one Trajectory per `trajectory_id` (its natural unit). movingpandas bounds the
*diameter* of the stop (diagonal of the points' minimum rotated rectangle, geodesic metres), not the
distance to an anchor fix: points within D of an anchor can be up to 2D apart. The default mapping is
M = D (the "stays within an area about D across" reading, and movingpandas' own tutorial use of 100 m);
`--max-diameter 200` gives the loosest equivalent of a radius-100 disc.

Timing: the inputs (trackintel Positionfixes and the movingpandas TrajectoryCollection) are built
before the clock starts; "seconds" is the best of --repeat wall times (time.perf_counter) of the
detection call alone: `generate_staypoints(...)` and `TrajectoryStopDetector(...).get_stop_segments(...)`.
"""

import argparse
import json
import sys
import time
import warnings
from datetime import timedelta

from importlib.metadata import version

import geopandas as gpd
import pandas as pd
import trackintel as ti

with warnings.catch_warnings():
    # "Missing optional dependencies ... Stone Soup": only its smoothers need it.
    warnings.simplefilter("ignore")
    import movingpandas as mpd

NO_GAP_MINUTES = 1e7  # longer than any gap in any realistic data set (about 19 years)


def read_geolife(path):
    df = pd.read_csv(path, sep=";")
    df["t"] = pd.to_datetime(df["t"], utc=True)
    return df.sort_values(["tracker", "t", "trajectory_id"], kind="stable").reset_index(drop=True)


def rfc3339(ts):
    """UTC RFC 3339 to the second (GeoLife times are whole seconds); naive times are UTC."""
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def best_of(repeat, fn):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="GeoLife-format CSV (';'-separated)")
    p.add_argument("--d", type=float, default=100.0, help="stay distance D, metres (default 100)")
    p.add_argument("--t", type=float, default=300.0, help="stay time T, seconds (default 300)")
    p.add_argument("--repeat", type=int, default=1, help="timed runs per library; best is reported")
    p.add_argument("--out-trackintel", help="write trackintel's staypoints: user,started_at,finished_at,lat,lon")
    p.add_argument("--out-movingpandas", help="write movingpandas' stops: user,trajectory,started_at,finished_at,lat,lon")
    p.add_argument("--gap-minutes", type=float, default=NO_GAP_MINUTES, help="trackintel gap_threshold (default: none)")
    p.add_argument("--exclude-last", action="store_true", help="trackintel include_last=False (its default)")
    p.add_argument("--max-diameter", type=float, help="movingpandas max_diameter, metres (default D)")
    a = p.parse_args(argv)
    max_diameter = a.d if a.max_diameter is None else a.max_diameter
    include_last = not a.exclude_last

    df = read_geolife(a.input)

    # Inputs, built before any clock starts.
    gdf = gpd.GeoDataFrame(
        {"user_id": df["tracker"], "tracked_at": df["t"]},
        geometry=gpd.points_from_xy(df["X"], df["Y"]),
        crs="EPSG:4326",
    )
    pfs = ti.Positionfixes(gdf)
    # movingpandas drops time zones (with a warning): hand it naive UTC times.
    mp_df = df[["X", "Y", "t", "trajectory_id", "tracker"]].copy()
    mp_df["t"] = mp_df["t"].dt.tz_convert("UTC").dt.tz_localize(None)
    tc = mpd.TrajectoryCollection(
        mp_df,
        traj_id_col="trajectory_id",
        t="t",
        x="X",
        y="Y",
        crs="EPSG:4326",
    )
    tracker_of = df.groupby("trajectory_id")["tracker"].first().to_dict()

    def run_trackintel():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ti.preprocessing.generate_staypoints(
                pfs,
                method="sliding",
                distance_metric="haversine",
                dist_threshold=a.d,
                time_threshold=a.t / 60.0,
                gap_threshold=a.gap_minutes,
                include_last=include_last,
                n_jobs=1,
            )

    def run_movingpandas():
        return mpd.TrajectoryStopDetector(tc).get_stop_segments(
            max_diameter=max_diameter, min_duration=timedelta(seconds=a.t)
        )

    ti_seconds, (_, sp) = best_of(a.repeat, run_trackintel)
    mp_seconds, stops = best_of(a.repeat, run_movingpandas)

    sp = sp.sort_values(["user_id", "started_at"], kind="stable")
    ti_rows = [
        (int(r.user_id), rfc3339(r.started_at), rfc3339(r.finished_at), r.geometry.y, r.geometry.x)
        for r in sp.itertuples()
    ]
    mp_rows = sorted(
        (
            int(tracker_of[s.parent.id]),
            int(s.parent.id),
            rfc3339(s.get_start_time()),
            rfc3339(s.get_end_time()),
            s.df.geometry.y.mean(),
            s.df.geometry.x.mean(),
        )
        for s in stops.trajectories
    )

    if a.out_trackintel:
        with open(a.out_trackintel, "w", newline="") as f:
            f.write("user,started_at,finished_at,lat,lon\n")
            for u, s, e, lat, lon in ti_rows:
                f.write(f"{u},{s},{e},{lat:.7f},{lon:.7f}\n")
    if a.out_movingpandas:
        with open(a.out_movingpandas, "w", newline="") as f:
            f.write("user,trajectory,started_at,finished_at,lat,lon\n")
            for u, tr, s, e, lat, lon in mp_rows:
                f.write(f"{u},{tr},{s},{e},{lat:.7f},{lon:.7f}\n")

    out = {
        "pings": len(df),
        "trackintel": {
            "seconds": round(ti_seconds, 6),
            "stays": len(ti_rows),
            "version": version("trackintel"),
            "params": {
                "dist_threshold_m": a.d,
                "time_threshold_min": a.t / 60.0,
                "gap_threshold_min": a.gap_minutes,
                "include_last": include_last,
                "users": "tracker",
            },
        },
        "movingpandas": {
            "seconds": round(mp_seconds, 6),
            "stays": len(mp_rows),
            "version": version("movingpandas"),
            "params": {"max_diameter_m": max_diameter, "min_duration_s": a.t, "trajectories": "trajectory_id"},
        },
        "repeat": a.repeat,
    }
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
