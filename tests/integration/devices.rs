//! The device lifecycle over HTTP on two server instances sharing one database: deactivation,
//! rotation and reassignment are refused at once by every protocol (native API, /osmand,
//! /owntracks, the app's token) on both instances, even where the OsmAnd credential is cached;
//! enrolment links work once and not after expiry; the OsmAnd id is stored hashed.

use crate::common::{TestApp, World, test_config};
use base64::Engine;
use chrono::Utc;
use fieldvisit::config::Config;
use serde_json::{Value, json};
use sqlx::PgPool;

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A fix time `n` seconds ago (within the default filters' window).
fn t(n: i64) -> i64 {
    Utc::now().timestamp() - n
}

async fn osmand(app: &TestApp, id: &str, ts: i64) -> u16 {
    app.send(app.client.get(app.url(&format!("/osmand?id={id}&timestamp={ts}&lat=39.95&lon=116.05")))).await.status
}

async fn owntracks(app: &TestApp, user: &str, password: &str, ts: i64) -> u16 {
    let body = json!({"_type": "location", "lat": 39.95, "lon": 116.05, "tst": ts, "acc": 10});
    let rb = app.client.post(app.url("/owntracks")).header("authorization", basic(user, password)).json(&body);
    app.send(rb).await.status
}

async fn native(app: &TestApp, token: &str, ts: i64) -> u16 {
    let fix_time = chrono::DateTime::from_timestamp(ts, 0).expect("time").to_rfc3339();
    let body = json!([{"fix_time": fix_time, "lat": 39.95, "lon": 116.05, "accuracy_m": 8}]);
    app.post("/api/v1/pings", Some(token), &body).await.status
}

/// Two instances over one database whose OsmAnd credential cache outlives the test: a credential
/// cached before a change is surely still cached after it.
async fn two_instances(pool: &PgPool) -> (TestApp, TestApp) {
    let config = || Config { osmand_cache_s: 3600, ..test_config("") };
    (TestApp::spawn_with(pool.clone(), config()).await, TestApp::spawn_with(pool.clone(), config()).await)
}

async fn pings_of(pool: &PgPool, device_id: i64) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pings WHERE device_id = $1")
        .bind(device_id)
        .fetch_one(pool)
        .await
        .expect("count")
}

async fn audit_actions(pool: &PgPool, device_id: i64) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log WHERE object_type = 'device' AND object_id = $1 ORDER BY id")
        .bind(device_id.to_string())
        .fetch_all(pool)
        .await
        .expect("audit")
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_deactivated_device_is_refused_at_once_by_every_protocol_on_every_instance(pool: PgPool) {
    let w = World::seed(&pool).await;
    let (a, b) = two_instances(&pool).await;
    let d = &w.device;
    // Instance b has the OsmAnd credential cached, and every protocol works there.
    assert_eq!(osmand(&b, &d.osmand_id, t(50)).await, 200);
    assert_eq!(owntracks(&b, &d.owntracks_user, &d.owntracks_password, t(49)).await, 200);
    assert_eq!(native(&b, &d.token, t(48)).await, 200);
    let before = pings_of(&pool, d.id).await;

    let res = a.patch(&format!("/api/v1/devices/{}", d.id), Some(&w.manager.token), &json!({"active": false})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["active"], false);
    assert!(res.json["deactivated_at"].is_string());
    for app in [&a, &b] {
        assert_eq!(osmand(app, &d.osmand_id, t(40)).await, 403, "osmand on {}", app.base);
        assert_eq!(owntracks(app, &d.owntracks_user, &d.owntracks_password, t(39)).await, 403);
        assert_eq!(native(app, &d.token, t(38)).await, 401);
        assert_eq!(app.get("/api/v1/me", Some(&d.token)).await.status, 401, "the app's token");
    }
    assert_eq!(pings_of(&pool, d.id).await, before, "nothing stored after the deactivation");

    let res = b.patch(&format!("/api/v1/devices/{}", d.id), Some(&w.manager.token), &json!({"active": true})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(osmand(&a, &d.osmand_id, t(30)).await, 200);
    assert_eq!(osmand(&b, &d.osmand_id, t(29)).await, 200);
    assert_eq!(native(&b, &d.token, t(28)).await, 200);
    assert_eq!(audit_actions(&pool, d.id).await, ["device.deactivate", "device.reactivate"]);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn only_managers_of_the_reps_territory_change_a_device(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let path = format!("/api/v1/devices/{}", w.device2.id); // rep2 is in T2; the manager's scope is T1
    let res = app.patch(&path, Some(&w.manager.token), &json!({"active": false})).await;
    assert_eq!(res.status, 403, "{}", res.describe());
    for who in [&w.rep, &w.supervisor, &w.auditor] {
        let res =
            app.patch(&format!("/api/v1/devices/{}", w.device.id), Some(&who.token), &json!({"active": false})).await;
        assert_eq!(res.status, 403, "{}: {}", who.login, res.describe());
    }
    let res =
        app.patch(&format!("/api/v1/devices/{}", w.device_b.id), Some(&w.admin.token), &json!({"active": false})).await;
    assert_eq!(res.status, 404, "another org's device");
    let res = app.patch(&path, Some(&w.admin.token), &json!({"active": false, "rep_id": w.rep.id})).await;
    assert_eq!(res.status, 422, "one change at a time: {}", res.describe());
    assert_eq!(pings_of(&pool, w.device2.id).await, w.pings_per_device as i64);
    assert_eq!(osmand(&app, &w.device2.osmand_id, t(10)).await, 200, "still active");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_rotated_secret_is_refused_and_only_that_one_changes(pool: PgPool) {
    let w = World::seed(&pool).await;
    let (a, b) = two_instances(&pool).await;
    let d = &w.device;
    let path = format!("/api/v1/devices/{}/credentials", d.id);
    assert_eq!(osmand(&b, &d.osmand_id, t(60)).await, 200, "cached on b");

    let res = a.post(&path, Some(&w.manager.token), &json!({"secrets": ["osmand_id"]})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let new_osmand = res.json["osmand_id"].as_str().expect("new osmand id").to_owned();
    assert!(res.json["token"].is_null() && res.json["owntracks_password"].is_null(), "{}", res.text);
    for app in [&a, &b] {
        assert_eq!(osmand(app, &d.osmand_id, t(50)).await, 404, "the old id on {}", app.base);
    }
    assert_eq!(osmand(&b, &new_osmand, t(49)).await, 200);
    assert_eq!(native(&b, &d.token, t(48)).await, 200, "the token was kept");
    assert_eq!(owntracks(&b, &d.owntracks_user, &d.owntracks_password, t(47)).await, 200, "the password was kept");

    let res = b.post(&path, Some(&w.admin.token), &json!({"secrets": ["owntracks_password", "token"]})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let (password, token) =
        (res.json["owntracks_password"].as_str().expect("present"), res.json["token"].as_str().expect("present"));
    assert_eq!(res.json["owntracks_user"], d.owntracks_user.as_str());
    for app in [&a, &b] {
        assert_eq!(owntracks(app, &d.owntracks_user, &d.owntracks_password, t(40)).await, 401);
        assert_eq!(native(app, &d.token, t(39)).await, 401);
    }
    assert_eq!(owntracks(&a, &d.owntracks_user, password, t(38)).await, 200);
    assert_eq!(native(&a, token, t(37)).await, 200);
    assert_eq!(osmand(&a, &new_osmand, t(36)).await, 200, "the new OsmAnd id was kept");

    let res = a.post(&path, Some(&w.admin.token), &json!({})).await;
    assert_eq!(res.status, 200, "all three when none is named");
    for key in ["token", "osmand_id", "owntracks_password"] {
        assert!(res.json[key].is_string(), "{key}: {}", res.text);
    }
    assert_eq!(osmand(&b, &new_osmand, t(30)).await, 404);
    let stored: Option<Vec<u8>> = sqlx::query_scalar("SELECT osmand_id_hash FROM devices WHERE id = $1")
        .bind(d.id)
        .fetch_one(&pool)
        .await
        .expect("hash");
    let latest = res.json["osmand_id"].as_str().expect("present");
    assert_eq!(stored, Some(fieldvisit::domain::credentials::hash_secret(latest)), "only the hash is stored");
    let plain: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'devices' AND column_name = 'osmand_id'",
    )
    .fetch_one(&pool)
    .await
    .expect("columns");
    assert_eq!(plain, 0, "no plain OsmAnd id column");
    assert_eq!(audit_actions(&pool, d.id).await, ["device.rotate", "device.rotate", "device.rotate"]);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_reassigned_phone_acts_for_the_new_rep_and_the_history_stays(pool: PgPool) {
    let w = World::seed(&pool).await;
    let (a, b) = two_instances(&pool).await;
    let d = &w.device;
    assert_eq!(osmand(&b, &d.osmand_id, t(60)).await, 200, "cached on b");
    let old_pings = pings_of(&pool, d.id).await;

    let res =
        a.patch(&format!("/api/v1/devices/{}", d.id), Some(&w.manager.token), &json!({"rep_id": w.peer.id})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let new_id = res.json["id"].as_i64().expect("new device row");
    assert_ne!(new_id, d.id);
    assert_eq!(res.json["rep_id"], w.peer.id);
    assert_eq!(res.json["predecessor_id"], d.id);
    let old = a.get(&format!("/api/v1/devices/{}", d.id), Some(&w.manager.token)).await;
    assert_eq!(old.json["active"], false);
    assert_eq!(old.json["successor_id"], new_id);
    assert_eq!(old.json["rep_id"], w.rep.id, "the old row stays the rep's");

    // Every credential now acts for the new rep, also on the instance that had it cached.
    assert_eq!(osmand(&b, &d.osmand_id, t(50)).await, 200);
    assert_eq!(owntracks(&b, &d.owntracks_user, &d.owntracks_password, t(49)).await, 200);
    assert_eq!(native(&a, &d.token, t(48)).await, 200);
    let me = b.get("/api/v1/me", Some(&d.token)).await;
    assert_eq!((me.json["device_id"].as_i64(), me.json["rep_id"].as_i64()), (Some(new_id), Some(w.peer.id)));
    assert_eq!(pings_of(&pool, new_id).await, 3, "the new pings are the new row's");
    assert_eq!(pings_of(&pool, d.id).await, old_pings, "the old ones stay with the old rep");

    let res = a.patch(&format!("/api/v1/devices/{}", d.id), Some(&w.admin.token), &json!({"active": true})).await;
    assert_eq!(res.status, 409, "a reassigned row cannot come back: {}", res.describe());
    let res =
        a.patch(&format!("/api/v1/devices/{new_id}"), Some(&w.admin.token), &json!({"rep_id": w.manager.id})).await;
    assert_eq!(res.status, 422, "only reps get devices: {}", res.describe());
    let res =
        a.patch(&format!("/api/v1/devices/{new_id}"), Some(&w.manager.token), &json!({"rep_id": w.rep2.id})).await;
    assert_eq!(res.status, 403, "a rep outside the manager's territory: {}", res.describe());
    assert_eq!(audit_actions(&pool, d.id).await, ["device.reassign"]);
}

fn decode_qr(qr: &Value) -> String {
    let data = qr["png"].as_str().and_then(|s| s.strip_prefix("data:image/png;base64,")).expect("a PNG data URL");
    let png = base64::engine::general_purpose::STANDARD.decode(data).expect("base64");
    let image = image::load_from_memory(&png).expect("PNG").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    let (_, text) = grids[0].decode().expect("decodable QR code");
    assert_eq!(text, qr["text"].as_str().expect("text"), "the QR code holds its text");
    text
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn an_enrolment_link_works_once_and_not_after_expiry(pool: PgPool) {
    let w = World::seed(&pool).await;
    let mut config = test_config("");
    config.public_url = Some("https://fv.example.test".into());
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let d = &w.device;
    let path = format!("/api/v1/devices/{}/enrolments", d.id);
    let res = app
        .send(
            app.request(reqwest::Method::POST, &path, Some(&w.manager.token))
                .header("host", "evil.example")
                .json(&json!({})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let link = decode_qr(&res.json["app"]);
    let code = link.strip_prefix("https://fv.example.test/app/#enrol=").expect("the public URL, not the Host header");
    assert!(res.json["note"].as_str().expect("present").contains("background"));

    // OwnTracks: the QR code decodes to a configuration that works.
    let ot = decode_qr(&res.json["owntracks"]);
    let b64 = ot.strip_prefix("owntracks:///config?inline=").expect("an OwnTracks config link");
    let b64 = b64.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
    let config: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(b64).expect("present"))
            .expect("present");
    assert_eq!((config["_type"].as_str(), config["mode"].as_i64()), (Some("configuration"), Some(3)));
    assert_eq!(config["url"], "https://fv.example.test/owntracks");
    assert_eq!(config["username"], d.owntracks_user.as_str());
    let password = config["password"].as_str().expect("present");
    assert_eq!(owntracks(&app, &d.owntracks_user, password, t(20)).await, 200);
    assert_eq!(owntracks(&app, &d.owntracks_user, &d.owntracks_password, t(19)).await, 401, "the old one is replaced");
    // Traccar Client: server URL and identifier.
    let traccar = decode_qr(&res.json["traccar"]["qr"]);
    let id = res.json["traccar"]["device_id"].as_str().expect("present");
    assert_eq!(traccar, format!("https://fv.example.test/osmand?id={id}"));
    assert_eq!(osmand(&app, id, t(18)).await, 200);

    // The code is redeemed once, for a token that acts as the device.
    let redeem = |code: String| {
        let app = &app;
        async move { app.post("/api/v1/enrolments/redeem", None, &json!({"code": code})).await }
    };
    let res = redeem(code.to_owned()).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!((res.json["device_id"].as_i64(), res.json["rep_id"].as_i64()), (Some(d.id), Some(w.rep.id)));
    let token = res.json["token"].as_str().expect("present").to_owned();
    assert_eq!(app.get("/api/v1/me", Some(&token)).await.json["device_id"], d.id);
    assert_eq!(native(&app, &token, t(10)).await, 200);
    assert_eq!(redeem(code.to_owned()).await.status, 404, "a code works once");

    // A newer link withdraws the older one; an expired link does not work.
    let first = app.post(&path, Some(&w.admin.token), &json!({"trackers": false})).await;
    assert!(first.json["owntracks"].is_null() && first.json["traccar"].is_null(), "{}", first.text);
    let second = app.post(&path, Some(&w.admin.token), &json!({"trackers": false})).await;
    let code_of = |res: &crate::common::Res| {
        res.json["app"]["text"].as_str().expect("present").split("#enrol=").nth(1).expect("present").to_owned()
    };
    assert_eq!(redeem(code_of(&first)).await.status, 404, "withdrawn by the newer link");
    sqlx::query(
        "UPDATE device_enrolments SET created_at = now() - interval '2 days', expires_at = now() - interval '1 day'",
    )
    .execute(&pool)
    .await
    .expect("expire");
    let res = redeem(code_of(&second)).await;
    assert_eq!(res.status, 404, "expired");
    assert_eq!(res.content_type(), "application/problem+json");
    assert_eq!(redeem("fvt_not-a-code".into()).await.status, 404);
    // The unauthenticated redeem reads a small body only (16 KiB), well below the server's limit.
    let res = redeem("x".repeat(100_000)).await;
    assert_eq!(res.status, 413, "{}", res.describe());

    // A deactivated device gets no link; a rep cannot issue one.
    let res = app.post(&path, Some(&w.rep.token), &json!({})).await;
    assert_eq!(res.status, 403);
    app.patch(&format!("/api/v1/devices/{}", d.id), Some(&w.admin.token), &json!({"active": false})).await;
    assert_eq!(app.post(&path, Some(&w.admin.token), &json!({})).await.status, 409);
    let actions = audit_actions(&pool, d.id).await;
    assert!(
        actions.starts_with(&["device.enrolment.create".into(), "device.rotate".into(), "device.enrol".into()]),
        "{actions:?}"
    );
}
