//! Photos and checklist answers that hang on a check-in, over the real server: taken before any
//! visit is derived, they are linked to the visit derivation finds at the check-in, and stay,
//! flagged (`evidence_unlinked`), when none is found. A retry (also two copies at once) stores
//! nothing twice. A photo whose EXIF lacks GPS (browsers strip it) is judged by the app's capture
//! claim, one with EXIF GPS by its EXIF whatever the claim says; the findings say which. Only the
//! check-in's own device (or rep) adds evidence to it. The same client id for other content is a
//! 409; a retried photo is answered from the stored row, not decoded again.

use crate::common::{self, IN_T1, Res, TestApp, World, assert_problem};
use crate::photos::{heic, picture, stop, visits, with_exif};
use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sqlx::PgPool;

/// About 22 m north of the outlet O1.
pub(crate) const AT_O1: (f64, f64) = (IN_T1.0 + 0.0002, IN_T1.1);
/// About 2 km north of it.
const FAR: (f64, f64) = (IN_T1.0 + 0.018, IN_T1.1);

/// Outlet history a month back (so yesterday's fixes are judged against it), tier A's radius 50 m.
pub(crate) async fn prepare(pool: &PgPool, w: &World) {
    for table in ["outlet_locations SET valid_from = valid_from", "outlet_status_changes SET changed_at = changed_at"] {
        sqlx::query(&format!("UPDATE {table} - interval '30 days'")).execute(pool).await.expect("history");
    }
    sqlx::query("UPDATE tier_policies SET default_radius_m = 50, min_dwell_s = 300 WHERE org_id = $1 AND tier = 'A'")
        .bind(w.org_a)
        .execute(pool)
        .await
        .expect("tier A");
}

/// Checks in at O1 at `at` as `token`'s device, with client id `client_id`; returns the check-in.
pub(crate) async fn check_in(app: &TestApp, token: &str, client_id: &str, outlet_id: i64, at: DateTime<Utc>) -> Value {
    let body = json!({"outlet_id": outlet_id, "checked_in_at": at.to_rfc3339(), "lat": IN_T1.0, "lon": IN_T1.1,
                      "accuracy_m": 10.0});
    let res = app.put(&format!("/api/v1/checkins/{client_id}"), Some(token), &body).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    res.json
}

/// A checklist of the org with one yes/no item, `display_ok` (expected true).
pub(crate) async fn checklist(app: &TestApp, w: &World) -> i64 {
    let items = json!([{"key": "display_ok", "label": "Display", "type": "yes_no", "expect": true}]);
    let res = app.post("/api/v1/checklists", Some(&w.admin.token), &json!({"name": "Audit", "items": items})).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    res.json["id"].as_i64().expect("checklist id")
}

/// PUTs `bytes` as the check-in photo `path`, with the form fields `fields` besides `photo`.
pub(crate) async fn put_photo(
    app: &TestApp,
    path: &str,
    token: &str,
    bytes: Vec<u8>,
    fields: &[(&str, String)],
) -> Res {
    let part = Part::bytes(bytes).file_name("capture.jpg").mime_str("image/jpeg").expect("mime");
    let mut form = Form::new().part("photo", part);
    for (name, value) in fields {
        form = form.text((*name).to_owned(), value.clone());
    }
    common::read(app.request(Method::PUT, path, Some(token)).multipart(form).send().await.expect("PUT")).await
}

/// The app's capture claim as form fields: time and fix.
pub(crate) fn claim(at: DateTime<Utc>, (lat, lon): (f64, f64)) -> Vec<(&'static str, String)> {
    vec![
        ("captured_at", at.to_rfc3339()),
        ("lat", lat.to_string()),
        ("lon", lon.to_string()),
        ("accuracy_m", "15".into()),
    ]
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(pool).await.expect("count")
}

/// Rows of the tables evidence writes to.
async fn evidence_rows(pool: &PgPool) -> [i64; 4] {
    [
        count(pool, "photos").await,
        count(pool, "photo_blobs").await,
        count(pool, "visit_outcomes").await,
        count(pool, "audit_log").await,
    ]
}

/// The rep's check-ins of `day`, once derivation is done.
async fn checkins(app: &TestApp, pool: &PgPool, w: &World, day: chrono::NaiveDate) -> Vec<Value> {
    let _ = visits(app, pool, &w.rep.token, w.rep.id, day).await;
    let res = app.get(&format!("/api/v1/reps/{}/checkins?from={day}&to={day}", w.rep.id), Some(&w.manager.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    res.json.as_array().expect("check-ins").clone()
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn evidence_at_a_check_in_follows_the_visit_derivation_finds(pool: PgPool) {
    let w = World::seed(&pool).await;
    prepare(&pool, &w).await;
    let app = TestApp::spawn(pool.clone()).await;
    let token = w.device.token.as_str();
    let list = checklist(&app, &w).await;
    let (t0, day) = common::ten_oclock(&pool, w.org_a, 1).await;
    let checkin = check_in(&app, token, "ci-linked-0001", w.o1, t0 + Duration::minutes(2)).await;

    // Before any visit: stored on the check-in, judged against its time and outlet.
    let photo_path = "/api/v1/checkins/ci-linked-0001/photos/ph-linked-0001";
    let jpeg = with_exif(&picture(31, 90), t0 + Duration::minutes(5), AT_O1);
    let photo = put_photo(&app, photo_path, token, jpeg.clone(), &[("note", "shelf".into())]).await;
    assert_eq!(photo.status, 201, "{}", photo.describe());
    assert_eq!((&photo.json["checkin_id"], &photo.json["client_id"]), (&checkin["id"], &json!("ph-linked-0001")));
    assert_eq!((&photo.json["visit_id"], &photo.json["rep_id"]), (&Value::Null, &json!(w.rep.id)), "{}", photo.text);
    let findings = &photo.json["findings"];
    assert_eq!(
        (&findings["verdict"], &findings["time_source"], &findings["position_source"]),
        (&json!("confirms"), &json!("exif"), &json!("exif")),
        "{}",
        photo.text
    );
    assert_eq!(photo.json["capture"], Value::Null, "no claim sent: {}", photo.text);
    let answers_path = "/api/v1/checkins/ci-linked-0001/answers/an-linked-0001";
    let body = json!({"checklist_id": list, "answers": {"display_ok": false}});
    let outcome = app.put(answers_path, Some(token), &body).await;
    assert_eq!(outcome.status, 201, "{}", outcome.describe());
    assert_eq!(
        (&outcome.json["problems"], &outcome.json["visit_id"], &outcome.json["checkin_id"]),
        (&json!(["display_ok"]), &Value::Null, &checkin["id"]),
        "{}",
        outcome.text
    );

    // Retries (the answers were lost): the stored ones come back, nothing is added, not even audit.
    let before = evidence_rows(&pool).await;
    let again = put_photo(&app, photo_path, token, jpeg.clone(), &[("note", "shelf".into())]).await;
    assert_eq!((again.status, &again.json["id"]), (200, &photo.json["id"]), "{}", again.describe());
    let again = app.put(answers_path, Some(token), &body).await;
    assert_eq!((again.status, &again.json["id"]), (200, &outcome.json["id"]), "{}", again.describe());
    assert_eq!(evidence_rows(&pool).await, before);

    // The rep's pings show the visit: derivation links the evidence to it.
    let r = app.post("/api/v1/pings", Some(token), &stop(t0, IN_T1, 8.0)).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let found = visits(&app, &pool, &w.rep.token, w.rep.id, day).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let visit = &found[0];
    assert_eq!(visit["evidence"]["photos"]["photo_ids"], json!([photo.json["id"]]), "{visit}");
    assert_eq!(visit["evidence"]["photos"]["confirming"], 1, "{visit}");
    let listed = checkins(&app, &pool, &w, day).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let c = &listed[0];
    assert_eq!((&c["status"], &c["visit_id"]), (&json!("confirmed"), &visit["id"]), "{c}");
    assert_eq!(
        c["photos"],
        json!([{"id": photo.json["id"], "client_id": "ph-linked-0001", "visit_id": visit["id"], "verdict": "confirms"}])
    );
    assert_eq!(
        c["outcomes"],
        json!([{"id": outcome.json["id"], "client_id": "an-linked-0001", "visit_id": visit["id"],
                "problems": ["display_ok"]}])
    );
    assert_eq!(c["evidence_unlinked"], false, "{c}");
    let of_visit = app.get(&format!("/api/v1/visits/{}/outcomes", visit["id"]), Some(&w.rep.token)).await;
    assert_eq!(of_visit.ids(), vec![outcome.json["id"].as_i64().expect("id")], "{}", of_visit.describe());
    let photos = app.get(&format!("/api/v1/visits/{}/photos", visit["id"]), Some(&w.manager.token)).await;
    assert_eq!(photos.ids(), vec![photo.json["id"].as_i64().expect("id")], "{}", photos.describe());

    // Two copies of a new request at once: one is stored, both answer with it.
    let before = evidence_rows(&pool).await;
    let path = "/api/v1/checkins/ci-linked-0001/photos/ph-linked-0002";
    let second = with_exif(&picture(32, 90), t0 + Duration::minutes(6), AT_O1);
    let (a, b) =
        tokio::join!(put_photo(&app, path, token, second.clone(), &[]), put_photo(&app, path, token, second, &[]));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!((statuses, &a.json["id"]), ([200, 201], &b.json["id"]), "{} / {}", a.describe(), b.describe());
    let path = "/api/v1/checkins/ci-linked-0001/answers/an-linked-0002";
    let body = json!({"checklist_id": list, "answers": {"display_ok": true}});
    let (a, b) = tokio::join!(app.put(path, Some(token), &body), app.put(path, Some(token), &body));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!((statuses, &a.json["id"]), ([200, 201], &b.json["id"]), "{} / {}", a.describe(), b.describe());
    let after = evidence_rows(&pool).await;
    assert_eq!(
        (after[0] - before[0], after[1] - before[1], after[2] - before[2], after[3] - before[3]),
        (1, 2, 1, 2),
        "one photo (original and thumbnail), one outcome, one audit row each"
    );
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn evidence_no_visit_confirms_stays_flagged_and_names_its_source(pool: PgPool) {
    let w = World::seed(&pool).await;
    prepare(&pool, &w).await;
    let app = TestApp::spawn(pool.clone()).await;
    let token = w.device.token.as_str();
    let list = checklist(&app, &w).await;
    let (t0, day) = common::ten_oclock(&pool, w.org_a, 1).await;
    let checkin = check_in(&app, token, "ci-alone-0001", w.o1, t0).await;
    let base = "/api/v1/checkins/ci-alone-0001";

    // No GPS in the file (a browser stripped it): the app's capture claim is judged.
    let path = format!("{base}/photos/ph-app-0001");
    let r = put_photo(&app, &path, token, picture(41, 90), &claim(t0 + Duration::minutes(3), AT_O1)).await;
    assert_eq!(r.status, 201, "{}", r.describe());
    let f = &r.json["findings"];
    assert_eq!(
        (&f["position_source"], &f["time_source"], &f["verdict"]),
        (&json!("app"), &json!("app"), &json!("confirms"))
    );
    assert!(f["distance_m"].as_f64().is_some_and(|d| (15.0..30.0).contains(&d)), "{}", r.text);
    assert_eq!((&r.json["exif_lat"], &r.json["taken_at"]), (&Value::Null, &Value::Null), "kept apart: {}", r.text);
    let capture = &r.json["capture"];
    assert_eq!((capture["lat"].as_f64(), capture["lon"].as_f64()), (Some(AT_O1.0), Some(AT_O1.1)), "{}", r.text);
    assert_eq!(capture["accuracy_m"], 15.0);
    let at = DateTime::parse_from_rfc3339(capture["at"].as_str().expect("capture.at")).expect("time");
    assert_eq!(at, t0 + Duration::minutes(3));
    let app_photo = r.json["id"].clone();

    // EXIF GPS present: it is judged, though the claim says 2 km away.
    let path = format!("{base}/photos/ph-exif-0001");
    let jpeg = with_exif(&picture(42, 90), t0 + Duration::minutes(4), AT_O1);
    let r = put_photo(&app, &path, token, jpeg, &claim(t0 + Duration::minutes(4), FAR)).await;
    assert_eq!(r.status, 201, "{}", r.describe());
    let f = &r.json["findings"];
    assert_eq!(
        (&f["position_source"], &f["time_source"], &f["verdict"]),
        (&json!("exif"), &json!("exif"), &json!("confirms"))
    );
    assert_eq!(r.json["capture"]["lat"].as_f64(), Some(FAR.0), "the claim is kept: {}", r.text);
    let exif_photo = r.json["id"].clone();

    let answers = json!({"checklist_id": list, "answers": {"display_ok": true}});
    let outcome = app.put(&format!("{base}/answers/an-alone-0001"), Some(token), &answers).await;
    assert_eq!((outcome.status, &outcome.json["problems"]), (201, &json!([])), "{}", outcome.describe());

    // Wrong input: 422 naming the field, nothing stored.
    let before = evidence_rows(&pool).await;
    let bad_lat = [("lat", "95".to_owned()), ("lon", IN_T1.1.to_string())];
    let path = format!("{base}/photos/ph-bad-0001");
    let r = put_photo(&app, &path, token, picture(43, 90), &bad_lat).await;
    assert_problem(&r, 422, &path);
    assert_eq!(r.error_fields(), ["lat"], "{}", r.describe());
    let r = put_photo(&app, &path, token, picture(43, 90), &[("lat", IN_T1.0.to_string())]).await;
    assert_eq!((r.status, r.error_fields()), (422, vec!["lon".to_owned()]), "both or neither: {}", r.describe());
    let r = put_photo(&app, &path, token, picture(43, 90), &[("captured_at", "yesterday".into())]).await;
    assert_eq!((r.status, r.error_fields()), (422, vec!["captured_at".to_owned()]), "{}", r.describe());
    let r = put_photo(&app, &path, token, picture(43, 90), &[("accuracy_m", "9".repeat(100_000))]).await;
    assert_eq!((r.status, r.error_fields()), (422, vec!["accuracy_m".to_owned()]), "{}", r.describe());
    let r = put_photo(&app, &format!("{base}/photos/x"), token, picture(43, 90), &[]).await;
    assert_eq!((r.status, r.error_fields()), (422, vec!["photo_client_id".to_owned()]), "{}", r.describe());
    let path = format!("{base}/answers/an-bad-0001");
    let r = app.put(&path, Some(token), &json!({"checklist_id": list, "answers": {"display_ok": "maybe"}})).await;
    assert_problem(&r, 422, &path);
    assert_eq!(r.error_fields(), ["answers.display_ok"], "{}", r.describe());
    let big = json!({"checklist_id": list, "answers": {"display_ok": true, "pad": "x".repeat(600_000)}});
    assert_eq!(app.put(&path, Some(token), &big).await.status, 413, "an answers body is small");

    // Another rep's device does not find the check-in; other roles may not add to it.
    let path = format!("{base}/photos/ph-other-0001");
    let r = put_photo(&app, &path, &w.device2.token, picture(44, 90), &[]).await;
    assert_problem(&r, 404, &path);
    let path = format!("{base}/answers/an-other-0001");
    assert_problem(&app.put(&path, Some(&w.device2.token), &answers).await, 404, &path);
    assert_problem(&app.put(&path, Some(&w.peer.token), &answers).await, 404, &path);
    assert_problem(&app.put(&path, Some(&w.manager.token), &answers).await, 403, &path);
    let path = "/api/v1/checkins/ci-unknown-0001/answers/an-other-0001";
    assert_problem(&app.put(path, Some(token), &answers).await, 404, path);
    assert_eq!(evidence_rows(&pool).await, before, "nothing stored by refused requests");
    // The rep's own user token reaches the rep's check-ins.
    let r = app.put(&format!("{base}/answers/an-rep-0001"), Some(&w.rep.token), &answers).await;
    assert_eq!(r.status, 201, "{}", r.describe());

    // Derived without a visit: the evidence stays on the check-in, flagged.
    let listed = checkins(&app, &pool, &w, day).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let c = &listed[0];
    assert_eq!((&c["id"], &c["status"]), (&checkin["id"], &json!("unconfirmed")), "{c}");
    let photo_ids: Vec<&Value> = c["photos"].as_array().expect("photos").iter().map(|p| &p["id"]).collect();
    assert_eq!(photo_ids, [&app_photo, &exif_photo], "{c}");
    assert!(c["photos"].as_array().into_iter().flatten().all(|p| p["visit_id"].is_null()), "{c}");
    assert_eq!(c["outcomes"].as_array().map(Vec::len), Some(2), "{c}");
    assert_eq!(c["evidence_unlinked"], true, "{c}");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn evidence_under_a_used_client_id_with_other_content_is_a_conflict(pool: PgPool) {
    let w = World::seed(&pool).await;
    prepare(&pool, &w).await;
    let app = TestApp::spawn(pool.clone()).await;
    let token = w.device.token.as_str();
    let list = checklist(&app, &w).await;
    let next_version = checklist(&app, &w).await;
    assert_ne!(list, next_version, "a second version of the checklist");
    let (t0, _) = common::ten_oclock(&pool, w.org_a, 1).await;
    check_in(&app, token, "ci-clash-0001", w.o1, t0).await;
    let photo_path = "/api/v1/checkins/ci-clash-0001/photos/ph-clash-0001";
    let photo = put_photo(&app, photo_path, token, picture(51, 90), &[]).await;
    assert_eq!(photo.status, 201, "{}", photo.describe());
    let answers_path = "/api/v1/checkins/ci-clash-0001/answers/an-clash-0001";
    let body = json!({"checklist_id": list, "answers": {"display_ok": true}});
    let outcome = app.put(answers_path, Some(token), &body).await;
    assert_eq!(outcome.status, 201, "{}", outcome.describe());

    // Another picture, other answers, another checklist version under a used client id: 409
    // naming the id, nothing stored, nothing audited.
    let before = evidence_rows(&pool).await;
    let r = put_photo(&app, photo_path, token, picture(52, 90), &[]).await;
    assert_problem(&r, 409, photo_path);
    assert_eq!(r.error_fields(), ["photo_client_id"], "{}", r.describe());
    for other in [
        json!({"checklist_id": list, "answers": {"display_ok": false}}),
        json!({"checklist_id": next_version, "answers": {"display_ok": true}}),
    ] {
        let r = app.put(answers_path, Some(token), &other).await;
        assert_problem(&r, 409, answers_path);
        assert_eq!(r.error_fields(), ["answers_client_id"], "{other}: {}", r.describe());
    }
    // Two new requests under one client id at once, with other pictures: one is stored, the
    // other is refused.
    let path = "/api/v1/checkins/ci-clash-0001/photos/ph-clash-0002";
    let (a, b) = tokio::join!(
        put_photo(&app, path, token, picture(53, 90), &[]),
        put_photo(&app, path, token, picture(54, 90), &[])
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{} / {}", a.describe(), b.describe());
    let after = evidence_rows(&pool).await;
    assert_eq!((after[0] - before[0], after[3] - before[3]), (1, 1), "only the stored photo and its audit row");

    // The same content again is a retry (a note or claim is not content): 200, nothing added.
    let before = evidence_rows(&pool).await;
    let r = put_photo(&app, photo_path, token, picture(51, 90), &[("note", "again".into())]).await;
    assert_eq!((r.status, &r.json["id"]), (200, &photo.json["id"]), "{}", r.describe());
    let r = app.put(answers_path, Some(token), &body).await;
    assert_eq!((r.status, &r.json["id"]), (200, &outcome.json["id"]), "{}", r.describe());
    assert_eq!(evidence_rows(&pool).await, before);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_retried_photo_is_answered_without_decoding_it_again(pool: PgPool) {
    let w = World::seed(&pool).await;
    prepare(&pool, &w).await;
    // A HEIC decoder that counts its runs, then decodes with libheif's heif-convert.
    let dir = tempfile::tempdir().expect("temp dir");
    let runs = dir.path().join("runs");
    let decoder = dir.path().join("counting-heif-convert");
    let script = format!("#!/bin/sh\necho run >> '{}'\nexec heif-convert \"$@\"\n", runs.display());
    std::fs::write(&decoder, script).expect("write the decoder");
    let mut mode = std::fs::metadata(&decoder).expect("decoder").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
    std::fs::set_permissions(&decoder, mode).expect("executable");
    let config = fieldvisit::config::Config { heic_decoder: decoder.display().to_string(), ..common::test_config("") };
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let decoded = || std::fs::read_to_string(&runs).map_or(0, |s| s.lines().count());
    let token = w.device.token.as_str();
    let (t0, _) = common::ten_oclock(&pool, w.org_a, 1).await;
    check_in(&app, token, "ci-heic-0001", w.o1, t0).await;

    let path = "/api/v1/checkins/ci-heic-0001/photos/ph-heic-0001";
    let photo = heic(&picture(61, 90));
    let first = put_photo(&app, path, token, photo.clone(), &claim(t0, AT_O1)).await;
    assert_eq!((first.status, &first.json["has_thumbnail"]), (201, &json!(true)), "{}", first.describe());
    assert_eq!(decoded(), 1, "decoded once");
    let before = evidence_rows(&pool).await;
    let again = put_photo(&app, path, token, photo, &claim(t0, AT_O1)).await;
    assert_eq!((again.status, &again.json["id"]), (200, &first.json["id"]), "{}", again.describe());
    assert_eq!(again.json["findings"], first.json["findings"], "the stored photo answers");
    assert_eq!(decoded(), 1, "a retry is not decoded again");
    assert_eq!(evidence_rows(&pool).await, before);
}
