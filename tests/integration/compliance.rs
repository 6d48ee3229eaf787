//! Compliance roll-ups over the real server, checked against a hand computation: a territory's plan
//! figures (summed over its reps) and outlet figures (coverage, frequency and dwell compliance, by
//! child territory, tier and channel type), each outlet's frequency, one outlet's visits, and scope.

use crate::common;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use common::{TestApp, World, assert_problem};
use serde_json::{Value, json};
use sqlx::PgPool;

/// The 14 local days of the period: 2026-11-02 .. 2026-11-15 (Asia/Shanghai).
fn day(n: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 2).expect("date") + chrono::Days::new(n)
}

/// 10:00 local (02:00 UTC) on period day `n`.
fn ten(n: u64) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day(n).and_hms_opt(2, 0, 0).expect("time"))
}

async fn outlet(pool: &PgPool, org: i64, code: &str, tier: &str, at: (f64, f64), territory: i64) -> i64 {
    fieldvisit::db::outlets::create(pool, org, &common::outlet_fields(code, tier, at, Some(territory)))
        .await
        .expect("outlet")
}

/// A stored visit (as the deriver writes them).
async fn visit(pool: &PgPool, org: i64, rep: i64, outlet: i64, n: u64, dwell_s: i64, verdict: &str) -> i64 {
    let arrival = ten(n);
    sqlx::query_scalar(
        "INSERT INTO visits (org_id, rep_id, outlet_id, rep_day, arrival, departure, dwell_s, verdict, ping_count, rule_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 10, 'visits-v3') RETURNING id",
    )
    .bind(org)
    .bind(rep)
    .bind(outlet)
    .bind(day(n))
    .bind(arrival)
    .bind(arrival + Duration::seconds(dwell_s))
    .bind(dwell_s as i32)
    .bind(verdict)
    .fetch_one(pool)
    .await
    .expect("visit")
}

/// A dated plan for `rep`: one planned visit per (outlet, period day).
async fn plan(pool: &PgPool, org: i64, rep: i64, items: &[(i64, u64)]) {
    use fieldvisit::db::plans;
    let p = plans::NewPlan { rep_id: rep, name: "beat", cycle_weeks: 1, valid_from: day(0), valid_to: Some(day(13)) };
    let plan_id = plans::create(pool, org, &p).await.expect("plan");
    for (seq, (outlet_id, n)) in items.iter().enumerate() {
        let item = plans::NewPlanItem {
            outlet_id: *outlet_id,
            weekday: None,
            week_of_cycle: None,
            visit_date: Some(day(*n)),
            window_start: None,
            window_end: None,
            expected_duration_s: None,
            seq: seq as i32,
            planned_from: None,
        };
        plans::add_item(pool, org, plan_id, &item).await.expect("item");
    }
    plans::materialize_dated(pool, org, plan_id).await.expect("materialise");
}

fn approx(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-9)
}

#[track_caller]
fn assert_outlets(o: &Value, active: i64, visited: i64, coverage: f64, frequency: f64, valid: i64, dwell_ok: i64) {
    assert_eq!((o["active_outlets"].as_i64(), o["visited_outlets"].as_i64()), (Some(active), Some(visited)), "{o}");
    assert!(approx(&o["coverage_pct"], coverage), "coverage {o}");
    assert!(approx(&o["frequency_compliance_pct"], frequency), "frequency {o}");
    assert_eq!((o["valid_visits"].as_i64(), o["dwell_ok_visits"].as_i64()), (Some(valid), Some(dwell_ok)), "{o}");
    assert!(approx(&o["dwell_compliance_pct"], dwell_ok as f64 * 100.0 / valid as f64), "dwell {o}");
}

/// The hand-made org (on top of `World`: R > T1, T2; o1 in T1 and o2 in T2, tier A):
/// - tier A requires 4 visits per 28 days (2 in the 14-day period), tier C 1 (0.5); both a 300 s
///   minimum dwell;
/// - o3 in T1, tier C, channel `agent_point`; o4 in T1, tier A, closed before the period;
/// - rep (T1): o1 verified 900 s on days 0 and 5, suspect 600 s on day 6; o3 short 120 s on day 1,
///   accepted by a supervisor; o4 verified 900 s on day 4; planned: o1 day 0, o3 day 1, o1 day 2;
/// - rep2 (T2): o2 verified 900 s on day 3; planned: o2 day 3.
///
/// By hand, R: U = {o1, o2, o3}; valid visits o1 2, o2 1, o3 1 (o4's is outside U); coverage
/// 3/3 = 100 %; frequency (min(2/2,1) + min(1/2,1) + min(1/0.5,1)) / 3 = 2.5/3 = 83.3 %; dwell
/// 3 of 4 valid visits >= 300 s = 75 %. Plan: rep 2 done (o1 day 0, o3 day 1) of 3, rep2 1 of 1:
/// 3/4 = 75 %; 8 visits, 6 valid (all but the two suspect ones); unplanned valid visits: rep's o1 day 5
/// and o4 day 4, rep2's o5 day 7 (o5 is registered only after the period: not in U, so it is in no
/// outlet figure, but the visit is rep2's).
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn territory_compliance_equals_a_hand_computation_and_is_scoped(pool: PgPool) {
    let w = World::seed(&pool).await;
    let org = w.org_a;
    sqlx::query("UPDATE tier_policies SET min_dwell_s = 300, required_visits = CASE tier WHEN 'A' THEN 4 ELSE 1 END, cycle_days = 28 WHERE org_id = $1 AND tier IN ('A', 'C')")
        .bind(org)
        .execute(&pool)
        .await
        .expect("tiers");
    let o3 = outlet(&pool, org, "O3", "C", (39.951, 116.051), w.t1).await;
    sqlx::query("UPDATE outlets SET channel_type = 'agent_point' WHERE org_id = $1 AND id = $2")
        .bind(org)
        .bind(o3)
        .execute(&pool)
        .await
        .expect("channel");
    let o4 = outlet(&pool, org, "O4", "A", (39.952, 116.052), w.t1).await;
    sqlx::query("UPDATE outlets SET status = 'closed' WHERE org_id = $1 AND id = $2")
        .bind(org)
        .bind(o4)
        .execute(&pool)
        .await
        .expect("close");
    // The history says when: all registered in October, O4 closed on 2026-11-01.
    sqlx::query("UPDATE outlet_status_changes SET changed_at = timestamptz '2026-10-01 00:00Z' WHERE org_id = $1 AND outlet_id <> $2")
        .bind(org)
        .bind(o4)
        .execute(&pool)
        .await
        .expect("registered");
    sqlx::query(
        "UPDATE outlet_status_changes SET changed_at = CASE status WHEN 'active' THEN timestamptz '2026-10-01 00:00Z'
                                                                   ELSE timestamptz '2026-11-01 00:00Z' END
          WHERE org_id = $1 AND outlet_id = $2",
    )
    .bind(org)
    .bind(o4)
    .execute(&pool)
    .await
    .expect("history");

    // O5 is registered only now, after the period: not in U, and its visit does not count.
    let o5 = outlet(&pool, org, "O5", "A", (39.953, 116.053), w.t1).await;
    visit(&pool, org, w.rep2.id, o5, 7, 900, "verified").await;
    // rep2 (T2) at o1 (T1), suspect: in rep2's figures; a T1 manager does not see it.
    visit(&pool, org, w.rep2.id, w.o1, 8, 600, "suspect").await;
    visit(&pool, org, w.rep.id, w.o1, 0, 900, "verified").await;
    visit(&pool, org, w.rep.id, w.o1, 5, 900, "verified").await;
    visit(&pool, org, w.rep.id, w.o1, 6, 600, "suspect").await;
    let short = visit(&pool, org, w.rep.id, o3, 1, 120, "short").await;
    visit(&pool, org, w.rep.id, o4, 4, 900, "verified").await;
    visit(&pool, org, w.rep2.id, w.o2, 3, 900, "verified").await;
    plan(&pool, org, w.rep.id, &[(w.o1, 0), (o3, 1), (w.o1, 2)]).await;
    plan(&pool, org, w.rep2.id, &[(w.o2, 3)]).await;

    let app = TestApp::spawn(pool.clone()).await;
    let review = json!({"decision": "accepted", "reason": "owner confirmed a short restock visit"});
    let res = app.post(&format!("/api/v1/visits/{short}/reviews"), Some(&w.supervisor.token), &review).await;
    assert_eq!(res.status, 201, "{}", res.describe());

    let q = format!("from={}&to={}", day(0), day(13));
    let path = format!("/api/v1/territories/{}/compliance", w.root);
    let res = app.get(&format!("{path}?{q}"), Some(&w.admin.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let r = &res.json;
    assert_eq!((r["period_days"].as_i64(), r["code"].as_str()), (Some(14), Some("R")), "{r}");
    assert_outlets(&r["outlets"], 3, 3, 100.0, 250.0 / 3.0, 4, 3);
    let p = &r["plan"];
    assert_eq!(
        json!([
            p["planned"],
            p["done"],
            p["missed"],
            p["visits"],
            p["valid_visits"],
            p["unplanned_visits"],
            p["suspect_visits"]
        ]),
        json!([4, 3, 1, 8, 6, 3, 2]),
        "{p}"
    );
    assert!(approx(&p["plan_compliance_pct"], 75.0), "{p}");
    // In-store time of the valid visits: rep 900 + 900 + 120 + 900, rep2 900 + 900.
    assert_eq!(p["in_store_s"], 4620, "{p}");

    let child = |code: &str| {
        r["children"].as_array().expect("children").iter().find(|c| c["code"] == code).cloned().expect("child")
    };
    let t1 = child("T1");
    // T1: U = {o1, o3}: frequency (1 + 1) / 2; dwell 2 of 3 valid visits.
    assert_outlets(&t1["outlets"], 2, 2, 100.0, 100.0, 3, 2);
    assert_eq!((t1["plan"]["planned"].as_i64(), t1["plan"]["done"].as_i64()), (Some(3), Some(2)), "{t1}");
    let t2 = child("T2");
    assert_outlets(&t2["outlets"], 1, 1, 100.0, 50.0, 1, 1);
    assert_eq!((t2["plan"]["planned"].as_i64(), t2["plan"]["done"].as_i64()), (Some(1), Some(1)), "{t2}");
    let group = |list: &str, key: &str| {
        r[list].as_array().expect("groups").iter().find(|g| g["key"] == key).cloned().expect("group")
    };
    // Tier A: U = {o1, o2}: (1 + 0.5) / 2; tier C: U = {o3}.
    assert_outlets(&group("by_tier", "A"), 2, 2, 100.0, 75.0, 3, 3);
    assert_outlets(&group("by_tier", "C"), 1, 1, 100.0, 100.0, 1, 0);
    assert_outlets(&group("by_channel_type", "agent_point"), 1, 1, 100.0, 100.0, 1, 0);
    assert_outlets(&group("by_channel_type", "business_hall"), 2, 2, 100.0, 75.0, 3, 3);
    let reps = r["reps"].as_array().expect("reps");
    assert_eq!(reps.len(), 5, "rep, peer, rep2 and the two victims: {reps:?}");
    let rep = reps.iter().find(|x| x["rep_id"] == w.rep.id).expect("rep");
    assert_eq!(
        (rep["totals"]["planned"].as_i64(), rep["totals"]["unplanned_visits"].as_i64()),
        (Some(3), Some(2)),
        "{rep}"
    );

    // Each outlet's frequency, least compliant first; o4 (closed at the start) is not listed.
    let freq = app.get(&format!("/api/v1/territories/{}/outlet-frequency?{q}", w.root), Some(&w.admin.token)).await;
    assert_eq!(freq.status, 200, "{}", freq.describe());
    let rows: Vec<(String, f64, i64, f64)> = freq.json["outlets"]
        .as_array()
        .expect("outlets")
        .iter()
        .map(|o| {
            let f = |k: &str| o[k].as_f64().expect("number");
            (
                o["code"].as_str().expect("code").to_owned(),
                f("required_visits"),
                o["valid_visits"].as_i64().expect("n"),
                f("frequency_compliance_pct"),
            )
        })
        .collect();
    assert_eq!(rows, vec![("O2".into(), 2.0, 1, 50.0), ("O1".into(), 2.0, 2, 100.0), ("O3".into(), 0.5, 1, 100.0)]);
    let below = app
        .get(&format!("/api/v1/territories/{}/outlet-frequency?{q}&below_pct=100", w.root), Some(&w.admin.token))
        .await;
    assert_eq!(
        (below.json["total"].as_i64(), below.json["outlets"][0]["code"].as_str()),
        (Some(1), Some("O2")),
        "{}",
        below.describe()
    );

    // One outlet's visits: all reps' for a manager of its territory, only their own for a rep.
    let o1_path = format!("/api/v1/outlets/{}/visits", w.o1);
    let o1 = app.get(&format!("{o1_path}?{q}"), Some(&w.manager.token)).await;
    assert_eq!(o1.status, 200, "{}", o1.describe());
    assert_eq!(o1.json["visits"].as_array().map(Vec::len), Some(3), "{}", o1.describe());
    assert_eq!((o1.json["valid_visits"].as_i64(), o1.json["required_visits"].as_f64()), (Some(2), Some(2.0)));
    assert_eq!(o1.json["frequency_compliance_pct"], 100.0);
    let verdicts: Vec<&str> =
        o1.json["visits"].as_array().expect("visits").iter().filter_map(|v| v["verdict"].as_str()).collect();
    assert_eq!(verdicts, ["verified", "verified", "suspect"]);
    let all = app.get(&format!("{o1_path}?{q}"), Some(&w.admin.token)).await;
    assert_eq!(all.json["visits"].as_array().map(Vec::len), Some(4), "rep2's too: {}", all.describe());
    assert!(o1.json["visits"].as_array().expect("visits").iter().all(|v| v["rep_id"] == w.rep.id), "{}", o1.describe());
    let peer = app.get(&format!("{o1_path}?{q}"), Some(&w.peer.token)).await;
    assert_eq!((peer.status, peer.json["visits"].as_array().map(Vec::len)), (200, Some(0)), "{}", peer.describe());
    let own = app.get(&format!("{o1_path}?{q}"), Some(&w.rep.token)).await;
    assert_eq!(own.json["visits"].as_array().map(Vec::len), Some(3), "{}", own.describe());
    let o2_path = format!("/api/v1/outlets/{}/visits", w.o2);
    assert_problem(&app.get(&format!("{o2_path}?{q}"), Some(&w.manager.token)).await, 403, &o2_path);
    // An outlet outside the rep's territory is as closed to the rep as GET /outlets/{id} is.
    assert_problem(&app.get(&format!("{o2_path}?{q}"), Some(&w.rep.token)).await, 403, &o2_path);

    // Scope: a T1 manager sees T1 and not R or T2; reps see no territory's figures; org B not at all.
    let t1_path = format!("/api/v1/territories/{}/compliance", w.t1);
    let mine = app.get(&format!("{t1_path}?{q}"), Some(&w.manager.token)).await;
    assert_eq!(mine.status, 200, "{}", mine.describe());
    assert_outlets(&mine.json["outlets"], 2, 2, 100.0, 100.0, 3, 2);
    assert!(mine.json["reps"].as_array().expect("reps").iter().all(|x| x["rep_id"] != w.rep2.id));
    assert_problem(&app.get(&format!("{path}?{q}"), Some(&w.manager.token)).await, 403, &path);
    let t2_path = format!("/api/v1/territories/{}/compliance", w.t2);
    assert_problem(&app.get(&format!("{t2_path}?{q}"), Some(&w.manager.token)).await, 403, &t2_path);
    assert_problem(&app.get(&format!("{t1_path}?{q}"), Some(&w.rep.token)).await, 403, &t1_path);
    assert_problem(&app.get(&format!("{path}?{q}"), Some(&w.admin_b.token)).await, 404, &path);
    assert_problem(&app.get(&format!("{path}?from={}&to={}", day(5), day(0)), Some(&w.admin.token)).await, 422, &path);
}
