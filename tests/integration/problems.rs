//! Every error is an RFC 9457 problem: `application/problem+json` with type, title, status, detail,
//! instance and `request_id`, and the `x-request-id` header equals `request_id`. Covers the errors the
//! handlers raise and the ones axum/tower raise on their own (404, 405, 413, 415, rejections).

use crate::common;

use common::{BODY_LIMIT, IN_T1, Res, TestApp, World, assert_problem};
use reqwest::Method;
use serde_json::{Value, json};

fn outlet_body() -> Value {
    json!({"code": "P-1", "name": "Problem hall", "channel_type": "business_hall", "tier": "A", "lat": IN_T1.0, "lon": IN_T1.1})
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    token: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Res {
    let mut rb = app.request(Method::POST, path, Some(token)).body(body);
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    app.send(rb).await
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn malformed_json_is_400(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = "/api/v1/outlets";
    let res = post_raw(&app, path, &w.admin.token, Some("application/json"), r#"{"code": "P-1", "name": "#).await;
    assert_problem(&res, 400, path);
    let res = post_raw(&app, path, &w.admin.token, Some("application/json"), "not json at all").await;
    assert_problem(&res, 400, path);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn wrong_or_missing_content_type_is_415(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = "/api/v1/outlets";
    let body = outlet_body().to_string();
    let res = post_raw(&app, path, &w.admin.token, Some("text/plain"), body.clone()).await;
    assert_problem(&res, 415, path);
    let res = post_raw(&app, path, &w.admin.token, Some("application/x-www-form-urlencoded"), "code=P-1").await;
    assert_problem(&res, 415, path);
    let res = post_raw(&app, path, &w.admin.token, None, body).await;
    assert_problem(&res, 415, path);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn missing_required_field_is_422_naming_the_field(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = "/api/v1/outlets";
    for field in ["code", "name", "channel_type", "tier", "lat", "lon"] {
        let mut body = outlet_body();
        body.as_object_mut().expect("object").remove(field);
        let res = app.post(path, Some(&w.admin.token), &body).await;
        assert_problem(&res, 422, path);
        assert_eq!(res.error_fields(), [field], "missing `{field}`: {}", res.describe());
    }
    // A field the body type itself requires (serde): the problem still names it.
    let path = "/api/v1/territories";
    let res = app.post(path, Some(&w.admin.token), &json!({"name": "No code", "level": "grid"})).await;
    assert_problem(&res, 422, path);
    assert!(res.json["detail"].as_str().is_some_and(|d| d.contains("code")), "detail names `code`: {}", res.describe());
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn body_over_the_limit_is_413_and_writes_nothing(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let before = common::row_counts(&pool).await;
    let path = "/api/v1/outlets";
    // The outlet routes' own limit (docs/api.md, "Body limits"), below the global one.
    let limit = 64 * 1024;
    assert!(limit < BODY_LIMIT);
    let mut body = outlet_body();
    body["address"] = json!("x".repeat(limit + 1024));
    let res = post_raw(&app, path, &w.admin.token, Some("application/json"), body.to_string()).await;
    assert_problem(&res, 413, path);
    assert_eq!(common::row_counts(&pool).await, before);
    // Just under the limit is fine (the limit is not off by a large factor).
    let mut body = outlet_body();
    body["address"] = json!("x".repeat(limit - 4096));
    let res = post_raw(&app, path, &w.admin.token, Some("application/json"), body.to_string()).await;
    assert_eq!(res.status, 201, "{}", res.describe());
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn unknown_route_is_404(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    for path in ["/api/v1/nope", "/api/v1/outlets/1/nope", "/nope", "/api/v2/outlets"] {
        assert_problem(&app.get(path, Some(&w.admin.token)).await, 404, path);
        assert_problem(&app.get(path, None).await, 404, path);
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn wrong_method_is_405_with_allow(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    for (method, path) in [
        (Method::DELETE, "/api/v1/outlets"),
        (Method::PUT, "/api/v1/outlets"),
        (Method::POST, "/api/v1/me"),
        (Method::DELETE, "/api/v1/tier-policies"),
        (Method::POST, "/healthz"),
    ] {
        let res = app.send(app.request(method.clone(), path, Some(&w.admin.token))).await;
        assert_problem(&res, 405, path);
        assert!(
            res.header("allow").is_some_and(|a| a.contains("GET")),
            "{method} {path}: Allow header: {:?}",
            res.headers
        );
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn non_numeric_path_id_is_400(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    for path in ["/api/v1/outlets/abc", "/api/v1/territories/1.5", "/api/v1/users/x", "/api/v1/reps/me/pings"] {
        assert_problem(&app.get(path, Some(&w.admin.token)).await, 400, path);
    }
    let path = "/api/v1/outlets/abc";
    assert_problem(&app.patch(path, Some(&w.admin.token), &json!({"name": "x"})).await, 400, path);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn bad_query_is_4xx(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    for (query, status) in [
        ("limit=0", 422),
        ("limit=-1", 422),
        ("limit=1001", 422),
        ("limit=abc", 400),
        ("after=x", 400),
        ("bbox=1,2,3", 422),
        ("bbox=10,10,0,0", 422),
    ] {
        for base in ["/api/v1/outlets", "/api/v1/territories", "/api/v1/users", "/api/v1/devices", "/api/v1/audit-log"]
        {
            if query.starts_with("bbox") && base != "/api/v1/outlets" {
                continue;
            }
            let res = app.get(&format!("{base}?{query}"), Some(&w.admin.token)).await;
            assert_problem(&res, status, base);
            if status == 422 {
                let field = query.split('=').next().expect("name");
                assert_eq!(res.error_fields(), [field], "{base}?{query}: {}", res.describe());
            }
        }
    }
    let path = format!("/api/v1/reps/{}/pings", w.rep.id);
    for query in ["date=yesterday", "from=2024-05-01T00:00:00Z", "from=2024-05-02T00:00:00Z&to=2024-05-01T00:00:00Z"] {
        let res = app.get(&format!("{path}?{query}"), Some(&w.admin.token)).await;
        assert!((400..500).contains(&res.status), "{path}?{query}: {}", res.describe());
        assert_problem(&res, res.status, &path);
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn unknown_body_field_is_422_naming_it(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let before = common::row_counts(&pool).await;
    let mut outlet = outlet_body();
    outlet["colour"] = json!("red");
    let territory = json!({"code": "G", "name": "G", "level": "grid", "colour": "red"});
    let user = json!({"login": "u", "name": "U", "role": "rep", "colour": "red"});
    let device = json!({"rep_id": w.rep.id, "name": "phone", "colour": "red"});
    let tier =
        json!({"required_visits": 1, "cycle_days": 7, "min_dwell_s": 60, "default_radius_m": 50, "colour": "red"});
    for (method, path, body) in [
        (Method::POST, "/api/v1/outlets".to_owned(), outlet),
        (Method::PATCH, format!("/api/v1/outlets/{}", w.o1), json!({"colour": "red"})),
        (Method::POST, "/api/v1/territories".to_owned(), territory),
        (Method::POST, "/api/v1/users".to_owned(), user),
        (Method::POST, "/api/v1/devices".to_owned(), device),
        (Method::PUT, "/api/v1/tier-policies/A".to_owned(), tier),
    ] {
        let res = app.call(method.clone(), &path, Some(&w.admin.token), Some(&body)).await;
        assert_problem(&res, 422, &path);
        assert!(
            res.json["detail"].as_str().is_some_and(|d| d.contains("colour")),
            "{method} {path}: detail names the unknown field: {}",
            res.describe()
        );
    }
    assert_eq!(common::row_counts(&pool).await, before, "rejected bodies must write nothing");
}

/// `curl http://host/api/v1/outlets` without a token: 401 problem+json with `WWW-Authenticate: Bearer`.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn no_token_is_401_problem_json(pool: sqlx::PgPool) {
    let app = TestApp::spawn(pool).await;
    let path = "/api/v1/outlets";
    // Exactly what curl sends.
    let res = app.send(app.client.get(app.url(path)).header("user-agent", "curl/8.5.0").header("accept", "*/*")).await;
    assert_problem(&res, 401, path);
    assert_eq!(res.content_type(), "application/problem+json");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    assert_eq!(res.json["type"].as_str().map(str::is_empty), Some(false));
}

/// Every request gets our own id (a client-chosen one never replaces it: issue 25, item 10);
/// success responses carry one as well.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn request_ids_are_propagated(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = "/api/v1/outlets/999999";
    let res =
        app.send(app.request(Method::GET, path, Some(&w.admin.token)).header("x-request-id", "client-req-42")).await;
    assert_problem(&res, 404, path);
    assert_ne!(res.json["request_id"], "client-req-42", "the client does not choose our id");

    let ok = app.get("/api/v1/outlets", Some(&w.admin.token)).await;
    assert_eq!(ok.status, 200);
    let a = ok.header("x-request-id").expect("x-request-id on a success").to_owned();
    let b = app.get("/api/v1/outlets", Some(&w.admin.token)).await.header("x-request-id").map(str::to_owned);
    assert_ne!(Some(a), b, "every request gets its own id");
}

/// Problems of different kinds are told apart by `type` and carry the canonical `title`.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn problem_types_and_titles_follow_the_status(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let cases = [
        (app.get("/api/v1/outlets", None).await, 401, "Unauthorized"),
        (app.get("/api/v1/audit-log", Some(&w.manager.token)).await, 403, "Forbidden"),
        (app.get("/api/v1/outlets/999999", Some(&w.admin.token)).await, 404, "Not Found"),
        (app.get("/api/v1/outlets?limit=0", Some(&w.admin.token)).await, 422, "Unprocessable Entity"),
    ];
    let mut types = std::collections::BTreeSet::new();
    for (res, status, title) in &cases {
        assert_eq!(res.status, *status, "{}", res.describe());
        assert_eq!(res.json["title"], *title, "{}", res.describe());
        types.insert(res.json["type"].as_str().expect("type").to_owned());
    }
    assert_eq!(types.len(), cases.len(), "one problem type per kind: {types:?}");
}

/// A problem body as a client that accepts gzip and brotli reads it: decoded as its
/// `content-encoding` says (reqwest here decodes nothing), then parsed.
async fn read_as_a_browser(app: &TestApp, path: &str, token: &str) -> (u16, Option<String>, Value) {
    let res = app
        .request(Method::GET, path, Some(token))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let encoding = res.headers().get("content-encoding").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let raw = res.bytes().await.expect("body");
    let plain = match encoding.as_deref() {
        None | Some("identity") => raw.to_vec(),
        Some("gzip") => {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap_or_else(|e| {
                panic!("{path}: labelled gzip but not gzip ({e}): {}", String::from_utf8_lossy(&raw))
            });
            out
        }
        Some(other) => panic!("{path}: a problem body should not be {other}-encoded"),
    };
    let json = serde_json::from_slice(&plain)
        .unwrap_or_else(|e| panic!("{path}: the body is not JSON ({e}): {}", String::from_utf8_lossy(&plain)));
    (status, encoding, json)
}

/// Issue 25, item 4: the layer routes compress their answers; an error answer is rebuilt as a
/// problem, and its `content-encoding` must describe the body actually sent, on every route.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn error_bodies_are_readable_by_a_client_that_accepts_gzip(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let bad = "bbox=1,2,x&limit=-1&date=never";
    let paths = [
        format!("/api/v1/layers/outlets?{bad}"),
        format!("/api/v1/layers/coverage?{bad}"),
        format!("/api/v1/layers/territories?{bad}"),
        format!("/api/v1/layers/visits?{bad}"),
        format!("/api/v1/layers/tracks?{bad}"),
        format!("/api/v1/layers/routes?{bad}"),
        "/api/v1/tiles/outlets/3/0/0?from=never".to_owned(),
        "/api/v1/outlets?limit=abc".to_owned(),
        "/api/v1/outlets/999999".to_owned(),
        "/api/v1/no-such-route".to_owned(),
    ];
    for path in &paths {
        let (status, encoding, json) = read_as_a_browser(&app, path, &w.admin.token).await;
        assert!((400..500).contains(&status), "{path}: {status} {json}");
        assert_eq!(json["status"], status, "{path}: {encoding:?} {json}");
        assert!(json["detail"].as_str().is_some_and(|d| d != "error"), "{path}: the detail is kept: {json}");
    }
    // A successful layer answer is still compressed.
    let ok = app
        .request(Method::GET, "/api/v1/layers/outlets", Some(&w.admin.token))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status().as_u16(), 200);
    assert_eq!(ok.headers().get("content-encoding").and_then(|v| v.to_str().ok()), Some("gzip"));
}

/// Issue 25, item 14: a batch of 10,000 bad pings names far more than 1 MiB of field errors. The
/// problem lists the first ones, says how many it left out, and keeps its detail (it used to
/// come back as `"detail": "error"` with no errors at all).
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_huge_list_of_field_errors_is_capped_and_counted(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let mut config = common::test_config("unused");
    config.body_limit_bytes = 32 * 1024 * 1024;
    let app = TestApp::spawn_with(pool, config).await;
    let now = chrono::Utc::now().to_rfc3339();
    // One error per item (an unknown field), each with a long reason listing the known fields.
    let items: Vec<Value> =
        (0..10_000).map(|_| json!({"fix_time": now, "lat": 39.9, "lon": 116.4, "colour": "red"})).collect();
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!(items)).await;
    assert_problem(&res, 422, "/api/v1/pings");
    let detail = res.json["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("10000") || detail.contains("10,000"), "the detail counts the items: {}", res.describe());
    let listed = res.json["errors"].as_array().map_or(0, Vec::len);
    let omitted = res.json["errors_omitted"].as_u64().unwrap_or(0);
    assert!((1..=1_000).contains(&listed), "the first errors are listed: {listed}");
    assert!(omitted > 0, "the problem says errors were left out: {}", &res.text[..300.min(res.text.len())]);
    assert_eq!(listed as u64 + omitted, 10_000, "one error per item, listed or counted");
    assert!(res.text.len() < 1 << 20, "{} bytes", res.text.len());
}

/// Issue 25, item 15: stored free text holds no control characters (they hide text in terminals
/// and break CSV cells): 422 naming the field. Multi-line text (an address) keeps TAB, LF, CR.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn control_characters_in_stored_text_are_422_naming_the_field(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let token = Some(w.admin.token.as_str());
    for (i, bad) in ["Hall\u{0}", "\u{1b}[31mHall", "Hall\u{7f}", "Hall\u{85}", "Hall\tone"].iter().enumerate() {
        let mut body = outlet_body();
        body["code"] = json!(format!("CC-{i}"));
        body["name"] = json!(bad);
        let res = app.post("/api/v1/outlets", token, &body).await;
        assert_problem(&res, 422, "/api/v1/outlets");
        assert_eq!(res.error_fields(), ["name"], "{bad:?}: {}", res.describe());
    }
    let mut body = outlet_body();
    body["address"] = json!("1 Main St\u{7}");
    let res = app.post("/api/v1/outlets", token, &body).await;
    assert_eq!(res.error_fields(), ["address"], "{}", res.describe());
    body["address"] = json!("1 Main St\r\nBuilding 2\tGate 3");
    let res = app.post("/api/v1/outlets", token, &body).await;
    assert_eq!(res.status, 201, "an address may span lines: {}", res.describe());
    let res =
        app.post("/api/v1/territories", token, &json!({"code": "CC", "name": "Zone\u{1}", "level": "grid"})).await;
    assert_eq!(res.error_fields(), ["name"], "{}", res.describe());
    let res = app.post("/api/v1/users", token, &json!({"login": "cc", "name": "Eve\u{9b}", "role": "rep"})).await;
    assert_eq!(res.error_fields(), ["name"], "{}", res.describe());
}
