//! Rate and concurrency limits (issue 25 item 6): per credential, failed authentications per
//! client address (never refusing a valid credential from that address), open `/live` streams
//! per user, exports queued or running per user and per org; `/healthz` and `/readyz` never.

use crate::common::{self, TestApp, World, assert_problem, test_config};
use fieldvisit::config::Config;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// The test's settings: every limit off but the ones `tweak` sets.
fn config(tweak: impl FnOnce(&mut Config)) -> Config {
    let mut c = test_config("unused");
    c.rate_credential_per_min = 0;
    c.rate_unauthenticated_per_min = 0;
    c.rate_unauthenticated_hold_ms = 0;
    c.live_streams_per_user = 0;
    c.exports_per_user = 0;
    c.exports_per_org = 0;
    tweak(&mut c);
    c
}

/// A 429 problem with `Retry-After` of whole seconds, at most `max_s`.
fn assert_too_many(res: &common::Res, path: &str, max_s: u64) {
    assert_problem(res, 429, path);
    let after: u64 = res.header("retry-after").and_then(|v| v.parse().ok()).unwrap_or_default();
    assert!((1..=max_s).contains(&after), "Retry-After {after}: {}", res.describe());
}

fn osmand_path(id: &str, minute: i64) -> String {
    let t = chrono::Utc::now().timestamp() - 3600 + minute * 60;
    format!("/osmand?id={id}&timestamp={t}&lat=39.95&lon=116.05")
}

async fn probes_answer(app: &TestApp, token: Option<&str>) {
    for _ in 0..20 {
        for path in ["/healthz", "/readyz"] {
            let r = app.get(path, token).await;
            assert_eq!(r.status, 200, "{path} is never limited: {}", r.describe());
        }
    }
}

#[sqlx::test]
async fn a_credential_over_its_rate_gets_429_and_other_credentials_do_not(pool: PgPool) {
    let w = World::seed(&pool).await;
    // One request a minute after a burst of 3: the fourth at once is over, whatever the clock.
    let app =
        TestApp::spawn_with(pool, config(|c| (c.rate_credential_per_min, c.rate_credential_burst) = (1, 3))).await;
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/me", Some(&w.manager.token)).await.status, 200);
    }
    let over = app.get("/api/v1/me", Some(&w.manager.token)).await;
    assert_too_many(&over, "/api/v1/me", 60);
    // Another credential from the same address, and the same user's other routes, are unaffected
    // by the manager's bucket; the manager's own stays empty.
    assert_eq!(app.get("/api/v1/me", Some(&w.admin.token)).await.status, 200);
    assert_eq!(app.get("/api/v1/outlets", Some(&w.manager.token)).await.status, 429);
    // An OsmAnd id is a credential too: its own bucket, apart from the device's bearer token.
    let id = &w.device.osmand_id;
    for minute in 0..3 {
        let r = app.get(&osmand_path(id, minute), None).await;
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    assert_too_many(&app.get(&osmand_path(id, 3), None).await, "/osmand", 60);
    assert_eq!(app.get("/api/v1/me", Some(&w.device.token)).await.status, 200);
    // Traccar Client's JSON carries the id in its body: the same bucket, counted once a request.
    let traccar = |minute: i64| {
        let t = chrono::Utc::now() - chrono::Duration::minutes(60 - minute);
        json!({"device_id": w.device2.osmand_id, "location": {"timestamp": t.to_rfc3339(),
            "coords": {"latitude": 39.95, "longitude": 116.05}}})
    };
    for minute in 0..3 {
        let r = app.post("/osmand", None, &traccar(minute)).await;
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    assert_too_many(&app.post("/osmand", None, &traccar(3)).await, "/osmand", 60);
    assert_eq!(app.get(&osmand_path(&w.device2.osmand_id, 4), None).await.status, 429, "one bucket per id");
    probes_answer(&app, Some(&w.manager.token)).await;
    // `fieldvisit_rate_limited_total` counts the refusals.
    let metrics = app.get("/metrics", None).await.text;
    assert!(metrics.lines().any(|l| l == "fieldvisit_rate_limited_total{limit=\"credential\"} 5"), "{metrics}");
}

#[sqlx::test]
async fn failed_authentications_from_one_address_get_429_and_valid_credentials_still_work(pool: PgPool) {
    let w = World::seed(&pool).await;
    let limit = |c: &mut Config| (c.rate_unauthenticated_per_min, c.rate_unauthenticated_burst) = (1, 5);
    let app = TestApp::spawn_with(pool, config(limit)).await;
    // Five failures, each with another wrong token: answered 401 as usual.
    for n in 0..5 {
        let r = app.get("/api/v1/me", Some(&format!("fv_wrong{n}"))).await;
        assert_problem(&r, 401, "/api/v1/me");
    }
    // From then on every failure from this address is 429, whatever it tries.
    assert_too_many(&app.get("/api/v1/me", Some("fv_wrong-again")).await, "/api/v1/me", 60);
    assert_too_many(&app.get("/api/v1/outlets", None).await, "/api/v1/outlets", 60);
    assert_too_many(&app.get(&osmand_path("not-a-device", 0), None).await, "/osmand", 60);
    assert_too_many(
        &app.post("/api/v1/enrolments/redeem", None, &json!({"code": "guess"})).await,
        "/api/v1/enrolments/redeem",
        60,
    );
    // Hundreds of phones may share the address (carrier NAT): valid credentials still work.
    assert_eq!(app.get("/api/v1/me", Some(&w.manager.token)).await.status, 200);
    assert_eq!(app.get("/api/v1/outlets", Some(&w.rep.token)).await.status, 200);
    let ping = app.get(&osmand_path(&w.device.osmand_id, 0), None).await;
    assert_eq!(ping.status, 200, "{}", ping.describe());
    let (user, password) = (&w.device.owntracks_user, &w.device.owntracks_password);
    let owntracks = app
        .send(app.client.post(app.url("/owntracks")).basic_auth(user, Some(password)).json(&json!({"_type": "lwt"})))
        .await;
    assert_eq!(owntracks.status, 200, "{}", owntracks.describe());
    probes_answer(&app, None).await;
}

/// The `fieldvisit_rate_limited_held` gauge of the server's /metrics.
async fn held_refusals(app: &TestApp) -> Option<u64> {
    let metrics = app.get("/metrics", None).await.text;
    metrics.lines().find_map(|l| l.strip_prefix("fieldvisit_rate_limited_held ")).and_then(|v| v.trim().parse().ok())
}

/// A flood of failing requests (item 6 and the attack benchmark): once an address is past its
/// failure limit, each refusal is held for `FV_RATE_UNAUTHENTICATED_HOLD_MS` before its 429 is
/// sent, so a client retrying at once slows to one attempt per hold; a valid credential from the
/// same address is answered meanwhile.
#[sqlx::test]
async fn a_refusal_past_the_failure_limit_is_held_before_it_is_answered(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn_with(
        pool,
        config(|c| {
            (c.rate_unauthenticated_per_min, c.rate_unauthenticated_burst) = (1, 2);
            // Far longer than the test: the held request is dropped, never awaited.
            c.rate_unauthenticated_hold_ms = 600_000;
        }),
    )
    .await;
    for n in 0..2 {
        assert_problem(&app.get("/api/v1/me", Some(&format!("fv_wrong{n}"))).await, 401, "/api/v1/me");
    }
    assert_eq!(held_refusals(&app).await, Some(0), "nothing held before the limit");
    let url = app.url(&osmand_path("not-a-device", 0));
    let client = app.client.clone();
    let held = tokio::spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) });
    // Wait (bounded) until the server holds the refusal.
    let deadline = Instant::now() + Duration::from_secs(20);
    while held_refusals(&app).await != Some(1) {
        assert!(Instant::now() < deadline, "the refusal is never held");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!held.is_finished(), "a held refusal is not answered yet");
    assert_eq!(app.get("/api/v1/me", Some(&w.manager.token)).await.status, 200, "valid credentials are not held");
    held.abort();
    let _ = held.await;
    // The held request's connection is gone: the server lets go of it (the gauge goes back).
    let deadline = Instant::now() + Duration::from_secs(20);
    while held_refusals(&app).await != Some(0) {
        assert!(Instant::now() < deadline, "a refusal whose client left is still held");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens `/live` and returns the response once its headers arrived (the stream stays open while
/// the response is kept).
async fn open_live(app: &TestApp, token: &str) -> reqwest::Response {
    let client = reqwest::Client::builder().no_proxy().connect_timeout(Duration::from_secs(5)).build().expect("client");
    client.get(app.url("/api/v1/live")).bearer_auth(token).send().await.expect("connect")
}

#[sqlx::test]
async fn a_user_has_at_most_the_configured_live_streams(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn_with(pool, config(|c| c.live_streams_per_user = 2)).await;
    let first = open_live(&app, &w.manager.token).await;
    let second = open_live(&app, &w.manager.token).await;
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = open_live(&app, &w.manager.token).await;
    // Checked before reading: a stream that was let in would never end.
    assert_eq!(third.status().as_u16(), 429, "a third stream");
    let third = common::read(third).await;
    assert_too_many(&third, "/api/v1/live", 60);
    // Another user's streams are theirs.
    let other = open_live(&app, &w.supervisor.token).await;
    assert_eq!(other.status().as_u16(), 200);
    // A closed stream frees its place: the server notices at its next write, which a new fix of
    // a device in the manager's scope causes.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut minute = 0;
    let again = loop {
        minute += 1;
        let at = chrono::Utc::now() - chrono::Duration::hours(1) + chrono::Duration::seconds(minute);
        let fix = json!([{"fix_time": at, "lat": 39.95, "lon": 116.05}]);
        let stored = app.post("/api/v1/pings", Some(&w.device.token), &fix).await;
        assert!(stored.status < 300, "{}", stored.describe());
        let res = open_live(&app, &w.manager.token).await;
        if res.status().as_u16() == 200 {
            break res;
        }
        assert!(Instant::now() < deadline, "a closed stream never freed its place");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    drop((second, again, other));
}

/// A queued export of `user`'s, stored directly (no worker runs it, so it stays queued).
async fn queued_export(pool: &PgPool, w: &World, user: i64) {
    let params = serde_json::from_value(period(w.t1)).expect("export params");
    fieldvisit::db::exports::create(pool, w.org_a, Some(user), &params).await.expect("queued export");
}

fn period(territory: i64) -> Value {
    let today = chrono::Utc::now().date_naive();
    json!({"scope": {"kind": "territory", "id": territory}, "from": today - chrono::Duration::days(6), "to": today, "formats": ["csv"]})
}

#[sqlx::test]
async fn exports_queued_or_running_are_capped_per_user_and_per_org(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn_with(
        pool.clone(),
        config(|c| {
            c.exports_per_user = 2;
            c.exports_per_org = 4;
        }),
    )
    .await;
    queued_export(&pool, &w, w.manager.id).await;
    queued_export(&pool, &w, w.manager.id).await;
    queued_export(&pool, &w, w.admin.id).await;
    // The manager has two: a third is refused, naming the cap.
    let r = app.post("/api/v1/exports", Some(&w.manager.token), &period(w.t1)).await;
    assert_problem(&r, 409, "/api/v1/exports");
    assert!(r.json["detail"].as_str().is_some_and(|d| d.contains("you have 2")), "{}", r.describe());
    // The supervisor has none and the org three: started.
    let r = app.post("/api/v1/exports", Some(&w.supervisor.token), &period(w.t1)).await;
    assert_eq!(r.status, 202, "{}", r.describe());
    // With one more queued the org has at least four, finished or not the supervisor's.
    queued_export(&pool, &w, w.admin.id).await;
    let r = app.post("/api/v1/exports", Some(&w.auditor.token), &period(w.t1)).await;
    assert_problem(&r, 409, "/api/v1/exports");
    assert!(r.json["detail"].as_str().is_some_and(|d| d.contains("the org has")), "{}", r.describe());
}

#[sqlx::test]
async fn every_operation_but_the_probes_declares_429(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let doc = app.get("/openapi.json", None).await.json;
    let shared = &doc["components"]["responses"]["TooManyRequests"];
    assert!(shared["headers"]["Retry-After"].is_object(), "{shared}");
    assert!(shared["content"]["application/problem+json"].is_object(), "{shared}");
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let Some(responses) = op.get("responses") else { continue };
            let declared = responses.get("429").is_some();
            let probe = path == "/healthz" || path == "/readyz";
            assert_eq!(declared, !probe, "{method} {path}: 429 declared {declared}");
            operations += 1;
        }
    }
    assert!(operations > 50, "{operations} operations");
}
