//! Employee privacy over the real server: the retention pass removes exactly the pings older than
//! each org's retention and keeps the visits derived from them (those days are never re-derived);
//! every read of a rep's location by someone else is in the access log, which auditors read; the
//! first and last fixes of a day near a rep's declared home are hidden from everyone but the rep.

use crate::common;

use chrono::{DateTime, Duration, Utc};
use common::{TestApp, World, assert_problem};
use serde_json::{Value, json};
use sqlx::PgPool;

/// A 15-minute stop at `at`, a fix every 30 s, then a walk away.
fn stop(t0: DateTime<Utc>, at: (f64, f64)) -> Vec<Value> {
    let m = 1.0 / 111_195.0;
    (0..=50)
        .map(|i| {
            // A little scatter in position and accuracy, as a real phone's.
            let scatter = f64::from((i * 7 / 2) % 11) - 5.0;
            let away = if i > 30 { f64::from(i - 30) * 80.0 } else { 0.0 };
            json!({"fix_time": (t0 + Duration::seconds(i64::from(i) * 30)).to_rfc3339(),
                   "lat": at.0 + (away + scatter) * m, "lon": at.1, "accuracy_m": 6 + (i % 5)})
        })
        .collect()
}

async fn derived(pool: &PgPool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let dirty: i64 = sqlx::query_scalar("SELECT count(*) FROM rep_day_dirty").fetch_one(pool).await.expect("dirty");
        if dirty == 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never derived");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Starts an export and waits for it to be done; returns its id.
async fn exported(app: &TestApp, token: &str, body: &Value) -> i64 {
    let started = app.post("/api/v1/exports", Some(token), body).await;
    assert_eq!(started.status, 202, "{}", started.describe());
    let id = started.json["id"].as_i64().expect("export id");
    for _ in 0..600 {
        let e = app.get(&format!("/api/v1/exports/{id}"), Some(token)).await;
        match e.json["status"].as_str() {
            Some("done") => return id,
            Some("failed") => panic!("export failed: {}", e.describe()),
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    panic!("export {id} did not finish within a minute");
}

/// Every stored ping as (org, device, fix time), in order.
async fn pings(pool: &PgPool) -> Vec<(i64, i64, DateTime<Utc>)> {
    sqlx::query_as("SELECT org_id, device_id, fix_time FROM pings ORDER BY org_id, device_id, fix_time")
        .fetch_all(pool)
        .await
        .expect("pings")
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_retention_pass_removes_exactly_the_due_pings_and_keeps_the_visits(pool: PgPool) {
    let w = World::seed(&pool).await;
    // The outlets stood there before the days of the test (a visit is matched to the outlets of its time).
    for table in ["outlet_locations SET valid_from = valid_from", "outlet_status_changes SET changed_at = changed_at"] {
        sqlx::query(&format!("UPDATE {table} - interval '400 days'")).execute(&pool).await.expect("history");
    }
    let app = TestApp::spawn(pool.clone()).await;
    sqlx::query("UPDATE tier_policies SET default_radius_m = 50, min_dwell_s = 300 WHERE org_id = $1 AND tier = 'A'")
        .bind(w.org_a)
        .execute(&pool)
        .await
        .expect("tier A");
    // A visit ten days ago and fixes yesterday, for the rep of org A.
    let (old_stop, old_day) = common::ten_oclock(&pool, w.org_a, 10).await;
    let (recent, _) = common::ten_oclock(&pool, w.org_a, 1).await;
    for batch in [stop(old_stop, common::IN_T1), stop(recent, common::IN_T1)] {
        let r = app.post("/api/v1/pings", Some(&w.device.token), &json!(batch)).await;
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    derived(&pool).await;
    let visits_path = format!("/api/v1/reps/{}/visits?from={old_day}", w.rep.id);
    let before = app.get(&visits_path, Some(&w.manager.token)).await.json["visits"].clone();
    assert_eq!(before.as_array().map(Vec::len), Some(1), "{before}");

    // Kept: every ping from the start of the local day (org time zone) holding now - retention.
    let day_start = |days: i32| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, DateTime<Utc>>(
                "SELECT (((now() - make_interval(days => $1)) AT TIME ZONE 'Asia/Shanghai')::date::timestamp AT TIME ZONE 'Asia/Shanghai')",
            )
            .bind(days)
            .fetch_one(&pool)
            .await
            .expect("day start")
        }
    };
    // A fix early in the local day that holds now - 5 days, before that instant: that day is
    // partly past the retention, but a day is never left half deleted. Halfway between the day's
    // start and the instant (at most an hour in), so it holds at any time of day, midnight too.
    let edge_start = day_start(5).await;
    let edge_time = edge_start + ((Utc::now() - Duration::days(5) - edge_start) / 2).min(Duration::hours(1));
    let edge =
        json!([{"fix_time": edge_time.to_rfc3339(), "lat": common::IN_T1.0, "lon": common::IN_T1.1, "accuracy_m": 5}]);
    assert_eq!(app.post("/api/v1/pings", Some(&w.device.token), &edge).await.status, 200);
    derived(&pool).await;
    // Org A keeps 5 days of raw pings; org B the default 400.
    let r = app.put("/api/v1/settings/pings", Some(&w.admin.token), &json!({"retention_days": 5})).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json["retention_days"], 5);
    let all = pings(&pool).await;
    let now = Utc::now();
    let (cut_a, cut_b) = (day_start(5).await, day_start(400).await);
    let cutoff = |org: i64| if org == w.org_a { cut_a } else { cut_b };
    let kept: Vec<_> = all.iter().filter(|(org, _, t)| *t >= cutoff(*org)).copied().collect();
    assert!(kept.iter().any(|(_, _, t)| *t < now - Duration::days(5)), "the edge day's early fix is kept");
    assert!(kept.len() < all.len() && !kept.is_empty(), "some pings are due, some are not");
    assert!(all.iter().any(|(org, _, _)| *org == w.org_b), "org B has pings too");

    // The old day's distance travelled, and an export of it.
    let compliance = format!("/api/v1/reps/{}/compliance?from={old_day}&to={old_day}", w.rep.id);
    let distance_before =
        app.get(&compliance, Some(&w.manager.token)).await.json["days"][0]["distance_m"].as_f64().expect("distance");
    assert!(distance_before > 1000.0, "{distance_before}");
    let body =
        json!({"scope": {"kind": "rep", "id": w.rep.id}, "from": old_day, "to": old_day, "formats": ["geojson"]});
    let export_id = exported(&app, &w.manager.token, &body).await;
    let file = app.get(&format!("/api/v1/exports/{export_id}/files/audit.geojson"), Some(&w.manager.token)).await;

    let passes = fieldvisit::retention::run_once(&pool, now).await.expect("retention pass");
    assert_eq!(pings(&pool).await, kept, "exactly the pings older than each org's retention are gone");
    let removed: u64 = passes.iter().map(|p| p.removed.pings).sum();
    assert_eq!(removed as usize, all.len() - kept.len());

    // The visit derived from the removed pings stays, and its day is never derived again.
    let r = app.post("/api/v1/visits/recompute", Some(&w.admin.token), &json!({"from": old_day, "to": old_day})).await;
    assert_eq!(r.status, 202, "{}", r.describe());
    assert_eq!(r.json["rep_days"], 0, "a retired day is not marked: {}", r.describe());
    derived(&pool).await;
    assert_eq!(app.get(&visits_path, Some(&w.manager.token)).await.json["visits"], before);
    let s = app.get("/api/v1/settings/pings", Some(&w.admin.token)).await;
    assert!(s.json["pings_kept_from"].as_str().is_some_and(|d| d > old_day.to_string().as_str()), "{}", s.describe());

    // The distance travelled outlives the fixes: the figure, and so the export made before, are unchanged.
    let after = app.get(&compliance, Some(&w.manager.token)).await;
    assert_eq!(after.json["days"][0]["distance_m"].as_f64(), Some(distance_before), "{}", after.describe());
    let check = app
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/exports/verify?export_id={export_id}"),
            Some(&w.manager.token),
        )
        .header("content-type", "application/octet-stream")
        .body(file.text.clone().into_bytes())
        .send()
        .await
        .expect("verify");
    let check: Value = check.json().await.expect("verification");
    assert_eq!(
        (check["file_matches"].as_bool(), check["data_changed"].as_bool()),
        (Some(true), Some(false)),
        "{check}"
    );

    // What each pass removed is in the org's audit log.
    let log = app.get("/api/v1/audit-log?limit=50", Some(&w.admin.token)).await;
    let entry = log.json["items"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["action"] == "pings.retention"))
        .unwrap_or_else(|| panic!("pings.retention in the audit log: {}", log.describe()));
    let removed_a = passes.iter().find(|p| p.org_id == w.org_a).map(|p| p.removed.pings);
    assert_eq!(entry["detail"]["pings_removed"].as_u64(), removed_a);
    assert_eq!(entry["detail"]["retention_days"], 5);
    // A second pass finds nothing more.
    let again = fieldvisit::retention::run_once(&pool, now).await.expect("second pass");
    assert!(again.iter().all(|p| p.removed.pings == 0));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn ping_settings_are_validated_and_for_admins_only(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = "/api/v1/settings/pings";
    let r = app.put(path, Some(&w.admin.token), &json!({"retention_days": 0, "working_hours_only": "yes"})).await;
    assert_problem(&r, 422, path);
    let mut fields = r.error_fields();
    fields.sort();
    assert_eq!(fields, ["pings.retention_days", "pings.working_hours_only"]);
    let r = app.get(path, Some(&w.admin.token)).await;
    assert_eq!(r.json["retention_days"], 400, "nothing stored from a rejected request");
    // An unknown key (a typo) is named, not silently ignored.
    let r = app.put(path, Some(&w.admin.token), &json!({"retention_day": 30})).await;
    assert_problem(&r, 422, path);
    assert_eq!(r.error_fields(), ["pings.retention_day"]);
    // Keys given replace; the others stay; null resets one.
    assert_eq!(app.put(path, Some(&w.admin.token), &json!({"retention_days": 30})).await.status, 200);
    let r = app.put(path, Some(&w.admin.token), &json!({"max_speed_mps": 50})).await;
    assert_eq!((r.json["retention_days"].clone(), r.json["settings"]["max_speed_mps"].clone()), (json!(30), json!(50)));
    let r = app.put(path, Some(&w.admin.token), &json!({"retention_days": null})).await;
    assert_eq!(r.json["retention_days"], 400);
    assert_problem(&app.put(path, Some(&w.manager.token), &json!({"retention_days": 30})).await, 403, path);
    assert_problem(&app.get(path, Some(&w.rep.token)).await, 403, path);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn reads_of_a_reps_location_by_others_are_in_the_access_log(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let day = common::PING_DAY;
    let track = format!("/api/v1/reps/{}/track?date={day}", w.rep.id);
    let raw = format!("/api/v1/reps/{}/pings?date={day}", w.rep.id);
    assert_eq!(app.get(&track, Some(&w.manager.token)).await.status, 200);
    assert_eq!(app.get(&raw, Some(&w.supervisor.token)).await.status, 200);
    // The rep reading their own track is not someone else's read.
    assert_eq!(app.get(&track, Some(&w.rep.token)).await.status, 200);
    // A live position.
    let fix =
        json!([{"fix_time": Utc::now().to_rfc3339(), "lat": common::IN_T1.0, "lon": common::IN_T1.1, "accuracy_m": 5}]);
    assert_eq!(app.post("/api/v1/pings", Some(&w.device.token), &fix).await.status, 200);
    let live = app.get("/api/v1/live/positions", Some(&w.manager.token)).await;
    assert!(live.json.as_array().is_some_and(|a| a.iter().any(|p| p["rep_id"] == w.rep.id)), "{}", live.describe());

    let log = app.get(&format!("/api/v1/access-log?rep_id={}", w.rep.id), Some(&w.auditor.token)).await;
    assert_eq!(log.status, 200, "{}", log.describe());
    let seen: Vec<(String, String)> = log.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| (e["reader_login"].as_str().unwrap_or("").to_owned(), e["what"].as_str().unwrap_or("").to_owned()))
        .collect();
    let expected = [
        (w.manager.login.clone(), "live_positions".to_owned()),
        (w.supervisor.login.clone(), "pings".to_owned()),
        (w.manager.login.clone(), "track".to_owned()),
    ];
    assert_eq!(seen, expected, "newest first; the rep's own read is not there");
    let first = &log.json["items"][2];
    assert_eq!(first["subject_rep_id"], w.rep.id);
    assert!(first["detail"]["from"].as_str().is_some_and(|f| f.starts_with(day)), "{first}");

    // An auditor scoped to T1 does not see reads of a rep of T2.
    let t2_track = format!("/api/v1/reps/{}/track?date={day}", w.rep2.id);
    assert_eq!(app.get(&t2_track, Some(&w.admin.token)).await.status, 200);
    let scoped = app.get("/api/v1/access-log", Some(&w.auditor.token)).await;
    assert_eq!(scoped.ids(), log.ids(), "only the T1 rep's reads: {}", scoped.describe());
    let all = app.get("/api/v1/access-log", Some(&w.admin.token)).await;
    assert_eq!(all.json["items"][0]["subject_rep_id"], w.rep2.id, "the org-wide admin sees it");
    let r = app.get(&format!("/api/v1/access-log?rep_id={}", w.rep2.id), Some(&w.auditor.token)).await;
    assert_problem(&r, 403, "/api/v1/access-log");

    // The rep sees who read their data; nobody but auditors and admins sees others'.
    let own = app.get("/api/v1/access-log", Some(&w.rep.token)).await;
    assert_eq!(own.ids(), log.ids());
    assert_problem(
        &app.get(&format!("/api/v1/access-log?rep_id={}", w.rep2.id), Some(&w.rep.token)).await,
        403,
        "/api/v1/access-log",
    );
    assert_problem(&app.get("/api/v1/access-log", Some(&w.manager.token)).await, 403, "/api/v1/access-log");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_first_and_last_fixes_near_a_reps_home_are_hidden_from_everyone_else(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let home = (39.96, 116.05);
    let out = common::IN_T1; // ~1.1 km south of home
    let near_home = (home.0 + 0.0005, home.1); // ~55 m
    // A day: leaves home at 08:10, home for lunch at 12:00 (not a first or last fix), back home at 18:00.
    let (ten, day) = common::ten_oclock(&pool, w.org_a, 2).await;
    let day_fixes =
        [(-120, home), (-110, near_home), (0, out), (60, out), (120, home), (180, out), (480, home), (490, near_home)];
    let batch: Vec<Value> = day_fixes
        .iter()
        .map(|(min, (lat, lon))| {
            json!({"fix_time": (ten + Duration::minutes(*min)).to_rfc3339(), "lat": lat, "lon": lon, "accuracy_m": 5})
        })
        .collect();
    assert_eq!(app.post("/api/v1/pings", Some(&w.device.token), &json!(batch)).await.status, 200);
    // The local day's bounds (the UTC day of `date` would cut it).
    let z = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let q = format!("from={}&to={}", z(ten - Duration::hours(10)), z(ten + Duration::hours(14)));
    let raw = format!("/api/v1/reps/{}/pings?{q}", w.rep.id);
    let pings_of = |r: &common::Res| -> Vec<(f64, f64)> {
        r.json["pings"]
            .as_array()
            .expect("pings")
            .iter()
            .map(|p| (p["lat"].as_f64().expect("lat"), p["lon"].as_f64().expect("lon")))
            .collect()
    };
    // Off by default: the manager sees every fix.
    assert_eq!(pings_of(&app.get(&raw, Some(&w.manager.token)).await).len(), 8);

    // The rep declares a home (their own data: a manager may neither read nor set it).
    let privacy = format!("/api/v1/users/{}/privacy", w.rep.id);
    let declared = json!({"home": {"lat": home.0, "lon": home.1}, "home_radius_m": 200, "working_hours": null});
    let r = app.put(&privacy, Some(&w.rep.token), &declared).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_problem(&app.get(&privacy, Some(&w.manager.token)).await, 403, &privacy);
    assert_problem(&app.put(&privacy, Some(&w.manager.token), &declared).await, 403, &privacy);
    let peer = format!("/api/v1/users/{}/privacy", w.peer.id);
    assert_problem(&app.put(&peer, Some(&w.rep.token), &declared).await, 403, &peer);
    let seen = app.get(&privacy, Some(&w.admin.token)).await;
    assert_eq!(seen.status, 200, "{}", seen.describe());
    assert_eq!(seen.json["home"], json!({"lat": home.0, "lon": home.1}));
    assert_eq!(seen.json["home_radius_m"], 200.0);
    let bad = json!({"home": {"lat": 95.0, "lon": 116.0}, "home_radius_m": 10, "working_hours": {"mon": [["09:00", "08:00"]]}});
    let r = app.put(&privacy, Some(&w.rep.token), &bad).await;
    assert_problem(&r, 422, &privacy);
    let fields: Vec<&str> =
        r.json["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert!(
        fields.contains(&"home.lat")
            && fields.contains(&"home_radius_m")
            && fields.iter().any(|f| f.starts_with("working_hours.mon")),
        "{}",
        r.describe()
    );
    assert_eq!(app.get(&privacy, Some(&w.rep.token)).await.json["home_radius_m"], 200.0, "nothing stored");
    let r = app.put("/api/v1/settings/pings", Some(&w.admin.token), &json!({"blur_home": "yes"})).await;
    assert_problem(&r, 422, "/api/v1/settings/pings");
    assert_eq!(r.json["errors"][0]["field"], "pings.blur_home");

    // The org turns blurring on.
    let r = app.put("/api/v1/settings/pings", Some(&w.admin.token), &json!({"blur_home": true})).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!((r.json["blur_home"].as_bool(), r.json["home_radius_m"].as_f64()), (Some(true), Some(300.0)));

    // Raw pings: the two first and two last fixes are withheld from the manager, not lunch at home.
    let managers = app.get(&raw, Some(&w.manager.token)).await;
    assert_eq!(managers.status, 200, "{}", managers.describe());
    assert_eq!(managers.json["home_withheld"], 4);
    let shown = pings_of(&managers);
    assert_eq!(shown, [out, out, home, out], "{}", managers.describe());
    // The rep sees all of their own.
    let own = app.get(&raw, Some(&w.rep.token)).await;
    assert_eq!((pings_of(&own).len(), own.json["home_withheld"].as_u64()), (8, Some(0)));

    // The track (GeoJSON and CSV), the tracks layer and the export leave them out too.
    let track = format!("/api/v1/reps/{}/track?{q}", w.rep.id);
    let t = app.get(&format!("{track}&format=geojson"), Some(&w.auditor.token)).await;
    assert_eq!(t.status, 200, "{}", t.describe());
    assert_eq!(t.json["home_withheld"], 4);
    let points: Vec<&Value> =
        t.json["features"].as_array().expect("features").iter().filter(|f| f["geometry"]["type"] == "Point").collect();
    assert_eq!(points.len(), 4);
    let csv = app.get(&format!("{track}&format=csv"), Some(&w.manager.token)).await;
    assert_eq!(csv.header("x-home-withheld"), Some("4"));
    assert_eq!(csv.text.lines().count(), 1 + 4, "{}", csv.text);
    let layer = app.get(&format!("/api/v1/layers/tracks?date={day}&rep_id={}", w.rep.id), Some(&w.manager.token)).await;
    assert_eq!(layer.status, 200, "{}", layer.describe());
    assert_eq!(layer.json["features"][0]["properties"]["fix_count"], 4, "{}", layer.describe());

    let body = json!({"scope": {"kind": "rep", "id": w.rep.id}, "from": day, "to": day, "formats": ["geojson"]});
    let id = exported(&app, &w.manager.token, &body).await;
    let file = app.get(&format!("/api/v1/exports/{id}/files/audit.geojson"), Some(&w.manager.token)).await;
    let lines: Vec<&Value> = file.json["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter(|f| f["properties"]["kind"] == "track")
        .collect();
    assert_eq!(lines.len(), 1, "{}", file.describe());
    let positions: Vec<(f64, f64)> = lines[0]["geometry"]["coordinates"]
        .as_array()
        .expect("lines")
        .iter()
        .flat_map(|l| l.as_array().expect("line").iter())
        .map(|p| (p[1].as_f64().expect("lat"), p[0].as_f64().expect("lon")))
        .collect();
    assert!(!positions.is_empty());
    assert_eq!(positions.first(), Some(&out), "the exported track starts where the rep left home");
    assert_eq!(positions.last(), Some(&out), "and ends where the rep was last away from it");

    // Live: a fix at home now is not shown to the manager; one away is.
    let now_fix = |at: (f64, f64), s: i64| json!([{"fix_time": (Utc::now() + Duration::seconds(s)).to_rfc3339(), "lat": at.0, "lon": at.1, "accuracy_m": 5}]);
    assert_eq!(app.post("/api/v1/pings", Some(&w.device.token), &now_fix(near_home, -60)).await.status, 200);
    let live = |token: String| {
        let app = &app;
        async move {
            let r = app.get("/api/v1/live/positions", Some(&token)).await;
            assert_eq!(r.status, 200, "{}", r.describe());
            r.json.as_array().expect("positions").iter().filter(|p| p["rep_id"] == w.rep.id).count()
        }
    };
    assert_eq!(live(w.manager.token.clone()).await, 0, "at home: hidden from the manager");
    assert_eq!(live(w.rep.token.clone()).await, 1, "the rep sees their own");
    assert_eq!(app.post("/api/v1/pings", Some(&w.device.token), &now_fix(out, -30)).await.status, 200);
    assert_eq!(live(w.manager.token.clone()).await, 1, "away from home: shown");
}
