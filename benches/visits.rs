//! Stay and visit detection in process on the real GeoLife sample (5,908 fixes, 3 people), side by
//! side with trackintel `generate_staypoints` and movingpandas `TrajectoryStopDetector` at the same
//! D = 100 m and T = 300 s (run by `scripts/peers/stays.py` in the pinned venv that
//! `scripts/peers/setup.sh` creates under `target/pypeers`; only the detection call is timed there,
//! best of 5), and the recomputation of one rep-day of 10,000 pings from the database.
//!
//! Ours: `domain::visit::stays` and `domain::visit::derive` on one core, repeated until at least
//! 2 s have passed, best of 5 such rounds. Visit detection runs against candidate outlets placed
//! along the tracks (one every 40 fixes, 0-60 m off the track, radius 50 m: 148 outlets).
//!
//! The rep-day row needs `DATABASE_URL`: a scratch database (`fieldvisit_bench_visits`) with one
//! rep whose day holds 10,000 pings (5 s apart: walks with 20 stops of 10 minutes) and 400 outlets
//! along the walk; the time is `derive::derive_day` (read the fixes, query the candidates, derive,
//! replace the day's visits in one transaction), median of 20 runs.
//!
//! `cargo bench --bench visits` (`FV_BENCH_SKIP_PEERS=1` skips the Python peers).

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use fieldvisit::domain::visit::{self, CandidateOutlet, VisitFix, VisitRules};
use fieldvisit::{admin, db};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;

const SCRATCH_DB: &str = "fieldvisit_bench_visits";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn geolife() -> PathBuf {
    root().join("fixtures/geolife/geolife_sample.csv")
}

/// The sample's fixes per tracker, in file order.
fn load(path: &Path) -> BTreeMap<i64, Vec<VisitFix>> {
    let text = std::fs::read_to_string(path).expect("geolife sample");
    let mut out: BTreeMap<i64, Vec<VisitFix>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split(';').collect();
        let t = NaiveDateTime::parse_from_str(c[7].trim_end_matches("+00"), "%Y-%m-%d %H:%M:%S").expect("time");
        let fix_time = Utc.from_utc_datetime(&t);
        out.entry(c[6].parse().expect("tracker")).or_default().push(VisitFix {
            fix_time,
            received_at: fix_time,
            lat: c[1].parse().expect("lat"),
            lon: c[0].parse().expect("lon"),
            accuracy_m: None,
            mock: false,
            flags: 0,
        });
    }
    out
}

/// Seconds per call of `f`: repeated for at least 2 s, best of 5 rounds.
fn best_seconds(mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut best = f64::INFINITY;
    let mut answer = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let mut calls = 0u32;
        while start.elapsed().as_secs_f64() < 2.0 {
            answer = std::hint::black_box(f());
            calls += 1;
        }
        best = best.min(start.elapsed().as_secs_f64() / f64::from(calls));
    }
    (best, answer)
}

fn outlets_along(tracks: &BTreeMap<i64, Vec<VisitFix>>) -> Vec<CandidateOutlet> {
    let mut out = Vec::new();
    for fixes in tracks.values() {
        for (k, f) in fixes.iter().enumerate().step_by(40) {
            let off = (k % 7) as f64 * 10.0 / 111_195.0;
            out.push(CandidateOutlet {
                id: out.len() as i64 + 1,
                lat: f.lat + off,
                lon: f.lon,
                footprint: None,
                radius_m: 50.0,
                min_dwell_s: 300,
                valid_from: None,
                valid_to: None,
            });
        }
    }
    out
}

/// Runs the Python peers; `None` when skipped or unavailable.
fn peers() -> Option<serde_json::Value> {
    if std::env::var_os("FV_BENCH_SKIP_PEERS").is_some() {
        return None;
    }
    let setup = Command::new("bash").arg(root().join("scripts/peers/setup.sh")).output().ok()?;
    if !setup.status.success() {
        eprintln!("peers not run: {}", String::from_utf8_lossy(&setup.stderr));
        return None;
    }
    let python = String::from_utf8_lossy(&setup.stdout).trim().to_owned();
    let run = Command::new(python)
        .arg(root().join("scripts/peers/stays.py"))
        .args(["--input".as_ref(), geolife().as_os_str()])
        .args(["--d", "100", "--t", "300", "--repeat", "5"])
        .output()
        .ok()?;
    if !run.status.success() {
        eprintln!("peers failed: {}", String::from_utf8_lossy(&run.stderr));
        return None;
    }
    serde_json::from_slice(run.stdout.trim_ascii()).ok()
}

/// (fix time, lat, lon) of a synthetic fix.
type SynthFix = (DateTime<Utc>, f64, f64);

/// One rep-day of `n` pings 5 s apart from 06:00 UTC: walks (1.2 m/s) with a 10-minute stop every
/// `n / 20` pings, on a street grid near (39.9, 116.4); outlets every 25 fixes, 0-40 m off.
fn synthetic_day(day: DateTime<Utc>, n: usize) -> (Vec<SynthFix>, Vec<(f64, f64)>) {
    let m = 1.0 / 111_195.0;
    let (mut lat, mut lon) = (39.9, 116.4);
    let mut fixes = Vec::with_capacity(n);
    let mut outlets = Vec::new();
    let per_leg = n / 20;
    for k in 0..n {
        let in_leg = k % per_leg;
        let stopped = in_leg >= per_leg - 120; // the last 10 minutes of each leg
        if !stopped {
            if (k / per_leg) % 2 == 0 {
                lat += 6.0 * m;
            } else {
                lon += 6.0 * m / 0.766;
            }
        }
        let jitter = ((k * 7919) % 11) as f64 - 5.0;
        fixes.push((day + Duration::seconds(5 * k as i64), lat + jitter * m, lon));
        if k % 25 == 0 {
            outlets.push((lat + ((k / 25) % 5) as f64 * 10.0 * m, lon));
        }
    }
    (fixes, outlets)
}

async fn rep_day_row(base: &str) -> (f64, usize, usize) {
    let admin_pool = db::connect(base, 2).await.expect("connect to DATABASE_URL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"))
        .execute(&admin_pool)
        .await
        .expect("drop");
    sqlx::query(&format!("CREATE DATABASE {SCRATCH_DB}")).execute(&admin_pool).await.expect("create");
    admin_pool.close().await;
    let pool = db::connect(&common::url_for_database(base, SCRATCH_DB), 4).await.expect("connect scratch");
    db::migrate(&pool).await.expect("migrate");
    let org = admin::create_org(&pool, "bench", "Bench", "UTC").await.expect("org").id;
    let rep = admin::create_user(&pool, org, "rep", "Rep", fieldvisit::domain::access::Role::Rep, None)
        .await
        .expect("rep")
        .user
        .id;
    let device = admin::create_device(&pool, org, rep, "phone").await.expect("device").device_id;
    let day = Utc.with_ymd_and_hms(2026, 11, 30, 6, 0, 0).single().expect("day");
    let (fixes, outlets) = synthetic_day(day, 10_000);
    for (i, (lat, lon)) in outlets.iter().enumerate() {
        let mut f = db::outlets::OutletFields {
            code: format!("O{i}"),
            name: format!("Outlet {i}"),
            channel_type: fieldvisit::domain::outlet::ChannelType::AgentPoint,
            tier: "A".into(),
            lat: *lat,
            lon: *lon,
            radius_m: Some(30.0),
            status: fieldvisit::domain::outlet::OutletStatus::Active,
            territory_id: None,
            address: None,
            attributes: serde_json::json!({}),
            footprint: None,
        };
        f.code = format!("O{i:04}");
        db::outlets::create(&pool, org, &f).await.expect("outlet");
    }
    sqlx::query("UPDATE outlet_locations SET valid_from = '2026-01-01' WHERE org_id = $1")
        .bind(org)
        .execute(&pool)
        .await
        .expect("history");
    let pings: Vec<db::pings::Ping> = fixes
        .iter()
        .map(|(t, lat, lon)| db::pings::Ping {
            device_id: device,
            fix_time: *t,
            lat: *lat,
            lon: *lon,
            accuracy_m: Some(8.0),
            speed_mps: None,
            heading_deg: None,
            altitude_m: None,
            battery_pct: None,
            mock: false,
            source: "native".into(),
        })
        .collect();
    let mut conn = pool.acquire().await.expect("conn");
    db::pings::insert(&mut conn, org, &pings).await.expect("pings");
    drop(conn);
    sqlx::query("VACUUM ANALYZE").execute(&pool).await.expect("analyze");
    let rules = VisitRules::default();
    let mut times = Vec::new();
    let mut visits = 0;
    for _ in 0..21 {
        db::visits::mark_period(&pool, org, day.date_naive(), day.date_naive(), "bench").await.expect("mark");
        let claimed = db::visits::claim_dirty(&pool, 10, 0, 300).await.expect("claim");
        assert_eq!(claimed.len(), 1);
        let start = Instant::now();
        assert!(fieldvisit::derive::derive_day(&pool, &claimed[0], &rules).await.expect("derive"));
        times.push(start.elapsed().as_secs_f64());
        visits =
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM visits").fetch_one(&pool).await.expect("n") as usize;
    }
    times.remove(0); // the first run warms the caches
    times.sort_by(f64::total_cmp);
    // Where the time goes: the same steps as `derive_day`, timed one by one (medians of 10); the
    // candidates are probed with the boxes of the fixes read.
    let mut steps: [Vec<f64>; 5] = Default::default();
    for _ in 0..10 {
        let (from, to) = db::visits::day_bounds(&pool, org, day.date_naive()).await.expect("bounds");
        let t = Instant::now();
        let fixes =
            db::visits::group_fixes(&pool, org, &[rep], &[from], &[to]).await.expect("fixes").pop().unwrap_or_default();
        steps[0].push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let boxes = visit::track_boxes(&fixes, db::visits::PROBE_CELL_DEG);
        steps[1].push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let candidates =
            db::visits::candidates(&pool, org, &boxes, rules.accuracy_cap_m, from, to).await.expect("candidates");
        steps[2].push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let derived = visit::derive(&fixes, &candidates, &rules);
        steps[3].push(t.elapsed().as_secs_f64());
        db::visits::mark_period(&pool, org, day.date_naive(), day.date_naive(), "bench").await.expect("mark");
        let claimed = db::visits::claim_dirty(&pool, 10, 0, 300).await.expect("claim");
        let t = Instant::now();
        let mut conn = pool.acquire().await.expect("conn");
        assert!(db::visits::replace_day(&mut conn, &claimed[0], &derived).await.expect("replace"));
        steps[4].push(t.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] * 1e3
    };
    println!(
        "  steps (median ms): read fixes {:.1}, boxes {:.2}, candidates {:.1}, derive {:.1}, replace {:.1}",
        median(&mut steps[0]),
        median(&mut steps[1]),
        median(&mut steps[2]),
        median(&mut steps[3]),
        median(&mut steps[4])
    );
    (times[times.len() / 2], outlets.len(), visits)
}

fn main() {
    let tracks = load(&geolife());
    let pings: usize = tracks.values().map(Vec::len).sum();
    let rules = VisitRules::default();
    let (stay_s, stays) = best_seconds(|| tracks.values().map(|f| visit::stays(f, &rules).len()).sum());
    let outlets = outlets_along(&tracks);
    let (visit_s, visits) = best_seconds(|| tracks.values().map(|f| visit::derive(f, &outlets, &rules).len()).sum());
    println!("GeoLife sample: {pings} fixes, {} trackers", tracks.len());
    println!(
        "ours, stays (D 100 m, T 300 s): {stays} stays, {:.1} µs, {:.2}M pings/s on one core",
        stay_s * 1e6,
        pings as f64 / stay_s / 1e6
    );
    println!(
        "ours, stays + visits ({} candidate outlets): {visits} visits, {:.1} µs, {:.2}M pings/s on one core",
        outlets.len(),
        visit_s * 1e6,
        pings as f64 / visit_s / 1e6
    );
    match peers() {
        Some(p) => {
            for name in ["trackintel", "movingpandas"] {
                let s = p[name]["seconds"].as_f64().unwrap_or(f64::NAN);
                println!(
                    "{name}: {} stays, {:.1} ms, {:.3}M pings/s; ours (stays) is {:.0}x faster, ours (stays + visits) {:.0}x",
                    p[name]["stays"],
                    s * 1e3,
                    pings as f64 / s / 1e6,
                    s / stay_s,
                    s / visit_s
                );
            }
        }
        None => println!("peers: not run"),
    }
    match std::env::var("DATABASE_URL") {
        Ok(base) => {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            let (median, outlets, visits) = rt.block_on(rep_day_row(&base));
            println!(
                "rep-day recompute from the database, 10,000 pings, {outlets} outlets along the walk: {visits} visits, median {:.1} ms (target < 50 ms)",
                median * 1e3
            );
        }
        Err(_) => println!("rep-day recompute: DATABASE_URL not set, not run"),
    }
}
