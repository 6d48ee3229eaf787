//! Ping ingestion over HTTP: the native batch API, OsmAnd / Traccar Client (every case of the
//! protocol sample file), OwnTracks HTTP (every location payload of its sample file), GPX upload,
//! idempotent retries, and the same track through every protocol stored identically.

use crate::common;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use common::{TestApp, World, assert_problem};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/protocol-samples");
const GEOLIFE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/geolife/geolife_sample.csv");
const LIMERICK_GPX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/limerick-304/bus_304_2019-02-18.gpx");

/// The samples carry fix times back to 2013: let this org keep pings for a century.
async fn keep_old_pings(pool: &PgPool, org_id: i64) {
    sqlx::query(
        "UPDATE orgs SET settings = jsonb_set(settings, '{pings}', '{\"retention_days\": 36500}') WHERE id = $1",
    )
    .bind(org_id)
    .execute(pool)
    .await
    .expect("org settings");
}

/// (fix time, lat, lon) of every stored ping of a device, in time order.
async fn stored(pool: &PgPool, device_id: i64) -> Vec<(DateTime<Utc>, f64, f64)> {
    sqlx::query_as("SELECT fix_time, lat, lon FROM pings WHERE device_id = $1 ORDER BY fix_time")
        .bind(device_id)
        .fetch_all(pool)
        .await
        .expect("stored pings")
}

async fn count(pool: &PgPool, device_id: i64) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pings WHERE device_id = $1")
        .bind(device_id)
        .fetch_one(pool)
        .await
        .expect("count")
}

/// A server whose visit derivation is off, so that the dirty marks stay for the test to read.
async fn without_derivation(pool: &PgPool) -> TestApp {
    let mut config = common::test_config("unused");
    config.derive_visits = false;
    TestApp::spawn_with(pool.clone(), config).await
}

fn recent(minutes_ago: i64) -> String {
    (Utc::now() - Duration::minutes(minutes_ago)).to_rfc3339()
}

fn ping(minutes_ago: i64, lat: f64, lon: f64) -> Value {
    json!({"fix_time": recent(minutes_ago), "lat": lat, "lon": lon, "accuracy_m": 8.0})
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn native_batches_are_stored_once_whatever_the_order(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = without_derivation(&pool).await;
    let before = count(&pool, w.device.id).await;
    let batch = json!([ping(30, 39.91, 116.40), ping(20, 39.9101, 116.4001), ping(10, 39.9102, 116.4002)]);
    let res = app.post("/api/v1/pings", Some(&w.device.token), &batch).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["stored"], 3);
    assert_eq!(res.json["duplicates"], 0);
    assert_eq!(count(&pool, w.device.id).await, before + 3);

    // The phone retries the same batch, then a shuffled superset: nothing is stored twice.
    let again = app.post("/api/v1/pings", Some(&w.device.token), &batch).await;
    assert_eq!(
        (again.status, again.json["stored"].clone(), again.json["duplicates"].clone()),
        (200, json!(0), json!(3))
    );
    let items = batch.as_array().expect("array");
    let shuffled = json!([items[2], ping(5, 39.9103, 116.4003), items[0], items[1], items[2]]);
    let res = app.post("/api/v1/pings", Some(&w.device.token), &shuffled).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!((res.json["stored"].clone(), res.json["duplicates"].clone()), (json!(1), json!(4)));
    assert_eq!(count(&pool, w.device.id).await, before + 4);

    // The rep-days of new pings are marked for visit derivation.
    let dirty: i64 = sqlx::query_scalar("SELECT count(*) FROM rep_day_dirty WHERE rep_id = $1 AND reason = 'pings'")
        .bind(w.device.rep_id)
        .fetch_one(&pool)
        .await
        .expect("dirty");
    assert!(dirty >= 1);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn ndjson_batches_are_accepted(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let before = count(&pool, w.device.id).await;
    let body = format!("{}\n\n{}\n", ping(12, 39.91, 116.40), ping(11, 39.911, 116.401));
    let res = app
        .send(
            app.request(Method::POST, "/api/v1/pings", Some(&w.device.token))
                .header("content-type", "application/x-ndjson")
                .body(body),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["stored"], 2);
    assert_eq!(count(&pool, w.device.id).await, before + 2);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn bad_items_are_named_and_good_ones_kept(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let before = count(&pool, w.device.id).await;
    let batch = json!([
        ping(30, 39.91, 116.40),
        {"fix_time": recent(29), "lat": 91.0, "lon": 116.4},
        {"fix_time": recent(28), "lat": "north", "lon": 116.4},
        {"fix_time": recent(27), "lat": 0.0, "lon": 0.0},
        {"fix_time": (Utc::now() + Duration::hours(2)).to_rfc3339(), "lat": 39.9, "lon": 116.4},
        {"fix_time": -5, "lat": 39.9, "lon": 116.4},
        {"lat": 39.9, "lon": 116.4},
    ]);
    let res = app.post("/api/v1/pings", Some(&w.device.token), &batch).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["stored"], 1);
    let rejected: Vec<u64> = res.json["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|e| e["index"].as_u64().expect("index"))
        .collect();
    let mut distinct = rejected.clone();
    distinct.dedup();
    assert_eq!(distinct, vec![1, 2, 3, 4, 5, 6], "{}", res.describe());
    for e in res.json["rejected"].as_array().expect("rejected") {
        assert!(e["field"].is_string() && e["reason"].as_str().is_some_and(|r| !r.is_empty()), "{e}");
    }
    assert_eq!(count(&pool, w.device.id).await, before + 1);

    // Nothing usable: 422 naming the item, nothing stored.
    let res =
        app.post("/api/v1/pings", Some(&w.device.token), &json!([{"fix_time": recent(3), "lat": 91, "lon": 1}])).await;
    assert_problem(&res, 422, "/api/v1/pings");
    assert_eq!(res.json["errors"][0]["index"], 0, "{}", res.describe());
    assert_eq!(res.json["errors"][0]["field"], "lat", "{}", res.describe());
    assert_eq!(count(&pool, w.device.id).await, before + 1);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn malformed_bodies_get_problems_and_the_server_keeps_serving(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let token = Some(w.device.token.as_str());
    let raw = |body: Vec<u8>, ctype: &'static str| {
        app.request(Method::POST, "/api/v1/pings", token).header("content-type", ctype).body(body)
    };
    for (body, ctype) in [
        (b"[{\"lat\": 1,".to_vec(), "application/json"),
        (b"{\"not\": \"an array\"}".to_vec(), "application/json"),
        (vec![b'[', 0xff, 0xfe, b']'], "application/json"),
        (format!("[\"{}\"]", "x".repeat(900_000)).into_bytes(), "application/json"),
    ] {
        let res = app.send(raw(body, ctype)).await;
        assert!((400..500).contains(&res.status), "{}", res.describe());
        assert_eq!(res.content_type(), "application/problem+json", "{}", res.describe());
        assert!(res.text.len() < 10_000, "the problem does not echo the input: {} bytes", res.text.len());
    }
    // More items than one request may carry.
    let many: Vec<Value> =
        (0..10_001).map(|i| json!({"fix_time": i + 1_700_000_000, "lat": 1.0, "lon": 1.0})).collect();
    let res = app.post("/api/v1/pings", token, &json!(many)).await;
    assert!((400..500).contains(&res.status), "{}", res.describe());
    assert_eq!(res.content_type(), "application/problem+json");
    // Still serving.
    let res = app.post("/api/v1/pings", token, &json!([ping(1, 39.9, 116.4)])).await;
    assert_eq!(res.status, 200, "{}", res.describe());
}

/// A request of nothing but bad items is 422 problem+json naming each item by its index and the
/// field at fault; a 4 MB string in an item (under the batch body limit of 8 MiB) is named, not echoed.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn every_bad_item_is_named_by_index_and_field(pool: PgPool) {
    let w = World::seed(&pool).await;
    let mut config = common::test_config("unused");
    config.body_limit_bytes = 32 * 1024 * 1024;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let before = count(&pool, w.device.id).await;
    let items = json!([
        {"fix_time": -5, "lat": 39.9, "lon": 116.4},
        {"fix_time": recent(1), "lat": "north", "lon": 116.4},
        {"fix_time": recent(2), "lat": 95.0, "lon": 116.4},
        {"fix_time": recent(3), "lat": 39.9},
        "not an object",
        {"fix_time": recent(4), "lat": 39.9, "lon": 116.4, "accuracy_m": "good"},
        {"fix_time": recent(5), "lat": 39.9, "lon": 116.4, "ping_id": "x".repeat(4 * 1024 * 1024)},
    ]);
    let res = app.post("/api/v1/pings", Some(&w.device.token), &items).await;
    assert_problem(&res, 422, "/api/v1/pings");
    assert!(res.text.len() < 10_000, "the problem does not echo the input: {} bytes", res.text.len());
    let errors = res.json["errors"].as_array().expect("errors");
    let named: Vec<(i64, String)> = errors
        .iter()
        .map(|e| (e["index"].as_i64().expect("index"), e["field"].as_str().unwrap_or_default().to_owned()))
        .collect();
    for (index, field) in [(0, "fix_time"), (1, "lat"), (2, "lat"), (3, "lon"), (5, "accuracy_m"), (6, "ping_id")] {
        assert!(named.contains(&(index, field.to_owned())), "item {index}, field {field}: {named:?}");
    }
    assert!(named.iter().any(|(i, _)| *i == 4), "the non-object item is named: {named:?}");
    assert_eq!(count(&pool, w.device.id).await, before);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn only_a_device_posts_and_only_for_itself(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let batch = json!([ping(5, 39.9, 116.4)]);
    assert_problem(&app.post("/api/v1/pings", None, &batch).await, 401, "/api/v1/pings");
    assert_problem(&app.post("/api/v1/pings", Some("fvt_unknown"), &batch).await, 401, "/api/v1/pings");
    assert_problem(&app.post("/api/v1/pings", Some(&w.rep.token), &batch).await, 403, "/api/v1/pings");
    let before = count(&pool, w.device2.id).await;
    let mut other = ping(4, 39.9, 116.4);
    other["device_id"] = json!(w.device2.id);
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!([ping(6, 39.9, 116.4), other])).await;
    assert_problem(&res, 403, "/api/v1/pings");
    assert_eq!(count(&pool, w.device2.id).await, before);
}

/// One CASE block of the OsmAnd sample file.
struct OsmandCase {
    no: u32,
    method: String,
    content_type: Option<String>,
    expect: String,
    request: String,
}

fn osmand_cases() -> Vec<OsmandCase> {
    let text = std::fs::read_to_string(format!("{SAMPLES}/osmand-traccar-client.txt")).expect("sample file");
    let mut cases = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("CASE ") else { continue };
        let parts: Vec<&str> = rest.split(" | ").collect();
        let request = lines.next().expect("request line").to_owned();
        cases.push(OsmandCase {
            no: parts[0].trim().parse().expect("case number"),
            method: parts[1].trim().split(' ').next().expect("method").to_owned(),
            content_type: Some(parts[2].trim()).filter(|c| *c != "-").map(str::to_owned),
            expect: parts[3].trim().to_owned(),
            request,
        });
    }
    cases
}

/// The sample's device id replaced by the registered device's secret.
fn with_device(request: &str, osmand_id: &str) -> String {
    let mut out = request.to_owned();
    for id in [
        "48241179",
        "658765",
        "8737767034",
        "123456789012345",
        "353861053849681",
        "861001000719969",
        "902064",
        "123456",
    ] {
        out = out.replace(&format!("\"device_id\":\"{id}\""), &format!("\"device_id\":\"{osmand_id}\""));
        out = out.replace(&format!("id={id}&"), &format!("id={osmand_id}&"));
        if out.ends_with(&format!("id={id}")) {
            out = format!("{}{osmand_id}", &out[..out.len() - id.len()]);
        }
    }
    out
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn every_osmand_sample_case_behaves_as_traccar_says(pool: PgPool) {
    let w = World::seed(&pool).await;
    keep_old_pings(&pool, w.org_a).await;
    let app = TestApp::spawn(pool.clone()).await;
    let cases = osmand_cases();
    assert_eq!(cases.len(), 15, "every CASE of the sample file is read");
    for case in cases {
        // CASE 1 and 2 carry the same fix time: each case starts from an empty track.
        sqlx::query("DELETE FROM pings WHERE device_id = $1").bind(w.device.id).execute(&pool).await.expect("clear");
        let before = count(&pool, w.device.id).await;
        let request = with_device(&case.request, &w.device.osmand_id);
        let rb = if case.method == "POST" {
            let rb = app.client.post(app.url("/osmand")).body(request.clone());
            match &case.content_type {
                Some(c) => rb.header("content-type", c.as_str()),
                None => rb,
            }
        } else {
            let query = request.trim_start_matches('/').trim_start_matches('?');
            app.client.get(format!("{}?{query}", app.url("/osmand")))
        };
        let res = app.send(rb).await;
        let after = count(&pool, w.device.id).await;
        let what = format!("CASE {} ({}): {}", case.no, case.expect, res.describe());
        if case.expect.starts_with("verifyNull") {
            assert_eq!(res.status, 400, "{what}");
            assert_eq!(res.content_type(), "application/problem+json", "{what}");
            assert_eq!(after, before, "{what}");
        } else if case.expect.starts_with("verifyNotNull") {
            assert_eq!(res.status, 200, "{what}");
            assert_eq!(after, before, "no position, nothing stored: {what}");
        } else {
            assert_eq!(res.status, 200, "{what}");
            assert_eq!(after, before + 1, "{what}");
        }
        if case.expect.contains("device_integer_twelve_test == 12") {
            let attributes: Value = sqlx::query_scalar("SELECT attributes FROM pings WHERE device_id = $1")
                .bind(w.device.id)
                .fetch_one(&pool)
                .await
                .expect("attributes");
            assert_eq!(attributes["device_integer_twelve_test"], json!(12), "{what}: {attributes}");
        }
    }
    // Units: CASE 15 sends speed=40 (knots) and extra parameters kept as attributes.
    let (speed, attributes): (Option<f32>, Option<Value>) = sqlx::query_as(
        "SELECT speed_mps, attributes FROM pings WHERE device_id = $1 AND fix_time = to_timestamp(1504763810)",
    )
    .bind(w.device.id)
    .fetch_one(&pool)
    .await
    .expect("case 15 stored");
    assert!((speed.expect("speed") - 40.0 * 1852.0 / 3600.0).abs() < 0.01, "{speed:?}");
    let attributes = attributes.expect("attributes");
    assert_eq!(attributes["rpm"], json!(933), "{attributes}");
    assert_eq!(attributes["ignition"], json!(true), "{attributes}");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn osmand_unknown_id_stores_nothing(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let res = app.send(app.client.get(app.url("/osmand?id=not-a-registered-device&lat=39.9&lon=116.4"))).await;
    assert_eq!(res.status, 404, "{}", res.describe());
    assert_eq!(res.content_type(), "application/problem+json");
    let any: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pings WHERE source = 'osmand'").fetch_one(&pool).await.expect("count");
    assert_eq!(any, 0);
    // The legacy Android client: POST with the parameters in the query and an empty body.
    let url = format!(
        "/osmand?id={}&timestamp={}&lat=60.0&lon=30.0&speed=0.0&bearing=0.0&altitude=0.0&accuracy=0.0&batt=87.0",
        w.device.osmand_id,
        Utc::now().timestamp() - 60
    );
    let res = app.send(app.client.post(app.url(&url))).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let (accuracy, battery): (Option<f32>, Option<f32>) =
        sqlx::query_as("SELECT accuracy_m, battery_pct FROM pings WHERE device_id = $1 AND source = 'osmand'")
            .bind(w.device.id)
            .fetch_one(&pool)
            .await
            .expect("stored");
    assert_eq!(accuracy, None, "accuracy 0 means unknown");
    assert_eq!(battery, Some(87.0));
}

/// Every `_type: location` JSON object in the OwnTracks sample file (plus the non-location ones).
fn owntracks_payloads() -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{SAMPLES}/owntracks-http.txt")).expect("sample file");
    let mut out = Vec::new();
    for line in text.lines() {
        let json = line.rsplit('\t').next().unwrap_or(line).trim();
        if json.starts_with('{')
            && let Ok(v) = serde_json::from_str::<Value>(json)
        {
            out.push(v);
        }
    }
    out
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn every_owntracks_location_sample_is_stored(pool: PgPool) {
    let w = World::seed(&pool).await;
    keep_old_pings(&pool, w.org_a).await;
    let app = TestApp::spawn(pool.clone()).await;
    let auth = basic(&w.device.owntracks_user, &w.device.owntracks_password);
    let payloads = owntracks_payloads();
    let mut locations = std::collections::BTreeSet::new();
    for payload in &payloads {
        let is_location = payload["_type"] == "location";
        if is_location {
            locations.insert(payload["tst"].as_i64().expect("tst"));
        }
        let res = app.send(app.client.post(app.url("/owntracks")).header("authorization", &auth).json(payload)).await;
        assert_eq!(res.status, 200, "{payload}: {}", res.describe());
        assert_eq!(res.json, json!([]), "{payload}");
    }
    assert!(locations.len() >= 15, "the sample file has many locations: {}", locations.len());
    let times: std::collections::BTreeSet<i64> = stored(&pool, w.device.id)
        .await
        .into_iter()
        .map(|(t, _, _)| t.timestamp())
        .filter(|t| locations.contains(t))
        .collect();
    assert_eq!(times, locations, "every location payload stored");

    // Empty bodies are ignored with []; wrong credentials get 401 with a Basic challenge.
    let res = app.send(app.client.post(app.url("/owntracks")).header("authorization", &auth)).await;
    assert_eq!((res.status, res.json.clone()), (200, json!([])), "{}", res.describe());
    let res = app
        .send(
            app.client
                .post(app.url("/owntracks"))
                .header("authorization", basic(&w.device.owntracks_user, "wrong"))
                .json(&payloads[0]),
        )
        .await;
    assert_eq!(res.status, 401, "{}", res.describe());
    assert!(res.header("www-authenticate").is_some_and(|h| h.starts_with("Basic")), "{}", res.describe());
}

/// The first `n` GeoLife fixes: (epoch seconds, lat, lon), moved to yesterday so no filter drops them.
fn geolife(n: usize) -> Vec<(i64, f64, f64)> {
    let text = std::fs::read_to_string(GEOLIFE).expect("geolife sample");
    let rows: Vec<(i64, f64, f64)> = text
        .lines()
        .skip(1)
        .take(n)
        .map(|l| {
            let f: Vec<&str> = l.split(';').collect();
            let t = DateTime::parse_from_str(&format!("{}00", f[7]), "%Y-%m-%d %H:%M:%S%z").expect("time");
            (t.timestamp(), f[1].parse().expect("lat"), f[0].parse().expect("lon"))
        })
        .collect();
    let shift = (Utc::now() - Duration::days(1)).timestamp() - rows[0].0;
    rows.into_iter().map(|(t, lat, lon)| (t + shift, lat, lon)).collect()
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn one_track_through_every_protocol_is_stored_identically(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let extra = common::seed_extra_devices(&pool, &w, 2).await;
    let (native_dev, osmand_dev, owntracks_dev) = (&w.device, &extra[0], &extra[1]);
    let track = geolife(300);
    sqlx::query("DELETE FROM pings WHERE device_id = $1").bind(native_dev.id).execute(&pool).await.expect("clear");

    let batch: Vec<Value> = track.iter().map(|(t, lat, lon)| json!({"fix_time": t, "lat": lat, "lon": lon})).collect();
    let res = app.post("/api/v1/pings", Some(&native_dev.token), &json!(batch)).await;
    assert_eq!((res.status, res.json["stored"].clone()), (200, json!(track.len())), "{}", res.describe());

    let auth = basic(&owntracks_dev.owntracks_user, &owntracks_dev.owntracks_password);
    for (t, lat, lon) in &track {
        let res = app
            .send(
                app.client
                    .get(app.url(&format!("/osmand?id={}&timestamp={t}&lat={lat}&lon={lon}", osmand_dev.osmand_id))),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.describe());
        let payload = json!({"_type": "location", "tid": "ab", "tst": t, "lat": lat, "lon": lon});
        let res = app.send(app.client.post(app.url("/owntracks")).header("authorization", &auth).json(&payload)).await;
        assert_eq!(res.status, 200, "{}", res.describe());
    }
    let native = stored(&pool, native_dev.id).await;
    assert_eq!(native.len(), track.len());
    assert_eq!(stored(&pool, osmand_dev.id).await, native);
    assert_eq!(stored(&pool, owntracks_dev.id).await, native);
}

/// A full ingest queue refuses a request with 503 + `Retry-After` and stores none of it; once there is
/// room the same request is stored. (The queue of this server holds 5 pings.)
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_full_queue_answers_503_and_stores_nothing(pool: PgPool) {
    let w = World::seed(&pool).await;
    let mut config = common::test_config("unused");
    config.ingest_queue_pings = 5;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let before = count(&pool, w.device.id).await;
    let batch: Vec<Value> = (1..=10).map(|i| ping(i, 39.9 + i as f64 * 1e-4, 116.4)).collect();
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!(batch)).await;
    assert_problem(&res, 503, "/api/v1/pings");
    assert!(res.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok()), "{}", res.describe());
    assert_eq!(count(&pool, w.device.id).await, before, "nothing of a refused request is stored");
    let metrics = app.get("/metrics", None).await.text;
    assert!(metrics.contains("fieldvisit_pings_refused_total{reason=\"queue_full\"} 10"), "{metrics}");
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!(batch[..5])).await;
    assert_eq!((res.status, res.json["stored"].clone()), (200, json!(5)), "{}", res.describe());
    assert_eq!(count(&pool, w.device.id).await, before + 5);
}

/// (epoch s, lat, lon, elevation) of every fix of the Limerick ride, read straight from the file.
fn limerick() -> Vec<(i64, f64, f64, f64)> {
    let text = std::fs::read_to_string(LIMERICK_GPX).expect("gpx");
    let attr = |tag: &str, name: &str| -> f64 {
        let start = tag.find(&format!("{name}=\"")).expect("attribute") + name.len() + 2;
        tag[start..].split('"').next().expect("value").parse().expect("number")
    };
    let element = |block: &str, name: &str| -> String {
        let start = block.find(&format!("<{name}>")).expect("element") + name.len() + 2;
        block[start..].split('<').next().expect("text").to_owned()
    };
    text.split("<trkpt ")
        .skip(1)
        .map(|block| {
            let tag = block.split('>').next().expect("tag");
            let time = DateTime::parse_from_rfc3339(&element(block, "time")).expect("time").timestamp();
            (time, attr(tag, "lat"), attr(tag, "lon"), element(block, "ele").parse().expect("ele"))
        })
        .collect()
}

/// The Limerick bus ride (2,144 fixes with elevation) through every way in: one native batch, one
/// OsmAnd GET and one OwnTracks POST per fix, and the GPX file itself: the same pings, to the bit.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_limerick_ride_through_every_protocol_is_stored_identically(pool: PgPool) {
    let w = World::seed(&pool).await;
    keep_old_pings(&pool, w.org_a).await;
    let app = TestApp::spawn(pool.clone()).await;
    let extra = common::seed_extra_devices(&pool, &w, 3).await;
    let (native_dev, osmand_dev, owntracks_dev, gpx_dev) = (&w.device, &extra[0], &extra[1], &extra[2]);
    sqlx::query("DELETE FROM pings WHERE device_id = $1").bind(native_dev.id).execute(&pool).await.expect("clear");
    let ride = limerick();
    assert_eq!(ride.len(), 2_144);

    let batch: Vec<Value> = ride
        .iter()
        .map(|(t, lat, lon, ele)| json!({"fix_time": t, "lat": lat, "lon": lon, "altitude_m": ele}))
        .collect();
    let res = app.post("/api/v1/pings", Some(&native_dev.token), &json!(batch)).await;
    assert_eq!((res.status, res.json["stored"].clone()), (200, json!(ride.len())), "{}", res.describe());

    let auth = basic(&owntracks_dev.owntracks_user, &owntracks_dev.owntracks_password);
    for (t, lat, lon, ele) in &ride {
        let url = format!("/osmand?id={}&timestamp={t}&lat={lat}&lon={lon}&altitude={ele}", osmand_dev.osmand_id);
        let res = app.send(app.client.get(app.url(&url))).await;
        assert_eq!(res.status, 200, "{}", res.describe());
        let payload = json!({"_type": "location", "tid": "lb", "tst": t, "lat": lat, "lon": lon, "alt": ele});
        let res = app.send(app.client.post(app.url("/owntracks")).header("authorization", &auth).json(&payload)).await;
        assert_eq!((res.status, res.text.as_str()), (200, "[]"), "{}", res.describe());
    }
    let path = format!("/api/v1/devices/{}/gpx", gpx_dev.id);
    let gpx = std::fs::read(LIMERICK_GPX).expect("gpx");
    let res = app
        .send(
            app.request(Method::POST, &path, Some(&w.admin.token))
                .header("content-type", "application/gpx+xml")
                .body(gpx),
        )
        .await;
    assert_eq!((res.status, res.json["stored"].clone()), (200, json!(ride.len())), "{}", res.describe());

    let rows = |device_id: i64| {
        let pool = pool.clone();
        async move {
            let rows: Vec<(DateTime<Utc>, f64, f64, Option<f32>)> = sqlx::query_as(
                "SELECT fix_time, lat, lon, altitude_m FROM pings WHERE device_id = $1 ORDER BY fix_time",
            )
            .bind(device_id)
            .fetch_all(&pool)
            .await
            .expect("stored pings");
            rows
        }
    };
    let native = rows(native_dev.id).await;
    let want: Vec<(i64, f64, f64, Option<f32>)> =
        ride.iter().map(|&(t, lat, lon, ele)| (t, lat, lon, Some(ele as f32))).collect();
    let got: Vec<(i64, f64, f64, Option<f32>)> =
        native.iter().map(|&(t, lat, lon, ele)| (t.timestamp(), lat, lon, ele)).collect();
    assert_eq!(got, want, "native pings are the file's fixes");
    assert_eq!(rows(osmand_dev.id).await, native, "OsmAnd");
    assert_eq!(rows(owntracks_dev.id).await, native, "OwnTracks");
    assert_eq!(rows(gpx_dev.id).await, native, "GPX upload");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn gpx_backfill_stores_the_limerick_ride(pool: PgPool) {
    let w = World::seed(&pool).await;
    keep_old_pings(&pool, w.org_a).await;
    let app = TestApp::spawn(pool.clone()).await;
    let gpx = std::fs::read(LIMERICK_GPX).expect("gpx");
    let path = format!("/api/v1/devices/{}/gpx", w.device.id);
    let upload = |token: &str| {
        app.request(Method::POST, &path, Some(token)).header("content-type", "application/gpx+xml").body(gpx.clone())
    };
    let res = app.send(upload(&w.admin.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let stored_now = res.json["stored"].as_u64().expect("stored");
    assert!(stored_now > 2_000, "{}", res.describe());
    let res = app.send(upload(&w.admin.token)).await;
    assert_eq!(
        (res.json["stored"].clone(), res.json["duplicates"].as_u64()),
        (json!(0), Some(stored_now)),
        "{}",
        res.describe()
    );
    // A rep cannot backfill; a device token neither.
    assert_eq!(app.send(upload(&w.rep.token)).await.status, 403);
    assert_eq!(app.send(upload(&w.device.token)).await.status, 403);
    let bad = app.send(app.request(Method::POST, &path, Some(&w.admin.token)).body("<gpx><trk>")).await;
    assert_problem(&bad, 400, &path);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn drops_are_counted_by_reason_in_metrics(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let batch = json!([
        ping(3, 39.9, 116.4),
        {"fix_time": recent(2), "lat": 0.0, "lon": 0.0},
        {"fix_time": recent(1), "lat": "north", "lon": "east"},
    ]);
    let res = app.post("/api/v1/pings", Some(&w.device.token), &batch).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let metrics = app.get("/metrics", None).await.text;
    assert!(metrics.contains("fieldvisit_pings_dropped_total{reason=\"malformed\",source=\"native\"} 1"), "{metrics}");
    assert!(
        metrics.contains("fieldvisit_pings_dropped_total{reason=\"null_island\",source=\"native\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("fieldvisit_pings_stored_total{source=\"native\"} 1"), "{metrics}");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_manager_asks_an_owntracks_phone_for_its_position(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let path = format!("/api/v1/devices/{}/position-requests", w.device.id);
    let res = app.call(Method::POST, &path, Some(&w.manager.token), None).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let request_id = res.json["id"].as_i64().expect("id");
    let audited: (Option<i64>, String) = sqlx::query_as(
        "SELECT actor_user_id, object_id FROM audit_log WHERE action = 'device.request_position' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .expect("audit entry");
    assert_eq!(audited, (Some(w.manager.id), w.device.id.to_string()));

    // The next OwnTracks reply carries the command, once.
    let auth = basic(&w.device.owntracks_user, &w.device.owntracks_password);
    let t0 = Utc::now().timestamp() - 120;
    let location = |tst: i64, trigger: &str| json!({"_type": "location", "tid": "ab", "tst": tst, "lat": 39.9, "lon": 116.4, "t": trigger});
    let res =
        app.send(app.client.post(app.url("/owntracks")).header("authorization", &auth).json(&location(t0, "p"))).await;
    assert_eq!(res.json, json!([{"_type": "cmd", "action": "reportLocation"}]), "{}", res.describe());
    let res = app
        .send(app.client.post(app.url("/owntracks")).header("authorization", &auth).json(&location(t0 + 60, "r")))
        .await;
    assert_eq!(res.json, json!([]), "{}", res.describe());

    let flags: i32 = sqlx::query_scalar("SELECT flags FROM pings WHERE device_id = $1 AND fix_time = to_timestamp($2)")
        .bind(w.device.id)
        .bind(t0 + 60)
        .fetch_one(&pool)
        .await
        .expect("answer stored");
    assert_eq!(flags & 2, 2, "the answering fix is flagged as requested");
    let res = app.get(&format!("/api/v1/position-requests/{request_id}"), Some(&w.manager.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(
        res.json["answer_fix_time"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.timestamp()),
        Some(t0 + 60),
        "{}",
        res.describe()
    );
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn native_clients_poll_position_requests(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let res = app
        .call(Method::POST, &format!("/api/v1/devices/{}/position-requests", w.device.id), Some(&w.admin.token), None)
        .await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let commands = app.get("/api/v1/devices/me/commands", Some(&w.device.token)).await;
    assert_eq!(commands.status, 200, "{}", commands.describe());
    assert_eq!(commands.json[0]["action"], "reportLocation", "{}", commands.describe());
    assert_eq!(app.get("/api/v1/devices/me/commands", Some(&w.device.token)).await.json, json!([]), "handed out once");
    let answer = ping(1, 39.9, 116.4);
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!([ping(2, 39.9, 116.4), answer])).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let flagged: Vec<i32> = sqlx::query_scalar(
        "SELECT flags FROM pings WHERE device_id = $1 AND fix_time > now() - interval '5 minutes' ORDER BY fix_time",
    )
    .bind(w.device.id)
    .fetch_all(&pool)
    .await
    .expect("flags");
    assert_eq!(flagged.iter().map(|f| f & 2).collect::<Vec<_>>(), vec![0, 2], "only the newest fix answers");

    // Scope: a T1 manager cannot ask a T2 rep's phone; a rep cannot ask at all.
    let other = app
        .call(
            Method::POST,
            &format!("/api/v1/devices/{}/position-requests", w.device2.id),
            Some(&w.manager.token),
            None,
        )
        .await;
    assert!(matches!(other.status, 403 | 404), "{}", other.describe());
    let rep = app
        .call(Method::POST, &format!("/api/v1/devices/{}/position-requests", w.device.id), Some(&w.rep.token), None)
        .await;
    assert_eq!(rep.status, 403, "{}", rep.describe());
    assert_eq!(app.get("/api/v1/devices/me/commands", Some(&w.rep.token)).await.status, 403);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn concurrent_writers_create_a_day_partition_once(pool: PgPool) {
    // Regression: the second of two writers creating the same day's partition failed with
    // "relation already exists" and its batch was refused.
    let day = Utc::now() - Duration::days(3);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await.expect("connection");
            fieldvisit::db::pings::ensure_partitions(&mut conn, std::iter::once(day)).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("partition ensured");
    }
    let part = format!("pings_{}", day.format("%Y%m%d"));
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(&part).fetch_one(&pool).await.expect("regclass");
    assert!(exists, "{part}");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn osmand_speed_unit_is_an_org_setting(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let t = Utc::now().timestamp() - 60;
    let get = |t: i64| app.url(&format!("/osmand?id={}&timestamp={t}&lat=39.9&lon=116.4&speed=36", w.device.osmand_id));
    assert_eq!(app.send(app.client.get(get(t))).await.status, 200);
    sqlx::query(
        "UPDATE orgs SET settings = jsonb_set(settings, '{pings}', '{\"osmand_speed_unit\": \"kmh\"}') WHERE id = $1",
    )
    .bind(w.org_a)
    .execute(&pool)
    .await
    .expect("settings");
    // The OsmAnd device cache holds the old settings for up to 2 s.
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_eq!(app.send(app.client.get(get(t + 1))).await.status, 200);
    let speeds: Vec<f32> =
        sqlx::query_scalar("SELECT speed_mps FROM pings WHERE device_id = $1 AND source = 'osmand' ORDER BY fix_time")
            .bind(w.device.id)
            .fetch_all(&pool)
            .await
            .expect("speeds");
    assert_eq!(speeds.len(), 2);
    assert!((speeds[0] - 36.0 * 1852.0 / 3600.0).abs() < 0.01, "knots by default: {speeds:?}");
    assert!((speeds[1] - 10.0).abs() < 0.01, "36 km/h = 10 m/s: {speeds:?}");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_reps_own_working_hours_keep_off_duty_pings_out(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let all_day = json!({"mon": [["00:00", "24:00"]], "tue": [["00:00", "24:00"]], "wed": [["00:00", "24:00"]],
        "thu": [["00:00", "24:00"]], "fri": [["00:00", "24:00"]], "sat": [["00:00", "24:00"]], "sun": [["00:00", "24:00"]]});
    sqlx::query("UPDATE orgs SET settings = jsonb_set(settings, '{pings}', $2) WHERE id = $1")
        .bind(w.org_a)
        .bind(json!({"working_hours_only": true, "working_hours": all_day}))
        .execute(&pool)
        .await
        .expect("org settings");
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!([ping(10, 39.9, 116.4)])).await;
    assert_eq!((res.status, res.json["stored"].clone()), (200, json!(1)), "org hours: all day: {}", res.describe());

    // The rep works one minute a week, long ago: a fix from ten minutes ago is off duty.
    let now = Utc::now() - Duration::minutes(5);
    let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [(now.format("%u").to_string().parse::<usize>().expect("weekday") + 3) % 7];
    sqlx::query("UPDATE users SET working_hours = $2 WHERE id = $1")
        .bind(w.device.rep_id)
        .bind(json!({ day: [["03:00", "03:01"]] }))
        .execute(&pool)
        .await
        .expect("rep hours");
    let before = count(&pool, w.device.id).await;
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!([ping(5, 39.9, 116.4)])).await;
    // Dropped, not failed: the phone must not resend it forever.
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!((res.json["stored"].clone(), res.json["dropped"].clone()), (json!(0), json!(1)), "{}", res.describe());
    assert_eq!(res.json["rejected"][0]["field"], "fix_time", "{}", res.describe());
    assert!(
        res.json["rejected"][0]["reason"].as_str().is_some_and(|r| r.contains("working hours")),
        "{}",
        res.describe()
    );
    assert_eq!(count(&pool, w.device.id).await, before);
}

/// Phone apps resend whatever was not answered 2xx: a fix the filters drop (clock far ahead, too
/// old, null island) is answered 200 on every protocol, counted by reason and not stored, while a
/// malformed one is still 400.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn filtered_fixes_are_answered_success_so_phones_do_not_resend_them(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let before = count(&pool, w.device.id).await;
    let ahead = (Utc::now() + Duration::hours(3)).timestamp();
    let old = (Utc::now() - Duration::days(1000)).timestamp();
    for (what, query) in [
        ("ahead", format!("id={}&timestamp={ahead}&lat=39.9&lon=116.4", w.device.osmand_id)),
        ("old", format!("id={}&timestamp={old}&lat=39.9&lon=116.4", w.device.osmand_id)),
        ("null island", format!("id={}&timestamp={}&lat=0&lon=0", w.device.osmand_id, Utc::now().timestamp())),
    ] {
        let res = app.send(app.client.get(format!("{}?{query}", app.url("/osmand")))).await;
        assert_eq!(res.status, 200, "{what}: {}", res.describe());
    }
    let res = app
        .send(app.client.get(format!("{}?id={}&timestamp=1&lat=north&lon=1", app.url("/osmand"), w.device.osmand_id)))
        .await;
    assert_eq!(res.status, 400, "malformed: {}", res.describe());

    let (user, password) = (&w.device.owntracks_user, &w.device.owntracks_password);
    let location = json!({"_type": "location", "tst": ahead, "lat": 39.9, "lon": 116.4});
    let res = app
        .send(
            app.client
                .post(app.url("/owntracks"))
                .header("authorization", basic(user, password))
                .header("content-type", "application/json")
                .body(location.to_string()),
        )
        .await;
    assert_eq!(res.status, 200, "owntracks: {}", res.describe());
    assert_eq!(res.json, json!([]), "{}", res.describe());

    let res = app
        .post("/api/v1/pings", Some(&w.device.token), &json!([{"fix_time": ahead, "lat": 39.9, "lon": 116.4}]))
        .await;
    assert_eq!(res.status, 200, "native: {}", res.describe());
    assert_eq!(res.json["dropped"], 1, "{}", res.describe());

    assert_eq!(count(&pool, w.device.id).await, before, "nothing stored");
    let metrics = app.get("/metrics", None).await.text;
    for line in [
        "fieldvisit_pings_dropped_total{reason=\"from_future\",source=\"osmand\"} 1",
        "fieldvisit_pings_dropped_total{reason=\"too_old\",source=\"osmand\"} 1",
        "fieldvisit_pings_dropped_total{reason=\"null_island\",source=\"osmand\"} 1",
        "fieldvisit_pings_dropped_total{reason=\"from_future\",source=\"owntracks\"} 1",
        "fieldvisit_pings_dropped_total{reason=\"from_future\",source=\"native\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

/// The columns of a stored ping a phone sets.
type StoredRow = (
    DateTime<Utc>,
    f64,
    f64,
    Option<f32>,
    Option<f32>,
    Option<f32>,
    Option<f32>,
    Option<f32>,
    bool,
    String,
    Option<String>,
    Option<Value>,
);

/// A batch large enough for the writer's `COPY` path: every column reads back as sent, the rep-days
/// in the org's time zone (Kathmandu, +05:45) are marked dirty, and a retry that adds one new fix
/// stores that one and counts the rest as duplicates.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_large_batch_stores_every_column_and_a_retry_counts_duplicates(pool: PgPool) {
    let w = World::seed(&pool).await;
    sqlx::query("UPDATE orgs SET timezone = 'Asia/Kathmandu' WHERE id = $1")
        .bind(w.org_a)
        .execute(&pool)
        .await
        .expect("time zone");
    sqlx::query("DELETE FROM rep_day_dirty").execute(&pool).await.expect("clear dirty");
    // Yesterday's local midnight, so that the batch spans two local days and is safely in the past.
    let midnight: DateTime<Utc> = sqlx::query_scalar(
        "SELECT (date_trunc('day', now() AT TIME ZONE 'Asia/Kathmandu') - interval '1 day') AT TIME ZONE 'Asia/Kathmandu'",
    )
    .fetch_one(&pool)
    .await
    .expect("midnight");
    let app = without_derivation(&pool).await;
    let before = count(&pool, w.device.id).await;
    let n = 600;
    let items: Vec<Value> = (0..n)
        .map(|i| {
            let t = midnight - Duration::hours(2) + Duration::seconds(24 * i);
            let mut item = json!({
                "fix_time": t.to_rfc3339(), "lat": 27.7 + i as f64 * 1e-6, "lon": 85.3 + i as f64 * 1e-6,
                "accuracy_m": 4.5, "speed_mps": 0.25, "heading_deg": (i % 360) as f64, "altitude_m": -3.5,
                "battery_pct": 80, "mock": i % 7 == 0, "ping_id": format!("p-{i}"),
            });
            if i % 2 == 0 {
                item["attributes"] = json!({"shelf": i, "note": "ünïcode"});
            }
            item
        })
        .collect();
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!(items)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!((res.json["stored"].clone(), res.json["duplicates"].clone()), (json!(n), json!(0)));

    let rows: Vec<StoredRow> = sqlx::query_as(
        "SELECT fix_time, lat, lon, accuracy_m, speed_mps, heading_deg, altitude_m, battery_pct, mock, source,
                client_ping_id, attributes
           FROM pings WHERE device_id = $1 AND fix_time >= $2 ORDER BY fix_time",
    )
    .bind(w.device.id)
    .bind(midnight - Duration::hours(2))
    .fetch_all(&pool)
    .await
    .expect("rows");
    assert_eq!(rows.len(), n as usize);
    for (i, row) in rows.iter().enumerate() {
        let sent = &items[i];
        let want: StoredRow = (
            midnight - Duration::hours(2) + Duration::seconds(24 * i as i64),
            sent["lat"].as_f64().expect("lat"),
            sent["lon"].as_f64().expect("lon"),
            Some(4.5),
            Some(0.25),
            Some((i % 360) as f32),
            Some(-3.5),
            Some(80.0),
            i % 7 == 0,
            "native".into(),
            Some(format!("p-{i}")),
            (i % 2 == 0).then(|| json!({"shelf": i, "note": "ünïcode"})),
        );
        assert_eq!(row, &want, "item {i}");
    }

    let days: Vec<chrono::NaiveDate> =
        sqlx::query_scalar("SELECT day FROM rep_day_dirty WHERE rep_id = $1 AND reason = 'pings' ORDER BY day")
            .bind(w.device.rep_id)
            .fetch_all(&pool)
            .await
            .expect("dirty days");
    let local = |t: DateTime<Utc>| (t + Duration::minutes(5 * 60 + 45)).date_naive();
    assert_eq!(days, vec![local(midnight - Duration::hours(1)), local(midnight)]);

    // The phone did not see the answer and sends the batch again, with one new fix.
    let mut again = items.clone();
    again.insert(300, ping(3, 27.71, 85.31));
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!(again)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!((res.json["stored"].clone(), res.json["duplicates"].clone()), (json!(1), json!(n)));
    assert_eq!(count(&pool, w.device.id).await, before + n + 1);
}

/// The dirty mark of a rep-day is written once and then only locked by later batches (no new row
/// version per commit); once a deriving worker has claimed it, the next batch of either write path
/// clears the claim, so the worker's `DELETE .. WHERE claimed_at = <its claim>` keeps the mark.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_dirty_rep_day_is_marked_once_and_a_claim_is_cleared_by_new_pings(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = without_derivation(&pool).await;
    sqlx::query("DELETE FROM rep_day_dirty").execute(&pool).await.expect("clear dirty");
    // Fixes of one UTC hour that is safely inside one local day of the org.
    let hour: DateTime<Utc> = sqlx::query_scalar(
        "SELECT date_trunc('day', now() AT TIME ZONE o.timezone) AT TIME ZONE o.timezone - interval '12 hours'
           FROM orgs o WHERE id = $1",
    )
    .bind(w.org_a)
    .fetch_one(&pool)
    .await
    .expect("hour");
    let at =
        |s: i64, lat: f64| json!({"fix_time": (hour + Duration::seconds(s)).to_rfc3339(), "lat": lat, "lon": 116.4});
    let row = || async {
        sqlx::query_as::<_, (String, Option<DateTime<Utc>>)>(
            "SELECT xmin::text, claimed_at FROM rep_day_dirty WHERE org_id = $1 AND rep_id = $2",
        )
        .bind(w.org_a)
        .bind(w.device.rep_id)
        .fetch_all(&pool)
        .await
        .expect("dirty row")
    };
    let post = |items: Vec<Value>| {
        let n = items.len();
        let app = &app;
        let token = w.device.token.clone();
        async move {
            let res = app.post("/api/v1/pings", Some(&token), &json!(items)).await;
            assert_eq!((res.status, res.json["stored"].as_u64()), (200, Some(n as u64)), "{}", res.describe());
        }
    };
    post(vec![at(0, 39.9)]).await;
    let first = row().await;
    assert_eq!(first.len(), 1, "{first:?}");
    post(vec![at(1, 39.9), at(2, 39.9)]).await;
    assert_eq!(row().await, first, "an unclaimed mark is not rewritten");

    for (what, items) in [
        ("one ping", vec![at(3, 39.9)]),
        ("a COPY-sized batch", (0..600).map(|i| at(10 + i, 39.9 + i as f64 * 1e-6)).collect::<Vec<_>>()),
    ] {
        let claim: DateTime<Utc> = sqlx::query_scalar(
            "UPDATE rep_day_dirty SET claimed_at = now() WHERE org_id = $1 AND rep_id = $2 RETURNING claimed_at",
        )
        .bind(w.org_a)
        .bind(w.device.rep_id)
        .fetch_one(&pool)
        .await
        .expect("claim");
        post(items).await;
        let now = row().await;
        assert_eq!((now.len(), now[0].1), (1, None), "{what}: the claim is cleared");
        let deleted = sqlx::query("DELETE FROM rep_day_dirty WHERE org_id = $1 AND rep_id = $2 AND claimed_at = $3")
            .bind(w.org_a)
            .bind(w.device.rep_id)
            .bind(claim)
            .execute(&pool)
            .await
            .expect("worker's delete")
            .rows_affected();
        assert_eq!(deleted, 0, "{what}: the rep-day stays dirty");
    }
}

/// Sends a request head declaring `declared` body bytes, then only `sent` of them, and waits (up to
/// 20 s, a bound against hanging, not a timing assertion) for the status line of the answer.
/// `None`: no answer while the rest of the body is unsent.
async fn status_before_the_body(addr: std::net::SocketAddr, head: &str, declared: usize, sent: usize) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let wait = std::time::Duration::from_secs(20);
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect to the test server");
    let head = format!("{head}Content-Length: {declared}\r\nConnection: close\r\n\r\n");
    sock.write_all(head.as_bytes()).await.expect("send the request head");
    // The server may stop reading once it has answered: a failed write is not the test's concern.
    let _ = tokio::time::timeout(wait, sock.write_all(&vec![b' '; sent])).await;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(wait, read).await;
    String::from_utf8_lossy(&answer).strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Issue 25, item 1: a 30 MB body with a wrong OwnTracks password is answered 401 before the
/// server reads it (the answer arrives while all but 64 KiB of the body is unsent), and so is one
/// to /osmand with an unknown id in the query (404); a 30 MB body to /osmand whose device id may
/// be inside the body, or is right, is answered 413 after at most 64 KiB. The
/// server runs with the production body limit (32 MiB), under which both used to be read whole.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn big_bodies_are_refused_before_they_are_read(pool: PgPool) {
    let w = World::seed(&pool).await;
    let mut config = common::test_config("unused");
    config.body_limit_bytes = 32 * 1024 * 1024;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let declared = 30_000_000;
    let wrong = basic(&w.device.owntracks_user, "wrong");
    let head =
        format!("POST /owntracks HTTP/1.1\r\nHost: fv\r\nAuthorization: {wrong}\r\nContent-Type: application/json\r\n");
    let status = status_before_the_body(app.addr, &head, declared, 64 * 1024).await;
    assert_eq!(status, Some(401), "the wrong password is answered before the body is read");
    let head = "POST /owntracks HTTP/1.1\r\nHost: fv\r\nContent-Type: application/json\r\n".to_owned();
    let status = status_before_the_body(app.addr, &head, declared, 64 * 1024).await;
    assert_eq!(status, Some(401), "no credential at all is answered before the body is read");
    // An unknown OsmAnd id in the query is answered before the body, like a wrong password.
    let head = "POST /osmand?id=not-a-device HTTP/1.1\r\nHost: fv\r\nContent-Type: application/json\r\n".to_owned();
    let status = status_before_the_body(app.addr, &head, declared, 64 * 1024).await;
    assert_eq!(status, Some(404), "an unknown id in the query is answered before the body is read");
    for path in ["/osmand", &format!("/osmand?id={}", w.device.osmand_id)] {
        let head = format!("POST {path} HTTP/1.1\r\nHost: fv\r\nContent-Type: application/x-www-form-urlencoded\r\n");
        let status = status_before_the_body(app.addr, &head, declared, 128 * 1024).await;
        assert_eq!(status, Some(413), "{path}: a body past the OsmAnd cap is refused");
    }
    // A right password still reads (and stores) the body.
    let auth = basic(&w.device.owntracks_user, &w.device.owntracks_password);
    let location = json!({"_type": "location", "tst": Utc::now().timestamp() - 60, "lat": 39.9, "lon": 116.4});
    let res = app.send(app.client.post(app.url("/owntracks")).header("authorization", &auth).json(&location)).await;
    assert_eq!((res.status, res.json.clone()), (200, json!([])), "{}", res.describe());
    // The wrong password through an ordinary client: 401 problem with the Basic challenge.
    let res = app.send(app.client.post(app.url("/owntracks")).header("authorization", &wrong).json(&location)).await;
    assert_problem(&res, 401, "/owntracks");
    assert!(res.header("www-authenticate").is_some_and(|h| h.starts_with("Basic")), "{}", res.describe());
}

/// Issue 25, item 1: every operation of `/api/v1` that takes a request body has a limit fitting
/// what it carries (see docs/api.md, "Body limits"): one byte over it is 413 problem+json, the
/// limit itself is read. The list is compared with the OpenAPI document, so a new operation with
/// a body cannot be missed. (The import-sized ones use `FV_BODY_LIMIT_BYTES`, 1 MiB in the tests.)
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn every_body_route_refuses_a_body_just_over_its_limit(pool: PgPool) {
    const KIB: usize = 1024;
    let (small, outlet, plan, answers, pings, import) =
        (16 * KIB, 64 * KIB, 1024 * KIB, 512 * KIB, 8 * KIB * KIB, common::BODY_LIMIT);
    let limits: Vec<(&str, &str, usize)> = vec![
        ("put", "/checkins/{client_id}", small),
        ("post", "/checkins/{id}/decision", small),
        ("post", "/checklists", answers),
        ("post", "/visits/{id}/outcomes", answers),
        ("put", "/checkins/{client_id}/answers/{answers_client_id}", answers),
        ("post", "/devices", small),
        ("patch", "/devices/{id}", small),
        ("post", "/devices/{id}/credentials", small),
        ("post", "/devices/{id}/enrolments", small),
        ("post", "/enrolments/redeem", small),
        ("post", "/exports", small),
        ("post", "/exports/verify", import),
        ("post", "/outlets/import", import),
        ("post", "/pings", pings),
        ("post", "/devices/{id}/gpx", import),
        ("post", "/outlets/{id}/close", outlet),
        ("post", "/outlets/{id}/suspend", outlet),
        ("post", "/outlets/{id}/reopen", outlet),
        ("post", "/outlets", outlet),
        ("patch", "/outlets/{id}", outlet),
        ("put", "/tier-policies/{tier}", outlet),
        ("post", "/users", small),
        ("patch", "/users/{id}", small),
        ("post", "/beats/proposals", 4 * KIB),
        ("post", "/beats/day-order", 32 * KIB),
        ("post", "/reviews/bulk", 40 * KIB),
        ("post", "/visits/{id}/photos", import),
        ("put", "/checkins/{client_id}/photos/{photo_client_id}", import),
        ("post", "/outlets/{id}/photos", import),
        ("post", "/plans", plan),
        ("put", "/plans/{id}", plan),
        ("put", "/users/{id}/privacy", small),
        ("put", "/settings/pings", small),
        ("post", "/territories", import),
        ("post", "/territories/import", import),
        ("post", "/visits/recompute", small),
        ("post", "/visits/{id}/reviews", small),
    ];
    // Every operation with a request body, from the OpenAPI document.
    let doc = serde_json::to_value(fieldvisit::http::openapi()).expect("OpenAPI as JSON");
    let mut with_body: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if op.get("requestBody").is_some() {
                with_body.push((method.clone(), path.trim_start_matches("/api/v1").to_owned()));
            }
        }
    }
    let mut listed: Vec<(String, String)> = limits.iter().map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned())).collect();
    with_body.sort();
    listed.sort();
    assert_eq!(with_body, listed, "every operation with a body is listed with its limit");

    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let tokens =
        [&w.admin.token, &w.device.token, &w.rep.token, &w.manager.token, &w.auditor.token, &w.supervisor.token];
    // The photo forms are read after their visit, outlet or check-in is found; their 413s are in
    // tests/integration/photos.rs.
    for (method, path, limit) in limits.iter().filter(|(_, p, _)| !p.ends_with("/photos") && !p.contains("/photos/")) {
        let url = format!("/api/v1{path}")
            .replace("{client_id}", "c-1")
            .replace("{answers_client_id}", "a-1")
            .replace("{photo_client_id}", "p-1")
            .replace("{tier}", "ZA")
            .replace("{id}", "1");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        for len in [limit + 1, *limit] {
            let (ctype, body) = ("application/json", vec![b' '; len]);
            let mut res = None;
            for token in tokens {
                let rb =
                    app.request(method.clone(), &url, Some(token)).header("content-type", ctype).body(body.clone());
                let r = app.send(rb).await;
                let refused = r.status == 401 || r.status == 403;
                res = Some(r);
                if !refused {
                    break;
                }
            }
            let res = res.expect("a response");
            if len > *limit {
                assert_problem(&res, 413, &url);
            } else {
                assert_ne!(
                    res.status,
                    413,
                    "{method} {url}: a body of exactly {limit} bytes is read: {}",
                    res.describe()
                );
            }
        }
    }
}

/// Issue 25, item 6: an OwnTracks batch (an array, or the Recorder's `locations`) carries at most
/// 10,000 messages, like the native batch: one more is 413 problem+json and nothing is stored.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn an_owntracks_batch_over_ten_thousand_items_is_refused(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let before = count(&pool, w.device.id).await;
    let auth = basic(&w.device.owntracks_user, &w.device.owntracks_password);
    let start = Utc::now().timestamp() - 20_000;
    let many: Vec<Value> =
        (0..10_001).map(|i| json!({"_type": "location", "tst": start + i, "lat": 39.9, "lon": 116.4})).collect();
    for body in [json!(many), json!({"count": many.len(), "locations": many})] {
        let res = app.send(app.client.post(app.url("/owntracks")).header("authorization", &auth).json(&body)).await;
        assert_problem(&res, 413, "/owntracks");
        assert!(res.json["detail"].as_str().is_some_and(|d| d.contains("10000")), "{}", res.describe());
    }
    assert_eq!(count(&pool, w.device.id).await, before, "nothing of a refused batch is stored");
    // The native batch answers the same.
    let native: Vec<Value> = (0..10_001).map(|i| json!({"fix_time": start + i, "lat": 39.9, "lon": 116.4})).collect();
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!(native)).await;
    assert_problem(&res, 413, "/api/v1/pings");
}

/// Issue 25, item 6: the ingest queue is bounded in bytes (each ping's estimated memory, its
/// attributes included) as well as in pings: a request that would pass `FV_INGEST_QUEUE_BYTES` is
/// 503 + Retry-After and stores nothing; a smaller one is stored.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_queue_full_in_bytes_answers_503_and_stores_nothing(pool: PgPool) {
    let w = World::seed(&pool).await;
    let mut config = common::test_config("unused");
    config.ingest_queue_bytes = 64 * 1024;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let before = count(&pool, w.device.id).await;
    let batch: Vec<Value> = (1..=30)
        .map(|i| {
            let mut p = ping(i, 39.9 + i as f64 * 1e-4, 116.4);
            p["attributes"] = json!({"note": "n".repeat(3000)});
            p
        })
        .collect();
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!(batch)).await;
    assert_problem(&res, 503, "/api/v1/pings");
    assert!(res.header("retry-after").is_some_and(|v| v.parse::<u64>().is_ok()), "{}", res.describe());
    assert_eq!(count(&pool, w.device.id).await, before, "nothing of a refused request is stored");
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!(batch[..5])).await;
    assert_eq!((res.status, res.json["stored"].clone()), (200, json!(5)), "{}", res.describe());
}

/// Issue 25, item 6: a ping's `attributes` may hold at most 4 KiB of JSON. A larger one is rejected
/// for its item (named by index, the rest of the batch stored); in the one-fix protocols the
/// request is refused naming `attributes`.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn oversized_attributes_reject_their_item(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let before = count(&pool, w.device.id).await;
    let big = "b".repeat(5000);
    let mut fine = ping(3, 39.9, 116.4);
    fine["attributes"] = json!({"note": "n".repeat(3000)});
    let mut heavy = ping(2, 39.9001, 116.4);
    heavy["attributes"] = json!({"note": big});
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!([fine, heavy])).await;
    assert_eq!((res.status, res.json["stored"].clone()), (200, json!(1)), "{}", res.describe());
    let rejected = &res.json["rejected"];
    assert_eq!(
        (rejected[0]["index"].clone(), rejected[0]["field"].clone()),
        (json!(1), json!("attributes")),
        "{rejected}"
    );
    let res = app.post("/api/v1/pings", Some(&w.device.token), &json!([heavy])).await;
    assert_problem(&res, 422, "/api/v1/pings");

    let auth = basic(&w.device.owntracks_user, &w.device.owntracks_password);
    let location =
        json!({"_type": "location", "tst": Utc::now().timestamp() - 60, "lat": 39.9, "lon": 116.4, "note": big});
    let res = app.send(app.client.post(app.url("/owntracks")).header("authorization", &auth).json(&location)).await;
    assert_problem(&res, 400, "/owntracks");
    assert_eq!(res.error_fields(), vec!["attributes".to_owned()], "{}", res.describe());

    let query = format!("/osmand?id={}&lat=39.9&lon=116.4&note={big}", w.device.osmand_id);
    let res = app.send(app.client.post(app.url(&query))).await;
    assert_problem(&res, 400, "/osmand");
    assert_eq!(res.error_fields(), vec!["attributes".to_owned()], "{}", res.describe());
    let body = json!({"device_id": w.device.osmand_id, "location": {"timestamp": recent(1),
        "coords": {"latitude": 39.9, "longitude": 116.4}, "extras": {"note": big}}});
    let res = app.send(app.client.post(app.url("/osmand")).json(&body)).await;
    assert_problem(&res, 400, "/osmand");
    assert_eq!(count(&pool, w.device.id).await, before + 1, "only the fitting native item is stored");
}
