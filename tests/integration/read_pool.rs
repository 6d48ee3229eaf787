//! The read pool (`FV_READ_DATABASE_URL`, issue 28): reads that may lag are answered the same
//! through it, its state is in /metrics, and an unreachable read pool sends them to the primary
//! instead of failing. (That it runs on a standby is shown by `make cluster-test`.)

use crate::common;

use common::{TestApp, World, test_config};
use fieldvisit::config::Config;
use sqlx::PgPool;
use std::time::Duration;

/// The URL of the test's own database (`sqlx::test` makes one per test).
async fn own_url(pool: &PgPool) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(pool).await.expect("database name");
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let (head, tail) = base.split_once('?').map_or((base.as_str(), ""), |(h, t)| (h, t));
    let root = head.rsplit_once('/').map_or(head, |(r, _)| r);
    if tail.is_empty() { format!("{root}/{name}") } else { format!("{root}/{name}?{tail}") }
}

/// A metric's value in the /metrics text, once it is there.
async fn metric(app: &TestApp, name: &str) -> Option<f64> {
    let res = app.get("/metrics", None).await;
    res.text.lines().find_map(|l| l.strip_prefix(&format!("{name} ")).and_then(|v| v.trim().parse().ok()))
}

/// Waits (bounded) until `name` reads `want`; answers the last value read.
async fn settle(app: &TestApp, name: &str, want: f64) -> Option<f64> {
    let mut last = None;
    for _ in 0..100 {
        last = metric(app, name).await;
        if last == Some(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

fn with_reads(url: Option<String>) -> Config {
    Config { read_database_url: url, ..test_config("") }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn reads_through_the_read_pool_answer_as_the_primary_does(pool: PgPool) {
    let w = World::seed(&pool).await;
    let plain = TestApp::spawn(pool.clone()).await;
    let read = TestApp::spawn_with(pool.clone(), with_reads(Some(own_url(&pool).await))).await;
    // The read pool here is the primary itself: sampled, it lags by nothing and is no standby.
    assert_eq!(settle(&read, "fieldvisit_read_pool_staleness_ms", 0.0).await, Some(0.0));
    assert_eq!(metric(&read, "fieldvisit_read_pool_on_standby").await, Some(0.0));
    for path in [
        "/api/v1/layers/outlets".to_owned(),
        format!("/api/v1/territories/{}/coverage", w.root),
        format!("/api/v1/territories/{}/outlet-status", w.root),
    ] {
        let (a, b) = (plain.get(&path, Some(&w.admin.token)).await, read.get(&path, Some(&w.admin.token)).await);
        assert_eq!(a.status, 200, "{path}: {}", a.describe());
        assert_eq!(a.json, b.json, "{path}");
    }
    assert_eq!(metric(&read, "fieldvisit_read_pool_fallbacks_total").await, Some(0.0));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn an_unreachable_read_pool_sends_reads_to_the_primary(pool: PgPool) {
    let w = World::seed(&pool).await;
    let plain = TestApp::spawn(pool.clone()).await;
    // Nothing listens on port 1: the read pool cannot connect.
    let read = TestApp::spawn_with(pool.clone(), with_reads(Some("postgres://postgres@127.0.0.1:1/none".into()))).await;
    assert_eq!(settle(&read, "fieldvisit_read_pool_staleness_ms", -1.0).await, Some(-1.0));
    let path = format!("/api/v1/territories/{}/coverage", w.root);
    let (a, b) = (plain.get(&path, Some(&w.admin.token)).await, read.get(&path, Some(&w.admin.token)).await);
    assert_eq!(b.status, 200, "{}", b.describe());
    assert_eq!(a.json, b.json);
    assert!(metric(&read, "fieldvisit_read_pool_fallbacks_total").await.unwrap_or(0.0) >= 1.0);
}
