//! The reps' app end to end: `map-ui/tests/app-e2e.mjs` drives Debian's chromium (playwright-core)
//! as a phone at the planned outlet against the real server. A manager's enrolment link signs the
//! phone in; today's planned stop is listed; offline, a check-in shows the distance estimate and
//! waits in the outbox, which survives a reload with no network (the service worker serves the
//! shell, the phone keeps the day) while no request reaches the server; online again, the outbox
//! drains; a check-out online shows the server's verdict; the open app sends its fixes as pings; a
//! write the server refuses (422) leaves the outbox and is listed with the server's reason.
//! The views of issue 24 too: the map after the list, the next stop's `geo:` link, the reminders
//! (an outlet never visited), the outlets nearby, a photo and checklist answers that wait in the
//! outbox behind their check-in (the checklist checked in the app first), my record with a visit's
//! verdict in words, the access log and a dispute, and all of it again offline after a reload.
//! Here, afterwards: the server stored that check-in exactly once, with its check-out, the pings,
//! and the dispute of the visit.
//!
//! Needs `map-ui/dist` (built by `scripts/map-ui.sh`) and `/usr/bin/chromium`
//! (`scripts/test-tools.sh`); `make test` provides both.

use crate::common::{self, IN_T1, TestApp, World, test_config};
use chrono::{DateTime, Duration, NaiveDate, Utc};
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

/// Metres per degree of latitude.
const M: f64 = 1.0 / 111_195.0;

/// A 15-minute stop at the outlet from `t0` (a fix every 30 s with a phone's scatter), then a walk
/// away north: a verified visit once derived.
fn stop(t0: DateTime<Utc>) -> serde_json::Value {
    let fix = |s: i64, north_m: f64| {
        let scatter = ((s * 7 / 30) % 11) as f64 - 5.0;
        json!({"fix_time": (t0 + Duration::seconds(s)).to_rfc3339(), "lat": IN_T1.0 + (north_m + scatter) * M,
               "lon": IN_T1.1, "accuracy_m": 6 + (s / 30) % 5})
    };
    let mut fixes: Vec<_> = (0..=30).map(|i| fix(i * 30, 0.0)).collect();
    fixes.extend((1..=10).map(|i| fix(900 + i * 30, 80.0 * i as f64)));
    json!(fixes)
}

/// The rep's visits once derivation has caught up (no dirty rep-day left).
async fn derived_visits(
    app: &TestApp,
    pool: &PgPool,
    token: &str,
    rep_id: i64,
    day: NaiveDate,
) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let dirty: i64 = sqlx::query_scalar("SELECT count(*) FROM rep_day_dirty WHERE rep_id = $1")
            .bind(rep_id)
            .fetch_one(pool)
            .await
            .expect("dirty");
        if dirty == 0 {
            let res = app.get(&format!("/api/v1/reps/{rep_id}/visits?from={day}"), Some(token)).await;
            assert_eq!(res.status, 200, "{}", res.describe());
            return res.json["visits"].as_array().expect("visits").clone();
        }
        assert!(std::time::Instant::now() < deadline, "rep-day of rep {rep_id} never derived");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
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

    // The org's checklist: one question of each type.
    let checklist = json!({"name": "Shop check", "items": [
        {"key": "display_ok", "label": "Display in place", "type": "yes_no", "required": true, "expect": true},
        {"key": "sim_stock", "label": "SIM stock", "type": "number", "integer": true, "min": 0, "max": 500},
        {"key": "competitor", "label": "Competitor present", "type": "choice", "choices": ["none", "mtn"]},
        {"key": "remarks", "label": "Remarks", "type": "text", "max_length": 20}]});
    let res = app.post("/api/v1/checklists", admin, &checklist).await;
    assert_eq!(res.status, 201, "{}", res.describe());

    // An outlet near the rep that was never visited: a reminder, and an outlet nearby.
    let o3 = json!({"code": "O3", "name": "O3 name", "channel_type": "business_hall", "tier": "A",
        "lat": IN_T1.0 + 300.0 * M, "lon": IN_T1.1});
    let res = app.post("/api/v1/outlets", admin, &o3).await;
    assert_eq!(res.status, 201, "{}", res.describe());

    // A visit at the planned outlet that ended minutes ago (from the phone's tracker), and a read of
    // the rep's track by the admin (the access log).
    let t0: DateTime<Utc> = Utc::now() - Duration::minutes(22);
    let res = app.post("/api/v1/pings", Some(&w.device.token), &stop(t0)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let visit_day: NaiveDate = sqlx::query_scalar("SELECT ($2 AT TIME ZONE timezone)::date FROM orgs WHERE id = $1")
        .bind(w.org_a)
        .bind(t0)
        .fetch_one(&pool)
        .await
        .expect("the visit's day");
    let visits = derived_visits(&app, &pool, &w.admin.token, w.rep.id, visit_day).await;
    let visit = visits.iter().find(|v| v["outlet_id"] == w.o1).expect("a visit at O1");
    assert_eq!(visit["verdict"], "verified", "{visit}");
    let visit_id = visit["id"].as_i64().expect("visit id");
    let res = app.get(&format!("/api/v1/reps/{}/track?date={visit_day}", w.rep.id), admin).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    // The app shows this month's visits: one made just before midnight on the 1st is last month's.
    let visit_in_month = visit_day.format("%Y-%m").to_string() == day.format("%Y-%m").to_string();

    let res =
        app.post(&format!("/api/v1/devices/{}/enrolments", w.device.id), admin, &json!({"trackers": false})).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let link = res.json["app"]["text"].as_str().expect("link");
    let code = link.split_once("#enrol=").expect("an enrolment link").1;

    common::run_browser_test(
        "app-e2e.mjs",
        &[
            ("FV_BASE_URL", app.base.clone()),
            ("FV_ENROL_URL", format!("{}/app/#enrol={code}", app.base)),
            ("FV_OUTLET_ID", w.o1.to_string()),
            ("FV_OUTLET_LAT", IN_T1.0.to_string()),
            ("FV_OUTLET_LON", IN_T1.1.to_string()),
            ("FV_REP_NAME", w.rep.login.clone()),
            ("FV_VISIT_ID", visit_id.to_string()),
            ("FV_VISIT_IN_MONTH", if visit_in_month { "1" } else { "0" }.to_string()),
        ],
        std::time::Duration::from_secs(300),
        24,
    )
    .await;

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

    // The dispute sent from my record is the visit's review, by the rep's phone (a visit of last
    // month is not in the record, so it is not disputed there).
    let res = app.get(&format!("/api/v1/visits/{visit_id}/reviews"), admin).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let disputes: Vec<_> =
        res.json.as_array().expect("a list").iter().filter(|r| r["decision"] == "disputed").collect();
    assert_eq!(disputes.len(), usize::from(visit_in_month), "{}", res.text);
    if visit_in_month {
        assert_eq!(disputes[0]["reason"], "I was in the shop the whole time", "{}", res.text);
    }
}

/// A real walk into a stop and out again, moved onto the outlet O1: the GeoLife fixes
/// (`fixtures/geolife`) around the stay trackintel found on 2009-02-04 from 11:11:16 to 11:16:58
/// (`fixtures/geolife-trackintel-stays.csv`): the last 8 fixes before it, 20 of its fixes within
/// 25 m of its centre, the first 8 after it; each `{phase, lat, lon, accuracy_m}`. The browser test
/// replays them at its own pace (the fixes' times are the phone's clock, as on a real phone).
fn walk() -> serde_json::Value {
    let stays = std::fs::read_to_string(root().join("fixtures/geolife-trackintel-stays.csv")).expect("stays");
    let stay: Vec<&str> =
        stays.lines().find(|l| l.contains("2009-02-04T11:11:16Z")).expect("the stay").split(',').collect();
    let at = |s: &str| s.parse::<DateTime<Utc>>().expect("time");
    let (start, end) = (at(stay[1]), at(stay[2]));
    let centre: (f64, f64) = (stay[3].parse().expect("lat"), stay[4].parse().expect("lon"));
    let sample = std::fs::read_to_string(root().join("fixtures/geolife/geolife_sample.csv")).expect("GeoLife");
    let fixes: Vec<(DateTime<Utc>, f64, f64)> = sample
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(';').collect();
            let t = chrono::NaiveDateTime::parse_from_str(&f[7][..19], "%Y-%m-%d %H:%M:%S").expect("t").and_utc();
            (t, f[1].parse().expect("Y"), f[0].parse().expect("X"))
        })
        .collect();
    let near = |&(_, lat, lon): &&(DateTime<Utc>, f64, f64)| {
        let (dn, de) = ((lat - centre.0) / M, (lon - centre.1) / M * centre.0.to_radians().cos());
        dn.hypot(de) <= 25.0
    };
    let before: Vec<_> = fixes.iter().filter(|f| f.0 < start && f.0 >= start - Duration::minutes(5)).collect();
    let during: Vec<_> = fixes.iter().filter(|f| f.0 >= start && f.0 <= end).filter(near).collect();
    let after: Vec<_> = fixes.iter().filter(|f| f.0 > end && f.0 <= end + Duration::minutes(5)).collect();
    assert!(
        before.len() >= 8 && during.len() >= 20 && after.len() >= 8,
        "{} {} {}",
        before.len(),
        during.len(),
        after.len()
    );
    let step = during.len() / 20;
    let moved = |phase: &str, i: usize, &&(_, lat, lon): &&(DateTime<Utc>, f64, f64)| {
        json!({"phase": phase, "lat": lat - centre.0 + IN_T1.0, "lon": lon - centre.1 + IN_T1.1,
               "accuracy_m": 6 + (i * 7) % 9})
    };
    let mut walk: Vec<_> =
        before[before.len() - 8..].iter().enumerate().map(|(i, f)| moved("approach", i, f)).collect();
    walk.extend(during.iter().step_by(step).take(20).enumerate().map(|(i, f)| moved("stay", i, f)));
    walk.extend(after[..8].iter().enumerate().map(|(i, f)| moved("leave", i, f)));
    json!(walk)
}

/// `map-ui/tests/app-day.mjs`: a day walked with the app alone. The phone enrols from its link and
/// walks a real GeoLife stop moved onto the planned outlet; in the shop, offline, it checks in,
/// stays, photographs the shop (a real JPEG whose EXIF says here and now), answers the checklist
/// and checks out; reloaded offline, the outbox is still there and the server has had no request;
/// online again, the answer to the first sync request is lost after the server committed it and
/// the app retries. Here, afterwards: the server holds the app's fixes, one check-in, one photo and
/// one set of answers, both linked to a `verified` visit derived from those fixes, and nothing twice;
/// the phone, deactivated by its manager at the end, is signed out.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_day_walked_with_the_app_alone_ends_in_a_verified_visit_with_its_evidence(pool: PgPool) {
    let dist = root().join("map-ui/dist");
    assert!(dist.join("app/index.html").is_file(), "map-ui is not built: run scripts/map-ui.sh (make test does)");
    let w = World::seed(&pool).await;
    // A visit of a minute and more counts at O1's tier: the browser stays about two minutes.
    sqlx::query(
        "UPDATE tier_policies SET min_dwell_s = 60
          WHERE org_id = $1 AND tier = (SELECT tier FROM outlets WHERE org_id = $1 AND id = $2)",
    )
    .bind(w.org_a)
    .bind(w.o1)
    .execute(&pool)
    .await
    .expect("tier policy");
    let mut config = test_config("unused");
    config.map_ui_dir = dist;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let admin = Some(w.admin.token.as_str());
    let day = today(&pool, w.org_a).await;
    let plan = json!({"rep_id": w.rep.id, "name": "Today", "valid_from": day,
        "items": [{"outlet_id": w.o1, "visit_date": day, "seq": 1}]});
    assert_eq!(app.post("/api/v1/plans", admin, &plan).await.status, 201);
    let checklist = json!({"name": "Shop check", "items": [
        {"key": "display_ok", "label": "Display in place", "type": "yes_no", "required": true, "expect": true},
        {"key": "facings", "label": "Facings", "type": "number", "integer": true, "min": 0, "max": 50}]});
    assert_eq!(app.post("/api/v1/checklists", admin, &checklist).await.status, 201);
    let res =
        app.post(&format!("/api/v1/devices/{}/enrolments", w.device.id), admin, &json!({"trackers": false})).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let code = res.json["app"]["text"].as_str().and_then(|l| l.split_once("#enrol=")).expect("a link").1.to_owned();
    // The camera's picture: taken at the outlet, during the stay.
    let photo_dir = tempfile::tempdir().expect("temp dir");
    let photo = photo_dir.path().join("shopfront.jpg");
    let jpeg = crate::photos::with_exif(&crate::photos::picture(7, 85), Utc::now() + Duration::minutes(1), IN_T1);
    std::fs::write(&photo, &jpeg).expect("photo");

    common::run_browser_test(
        "app-day.mjs",
        &[
            ("FV_BASE_URL", app.base.clone()),
            ("FV_ENROL_URL", format!("{}/app/#enrol={code}", app.base)),
            ("FV_OUTLET_ID", w.o1.to_string()),
            ("FV_WALK", walk().to_string()),
            ("FV_DEVICE_ID", w.device.id.to_string()),
            ("FV_ADMIN_TOKEN", w.admin.token.clone()),
            ("FV_PHOTO", photo.display().to_string()),
        ],
        std::time::Duration::from_secs(400),
        11,
    )
    .await;

    // The server: the visit at O1 derived from the app's own fixes, verified, with the evidence.
    let visits = derived_visits(&app, &pool, &w.admin.token, w.rep.id, day).await;
    let at_o1: Vec<_> = visits.iter().filter(|v| v["outlet_id"] == w.o1).collect();
    assert_eq!(at_o1.len(), 1, "{visits:?}");
    let visit = at_o1[0];
    assert_eq!(visit["verdict"], "verified", "{visit}");
    let visit_id = visit["id"].as_i64().expect("id");
    let (pings, distinct, sources): (i64, i64, Vec<String>) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT fix_time), array_agg(DISTINCT source) FROM pings WHERE device_id = $1
          AND fix_time >= now() - interval '1 hour'",
    )
    .bind(w.device.id)
    .fetch_one(&pool)
    .await
    .expect("pings");
    assert_eq!(pings, distinct, "no fix stored twice");
    assert!(pings >= 16, "{pings} fixes from the app");
    assert_eq!(sources, ["native"], "the app's fixes are native pings");
    let fixes_in_visit = visit["evidence"]["fix_count"].as_i64().or(visit["ping_count"].as_i64()).expect("fix count");
    assert!(fixes_in_visit >= 10, "the visit stands on the app's fixes: {visit}");
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.expect(sql) }
    };
    assert_eq!(count("SELECT count(*) FROM checkins").await, 1, "one check-in");
    assert_eq!(count("SELECT count(*) FROM checkins WHERE checked_out_at IS NOT NULL").await, 1, "checked out");
    let photos: Vec<(Option<i64>, Option<i64>, serde_json::Value)> =
        sqlx::query_as("SELECT visit_id, checkin_id, findings FROM photos").fetch_all(&pool).await.expect("photos");
    assert_eq!(photos.len(), 1, "one photo");
    assert_eq!((photos[0].0, photos[0].1.is_some()), (Some(visit_id), true), "linked to the visit: {photos:?}");
    assert_eq!(photos[0].2["verdict"], "confirms", "{photos:?}");
    assert_eq!(photos[0].2["position_source"], "exif", "the camera's EXIF, not the app's claim: {photos:?}");
    let outcomes: Vec<(Option<i64>, serde_json::Value)> =
        sqlx::query_as("SELECT visit_id, answers FROM visit_outcomes").fetch_all(&pool).await.expect("answers");
    assert_eq!(outcomes, [(Some(visit_id), json!({"display_ok": true, "facings": 6}))], "one set of answers, linked");
}
