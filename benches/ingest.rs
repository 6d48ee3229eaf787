//! Ping ingestion under load, over loopback against the real server binary (a separate process),
//! with fsync on, side by side with the peer in the same run:
//!
//! 1. native batches, 1,000 pings per request, 8 concurrent clients, 1M pings: committed pings/s vs
//!    `psql \copy` of the same rows into the same `pings` table (emptied first);
//! 2. OsmAnd GET, one ping per request, 200 concurrent keep-alive connections for 15 s: committed
//!    pings/s and p50/p99 latency (Traccar publishes 8,000 msg/s on 4 cores; it is not run here).
//!    The load side is a minimal HTTP/1.1 client (as wrk is), so that on these shared cores the
//!    CPU goes to the server under test rather than to the load generator.
//!
//! Every acknowledged ping is checked against the database afterwards. Needs `DATABASE_URL` (a
//! scratch database `fieldvisit_bench_ingest` is created next to it) and psql.
//!
//! `cargo bench --bench ingest` (or `make bench`); prints the BENCHMARKS.md rows at the end.

mod common;

use common::{osmand_load, psql, scratch_org, start_server};
use sqlx::PgPool;
use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SCRATCH_DB: &str = "fieldvisit_bench_ingest";
const DEVICES: usize = 100;
const BATCH: usize = 1_000;
const NATIVE_REQUESTS: usize = 1_000;
const NATIVE_CLIENTS: usize = 8;
const OSMAND_CONNECTIONS: usize = 200;
const OSMAND_SECONDS: u64 = 15;
/// The limit settings this bench runs with: the per-credential limiter is on (its cost is in the
/// figures) but set above what the load asks of it (the OsmAnd phase sends ~200 requests/s per
/// device, a phone about one every few seconds), so no request is refused; the bench checks it.
const LIMITS: &[(&str, &str)] = &[("FV_RATE_CREDENTIAL_PER_MIN", "60000"), ("FV_RATE_CREDENTIAL_BURST", "6000")];

/// One ping of the native scenario: request `r`, item `i` (device `r % DEVICES`, unique fix time).
fn native_row(r: usize, i: usize, day_start: i64) -> (usize, i64, f64, f64) {
    let device = r % DEVICES;
    let t = day_start + ((r / DEVICES) * BATCH + i) as i64;
    let lat = 39.9 + (device as f64) * 0.001 + (i as f64) * 1e-6;
    let lon = 116.4 + (i as f64) * 1e-6;
    (device, t, lat, lon)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[idx]) / 1000.0
}

async fn count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pings").fetch_one(pool).await.expect("count")
}

fn main() {
    let Ok(base) = std::env::var("DATABASE_URL") else {
        eprintln!("DATABASE_URL not set: the ingest benchmark needs a database");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run(&base));
}

async fn run(base: &str) {
    let (pool, url, org, devices) = scratch_org(base, SCRATCH_DB, DEVICES).await;
    // The figures are only meaningful with durable commits: say what the database does.
    let setting = |name: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, String>(&format!("SHOW {name}")).fetch_one(&pool).await.expect("SHOW setting") }
    };
    let (fsync, synchronous_commit) = (setting("fsync").await, setting("synchronous_commit").await);
    println!("database: fsync = {fsync}, synchronous_commit = {synchronous_commit}");
    if fsync != "on" || synchronous_commit == "off" {
        eprintln!("warning: commits are not durable on this database; the figures are not comparable");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let server = start_server(&url, port, "ingest", LIMITS);
    let client =
        reqwest::Client::builder().no_proxy().pool_max_idle_per_host(OSMAND_CONNECTIONS).build().expect("client");
    let origin = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{origin}/readyz")).send().await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(Instant::now() < deadline, "server not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let day_start = (chrono::Utc::now() - chrono::Duration::days(2)).timestamp() / 86_400 * 86_400;

    // 1. Native batches. Bodies are built before the clock starts.
    let bodies: Arc<Vec<(usize, String)>> = Arc::new(
        (0..NATIVE_REQUESTS)
            .map(|r| {
                let mut body = String::with_capacity(BATCH * 60);
                body.push('[');
                for i in 0..BATCH {
                    let (_, t, lat, lon) = native_row(r, i, day_start);
                    if i > 0 {
                        body.push(',');
                    }
                    let _ = write!(body, r#"{{"fix_time":{t},"lat":{lat:.7},"lon":{lon:.7}}}"#);
                }
                body.push(']');
                (r % DEVICES, body)
            })
            .collect(),
    );
    let tokens: Arc<Vec<String>> = Arc::new(devices.iter().map(|d| d.token.clone()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..NATIVE_CLIENTS {
        let (client, origin, bodies, tokens, next) =
            (client.clone(), origin.clone(), bodies.clone(), tokens.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut stored = 0u64;
            loop {
                let r = next.fetch_add(1, Ordering::SeqCst);
                let Some((device, body)) = bodies.get(r) else { break };
                let res = client
                    .post(format!("{origin}/api/v1/pings"))
                    .bearer_auth(&tokens[*device])
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("native request");
                assert_eq!(res.status().as_u16(), 200, "native batch answered {}", res.status());
                let report: serde_json::Value = res.json().await.expect("report");
                stored += report["stored"].as_u64().unwrap_or(0);
            }
            stored
        }));
    }
    let mut acknowledged = 0;
    for w in workers {
        acknowledged += w.await.expect("worker");
    }
    let native_secs = started.elapsed().as_secs_f64();
    let total = (NATIVE_REQUESTS * BATCH) as u64;
    assert_eq!(acknowledged, total, "every native ping acknowledged as stored");
    assert_eq!(count(&pool).await as u64, total, "every acknowledged ping is in the database");
    let native_rate = total as f64 / native_secs;
    println!("native: {total} pings in {native_secs:.2} s = {native_rate:.0} pings/s");

    // Peer: psql \copy of the same rows into the same (emptied) table.
    let csv_path = std::env::temp_dir().join("fieldvisit-bench-ingest.csv");
    {
        let mut csv = String::with_capacity(NATIVE_REQUESTS * BATCH * 70);
        for r in 0..NATIVE_REQUESTS {
            for i in 0..BATCH {
                let (device, t, lat, lon) = native_row(r, i, day_start);
                let time = chrono::DateTime::from_timestamp(t, 0).expect("valid time").format("%Y-%m-%d %H:%M:%S+00");
                let _ = writeln!(csv, "{org},{},{time},{lat:.7},{lon:.7},native", devices[device].id);
            }
        }
        std::fs::write(&csv_path, csv).expect("write csv");
    }
    sqlx::query("TRUNCATE pings").execute(&pool).await.expect("truncate");
    let copy_sql = format!(
        "\\copy pings (org_id, device_id, fix_time, lat, lon, source) FROM '{}' WITH (FORMAT csv)",
        csv_path.display()
    );
    let copy_started = Instant::now();
    let status =
        Command::new(psql()).arg(&url).arg("-v").arg("ON_ERROR_STOP=1").arg("-q").arg("-c").arg(&copy_sql).status();
    let copy_secs = copy_started.elapsed().as_secs_f64();
    let copy_rate = match status {
        Ok(s) if s.success() && count(&pool).await as u64 == total => Some(total as f64 / copy_secs),
        other => {
            eprintln!("psql \\copy failed: {other:?}");
            None
        }
    };
    if let Some(rate) = copy_rate {
        println!("psql \\copy: {total} rows in {copy_secs:.2} s = {rate:.0} rows/s");
    }
    let _ = std::fs::remove_file(&csv_path);
    sqlx::query("TRUNCATE pings").execute(&pool).await.expect("truncate");

    // 2. OsmAnd GET, one ping per request, 200 connections.
    let ids: Arc<Vec<String>> = Arc::new(devices.iter().map(|d| d.osmand_id.clone()).collect());
    let base_ms = (chrono::Utc::now() - chrono::Duration::hours(3)).timestamp_millis();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let (mut latencies, osmand_secs) =
        osmand_load(addr, &ids, OSMAND_CONNECTIONS, Duration::from_secs(OSMAND_SECONDS), base_ms).await;
    latencies.sort_unstable();
    let acked = latencies.len() as u64;
    let stored = count(&pool).await as u64;
    assert_eq!(stored, acked, "every acknowledged OsmAnd ping is in the database");
    let osmand_rate = acked as f64 / osmand_secs;
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
    println!(
        "osmand: {acked} pings in {osmand_secs:.2} s = {osmand_rate:.0} pings/s, p50 {p50:.1} ms, p99 {p99:.1} ms"
    );
    // How the writer grouped the commits (both phases together).
    let metrics = client.get(format!("{origin}/metrics")).send().await.expect("metrics").text().await.expect("text");
    let value = |name: &str| -> f64 {
        metrics.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or(f64::NAN)
    };
    let (batches, pings) = (value("fieldvisit_ingest_batch_pings_count "), value("fieldvisit_ingest_batch_pings_sum "));
    let commit_s = value("fieldvisit_ingest_commit_seconds_sum ");
    println!(
        "writer: {batches} commits, {:.0} pings per commit, {:.1} ms per commit on average",
        pings / batches,
        commit_s / batches * 1000.0
    );
    let refused = value("fieldvisit_rate_limited_total{limit=\"credential\"} ");
    assert!(refused.is_nan() || refused == 0.0, "{refused} requests were refused by the rate limit");
    drop(server);

    let cmd = "`DATABASE_URL=$(scripts/db.sh url) cargo bench --bench ingest`";
    let limits = LIMITS.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
    println!("limit settings: {limits}");
    println!("\n| feature | ours | peer | ratio | command |\n|---|---|---|---|---|");
    match copy_rate {
        Some(copy) => println!(
            "| native ingest, 1,000-ping batches, 8 clients, 1M pings, fsync {fsync}, synchronous_commit {synchronous_commit}, {limits} (target >= 100,000/s and >= 0.5x COPY) | {native_rate:.0} pings/s | {copy:.0} rows/s (`psql \\copy` into the same table) | {:.2}x | {cmd} |",
            native_rate / copy
        ),
        None => println!("| native ingest, 1,000-ping batches, {limits} | {native_rate:.0} pings/s | - | - | {cmd} |"),
    }
    println!(
        "| OsmAnd GET, 1 ping per request, 200 connections, {OSMAND_SECONDS} s, {limits} (target >= 15,000/s) | {osmand_rate:.0} pings/s, p50 {p50:.1} ms, p99 {p99:.1} ms | 8,000 msg/s on 4 cores (Traccar, published; not run here) | {:.2}x | {cmd} |",
        osmand_rate / 8_000.0
    );
    pool.close().await;
}
