//! Beat plans over HTTP: a manager creates a plan of recurring and dated items, every problem is
//! named by item, the phone reads the day's plan with its device token, scope is enforced, a
//! revised plan changes from its day on and keeps the past, and an ended plan plans nothing more.

use crate::common;

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

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
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

    // Ended (by default from tomorrow): today is its last day, nothing is planned after it; the
    // past cannot be rewritten; audited.
    let path = format!("/api/v1/plans/{plan_id}");
    let yesterday = today - Duration::days(1);
    assert_problem(&app.delete(&format!("{path}?from={yesterday}"), Some(&w.manager.token)).await, 422, &path);
    assert_eq!(app.delete(&path, Some(&w.manager.token)).await.status, 204);
    assert_eq!(outlets_of(&app.get(&day(monday), Some(&w.device.token)).await.json), Vec::<i64>::new());
    assert_eq!(outlets_of(&app.get(&day(dated), Some(&w.device.token)).await.json), Vec::<i64>::new());
    let ended = app.get(&path, Some(&w.manager.token)).await;
    assert_eq!(
        (ended.json["valid_to"].as_str(), &ended.json["active"]),
        (Some(today.to_string().as_str()), &json!(true)),
        "{}",
        ended.describe()
    );
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'plan.%' ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("audit");
    assert_eq!(audited, vec!["plan.create", "plan.end"]);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
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

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_revised_plan_changes_from_its_day_on_and_keeps_the_past(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let today = today(&pool, w.org_a).await;
    let every_day = |outlet: i64| (1..=7).map(|d| json!({"outlet_id": outlet, "weekday": d})).collect::<Vec<_>>();
    // Every day at o1 since two weeks ago.
    let plan = json!({"rep_id": w.rep.id, "name": "Daily O1", "valid_from": today - Duration::days(14),
                      "items": every_day(w.o1)});
    let res = app.post("/api/v1/plans", Some(&w.manager.token), &plan).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let plan_id = res.json["id"].as_i64().expect("id");
    let path = format!("/api/v1/plans/{plan_id}");
    let day = |d: NaiveDate| format!("/api/v1/reps/{}/plan?date={d}", w.rep.id);
    let on = |d: NaiveDate| {
        let app = &app;
        let url = day(d);
        let token = w.device.token.clone();
        async move { outlets_of(&app.get(&url, Some(&token)).await.json) }
    };
    let yesterday = today - Duration::days(1);
    assert_eq!(on(yesterday).await, vec![w.o1]);

    // Revised (by default from tomorrow): every day at o2, and o1 once more on a dated day.
    let tomorrow = today + Duration::days(1);
    let dated = today + Duration::days(3);
    let mut items = every_day(w.o2);
    items.push(json!({"outlet_id": w.o1, "visit_date": dated, "seq": 9}));
    let revision = json!({"name": "Daily O2", "items": items});
    assert_problem(&app.put(&path, Some(&w.rep.token), &revision).await, 403, &path);
    let res = app.put(&path, Some(&w.manager.token), &revision).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!((res.json["id"].as_i64(), res.json["name"].as_str()), (Some(plan_id), Some("Daily O2")));
    let items = res.json["items"].as_array().expect("items");
    assert_eq!(items.len(), 8, "{}", res.describe());
    assert!(items.iter().all(|i| i["planned_from"] == json!(tomorrow) && i["retired_from"].is_null()), "{items:?}");
    let retired = res.json["retired_items"].as_array().expect("retired_items");
    assert_eq!(retired.len(), 7, "{}", res.describe());
    assert!(retired.iter().all(|i| i["outlet_id"] == json!(w.o1) && i["retired_from"] == json!(tomorrow)));

    // The past and today keep o1 (also days first read after the revision); o2 from tomorrow,
    // also beyond what the revision materialised.
    assert_eq!(on(today - Duration::days(10)).await, vec![w.o1]);
    assert_eq!(on(yesterday).await, vec![w.o1]);
    assert_eq!(on(today).await, vec![w.o1]);
    assert_eq!(on(tomorrow).await, vec![w.o2]);
    assert_eq!(on(dated).await, vec![w.o2, w.o1]);
    assert_eq!(on(today + Duration::weeks(12)).await, vec![w.o2]);

    // A revision from a later day: the first revision stays in force until then; the newest one
    // retires it and nothing of the original comes back.
    let later = today + Duration::days(5);
    let res = app
        .put(
            &format!("{path}?from={later}"),
            Some(&w.manager.token),
            &json!({"name": "O1 again", "items": every_day(w.o1)}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(on(tomorrow).await, vec![w.o2]);
    assert_eq!(on(dated).await, vec![w.o2, w.o1]);
    assert_eq!(on(later).await, vec![w.o1]);
    assert_eq!(on(later + Duration::weeks(3)).await, vec![w.o1]);
    assert_eq!(res.json["retired_items"].as_array().map(Vec::len), Some(15), "{}", res.describe());
    // Revised again from tomorrow: the items of both revisions would only have started from
    // tomorrow on, so they never come into force and are gone; the original ones stay retired.
    let res = app
        .put(&path, Some(&w.manager.token), &json!({"name": "Weekly", "items": [{"outlet_id": w.o2, "weekday": 1}]}))
        .await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["retired_items"].as_array().map(Vec::len), Some(7), "{}", res.describe());
    assert_eq!(res.json["items"].as_array().map(Vec::len), Some(1), "{}", res.describe());
    let monday = next_weekday(later, 1);
    assert_eq!(on(monday).await, vec![w.o2]);
    assert_eq!(on(monday + Duration::days(1)).await, Vec::<i64>::new());
    assert_eq!(on(yesterday).await, vec![w.o1]);

    // Problems are named; the past cannot be revised.
    let bad = json!({"name": "x", "valid_to": today, "items": [
        {"outlet_id": w.o1, "visit_date": today}, {"outlet_id": 999_999, "weekday": 1}]});
    let res = app.put(&path, Some(&w.manager.token), &bad).await;
    assert_problem(&res, 422, &path);
    let mut named: Vec<String> = res.error_fields();
    named.sort();
    assert_eq!(named, vec!["items[0].visit_date", "items[1].outlet_id", "valid_to"], "{}", res.describe());
    let res = app.put(&format!("{path}?from={yesterday}"), Some(&w.manager.token), &revision).await;
    assert_problem(&res, 422, &path);
    assert_eq!(res.error_fields(), vec!["from"]);
    let recycled = json!({"name": "x", "cycle_weeks": 2, "items": []});
    let res = app.put(&path, Some(&w.manager.token), &recycled).await;
    assert_problem(&res, 422, &path);
    assert_eq!(res.error_fields(), vec!["cycle_weeks"]);
    assert_problem(
        &app.put("/api/v1/plans/999999", Some(&w.manager.token), &revision).await,
        404,
        "/api/v1/plans/999999",
    );
    // An ended plan is not revised.
    assert_eq!(app.delete(&path, Some(&w.manager.token)).await.status, 204);
    let res = app.put(&format!("{path}?from={later}"), Some(&w.manager.token), &revision).await;
    assert_problem(&res, 409, &path);
    let audited: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'plan.%' ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("audit");
    assert_eq!(audited, vec!["plan.create", "plan.revise", "plan.revise", "plan.revise", "plan.end"]);
}

/// A stored visit `days_ago` days before `day` (as the deriver writes them).
async fn visit_days_ago(pool: &PgPool, org: i64, rep: i64, outlet: i64, day: NaiveDate, days_ago: i64) -> i64 {
    let rep_day = day - Duration::days(days_ago);
    sqlx::query_scalar(
        "INSERT INTO visits (org_id, rep_id, outlet_id, rep_day, arrival, departure, dwell_s, verdict, ping_count, rule_version)
         VALUES ($1, $2, $3, $4, $4::timestamp AT TIME ZONE 'Asia/Shanghai' + interval '10 hours',
                 $4::timestamp AT TIME ZONE 'Asia/Shanghai' + interval '10 hours 15 minutes', 900, 'verified', 30, 'visits-v3')
         RETURNING id",
    )
    .bind(org)
    .bind(rep)
    .bind(outlet)
    .bind(rep_day)
    .fetch_one(pool)
    .await
    .expect("visit")
}

/// The proposal names the outlets of the rep's territory that are due by their tier's policy
/// (tier A: 4 visits per 28 days, one every 7 days), the never validly visited first, routes them
/// nearest-first from the start, and its items can be posted as a plan.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_plan_proposal_routes_the_due_outlets_nearest_first(pool: PgPool) {
    let w = World::seed(&pool).await;
    let org = w.org_a;
    sqlx::query("UPDATE tier_policies SET required_visits = 4, cycle_days = 28 WHERE org_id = $1 AND tier = 'A'")
        .bind(org)
        .execute(&pool)
        .await
        .expect("tier");
    let outlet = |code: &'static str, lon: f64| {
        let pool = pool.clone();
        async move {
            fieldvisit::db::outlets::create(&pool, org, &common::outlet_fields(code, "A", (39.95, lon), Some(w.t1)))
                .await
                .expect("outlet")
        }
    };
    let p2 = outlet("P2", 116.062).await;
    let p3 = outlet("P3", 116.07).await;
    let p4 = outlet("P4", 116.08).await;
    let p5 = outlet("P5", 116.085).await;
    sqlx::query("UPDATE outlets SET status = 'closed' WHERE org_id = $1 AND id = $2")
        .bind(org)
        .bind(p5)
        .execute(&pool)
        .await
        .expect("close");
    let day = today(&pool, org).await;
    visit_days_ago(&pool, org, w.rep.id, w.o1, day, 3).await; // 3 of 7 days: not due
    visit_days_ago(&pool, org, w.peer.id, p2, day, 10).await; // by another rep: 10 / 7
    let rejected = visit_days_ago(&pool, org, w.rep.id, p4, day, 2).await; // rejected: never validly visited
    let app = TestApp::spawn(pool.clone()).await;
    let review = json!({"decision": "rejected", "reason": "the shop was closed that day"});
    let res = app.post(&format!("/api/v1/visits/{rejected}/reviews"), Some(&w.supervisor.token), &review).await;
    assert_eq!(res.status, 201, "{}", res.describe());

    let path = format!("/api/v1/reps/{}/plan-proposal", w.rep.id);
    let stops = |res: &common::Res| -> Vec<i64> {
        res.json["stops"].as_array().expect("stops").iter().filter_map(|s| s["outlet_id"].as_i64()).collect()
    };
    // From the east end of T1: P4, P3, then P2; o1 is not due, P5 is closed, o2 is in T2.
    let res = app.get(&format!("{path}?date={day}&start_lat=39.95&start_lon=116.09"), Some(&w.manager.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(stops(&res), [p4, p3, p2], "{}", res.describe());
    assert_eq!((res.json["due_outlets"].as_i64(), res.json["start"]["source"].as_str()), (Some(3), Some("given")));
    let s = &res.json["stops"];
    assert_eq!(
        (s[0]["code"].as_str(), s[0]["days_since"].is_null(), s[0]["seq"].as_i64()),
        (Some("P4"), true, Some(1))
    );
    assert_eq!(s[2]["days_since"], 10, "{s}");
    assert!(s[2]["overdue_ratio"].as_f64().is_some_and(|r| (r - 10.0 / 7.0).abs() < 1e-9), "{s}");
    // ~0.01 degrees of longitude at 39.95 N per leg.
    assert!(res.json["route_m"].as_f64().is_some_and(|m| (2300.0..2600.0).contains(&m)), "{}", res.describe());

    // Only the two most due (never validly visited), still from the start.
    let two = app
        .get(&format!("{path}?date={day}&max_outlets=2&start_lat=39.95&start_lon=116.09"), Some(&w.admin.token))
        .await;
    assert_eq!(stops(&two), [p4, p3], "{}", two.describe());
    // No start given and none known (the seeded pings are years old, no home): from the most due.
    let free = app.get(&format!("{path}?date={day}"), Some(&w.manager.token)).await;
    assert_eq!((stops(&free), free.json["start"].is_null()), (vec![p3, p2, p4], true), "{}", free.describe());
    // With a declared home, the route starts there; the home's position is shown to admins (and
    // the rep), not to the manager.
    let home = json!({"home": {"lat": 39.951, "lon": 116.091}, "home_radius_m": null, "working_hours": null});
    let r = app.put(&format!("/api/v1/users/{}/privacy", w.rep.id), Some(&w.rep.token), &home).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let admins = app.get(&format!("{path}?date={day}"), Some(&w.admin.token)).await;
    assert_eq!(admins.json["start"]["lat"], 39.951, "{}", admins.describe());
    assert_eq!(stops(&admins), [p4, p3, p2], "routed from home: {}", admins.describe());
    // The manager is not told where it is, nor routed from it (the order would tell).
    let managers = app.get(&format!("{path}?date={day}"), Some(&w.manager.token)).await;
    let start = &managers.json["start"];
    assert_eq!(
        (start["source"].as_str(), start["lat"].is_null(), start["lon"].is_null()),
        (Some("home"), true, true),
        "{start}"
    );
    assert_eq!(stops(&managers), stops(&free), "{}", managers.describe());

    // Adopted as a dated plan, it is the phone's plan of the day in the same order.
    let plan =
        json!({"rep_id": w.rep.id, "name": "proposed", "valid_from": day, "valid_to": day, "items": res.json["items"]});
    let created = app.post("/api/v1/plans", Some(&w.manager.token), &plan).await;
    assert_eq!(created.status, 201, "{}", created.describe());
    let phone = app.get(&format!("/api/v1/reps/{}/plan?date={day}", w.rep.id), Some(&w.device.token)).await;
    assert_eq!(outlets_of(&phone.json), [p4, p3, p2], "{}", phone.describe());

    // Scope and problems.
    assert_problem(&app.get(&path, Some(&w.rep.token)).await, 403, &path);
    let other = format!("/api/v1/reps/{}/plan-proposal", w.rep2.id);
    assert_problem(&app.get(&other, Some(&w.manager.token)).await, 403, &other);
    assert_problem(&app.get(&path, Some(&w.admin_b.token)).await, 404, &path);
    assert_problem(&app.get(&format!("{path}?max_outlets=0"), Some(&w.manager.token)).await, 422, &path);
    assert_problem(&app.get(&format!("{path}?start_lat=39.9"), Some(&w.manager.token)).await, 422, &path);
}
