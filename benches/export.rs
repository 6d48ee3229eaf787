//! Audit export of 5,000,000 visit rows (a year of a province's 1,000 reps), measured as a user
//! runs it: `fieldvisit export --format xlsx,csv` (the release binary, its own process: snapshot
//! read, per-rep compliance, the XLSX workbook in constant-memory mode, the zipped CSVs, storing
//! the files in the database and writing them out), side by side in the same run with the floor
//! of any export: PostgreSQL's `\copy` of the same visit rows to one CSV file. Wall time and peak
//! resident memory (`ru_maxrss`) of each process are read the same way
//! (`benches/support_rusage.py`). Target: < 200 MB resident.
//!
//! The data (`benches/sql/export_seed.sql`) goes into a scratch database next to `DATABASE_URL`
//! (`fieldvisit_bench_export`), seeded once (a few minutes) and kept; earlier exports in it are
//! deleted before each run.
//!
//! `cargo bench --bench export`; prints the BENCHMARKS.md rows at the end.

mod common;

use common::{psql, url_for_database};
use std::process::Command;

const SCRATCH_DB: &str = "fieldvisit_bench_export";
const VISITS: i64 = 5_000_000;

struct Run {
    secs: f64,
    peak_mb: f64,
}

fn measure(args: &[&str], envs: &[(&str, &str)]) -> Run {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/support_rusage.py");
    let out = Command::new("python3").arg(script).args(args).envs(envs.iter().copied()).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("rusage JSON");
    assert_eq!(v["rc"], 0, "{args:?} failed");
    Run { secs: v["secs"].as_f64().unwrap_or(f64::NAN), peak_mb: v["peak_mb"].as_f64().unwrap_or(f64::NAN) }
}

fn main() {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (make bench sets it)");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let url = url_for_database(&base, SCRATCH_DB);
    let (from, to) = rt.block_on(async {
        let count = "SELECT count(*) FROM visits";
        let what = "5M visits; about 6 minutes, once";
        let (pool, _) = common::scratch_database(&base, SCRATCH_DB, count, VISITS, "export_seed.sql", what).await;
        sqlx::query("DELETE FROM export_chunks").execute(&pool).await.expect("old chunks");
        sqlx::query("DELETE FROM exports").execute(&pool).await.expect("old exports");
        let range: (chrono::NaiveDate, chrono::NaiveDate) =
            sqlx::query_as("SELECT min(rep_day), max(rep_day) FROM visits").fetch_one(&pool).await.expect("days");
        pool.close().await;
        range
    });
    let out_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-export");
    let _ = std::fs::remove_dir_all(out_dir);
    let (from, to) = (from.to_string(), to.to_string());
    let ours = measure(
        &[
            env!("CARGO_BIN_EXE_fieldvisit"),
            "export",
            "--org",
            "bench-export",
            "--territory",
            "P",
            "--from",
            &from,
            "--to",
            &to,
            "--format",
            "xlsx,csv",
            "--out",
            out_dir,
        ],
        &[("DATABASE_URL", &url), ("RUST_LOG", "warn")],
    );
    let copy_file = format!("{out_dir}/peer-copy.csv");
    let copy = format!(
        "\\copy (SELECT v.id, v.rep_id, u.login, v.rep_day, v.outlet_id, o.code, o.name, v.arrival, v.departure, \
         v.dwell_s, v.verdict, v.risk_score, v.ping_count, v.min_distance_m, v.median_distance_m, v.median_accuracy_m, \
         v.max_gap_s, v.evidence->'signals', v.review, v.counted, v.rule_version, ST_Y(v.location), ST_X(v.location) \
         FROM visits v JOIN users u ON u.org_id = v.org_id AND u.id = v.rep_id \
         JOIN outlets o ON o.org_id = v.org_id AND o.id = v.outlet_id \
         WHERE v.rep_day BETWEEN '{from}' AND '{to}' ORDER BY v.rep_id, v.arrival, v.id) TO '{copy_file}' CSV HEADER"
    );
    let psql_bin = psql();
    let peer = measure(&[psql_bin.to_str().expect("psql path"), &url, "-q", "-c", &copy], &[]);
    let size = |name: &str| std::fs::metadata(format!("{out_dir}/{name}")).map_or(0, |m| m.len()) as f64 / 1e6;
    println!(
        "files: audit.xlsx {:.0} MB, audit-csv.zip {:.0} MB; peer CSV {:.0} MB",
        size("audit.xlsx"),
        size("audit-csv.zip"),
        size("peer-copy.csv")
    );
    println!(
        "| Export of 5M visit rows, time (xlsx + zipped csv, stored and written) | {:.1} s | psql \\copy to CSV {:.1} s | {:.1}x | `cargo bench --bench export` |",
        ours.secs,
        peer.secs,
        ours.secs / peer.secs
    );
    println!(
        "| Export of 5M visit rows, peak resident memory (target < 200 MB) | {:.0} MB | psql \\copy {:.0} MB | {:.1}x | `cargo bench --bench export` |",
        ours.peak_mb,
        peer.peak_mb,
        ours.peak_mb / peer.peak_mb
    );
}
