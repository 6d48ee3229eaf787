//! Multi-week beat proposals over HTTP (issue 27): a rep's 4-week proposal places every visit its
//! outlets' tiers require within their windows and the working hours, and posted to `POST /plans`
//! the rep's planned visits of those weeks meet each tier's frequency; a team's proposal keeps
//! each outlet with one rep and balances the load; scope and bad input are refused.

use crate::common;

use chrono::{Datelike, Duration, NaiveDate};
use common::{TestApp, World, assert_problem, outlet_fields};

use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};

const PATH: &str = "/api/v1/beats/proposals";

/// `n` more outlets in territory T1 (a 6 x n/6 grid ~400 m apart), tiers A/B/C in turn (4/2/1 visits
/// per 28 days by the default policies), every fifth with a 10:00-12:00 window in its attributes.
/// Returns (id, visits required in 4 weeks, window).
async fn seed_outlets(pool: &PgPool, w: &World, n: usize) -> Vec<(i64, usize, Option<(&'static str, &'static str)>)> {
    let mut out = vec![(w.o1, 4, None)];
    for k in 0..n {
        let (tier, visits) = [("A", 4), ("B", 2), ("C", 1)][k % 3];
        let at = (39.93 + (k / 6) as f64 * 0.0036, 116.02 + (k % 6) as f64 * 0.0047);
        let mut f = outlet_fields(&format!("BT{k:03}"), tier, at, Some(w.t1));
        let window = (k % 5 == 0).then_some(("10:00", "12:00"));
        if let Some((s, e)) = window {
            f.attributes = json!({"window_start": s, "window_end": e});
        }
        out.push((fieldvisit::db::outlets::create(pool, w.org_a, &f).await.expect("outlet"), visits, window));
    }
    out
}

fn next_monday(pool_today: NaiveDate) -> NaiveDate {
    pool_today + Duration::days(7 - i64::from(pool_today.weekday().num_days_from_monday()))
}

async fn today(pool: &PgPool, org_id: i64) -> NaiveDate {
    sqlx::query_scalar("SELECT (now() AT TIME ZONE timezone)::date FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_one(pool)
        .await
        .expect("today")
}

fn minutes(hhmm: &str) -> u32 {
    let (h, m) = hhmm.split_once(':').expect("HH:MM");
    h.parse::<u32>().expect("hour") * 60 + m.parse::<u32>().expect("minute")
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_rep_s_four_week_beat_places_every_visit_and_becomes_a_plan(pool: PgPool) {
    let w = World::seed(&pool).await;
    let outlets = seed_outlets(&pool, &w, 30).await;
    let app = TestApp::spawn(pool.clone()).await;
    let monday = next_monday(today(&pool, w.org_a).await);
    let ask = json!({"rep_id": w.rep.id, "cycle_weeks": 4, "valid_from": monday, "day_start": "09:00",
                     "day_end": "17:00", "max_seconds": 3});
    let res = app.post(PATH, Some(&w.manager.token), &ask).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let required: usize = outlets.iter().map(|o| o.1).sum();
    assert_eq!(res.json["required_visits"].as_u64(), Some(required as u64), "{}", res.describe());
    assert_eq!(res.json["placed_visits"].as_u64(), Some(required as u64), "{}", res.json["unplaced"]);
    assert_eq!(res.json["unplaced"], json!([]));
    assert!(res.json["travel_m"].as_f64() > Some(0.0) && res.json["baseline_travel_m"].as_f64() > Some(0.0));
    let rep = &res.json["reps"][0];
    assert_eq!(rep["rep_id"].as_i64(), Some(w.rep.id));
    let windows: HashMap<i64, Option<(&str, &str)>> = outlets.iter().map(|o| (o.0, o.2)).collect();
    for item in rep["items"].as_array().expect("items") {
        let (arrival, dur) = (
            minutes(item["arrival"].as_str().expect("arrival")),
            item["expected_duration_s"].as_u64().expect("duration") as u32 / 60,
        );
        assert!(arrival >= 9 * 60 && arrival + dur <= 17 * 60, "{item}");
        let (ws, we) =
            (minutes(item["window_start"].as_str().expect("ws")), minutes(item["window_end"].as_str().expect("we")));
        assert!(arrival >= ws && arrival + dur <= we, "{item}");
        if let Some((s, e)) = windows[&item["outlet_id"].as_i64().expect("outlet")] {
            assert_eq!((item["window_start"].as_str(), item["window_end"].as_str()), (Some(s), Some(e)));
        }
        assert!(item["why"].as_str().is_some_and(|s| s.starts_with("tier ")), "{item}");
    }

    // Accepted: the rep's plan as proposed; the planned visits of the 4 weeks meet every tier.
    let res = app.post("/api/v1/plans", Some(&w.manager.token), &rep["plan"]).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let mut planned: HashMap<i64, HashSet<NaiveDate>> = HashMap::new();
    for d in 0..28 {
        let day = monday + Duration::days(d);
        let res = app.get(&format!("/api/v1/reps/{}/plan?date={day}", w.rep.id), Some(&w.manager.token)).await;
        assert_eq!(res.status, 200, "{}", res.describe());
        for v in res.json["visits"].as_array().expect("visits") {
            planned.entry(v["outlet_id"].as_i64().expect("outlet")).or_default().insert(day);
        }
    }
    for (id, visits, _) in &outlets {
        assert_eq!(planned.get(id).map_or(0, HashSet::len), *visits, "outlet {id}");
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_team_s_beat_keeps_each_outlet_with_one_rep_and_balances_load(pool: PgPool) {
    let w = World::seed(&pool).await;
    let outlets = seed_outlets(&pool, &w, 60).await;
    let app = TestApp::spawn(pool.clone()).await;
    let ask = json!({"territory_id": w.t1, "cycle_weeks": 2, "max_seconds": 3});
    let res = app.post(PATH, Some(&w.admin.token), &ask).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let reps = res.json["reps"].as_array().expect("reps");
    // The active reps of T1: rep, peer, victim-t1.
    assert_eq!(reps.len(), 3, "{}", res.describe());
    let mut owner: HashMap<i64, HashSet<i64>> = HashMap::new();
    for r in reps {
        for item in r["items"].as_array().expect("items") {
            owner
                .entry(item["outlet_id"].as_i64().expect("id"))
                .or_default()
                .insert(r["rep_id"].as_i64().expect("rep"));
        }
    }
    assert_eq!(owner.len(), outlets.len(), "every outlet planned");
    assert!(owner.values().all(|r| r.len() == 1), "each outlet with one rep: {owner:?}");
    let loads: Vec<u64> = reps.iter().map(|r| r["placed_visits"].as_u64().expect("placed")).collect();
    let (lo, hi) = (loads.iter().min().copied().unwrap_or(0), loads.iter().max().copied().unwrap_or(0));
    assert!(lo > 0 && (hi - lo) as f64 <= 0.2 * hi as f64, "balanced: {loads:?}");
    assert_eq!(res.json["placed_visits"], res.json["required_visits"], "{}", res.json["unplaced"]);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn proposals_respect_scope_and_name_bad_fields(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let manager = Some(w.manager.token.as_str());
    // The manager of T1 may not plan T2's rep or territory, nor another org's rep; a rep may not plan.
    assert_problem(&app.post(PATH, manager, &json!({"rep_id": w.rep2.id})).await, 403, PATH);
    assert_problem(&app.post(PATH, manager, &json!({"territory_id": w.t2})).await, 403, PATH);
    assert_problem(&app.post(PATH, manager, &json!({"rep_id": w.rep_b.id})).await, 404, PATH);
    assert_problem(&app.post(PATH, Some(&w.rep.token), &json!({"rep_id": w.rep.id})).await, 403, PATH);
    assert_problem(&app.post(PATH, None, &json!({"rep_id": w.rep.id})).await, 401, PATH);
    for (body, field) in [
        (json!({"rep_id": w.rep.id, "cycle_weeks": 13}), "cycle_weeks"),
        (json!({"rep_id": w.rep.id, "day_start": "9am"}), "day_start"),
        (json!({"rep_id": w.rep.id, "day_start": "18:00", "day_end": "09:00"}), "day_end"),
        (json!({"rep_id": w.rep.id, "max_seconds": 61}), "max_seconds"),
        (json!({"rep_id": w.rep.id, "territory_id": w.t1}), "rep_id"),
        (json!({}), "rep_id"),
    ] {
        let res = app.post(PATH, manager, &body).await;
        assert_problem(&res, 422, PATH);
        assert_eq!(res.error_fields(), vec![field.to_owned()], "{body}: {}", res.describe());
    }
    let big = Value::String("x".repeat(8 * 1024));
    assert_eq!(app.post(PATH, manager, &json!({"rep_id": w.rep.id, "day_start": big})).await.status, 413);
}

const DAY_PATH: &str = "/api/v1/beats/day-order";

/// Travel of stops in order from a start, metres, straight line × 1.3 (as the solver counts it).
fn leg_sum(start: (f64, f64), pts: &[(f64, f64)]) -> f64 {
    let mut prev = start;
    pts.iter()
        .map(|&p| {
            let d = fieldvisit::domain::geo::haversine_m(prev.0, prev.1, p.0, p.1) * 1.3;
            prev = p;
            d
        })
        .sum()
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_day_in_zigzag_comes_back_in_a_shorter_order_within_its_windows(pool: PgPool) {
    let w = World::seed(&pool).await;
    let outlets = seed_outlets(&pool, &w, 12).await;
    let app = TestApp::spawn(pool.clone()).await;
    // Ten stops sent in a zigzag (far, near, far, ...); one keeps its 10:00-12:00 window.
    let mut ids: Vec<i64> = outlets[1..11].iter().map(|o| o.0).collect();
    let zigzag: Vec<i64> = (0..5).flat_map(|k| [ids[9 - k], ids[k]]).collect();
    ids.sort_unstable();
    let stops: Vec<Value> = zigzag.iter().map(|id| json!({"outlet_id": id})).collect();
    let ask = json!({"rep_id": w.rep.id, "stops": stops, "day_start": "09:00", "day_end": "17:00", "max_seconds": 1});
    let res = app.post(DAY_PATH, Some(&w.manager.token), &ask).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let day = &res.json;
    assert_eq!(day["unplaced"], json!([]));
    let ordered: Vec<i64> =
        day["stops"].as_array().expect("stops").iter().map(|s| s["outlet_id"].as_i64().unwrap_or(0)).collect();
    let mut same = ordered.clone();
    same.sort_unstable();
    assert_eq!(same, ids, "every stop comes back once");
    let seqs: Vec<i64> =
        day["stops"].as_array().expect("stops").iter().map(|s| s["seq"].as_i64().unwrap_or(0)).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    let (travel, given) = (day["travel_m"].as_f64().expect("travel"), day["given_travel_m"].as_f64().expect("given"));
    assert!(travel < given, "the solver's order {travel} m is shorter than the zigzag's {given} m");
    // The legs add up to the travel, and the zigzag's travel is what its legs measure from the
    // same start (the centroid of the rep's territory's outlets, for a manager).
    let legs: f64 = day["stops"].as_array().expect("stops").iter().map(|s| s["leg_m"].as_f64().unwrap_or(0.0)).sum();
    assert!((legs - travel).abs() <= 10.0, "legs {legs} vs travel {travel}");
    let at: HashMap<i64, (f64, f64)> = sqlx::query_as::<_, (i64, f64, f64)>(
        "SELECT id, ST_Y(location::geometry), ST_X(location::geometry) FROM outlets WHERE org_id = $1 AND territory_id = $2",
    )
    .bind(w.org_a)
    .bind(w.t1)
    .fetch_all(&pool)
    .await
    .expect("outlets")
    .into_iter()
    .map(|(id, lat, lon)| (id, (lat, lon)))
    .collect();
    let n = at.len() as f64;
    let centre = at.values().fold((0.0, 0.0), |(a, b), p| (a + p.0 / n, b + p.1 / n));
    let zig: Vec<(f64, f64)> = zigzag.iter().map(|id| at[id]).collect();
    assert!((leg_sum(centre, &zig) - given).abs() <= 10.0, "given {given} vs {}", leg_sum(centre, &zig));
    for (s, o) in day["stops"]
        .as_array()
        .expect("stops")
        .iter()
        .filter_map(|s| outlets.iter().find(|o| o.0 == s["outlet_id"].as_i64().unwrap_or(0)).map(|o| (s, o)))
    {
        let arrival = minutes(s["arrival"].as_str().expect("arrival"));
        let (from, to) = o.2.map_or((9 * 60, 17 * 60), |(a, b)| (minutes(a), minutes(b)));
        assert!(arrival >= from && arrival + 20 <= to, "outlet {} arrives {} outside {from}-{to}", o.0, s["arrival"]);
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_day_order_respects_scope_and_names_bad_stops(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let manager = Some(w.manager.token.as_str());
    let one = json!([{"outlet_id": w.o1}]);
    assert_problem(&app.post(DAY_PATH, manager, &json!({"rep_id": w.rep2.id, "stops": one})).await, 403, DAY_PATH);
    assert_problem(&app.post(DAY_PATH, manager, &json!({"rep_id": w.rep_b.id, "stops": one})).await, 404, DAY_PATH);
    assert_problem(
        &app.post(DAY_PATH, Some(&w.rep.token), &json!({"rep_id": w.rep.id, "stops": one})).await,
        403,
        DAY_PATH,
    );
    assert_problem(&app.post(DAY_PATH, None, &json!({"rep_id": w.rep.id, "stops": one})).await, 401, DAY_PATH);
    // An outlet of another territory or org is named by its index; so are a bad window and a repeat.
    for (stops, field) in [
        (json!([{"outlet_id": w.o1}, {"outlet_id": w.o2}]), "stops[1].outlet_id"),
        (json!([{"outlet_id": w.ob}]), "stops[0].outlet_id"),
        (json!([{"outlet_id": w.o1, "window_start": "12:00", "window_end": "10:00"}]), "stops[0].window_end"),
        (json!([{"outlet_id": w.o1}, {"outlet_id": w.o1}]), "stops[1].outlet_id"),
        (json!([{"outlet_id": w.o1, "expected_duration_s": 5}]), "stops[0].expected_duration_s"),
        (json!([]), "stops"),
    ] {
        let res = app.post(DAY_PATH, manager, &json!({"rep_id": w.rep.id, "stops": stops})).await;
        assert_problem(&res, 422, DAY_PATH);
        assert_eq!(res.error_fields(), vec![field.to_owned()], "{stops}: {}", res.describe());
    }
    // A stop whose window lies outside the working hours is answered, and named as unplaced.
    let late = json!([{"outlet_id": w.o1, "window_start": "20:00", "window_end": "21:00"}]);
    let res = app.post(DAY_PATH, manager, &json!({"rep_id": w.rep.id, "stops": late, "day_end": "18:00"})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["stops"], json!([]));
    assert_eq!(res.json["unplaced"][0]["outlet_id"], json!(w.o1));
}
