//! Beat plans over HTTP: a manager creates a plan of recurring and dated items, every problem is
//! named by item, the phone reads the day's plan with its device token, scope is enforced, and an
//! ended plan plans nothing more.

mod common;

use chrono::{Datelike, Duration, NaiveDate};
use common::{TestApp, World, assert_problem};
use serde_json::{Value, json};
use sqlx::PgPool;

async fn today(pool: &PgPool, org_id: i64) -> NaiveDate {
    sqlx::query_scalar("SELECT (now() AT TIME ZONE timezone)::date FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_one(pool)
        .await
        .expect("today")
}

fn next_weekday(from: NaiveDate, iso_weekday: u32) -> NaiveDate {
    (1..=7).map(|d| from + Duration::days(d)).find(|d| d.weekday().number_from_monday() == iso_weekday).expect("day")
}

fn outlets_of(day_plan: &Value) -> Vec<i64> {
    day_plan["visits"].as_array().expect("visits").iter().filter_map(|v| v["outlet_id"].as_i64()).collect()
}

#[sqlx::test(migrations = "./migrations")]
async fn a_plan_of_recurring_and_dated_items_reaches_the_phone(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let today = today(&pool, w.org_a).await;
    let monday = next_weekday(today, 1);
    let dated = next_weekday(today, 3);
    let plan = json!({
        "rep_id": w.rep.id, "name": "North beat", "valid_from": today,
        "items": [
            {"outlet_id": w.o1, "weekday": 1, "window_start": "09:00", "window_end": "12:00", "expected_duration_s": 900},
            {"outlet_id": w.o2, "visit_date": dated, "seq": 5},
        ]
    });
    assert_problem(&app.post("/api/v1/plans", Some(&w.rep.token), &plan).await, 403, "/api/v1/plans");
    let res = app.post("/api/v1/plans", Some(&w.manager.token), &plan).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let plan_id = res.json["id"].as_i64().expect("id");
    assert_eq!(res.json["items"].as_array().map(Vec::len), Some(2), "{}", res.describe());
    assert_eq!(res.json["active"], true);

    // The phone asks with its device token.
    let day = |d: NaiveDate| format!("/api/v1/reps/{}/plan?date={d}", w.rep.id);
    let res = app.get(&day(monday), Some(&w.device.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(outlets_of(&res.json), vec![w.o1]);
    let v = &res.json["visits"][0];
    assert_eq!(
        (v["outlet_code"].as_str(), v["seq"].as_i64(), v["expected_duration_s"].as_i64()),
        (Some("O1"), Some(1), Some(900))
    );
    assert!(v["window_start"].is_string() && v["lat"].is_number(), "{v}");
    // Twelve weeks later too, beyond what creation materialised (materialised as read).
    assert_eq!(outlets_of(&app.get(&day(monday + Duration::weeks(12)), Some(&w.device.token)).await.json), vec![w.o1]);
    assert_eq!(outlets_of(&app.get(&day(dated), Some(&w.rep.token)).await.json), vec![w.o2]);
    assert_problem(
        &app.get(&day(monday), Some(&w.device2.token)).await,
        403,
        &format!("/api/v1/reps/{}/plan", w.rep.id),
    );
    let far = app.get(&format!("/api/v1/reps/{}/plan?date=9999-12-31", w.rep.id), Some(&w.device.token)).await;
    assert_problem(&far, 422, &format!("/api/v1/reps/{}/plan", w.rep.id));

    let listed = app.get(&format!("/api/v1/plans?rep_id={}", w.rep.id), Some(&w.supervisor.token)).await;
    assert_eq!(listed.json.as_array().map(Vec::len), Some(1), "{}", listed.describe());

    // Ended: nothing planned from today on; the plan reads back inactive; audited.
    let path = format!("/api/v1/plans/{plan_id}");
    assert_eq!(app.delete(&path, Some(&w.manager.token)).await.status, 204);
    assert_eq!(outlets_of(&app.get(&day(monday), Some(&w.device.token)).await.json), Vec::<i64>::new());
    assert_eq!(app.get(&path, Some(&w.manager.token)).await.json["active"], false);
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE '%_plan' ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("audit");
    assert_eq!(audited, vec!["create_plan", "end_plan"]);
}

#[sqlx::test(migrations = "./migrations")]
async fn plan_problems_are_named_by_item_and_scope_is_enforced(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let today = today(&pool, w.org_a).await;
    let bad = json!({
        "rep_id": w.rep.id, "name": "beat", "valid_from": today, "valid_to": today + Duration::days(30), "cycle_weeks": 2,
        "items": [
            {"outlet_id": w.o1, "weekday": 2},
            {"outlet_id": w.o1},
            {"outlet_id": 999_999, "weekday": 1},
            {"outlet_id": w.o1, "weekday": 1, "week_of_cycle": 3},
            {"outlet_id": w.o1, "visit_date": today + Duration::days(60)},
            {"outlet_id": w.o1, "weekday": 1, "window_start": "12:00", "window_end": "09:00"},
        ]
    });
    let res = app.post("/api/v1/plans", Some(&w.manager.token), &bad).await;
    assert_problem(&res, 422, "/api/v1/plans");
    let mut named: Vec<(i64, String)> = res.json["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["index"].as_i64().unwrap_or(-1), e["field"].as_str().unwrap_or_default().to_owned()))
        .collect();
    named.sort();
    assert_eq!(
        named,
        vec![
            (1, "items[1].weekday".to_owned()),
            (2, "items[2].outlet_id".to_owned()),
            (3, "items[3].week_of_cycle".to_owned()),
            (4, "items[4].visit_date".to_owned()),
            (5, "items[5].window_end".to_owned()),
        ]
    );
    let ok_items = json!([{"outlet_id": w.o2, "weekday": 2}]);
    let for_rep = |rep_id: i64| json!({"rep_id": rep_id, "name": "beat", "valid_from": today, "items": ok_items});
    // rep2 works in T2, outside the T1 manager's territories; a manager is not a rep.
    assert_problem(&app.post("/api/v1/plans", Some(&w.manager.token), &for_rep(w.rep2.id)).await, 403, "/api/v1/plans");
    let res = app.post("/api/v1/plans", Some(&w.manager.token), &for_rep(w.manager.id)).await;
    assert_eq!((res.status, res.json["errors"][0]["field"].clone()), (422, json!("rep_id")), "{}", res.describe());
    let unknown = app
        .post(
            "/api/v1/plans",
            Some(&w.manager.token),
            &json!({"rep_id": w.rep.id, "name": "x", "valid_from": today, "items": [], "colour": "red"}),
        )
        .await;
    assert_eq!(unknown.status, 422, "unknown fields are refused: {}", unknown.describe());
    let res = app.post("/api/v1/plans", Some(&w.admin.token), &for_rep(w.rep2.id)).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let path = format!("/api/v1/plans/{}", res.json["id"]);
    assert_problem(&app.get(&path, Some(&w.manager.token)).await, 403, &path);
    assert_problem(&app.get(&path, Some(&w.admin_b.token)).await, 404, &path);
}
