//! Visit checklists over the real server: an admin defines a checklist (a new definition of the
//! same name is a new version), a rep answers it for a visit, answers of the wrong type are
//! rejected item by item and nothing is stored, answers outside what is expected are problems,
//! and answers tied to an outlet attribute update the outlet with its history.

use crate::common;

use chrono::Duration;
use common::{TestApp, World, assert_problem};
use serde_json::{Value, json};
use sqlx::PgPool;

/// A stored visit of `rep` at `outlet` yesterday at 10:00 local time.
async fn visit(pool: &PgPool, org: i64, rep: i64, outlet: i64) -> i64 {
    let (arrival, day) = common::ten_oclock(pool, org, 1).await;
    sqlx::query_scalar(
        "INSERT INTO visits (org_id, rep_id, outlet_id, rep_day, arrival, departure, dwell_s, verdict, ping_count, rule_version)
         VALUES ($1, $2, $3, $4, $5, $6, 900, 'verified', 10, 'visits-v4') RETURNING id",
    )
    .bind(org)
    .bind(rep)
    .bind(outlet)
    .bind(day)
    .bind(arrival)
    .bind(arrival + Duration::minutes(15))
    .fetch_one(pool)
    .await
    .expect("visit")
}

fn store_audit() -> Value {
    json!({"name": "Store audit", "items": [
        {"key": "display_ok", "label": "Display check", "type": "yes_no", "required": true, "expect": true},
        {"key": "uniform", "label": "Staff in uniform", "type": "yes_no"},
        {"key": "sim_stock", "label": "SIM stock count", "type": "number", "integer": true, "min": 0, "max": 100_000,
         "expect_min": 10, "outlet_attribute": "sim_stock"},
        {"key": "pos_working", "label": "Equipment working count", "type": "number", "integer": true, "min": 0,
         "outlet_attribute": "pos_working"},
        {"key": "competitor", "label": "Competitor present", "type": "choice", "choices": ["none", "mtn", "airtel"],
         "expect_in": ["none"]},
        {"key": "materials", "label": "Promotional material present", "type": "choice", "multiple": true,
         "choices": ["poster", "banner", "shelf_strip"]},
        {"key": "remarks", "label": "Remarks", "type": "text", "max_length": 200}
    ]})
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn checklist_answers_are_checked_item_by_item_and_update_the_outlet(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let visit_id = visit(&pool, w.org_a, w.rep.id, w.o1).await;

    // Only admins define checklists; a bad definition names each bad item.
    assert_problem(
        &app.post("/api/v1/checklists", Some(&w.manager.token), &store_audit()).await,
        403,
        "/api/v1/checklists",
    );
    let bad = json!({"name": "Broken", "items": [{"key": "a b", "label": "x", "type": "yes_no"},
                                                  {"key": "n", "label": "n", "type": "number", "min": 3, "max": 1}]});
    let r = app.post("/api/v1/checklists", Some(&w.admin.token), &bad).await;
    assert_problem(&r, 422, "/api/v1/checklists");
    let fields: Vec<&str> =
        r.json["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["items[0].key", "items[1].min"]);
    let r = app.post("/api/v1/checklists", Some(&w.admin.token), &store_audit()).await;
    assert_eq!(r.status, 201, "{}", r.describe());
    let v1 = r.json.clone();
    assert_eq!((v1["version"].as_i64(), v1["items"].as_array().map(Vec::len)), (Some(1), Some(7)));
    // The rep's app reads the checklists (with a device token too).
    let listed = app.get("/api/v1/checklists", Some(&w.device.token)).await;
    assert_eq!(listed.status, 200, "{}", listed.describe());
    assert_eq!(listed.json[0]["id"], v1["id"]);

    // Wrong answers: every one named, nothing stored.
    let path = format!("/api/v1/visits/{visit_id}/outcomes");
    let wrong = json!({"checklist_id": v1["id"], "answers": {
        "display_ok": "yes", "sim_stock": 12.5, "pos_working": -1, "competitor": "vodafone",
        "materials": "poster", "remarks": 7, "colour": "red"}});
    let r = app.post(&path, Some(&w.rep.token), &wrong).await;
    assert_problem(&r, 422, &path);
    let named: Vec<(String, String)> = r.json["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["field"].as_str().unwrap_or("").to_owned(), e["reason"].as_str().unwrap_or("").to_owned()))
        .collect();
    let fields: Vec<&str> = named.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "answers.colour",
            "answers.display_ok",
            "answers.sim_stock",
            "answers.pos_working",
            "answers.competitor",
            "answers.materials",
            "answers.remarks"
        ],
        "{named:?}"
    );
    assert_eq!(named[1].1, "must be true or false");
    assert_eq!(named[2].1, "must be a whole number");
    let missing =
        app.post(&path, Some(&w.rep.token), &json!({"checklist_id": v1["id"], "answers": {"uniform": true}})).await;
    assert_eq!(missing.json["errors"][0]["field"], "answers.display_ok", "{}", missing.describe());
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM visit_outcomes").fetch_one(&pool).await.expect("count");
    assert_eq!(stored, 0);
    let r = app.post(&path, Some(&w.rep.token), &json!({"checklist_id": 9999, "answers": {}})).await;
    assert_problem(&r, 422, &path);
    assert_eq!(r.json["errors"][0]["field"], "checklist_id");

    // Good answers: stored, problems listed, the outlet's attributes set with history.
    let good = json!({"checklist_id": v1["id"], "answers": {
        "display_ok": false, "uniform": true, "sim_stock": 4, "pos_working": 2, "competitor": "mtn",
        "materials": ["poster", "banner"], "remarks": "display damaged"}});
    let r = app.post(&path, Some(&w.device.token), &good).await;
    assert_eq!(r.status, 201, "{}", r.describe());
    assert_eq!(r.json["problems"], json!(["display_ok", "sim_stock", "competitor"]));
    assert_eq!((r.json["checklist_version"].as_i64(), r.json["visit_id"].as_i64()), (Some(1), Some(visit_id)));
    let outlet = app.get(&format!("/api/v1/outlets/{}", w.o1), Some(&w.manager.token)).await;
    assert_eq!(outlet.json["attributes"]["sim_stock"], 4, "{}", outlet.describe());
    assert_eq!(outlet.json["attributes"]["pos_working"], 2);
    // A second audit: stock went up, equipment unchanged (no history row for it).
    let again = json!({"checklist_id": v1["id"], "answers": {"display_ok": true, "sim_stock": 40, "pos_working": 2}});
    let r = app.post(&path, Some(&w.rep.token), &again).await;
    assert_eq!((r.status, r.json["problems"].clone()), (201, json!([])), "{}", r.describe());
    let history = app.get(&format!("/api/v1/outlets/{}/attribute-changes", w.o1), Some(&w.supervisor.token)).await;
    let changes: Vec<(String, Value, Value)> = history.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| (c["attribute"].as_str().unwrap_or("").to_owned(), c["old_value"].clone(), c["new_value"].clone()))
        .collect();
    assert_eq!(
        changes,
        [
            ("sim_stock".to_owned(), Value::Null, json!(4)),
            ("pos_working".to_owned(), Value::Null, json!(2)),
            ("sim_stock".to_owned(), json!(4), json!(40)),
        ]
    );

    // A new version of the checklist; the old answers stay tied to version 1.
    let mut v2_def = store_audit();
    v2_def["items"].as_array_mut().expect("items").truncate(3);
    let v2 = app.post("/api/v1/checklists", Some(&w.admin.token), &v2_def).await;
    assert_eq!(v2.json["version"], 2, "{}", v2.describe());
    let latest = app.get("/api/v1/checklists", Some(&w.rep.token)).await;
    assert_eq!(latest.json.as_array().map(Vec::len), Some(1));
    assert_eq!(latest.json[0]["version"], 2);
    // An answer to an item version 2 lacks is refused against version 2.
    let old_item = json!({"checklist_id": v2.json["id"], "answers": {"display_ok": true, "competitor": "none"}});
    let r = app.post(&path, Some(&w.rep.token), &old_item).await;
    assert_eq!(r.json["errors"][0]["field"], "answers.competitor", "{}", r.describe());

    // Lists, and who may answer.
    let of_visit = app.get(&path, Some(&w.manager.token)).await;
    assert_eq!(of_visit.json.as_array().map(Vec::len), Some(2), "{}", of_visit.describe());
    let of_outlet = app.get(&format!("/api/v1/outlets/{}/outcomes", w.o1), Some(&w.auditor.token)).await;
    assert_eq!(of_outlet.json["items"][0]["answers"]["remarks"], "display damaged");
    assert_problem(&app.post(&path, Some(&w.manager.token), &again).await, 403, &path);
    assert_problem(&app.post(&path, Some(&w.peer.token), &again).await, 403, &path);
    assert_problem(&app.get(&path, Some(&w.rep2.token)).await, 403, &path);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn reminders_list_outlets_due_by_tier_and_with_problems_first(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    // Tier A: four visits a 28-day cycle (every 7 days). O1 was visited yesterday; O3 (also in
    // T1) never; O2 (T2) never.
    sqlx::query("UPDATE tier_policies SET required_visits = 4, cycle_days = 28 WHERE org_id = $1 AND tier = 'A'")
        .bind(w.org_a)
        .execute(&pool)
        .await
        .expect("tier A");
    let o3 =
        fieldvisit::db::outlets::create(&pool, w.org_a, &common::outlet_fields("O3", "A", (39.97, 116.07), Some(w.t1)))
            .await
            .expect("O3");
    let visit_id = visit(&pool, w.org_a, w.rep.id, w.o1).await;
    let reminders = format!("/api/v1/reps/{}/reminders", w.rep.id);
    let listed = |r: &common::Res| -> Vec<(i64, Value)> {
        r.json["outlets"]
            .as_array()
            .unwrap_or_else(|| panic!("outlets: {}", r.describe()))
            .iter()
            .map(|o| (o["outlet_id"].as_i64().expect("id"), o["reasons"].clone()))
            .collect()
    };
    let r = app.get(&reminders, Some(&w.rep.token)).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(listed(&r), [(o3, json!(["never_visited"]))], "O1 was visited a day ago: {}", r.describe());
    // Six days on, O1 is due within a day's horizon; eight days on, overdue.
    let in_days = |n: i64| {
        let day = chrono::NaiveDate::parse_from_str(r.json["date"].as_str().expect("date"), "%Y-%m-%d").expect("date");
        day + Duration::days(n)
    };
    let ahead = app.get(&format!("{reminders}?date={}&horizon_days=1", in_days(5)), Some(&w.rep.token)).await;
    assert_eq!(listed(&ahead), [(o3, json!(["never_visited"])), (w.o1, json!(["due"]))], "{}", ahead.describe());
    let later = app.get(&format!("{reminders}?date={}", in_days(7)), Some(&w.rep.token)).await;
    assert_eq!(listed(&later)[1], (w.o1, json!(["overdue"])), "{}", later.describe());

    // The rep's audit of O1 finds a problem: O1 comes first, and first in the plan proposal.
    let list = app.post("/api/v1/checklists", Some(&w.admin.token), &store_audit()).await;
    let answers = json!({"checklist_id": list.json["id"], "answers": {"display_ok": false, "sim_stock": 50}});
    let r = app.post(&format!("/api/v1/visits/{visit_id}/outcomes"), Some(&w.rep.token), &answers).await;
    assert_eq!(r.status, 201, "{}", r.describe());
    let r = app.get(&reminders, Some(&w.rep.token)).await;
    assert_eq!(listed(&r), [(w.o1, json!(["problem"])), (o3, json!(["never_visited"]))], "{}", r.describe());
    let proposal = app.get(&format!("/api/v1/reps/{}/plan-proposal", w.rep.id), Some(&w.manager.token)).await;
    assert_eq!(proposal.status, 200, "{}", proposal.describe());
    assert_eq!(proposal.json["stops"][0]["outlet_id"], w.o1, "{}", proposal.describe());
    assert_eq!(proposal.json["stops"][0]["problem"], true);

    // The manager's list is their territory's; an admin picks a territory.
    let mine = app.get("/api/v1/reminders", Some(&w.manager.token)).await;
    assert_eq!(listed(&mine).iter().map(|(id, _)| *id).collect::<Vec<_>>(), [w.o1, o3], "{}", mine.describe());
    let t2 = app.get(&format!("/api/v1/reminders?territory_id={}", w.t2), Some(&w.admin.token)).await;
    assert_eq!(listed(&t2), [(w.o2, json!(["never_visited"]))], "{}", t2.describe());
    let path = "/api/v1/reminders";
    assert_problem(&app.get(&format!("{path}?territory_id={}", w.t2), Some(&w.manager.token)).await, 403, path);
    assert_problem(&app.get(path, Some(&w.rep.token)).await, 403, path);
    assert_problem(&app.get(&reminders, Some(&w.rep2.token)).await, 403, &reminders);
    assert_problem(&app.get(&format!("{reminders}?horizon_days=40"), Some(&w.rep.token)).await, 422, &reminders);
}
