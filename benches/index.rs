//! The in-memory outlet index against PostGIS on the same 1M outlets, side by side:
//! build time and resident memory, k-nearest-5, within 500 m, and a bbox returning ~1,000 outlets.
//!
//! The outlets are deterministic and clustered like real cities (16 Chinese city centres with
//! dense cores and suburbs, plus scattered rural points). The PostGIS side loads the same outlets
//! into a scratch database next to `DATABASE_URL` (`fieldvisit_bench_index`; kept between runs and
//! reloaded when the data set changes or `FV_BENCH_RELOAD=1`), with a `GiST` index on the geometry
//! and one on `location::geography` (as migration 0003 has), then `VACUUM ANALYZE`. PostGIS queries
//! go through one sqlx connection, so the peer's figure includes the client round trip an
//! application pays. Without `DATABASE_URL` only our side runs.
//!
//! `cargo bench --bench index`; the summary at the end prints the BENCHMARKS.md rows.

use criterion::{BatchSize, Criterion, black_box};
use fieldvisit::index::outlets::{IndexedOutlet, LastCell, OutletIndex};
use sqlx::{Connection, Executor, PgConnection};
use std::time::{Duration, Instant};

const N: usize = 1_000_000;
const SEED: u64 = 20_240_501;
const SCRATCH_DB: &str = "fieldvisit_bench_index";
/// Data set version: bump when the generator changes so the scratch table is reloaded.
const DATA_VERSION: i64 = 1;

/// Deterministic pseudo-random numbers (splitmix64) and normal deviates (Box-Muller).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// (lat, lon, weight, core spread in km)
const CITIES: [(f64, f64, f64, f64); 16] = [
    (39.904, 116.407, 14.0, 9.0),  // Beijing
    (31.230, 121.473, 16.0, 10.0), // Shanghai
    (23.129, 113.264, 12.0, 8.0),  // Guangzhou
    (22.543, 114.058, 11.0, 7.0),  // Shenzhen
    (30.657, 104.066, 9.0, 8.0),   // Chengdu
    (29.563, 106.551, 9.0, 9.0),   // Chongqing
    (30.593, 114.305, 7.0, 7.0),   // Wuhan
    (34.341, 108.940, 6.0, 6.0),   // Xi'an
    (30.274, 120.155, 6.0, 6.0),   // Hangzhou
    (32.060, 118.797, 5.0, 6.0),   // Nanjing
    (39.134, 117.201, 6.0, 7.0),   // Tianjin
    (41.806, 123.432, 4.0, 6.0),   // Shenyang
    (45.803, 126.535, 3.0, 6.0),   // Harbin
    (25.038, 102.718, 3.0, 5.0),   // Kunming
    (34.747, 113.625, 5.0, 6.0),   // Zhengzhou
    (28.228, 112.939, 4.0, 5.0),   // Changsha
];

const KM_PER_DEG_LAT: f64 = 111.195;

/// A position like the data set's: 70% in a city core, 25% in its suburbs, 5% rural.
fn position(rng: &mut Rng) -> (f64, f64) {
    let kind = rng.unit();
    if kind < 0.05 {
        return (20.0 + rng.unit() * 25.0, 100.0 + rng.unit() * 25.0);
    }
    let total: f64 = CITIES.iter().map(|c| c.2).sum();
    let mut pick = rng.unit() * total;
    let city = CITIES
        .iter()
        .find(|c| {
            pick -= c.2;
            pick <= 0.0
        })
        .unwrap_or(&CITIES[0]);
    let spread_km = if kind < 0.75 { city.3 } else { city.3 * 3.0 };
    let dlat = rng.normal() * spread_km / KM_PER_DEG_LAT;
    let dlon = rng.normal() * spread_km / (KM_PER_DEG_LAT * city.0.to_radians().cos());
    (city.0 + dlat, city.1 + dlon)
}

fn outlets() -> Vec<IndexedOutlet> {
    let mut rng = Rng(SEED);
    (1..=N as i64)
        .map(|id| {
            let (lat, lon) = position(&mut rng);
            let status = rng.next() % 20;
            IndexedOutlet {
                id,
                lat,
                lon,
                radius_m: (status == 1).then_some(80.0),
                active: status != 0,
                territory_id: Some(1 + (rng.next() % 64) as i64),
                footprint: None,
                label: None,
                cell: LastCell::default(),
            }
        })
        .collect()
}

fn query_points(n: usize, seed: u64) -> Vec<(f64, f64)> {
    let mut rng = Rng(seed);
    (0..n).map(|_| position(&mut rng)).collect()
}

/// Positions along reps' tracks: `walks` walks of `steps` fixes 20 m apart, each starting at a random
/// position of the data set's distribution (what visit derivation asks: spatially coherent queries).
fn track_points(walks: usize, steps: usize, seed: u64) -> Vec<(f64, f64)> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(walks * steps);
    for _ in 0..walks {
        let (mut lat, mut lon) = position(&mut rng);
        let mut heading = rng.unit() * std::f64::consts::TAU;
        for _ in 0..steps {
            heading += rng.normal() * 0.3;
            lat += 0.020 * heading.cos() / KM_PER_DEG_LAT;
            lon += 0.020 * heading.sin() / (KM_PER_DEG_LAT * lat.to_radians().cos());
            out.push((lat, lon));
        }
    }
    out
}

/// Resident set size of this process, bytes (Linux `/proc/self/statm`).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Lon/lat boxes, one per city, each sized so the index finds 1,000 (±2%) outlets in it.
fn thousand_boxes(index: &OutletIndex) -> Vec<[f64; 4]> {
    CITIES
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // Off-centre, so the boxes are not all at the densest spot.
            let (lat, lon) = (c.0 + 0.02 * (i % 3) as f64, c.1 - 0.015 * (i % 4) as f64);
            let (mut lo, mut hi) = (1e-5, 2.0);
            let mut best = [lon - hi, lat - hi, lon + hi, lat + hi];
            for _ in 0..60 {
                let half = f64::midpoint(lo, hi);
                let b = [lon - half, lat - half, lon + half, lat + half];
                let count = index.within_bbox(b[0], b[1], b[2], b[3]).len();
                best = b;
                if (980..=1020).contains(&count) {
                    break;
                }
                if count < 1000 {
                    lo = half;
                } else {
                    hi = half;
                }
            }
            best
        })
        .collect()
}

/// `DATABASE_URL` with the database name replaced by `db`.
fn url_for_database(base: &str, db: &str) -> String {
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let query = base[path_start..].find('?').map_or("", |i| &base[path_start + i..]);
    format!("{}/{db}{query}", &base[..path_start])
}

/// A connection to the scratch database holding the same outlets (loaded when missing or stale).
async fn postgis(base_url: &str, outlets: &[IndexedOutlet]) -> Result<PgConnection, sqlx::Error> {
    let mut admin = PgConnection::connect(base_url).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(SCRATCH_DB)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        admin.execute(format!("CREATE DATABASE {SCRATCH_DB}").as_str()).await?;
    }
    admin.close().await?;
    let mut conn = PgConnection::connect(&url_for_database(base_url, SCRATCH_DB)).await?;
    conn.execute("CREATE EXTENSION IF NOT EXISTS postgis").await?;
    conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (version bigint, seed bigint, n bigint)").await?;
    let meta: Option<(i64, i64, i64)> =
        sqlx::query_as("SELECT version, seed, n FROM bench_meta").fetch_optional(&mut conn).await?;
    let reload = std::env::var("FV_BENCH_RELOAD").is_ok_and(|v| v == "1");
    if reload || meta != Some((DATA_VERSION, SEED as i64, N as i64)) {
        let started = Instant::now();
        eprintln!("loading {N} outlets into {SCRATCH_DB} ...");
        conn.execute("DROP TABLE IF EXISTS bench_outlets").await?;
        conn.execute("DELETE FROM bench_meta").await?;
        conn.execute("CREATE TABLE bench_outlets (id bigint PRIMARY KEY, location geometry(Point, 4326) NOT NULL)")
            .await?;
        for chunk in outlets.chunks(50_000) {
            let ids: Vec<i64> = chunk.iter().map(|o| o.id).collect();
            let lats: Vec<f64> = chunk.iter().map(|o| o.lat).collect();
            let lons: Vec<f64> = chunk.iter().map(|o| o.lon).collect();
            sqlx::query(
                "INSERT INTO bench_outlets (id, location)
                 SELECT id, ST_SetSRID(ST_MakePoint(lon, lat), 4326)
                   FROM unnest($1::int8[], $2::float8[], $3::float8[]) AS u (id, lat, lon)",
            )
            .bind(&ids)
            .bind(&lats)
            .bind(&lons)
            .execute(&mut conn)
            .await?;
        }
        conn.execute("CREATE INDEX bench_outlets_location_idx ON bench_outlets USING gist (location)").await?;
        conn.execute("CREATE INDEX bench_outlets_geog_idx ON bench_outlets USING gist ((location::geography))").await?;
        conn.execute("VACUUM ANALYZE bench_outlets").await?;
        sqlx::query("INSERT INTO bench_meta VALUES ($1, $2, $3)")
            .bind(DATA_VERSION)
            .bind(SEED as i64)
            .bind(N as i64)
            .execute(&mut conn)
            .await?;
        eprintln!("loaded, indexed and analysed in {:.1?}", started.elapsed());
    }
    Ok(conn)
}

const KNN_SQL: &str =
    "SELECT id FROM bench_outlets ORDER BY location <-> ST_SetSRID(ST_MakePoint($2, $1), 4326) LIMIT 5";
const WITHIN_SQL: &str = "SELECT id FROM bench_outlets
    WHERE ST_DWithin(location::geography, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography, 500, false)";
const BBOX_SQL: &str = "SELECT id FROM bench_outlets WHERE location && ST_MakeEnvelope($1, $2, $3, $4, 4326)";

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let data = outlets();

    // Build: time, and resident memory of one index.
    {
        let mut group = c.benchmark_group("index");
        group.sample_size(10).measurement_time(Duration::from_secs(25));
        group.bench_function("build_1m", |b| {
            b.iter_batched(|| data.clone(), |d| black_box(OutletIndex::build(d)), BatchSize::PerIteration);
        });
        group.finish();
    }
    let before = resident_bytes();
    let index = OutletIndex::build(data.clone());
    let after = resident_bytes();
    let resident_mb = before.zip(after).map(|(b, a)| a.saturating_sub(b) as f64 / (1024.0 * 1024.0));
    println!("index of {} outlets: resident memory +{:.0} MB", index.len(), resident_mb.unwrap_or(f64::NAN));

    let points = query_points(4096, SEED ^ 0xABCD);
    let track = track_points(64, 64, SEED ^ 0x7AC4);
    let boxes = thousand_boxes(&index);
    let box_counts: Vec<usize> = boxes.iter().map(|b| index.within_bbox(b[0], b[1], b[2], b[3]).len()).collect();
    let within_mean =
        points.iter().map(|p| index.within_radius(p.0, p.1, 500.0).len()).sum::<usize>() as f64 / points.len() as f64;
    println!("bbox answers: {box_counts:?}; within 500 m: {within_mean:.1} outlets on average");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let mut conn = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => match rt.block_on(postgis(&url, &data)) {
            Ok(conn) => Some(conn),
            Err(e) => {
                eprintln!("PostGIS side skipped: {e}");
                None
            }
        },
        _ => {
            eprintln!("DATABASE_URL not set: PostGIS side skipped");
            None
        }
    };
    drop(data);
    if let Some(conn) = conn.as_mut() {
        // Same answers on both sides for within and bbox (both on the sphere of the same radius; KNN
        // differs by design: PostGIS `<->` on geometry orders by planar degrees).
        let (mut differ_within, mut differ_bbox) = (0, 0);
        for p in points.iter().take(200) {
            let ours: Vec<i64> = {
                let mut v: Vec<i64> = index.within_radius(p.0, p.1, 500.0).iter().map(|h| h.id).collect();
                v.sort_unstable();
                v
            };
            let mut peer: Vec<i64> = rt
                .block_on(sqlx::query_scalar(WITHIN_SQL).bind(p.0).bind(p.1).fetch_all(&mut *conn))
                .expect("within query");
            peer.sort_unstable();
            differ_within += usize::from(ours != peer);
        }
        for b in &boxes {
            let ours = index.within_bbox(b[0], b[1], b[2], b[3]);
            let mut peer: Vec<i64> = rt
                .block_on(
                    sqlx::query_scalar(BBOX_SQL).bind(b[0]).bind(b[1]).bind(b[2]).bind(b[3]).fetch_all(&mut *conn),
                )
                .expect("bbox query");
            peer.sort_unstable();
            if ours != peer {
                differ_bbox += 1;
                let extra: Vec<&i64> = peer.iter().filter(|id| ours.binary_search(id).is_err()).collect();
                let missing: Vec<&i64> = ours.iter().filter(|id| peer.binary_search(id).is_err()).collect();
                println!("bbox {b:?}: PostGIS has {} more, {} fewer", extra.len(), missing.len());
            }
        }
        println!(
            "answers that differ from PostGIS: within 500 m {differ_within} of 200, bbox {differ_bbox} of {}",
            boxes.len()
        );
    }

    let mut group = c.benchmark_group("index");
    let mut i = 0usize;
    group.bench_function("knn5/ours", |b| {
        b.iter(|| {
            let p = points[i % points.len()];
            i += 1;
            black_box(index.nearest(p.0, p.1, 5))
        });
    });
    group.bench_function("knn5_track/ours", |b| {
        b.iter(|| {
            let p = track[i % track.len()];
            i += 1;
            black_box(index.nearest(p.0, p.1, 5))
        });
    });
    group.bench_function("within_500m/ours", |b| {
        b.iter(|| {
            let p = points[i % points.len()];
            i += 1;
            black_box(index.within_radius(p.0, p.1, 500.0))
        });
    });
    group.bench_function("bbox_1000/ours", |b| {
        b.iter(|| {
            let q = boxes[i % boxes.len()];
            i += 1;
            black_box(index.within_bbox(q[0], q[1], q[2], q[3]))
        });
    });
    if let Some(conn) = conn.as_mut() {
        group.bench_function("knn5/postgis", |b| {
            b.iter(|| {
                let p = points[i % points.len()];
                i += 1;
                let ids: Vec<i64> = rt
                    .block_on(sqlx::query_scalar(KNN_SQL).bind(p.0).bind(p.1).fetch_all(&mut *conn))
                    .expect("knn query");
                black_box(ids)
            });
        });
        group.bench_function("within_500m/postgis", |b| {
            b.iter(|| {
                let p = points[i % points.len()];
                i += 1;
                let ids: Vec<i64> = rt
                    .block_on(sqlx::query_scalar(WITHIN_SQL).bind(p.0).bind(p.1).fetch_all(&mut *conn))
                    .expect("within query");
                black_box(ids)
            });
        });
        group.bench_function("bbox_1000/postgis", |b| {
            b.iter(|| {
                let q = boxes[i % boxes.len()];
                i += 1;
                let ids: Vec<i64> = rt
                    .block_on(
                        sqlx::query_scalar(BBOX_SQL).bind(q[0]).bind(q[1]).bind(q[2]).bind(q[3]).fetch_all(&mut *conn),
                    )
                    .expect("bbox query");
                black_box(ids)
            });
        });
    }
    group.finish();
    c.final_summary();
    summary(resident_mb);
}

/// Criterion's point estimate (mean, ns) of a benchmark of this run, if it ran.
fn estimate_ns(id: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{dir}/criterion/index/{}/new/estimates.json", id.replace('/', "_"));
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// The BENCHMARKS.md rows of this run.
fn summary(resident_mb: Option<f64>) {
    let cmd = "`cargo bench --bench index`";
    println!("\n| feature | ours | peer | ratio | command |\n|---|---|---|---|---|");
    if let Some(build) = estimate_ns("build_1m") {
        let mb = resident_mb.map_or("?".to_owned(), |m| format!("{m:.0} MB"));
        println!(
            "| outlet index build, 1M outlets (target < 2 s, < 300 MB) | {}, {mb} resident | - | - | {cmd} |",
            human(build)
        );
    }
    for (name, id) in [
        ("k-nearest-5, 1M outlets, random points (target >= 100x, < 2 µs)", "knn5"),
        ("k-nearest-5, 1M outlets, along reps' tracks", "knn5_track"),
        ("within 500 m, 1M outlets", "within_500m"),
        ("bbox with ~1,000 outlets, 1M outlets", "bbox_1000"),
    ] {
        let ours = estimate_ns(&format!("{id}/ours"));
        let peer = estimate_ns(&format!("{id}/postgis"));
        if let Some(ours) = ours {
            let (peer_text, ratio) = match peer {
                Some(p) => (format!("{} (PostGIS GiST)", human(p)), format!("{:.0}x", p / ours)),
                None => ("-".to_owned(), "-".to_owned()),
            };
            println!("| {name} | {} | {peer_text} | {ratio} | {cmd} |", human(ours));
        }
    }
}
