//! Visits derived from pings over the real server: a stop at an outlet becomes a verified visit
//! with its evidence, a drive-by does not, late and shuffled delivery gives the visits of in-order
//! delivery, two server instances never double-count, reads are scoped, and an admin can have a
//! period recomputed.

use crate::common;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use common::{TestApp, World, assert_problem};
use fieldvisit::config::Config;
use serde_json::{Value, json};
use sqlx::PgPool;

/// 10:00 local time yesterday in the org's time zone: in the past and inside one local day.
async fn yesterday_ten(pool: &PgPool, org_id: i64) -> (DateTime<Utc>, NaiveDate) {
    sqlx::query_as(
        "SELECT ((date_trunc('day', now() AT TIME ZONE timezone) - interval '14 hours') AT TIME ZONE timezone),
                (date_trunc('day', now() AT TIME ZONE timezone) - interval '1 day')::date
           FROM orgs WHERE id = $1",
    )
    .bind(org_id)
    .fetch_one(pool)
    .await
    .expect("yesterday")
}

/// Tier A: 50 m geofence, 5 minutes minimum dwell.
async fn tier_a(pool: &PgPool, org_id: i64) {
    sqlx::query("UPDATE tier_policies SET default_radius_m = 50, min_dwell_s = 300 WHERE org_id = $1 AND tier = 'A'")
        .bind(org_id)
        .execute(pool)
        .await
        .expect("tier A");
}

/// Metres per degree of latitude.
const M: f64 = 1.0 / 111_195.0;

/// A fix `s` seconds after `t0`, `north_m` metres north of `at`, with a little scatter in
/// position and accuracy (as a real phone's).
fn fix(t0: DateTime<Utc>, s: i64, at: (f64, f64), north_m: f64) -> Value {
    let scatter = ((s * 7 / 30) % 11) as f64 - 5.0;
    json!({
        "fix_time": (t0 + Duration::seconds(s)).to_rfc3339(),
        "lat": at.0 + (north_m + scatter) * M,
        "lon": at.1,
        "accuracy_m": 6 + (s / 30) % 5,
    })
}

/// A 15-minute stop at `at` (a fix every 30 s), then a walk away (80 m per fix: the first is
/// already outside a 50 m geofence).
fn stop(t0: DateTime<Utc>, at: (f64, f64)) -> Vec<Value> {
    let mut fixes: Vec<Value> = (0..=30).map(|i| fix(t0, i * 30, at, 0.0)).collect();
    fixes.extend((1..=20).map(|i| fix(t0, 900 + i * 30, at, 80.0 * i as f64)));
    fixes
}

async fn post(app: &TestApp, token: &str, items: &[Value]) {
    let res = app.post("/api/v1/pings", Some(token), &json!(items)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
}

/// The rep's visits of `day` once derivation has caught up (no dirty rep-day left).
async fn visits_when_derived(app: &TestApp, pool: &PgPool, token: &str, rep_id: i64, day: NaiveDate) -> Vec<Value> {
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

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("time")).expect("rfc3339").with_timezone(&Utc)
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_stop_at_an_outlet_becomes_a_verified_visit_with_its_evidence(pool: PgPool) {
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    post(&app, &w.device.token, &stop(t0, common::IN_T1)).await;
    let visits = visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, day).await;
    assert_eq!(visits.len(), 1, "{visits:?}");
    let v = &visits[0];
    assert_eq!(v["outlet_id"], w.o1, "{v}");
    assert_eq!(v["outlet_code"], "O1", "{v}");
    assert_eq!(v["verdict"], "verified", "{v}");
    assert_eq!((time(&v["arrival"]), time(&v["departure"])), (t0, t0 + Duration::seconds(900)), "{v}");
    assert_eq!(v["dwell_s"], 900, "{v}");
    assert_eq!(v["rep_day"], day.to_string(), "{v}");
    assert_eq!(v["rule_version"], "visits-v4", "{v}");
    assert_eq!((v["ping_count"].as_i64(), v["evidence"]["fix_count"].as_i64()), (Some(31), Some(31)), "{v}");
    assert_eq!(v["max_gap_s"], 30, "{v}");
    assert!(v["median_distance_m"].as_f64().is_some_and(|d| d < 10.0), "{v}");
    assert!(v["median_accuracy_m"].as_f64().is_some_and(|a| (6.0..=10.0).contains(&a)), "{v}");
    assert_eq!(v["evidence"]["stay"], true, "{v}");
    assert_eq!(v["risk_score"], 0.0, "{v}");

    // The rep sees it too; another rep does not.
    let own = app.get(&format!("/api/v1/reps/{}/visits?from={day}", w.rep.id), Some(&w.rep.token)).await;
    assert_eq!(own.json["visits"].as_array().map(Vec::len), Some(1), "{}", own.describe());
    let path = format!("/api/v1/reps/{}/visits", w.rep.id);
    assert_problem(&app.get(&format!("{path}?from={day}"), Some(&w.peer.token)).await, 403, &path);
    let bad = app.get(&format!("{path}?from={day}&to=2000-01-01"), Some(&w.manager.token)).await;
    assert_problem(&bad, 422, &path);

    // The map opens on the last day with a visit: the manager's org-wide, the rep's and the
    // phone's their own; another rep has none yet.
    for token in [&w.manager.token, &w.rep.token, &w.device.token] {
        let me = app.get("/api/v1/me", Some(token)).await;
        assert_eq!(me.json["last_visit_day"], day.to_string(), "{}", me.describe());
    }
    assert_eq!(app.get("/api/v1/me", Some(&w.peer.token)).await.json["last_visit_day"], Value::Null);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn driving_past_an_outlet_is_not_a_visit(pool: PgPool) {
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    // 15 m/s straight through the geofence, a fix every 2 s.
    let pass: Vec<Value> = (0..60).map(|i| fix(t0, i * 2, common::IN_T1, -900.0 + 30.0 * i as f64)).collect();
    post(&app, &w.device.token, &pass).await;
    assert_eq!(visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, day).await, Vec::<Value>::new());
}

/// The same day delivered in order to one rep and late, shuffled and partly twice to another:
/// the same visits (times, dwell, evidence) at their outlets.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn late_and_shuffled_pings_give_the_visits_of_in_order_delivery(pool: PgPool) {
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    let shape = |at: (f64, f64)| {
        let mut day = stop(t0, at);
        day.extend(stop(t0 + Duration::hours(2), at));
        day
    };
    post(&app, &w.device.token, &shape(common::IN_T1)).await;
    let in_order = visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, day).await;
    assert_eq!(in_order.len(), 2, "{in_order:?}");

    let mut late = shape(common::IN_T2);
    late.reverse();
    let (second, first) = late.split_at(late.len() / 3);
    post(&app, &w.device2.token, first).await;
    // Let the first part be derived on its own before the rest arrives.
    let partial = visits_when_derived(&app, &pool, &w.admin.token, w.rep2.id, day).await;
    assert!(partial.len() <= 2, "{partial:?}");
    post(&app, &w.device2.token, second).await;
    post(&app, &w.device2.token, &first[..10]).await;
    let shuffled = visits_when_derived(&app, &pool, &w.admin.token, w.rep2.id, day).await;
    let essence = |vs: &[Value]| -> Vec<Value> {
        vs.iter()
            .map(|v| json!([v["arrival"], v["departure"], v["dwell_s"], v["verdict"], v["ping_count"], v["max_gap_s"]]))
            .collect()
    };
    assert_eq!(essence(&shuffled), essence(&in_order));
    assert!(shuffled.iter().all(|v| v["outlet_id"] == w.o2), "{shuffled:?}");
}

/// Two server instances derive concurrently from the same database: one set of visits, and an
/// admin's recomputation of the period gives it again (a manager may not ask for one).
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn two_instances_never_double_count_and_a_recomputation_is_identical(pool: PgPool) {
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let (a, b) = (TestApp::spawn(pool.clone()).await, TestApp::spawn(pool.clone()).await);
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    let all = stop(t0, common::IN_T1);
    for (i, chunk) in all.chunks(5).enumerate() {
        post(if i % 2 == 0 { &a } else { &b }, &w.device.token, chunk).await;
    }
    let first = visits_when_derived(&b, &pool, &w.manager.token, w.rep.id, day).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM visits WHERE rep_id = $1")
        .bind(w.rep.id)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(stored, 1);

    let body = json!({"from": day, "to": day});
    assert_problem(
        &a.post("/api/v1/visits/recompute", Some(&w.manager.token), &body).await,
        403,
        "/api/v1/visits/recompute",
    );
    let res = a.post("/api/v1/visits/recompute", Some(&w.admin.token), &body).await;
    assert_eq!(res.status, 202, "{}", res.describe());
    assert!(res.json["rep_days"].as_u64().is_some_and(|n| n >= 1), "{}", res.describe());
    let again = visits_when_derived(&a, &pool, &w.manager.token, w.rep.id, day).await;
    let strip = |vs: &[Value]| -> Vec<Value> {
        vs.iter()
            .map(|v| {
                let mut v = v.clone();
                v.as_object_mut().map(|o| {
                    o.remove("id");
                    o.remove("computed_at")
                });
                v
            })
            .collect()
    };
    assert_eq!(strip(&again), strip(&first));
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'org.recompute_visits'")
        .fetch_one(&pool)
        .await
        .expect("audit");
    assert_eq!(audited, 1);
}

/// `GET /visits/recompute` says what derivation still waits for: the rep-days a recomputation
/// marked while no worker runs, then none once an instance with a worker has derived them.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn recompute_progress_counts_the_backlog_down_to_zero(pool: PgPool) {
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let idle = TestApp::spawn_with(pool.clone(), Config { derive_visits: false, ..common::test_config("") }).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    post(&idle, &w.device.token, &stop(t0, common::IN_T1)).await;
    post(&idle, &w.device2.token, &stop(t0, common::IN_T2)).await;
    let progress = "/api/v1/visits/recompute";
    assert_problem(&idle.get(progress, Some(&w.manager.token)).await, 403, progress);
    let res = idle.post(progress, Some(&w.admin.token), &json!({"from": day, "to": day})).await;
    assert_eq!(res.status, 202, "{}", res.describe());
    let marked = res.json["rep_days"].as_i64().expect("rep_days");
    assert_eq!(marked, 2, "two reps had pings that day");
    let before = idle.get(progress, Some(&w.admin.token)).await;
    assert_eq!(before.status, 200, "{}", before.describe());
    assert_eq!(before.json["pending_rep_days"], json!(2), "{}", before.describe());
    assert_eq!(before.json["claimed_rep_days"], json!(0));
    // Another org's backlog is not counted in this one's.
    let other = idle.get(progress, Some(&w.admin_b.token)).await;
    assert_eq!(other.json["pending_rep_days"], json!(0), "{}", other.describe());
    let worker = TestApp::spawn(pool.clone()).await;
    let mut left = before.json["pending_rep_days"].clone();
    for _ in 0..200 {
        left = worker.get(progress, Some(&w.admin.token)).await.json["pending_rep_days"].clone();
        if left == json!(0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, json!(0), "the worker derived the marked rep-days");
    assert_eq!(visits_when_derived(&worker, &pool, &w.manager.token, w.rep.id, day).await.len(), 1);
}

/// A day hand-checked end to end: a plan of two outlets (one visited inside its window, one not),
/// the compliance figures of the day and the period, and a rejecting review that changes them.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn compliance_of_a_planned_day_is_as_defined_and_reviews_change_it(pool: PgPool) {
    use fieldvisit::db::plans;
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    let plan = plans::NewPlan { rep_id: w.rep.id, name: "beat", cycle_weeks: 1, valid_from: day, valid_to: Some(day) };
    let plan_id = plans::create(&pool, w.org_a, &plan).await.expect("plan");
    for (seq, outlet_id) in [(1, w.o1), (2, w.o2)] {
        let item = plans::NewPlanItem {
            outlet_id,
            weekday: None,
            week_of_cycle: None,
            visit_date: Some(day),
            window_start: chrono::NaiveTime::from_hms_opt(9, 0, 0),
            window_end: chrono::NaiveTime::from_hms_opt(12, 0, 0),
            expected_duration_s: Some(900),
            seq,
            planned_from: None,
        };
        plans::add_item(&pool, w.org_a, plan_id, &item).await.expect("item");
    }
    assert_eq!(plans::materialize_dated(&pool, w.org_a, plan_id).await.expect("materialise"), 2);
    post(&app, &w.device.token, &stop(t0, common::IN_T1)).await;
    let visits = visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, day).await;
    assert_eq!(visits.len(), 1);

    let path = format!("/api/v1/reps/{}/compliance?from={day}&to={}", w.rep.id, day + Duration::days(1));
    let res = app.get(&path, Some(&w.manager.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let d = &res.json["days"][0];
    assert_eq!(d["day"], day.to_string(), "{d}");
    let figures = |d: &Value| {
        json!([
            d["planned"],
            d["done"],
            d["late"],
            d["short"],
            d["missed"],
            d["plan_compliance_pct"],
            d["valid_visits"],
            d["unplanned_visits"],
            d["time_in_market_s"],
            d["in_store_s"],
            d["travel_s"]
        ])
    };
    assert_eq!(figures(d), json!([2, 1, 0, 0, 1, 50.0, 1, 0, 900, 900, 0]), "{d}");
    // The stop's scatter plus the walk away of 20 x 80 m.
    let distance = d["distance_m"].as_f64().expect("distance");
    assert!((1600.0..2000.0).contains(&distance), "{distance}");
    let o1 = d["planned_visits"].as_array().expect("planned").iter().find(|p| p["outlet_id"] == w.o1).cloned();
    assert_eq!(
        o1.map(|p| (p["outcome"].clone(), p["visit_id"].clone())),
        Some((json!("done"), visits[0]["id"].clone()))
    );
    assert_eq!(res.json["totals"]["plan_compliance_pct"], 50.0, "{}", res.describe());
    assert_eq!(res.json["days"].as_array().map(Vec::len), Some(1), "days without anything are left out");

    // A supervisor rejects the visit: the planned visit is missed.
    let reviews = format!("/api/v1/visits/{}/reviews", visits[0]["id"]);
    let body = json!({"decision": "rejected", "reason": "photo shows another shop"});
    let res = app.post(&reviews, Some(&w.supervisor.token), &body).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let res = app.get(&path, Some(&w.manager.token)).await;
    assert_eq!(figures(&res.json["days"][0]), json!([2, 0, 0, 0, 2, 0.0, 0, 0, 0, 0, 0]), "{}", res.describe());
    let peer = app.get(&path, Some(&w.peer.token)).await;
    assert_eq!(peer.status, 403, "{}", peer.describe());
}

/// Reviews: supervisors and auditors accept or reject with a reason, managers may not, the rep
/// disputes their own visit (another rep may not); the evidence never changes, every review is
/// audited, and reviews follow the visit through a recomputation.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn reviews_are_by_role_audited_and_survive_recomputation(pool: PgPool) {
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    post(&app, &w.device.token, &stop(t0, common::IN_T1)).await;
    let before = visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, day).await;
    let path = format!("/api/v1/visits/{}/reviews", before[0]["id"]);
    let review = |decision: &str, reason: &str| json!({"decision": decision, "reason": reason});

    assert_problem(&app.post(&path, Some(&w.manager.token), &review("accepted", "ok")).await, 403, &path);
    assert_problem(&app.post(&path, Some(&w.peer.token), &review("disputed", "not me")).await, 403, &path);
    assert_problem(&app.post(&path, Some(&w.rep.token), &review("accepted", "trust me")).await, 403, &path);
    let blank = app.post(&path, Some(&w.supervisor.token), &review("rejected", "  ")).await;
    assert_problem(&blank, 422, &path);
    assert_eq!(blank.json["errors"][0]["field"], "reason", "{}", blank.describe());
    let odd = app.post(&path, Some(&w.supervisor.token), &review("maybe", "hm")).await;
    assert_eq!((odd.status, odd.json["errors"][0]["field"].clone()), (422, json!("decision")), "{}", odd.describe());
    let missing = app.post("/api/v1/visits/999999/reviews", Some(&w.supervisor.token), &review("rejected", "x")).await;
    assert_problem(&missing, 404, "/api/v1/visits/999999/reviews");

    for (who, decision, reason) in [
        (&w.supervisor, "rejected", "the photo shows another shop"),
        (&w.rep, "disputed", "I was inside, the shop moved its sign"),
        (&w.auditor, "accepted", "confirmed with the shop owner"),
    ] {
        let res = app.post(&path, Some(&who.token), &review(decision, reason)).await;
        assert_eq!(res.status, 201, "{}: {}", who.login, res.describe());
        assert_eq!((res.json["decision"].as_str(), res.json["reviewer_id"].as_i64()), (Some(decision), Some(who.id)));
    }
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'visit.review'")
        .fetch_one(&pool)
        .await
        .expect("audit");
    assert_eq!(audited, 3);
    let after = app.get(&format!("/api/v1/reps/{}/visits?from={day}", w.rep.id), Some(&w.manager.token)).await;
    assert_eq!(after.json["visits"][0]["evidence"], before[0]["evidence"], "the evidence is never edited");

    // Recomputed: a new visit row, the same reviews.
    let res = app.post("/api/v1/visits/recompute", Some(&w.admin.token), &json!({"from": day, "to": day})).await;
    assert_eq!(res.status, 202, "{}", res.describe());
    let again = visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, day).await;
    let listed = app.get(&format!("/api/v1/visits/{}/reviews", again[0]["id"]), Some(&w.rep.token)).await;
    assert_eq!(listed.status, 200, "{}", listed.describe());
    let decisions: Vec<&str> =
        listed.json.as_array().expect("reviews").iter().filter_map(|r| r["decision"].as_str()).collect();
    assert_eq!(decisions, vec!["rejected", "disputed", "accepted"]);
    assert!(
        listed.json.as_array().expect("reviews").iter().all(|r| r["visit_id"] == again[0]["id"]),
        "{}",
        listed.describe()
    );
    let compliance = app.get(&format!("/api/v1/reps/{}/compliance?from={day}", w.rep.id), Some(&w.manager.token)).await;
    assert_eq!(compliance.json["totals"]["valid_visits"], 1, "accepted last: {}", compliance.describe());

    // Rejected again; then the phone uploads an earlier fix at the outlet, which moves the arrival:
    // the rejection still holds for the re-derived visit.
    let path = format!("/api/v1/visits/{}/reviews", again[0]["id"]);
    let res = app.post(&path, Some(&w.supervisor.token), &review("rejected", "second look: not there")).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    post(&app, &w.device.token, &[fix(t0, -120, common::IN_T1, 0.0)]).await;
    let moved = visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, day).await;
    assert_eq!(time(&moved[0]["arrival"]), t0 - Duration::seconds(120), "{moved:?}");
    let compliance = app.get(&format!("/api/v1/reps/{}/compliance?from={day}", w.rep.id), Some(&w.manager.token)).await;
    assert_eq!(compliance.json["totals"]["valid_visits"], 0, "rejected last: {}", compliance.describe());
    let far = app.get(&format!("/api/v1/reps/{}/visits?from=2999-01-01", w.rep.id), Some(&w.manager.token)).await;
    assert_eq!(far.status, 422, "{}", far.describe());
}

/// A server starting with other visit rules than an org's visits were derived with derives all
/// that org's rep-days again, and only that org's.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_rule_change_rederives_the_orgs_days(pool: PgPool) {
    let w = World::seed(&pool).await;
    // As if org A had been derived by an older release; nothing is dirty.
    sqlx::query("UPDATE visit_rule_state SET rule_version = 'visits-v0' WHERE org_id = $1")
        .bind(w.org_a)
        .execute(&pool)
        .await
        .expect("old rules");
    sqlx::query("DELETE FROM rep_day_dirty").execute(&pool).await.expect("clean");
    let app = TestApp::spawn(pool.clone()).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        // Dirty first: a rep-day's counter is counted just after its dirty row goes.
        let dirty: i64 =
            sqlx::query_scalar("SELECT count(*) FROM rep_day_dirty").fetch_one(&pool).await.expect("dirty");
        let metrics = app.get("/metrics", None).await.text;
        let done = metrics
            .lines()
            .find(|l| l.starts_with("fieldvisit_rep_days_derived_total{outcome=\"done\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<i64>().ok());
        if dirty == 0 && done.is_some_and(|n| n >= 2) {
            // The seeded pings of org A's two phones: two rep-days; org B's phone is not touched.
            assert_eq!(done, Some(2), "{metrics}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "rule change never derived");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let versions: Vec<(i64, String)> =
        sqlx::query_as("SELECT org_id, rule_version FROM visit_rule_state ORDER BY org_id")
            .fetch_all(&pool)
            .await
            .expect("state");
    assert_eq!(versions, vec![(w.org_a, "visits-v4".to_owned()), (w.org_b, "visits-v4".to_owned())]);
}

/// Candidates are found with the geofence of the day: an outlet whose radius was 500 m yesterday
/// and is 50 m today still has yesterday's visit 300 m from it when the day is derived again.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_day_is_judged_with_the_geofence_the_outlet_had_that_day(pool: PgPool) {
    let w = World::seed(&pool).await;
    let wide_at = (39.97, 116.08);
    let mut f = common::outlet_fields("WIDE", "A", wide_at, Some(w.t1));
    f.radius_m = Some(500.0);
    let wide = fieldvisit::db::outlets::create(&pool, w.org_a, &f).await.expect("outlet");
    sqlx::query("UPDATE outlets SET radius_m = 50 WHERE org_id = $1 AND id = $2")
        .bind(w.org_a)
        .bind(wide)
        .execute(&pool)
        .await
        .expect("narrow");
    let app = TestApp::spawn(pool.clone()).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    post(&app, &w.device.token, &stop(t0, (wide_at.0 + 300.0 * M, wide_at.1))).await;
    let visits = visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, day).await;
    assert_eq!(visits.iter().map(|v| v["outlet_id"].as_i64()).collect::<Vec<_>>(), [Some(wide)], "{visits:?}");
}

/// An outlet just west of the antimeridian (Fiji) is visited from fixes just east of it.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn an_outlet_across_the_antimeridian_is_visited(pool: PgPool) {
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let at = (-17.0, -179.9998);
    let outlet = fieldvisit::db::outlets::create(&pool, w.org_a, &common::outlet_fields("FIJI", "A", at, None))
        .await
        .expect("outlet");
    let app = TestApp::spawn(pool.clone()).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    // 15 minutes standing on the other side of the line, at 179.9999 E: ~32 m from the outlet.
    let fixes: Vec<Value> = (0..=30)
        .map(|i| {
            let mut f = fix(t0, i * 30, at, 0.0);
            f["lon"] = json!(179.9999);
            f
        })
        .collect();
    post(&app, &w.device.token, &fixes).await;
    let visits = visits_when_derived(&app, &pool, &w.admin.token, w.rep.id, day).await;
    assert_eq!(visits.len(), 1, "{visits:?}");
    assert_eq!((visits[0]["outlet_id"].as_i64(), visits[0]["verdict"].as_str()), (Some(outlet), Some("verified")));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn an_outlet_that_moved_during_the_day_is_judged_where_it_stood_at_each_fix(pool: PgPool) {
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    // O1 stood at IN_T1, was re-pinned 10 m north in the middle of the morning's stop, and moved
    // 500 m north at noon.
    let north = (common::IN_T1.0 + 500.0 * M, common::IN_T1.1);
    let noon = t0 + Duration::hours(2);
    let re_pin = t0 + Duration::seconds(450);
    sqlx::query(
        "UPDATE outlet_locations SET valid_from = $3 - interval '30 days', valid_to = $3
          WHERE org_id = $1 AND outlet_id = $2",
    )
    .bind(w.org_a)
    .bind(w.o1)
    .bind(re_pin)
    .execute(&pool)
    .await
    .expect("history until the re-pin");
    for (from, to, at) in [(re_pin, Some(noon), (common::IN_T1.0 + 10.0 * M, common::IN_T1.1)), (noon, None, north)] {
        sqlx::query(
            "INSERT INTO outlet_locations (org_id, outlet_id, valid_from, valid_to, location)
             VALUES ($1, $2, $3, $4, ST_SetSRID(ST_MakePoint($6, $5), 4326))",
        )
        .bind(w.org_a)
        .bind(w.o1)
        .bind(from)
        .bind(to)
        .bind(at.0)
        .bind(at.1)
        .execute(&pool)
        .await
        .expect("history");
    }
    let app = TestApp::spawn(pool.clone()).await;
    // At the old place in the morning (one visit across the re-pin), at the new place after noon
    // (a visit), and at the old place again in the afternoon (no longer the outlet).
    let mut fixes = stop(t0, common::IN_T1);
    fixes.extend(stop(noon + Duration::hours(1), north));
    fixes.extend(stop(noon + Duration::hours(3), common::IN_T1));
    post(&app, &w.device.token, &fixes).await;
    let visits = visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, day).await;
    let got: Vec<(i64, DateTime<Utc>, &str)> = visits
        .iter()
        .map(|v| (v["outlet_id"].as_i64().unwrap_or(0), time(&v["arrival"]), v["verdict"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(got, vec![(w.o1, t0, "verified"), (w.o1, noon + Duration::hours(1), "verified")], "{visits:?}");
    assert!(visits.iter().all(|v| v["alternatives"].as_array().is_some_and(Vec::is_empty)), "{visits:?}");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn an_outlet_recorded_after_the_visit_gets_it_within_the_grace_days(pool: PgPool) {
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    // Stops at two places without an outlet (4-6 km east of O1): yesterday and nine days ago.
    let (p, q) = ((39.95, 116.10), (39.95, 116.12));
    let early = t0 - Duration::days(8);
    let early_day = day - Duration::days(8);
    let mut fixes = stop(t0, p);
    fixes.extend(stop(early, q));
    post(&app, &w.device.token, &fixes).await;
    for d in [early_day, day] {
        assert_eq!(visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, d).await, Vec::<Value>::new());
    }

    // The office records outlets at both places today.
    let at_p = fieldvisit::db::outlets::create(&pool, w.org_a, &common::outlet_fields("NEW-P", "A", p, Some(w.t1)))
        .await
        .expect("outlet at p");
    let at_q = fieldvisit::db::outlets::create(&pool, w.org_a, &common::outlet_fields("NEW-Q", "A", q, Some(w.t1)))
        .await
        .expect("outlet at q");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outlet_additions").fetch_one(&pool).await.expect("queue")
        > 0
    {
        assert!(std::time::Instant::now() < deadline, "outlet additions never processed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Yesterday's stop is within the grace days: now a visit at the new outlet. The stop nine
    // days ago is not, even derived again.
    let res =
        app.post("/api/v1/visits/recompute", Some(&w.admin.token), &json!({"from": early_day, "to": early_day})).await;
    assert_eq!(res.status, 202, "{}", res.describe());
    assert_eq!(visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, early_day).await, Vec::<Value>::new());
    let at_q_visits =
        app.get(&format!("/api/v1/outlets/{at_q}/visits?from={early_day}&to={day}"), Some(&w.manager.token)).await;
    assert_eq!(at_q_visits.status, 200, "{}", at_q_visits.describe());
    assert_eq!(at_q_visits.json["visits"], json!([]), "{}", at_q_visits.describe());
    let visits = visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, day).await;
    let got: Vec<(i64, DateTime<Utc>, &str)> = visits
        .iter()
        .map(|v| (v["outlet_id"].as_i64().unwrap_or(0), time(&v["arrival"]), v["verdict"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(got, vec![(at_p, t0, "verified")], "{visits:?}");
}

/// The reps' app signs in as a device, and a device acts for its rep: it reads the rep's own
/// work (visits, figures, plan, reminders, checklists, outlets of the rep's territory, the access
/// log of the rep's data) and disputes the rep's visits, and reads nothing of other reps.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_device_reads_its_reps_own_work_and_nothing_of_other_reps(pool: PgPool) {
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    post(&app, &w.device.token, &stop(t0, common::IN_T1)).await;
    let visits = visits_when_derived(&app, &pool, &w.device.token, w.rep.id, day).await;
    assert_eq!(visits.len(), 1, "the device reads its rep's visits: {visits:?}");
    let token = Some(w.device.token.as_str());
    let (rep, peer, rep2) = (w.rep.id, w.peer.id, w.rep2.id);
    let review = |decision: &str, reason: &str| json!({"decision": decision, "reason": reason});
    for path in [
        format!("/api/v1/reps/{rep}/compliance?from={day}"),
        format!("/api/v1/reps/{rep}/plan?date={day}"),
        format!("/api/v1/reps/{rep}/reminders"),
        format!("/api/v1/outlets/{}", w.o1),
        "/api/v1/checklists".to_owned(),
        "/api/v1/access-log".to_owned(),
        "/api/v1/me".to_owned(),
    ] {
        let res = app.get(&path, token).await;
        assert_eq!(res.status, 200, "{path}: {}", res.describe());
    }
    assert_eq!(app.get("/api/v1/me", token).await.json["rep"]["id"], rep, "the app learns whose device it is");
    for path in [
        format!("/api/v1/reps/{peer}/visits?from={day}"),
        format!("/api/v1/reps/{rep2}/compliance?from={day}"),
        format!("/api/v1/reps/{peer}/plan?date={day}"),
        format!("/api/v1/reps/{peer}/reminders"),
        format!("/api/v1/reps/{peer}/pings?date={day}"),
        format!("/api/v1/outlets/{}", w.o2),
        format!("/api/v1/access-log?rep_id={peer}"),
        "/api/v1/users".to_owned(),
        "/api/v1/devices".to_owned(),
        "/api/v1/exports".to_owned(),
    ] {
        let res = app.get(&path, token).await;
        assert_eq!(res.status, 403, "{path}: {}", res.describe());
    }

    // The device disputes its rep's visit (the rep is the reviewer); it cannot accept one.
    let path = format!("/api/v1/visits/{}/reviews", visits[0]["id"]);
    let res = app.post(&path, token, &review("accepted", "it was fine")).await;
    assert_eq!(res.status, 403, "{}", res.describe());
    let res = app.post(&path, token, &review("disputed", "I was inside the shop")).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    assert_eq!((res.json["decision"].as_str(), res.json["reviewer_id"].as_i64()), (Some("disputed"), Some(rep)));
    let actor: Option<i64> = sqlx::query_scalar(
        "SELECT actor_device_id FROM audit_log WHERE action = 'visit.review' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .expect("audit");
    assert_eq!(actor, Some(w.device.id), "the audit log names the device");
}

/// A check-in from the reps' app is confirmed by the visit derived from the same phone's fixes; one
/// without fixes stays unconfirmed once the rep's positions are derived.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_derived_visit_confirms_a_check_in_and_none_leaves_it_unconfirmed(pool: PgPool) {
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    let token = Some(w.device.token.as_str());
    let at = |t: DateTime<Utc>, outlet: i64| {
        json!({"outlet_id": outlet, "checked_in_at": t.to_rfc3339(), "lat": common::IN_T1.0, "lon": common::IN_T1.1,
               "accuracy_m": 12})
    };
    let res = app
        .call(reqwest::Method::PUT, "/api/v1/checkins/confirm-0001", token, Some(&at(t0 + Duration::minutes(2), w.o1)))
        .await;
    assert_eq!(res.status, 201, "{}", res.describe());
    // Three hours later, a check-in with no fixes around it (weak GPS indoors).
    let res = app
        .call(reqwest::Method::PUT, "/api/v1/checkins/claim-0001", token, Some(&at(t0 + Duration::hours(3), w.o1)))
        .await;
    assert_eq!(res.status, 201, "{}", res.describe());
    post(&app, &w.device.token, &stop(t0, common::IN_T1)).await;
    let visits = visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, day).await;
    assert_eq!(visits.len(), 1, "{visits:?}");
    let list = app.get(&format!("/api/v1/reps/{}/checkins?from={day}", w.rep.id), token).await;
    assert_eq!(list.status, 200, "{}", list.describe());
    let standing: Vec<(String, Value, Value)> = list
        .json
        .as_array()
        .expect("check-ins")
        .iter()
        .map(|c| (c["client_id"].as_str().unwrap_or_default().to_owned(), c["status"].clone(), c["visit_id"].clone()))
        .collect();
    assert_eq!(
        standing,
        vec![
            ("confirm-0001".to_owned(), json!("confirmed"), visits[0]["id"].clone()),
            ("claim-0001".to_owned(), json!("unconfirmed"), Value::Null),
        ]
    );

    // The claim goes to a reviewer: reps and managers may not decide; a supervisor accepts it,
    // and derivation adds a visit for it that counts.
    let claim_id = list.json[1]["id"].as_i64().expect("id");
    let path = format!("/api/v1/checkins/{claim_id}/decision");
    let accept = json!({"decision": "accepted", "reason": "photo of the counter, GPS weak indoors"});
    for who in [&w.rep, &w.manager] {
        assert_problem(&app.post(&path, Some(&who.token), &accept).await, 403, &path);
    }
    let compliance = format!("/api/v1/reps/{}/compliance?from={day}", w.rep.id);
    let valid = |res: &common::Res| res.json["totals"]["valid_visits"].as_i64();
    assert_eq!(valid(&app.get(&compliance, Some(&w.manager.token)).await), Some(1));
    let res = app.post(&path, Some(&w.supervisor.token), &accept).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_problem(&app.post(&path, Some(&w.supervisor.token), &accept).await, 409, &path);
    let visits = visits_when_derived(&app, &pool, &w.manager.token, w.rep.id, day).await;
    assert_eq!(visits.len(), 2, "the claimed visit is added: {visits:?}");
    assert_eq!(
        (visits[1]["verdict"].as_str(), visits[1]["evidence"]["fix_count"].as_i64()),
        (Some("unverified"), Some(0))
    );
    let reviews = app.get(&format!("/api/v1/visits/{}/reviews", visits[1]["id"]), Some(&w.manager.token)).await;
    assert_eq!(reviews.json[0]["decision"], "accepted", "{}", reviews.describe());
    assert_eq!(valid(&app.get(&compliance, Some(&w.manager.token)).await), Some(2), "accepting it counts it");
    let list = app.get(&format!("/api/v1/reps/{}/checkins?from={day}", w.rep.id), token).await;
    assert_eq!((list.json[1]["status"].as_str(), &list.json[1]["visit_id"]), (Some("confirmed"), &visits[1]["id"]));
}

/// The stored visits of the org's reps, in a fixed order, with what derivation writes.
async fn stored_visits(pool: &PgPool, org_id: i64) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT jsonb_build_object('id', id, 'rep', rep_id, 'day', rep_day, 'outlet', outlet_id, 'arrival', arrival,
                                   'departure', departure, 'verdict', verdict, 'risk', risk_score,
                                   'alternatives', alternatives, 'evidence', evidence)
           FROM visits WHERE org_id = $1 ORDER BY rep_id, rep_day, arrival",
    )
    .bind(org_id)
    .fetch_all(pool)
    .await
    .expect("visits")
}

/// Issue 28: the worker derives many rep-days per round trip. A group gives the visits (and
/// keeps the ids) that deriving each rep-day alone gives, and a rep-day of the group whose claim
/// changed meanwhile (new pings) is not written and stays dirty while the others are written.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_group_of_rep_days_derives_what_each_alone_does_and_skips_a_changed_claim(pool: PgPool) {
    use fieldvisit::db::visits::{claim_dirty, mark_period};
    use fieldvisit::derive::{derive_day, derive_days};
    use fieldvisit::domain::visit::VisitRules;
    let w = World::seed(&pool).await;
    tier_a(&pool, w.org_a).await;
    let idle = TestApp::spawn_with(pool.clone(), Config { derive_visits: false, ..common::test_config("") }).await;
    let (t0, day) = yesterday_ten(&pool, w.org_a).await;
    let before = t0 - Duration::days(1);
    // Rep 1 on two days (at two outlets), rep 2 on one.
    post(&idle, &w.device.token, &stop(t0, common::IN_T1)).await;
    post(&idle, &w.device.token, &stop(before, common::IN_T2)).await;
    post(&idle, &w.device2.token, &stop(t0, common::IN_T2)).await;
    let rules = VisitRules::default();
    let claimed = claim_dirty(&pool, 100, 0, 300).await.expect("claim");
    assert_eq!(claimed.len(), 3, "{claimed:?}");
    for d in &claimed {
        assert!(derive_day(&pool, d, &rules).await.expect("derive alone"));
    }
    let alone = stored_visits(&pool, w.org_a).await;
    assert_eq!(alone.len(), 3, "{alone:?}");

    // Again as one group; rep 2's visits are removed first, and new pings clear its claim after
    // the group was claimed (as ingest does).
    mark_period(&pool, w.org_a, day - Duration::days(1), day, "test").await.expect("mark");
    let claimed = claim_dirty(&pool, 100, 0, 300).await.expect("claim");
    assert_eq!(claimed.len(), 3, "{claimed:?}");
    sqlx::query("DELETE FROM visits WHERE org_id = $1 AND rep_id = $2")
        .bind(w.org_a)
        .bind(w.rep2.id)
        .execute(&pool)
        .await
        .expect("delete");
    sqlx::query("UPDATE rep_day_dirty SET claimed_at = NULL, marked_at = now() WHERE org_id = $1 AND rep_id = $2")
        .bind(w.org_a)
        .bind(w.rep2.id)
        .execute(&pool)
        .await
        .expect("new pings");
    let done = derive_days(&pool, &claimed, &rules).await.expect("derive the group");
    let expected: Vec<bool> = claimed.iter().map(|d| d.rep_id != w.rep2.id).collect();
    assert_eq!(done, expected);
    let grouped = stored_visits(&pool, w.org_a).await;
    let rep1 = |vs: &[Value]| -> Vec<Value> { vs.iter().filter(|v| v["rep"] == json!(w.rep.id)).cloned().collect() };
    assert_eq!(rep1(&grouped), rep1(&alone), "same visits, same ids");
    assert_eq!(grouped.len(), 2, "rep 2's rep-day is not written: {grouped:?}");
    let dirty: Vec<i64> = sqlx::query_scalar("SELECT rep_id FROM rep_day_dirty WHERE org_id = $1")
        .bind(w.org_a)
        .fetch_all(&pool)
        .await
        .expect("dirty");
    assert_eq!(dirty, vec![w.rep2.id], "only the changed rep-day stays dirty");

    // Derived again (a group of one), rep 2's visit is back as it was, with a new id.
    let claimed = claim_dirty(&pool, 100, 0, 300).await.expect("claim");
    assert_eq!(derive_days(&pool, &claimed, &rules).await.expect("derive"), vec![true]);
    let strip = |vs: Vec<Value>| -> Vec<Value> {
        vs.into_iter()
            .map(|mut v| {
                v.as_object_mut().map(|o| o.remove("id"));
                v
            })
            .collect()
    };
    assert_eq!(strip(stored_visits(&pool, w.org_a).await), strip(alone));
}
