//! CSV import of 100,000 outlets, end to end, against the peer: PostgreSQL's own bulk load.
//!
//! - ours: read the file, parse and judge every row (`fieldvisit::domain::import`), look up tiers,
//!   existing codes and each point's territory by point-in-polygon, upsert into `outlets` (GiST
//!   indexes, foreign keys, the location/status history and change-notification triggers) and
//!   record the audit entry, in one transaction (`fieldvisit::db::import::import_bytes`);
//! - peer: `psql -c "\copy staging FROM file CSV HEADER"` of the same file into a plain staging table
//!   with the same columns: no index, no validation, no history — the fastest possible load.
//!
//! Both start from empty tables each iteration. Needs `DATABASE_URL` (any database of the cluster:
//! a scratch database `fieldvisit_bench_import` is created next to it and dropped at the end) and
//! `psql` (`PSQL`, else `psql` on the PATH, else `/usr/lib/postgresql/15/bin/psql`).
//!
//! `cargo bench --bench import` (or `make bench`).

mod common;

use common::{psql, url_for_database};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use fieldvisit::db::import::{ImportRequest, import_bytes};
use fieldvisit::db::territories::NewTerritory;
use fieldvisit::domain::access::Scope;
use fieldvisit::domain::import::{Format, Mode};
use fieldvisit::domain::outlet::ChannelType;
use fieldvisit::domain::territory::TerritoryLevel;
use fieldvisit::{admin, db};
use sqlx::PgPool;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const ROWS: usize = 100_000;
const SCRATCH_DB: &str = "fieldvisit_bench_import";
/// The data extent: a 0.8° x 0.6° box over Beijing, cut into a 4 x 4 grid of districts under one city.
const LON0: f64 = 116.0;
const LAT0: f64 = 39.6;
const WIDTH: f64 = 0.8;
const HEIGHT: f64 = 0.6;

/// A deterministic pseudo-random sequence (splitmix64), so every run imports the same file.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The 100k-row file: every field of an outlet plus one free attribute column.
fn generate_csv(path: &Path) {
    let tiers = ["A", "B", "C", "VIP"];
    let mut rng = Rng(20_240_501);
    let mut out = String::with_capacity(ROWS * 120);
    out.push_str("code,name,channel_type,tier,lat,lon,radius_m,status,address,crm_segment\n");
    for i in 0..ROWS {
        let lat = LAT0 + rng.next_f64() * HEIGHT;
        let lon = LON0 + rng.next_f64() * WIDTH;
        let radius = if i % 3 == 0 { "80" } else { "" };
        let status = if i % 50 == 0 { "suspended" } else { "active" };
        let _ = writeln!(
            out,
            "BJ{i:06},\"Outlet {i}, Beijing\",{},{},{lat:.6},{lon:.6},{radius},{status},No. {} Chang'an Avenue,seg-{}",
            ChannelType::ALL[i % ChannelType::ALL.len()],
            tiers[i % tiers.len()],
            i % 997,
            i % 7
        );
    }
    std::fs::write(path, out).expect("write the benchmark CSV");
}

fn square(lon0: f64, lat0: f64, lon1: f64, lat1: f64) -> String {
    format!(
        r#"{{"type":"Polygon","coordinates":[[[{lon0},{lat0}],[{lon1},{lat0}],[{lon1},{lat1}],[{lon0},{lat1}],[{lon0},{lat0}]]]}}"#
    )
}

/// A fresh scratch database with the schema, one org and its territory tree.
async fn setup(base: &str) -> (PgPool, String, i64) {
    let admin_pool = db::connect(base, 2).await.expect("connect to DATABASE_URL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"))
        .execute(&admin_pool)
        .await
        .expect("drop the scratch database");
    sqlx::query(&format!("CREATE DATABASE {SCRATCH_DB}")).execute(&admin_pool).await.expect("create scratch database");
    admin_pool.close().await;
    let url = url_for_database(base, SCRATCH_DB);
    let pool = db::connect(&url, 4).await.expect("connect to the scratch database");
    db::migrate(&pool).await.expect("migrate the scratch database");
    let org = admin::create_org(&pool, "bench", "Bench Telecom", "Asia/Shanghai").await.expect("org").id;
    let city = square(LON0, LAT0, LON0 + WIDTH, LAT0 + HEIGHT);
    let root = db::territories::create(
        &pool,
        org,
        &NewTerritory {
            parent_id: None,
            code: "BJ",
            name: "Beijing",
            level: TerritoryLevel::City,
            boundary_geojson: Some(&city),
        },
    )
    .await
    .expect("city")
    .id;
    for gx in 0..4 {
        for gy in 0..4 {
            let (lon0, lat0) = (LON0 + f64::from(gx) * WIDTH / 4.0, LAT0 + f64::from(gy) * HEIGHT / 4.0);
            let b = square(lon0, lat0, lon0 + WIDTH / 4.0, lat0 + HEIGHT / 4.0);
            let code = format!("BJ-{gx}{gy}");
            let t = NewTerritory {
                parent_id: Some(root),
                code: &code,
                name: &code,
                level: TerritoryLevel::District,
                boundary_geojson: Some(&b),
            };
            db::territories::create(&pool, org, &t).await.expect("district");
        }
    }
    sqlx::query(
        "CREATE TABLE import_peer (code text, name text, channel_type text, tier text, lat float8, lon float8,
                                   radius_m real, status text, address text, crm_segment text)",
    )
    .execute(&pool)
    .await
    .expect("staging table");
    (pool, url, org)
}

async fn empty_outlets(pool: &PgPool) {
    sqlx::query("TRUNCATE outlet_locations, outlet_status_changes, outlets CASCADE")
        .execute(pool)
        .await
        .expect("truncate outlets");
}

fn import_benchmark(c: &mut Criterion) {
    let Ok(base) = std::env::var("DATABASE_URL") else {
        eprintln!("benches/import.rs: DATABASE_URL is not set; skipping (make bench sets it)");
        return;
    };
    let rt = Runtime::new().expect("tokio runtime");
    let (pool, url, org) = rt.block_on(setup(&base));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-import");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let file = dir.join("outlets-100k.csv");
    generate_csv(&file);
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or_default();
    eprintln!("import bench: {ROWS} rows, {:.1} MB CSV at {}", size as f64 / 1e6, file.display());

    let req = ImportRequest {
        org_id: org,
        scope: Scope::Org,
        mode: Mode::Atomic,
        format: Format::Csv,
        actor_user_id: None,
        request_id: None,
        source: "bench",
        crs: fieldvisit::domain::crs::Crs::Wgs84,
        dry_run: false,
    };
    // One checked run first: the whole file goes in, every outlet gets a district.
    rt.block_on(async {
        empty_outlets(&pool).await;
        let bytes = std::fs::read(&file).expect("read CSV");
        let report = import_bytes(&pool, &req, &bytes).await.expect("import");
        assert_eq!((report.rows, report.inserted, report.rejected), (ROWS, ROWS, 0), "{report:?}");
        let unassigned: i64 = sqlx::query_scalar("SELECT count(*) FROM outlets WHERE territory_id IS NULL")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(unassigned, 0, "every point lies in a district");
    });

    let mut group = c.benchmark_group("import_100k_outlets_csv");
    group.sample_size(10).sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(ROWS as u64));
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(40));
    group.bench_function("fieldvisit_import_end_to_end", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(empty_outlets(&pool));
                let started = Instant::now();
                let bytes = std::fs::read(&file).expect("read CSV");
                let report = rt.block_on(import_bytes(&pool, &req, &bytes)).expect("import");
                total += started.elapsed();
                assert_eq!(report.inserted, ROWS);
            }
            total
        });
    });
    let psql = psql();
    let copy = format!("\\copy import_peer FROM '{}' WITH (FORMAT csv, HEADER true)", file.display());
    group.bench_function("peer_psql_copy_into_staging", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(async {
                    sqlx::query("TRUNCATE import_peer").execute(&pool).await.expect("truncate staging");
                });
                let started = Instant::now();
                let out = Command::new(&psql)
                    .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url, "-c", &copy])
                    .output()
                    .expect("run psql");
                total += started.elapsed();
                assert!(out.status.success(), "psql \\copy failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            total
        });
    });
    group.finish();

    let loaded: i64 = rt
        .block_on(sqlx::query_scalar("SELECT count(*) FROM import_peer").fetch_one(&pool))
        .expect("count staging rows");
    assert_eq!(loaded, ROWS as i64, "the peer loads the same rows");
    rt.block_on(async {
        pool.close().await;
        if let Ok(admin_pool) = db::connect(&base, 1).await {
            let _ =
                sqlx::query(&format!("DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")).execute(&admin_pool).await;
        }
    });
}

criterion_group!(benches, import_benchmark);
criterion_main!(benches);
