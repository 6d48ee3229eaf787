//! The server takes what its OpenAPI document says it takes (issue 25, "an OpenAPI that tells
//! the truth"): the requests Schemathesis found refused although the schema allows them, and
//! the one it found accepted although the schema refuses it.

use crate::common::{TestApp, World, assert_problem};
use serde_json::json;

/// JSON Schema calls `2.0` an integer: an integer field written with a zero fraction is read.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn integer_fields_take_integral_floats(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let body = json!({"required_visits": 2.0, "cycle_days": 28.0, "min_dwell_s": 60.0, "default_radius_m": 80});
    let res = app.put("/api/v1/tier-policies/ZA", Some(&w.admin.token), &body).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["cycle_days"], 28, "{}", res.describe());
    // A fraction is still refused.
    let body = json!({"required_visits": 2.5, "cycle_days": 28, "min_dwell_s": 60, "default_radius_m": 80});
    let res = app.put("/api/v1/tier-policies/ZA", Some(&w.admin.token), &body).await;
    assert_problem(&res, 422, "/api/v1/tier-policies/ZA");
}

/// A status change's body is optional, and `null` (which its schema allows) is no reason.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn status_change_takes_a_null_body(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    for action in ["suspend", "reopen"] {
        let path = format!("/api/v1/outlets/{}/{action}", w.o1);
        let res = app.post(&path, Some(&w.admin.token), &json!(null)).await;
        assert_eq!(res.status, 200, "{action}: {}", res.describe());
    }
}

/// `bytes` is an int64 in the schema: a length beyond it is refused, not taken.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn verify_refuses_a_length_beyond_int64(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let sha = "0".repeat(64);
    let path = "/api/v1/exports/verify";
    let verify = |bytes: &str| {
        app.send(app.request(
            reqwest::Method::POST,
            &format!("{path}?sha256={sha}&bytes={bytes}"),
            Some(&w.admin.token),
        ))
    };
    assert_problem(&verify("9223372036854775808").await, 422, path);
    let res = verify("9223372036854775807").await;
    assert_eq!(res.status, 200, "{}", res.describe());
}

/// A review body allows no other members (`additionalProperties: false`, as every request body
/// of the API): an unknown one is a 422 naming it, not silently dropped.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_review_with_an_unknown_member_is_refused(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = "/api/v1/visits/1/reviews";
    let body = json!({"decision": "accepted", "reason": "seen on the photo", "score": 5});
    let res = app.post(path, Some(&w.supervisor.token), &body).await;
    assert_problem(&res, 422, path);
    assert!(res.text.contains("score"), "{}", res.describe());
    let doc = app.get("/openapi.json", None).await;
    assert_eq!(doc.json["components"]["schemas"]["ReviewRequest"]["additionalProperties"], false);
}

/// A request body is an object, as every body schema says: serde alone would read a struct of
/// optional fields from an array by position, so `[]` created an enrolment (Schemathesis ST201).
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_body_that_is_not_an_object_is_refused(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let enrol = format!("/api/v1/devices/{}/enrolments", w.device.id);
    let outlet = format!("/api/v1/outlets/{}", w.o1);
    for (method, path, body) in [
        (reqwest::Method::POST, enrol.as_str(), json!([])),
        (reqwest::Method::PATCH, outlet.as_str(), json!([])),
        (reqwest::Method::POST, enrol.as_str(), json!("trackers")),
        (reqwest::Method::PATCH, outlet.as_str(), json!(7)),
    ] {
        let res = app.call(method, path, Some(&w.admin.token), Some(&body)).await;
        assert_problem(&res, 422, path);
        assert_eq!(res.error_fields(), vec!["body".to_owned()], "{body}: {}", res.describe());
    }
    // An object still works.
    let res = app.call(reqwest::Method::POST, &enrol, Some(&w.admin.token), Some(&json!({}))).await;
    assert_eq!(res.status, 201, "{}", res.describe());
}

/// An export's file is served with its format's content type, and the document lists each one
/// (the at-length fuzz run found the XLSX type undocumented).
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn export_files_are_documented_with_their_content_types(pool: sqlx::PgPool) {
    let app = TestApp::spawn(pool).await;
    let doc = app.get("/openapi.json", None).await;
    let content = &doc.json["paths"]["/api/v1/exports/{id}/files/{name}"]["get"]["responses"]["200"]["content"];
    for format in fieldvisit::domain::export::ExportFormat::ALL {
        let mut schema = &content[format.content_type()]["schema"];
        assert!(!schema.is_null(), "{} missing: {content}", format.content_type());
        if let Some(name) = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
            schema = &doc.json["components"]["schemas"][name];
        }
        // A file is not an array of numbers (the 200-example fuzz run found the GeoJSON file
        // checked against `{"type": "array", "items": {"type": "integer"}}`): binary files are
        // strings of format binary, the GeoJSON file any JSON.
        assert_ne!(schema["type"], "array", "{}: {schema}", format.content_type());
        if format.content_type() != "application/geo+json" {
            assert_eq!((&schema["type"], &schema["format"]), (&json!("string"), &json!("binary")), "{schema}");
        }
    }
}
