//! The read side of positions over HTTP: a rep's track as GeoJSON, CSV and GPX (gap split,
//! simplification, content negotiation, scope), and live positions (SSE stream and JSON snapshot).

use crate::common;

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use common::{PING_DAY, Res, TestApp, World, assert_problem};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashSet;

/// Now, to the second (the database keeps microseconds; whole seconds compare exactly).
fn now_s() -> DateTime<Utc> {
    Utc.timestamp_opt(Utc::now().timestamp(), 0).single().expect("valid time")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A posted fix: (time, lat, lon).
type Fix = (DateTime<Utc>, f64, f64);

/// Posts fixes with a device token; all must be stored.
async fn post_fixes(app: &TestApp, token: &str, fixes: &[Fix]) {
    let body: Vec<Value> = fixes
        .iter()
        .map(|(t, lat, lon)| json!({"fix_time": rfc3339(*t), "lat": lat, "lon": lon, "accuracy_m": 8.0}))
        .collect();
    let res = app.post("/api/v1/pings", Some(token), &Value::Array(body)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["stored"].as_u64(), Some(fixes.len() as u64), "{}", res.describe());
}

/// Two runs of three fixes 28 minutes apart, ending 58 minutes ago; latitude and longitude differ.
fn two_runs(start: DateTime<Utc>) -> Vec<Fix> {
    [0, 1, 2, 30, 31, 32]
        .into_iter()
        .enumerate()
        .map(|(i, minute)| (start + Duration::minutes(minute), 39.95 + i as f64 * 1e-4, 116.05 + i as f64 * 2e-4))
        .collect()
}

/// `from`/`to` of the last four hours (and the next one).
fn recent_period() -> String {
    let now = now_s();
    format!("from={}&to={}", rfc3339(now - Duration::hours(4)), rfc3339(now + Duration::hours(1)))
}

fn track_path(rep_id: i64) -> String {
    format!("/api/v1/reps/{rep_id}/track")
}

/// GET the track of `rep_id` with a query string and an optional `Accept` header.
async fn track(app: &TestApp, token: &str, rep_id: i64, query: &str, accept: Option<&str>) -> Res {
    let mut rb = app.request(Method::GET, &format!("{}?{query}", track_path(rep_id)), Some(token));
    if let Some(a) = accept {
        rb = rb.header("accept", a);
    }
    app.send(rb).await
}

fn time(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{s}: {e}")).with_timezone(&Utc)
}

fn features<'a>(doc: &'a Value, geometry: &[&str]) -> Vec<&'a Value> {
    doc["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter(|f| {
            let kind = f["geometry"]["type"].as_str().unwrap_or("null");
            geometry.contains(&kind)
        })
        .collect()
}

/// (time, lat, lon) of each `[lon, lat]` position and its time.
fn vertices(coordinates: &Value, times: &Value) -> Vec<Fix> {
    let c = coordinates.as_array().expect("coordinates");
    let t = times.as_array().expect("times");
    assert_eq!(c.len(), t.len(), "times parallel the coordinates: {coordinates} / {times}");
    c.iter().zip(t).map(|(p, t)| (time(t), p[1].as_f64().expect("lat"), p[0].as_f64().expect("lon"))).collect()
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn geojson_track_has_lines_with_times_split_at_gaps_and_points(pool: PgPool) {
    let w = World::seed(&pool).await;
    let extra = common::seed_extra_devices(&pool, &w, 1).await.remove(0);
    let app = TestApp::spawn(pool).await;
    let fixes = two_runs(now_s() - Duration::minutes(90));
    post_fixes(&app, &w.device.token, &fixes).await;
    let extra_fixes: Vec<Fix> =
        (0..2).map(|i| (now_s() - Duration::minutes(20 - i), 39.96, 116.06 + i as f64 * 1e-4)).collect();
    post_fixes(&app, &extra.token, &extra_fixes).await;

    let res = track(&app, &w.manager.token, w.rep.id, &recent_period(), None).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(res.content_type().starts_with("application/geo+json"), "{}", res.describe());
    let doc = &res.json;
    assert_eq!(doc["type"], "FeatureCollection");
    assert_eq!(doc["rep_id"].as_i64(), Some(w.rep.id));
    assert_eq!(doc["truncated"], false);

    let lines = features(doc, &["LineString", "MultiLineString", "null"]);
    assert_eq!(lines.len(), 2, "one line per device: {lines:?}");
    let line = lines.iter().find(|f| f["properties"]["device_id"].as_i64() == Some(w.device.id)).expect("line");
    // 28 minutes between the runs is more than the default 10: two parts, never bridged.
    assert_eq!(line["geometry"]["type"], "MultiLineString", "{line}");
    let parts = line["geometry"]["coordinates"].as_array().expect("parts");
    let times = line["properties"]["times"].as_array().expect("times");
    assert_eq!((parts.len(), times.len()), (2, 2), "{line}");
    let got: Vec<Fix> = parts.iter().zip(times).flat_map(|(c, t)| vertices(c, t)).collect();
    assert_eq!(got, fixes, "[lon, lat] positions and their times, in order");
    assert_eq!(line["properties"]["rep_id"].as_i64(), Some(w.rep.id));
    assert_eq!(line["properties"]["ping_count"], 6);
    assert!(line["properties"].get("simplified_from").is_none(), "{line}");

    let other = lines.iter().find(|f| f["properties"]["device_id"].as_i64() == Some(extra.id)).expect("line");
    assert_eq!(other["geometry"]["type"], "LineString");
    assert_eq!(vertices(&other["geometry"]["coordinates"], &other["properties"]["times"]), extra_fixes);

    let points = features(doc, &["Point"]);
    assert_eq!(points.len(), fixes.len() + extra_fixes.len());
    let first = points.iter().find(|f| f["properties"]["device_id"].as_i64() == Some(w.device.id)).expect("point");
    assert_eq!(first["geometry"]["coordinates"], json!([fixes[0].2, fixes[0].1]));
    assert_eq!(time(&first["properties"]["fix_time"]), fixes[0].0);
    for key in
        ["fix_time", "accuracy_m", "speed_mps", "heading_deg", "altitude_m", "battery_pct", "mock", "source", "flags"]
    {
        assert!(first["properties"].get(key).is_some(), "point property {key}: {first}");
    }
    assert_eq!(first["properties"]["source"], "native");
    assert_eq!(first["properties"]["accuracy_m"].as_f64(), Some(8.0));

    // A longer gap threshold joins the runs into one line.
    let res = track(&app, &w.manager.token, w.rep.id, &format!("{}&max_gap_s=3600", recent_period()), None).await;
    let lines = features(&res.json, &["LineString", "MultiLineString"]);
    let line = lines.iter().find(|f| f["properties"]["device_id"].as_i64() == Some(w.device.id)).expect("line");
    assert_eq!(line["geometry"]["type"], "LineString", "{line}");
    assert_eq!(vertices(&line["geometry"]["coordinates"], &line["properties"]["times"]), fixes);

    // `application/json` and `*/*` get GeoJSON too; the seeded day is one line of three.
    for accept in ["application/json", "*/*", "application/geo+json"] {
        let res = track(&app, &w.rep.token, w.rep.id, &format!("date={PING_DAY}"), Some(accept)).await;
        assert_eq!(res.status, 200, "{accept}: {}", res.describe());
        assert!(res.content_type().starts_with("application/geo+json"), "{accept}: {}", res.content_type());
        let lines = features(&res.json, &["LineString"]);
        assert_eq!(lines.len(), 1, "{accept}: {}", res.describe());
        let v = vertices(&lines[0]["geometry"]["coordinates"], &lines[0]["properties"]["times"]);
        assert_eq!(v.len(), w.pings_per_device);
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn csv_track_has_the_header_and_one_row_per_ping(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let res = track(&app, &w.manager.token, w.rep.id, &format!("date={PING_DAY}"), Some("text/csv")).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(res.content_type().starts_with("text/csv"), "{}", res.describe());
    assert_eq!(
        res.header("content-disposition"),
        Some(format!("attachment; filename=\"rep-{}-{PING_DAY}.csv\"", w.rep.id).as_str())
    );
    let mut lines = res.text.lines();
    assert_eq!(
        lines.next(),
        Some("device_id,fix_time,lat,lon,accuracy_m,speed_mps,heading_deg,altitude_m,battery_pct,mock,source,flags")
    );
    let mut reader = csv::Reader::from_reader(res.text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("CSV rows");
    assert_eq!(rows.len(), w.pings_per_device, "{}", res.text);
    for row in &rows {
        assert_eq!(row.len(), 12, "{row:?}");
        assert_eq!(row[0].parse::<i64>().ok(), Some(w.device.id));
        assert!(DateTime::parse_from_rfc3339(&row[1]).is_ok(), "{row:?}");
        assert!((row[2].parse::<f64>().expect("lat") - common::IN_T1.0).abs() < 1e-9, "{row:?}");
        assert_eq!(&row[9], "false");
        assert_eq!(&row[10], "native");
    }
    // `format` overrides Accept.
    let res =
        track(&app, &w.manager.token, w.rep.id, &format!("date={PING_DAY}&format=csv"), Some("application/json")).await;
    assert!(res.content_type().starts_with("text/csv"), "{}", res.describe());
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn gpx_track_reads_back_with_the_gpx_crate(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let fixes = two_runs(now_s() - Duration::minutes(90));
    post_fixes(&app, &w.device.token, &fixes).await;
    for (query, accept) in
        [(recent_period(), Some("application/gpx+xml")), (format!("{}&format=gpx", recent_period()), Some("text/csv"))]
    {
        let res = track(&app, &w.manager.token, w.rep.id, &query, accept).await;
        assert_eq!(res.status, 200, "{}", res.describe());
        assert!(res.content_type().starts_with("application/gpx+xml"), "{}", res.describe());
        assert!(res.header("content-disposition").is_some_and(|d| d.ends_with(".gpx\"")), "{:?}", res.headers);
        let doc = gpx::read(res.text.as_bytes()).expect("a GPX document");
        assert_eq!(doc.version, gpx::GpxVersion::Gpx11);
        assert_eq!(doc.tracks.len(), 1, "one <trk> per device");
        let segments = &doc.tracks[0].segments;
        assert_eq!(segments.len(), 2, "one <trkseg> per gap-separated run");
        let got: Vec<Fix> = segments
            .iter()
            .flat_map(|s| &s.points)
            .map(|p| {
                let t = p.time.expect("<time>").format().expect("time text");
                (time(&json!(t)), p.point().y(), p.point().x())
            })
            .collect();
        assert_eq!(got, fixes);
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn simplification_reduces_a_straight_line_to_original_endpoints(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    // 60 fixes 10 s apart due east along one parallel (~8.5 m steps): a straight line.
    let start = now_s() - Duration::minutes(30);
    let fixes: Vec<Fix> =
        (0..60).map(|i| (start + Duration::seconds(10 * i), 39.95, 116.05 + i as f64 * 1e-4)).collect();
    post_fixes(&app, &w.device.token, &fixes).await;

    let res = track(&app, &w.manager.token, w.rep.id, &format!("{}&simplify_m=5", recent_period()), None).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let lines = features(&res.json, &["LineString", "MultiLineString"]);
    assert_eq!(lines.len(), 1, "{}", res.describe());
    let props = &lines[0]["properties"];
    let kept = vertices(&lines[0]["geometry"]["coordinates"], &props["times"]);
    assert_eq!(kept, vec![fixes[0], fixes[59]], "only the endpoints remain");
    assert_eq!((props["ping_count"].as_u64(), props["simplified_from"].as_u64()), (Some(2), Some(60)));
    assert_eq!(res.json["simplify_m"].as_f64(), Some(5.0));
    // Every kept point is one of the posted pings, with its own time.
    let points = features(&res.json, &["Point"]);
    assert_eq!(points.len(), 2);
    for p in points {
        let c = &p["geometry"]["coordinates"];
        let fix = (time(&p["properties"]["fix_time"]), c[1].as_f64().expect("lat"), c[0].as_f64().expect("lon"));
        assert!(fixes.contains(&fix), "{fix:?} is not an original ping");
    }
    // The same in CSV: the kept pings only.
    let res =
        track(&app, &w.manager.token, w.rep.id, &format!("{}&simplify_m=5&format=csv", recent_period()), None).await;
    assert_eq!(res.text.lines().count(), 3, "{}", res.text);
    // Without simplification every ping is there.
    let res = track(&app, &w.manager.token, w.rep.id, &recent_period(), None).await;
    assert_eq!(features(&res.json, &["Point"]).len(), 60);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn bad_track_parameters_are_422_problems_naming_the_field(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = track_path(w.rep.id);
    let cases = [
        ("simplify_m=0", "simplify_m"),
        ("simplify_m=-5", "simplify_m"),
        ("simplify_m=NaN", "simplify_m"),
        ("simplify_m=inf", "simplify_m"),
        ("simplify_m=1000.5", "simplify_m"),
        ("simplify_m=abc", "simplify_m"),
        ("format=kml", "format"),
        ("max_gap_s=0", "max_gap_s"),
        ("max_gap_s=ten", "max_gap_s"),
        // An empty value is not a number, as the OpenAPI document says (not "absent").
        ("max_gap_s=", "max_gap_s"),
        ("simplify_m=", "simplify_m"),
    ];
    for (query, field) in cases {
        let res = track(&app, &w.manager.token, w.rep.id, &format!("date={PING_DAY}&{query}"), None).await;
        assert_problem(&res, 422, &path);
        assert_eq!(res.error_fields(), vec![field.to_owned()], "{query}: {}", res.describe());
    }
    // The largest tolerance is fine.
    let res = track(&app, &w.manager.token, w.rep.id, &format!("date={PING_DAY}&simplify_m=1000"), None).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    // Period rules are those of /pings.
    let res = track(&app, &w.manager.token, w.rep.id, "from=2024-05-02T00:00:00Z&to=2024-05-01T00:00:00Z", None).await;
    assert_problem(&res, 422, &path);
    assert_eq!(res.error_fields(), vec!["to".to_owned()]);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn an_accept_header_nothing_matches_is_406(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = track_path(w.rep.id);
    for accept in ["image/png", "application/xml", "text/csv;q=0, application/*;q=0"] {
        let res = track(&app, &w.manager.token, w.rep.id, &format!("date={PING_DAY}"), Some(accept)).await;
        assert_problem(&res, 406, &path);
        assert_eq!(res.json["type"], "/problems/not-acceptable", "{}", res.describe());
    }
    let res = track(&app, &w.manager.token, w.rep.id, &format!("date={PING_DAY}&format=csv"), Some("image/png")).await;
    assert_eq!(res.status, 200, "`format` wins over Accept: {}", res.describe());
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn track_scope_is_that_of_the_pings_endpoint(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let cases: [(Option<&str>, i64, u16); 12] = [
        (Some(&w.manager.token), w.rep.id, 200),
        (Some(&w.supervisor.token), w.rep.id, 200),
        (Some(&w.admin.token), w.rep2.id, 200),
        (Some(&w.rep.token), w.rep.id, 200),
        (Some(&w.manager.token), w.rep2.id, 403),
        (Some(&w.rep.token), w.peer.id, 403),
        (Some(&w.rep.token), w.rep2.id, 403),
        (Some(&w.device.token), w.rep.id, 200),
        (Some(&w.device.token), w.peer.id, 403),
        (Some(&w.admin_b.token), w.rep.id, 404),
        (Some(&w.manager.token), w.rep_b.id, 404),
        (None, w.rep.id, 401),
    ];
    for (token, rep_id, want) in cases {
        let query = format!("date={PING_DAY}");
        let pings = app.get(&format!("/api/v1/reps/{rep_id}/pings?{query}"), token).await;
        let mut rb = app.request(Method::GET, &format!("{}?{query}", track_path(rep_id)), token);
        rb = rb.header("accept", "text/csv");
        let res = app.send(rb).await;
        assert_eq!((res.status, pings.status), (want, want), "rep {rep_id}: {}", res.describe());
        if want == 200 {
            assert_eq!(res.text.lines().count(), w.pings_per_device + 1, "{}", res.text);
        } else {
            assert_problem(&res, want, &track_path(rep_id));
        }
        assert!(!res.text.contains(common::ORG_B_MARKER), "{}", res.describe());
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_track_over_the_cap_is_cut_and_flagged(pool: PgPool) {
    let w = World::seed(&pool).await;
    // 50,001 fixes one second apart along a parallel on 2024-05-02: one more than a request returns.
    let start = Utc.with_ymd_and_hms(2024, 5, 2, 0, 0, 0).single().expect("valid time");
    let rows: Vec<fieldvisit::db::pings::Ping> = (0..50_001)
        .map(|i| fieldvisit::db::pings::Ping {
            device_id: w.device.id,
            fix_time: start + Duration::seconds(i),
            lat: 39.95,
            lon: 116.0 + i as f64 * 2e-6,
            accuracy_m: None,
            speed_mps: None,
            heading_deg: None,
            altitude_m: None,
            battery_pct: None,
            mock: false,
            source: "import".to_owned(),
        })
        .collect();
    let mut conn = pool.acquire().await.expect("connection");
    fieldvisit::db::pings::insert(&mut conn, w.org_a, &rows).await.expect("insert pings");
    drop(conn);
    let app = TestApp::spawn(pool).await;
    let res = track(&app, &w.manager.token, w.rep.id, "date=2024-05-02&simplify_m=1000", None).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["truncated"], true);
    assert_eq!(res.header("x-truncated"), Some("true"));
    let lines = features(&res.json, &["LineString"]);
    assert_eq!(lines[0]["properties"]["simplified_from"], 50_000);
    // The earliest fixes are the ones kept.
    let kept = vertices(&lines[0]["geometry"]["coordinates"], &lines[0]["properties"]["times"]);
    assert_eq!(kept.iter().map(|k| k.0).collect::<Vec<_>>(), vec![start, start + Duration::seconds(49_999)]);
}

/// An SSE connection read chunk by chunk (reqwest's `stream` feature is not enabled).
struct Sse {
    res: reqwest::Response,
    buf: Vec<u8>,
}

/// One server-sent event: its name and data.
#[derive(Debug)]
struct Event {
    name: String,
    data: String,
}

impl Sse {
    async fn open(app: &TestApp, token: &str) -> Sse {
        // No overall timeout: the stream is meant to stay open; every read below is bounded.
        let client = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .expect("client");
        let res = client.get(app.url("/api/v1/live")).bearer_auth(token).send().await.expect("connect");
        assert_eq!(res.status(), 200);
        let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Sse { res, buf: Vec::new() }
    }

    /// The next event before `deadline` (comments skipped); `None` at the deadline or the end.
    async fn next(&mut self, deadline: tokio::time::Instant) -> Option<Event> {
        loop {
            while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let frame = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                let (mut name, mut data) = (String::from("message"), None);
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        v.trim().clone_into(&mut name);
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data = Some(v.trim().to_owned());
                    }
                }
                if let Some(data) = data {
                    return Some(Event { name, data });
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk()).await.ok()?.ok()??;
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// Every event until `wait` has passed.
    async fn drain(&mut self, wait: std::time::Duration) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        while let Some(e) = self.next(deadline).await {
            out.push(e);
        }
        out
    }

    /// The first `position` event of `device_id` within `wait`.
    async fn position_of(&mut self, device_id: i64, wait: std::time::Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        while let Some(e) = self.next(deadline).await {
            let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
            if e.name == "position" && data["device_id"].as_i64() == Some(device_id) {
                return Some(data);
            }
        }
        None
    }
}

fn devices_in(events: &[Event]) -> HashSet<i64> {
    events
        .iter()
        .filter(|e| e.name == "position")
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok()?["device_id"].as_i64())
        .collect()
}

const FIVE_S: std::time::Duration = std::time::Duration::from_secs(5);
const ONE_S: std::time::Duration = std::time::Duration::from_secs(1);

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn live_stream_sends_positions_in_scope_only(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let mut manager = Sse::open(&app, &w.manager.token).await;
    let mut rep2 = Sse::open(&app, &w.rep2.token).await;
    let mut other_org = Sse::open(&app, &w.admin_b.token).await;

    let fix = (now_s() - Duration::minutes(1), common::IN_T1.0, common::IN_T1.1);
    post_fixes(&app, &w.device.token, &[fix]).await;
    let got = manager.position_of(w.device.id, FIVE_S).await.expect("the T1 manager sees the T1 rep's device");
    assert_eq!(got["rep_id"].as_i64(), Some(w.rep.id));
    assert_eq!(time(&got["fix_time"]), fix.0);
    assert_eq!((got["lat"].as_f64(), got["lon"].as_f64()), (Some(fix.1), Some(fix.2)));
    assert_eq!(got["accuracy_m"].as_f64(), Some(8.0));
    assert!(got["received_at"].is_string() && got["mock"] == false, "{got}");
    for stream in [&mut rep2, &mut other_org] {
        let seen = devices_in(&stream.drain(ONE_S).await);
        assert!(!seen.contains(&w.device.id), "out-of-scope device {} streamed: {seen:?}", w.device.id);
    }

    // The T2 rep's stream works: it gets the rep's own device, which the T1 manager does not.
    let fix2 = (now_s() - Duration::minutes(1), common::IN_T2.0, common::IN_T2.1);
    post_fixes(&app, &w.device2.token, &[fix2]).await;
    assert!(rep2.position_of(w.device2.id, FIVE_S).await.is_some(), "the rep sees their own device");
    assert!(!devices_in(&manager.drain(ONE_S).await).contains(&w.device2.id));
    assert!(devices_in(&other_org.drain(ONE_S).await).is_empty());

    // A stream opened now starts with the last known position of each device in scope.
    let mut late = Sse::open(&app, &w.manager.token).await;
    let first = late.position_of(w.device.id, FIVE_S).await.expect("snapshot on connect");
    assert_eq!(time(&first["fix_time"]), fix.0);
    // An older fix arriving late is not the newest position: it is not streamed.
    post_fixes(&app, &w.device.token, &[(fix.0 - Duration::minutes(5), fix.1, fix.2)]).await;
    assert!(!devices_in(&late.drain(ONE_S).await).contains(&w.device.id));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn live_positions_snapshot_is_scoped(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let t = now_s() - Duration::minutes(2);
    post_fixes(&app, &w.device.token, &[(t, common::IN_T1.0, common::IN_T1.1)]).await;
    post_fixes(&app, &w.device2.token, &[(t, common::IN_T2.0, common::IN_T2.1)]).await;
    post_fixes(&app, &w.device_b.token, &[(t, common::IN_TB.0, common::IN_TB.1)]).await;
    let ids = |res: &Res| -> Vec<i64> {
        res.json.as_array().expect("array").iter().map(|p| p["device_id"].as_i64().expect("device_id")).collect()
    };
    for (who, want) in [
        (&w.manager, vec![w.device.id]),
        (&w.rep, vec![w.device.id]),
        (&w.rep2, vec![w.device2.id]),
        (&w.peer, vec![]),
        (&w.admin, vec![w.device.id, w.device2.id]),
        (&w.admin_b, vec![w.device_b.id]),
    ] {
        let res = app.get("/api/v1/live/positions", Some(&who.token)).await;
        assert_eq!(res.status, 200, "{}", res.describe());
        assert_eq!(ids(&res), want, "{}: {}", who.login, res.describe());
    }
    let res = app.get("/api/v1/live/positions", Some(&w.manager.token)).await;
    let p = &res.json[0];
    assert_eq!((p["rep_id"].as_i64(), time(&p["fix_time"])), (Some(w.rep.id), t));
    assert_eq!(p["lon"].as_f64(), Some(common::IN_T1.1));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn live_needs_a_token_that_may_read_tracks(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    for path in ["/api/v1/live", "/api/v1/live/positions"] {
        assert_problem(&app.get(path, None).await, 401, path);
        assert_problem(&app.get(path, Some(&w.revoked.token)).await, 401, path);
    }
    // A device acts for its rep: the rep's own devices only.
    let res = app.get("/api/v1/live/positions", Some(&w.device.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(!res.text.contains(&format!("\"device_id\":{}", w.device2.id)), "{}", res.text);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn track_and_live_are_in_the_openapi_document(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let doc = app.get("/openapi.json", None).await.json;
    for path in ["/api/v1/reps/{id}/track", "/api/v1/live", "/api/v1/live/positions"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
    let track = &doc["paths"]["/api/v1/reps/{id}/track"]["get"];
    let types: Vec<&String> = track["responses"]["200"]["content"].as_object().expect("content").keys().collect();
    assert_eq!(types, ["application/geo+json", "application/gpx+xml", "text/csv"]);
    let params: Vec<&str> =
        track["parameters"].as_array().expect("parameters").iter().filter_map(|p| p["name"].as_str()).collect();
    for name in ["from", "to", "date", "format", "simplify_m", "max_gap_s"] {
        assert!(params.contains(&name), "{name} not in {params:?}");
    }
    assert!(doc["components"]["schemas"]["Position"].is_object(), "Position schema");
    assert!(doc["tags"].as_array().expect("tags").iter().any(|t| t["name"] == "live"));
}

/// A restarted server still knows where every device was: the last known positions are read back
/// from the database, and the implied-speed check judges the next fix against them.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_restarted_server_knows_the_last_positions(pool: PgPool) {
    let w = World::seed(&pool).await;
    let t = now_s() - Duration::minutes(10);
    let (lat, lon) = common::IN_T1;
    {
        let before = TestApp::spawn(pool.clone()).await;
        post_fixes(&before, &w.device.token, &[(t - Duration::minutes(1), lat, lon), (t, lat, lon + 1e-4)]).await;
    }
    // Another server process: its memory starts empty.
    let app = TestApp::spawn(pool.clone()).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let p = loop {
        let res = app.get("/api/v1/live/positions", Some(&w.manager.token)).await;
        assert_eq!(res.status, 200, "{}", res.describe());
        if let Some(p) = res.json.as_array().and_then(|a| a.first()) {
            break p.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no last position after restart: {}", res.describe());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(p["device_id"].as_i64(), Some(w.device.id));
    assert_eq!(time(&p["fix_time"]), t);
    assert_eq!((p["lat"].as_f64(), p["lon"].as_f64()), (Some(lat), Some(lon + 1e-4)));

    // One minute later and 50 km north: an impossible speed from the fix stored before the restart.
    let jump = t + Duration::minutes(1);
    post_fixes(&app, &w.device.token, &[(jump, lat + 0.45, lon)]).await;
    let flags: i32 = sqlx::query_scalar("SELECT flags FROM pings WHERE device_id = $1 AND fix_time = $2")
        .bind(w.device.id)
        .bind(jump)
        .fetch_one(&pool)
        .await
        .expect("flags");
    assert_eq!(flags & 1, 1, "speed jump flagged against the loaded fix");
}

/// Two server instances on one database behave as one: a fix committed through one is the last
/// known position on the other (snapshot and live stream), and the other judges the implied speed
/// of its next fix against it.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_second_instance_sees_the_positions_the_first_commits(pool: PgPool) {
    let w = World::seed(&pool).await;
    let (a, b) = (TestApp::spawn(pool.clone()).await, TestApp::spawn(pool.clone()).await);
    // Let both listeners start before the fix is committed.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let t = now_s() - Duration::minutes(5);
    let (lat, lon) = common::IN_T1;
    post_fixes(&a, &w.device.token, &[(t, lat, lon)]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let res = b.get("/api/v1/live/positions", Some(&w.manager.token)).await;
        assert_eq!(res.status, 200, "{}", res.describe());
        let known =
            res.json.as_array().and_then(|a| a.first()).map(|p| (p["device_id"].as_i64(), time(&p["fix_time"])));
        if known == Some((Some(w.device.id), t)) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "instance B never learnt the fix: {}", res.describe());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // 50 km in one minute, posted to B: judged against A's fix.
    let jump = t + Duration::minutes(1);
    post_fixes(&b, &w.device.token, &[(jump, lat + 0.45, lon)]).await;
    let flags: i32 = sqlx::query_scalar("SELECT flags FROM pings WHERE device_id = $1 AND fix_time = $2")
        .bind(w.device.id)
        .bind(jump)
        .fetch_one(&pool)
        .await
        .expect("flags");
    assert_eq!(flags & 1, 1, "speed jump flagged against the other instance's fix");
    // And A learns B's fix in turn.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let res = a.get("/api/v1/live/positions", Some(&w.manager.token)).await;
        if res.json.as_array().and_then(|a| a.first()).map(|p| time(&p["fix_time"])) == Some(jump) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "instance A never learnt B's fix: {}", res.describe());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A far date (chrono parses years up to 262142) is a 422 naming `date` on every route that takes
/// a day of pings, not a panic of the handler (the day's end overflowed): issue 25, item 3.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_date_out_of_range_is_a_problem_not_a_panic(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    for route in ["pings", "track"] {
        for date in ["%2B262142-12-31", "-262143-01-01", "1999-12-31", "2101-01-01"] {
            let path = format!("/api/v1/reps/{}/{route}?date={date}", w.rep.id);
            let res = app.get(&path, Some(&w.admin.token)).await;
            assert_eq!((res.status, res.error_fields()), (422, vec!["date".to_owned()]), "{path}: {}", res.describe());
            assert_eq!(res.content_type(), "application/problem+json", "{path}");
        }
    }
    let res = app.get(&format!("/api/v1/reps/{}/pings?date=2026-03-02", w.rep.id), Some(&w.admin.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
}
