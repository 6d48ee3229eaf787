//! Constraint violations are answered 409/422 naming the offending field, never 500, and a rejected
//! request writes nothing. Plus direct SQL: the schema itself refuses impossible data.

use crate::common;

use common::{IN_T1, Res, TestApp, World, assert_problem, row_counts, square};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

fn outlet(code: &str) -> Value {
    json!({"code": code, "name": "Hall", "channel_type": "business_hall", "tier": "A",
           "lat": IN_T1.0, "lon": IN_T1.1, "radius_m": 60})
}

fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

/// Sends a request that must be rejected with `status` naming `field`, and checks that no row of
/// any table changed.
async fn rejected(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: &Value,
    status: u16,
    field: &str,
) -> Res {
    let before = row_counts(&app.pool).await;
    let res = app.call(method.clone(), path, Some(token), Some(body)).await;
    assert_problem(&res, status, path);
    assert_eq!(
        res.error_fields().first().map(String::as_str),
        Some(field),
        "{method} {path} {body}: errors[0].field: {}",
        res.describe()
    );
    assert_eq!(row_counts(&app.pool).await, before, "{method} {path} {body}: a rejected request wrote rows");
    res
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn duplicate_outlet_code_is_409_code(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let res = app.post("/api/v1/outlets", Some(&w.admin.token), &outlet("DUP-1")).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    rejected(&app, &w.admin.token, Method::POST, "/api/v1/outlets", &outlet("DUP-1"), 409, "code").await;
    // The seeded O1 code, too; and renaming another outlet onto an existing code.
    rejected(&app, &w.admin.token, Method::POST, "/api/v1/outlets", &outlet("O1"), 409, "code").await;
    let path = format!("/api/v1/outlets/{}", w.o2);
    rejected(&app, &w.admin.token, Method::PATCH, &path, &json!({"code": "O1"}), 409, "code").await;
    // Codes are unique per org only: org B may use O1.
    let res = app.post("/api/v1/outlets", Some(&w.admin_b.token), &with(outlet("O1"), "lat", json!(31.25))).await;
    assert_eq!(res.status, 201, "same code in another org: {}", res.describe());
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn outlet_field_values_are_422_with_the_field(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let t = &w.admin.token;
    let p = "/api/v1/outlets";
    for (field, value, named) in [
        ("radius_m", json!(0), "radius_m"),
        ("radius_m", json!(-5), "radius_m"),
        ("radius_m", json!(5001), "radius_m"),
        ("tier", json!("PLATINUM"), "tier"),
        ("tier", json!("ZB"), "tier"), // org B's tier is not org A's
        ("channel_type", json!("kiosk"), "channel_type"),
        ("status", json!("open"), "status"),
        ("lat", json!(91), "lat"),
        ("lat", json!(-90.5), "lat"),
        ("lon", json!(200), "lon"),
        ("lon", json!(-180.01), "lon"),
        ("code", json!("  "), "code"),
        ("code", json!("x".repeat(65)), "code"),
        ("name", json!(""), "name"),
        ("attributes", json!([1, 2]), "attributes"),
        ("territory_id", json!(w.tb), "territory_id"),
        ("territory_id", json!(987_654), "territory_id"),
    ] {
        let body = with(outlet("BAD-1"), field, value.clone());
        let res = rejected(&app, t, Method::POST, p, &body, 422, named).await;
        assert!(!res.text.contains("bsecret"), "{field}={value}: {}", res.describe());
        let path = format!("/api/v1/outlets/{}", w.o1);
        rejected(&app, t, Method::PATCH, &path, &json!({ field: value }), 422, named).await;
    }
    // (0, 0) is not a real position.
    let body = with(with(outlet("BAD-2"), "lat", json!(0)), "lon", json!(0));
    rejected(&app, t, Method::POST, p, &body, 422, "lat").await;
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn duplicate_login_is_409_login(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let body = json!({"login": "manager", "name": "Another", "role": "rep", "territory_id": w.t1});
    rejected(&app, &w.admin.token, Method::POST, "/api/v1/users", &body, 409, "login").await;
    // Unique per org: org B may have a `manager` too.
    let res = app
        .post("/api/v1/users", Some(&w.admin_b.token), &json!({"login": "manager", "name": "B", "role": "rep"}))
        .await;
    assert_eq!(res.status, 201, "{}", res.describe());
    // Other user fields.
    for (body, field) in [
        (json!({"login": "bad login!", "name": "X", "role": "rep"}), "login"),
        (json!({"login": "ok", "name": "X", "role": "root"}), "role"),
        (json!({"login": "ok", "name": " ", "role": "rep"}), "name"),
        (json!({"login": "ok", "name": "X", "role": "rep", "territory_id": w.tb}), "territory_id"),
    ] {
        rejected(&app, &w.admin.token, Method::POST, "/api/v1/users", &body, 422, field).await;
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn invalid_territory_boundary_is_422_boundary(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let bow_tie = json!({"type": "Polygon", "coordinates": [[[116.0, 39.9], [116.1, 40.0], [116.1, 39.9], [116.0, 40.0], [116.0, 39.9]]]});
    let unclosed =
        json!({"type": "Polygon", "coordinates": [[[116.0, 39.9], [116.1, 39.9], [116.1, 40.0], [116.0, 40.0]]]});
    let point = json!({"type": "Point", "coordinates": [116.0, 39.9]});
    let line = json!({"type": "LineString", "coordinates": [[116.0, 39.9], [116.1, 40.0]]});
    let garbage = json!({"hello": "world"});
    let not_object = json!("POLYGON((0 0, 1 0, 1 1, 0 0))");
    for (name, boundary) in [
        ("bow-tie", bow_tie),
        ("unclosed ring", unclosed),
        ("point", point),
        ("line", line),
        ("no geometry", garbage),
        ("string", not_object),
    ] {
        let body = json!({"parent_id": w.t1, "code": "G1", "name": "Grid", "level": "grid", "boundary": boundary});
        let res = rejected(&app, &w.admin.token, Method::POST, "/api/v1/territories", &body, 422, "boundary").await;
        assert!(!res.json["detail"].as_str().unwrap_or_default().is_empty(), "{name}: {}", res.describe());
    }
    // A valid one passes, and territory codes are unique per org.
    let body = json!({"parent_id": w.t1, "code": "G1", "name": "Grid", "level": "grid",
                      "boundary": square(116.0, 39.9, 116.05, 39.95)});
    let res = app.post("/api/v1/territories", Some(&w.admin.token), &body).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    assert_eq!(res.json["path"], json!([w.root, w.t1, res.json["id"]]));
    rejected(&app, &w.admin.token, Method::POST, "/api/v1/territories", &body, 409, "code").await;
    let body = json!({"code": "G2", "name": "Grid", "level": "village"});
    rejected(&app, &w.admin.token, Method::POST, "/api/v1/territories", &body, 422, "level").await;
    let body = json!({"parent_id": w.tb, "code": "G3", "name": "Grid", "level": "grid"});
    rejected(&app, &w.admin.token, Method::POST, "/api/v1/territories", &body, 422, "parent_id").await;
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn tier_policy_ranges_are_422_with_the_field(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let ok = json!({"required_visits": 2, "cycle_days": 14, "min_dwell_s": 300, "default_radius_m": 100});
    for (field, value) in [
        ("cycle_days", json!(0)),
        ("cycle_days", json!(367)),
        ("required_visits", json!(0)),
        ("min_dwell_s", json!(-1)),
        ("min_dwell_s", json!(86_401)),
        ("default_radius_m", json!(0)),
        ("default_radius_m", json!(5001)),
    ] {
        for tier in ["A", "NEWTIER"] {
            let path = format!("/api/v1/tier-policies/{tier}");
            rejected(&app, &w.admin.token, Method::PUT, &path, &with(ok.clone(), field, value.clone()), 422, field)
                .await;
        }
    }
    let path = "/api/v1/tier-policies/bad%20tier";
    rejected(&app, &w.admin.token, Method::PUT, path, &ok, 422, "tier").await;
    let res = app.put("/api/v1/tier-policies/NEWTIER", Some(&w.admin.token), &ok).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["cycle_days"], 14);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn device_for_a_non_rep_is_422_rep_id(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    for non_rep in [w.manager.id, w.admin.id, w.auditor.id] {
        let body = json!({"rep_id": non_rep, "name": "phone"});
        rejected(&app, &w.admin.token, Method::POST, "/api/v1/devices", &body, 422, "rep_id").await;
    }
    for missing in [w.rep_b.id, 987_654] {
        let body = json!({"rep_id": missing, "name": "phone"});
        rejected(&app, &w.admin.token, Method::POST, "/api/v1/devices", &body, 422, "rep_id").await;
    }
    let body = json!({"rep_id": w.rep.id, "name": "  "});
    rejected(&app, &w.admin.token, Method::POST, "/api/v1/devices", &body, 422, "name").await;
    let res =
        app.post("/api/v1/devices", Some(&w.admin.token), &json!({"rep_id": w.rep.id, "name": "second phone"})).await;
    assert_eq!(res.status, 201, "{}", res.describe());
}

/// Asserts that `sql` fails with a check violation of `constraint`.
async fn check_violation(pool: &PgPool, sql: &str, constraint: &str) {
    match sqlx::query(sql).execute(pool).await {
        Ok(done) => {
            panic!("{sql}: accepted ({} rows); expected a check violation of {constraint}", done.rows_affected())
        }
        Err(sqlx::Error::Database(e)) => {
            assert_eq!(e.code().as_deref(), Some("23514"), "{sql}: {e}");
            assert_eq!(e.constraint(), Some(constraint), "{sql}: {e}");
        }
        Err(e) => panic!("{sql}: unexpected error {e}"),
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn schema_rejects_impossible_data(pool: PgPool) {
    let w = World::seed(&pool).await;
    let (org, dev, rep, o1) = (w.org_a, w.device.id, w.rep.id, w.o1);
    sqlx::query("SELECT ensure_ping_partition('2024-06-01')").execute(&pool).await.expect("partition");
    let ping = |lat: f64, lon: f64| {
        format!(
            "INSERT INTO pings (org_id, device_id, fix_time, lat, lon, source)
             VALUES ({org}, {dev}, '2024-06-01T10:00:00Z', {lat}, {lon}, 'native')"
        )
    };
    check_violation(&pool, &ping(91.0, 116.0), "pings_lat_range").await;
    check_violation(&pool, &ping(-91.0, 116.0), "pings_lat_range").await;
    check_violation(&pool, &ping(39.9, 181.0), "pings_lon_range").await;
    check_violation(&pool, &ping(0.0, 0.0), "pings_not_null_island").await;
    sqlx::query(&ping(39.9, 116.0)).execute(&pool).await.expect("a sane ping is accepted");

    let visit = |arrival: &str, departure: &str| {
        format!(
            "INSERT INTO visits (org_id, rep_id, device_id, outlet_id, rep_day, arrival, departure, dwell_s, verdict,
                                 ping_count, rule_version)
             VALUES ({org}, {rep}, {dev}, {o1}, '2024-06-01', '{arrival}', '{departure}', 0, 'verified', 3, 'test')"
        )
    };
    check_violation(&pool, &visit("2024-06-01T10:00:00Z", "2024-06-01T09:59:59Z"), "visits_departure_after_arrival")
        .await;
    sqlx::query(&visit("2024-06-01T10:00:00Z", "2024-06-01T10:10:00Z")).execute(&pool).await.expect("a sane visit");

    for radius in ["0", "-5", "5000.5"] {
        check_violation(
            &pool,
            &format!(
                "INSERT INTO outlets (org_id, code, name, channel_type, tier, location, radius_m)
                 VALUES ({org}, 'SQL-{radius}', 'x', 'other', 'A', ST_SetSRID(ST_MakePoint(116.05, 39.95), 4326), {radius})"
            ),
            "outlets_radius_range",
        )
        .await;
    }
    check_violation(
        &pool,
        &format!("UPDATE outlets SET radius_m = 0 WHERE org_id = {org} AND id = {o1}"),
        "outlets_radius_range",
    )
    .await;
    check_violation(
        &pool,
        &format!(
            "UPDATE outlets SET location = ST_SetSRID(ST_MakePoint(0, 0), 4326) WHERE org_id = {org} AND id = {o1}"
        ),
        "outlets_location_range",
    )
    .await;
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn audit_log_is_append_only(pool: PgPool) {
    World::seed(&pool).await;
    for sql in ["UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log"] {
        let err = sqlx::query(sql).execute(&pool).await.expect_err("audit_log must refuse changes");
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

/// Tenancy is in the keys: a row of org A cannot point at a row of org B.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn cross_org_references_are_refused_by_the_schema(pool: PgPool) {
    let w = World::seed(&pool).await;
    for sql in [
        format!("UPDATE outlets SET territory_id = {} WHERE org_id = {} AND id = {}", w.tb, w.org_a, w.o1),
        format!("UPDATE users SET territory_id = {} WHERE org_id = {} AND id = {}", w.tb, w.org_a, w.rep.id),
        format!("UPDATE devices SET rep_id = {} WHERE org_id = {} AND id = {}", w.rep_b.id, w.org_a, w.device.id),
    ] {
        match sqlx::query(&sql).execute(&pool).await {
            Err(sqlx::Error::Database(e)) => assert_eq!(e.code().as_deref(), Some("23503"), "{sql}: {e}"),
            other => panic!("{sql}: expected a foreign key violation, got {other:?}"),
        }
    }
}
