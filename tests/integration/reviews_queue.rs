//! The review queue over the real server: suspect, unverified and disputed visits and check-in
//! claims of the caller's scope, oldest first and paged; a bulk decision by filter or by items
//! takes each item through its single decision (the visit's history names the reviewer, the
//! coverage figure moves); who may decide; bad bodies named field by field.

use crate::common::{self, IN_T1, TestApp, World, assert_problem};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use sqlx::PgPool;

/// A stored visit (as the deriver writes them) of `rep` at `outlet` arriving at `at`.
async fn visit(
    pool: &PgPool,
    w: &World,
    rep: i64,
    outlet: i64,
    (at, day): (DateTime<Utc>, NaiveDate),
    verdict: &str,
) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO visits (org_id, rep_id, outlet_id, rep_day, arrival, departure, dwell_s, verdict, risk_score,
                             ping_count, rule_version)
         VALUES ($1, $2, $3, $4, $5, $5 + interval '10 minutes', 600, $6, 0.7, 10, 'visits-v3') RETURNING id",
    )
    .bind(w.org_a)
    .bind(rep)
    .bind(outlet)
    .bind(day)
    .bind(at)
    .bind(verdict)
    .fetch_one(pool)
    .await
    .expect("visit")
}

/// The (kind, id) of a queue page's items, in order.
fn listed(res: &common::Res) -> Vec<(String, i64)> {
    res.json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {}", res.text))
        .iter()
        .map(|i| (i["kind"].as_str().unwrap_or_default().to_owned(), i["id"].as_i64().unwrap_or_default()))
        .collect()
}

/// T1's visited outlets in the period, from its coverage.
async fn visited(app: &TestApp, w: &World, from: NaiveDate, to: NaiveDate) -> i64 {
    let res =
        app.get(&format!("/api/v1/territories/{}/coverage?from={from}&to={to}", w.t1), Some(&w.admin.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(res.json["outlets"]["active_outlets"].as_i64() > Some(0), "{}", res.text);
    res.json["outlets"]["visited_outlets"].as_i64().unwrap_or_else(|| panic!("visited_outlets in {}", res.text))
}

struct Seeded {
    suspect: i64,
    unverified: i64,
    disputed: i64,
    claim: i64,
    other_territory: i64,
    from: NaiveDate,
    to: NaiveDate,
}

/// T1: rep's suspect visit (3 days ago) and unverified visit (2 days ago) at o1, peer's verified
/// visit rejected and then disputed (yesterday 10:00), rep's check-in claim (yesterday 11:00);
/// T2: rep2's suspect visit at o2 (2 days ago).
async fn seed(pool: &PgPool, app: &TestApp, w: &World) -> Seeded {
    for backdate in [
        "UPDATE outlet_locations SET valid_from = valid_from - interval '30 days'",
        "UPDATE outlet_status_changes SET changed_at = changed_at - interval '30 days'",
    ] {
        sqlx::query(backdate).execute(pool).await.expect("outlets recorded a month ago");
    }
    let d3 = common::ten_oclock(pool, w.org_a, 3).await;
    let d2 = common::ten_oclock(pool, w.org_a, 2).await;
    let d1 = common::ten_oclock(pool, w.org_a, 1).await;
    let suspect = visit(pool, w, w.rep.id, w.o1, d3, "suspect").await;
    let unverified = visit(pool, w, w.rep.id, w.o1, d2, "unverified").await;
    let other_territory = visit(pool, w, w.rep2.id, w.o2, d2, "suspect").await;
    let disputed = visit(pool, w, w.peer.id, w.o1, d1, "verified").await;
    let path = format!("/api/v1/visits/{disputed}/reviews");
    let res = app.post(&path, Some(&w.supervisor.token), &json!({"decision": "rejected", "reason": "no photo"})).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let res =
        app.post(&path, Some(&w.peer.token), &json!({"decision": "disputed", "reason": "the shop was shut"})).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let at = d1.0 + Duration::hours(1);
    let body = json!({"outlet_id": w.o1, "checked_in_at": at.to_rfc3339(), "lat": IN_T1.0, "lon": IN_T1.1, "accuracy_m": 30.0});
    let res = app.put("/api/v1/checkins/queue-claim-01", Some(&w.device.token), &body).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    assert_eq!(res.json["status"], "unconfirmed", "{}", res.text);
    let claim = res.json["id"].as_i64().expect("check-in id");
    Seeded { suspect, unverified, disputed, claim, other_territory, from: d3.1, to: d1.1 }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_queue_lists_every_kind_oldest_first_paged_and_scoped(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let s = seed(&pool, &app, &w).await;
    let queue = format!("/api/v1/reviews/queue?from={}&to={}", s.from, s.to);

    let res = app.get(&queue, Some(&w.supervisor.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let want = [
        ("suspect".to_owned(), s.suspect),
        ("unverified".to_owned(), s.unverified),
        ("disputed".to_owned(), s.disputed),
        ("claim".to_owned(), s.claim),
    ];
    assert_eq!(listed(&res), want, "{}", res.text);
    assert_eq!(res.json["total"], 4);
    let disputed = &res.json["items"][2];
    assert_eq!(disputed["dispute_reason"], "the shop was shut", "{disputed}");
    assert_eq!((disputed["rep"]["name"].as_str(), disputed["outlet"]["code"].as_str()), (Some("peer"), Some("O1")));
    assert_eq!(disputed["links"]["photos"], format!("/api/v1/visits/{}/photos", s.disputed));
    let first = &res.json["items"][0];
    assert_eq!(
        (first["verdict"].as_str(), first["risk_score"].as_f64().map(|r| (r * 10.0).round())),
        (Some("suspect"), Some(7.0))
    );
    let claim = &res.json["items"][3];
    assert_eq!(claim["links"]["decide"], format!("/api/v1/checkins/{}/decision", s.claim));
    assert!(claim["verdict"].is_null(), "{claim}");

    // Paged: two, then the other two; the cursor continues where the page ended.
    let page = app.get(&format!("{queue}&limit=2"), Some(&w.supervisor.token)).await;
    assert_eq!(listed(&page), want[..2], "{}", page.text);
    let next = page.json["next"].as_str().expect("a next cursor").to_owned();
    let rest = app.get(&format!("{queue}&limit=2&after={next}"), Some(&w.supervisor.token)).await;
    assert_eq!(listed(&rest), want[2..], "{}", rest.text);
    assert!(rest.json["next"].is_null(), "{}", rest.text);
    let page = app.get(&format!("{queue}&limit=3&after={next}"), Some(&w.supervisor.token)).await;
    assert_eq!(listed(&page), want[2..], "{}", page.text);

    // Filters: kinds, rep.
    let res = app.get(&format!("{queue}&kind=claim,disputed"), Some(&w.supervisor.token)).await;
    assert_eq!(listed(&res), want[2..], "{}", res.text);
    let res = app.get(&format!("{queue}&rep_id={}", w.peer.id), Some(&w.supervisor.token)).await;
    assert_eq!(listed(&res), want[2..3], "{}", res.text);

    // Scope: T1's supervisor sees none of T2's; T2's supervisor only T2's; the admin all five;
    // another org's admin nothing.
    assert!(!listed(&app.get(&queue, Some(&w.admin_t1.token)).await).iter().any(|(_, id)| *id == s.other_territory));
    let other = json!({"login": "supervisor-t2", "name": "Supervisor T2", "role": "supervisor", "territory_id": w.t2});
    let res = app.post("/api/v1/users", Some(&w.admin.token), &other).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let t2_token = res.json["token"].as_str().expect("token").to_owned();
    let res = app.get(&queue, Some(&t2_token)).await;
    assert_eq!(listed(&res), [("suspect".to_owned(), s.other_territory)], "{}", res.text);
    assert_eq!(app.get(&queue, Some(&w.admin.token)).await.json["total"], 5);
    assert_eq!(app.get(&queue, Some(&w.admin_b.token)).await.json["total"], 0);
    assert_problem(
        &app.get(&format!("{queue}&territory_id={}", w.t2), Some(&w.supervisor.token)).await,
        403,
        "/api/v1/reviews/queue",
    );
    assert_problem(
        &app.get(&format!("{queue}&rep_id={}", w.rep2.id), Some(&w.supervisor.token)).await,
        403,
        "/api/v1/reviews/queue",
    );

    // Who reviews: not managers or reps.
    assert_problem(&app.get(&queue, Some(&w.manager.token)).await, 403, "/api/v1/reviews/queue");
    assert_problem(&app.get(&queue, Some(&w.rep.token)).await, 403, "/api/v1/reviews/queue");

    // Bad parameters are named.
    for (q, field) in [("kind=late", "kind"), ("limit=0", "limit"), ("after=x", "after"), ("rep_id=999999", "rep_id")] {
        let res = app.get(&format!("{queue}&{q}"), Some(&w.supervisor.token)).await;
        assert_eq!((res.status, res.error_fields()), (422, vec![field.to_owned()]), "{q}: {}", res.describe());
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_bulk_decision_by_filter_reviews_each_item_as_one_decision_would(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let s = seed(&pool, &app, &w).await;
    let (from, to) = (s.from, s.to);
    let before = visited(&app, &w, from, to).await;
    assert_eq!(before, 0, "nothing counts at o1 yet");

    // Managers and reps may not decide; the body is read only after that.
    let body = json!({"decision": "accepted", "reason": "photos checked",
                      "filter": {"kind": "suspect,unverified", "territory_id": w.t1, "from": from, "to": to}});
    assert_problem(&app.post("/api/v1/reviews/bulk", Some(&w.manager.token), &body).await, 403, "/api/v1/reviews/bulk");
    assert_problem(
        &app.post("/api/v1/reviews/bulk", Some(&w.rep.token), &json!([])).await,
        403,
        "/api/v1/reviews/bulk",
    );

    let res = app.post("/api/v1/reviews/bulk", Some(&w.supervisor.token), &body).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let decided: Vec<i64> =
        res.json["decided"].as_array().expect("decided").iter().filter_map(|d| d["id"].as_i64()).collect();
    assert_eq!(decided, [s.suspect, s.unverified], "{}", res.text);
    assert_eq!((res.json["refused"].clone(), res.json["remaining"].clone()), (json!([]), json!(0)), "{}", res.text);

    // The visits are reviewed (the one definition: `visits.review`), counted, out of the queue,
    // and their history names the reviewer; the coverage figure moves.
    let reviews: Vec<(i64, Option<String>, bool)> =
        sqlx::query_as("SELECT id, review, counted FROM visits WHERE id = ANY($1) ORDER BY arrival")
            .bind([s.suspect, s.unverified])
            .fetch_all(&pool)
            .await
            .expect("visits");
    assert_eq!(reviews, [(s.suspect, Some("accepted".into()), true), (s.unverified, Some("accepted".into()), true)]);
    assert_eq!(visited(&app, &w, from, to).await, 1, "o1 visited now");
    let history = app.get(&format!("/api/v1/visits/{}/reviews", s.suspect), Some(&w.manager.token)).await;
    assert_eq!(history.status, 200, "{}", history.describe());
    let h = &history.json[0];
    assert_eq!(
        (h["decision"].as_str(), h["reason"].as_str(), h["reviewer_name"].as_str()),
        (Some("accepted"), Some("photos checked"), Some("supervisor")),
        "{h}"
    );
    assert!(h["created_at"].is_string(), "{h}");
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'visit.review' AND object_id = ANY($1)")
            .bind([s.suspect.to_string(), s.unverified.to_string()])
            .fetch_one(&pool)
            .await
            .expect("audit");
    assert_eq!(audited, 2, "each decision audited as a single one");
    let queue = format!("/api/v1/reviews/queue?from={from}&to={to}");
    let left = listed(&app.get(&queue, Some(&w.supervisor.token)).await);
    assert_eq!(left, [("disputed".to_owned(), s.disputed), ("claim".to_owned(), s.claim)]);

    // By items: the dispute is answered and the claim rejected; T2's visit and an unknown one are
    // refused with the single decision's reason; nothing else changes.
    let body = json!({"decision": "rejected", "reason": "not at the outlet", "items": [
        {"kind": "disputed", "id": s.disputed}, {"kind": "claim", "id": s.claim},
        {"kind": "suspect", "id": s.other_territory}, {"kind": "suspect", "id": 99_999_999}]});
    let res = app.post("/api/v1/reviews/bulk", Some(&w.supervisor.token), &body).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(
        res.json["decided"],
        json!([{"kind": "disputed", "id": s.disputed}, {"kind": "claim", "id": s.claim}]),
        "{}",
        res.text
    );
    let refused: Vec<(i64, &str)> = res.json["refused"]
        .as_array()
        .expect("refused")
        .iter()
        .map(|r| (r["id"].as_i64().unwrap_or_default(), r["refusal"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(refused, [(s.other_territory, "forbidden"), (99_999_999, "not_found")], "{}", res.text);
    assert_eq!(app.get(&queue, Some(&w.supervisor.token)).await.json["total"], 0);
    let claim_state: Option<String> = sqlx::query_scalar("SELECT claim_decision FROM checkins WHERE id = $1")
        .bind(s.claim)
        .fetch_one(&pool)
        .await
        .expect("claim");
    assert_eq!(claim_state.as_deref(), Some("rejected"));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_bad_bulk_body_is_a_422_naming_the_field(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let path = "/api/v1/reviews/bulk";
    let token = Some(w.supervisor.token.as_str());
    let item = json!({"kind": "suspect", "id": 1});
    let many: Vec<Value> = (1..=501).map(|i| json!({"kind": "claim", "id": i})).collect();
    let cases = [
        (json!({"decision": "maybe", "reason": "x", "items": [item]}), vec!["decision"]),
        (json!({"decision": "accepted", "reason": "  ", "items": [item]}), vec!["reason"]),
        (json!({"decision": "accepted", "reason": "x", "items": []}), vec!["items"]),
        (json!({"decision": "accepted", "reason": "x", "items": many}), vec!["items"]),
        (json!({"decision": "accepted", "reason": "x", "items": [{"kind": "claim", "id": 0}]}), vec!["items.id"]),
        (json!({"decision": "accepted", "reason": "x"}), vec!["items"]),
        (json!({"decision": "accepted", "reason": "x", "items": [item], "filter": {}}), vec!["items"]),
        (
            json!({"decision": "accepted", "reason": "x", "items": [item, {"kind": "late", "id": 2}]}),
            vec!["items.kind"],
        ),
        (json!({"decision": "accepted", "reason": "x", "filter": {"kind": "late"}}), vec!["filter.kind"]),
        (json!({"decision": "accepted", "reason": "x", "filter": {"rep_id": 99_999_999}}), vec!["filter.rep_id"]),
    ];
    for (body, fields) in cases {
        let res = app.post(path, token, &body).await;
        assert_problem(&res, 422, path);
        assert_eq!(res.error_fields(), fields, "{body}: {}", res.describe());
    }
    let res = app.post(path, token, &json!({"decision": "accepted", "reason": "x", "items": [item], "extra": 1})).await;
    assert_problem(&res, 422, path);
    let res =
        app.post(path, token, &json!({"decision": "accepted", "reason": "x".repeat(50_000), "items": [item]})).await;
    assert_eq!(res.status, 413, "a bulk body is small: {}", res.describe());
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'visit.review'")
        .fetch_one(&pool)
        .await
        .expect("audit");
    assert_eq!(audited, 0, "nothing decided");
}
