//! Map layers over 1M outlets and 30 days of visits, against the real server binary (a separate
//! process) over loopback, side by side with PostGIS answering the same question in the same run:
//!
//! 1. the GeoJSON outlet layer for viewports of ~5,000 outlets, each with its status at the end of
//!    the period (target p50 < 20 ms) vs PostGIS building the same `FeatureCollection`
//!    (`json_agg(ST_AsGeoJSON(..))` over `src/db/sql/outlet_statuses.sql` with the status rule in
//!    SQL);
//! 2. an outlet vector tile vs PostGIS `ST_AsMVT` over the same outlets, attributes and statuses
//!    (target: faster);
//! 3. the H3 coverage hexagons at resolution 8 for the whole org (target < 1 s).
//!
//! The data (`benches/sql/layers_seed.sql`) goes into a scratch database next to `DATABASE_URL`
//! (`fieldvisit_bench_layers`), seeded once (about 4 minutes) and kept between runs; it is migrated
//! on every run. PostGIS is queried over one sqlx connection, so its figures include the round trip
//! as ours do.
//!
//! `cargo bench --bench layers` (or `make bench`); prints the BENCHMARKS.md rows at the end.

mod common;

use chrono::{Duration as Days, NaiveDate};
use common::start_server;
use fieldvisit::admin;
use sqlx::{Connection, PgConnection, PgPool};
use std::time::{Duration, Instant};

const SCRATCH_DB: &str = "fieldvisit_bench_layers";
const OUTLETS: i64 = 1_000_000;
const VIEWPORTS: usize = 20;
const ROUNDS: usize = 5;

/// The scratch database, seeded unless it already holds the data set.
async fn scratch(base: &str) -> (PgPool, String) {
    let count = "SELECT count(*) FROM outlets";
    let what = "1M outlets, 30 days of visits; about 4 minutes, once";
    common::scratch_database(base, SCRATCH_DB, count, OUTLETS, "layers_seed.sql", what).await
}

/// Boxes of about 5,000 outlets (4,500-5,500) around outlets drawn from the data set.
async fn viewports(conn: &mut PgConnection, n: usize) -> Vec<[f64; 4]> {
    let centres: Vec<(f64, f64)> =
        sqlx::query_as("SELECT ST_X(location), ST_Y(location) FROM outlets WHERE id % 997 = 3 ORDER BY id LIMIT $1")
            .bind(n as i64 * 3)
            .fetch_all(&mut *conn)
            .await
            .expect("centres");
    let mut boxes = Vec::new();
    for (lon, lat) in centres {
        let (mut lo, mut hi) = (0.001_f64, 0.5_f64);
        for _ in 0..20 {
            let half = f64::midpoint(lo, hi);
            let b = [lon - half, lat - half, lon + half, lat + half];
            let count: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM outlets WHERE location && ST_MakeEnvelope($1, $2, $3, $4, 4326)",
            )
            .bind(b[0])
            .bind(b[1])
            .bind(b[2])
            .bind(b[3])
            .fetch_one(&mut *conn)
            .await
            .expect("count");
            if (4_500..=5_500).contains(&count) {
                boxes.push(b);
                break;
            }
            if count < 4_500 { lo = half } else { hi = half }
        }
        if boxes.len() == n {
            break;
        }
    }
    boxes
}

/// The status rule of `domain::coverage::outlet_status` in SQL, over `outlet_statuses.sql`.
fn peer_statuses() -> String {
    format!(
        "SELECT s.*, CASE WHEN s.status_at_end <> 'active' THEN 'closed'
                          WHEN s.last_valid_visit IS NULL THEN 'never_visited'
                          WHEN ($4::date - s.last_valid_visit) < s.cycle_days::float8 / s.required_visits THEN 'visited'
                          WHEN ($4::date - s.last_valid_visit) < 1.5 * s.cycle_days::float8 / s.required_visits THEN 'due'
                          ELSE 'overdue' END AS status
           FROM ({}) s",
        include_str!("../src/db/sql/outlet_statuses.sql")
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.9))
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> (f64, usize) {
    let t = Instant::now();
    let res = client.get(url).bearer_auth(token).send().await.expect("request");
    assert_eq!(res.status(), 200, "{url}");
    let body = res.bytes().await.expect("body");
    (t.elapsed().as_secs_f64() * 1e3, body.len())
}

/// Tile `z/x/y` holding `lat, lon`.
fn tile_of(lat: f64, lon: f64, z: u8) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = (lon + 180.0) / 360.0 * n;
    let y = (1.0 - lat.to_radians().tan().asinh() / std::f64::consts::PI) / 2.0 * n;
    (x as u32, y as u32)
}

fn main() {
    let Ok(base) = std::env::var("DATABASE_URL") else {
        eprintln!("DATABASE_URL not set: the layers benchmark needs a database");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run(&base));
}

#[allow(clippy::too_many_lines)]
async fn run(base: &str) {
    let (pool, url) = scratch(base).await;
    let org: i64 =
        sqlx::query_scalar("SELECT id FROM orgs WHERE slug = 'bench-layers'").fetch_one(&pool).await.expect("org");
    let login = format!("bench-admin-{}", std::process::id());
    let token = admin::create_user(&pool, org, &login, "Bench admin", fieldvisit::domain::access::Role::Admin, None)
        .await
        .expect("admin")
        .token;
    let root: i64 = sqlx::query_scalar("SELECT id FROM territories WHERE org_id = $1 AND code = 'CN'")
        .bind(org)
        .fetch_one(&pool)
        .await
        .expect("root");
    let to: NaiveDate =
        sqlx::query_scalar("SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date").fetch_one(&pool).await.expect("today");
    let from = to - Days::days(29);
    let mut conn = PgConnection::connect(&url).await.expect("peer connection");
    let boxes = viewports(&mut conn, VIEWPORTS).await;
    assert!(!boxes.is_empty(), "no viewport of ~5,000 outlets found");

    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let started = Instant::now();
    let server = start_server(&url, port, "layers", &[("FV_DERIVE_VISITS", "false")]);
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let origin = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while client.get(format!("{origin}/readyz")).send().await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(Instant::now() < deadline, "server not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let period = format!("from={from}&to={to}");
    // The first request loads the outlet index and the visit ledger of the org.
    let (first_ms, _) = get(&client, &format!("{origin}/api/v1/layers/outlets?{period}&limit=1"), &token).await;
    println!(
        "server ready and org loaded in {:.1} s (first request {first_ms:.0} ms)",
        started.elapsed().as_secs_f64()
    );

    // 1. GeoJSON outlet layer.
    let mut ours = Vec::new();
    let mut features = 0usize;
    for round in 0..=ROUNDS {
        for b in &boxes {
            let bbox = format!("{},{},{},{}", b[0], b[1], b[2], b[3]);
            let (ms, _) =
                get(&client, &format!("{origin}/api/v1/layers/outlets?{period}&bbox={bbox}&limit=10000"), &token).await;
            if round > 0 {
                ours.push(ms);
            }
        }
    }
    let check = client
        .get(format!(
            "{origin}/api/v1/layers/outlets?{period}&bbox={},{},{},{}&limit=10000",
            boxes[0][0], boxes[0][1], boxes[0][2], boxes[0][3]
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    features += check["numberReturned"].as_u64().unwrap_or(0) as usize;
    let peer_layer = format!(
        "SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
                    'type', 'Feature', 'id', p.id, 'geometry', ST_AsGeoJSON(ST_MakePoint(p.lon, p.lat))::json,
                    'properties', json_build_object('code', p.code, 'name', p.name, 'tier', p.tier,
                        'channel_type', p.channel_type, 'status', p.status, 'last_valid_visit', p.last_valid_visit,
                        'valid_visits', p.valid_visits))), '[]'))::text
           FROM ({}) p",
        peer_statuses()
    );
    let mut peer = Vec::new();
    let mut peer_features = 0usize;
    for round in 0..=ROUNDS {
        for b in &boxes {
            let t = Instant::now();
            let body: String = sqlx::query_scalar(&peer_layer)
                .bind(org)
                .bind(None::<i64>)
                .bind(from)
                .bind(to)
                .bind(b[0])
                .bind(b[1])
                .bind(b[2])
                .bind(b[3])
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<Vec<i64>>)
                .bind(366)
                .bind(10_000_i64)
                .fetch_one(&mut conn)
                .await
                .expect("peer layer");
            if round > 0 {
                peer.push(t.elapsed().as_secs_f64() * 1e3);
            }
            if round == 0 && peer_features == 0 {
                peer_features = body.matches("\"Feature\"").count();
            }
        }
    }
    let (ours_p50, ours_p90) = summary(ours);
    let (peer_p50, peer_p90) = summary(peer);
    println!(
        "outlet layer, {} viewports x {ROUNDS}: ours p50 {ours_p50:.1} ms p90 {ours_p90:.1} ms ({features} features in the first); \
         PostGIS json_agg p50 {peer_p50:.1} ms p90 {peer_p90:.1} ms ({peer_features} features in the first)",
        boxes.len()
    );

    // 2. Vector tiles: the tiles holding the viewport centres at zoom 13 and 14.
    let tiles: Vec<(u8, u32, u32)> = boxes
        .iter()
        .flat_map(|b| {
            let (lat, lon) = (f64::midpoint(b[1], b[3]), f64::midpoint(b[0], b[2]));
            [13u8, 14].map(|z| {
                let (x, y) = tile_of(lat, lon, z);
                (z, x, y)
            })
        })
        .collect();
    let mut ours_tile = Vec::new();
    let mut ours_bytes = 0;
    for round in 0..=ROUNDS {
        for (z, x, y) in &tiles {
            let (ms, len) = get(&client, &format!("{origin}/tiles/outlets/{z}/{x}/{y}.mvt?{period}"), &token).await;
            if round > 0 {
                ours_tile.push(ms);
            } else {
                ours_bytes += len;
            }
        }
    }
    let peer_tile = format!(
        "WITH env AS (SELECT ST_TileEnvelope($14, $15, $16) AS e, ST_Transform(ST_TileEnvelope($14, $15, $16), 4326) AS g),
              mvt AS (
                  SELECT ST_AsMVTGeom(ST_Transform(ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326), 3857), env.e, 4096, 0, false) AS geom,
                         p.id, p.code, p.name, p.tier, p.channel_type, p.status
                    FROM ({}) p, env)
         SELECT ST_AsMVT(mvt.*, 'outlets', 4096, 'geom', 'id') FROM mvt",
        peer_statuses()
    );
    let mut peer_tile_ms = Vec::new();
    let mut peer_bytes = 0;
    for round in 0..=ROUNDS {
        for (z, x, y) in &tiles {
            let started = Instant::now();
            let (west, south, east, north) = bounds(*z, *x, *y);
            let bytes: Vec<u8> = sqlx::query_scalar(&peer_tile)
                .bind(org)
                .bind(None::<i64>)
                .bind(from)
                .bind(to)
                .bind(west)
                .bind(south)
                .bind(east)
                .bind(north)
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<Vec<i64>>)
                .bind(366)
                .bind(i64::MAX)
                .bind(i32::from(*z))
                .bind(*x as i32)
                .bind(*y as i32)
                .fetch_one(&mut conn)
                .await
                .expect("peer tile");
            if round > 0 {
                peer_tile_ms.push(started.elapsed().as_secs_f64() * 1e3);
            } else {
                peer_bytes += bytes.len();
            }
        }
    }
    let (tile_p50, tile_p90) = summary(ours_tile);
    let (peer_tile_p50, peer_tile_p90) = summary(peer_tile_ms);
    println!(
        "outlet tiles, {} tiles (zoom 13 and 14) x {ROUNDS}: ours p50 {tile_p50:.1} ms p90 {tile_p90:.1} ms ({} bytes per tile); \
         PostGIS ST_AsMVT p50 {peer_tile_p50:.1} ms p90 {peer_tile_p90:.1} ms ({} bytes per tile)",
        tiles.len(),
        ours_bytes / tiles.len(),
        peer_bytes / tiles.len()
    );

    // 3. H3 coverage hexagons, resolution 8, the whole org.
    let mut coverage = Vec::new();
    let (mut cells, mut truncated) = (0, false);
    for round in 0..=5 {
        let t = Instant::now();
        let bytes = client
            .get(format!("{origin}/api/v1/layers/coverage?{period}&h3_res=8&limit=50000"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("coverage")
            .bytes()
            .await
            .expect("body");
        // Until the whole answer is received; parsing it here is the client's cost, not the server's.
        let elapsed = t.elapsed();
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        if round > 0 {
            coverage.push(elapsed.as_secs_f64() * 1e3);
        }
        cells = body["numberReturned"].as_u64().unwrap_or(0);
        truncated = body["truncated"].as_bool().unwrap_or(false);
    }
    let (cov_p50, _) = summary(coverage);
    let mut territory = Vec::new();
    let mut all_cells = 0;
    for round in 0..=5 {
        let t = Instant::now();
        let bytes = client
            .get(format!("{origin}/api/v1/territories/{root}/coverage?{period}&h3_res=8"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("territory coverage")
            .bytes()
            .await
            .expect("body");
        // Until the whole answer is received; parsing it here is the client's cost, not the server's.
        let elapsed = t.elapsed();
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        if round > 0 {
            territory.push(elapsed.as_secs_f64() * 1e3);
        }
        all_cells = body["h3"]["cells"].as_array().map_or(0, Vec::len);
    }
    let (terr_p50, _) = summary(territory);
    let mut city_tiles = Vec::new();
    for round in 0..=ROUNDS {
        for b in &boxes {
            let (x, y) = tile_of(f64::midpoint(b[1], b[3]), f64::midpoint(b[0], b[2]), 8);
            let (ms, _) =
                get(&client, &format!("{origin}/tiles/coverage/8/{x}/{y}.mvt?{period}&h3_res=8"), &token).await;
            if round > 0 {
                city_tiles.push(ms);
            }
        }
    }
    let (cov_tile_p50, _) = summary(city_tiles);
    println!(
        "H3 coverage res 8, 1M outlets, 30 days: territory coverage of the whole org (figures overall, by tier, \
         channel, child, all {all_cells} cells, status counts) median {terr_p50:.0} ms; coverage layer median \
         {cov_p50:.0} ms ({cells} cells, truncated {truncated}); coverage tile z8 res 8 p50 {cov_tile_p50:.1} ms"
    );
    drop(server);

    println!("\nBENCHMARKS.md rows:");
    println!(
        "| outlet GeoJSON layer, ~5,000-outlet viewport of 1M outlets with period status (target p50 < 20 ms) | p50 {ours_p50:.1} ms, p90 {ours_p90:.1} ms | p50 {peer_p50:.1} ms, p90 {peer_p90:.1} ms (PostGIS `json_agg` of the same features and statuses) | {:.1}x | `DATABASE_URL=$(scripts/db.sh url) cargo bench --bench layers` |",
        peer_p50 / ours_p50
    );
    println!(
        "| outlet vector tile, zoom 13-14, 1M outlets with period status (target: faster than PostGIS) | p50 {tile_p50:.1} ms, p90 {tile_p90:.1} ms | p50 {peer_tile_p50:.1} ms, p90 {peer_tile_p90:.1} ms (PostGIS `ST_AsMVT` of the same outlets and statuses) | {:.1}x | `DATABASE_URL=$(scripts/db.sh url) cargo bench --bench layers` |",
        peer_tile_p50 / tile_p50
    );
    println!(
        "| H3 coverage res 8, 1M outlets, 30 days of visits (target < 1 s) | whole-org territory coverage ({all_cells} cells, all figures) median {terr_p50:.0} ms; GeoJSON coverage layer ({cells} cells) {cov_p50:.0} ms; coverage tile z8 p50 {cov_tile_p50:.1} ms | - | - | `DATABASE_URL=$(scripts/db.sh url) cargo bench --bench layers` |"
    );
}

/// The tile's bounds (west, south, east, north) in degrees.
fn bounds(z: u8, x: u32, y: u32) -> (f64, f64, f64, f64) {
    let n = f64::from(1u32 << z);
    let lat = |y: f64| (std::f64::consts::PI * (1.0 - 2.0 * y / n)).sinh().atan().to_degrees();
    (f64::from(x) / n * 360.0 - 180.0, lat(f64::from(y) + 1.0), f64::from(x + 1) / n * 360.0 - 180.0, lat(f64::from(y)))
}
