//! Coverage over the real server, checked against a hand computation: a territory's outlet figures
//! by child territory, tier, channel type and H3 cell with the white space, each outlet's status at
//! the end of the period, a planned route's corridor coverage, and scope.

use crate::common;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use common::{TestApp, World, assert_problem};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::BTreeMap;

/// Period day `n` of the 14 local days 2026-11-02 .. 2026-11-15 (Asia/Shanghai); negative = before.
fn day(n: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 2).expect("date") + Duration::days(n)
}

/// 10:00 local (02:00 UTC) on period day `n`.
fn ten(n: i64) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day(n).and_hms_opt(2, 0, 0).expect("time"))
}

async fn outlet(pool: &PgPool, org: i64, code: &str, tier: &str, at: (f64, f64), territory: i64) -> i64 {
    fieldvisit::db::outlets::create(pool, org, &common::outlet_fields(code, tier, at, Some(territory)))
        .await
        .expect("outlet")
}

/// A stored visit (as the deriver writes them).
async fn visit(pool: &PgPool, org: i64, rep: i64, outlet: i64, n: i64, dwell_s: i64, verdict: &str) {
    sqlx::query(
        "INSERT INTO visits (org_id, rep_id, outlet_id, rep_day, arrival, departure, dwell_s, verdict, ping_count, rule_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 10, 'visits-v3')",
    )
    .bind(org)
    .bind(rep)
    .bind(outlet)
    .bind(day(n))
    .bind(ten(n))
    .bind(ten(n) + Duration::seconds(dwell_s))
    .bind(dwell_s as i32)
    .bind(verdict)
    .execute(pool)
    .await
    .expect("visit");
}

fn approx(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-9)
}

/// Checks a set of outlet figures: |U|, visited, coverage %, frequency compliance %.
fn assert_figures(f: &Value, active: i64, visited: i64, coverage: f64, frequency: f64) {
    assert_eq!((f["active_outlets"].as_i64(), f["visited_outlets"].as_i64()), (Some(active), Some(visited)), "{f}");
    assert!(approx(&f["coverage_pct"], coverage), "coverage {coverage}: {f}");
    assert!(approx(&f["frequency_compliance_pct"], frequency), "frequency {frequency}: {f}");
}

/// The hand-made org (on top of `World`: R > T1, T2; o1 in T1 and o2 in T2, tier A), all outlets
/// registered on 2026-10-01 unless said otherwise; tier A requires 4 visits per 28 days (interval
/// 7 days, 2 in the 14-day period), tier C 1 (interval 28 days, 0.5 in the period), 300 s dwell:
/// - o1 (T1, A): verified 900 s on day 10, short on day 12 -> E - last = 3 days: `visited`;
/// - o2 (T2, A): verified 600 s on day 3 -> 10 days, at least 7 and under 10.5: `due`;
/// - o3 (T1, C, channel `agent_point`): verified 900 s on 2026-10-01, before the period -> 45
///   days, at least 1.5 x 28: `overdue`;
/// - o4 (T1, A, 4 km away): never visited: `never_visited`;
/// - o5 (T1, A): verified 900 s on day 1, closed on day 8: in U, `closed` at the end;
/// - o6 (T2, A): registered now, after the period: not in U, no status.
///
/// By hand, R: U = {o1..o5}; visited in the period o1, o2, o5: coverage 3/5 = 60 %; frequency
/// (1/2 + 1/2 + 0 + 0 + 1/2) / 5 = 30 %. T1 = {o1, o3, o4, o5}: 2/4 = 50 %, (0.5 + 0.5) / 4 = 25 %;
/// T2 = {o2}: 100 %, 50 %. Tier A = {o1, o2, o4, o5}: 75 %, 37.5 %; tier C = {o3}: 0 %, 0 %.
/// Seeds the hand-made org described on [`territory_coverage_equals_a_hand_computation_and_is_scoped`];
/// returns the world and outlets o1 to o6.
async fn hand_made_org(pool: &PgPool) -> (World, [i64; 6]) {
    let pool = pool.clone();
    let w = World::seed(&pool).await;
    let org = w.org_a;
    sqlx::query("UPDATE tier_policies SET min_dwell_s = 300, required_visits = CASE tier WHEN 'A' THEN 4 ELSE 1 END, cycle_days = 28 WHERE org_id = $1 AND tier IN ('A', 'C')")
        .bind(org)
        .execute(&pool)
        .await
        .expect("tiers");
    let (o1, o2) = (w.o1, w.o2);
    let o3 = outlet(&pool, org, "O3", "C", (39.951, 116.051), w.t1).await;
    sqlx::query("UPDATE outlets SET channel_type = 'agent_point' WHERE org_id = $1 AND id = $2")
        .bind(org)
        .bind(o3)
        .execute(&pool)
        .await
        .expect("channel");
    let o4 = outlet(&pool, org, "O4", "A", (39.99, 116.09), w.t1).await;
    let o5 = outlet(&pool, org, "O5", "A", (39.952, 116.052), w.t1).await;
    sqlx::query("UPDATE outlets SET status = 'closed' WHERE org_id = $1 AND id = $2")
        .bind(org)
        .bind(o5)
        .execute(&pool)
        .await
        .expect("close");
    sqlx::query(
        "UPDATE outlet_status_changes SET changed_at = CASE status WHEN 'active' THEN timestamptz '2026-10-01 00:00Z'
                                                                   ELSE $2 END
          WHERE org_id = $1",
    )
    .bind(org)
    .bind(ten(8))
    .execute(&pool)
    .await
    .expect("registered in October, o5 closed on day 8");
    let o6 = outlet(&pool, org, "O6", "A", (39.951, 116.251), w.t2).await;
    visit(&pool, org, w.rep.id, o1, 10, 900, "verified").await;
    visit(&pool, org, w.rep.id, o1, 12, 100, "short").await;
    visit(&pool, org, w.rep2.id, o2, 3, 600, "verified").await;
    visit(&pool, org, w.rep.id, o3, -32, 900, "verified").await;
    visit(&pool, org, w.rep.id, o5, 1, 900, "verified").await;
    visit(&pool, org, w.rep2.id, o6, 5, 900, "verified").await;

    (w, [o1, o2, o3, o4, o5, o6])
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn territory_coverage_equals_a_hand_computation_and_is_scoped(pool: PgPool) {
    let (w, [o1, o2, o3, o4, o5, _o6]) = hand_made_org(&pool).await;
    let mut config = common::test_config("unused");
    config.derive_visits = false;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let q = format!("from={}&to={}", day(0), day(13));
    let path = format!("/api/v1/territories/{}/coverage", w.root);
    let res = app.get(&format!("{path}?{q}&h3_res=8"), Some(&w.admin.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let r = &res.json;
    assert_eq!((r["period_days"].as_i64(), r["code"].as_str()), (Some(14), Some("R")), "{r}");
    assert_figures(&r["outlets"], 5, 3, 60.0, 30.0);
    // Dwell: the 3 valid visits in the period at outlets of U all lasted 300 s or more.
    assert_eq!((r["outlets"]["valid_visits"].as_i64(), r["outlets"]["dwell_ok_visits"].as_i64()), (Some(3), Some(3)));
    let find = |list: &str, field: &str, key: &str| {
        r[list].as_array().expect("list").iter().find(|g| g[field] == key).cloned().expect("group")
    };
    assert_figures(&find("children", "code", "T1")["outlets"], 4, 2, 50.0, 25.0);
    assert_figures(&find("children", "code", "T2")["outlets"], 1, 1, 100.0, 50.0);
    assert_figures(&find("by_tier", "key", "A"), 4, 3, 75.0, 37.5);
    assert_figures(&find("by_tier", "key", "C"), 1, 0, 0.0, 0.0);
    assert_figures(&find("by_channel_type", "key", "agent_point"), 1, 0, 0.0, 0.0);
    let counts = &r["status_counts"];
    assert_eq!(
        counts,
        &json!({"visited": 1, "due": 1, "overdue": 1, "never_visited": 1, "closed": 1}),
        "{}",
        res.describe()
    );

    // H3 cells of resolution 8, from the per-outlet figures above: (visited in the period,
    // frequency ratio) grouped by each outlet's cell.
    let per_outlet = [
        ((39.95, 116.05), true, 0.5),
        (common::IN_T2, true, 0.5),
        ((39.951, 116.051), false, 0.0),
        ((39.99, 116.09), false, 0.0),
        ((39.952, 116.052), true, 0.5),
    ];
    let mut want: BTreeMap<String, (i64, i64, f64)> = BTreeMap::new();
    for ((lat, lon), visited, ratio) in per_outlet {
        let cell = h3o::LatLng::new(lat, lon).expect("position").to_cell(h3o::Resolution::Eight).to_string();
        let e = want.entry(cell).or_default();
        e.0 += 1;
        e.1 += i64::from(visited);
        e.2 += ratio;
    }
    let cells = r["h3"]["cells"].as_array().expect("cells");
    assert_eq!(r["h3"]["resolution"], 8);
    assert_eq!(cells.len(), want.len(), "{cells:?}");
    for c in cells {
        let (n, visited, ratios) = want[c["cell"].as_str().expect("cell")];
        assert_figures(c, n, visited, visited as f64 / n as f64 * 100.0, ratios / n as f64 * 100.0);
        assert_eq!(c["white_space"], visited == 0, "{c}");
    }
    let white = want.values().filter(|v| v.1 == 0).count();
    assert!(white >= 1, "o4 stands alone 4 km away");
    assert_eq!(r["h3"]["white_space_cells"].as_u64(), Some(white as u64));

    // Each outlet's status, filtered and paged.
    let status_path = format!("/api/v1/territories/{}/outlet-status", w.root);
    let res = app.get(&format!("{status_path}?{q}"), Some(&w.admin.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let statuses: Vec<(i64, String)> = res.json["outlets"]
        .as_array()
        .expect("outlets")
        .iter()
        .map(|o| (o["outlet_id"].as_i64().unwrap_or(0), o["status"].as_str().unwrap_or("").to_owned()))
        .collect();
    let expected: Vec<(i64, String)> =
        [(o1, "visited"), (o2, "due"), (o3, "overdue"), (o4, "never_visited"), (o5, "closed")]
            .into_iter()
            .map(|(id, s)| (id, s.to_owned()))
            .collect();
    assert_eq!(statuses, expected, "o6 was registered after the period: {}", res.describe());
    let o3_row = &res.json["outlets"][2];
    assert_eq!(o3_row["last_valid_visit"], json!(day(-32)), "{o3_row}");
    assert!(approx(&o3_row["required_visits"], 0.5) && o3_row["valid_visits"] == 0, "{o3_row}");
    let overdue = app.get(&format!("{status_path}?{q}&status=overdue"), Some(&w.admin.token)).await;
    assert_eq!((overdue.json["total"].as_i64(), overdue.json["outlets"][0]["outlet_id"].as_i64()), (Some(1), Some(o3)));
    let page = app.get(&format!("{status_path}?{q}&limit=2&offset=1"), Some(&w.admin.token)).await;
    let paged: Vec<i64> =
        page.json["outlets"].as_array().expect("page").iter().filter_map(|o| o["outlet_id"].as_i64()).collect();
    assert_eq!((page.json["total"].as_i64(), paged), (Some(5), vec![o2, o3]));

    // Scope: a T1 manager sees T1's outlets, not T2's or the root's; bad parameters are named.
    let t1_path = format!("/api/v1/territories/{}/outlet-status", w.t1);
    let t1 = app.get(&format!("{t1_path}?{q}"), Some(&w.manager.token)).await;
    assert_eq!(t1.json["total"].as_i64(), Some(4), "{}", t1.describe());
    assert_problem(&app.get(&format!("{path}?{q}"), Some(&w.manager.token)).await, 403, &path);
    let t2_path = format!("/api/v1/territories/{}/coverage", w.t2);
    assert_problem(&app.get(&format!("{t2_path}?{q}"), Some(&w.manager.token)).await, 403, &t2_path);
    assert_problem(&app.get(&format!("{path}?{q}"), Some(&w.rep.token)).await, 403, &path);
    assert_problem(&app.get(&format!("{path}?{q}"), Some(&w.admin_b.token)).await, 404, &path);
    for bad in ["h3_res=4", "h3_res=11", "to=2026-11-01"] {
        let res = app.get(&format!("{path}?from={}&{bad}", day(0)), Some(&w.admin.token)).await;
        assert_problem(&res, 422, &path);
    }
    assert_problem(&app.get(&format!("{status_path}?{q}&status=late"), Some(&w.admin.token)).await, 422, &status_path);
    assert_problem(&app.get(&format!("{status_path}?{q}&limit=0"), Some(&w.admin.token)).await, 422, &status_path);
}

/// Metres per degree of latitude.
const M: f64 = 1.0 / 111_195.0;

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn route_coverage_is_the_share_of_the_planned_line_near_the_track(pool: PgPool) {
    let w = World::seed(&pool).await;
    // A route of two stops 1,000 m apart, north of O1.
    let north = (common::IN_T1.0 + 1000.0 * M, common::IN_T1.1);
    let o_north = outlet(&pool, w.org_a, "NORTH", "A", north, w.t1).await;
    let mut config = common::test_config("unused");
    config.derive_visits = false;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let date = NaiveDate::from_ymd_opt(2026, 11, 20).expect("date");
    let plan = json!({"rep_id": w.rep.id, "name": "two stops", "valid_from": date, "valid_to": date,
                      "items": [{"outlet_id": w.o1, "visit_date": date}, {"outlet_id": o_north, "visit_date": date}]});
    let res = app.post("/api/v1/plans", Some(&w.manager.token), &plan).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    // The rep walked the first 600 m of it, 20 m to the east (a fix every 10 m).
    let t0 = Utc.from_utc_datetime(&date.and_hms_opt(2, 0, 0).expect("time"));
    let east = 20.0 * M / common::IN_T1.0.to_radians().cos();
    let fixes: Vec<Value> = (0..=60)
        .map(|k| {
            json!({"fix_time": (t0 + Duration::seconds(10 * k)).to_rfc3339(),
                   "lat": common::IN_T1.0 + (10 * k) as f64 * M, "lon": common::IN_T1.1 + east, "accuracy_m": 5})
        })
        .collect();
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!(fixes)).await;
    assert_eq!(res.status, 200, "{}", res.describe());

    let path = format!("/api/v1/reps/{}/route-coverage", w.rep.id);
    let res = app.get(&format!("{path}?date={date}&within_m=50"), Some(&w.manager.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let r = &res.json;
    let stops: Vec<i64> =
        r["stops"].as_array().expect("stops").iter().filter_map(|s| s["outlet_id"].as_i64()).collect();
    assert_eq!(stops, vec![w.o1, o_north]);
    assert_eq!(r["fix_count"], 61);
    assert!(r["route_m"].as_f64().is_some_and(|m| (m - 1000.0).abs() < 2.0), "{r}");
    // Covered: the first 600 m plus the ~46 m of the corridor around the last fix.
    assert!(r["covered_pct"].as_f64().is_some_and(|p| (63.0..=66.0).contains(&p)), "{r}");
    let narrow = app.get(&format!("{path}?date={date}&within_m=10"), Some(&w.rep.token)).await;
    assert!(approx(&narrow.json["covered_pct"], 0.0), "20 m off the line: {}", narrow.describe());
    let other_day = app.get(&format!("{path}?date=2026-11-21"), Some(&w.rep.token)).await;
    assert_eq!(other_day.json["covered_pct"], Value::Null, "no route: {}", other_day.describe());
    assert_problem(&app.get(&format!("{path}?date={date}"), Some(&w.peer.token)).await, 403, &path);
    assert_problem(&app.get(&format!("{path}?date={date}&within_m=0"), Some(&w.manager.token)).await, 422, &path);
}

/// Asserts that every view and two tiles are the same from both servers; returns the first view.
async fn compare(memory: &TestApp, database: &TestApp, views: &[String], q: &str, token: &str, expect: &str) -> Value {
    let mut first = Value::Null;
    for view in views {
        let (m, d) = (memory.get(view, Some(token)).await, database.get(view, Some(token)).await);
        assert_eq!((m.status, d.status), (200, 200), "{view}: {} / {}", m.describe(), d.describe());
        assert_eq!(m.json, d.json, "{expect}: {view} from memory and from the database differ");
        if first.is_null() {
            first = m.json;
        }
    }
    for tile in [
        "/tiles/outlets/10/842/387.mvt",
        "/tiles/outlets/0/0/0.mvt",
        "/tiles/coverage/10/842/387.mvt",
        "/tiles/coverage/0/0/0.mvt",
    ] {
        let path = format!("{tile}?{q}");
        let (m, d) = (tile_bytes(memory, &path, token).await, tile_bytes(database, &path, token).await);
        assert!(!m.is_empty(), "{tile} holds outlets");
        assert_eq!(m, d, "{expect}: tile {tile} from memory and from the database differ");
    }
    first
}

/// The body of a successful GET.
async fn tile_bytes(app: &TestApp, path: &str, token: &str) -> Vec<u8> {
    let res = app.request(reqwest::Method::GET, path, Some(token)).send().await.expect("tile request");
    assert_eq!(res.status(), 200, "{path}");
    res.bytes().await.expect("tile body").to_vec()
}

/// The statuses served from memory (outlet index and visit ledger) equal those a server without a
/// ledger reads from the database, on every view that shows them, and follow a review and a visit
/// written after the ledger was loaded.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn statuses_from_memory_equal_the_database_and_follow_changes(pool: PgPool) {
    let (w, [o1, _, _, o4, _, _]) = hand_made_org(&pool).await;
    let mut config = common::test_config("unused");
    config.derive_visits = false;
    // A ledger reaching back past the fixed period whatever day the suite runs on.
    config.visit_ledger_days = 100_000;
    let memory = TestApp::spawn_with(pool.clone(), config.clone()).await;
    config.visit_ledger_days = 0;
    let database = TestApp::spawn_with(pool.clone(), config).await;
    let q = format!("from={}&to={}", day(0), day(13));
    let views = [
        format!("/api/v1/layers/outlets?{q}"),
        format!("/api/v1/layers/outlets?{q}&bbox=116.0,39.9,116.2,40.0"),
        format!("/api/v1/layers/outlets?{q}&status=never_visited"),
        format!("/api/v1/layers/outlets?{q}&tier=A&limit=2"),
        format!("/api/v1/territories/{}/outlet-status?{q}", w.root),
        format!("/api/v1/territories/{}/outlet-status?{q}&status=visited", w.t1),
        format!("/api/v1/territories/{}/coverage?{q}", w.root),
        format!("/api/v1/territories/{}/coverage?{q}&h3_res=10", w.t1),
        format!("/api/v1/layers/coverage?{q}&h3_res=9"),
    ];
    let status_of = |body: &Value, id: i64| {
        body["features"]
            .as_array()
            .expect("features")
            .iter()
            .find(|f| f["id"] == id)
            .map(|f| f["properties"]["status"].clone())
    };
    let all = compare(&memory, &database, &views, &q, &w.admin.token, "as seeded").await;
    assert_eq!(all["numberReturned"], 5, "{all}");
    assert_eq!(status_of(&all, o1), Some(json!("visited")));
    assert_eq!(status_of(&all, o4), Some(json!("never_visited")));

    // A supervisor rejects o1's only valid visit; another instance stores a visit at o4.
    let visit_id: i64 =
        sqlx::query_scalar("SELECT id FROM visits WHERE org_id = $1 AND outlet_id = $2 AND verdict = 'verified'")
            .bind(w.org_a)
            .bind(o1)
            .fetch_one(&pool)
            .await
            .expect("o1's verified visit");
    let res = memory
        .post(
            &format!("/api/v1/visits/{visit_id}/reviews"),
            Some(&w.supervisor.token),
            &json!({"decision": "rejected", "reason": "photo shows another shop"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.describe());
    visit(&pool, w.org_a, w.rep.id, o4, 12, 200, "verified").await; // valid, under the 300 s dwell
    let after = compare(&memory, &database, &views, &q, &w.admin.token, "after a review and a new visit").await;
    assert_eq!(status_of(&after, o1), Some(json!("never_visited")), "the rejected visit no longer counts");
    assert_eq!(status_of(&after, o4), Some(json!("visited")), "the new visit counts");

    // A tier change reaches the outlet index (its label) and so every view from memory.
    sqlx::query("UPDATE outlets SET tier = 'C', name = 'O4 renamed' WHERE org_id = $1 AND id = $2")
        .bind(w.org_a)
        .bind(o4)
        .execute(&pool)
        .await
        .expect("retier");
    let layer = format!("/api/v1/layers/outlets?{q}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = memory.get(&layer, Some(&w.admin.token)).await.json;
        let o4_now = now["features"].as_array().and_then(|f| f.iter().find(|f| f["id"] == o4).cloned());
        if o4_now.is_some_and(|f| f["properties"]["tier"] == "C" && f["properties"]["name"] == "O4 renamed") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the index never saw the new tier and name: {now}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    compare(&memory, &database, &views, &q, &w.admin.token, "after a tier change").await;
}
