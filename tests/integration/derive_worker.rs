//! The derivation worker's supervision (issue 25, item 13): a rep-day whose derivation panics is
//! caught and counted, is not retried in a hot loop, and the worker goes on deriving the others.

use crate::common::{TestApp, World};
use chrono::NaiveDate;
use fieldvisit::db::visits::DirtyDay;
use fieldvisit::derive::{DeriveStep, Deriver, derive_days};
use fieldvisit::domain::visit::VisitRules;
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn dirty_reps(pool: &PgPool, org_id: i64) -> Vec<i64> {
    sqlx::query_scalar("SELECT DISTINCT rep_id FROM rep_day_dirty WHERE org_id = $1 ORDER BY 1")
        .bind(org_id)
        .fetch_all(pool)
        .await
        .expect("dirty rep-days")
}

fn metric(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .find(|f| f.name() == name)
        .and_then(|f| f.get_metric().first().map(|m| m.get_counter().get_value()))
        .unwrap_or(-1.0)
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_panicking_rep_day_is_caught_counted_and_not_retried_in_a_loop(pool: PgPool) {
    let w = World::seed(&pool).await;
    let (first, last) =
        (NaiveDate::from_ymd_opt(2000, 1, 1).expect("d"), NaiveDate::from_ymd_opt(2100, 1, 1).expect("d"));
    fieldvisit::db::visits::mark_period(&pool, w.org_a, first, last, "test").await.expect("mark");
    let marked = dirty_reps(&pool, w.org_a).await;
    assert!(marked.contains(&w.rep.id) && marked.contains(&w.rep2.id), "{marked:?}");

    // The step panics for one rep (a test's own step; the server's is `derive_days`). It is given
    // groups of rep-days; each call is recorded with the reps of its group.
    let calls: Arc<Mutex<Vec<Vec<i64>>>> = Arc::default();
    let (seen, panicker) = (calls.clone(), w.rep.id);
    let step: DeriveStep = Arc::new(move |db, days: Vec<DirtyDay>| {
        seen.lock().expect("lock").push(days.iter().map(|d| d.rep_id).collect());
        Box::pin(async move {
            assert!(days.iter().all(|d| d.rep_id != panicker), "test: the derivation of this rep-day panics");
            derive_days(&db, &days, &VisitRules::default()).await
        })
    });
    let registry = prometheus::Registry::new();
    let deriver = Deriver::start_with(&pool, &registry, true, 0, step).expect("start");

    let started = Instant::now();
    while dirty_reps(&pool, w.org_a).await != [w.rep.id] {
        assert!(started.elapsed() < Duration::from_secs(60), "the other rep-days are derived after the panic");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Several polling rounds later, the panicked rep-day was tried once: it keeps its claim until the
    // claim goes stale, so no hot loop.
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Its group (if it had others) was derived again one rep-day at a time: the panicking rep-day
    // was tried once alone and at most once in a group, and never again.
    let calls = calls.lock().expect("lock").clone();
    let alone = calls.iter().filter(|c| c.as_slice() == [panicker]).count();
    let in_group = calls.iter().filter(|c| c.len() > 1 && c.contains(&panicker)).count();
    assert_eq!(alone, 1, "the panicking rep-day is not retried at once: {calls:?}");
    assert!(in_group <= 1, "its group is tried once: {calls:?}");
    assert!((metric(&registry, "derive_panics_total") - 1.0).abs() < f64::EPSILON);
    assert!((metric(&registry, "derive_worker_restarts_total")).abs() < f64::EPSILON);

    // The worker still derives: a rep-day marked now is derived.
    fieldvisit::db::visits::mark_period(&pool, w.org_a, first, last, "test again").await.expect("mark");
    deriver.wake();
    let started = Instant::now();
    while dirty_reps(&pool, w.org_a).await.contains(&w.rep2.id) {
        assert!(started.elapsed() < Duration::from_secs(60), "the worker goes on after a panic");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(deriver);

    // The server shows both counters in /metrics.
    let app = TestApp::spawn(pool).await;
    let text = app.get("/metrics", None).await.text;
    for name in ["fieldvisit_derive_panics_total", "fieldvisit_derive_worker_restarts_total"] {
        assert!(text.contains(name), "{name} in /metrics");
    }
}

/// A worker whose handle is dropped (an instance shutting down, the demo loader's workers when it
/// is done) claims nothing more: it used to claim a batch of dirty rep-days on its next round and
/// then stop without deriving them, so they waited for the stale-claim takeover (300 s).
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_dropped_worker_leaves_dirty_rep_days_to_the_others(pool: PgPool) {
    let w = World::seed(&pool).await;
    let (first, last) =
        (NaiveDate::from_ymd_opt(2000, 1, 1).expect("d"), NaiveDate::from_ymd_opt(2100, 1, 1).expect("d"));
    let gone = Deriver::start(&pool, &prometheus::Registry::new(), true, 0).expect("start");
    // Let it reach its wait for work, then drop its handle: its task wakes later by itself.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(gone);
    fieldvisit::db::visits::mark_period(&pool, w.org_a, first, last, "test").await.expect("mark");
    assert!(!dirty_reps(&pool, w.org_a).await.is_empty());
    // Past the dropped worker's next round (it polls every 2 s), another worker starts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let other = Deriver::start(&pool, &prometheus::Registry::new(), true, 0).expect("start");
    let started = Instant::now();
    while !dirty_reps(&pool, w.org_a).await.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "rep-days left claimed by a dropped worker");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(other);
}
