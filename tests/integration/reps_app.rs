//! The reps' app end to end: `map-ui/tests/app-e2e.mjs` drives Debian's chromium (playwright-core)
//! as a phone at the planned outlet against the real server. A manager's enrolment link signs the
//! phone in; today's planned stop is listed; offline, a check-in shows the distance estimate and
//! waits in the outbox, which survives a reload with no network (the service worker serves the
//! shell, the phone keeps the day) while no request reaches the server; online again, the outbox
//! drains; a check-out online shows the server's verdict; the open app sends its fixes as pings; a
//! write the server refuses (422) leaves the outbox and is listed with the server's reason.
//! Here, afterwards: the server stored that check-in exactly once, with its check-out, and the pings.
//!
//! Needs `map-ui/dist` (built by `scripts/map-ui.sh`) and `/usr/bin/chromium`
//! (`scripts/test-tools.sh`); `make test` provides both.

use crate::common::{IN_T1, TestApp, World, test_config};
use chrono::NaiveDate;
use serde_json::json;
use sqlx::PgPool;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn today(pool: &PgPool, org_id: i64) -> NaiveDate {
    sqlx::query_scalar("SELECT (now() AT TIME ZONE timezone)::date FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_one(pool)
        .await
        .expect("today")
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_reps_app_checks_in_offline_and_sends_it_once_online(pool: PgPool) {
    let dist = root().join("map-ui/dist");
    assert!(dist.join("app/index.html").is_file(), "map-ui is not built: run scripts/map-ui.sh (make test does)");
    let w = World::seed(&pool).await;
    let mut config = test_config("unused");
    config.map_ui_dir = dist;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let admin = Some(w.admin.token.as_str());

    let day = today(&pool, w.org_a).await;
    let plan = json!({"rep_id": w.rep.id, "name": "Today", "valid_from": day,
        "items": [{"outlet_id": w.o1, "visit_date": day, "seq": 1}]});
    let res = app.post("/api/v1/plans", admin, &plan).await;
    assert_eq!(res.status, 201, "{}", res.describe());

    let res =
        app.post(&format!("/api/v1/devices/{}/enrolments", w.device.id), admin, &json!({"trackers": false})).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let link = res.json["app"]["text"].as_str().expect("link");
    let code = link.split_once("#enrol=").expect("an enrolment link").1;

    let run = tokio::process::Command::new("node")
        .arg("tests/app-e2e.mjs")
        .current_dir(root().join("map-ui"))
        .env("FV_BASE_URL", &app.base)
        .env("FV_ENROL_URL", format!("{}/app/#enrol={code}", app.base))
        .env("FV_OUTLET_ID", w.o1.to_string())
        .env("FV_OUTLET_LAT", IN_T1.0.to_string())
        .env("FV_OUTLET_LON", IN_T1.1.to_string())
        .env("FV_REP_NAME", &w.rep.login)
        .env("FV_SCREENSHOTS", root().join("target/map-ui-screenshots"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(300), run)
        .await
        .expect("the app test ends within 5 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), 13, "{stdout}");

    // The check-in made offline reached the server once, at the outlet, then its check-out.
    let res = app.get(&format!("/api/v1/reps/{}/checkins?from={day}", w.rep.id), admin).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let at_o1: Vec<_> = res.json.as_array().expect("a list").iter().filter(|c| c["outlet_id"] == w.o1).collect();
    assert_eq!(at_o1.len(), 1, "{}", res.text);
    assert_eq!(at_o1[0]["at_outlet"], true, "{}", res.text);
    assert!(at_o1[0]["client_id"].as_str().is_some_and(|id| id.starts_with("app-")), "{}", res.text);
    assert!(at_o1[0]["checked_out_at"].is_string(), "{}", res.text);

    // The positions sent while the app was open are the device's, with the phone's ping ids.
    let pings: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pings WHERE device_id = $1 AND client_ping_id LIKE 'ping-%'")
            .bind(w.device.id)
            .fetch_one(&pool)
            .await
            .expect("pings");
    assert!(pings >= 1, "{pings} pings from the app");
}
