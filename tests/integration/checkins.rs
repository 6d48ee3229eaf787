//! Check-ins from the reps' app over HTTP: idempotent by the app's client id (a retry after a lost
//! answer adds nothing), judged at once by the visit rule, a device's only; a check-in no visit
//! confirms is a claim in the supervisor's list, and accepting it counts the planned visit.

use crate::common::{self, IN_T1, TestApp, World, assert_problem};
use crate::photos::visits;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

fn checkin(outlet_id: i64, (lat, lon): (f64, f64), accuracy_m: f64) -> Value {
    let t = (Utc::now() - Duration::minutes(5)).to_rfc3339();
    json!({"outlet_id": outlet_id, "checked_in_at": t, "lat": lat, "lon": lon, "accuracy_m": accuracy_m})
}

async fn rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM checkins").fetch_one(pool).await.expect("count")
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_check_in_is_stored_once_per_client_id_and_judged_at_once(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let token = Some(w.device.token.as_str());
    let body = checkin(w.o1, IN_T1, 10.0);
    let path = "/api/v1/checkins/app-7f3a9c01";
    let first = app.call(reqwest::Method::PUT, path, token, Some(&body)).await;
    assert_eq!(first.status, 201, "{}", first.describe());
    assert_eq!((first.json["at_outlet"].as_bool(), first.json["rep_id"].as_i64()), (Some(true), Some(w.rep.id)));
    assert!(first.json["distance_m"].as_f64().expect("distance") < 1.0, "{}", first.text);
    assert_eq!(first.json["status"], "unconfirmed", "no pings, nothing to derive: {}", first.text);

    // The retry (the first answer was lost) finds the same check-in; the check-out is added once.
    let again = app.call(reqwest::Method::PUT, path, token, Some(&body)).await;
    assert_eq!((again.status, &again.json["id"]), (200, &first.json["id"]), "{}", again.describe());
    let mut out = body.clone();
    out["checked_out_at"] = json!(Utc::now().to_rfc3339());
    out["out_lat"] = json!(IN_T1.0);
    out["out_lon"] = json!(IN_T1.1);
    let res = app.call(reqwest::Method::PUT, path, token, Some(&out)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(res.json["checked_out_at"].is_string(), "{}", res.text);
    assert_eq!(rows(&pool).await, 1);

    // The same client id for another outlet is a conflict; nothing changes.
    let other = app.call(reqwest::Method::PUT, path, token, Some(&checkin(w.o2, IN_T1, 10.0))).await;
    assert_problem(&other, 409, path);
    assert_eq!(rows(&pool).await, 1);

    // Far from the outlet: stored, and the server says it does not see the rep there.
    let far = app
        .call(reqwest::Method::PUT, "/api/v1/checkins/app-far-0001", token, Some(&checkin(w.o1, (39.96, 116.05), 20.0)))
        .await;
    assert_eq!(far.status, 201, "{}", far.describe());
    assert_eq!(far.json["at_outlet"], false);
    assert!(far.json["distance_m"].as_f64().expect("distance") > 1000.0);

    // Bad input names the field; a user token is not a device; another org's outlet is unknown.
    let bad = app.call(reqwest::Method::PUT, "/api/v1/checkins/x", token, Some(&body)).await;
    assert_eq!((bad.status, bad.error_fields()), (422, vec!["client_id".to_owned()]), "{}", bad.describe());
    let res = app.call(reqwest::Method::PUT, "/api/v1/checkins/app-user-0001", Some(&w.rep.token), Some(&body)).await;
    assert_problem(&res, 403, "/api/v1/checkins/app-user-0001");
    let res = app
        .call(reqwest::Method::PUT, "/api/v1/checkins/app-orgb-0001", token, Some(&checkin(w.ob, IN_T1, 10.0)))
        .await;
    assert_eq!((res.status, res.error_fields()), (422, vec!["outlet_id".to_owned()]), "{}", res.describe());
    assert_eq!(rows(&pool).await, 2);
    let mut big = checkin(w.o1, IN_T1, 10.0);
    big["pad"] = json!("x".repeat(100_000));
    let res = app.call(reqwest::Method::PUT, "/api/v1/checkins/app-big-0001", token, Some(&big)).await;
    assert_eq!(res.status, 413, "a check-in body is small: {}", res.describe());

    // The rep and their manager read them; another rep does not.
    // The days around the check-in (five minutes ago may be yesterday in the org's time zone).
    let (from, to) = ((Utc::now() - Duration::days(2)).date_naive(), (Utc::now() + Duration::days(1)).date_naive());
    let list = format!("/api/v1/reps/{}/checkins?from={from}&to={to}", w.rep.id);
    assert_eq!(app.get(&list, Some(&w.manager.token)).await.json.as_array().map(Vec::len), Some(2));
    assert_eq!(app.get(&list, token).await.status, 200);
    assert_eq!(app.get(&list, Some(&w.peer.token)).await.status, 403);
}

/// The planned visit of rep-day `day` counted done, from the rep's compliance.
async fn done(app: &TestApp, w: &World, day: chrono::NaiveDate) -> i64 {
    let path = format!("/api/v1/reps/{}/compliance?from={day}&to={day}", w.rep.id);
    let res = app.get(&path, Some(&w.manager.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    res.json["totals"]["done"].as_i64().unwrap_or_else(|| panic!("totals.done in {}", res.text))
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_check_in_without_a_visit_is_a_claim_the_supervisor_accepts_and_it_counts(pool: PgPool) {
    let w = World::seed(&pool).await;
    sqlx::query("UPDATE outlet_locations SET valid_from = valid_from - interval '30 days'")
        .execute(&pool)
        .await
        .expect("history");
    let app = TestApp::spawn(pool.clone()).await;
    let (t0, day) = common::ten_oclock(&pool, w.org_a, 1).await;
    let plan = json!({"rep_id": w.rep.id, "name": "Claims", "valid_from": day,
        "items": [{"outlet_id": w.o1, "visit_date": day, "seq": 1}]});
    let res = app.post("/api/v1/plans", Some(&w.admin.token), &plan).await;
    assert_eq!(res.status, 201, "{}", res.describe());

    // Indoors: the check-in at the outlet, and two fixes only — not enough for a visit.
    let body = json!({"outlet_id": w.o1, "checked_in_at": t0.to_rfc3339(), "lat": IN_T1.0, "lon": IN_T1.1,
                      "accuracy_m": 30.0});
    let res = app.put("/api/v1/checkins/indoors-0001", Some(&w.device.token), &body).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let id = res.json["id"].as_i64().expect("id");
    let fixes = json!([{"fix_time": t0.to_rfc3339(), "lat": IN_T1.0, "lon": IN_T1.1, "accuracy_m": 30.0},
                       {"fix_time": (t0 + Duration::seconds(20)).to_rfc3339(), "lat": IN_T1.0, "lon": IN_T1.1, "accuracy_m": 35.0}]);
    let res = app.post("/api/v1/pings", Some(&w.device.token), &fixes).await;
    assert!(res.status < 300, "{}", res.describe());
    assert!(visits(&app, &pool, &w.rep.token, w.rep.id, day).await.is_empty(), "no visit from two fixes");
    assert_eq!(done(&app, &w, day).await, 0);

    // The supervisor of the rep's territory sees the claim; another org's admin and the rep do not.
    let claims = format!("/api/v1/checkins/claims?from={day}&to={day}");
    let res = app.get(&claims, Some(&w.supervisor.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let listed: Vec<_> =
        res.json.as_array().expect("a list").iter().map(|c| (c["id"].as_i64(), c["status"].clone())).collect();
    assert_eq!(listed, [(Some(id), json!("unconfirmed"))], "{}", res.text);
    assert_eq!(app.get(&claims, Some(&w.admin_b.token)).await.json, json!([]));
    let other = json!({"login": "supervisor-t2", "name": "Supervisor T2", "role": "supervisor", "territory_id": w.t2});
    let res = app.post("/api/v1/users", Some(&w.admin.token), &other).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let other_token = res.json["token"].as_str().expect("token").to_owned();
    let res = app.get(&claims, Some(&other_token)).await;
    assert_eq!((res.status, &res.json), (200, &json!([])), "another territory's supervisor: {}", res.text);
    let res = app.get(&format!("/api/v1/checkins/claims?to={day}"), Some(&w.supervisor.token)).await;
    assert_eq!(res.json.as_array().map(Vec::len), Some(1), "28 days up to `to`: {}", res.text);
    assert_eq!(app.get(&claims, Some(&w.rep.token)).await.status, 403);
    let default_period = app.get("/api/v1/checkins/claims", Some(&w.supervisor.token)).await;
    assert_eq!(default_period.json.as_array().map(Vec::len), Some(1), "the last 28 days: {}", default_period.text);

    // Accepted, it counts as the planned visit done and leaves the list.
    let decision = json!({"decision": "accepted", "reason": "storefront photo and the shop owner's call"});
    let res = app.post(&format!("/api/v1/checkins/{id}/decision"), Some(&w.supervisor.token), &decision).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let found = visits(&app, &pool, &w.rep.token, w.rep.id, day).await;
    assert_eq!(found.len(), 1, "the accepted claim's visit: {found:?}");
    assert_eq!(found[0]["outlet_id"], w.o1);
    assert_eq!(done(&app, &w, day).await, 1);
    assert_eq!(app.get(&claims, Some(&w.supervisor.token)).await.json, json!([]));
}
