//! Extreme numbers, far dates and huge counts sent to every route that reads a number, a date or
//! a time (query, path, body, uploaded file, ping): each is answered with a 4xx problem naming the
//! field, never a 500 or a panic, and the server still answers afterwards (issue 25, item 3).

use crate::common::{TestApp, World, assert_problem};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Asserts a 4xx problem naming `field`: in `errors[].field`, or as `field: ` in the detail (`after: at
/// most ...`, serde's `... JSON: accuracy_m: number out of range`).
fn assert_names(res: &crate::common::Res, field: &str, path: &str) {
    assert!((400..500).contains(&res.status), "{path}: {}", res.describe());
    assert_problem(res, res.status, path.split('?').next().unwrap_or(path));
    let detail = res.json["detail"].as_str().unwrap_or("");
    let named = res.error_fields().iter().any(|f| f == field)
        || detail.starts_with(&format!("{field}: "))
        || detail.contains(&format!(" {field}: "));
    assert!(named, "{path}: the problem must name `{field}`: {}", res.describe());
}

/// `base` with the member at JSON pointer `pointer` set to `value`.
fn set(base: &Value, pointer: &str, value: Value) -> Value {
    let mut v = base.clone();
    if let Some(slot) = v.pointer_mut(pointer) {
        *slot = value;
    } else if let Some((parent, key)) = pointer.rsplit_once('/')
        && let Some(obj) = v.pointer_mut(parent).and_then(Value::as_object_mut)
    {
        obj.insert(key.to_owned(), value);
    }
    v
}

/// A check-out at chrono's last instant was stored and reading the check-in back added the
/// visit slack to it: a panic on that answer and on every later read of the rep's check-ins.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_check_in_at_the_ends_of_time_is_a_problem(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let token = Some(w.device.token.as_str());
    let (lat, lon) = crate::common::IN_T1;
    let now = chrono::Utc::now().to_rfc3339();
    let base = json!({"outlet_id": w.o1, "checked_in_at": now, "lat": lat, "lon": lon});
    let out = set(&set(&base, "/out_lat", json!(lat)), "/out_lon", json!(lon));
    let far = ["+262142-12-31T23:59:59Z", "-262143-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59Z"];
    for (i, t) in far.iter().enumerate() {
        let path = format!("/api/v1/checkins/app-far-in-{i:04}");
        let res = app.call(reqwest::Method::PUT, &path, token, Some(&set(&base, "/checked_in_at", json!(t)))).await;
        assert_names(&res, "checked_in_at", &path);
        let path = format!("/api/v1/checkins/app-far-out-{i:04}");
        let res = app.call(reqwest::Method::PUT, &path, token, Some(&set(&out, "/checked_out_at", json!(t)))).await;
        assert_names(&res, "checked_out_at", &path);
    }
    for (field, v) in [("accuracy_m", json!(1e308)), ("lat", json!(1e308)), ("lon", json!(-1e308))] {
        let path = format!("/api/v1/checkins/app-far-{field}");
        let res = app.call(reqwest::Method::PUT, &path, token, Some(&set(&base, &format!("/{field}"), v))).await;
        assert_names(&res, field, &path);
    }
    let path = format!("/api/v1/reps/{}/checkins", w.rep.id);
    let res = app.get(&path, Some(&w.admin.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
}

/// A JPEG whose EXIF says `GPSDateStamp` (ASCII) and `GPSTimeStamp` (h, m, s).
fn jpeg_with_gps_time(date: &str, (h, m, s): (u32, u32, u32)) -> Vec<u8> {
    use exif::{Field, In, Rational, Tag, Value as ExifValue};
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 128]));
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90))
        .expect("encode");
    let stamp = Field { tag: Tag::GPSDateStamp, ifd_num: In::PRIMARY, value: ExifValue::Ascii(vec![date.into()]) };
    let hms = [h, m, s].map(|n| Rational { num: n, denom: 1 }).to_vec();
    let clock = Field { tag: Tag::GPSTimeStamp, ifd_num: In::PRIMARY, value: ExifValue::Rational(hms) };
    let mut writer = exif::experimental::Writer::new();
    writer.push_field(&stamp);
    writer.push_field(&clock);
    let mut tiff = std::io::Cursor::new(Vec::new());
    writer.write(&mut tiff, false).expect("EXIF");
    let app1 = [&b"Exif\0\0"[..], tiff.get_ref()].concat();
    let len = u16::try_from(app1.len() + 2).expect("small EXIF");
    [&jpeg[..2], &[0xFF, 0xE1], &len.to_be_bytes(), &app1, &jpeg[2..]].concat()
}

/// A photo's EXIF GPS date at chrono's ends (`%Y` reads `-262143`): PostgreSQL cannot store the
/// instant, and the whole photo was refused (422 "out of the range"); now the time is ignored, as
/// any malformed EXIF time is.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_photo_dated_at_the_end_of_time_is_kept_without_its_time(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let path = format!("/api/v1/outlets/{}/photos", w.o1);
    for (date, hms) in [("+262142:12:31", (23, 59, 59)), ("-262143:01:01", (0, 0, 1)), ("2026:03:02", (10, 5, 0))] {
        let part = reqwest::multipart::Part::bytes(jpeg_with_gps_time(date, hms)).file_name("a.jpg");
        let form = reqwest::multipart::Form::new().part("photo", part);
        let rb = app.request(reqwest::Method::POST, &path, Some(&w.manager.token)).multipart(form);
        let res = app.send(rb).await;
        assert_eq!(res.status, 201, "{date}: {}", res.describe());
    }
}

/// Tiers and channel types are numbered with a `u16` in the coverage tallies: an org could create
/// tiers without end until the numbers wrapped. Now at most `MAX_TIERS`; a known tier is still
/// replaced.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn an_org_holds_a_bounded_number_of_tiers(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let tier = json!({"required_visits": 1, "cycle_days": 28, "min_dwell_s": 60, "default_radius_m": 50.0});
    let held = app.get("/api/v1/tier-policies", Some(&w.admin.token)).await.json.as_array().map_or(0, Vec::len);
    let max = fieldvisit::domain::outlet::MAX_TIERS;
    for i in held..max {
        let res = app.put(&format!("/api/v1/tier-policies/T{i}"), Some(&w.admin.token), &tier).await;
        assert_eq!(res.status, 200, "tier {i}: {}", res.describe());
    }
    let path = "/api/v1/tier-policies/ONE-TOO-MANY";
    assert_names(&app.put(path, Some(&w.admin.token), &tier).await, "tier", path);
    let res = app.put(&format!("/api/v1/tier-policies/T{}", max - 1), Some(&w.admin.token), &tier).await;
    assert_eq!(res.status, 200, "a known tier is replaced: {}", res.describe());
}

/// A track period at chrono's ends (both bounds far, so the 31-day rule does not catch it) is a
/// 422 naming the bound, as a far `date` is.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_track_period_at_the_ends_of_time_is_a_problem(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let periods = [
        ("from", "-262143-01-01T00:00:00Z", "-262143-01-02T00:00:00Z"),
        ("from", "%2B262142-12-30T00:00:00Z", "%2B262142-12-31T23:59:59Z"),
        ("to", "2100-12-31T00:00:00Z", "%2B262142-12-31T23:59:59Z"),
        ("from", "1999-12-31T00:00:00Z", "2000-01-01T00:00:00Z"),
        ("to", "2100-12-31T12:00:00Z", "2101-01-01T00:00:01Z"),
    ];
    for route in ["pings", "track"] {
        for (field, from, to) in periods {
            let path = format!("/api/v1/reps/{}/{route}?from={from}&to={to}", w.rep.id);
            assert_names(&app.get(&path, Some(&w.admin.token)).await, field, &path);
        }
        // The end of the last day is the exclusive end of a period.
        let path = format!("/api/v1/reps/{}/{route}?from=2100-12-31T00:00:00Z&to=2101-01-01T00:00:00Z", w.rep.id);
        let res = app.get(&path, Some(&w.admin.token)).await;
        assert_eq!(res.status, 200, "{path}: {}", res.describe());
    }
}

/// Values no field accepts: integer and float extremes, non-numbers and dates at chrono's limits.
const EXTREMES: &[&str] = &[
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "99999999999999999999999",
    "1e308",
    "-1e308",
    "NaN",
    "inf",
    "-inf",
    "%2B262142-12-31",
    "-262143-01-01",
    "%2B262142-12-31T23:59:59Z",
    "-262143-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "64",
    "-1",
];

/// Every GET route with the query parameters it reads (`{rep}`, `{t}`, `{o}` filled in).
const ROUTES: &[(&str, &[&str])] = &[
    ("/api/v1/layers/outlets", &["from", "to", "limit"]),
    ("/api/v1/layers/coverage", &["from", "to", "h3_res", "limit"]),
    ("/api/v1/layers/territories", &["zoom", "limit"]),
    ("/api/v1/layers/visits", &["from", "to", "rep_id", "limit"]),
    ("/api/v1/layers/tracks", &["date", "rep_id", "zoom", "limit"]),
    ("/api/v1/layers/routes", &["date", "rep_id", "zoom", "limit"]),
    ("/api/v1/outlets/nearest", &["lat", "lon", "k"]),
    ("/api/v1/outlets/within", &["lat", "lon", "radius_m", "limit"]),
    ("/api/v1/outlets", &["radius", "territory", "limit", "after"]),
    ("/api/v1/outlets?near=39.95,116.05", &["radius"]),
    ("/api/v1/reps/{rep}/visits", &["from", "to"]),
    ("/api/v1/territories/{t}/coverage", &["from", "to", "h3_res"]),
    ("/api/v1/territories/{t}/outlet-status", &["from", "to", "limit", "offset"]),
    ("/api/v1/reps/{rep}/route-coverage", &["date", "within_m"]),
    ("/api/v1/reps/{rep}/compliance", &["from", "to"]),
    ("/api/v1/territories/{t}/compliance", &["from", "to"]),
    ("/api/v1/territories/{t}/outlet-frequency", &["from", "to", "below_pct", "limit", "offset"]),
    ("/api/v1/outlets/{o}/visits", &["from", "to"]),
    ("/api/v1/reps/{rep}/reminders", &["date", "horizon_days", "limit"]),
    ("/api/v1/reminders", &["date", "horizon_days", "limit", "territory_id"]),
    ("/api/v1/plans", &["rep_id"]),
    ("/api/v1/reps/{rep}/plan", &["date"]),
    ("/api/v1/reps/{rep}/plan-proposal", &["date", "max_outlets", "start_lat", "start_lon"]),
    ("/api/v1/territories/{t}/assessment", &["month"]),
    ("/api/v1/exports", &["limit", "after"]),
    ("/api/v1/reps/{rep}/checkins", &["from", "to"]),
    ("/api/v1/checkins/claims", &["from", "to"]),
    ("/api/v1/devices", &["limit", "after"]),
    ("/api/v1/access-log", &["rep_id", "limit", "after"]),
    ("/api/v1/audit-log", &["limit", "after"]),
    ("/api/v1/users", &["limit", "after"]),
    ("/api/v1/territories", &["limit", "after"]),
    ("/api/v1/reps/{rep}/pings", &["date", "from", "to"]),
    ("/api/v1/reps/{rep}/pings?from=2026-03-02T00:00:00Z", &["to"]),
    ("/api/v1/reps/{rep}/pings?to=2026-03-02T00:00:00Z", &["from"]),
    ("/api/v1/reps/{rep}/track", &["date", "from", "to", "max_gap_s", "simplify_m"]),
    ("/api/v1/reps/{rep}/track?from=2026-03-02T00:00:00Z", &["to"]),
    ("/api/v1/reps/{rep}/track?to=2026-03-02T00:00:00Z", &["from"]),
    ("/api/v1/outlets/{o}/photos", &["limit", "after"]),
    ("/api/v1/outlets/{o}/outcomes", &["limit", "after"]),
    ("/api/v1/outlets/{o}/attribute-changes", &["limit", "after"]),
    ("/ogc/collections/outlets/items", &["limit", "after"]),
    ("/ogc/collections/territories/items", &["limit", "after"]),
    ("/tiles/outlets/3/6/3.mvt", &["from", "to"]),
    ("/tiles/coverage/3/6/3.mvt", &["from", "to", "h3_res"]),
];

/// Path segments that carry a number.
const PATHS: &[&str] = &[
    "/api/v1/reps/{v}/visits",
    "/api/v1/territories/{v}/coverage",
    "/api/v1/outlets/{v}",
    "/api/v1/plans/{v}",
    "/ogc/collections/outlets/items/{v}",
    "/tiles/outlets/{v}/0/0.mvt",
    "/tiles/outlets/22/{v}/0.mvt",
    "/tiles/outlets/22/0/{v}.mvt",
    "/tiles/coverage/{v}/0/0.mvt",
];

fn fill(path: &str, w: &World) -> String {
    path.replace("{rep}", &w.rep.id.to_string()).replace("{t}", &w.t1.to_string()).replace("{o}", &w.o1.to_string())
}

/// Fails the test listing every failure, if there is one.
fn assert_no_failures(failures: &[String]) {
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// A failure to report: a server error, or an error that is not problem+json.
fn failure(path: &str, res: &crate::common::Res) -> Option<String> {
    let bad = res.status >= 500 || (res.status >= 400 && !res.content_type().starts_with("application/problem+json"));
    bad.then(|| format!("{path}: {}", res.describe()))
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn extreme_query_and_path_values_are_problems_not_server_errors(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let mut failures = Vec::new();
    for (route, params) in ROUTES {
        let route = fill(route, &w);
        let sep = if route.contains('?') { '&' } else { '?' };
        for param in *params {
            for v in EXTREMES {
                let path = format!("{route}{sep}{param}={v}");
                let res = app.get(&path, Some(&w.admin.token)).await;
                failures.extend(failure(&path, &res));
            }
        }
    }
    for path in PATHS {
        for v in EXTREMES.iter().filter(|v| !v.contains('%')) {
            let path = path.replace("{v}", v);
            let res = app.get(&path, Some(&w.admin.token)).await;
            failures.extend(failure(&path, &res));
        }
    }
    assert_no_failures(&failures);
    let res = app.get("/healthz", None).await;
    assert_eq!(res.status, 200, "the server still answers: {}", res.describe());
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn ogc_paging_past_the_end_of_the_numbers_is_a_problem(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    for collection in ["outlets", "territories"] {
        let path = format!("/ogc/collections/{collection}/items?after={}&limit={}", i64::MAX, i64::MAX);
        let res = app.get(&path, Some(&w.admin.token)).await;
        assert_names(&res, "after", &path);
    }
}

/// JSON values no body field accepts.
fn body_extremes() -> Vec<Value> {
    vec![
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1e308),
        json!(-1e308),
        json!("NaN"),
        json!("+262142-12-31"),
        json!("-262143-01-01"),
        json!("+262142-12-31T23:59:59Z"),
        json!("-262143-01-01T00:00:00Z"),
        json!("0000-01-01T00:00:00Z"),
        json!(-1),
    ]
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn extreme_body_values_are_problems_not_server_errors(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let (lat, lon) = crate::common::IN_T1;
    let now = chrono::Utc::now();
    let item = json!({"outlet_id": w.o1, "weekday": 1, "week_of_cycle": 1, "expected_duration_s": 600, "seq": 1});
    let plan = json!({"rep_id": w.rep.id, "name": "Sweep", "cycle_weeks": 2, "valid_from": now.date_naive(),
                      "items": [item]});
    let dated = set(&plan, "/items/0", json!({"outlet_id": w.o1, "visit_date": now.date_naive()}));
    let created = app.post("/api/v1/plans", Some(&w.admin.token), &plan).await;
    assert_eq!(created.status, 201, "{}", created.describe());
    let revision = json!({"name": "Sweep", "items": [item]});
    let checkin = json!({"outlet_id": w.o1, "checked_in_at": now - chrono::Duration::minutes(5), "lat": lat,
                         "lon": lon, "accuracy_m": 10.0, "checked_out_at": now, "out_lat": lat, "out_lon": lon,
                         "out_accuracy_m": 10.0});
    let ping = json!([{"fix_time": now - chrono::Duration::minutes(1), "lat": lat, "lon": lon, "accuracy_m": 8.0,
                       "speed_mps": 1.0, "heading_deg": 10.0, "altitude_m": 50.0, "battery_pct": 50.0}]);
    let tier = json!({"required_visits": 4, "cycle_days": 28, "min_dwell_s": 300, "default_radius_m": 50.0});
    let outlet = json!({"code": "SWEEP", "name": "Hall", "channel_type": "business_hall", "tier": "A",
                        "lat": lat, "lon": lon, "radius_m": 60});
    let export = json!({"scope": {"kind": "territory", "id": w.t1}, "from": now.date_naive(), "to": now.date_naive()});
    let period = json!({"from": now.date_naive(), "to": now.date_naive()});
    let privacy = json!({"home": {"lat": lat, "lon": lon}, "home_radius_m": 300});
    let settings = json!({});
    let (admin, device) = (w.admin.token.as_str(), w.device.token.as_str());
    let plan_path = format!("/api/v1/plans/{}", created.json["id"]);
    let privacy_path = format!("/api/v1/users/{}/privacy", w.rep.id);
    let cases: Vec<(reqwest::Method, String, &str, &Value, &[&str])> = vec![
        (
            reqwest::Method::POST,
            "/api/v1/plans".into(),
            admin,
            &plan,
            &[
                "/rep_id",
                "/cycle_weeks",
                "/valid_from",
                "/valid_to",
                "/items/0/outlet_id",
                "/items/0/weekday",
                "/items/0/week_of_cycle",
                "/items/0/expected_duration_s",
                "/items/0/seq",
            ],
        ),
        (reqwest::Method::POST, "/api/v1/plans".into(), admin, &dated, &["/items/0/visit_date", "/valid_to"]),
        (
            reqwest::Method::PUT,
            plan_path,
            admin,
            &revision,
            &["/cycle_weeks", "/valid_to", "/items/0/weekday", "/items/0/week_of_cycle", "/items/0/seq"],
        ),
        (
            reqwest::Method::PUT,
            "/api/v1/checkins/app-sweep-{n}".into(),
            device,
            &checkin,
            &[
                "/outlet_id",
                "/checked_in_at",
                "/checked_out_at",
                "/lat",
                "/lon",
                "/accuracy_m",
                "/out_lat",
                "/out_accuracy_m",
            ],
        ),
        (
            reqwest::Method::POST,
            "/api/v1/pings".into(),
            device,
            &ping,
            &[
                "/0/fix_time",
                "/0/lat",
                "/0/lon",
                "/0/accuracy_m",
                "/0/speed_mps",
                "/0/heading_deg",
                "/0/altitude_m",
                "/0/battery_pct",
            ],
        ),
        (
            reqwest::Method::PUT,
            "/api/v1/tier-policies/ZA".into(),
            admin,
            &tier,
            &["/required_visits", "/cycle_days", "/min_dwell_s", "/default_radius_m"],
        ),
        (
            reqwest::Method::POST,
            "/api/v1/outlets".into(),
            admin,
            &outlet,
            &["/lat", "/lon", "/radius_m", "/territory_id"],
        ),
        (reqwest::Method::POST, "/api/v1/exports".into(), admin, &export, &["/scope/id", "/from", "/to"]),
        (reqwest::Method::POST, "/api/v1/visits/recompute".into(), admin, &period, &["/from", "/to"]),
        (
            reqwest::Method::PUT,
            "/api/v1/settings/pings".into(),
            admin,
            &settings,
            &["/retention_days", "/max_future_s", "/max_speed_mps", "/utc_offset_minutes", "/home_radius_m"],
        ),
        (reqwest::Method::PUT, privacy_path, admin, &privacy, &["/home/lat", "/home/lon", "/home_radius_m"]),
    ];
    let (mut failures, mut tried) = (Vec::new(), 0);
    for (method, path, token, base, pointers) in &cases {
        // The unchanged body is accepted: the extremes below are what is refused.
        let res = app.call(method.clone(), &path.replace("{n}", "base"), Some(token), Some(base)).await;
        assert!(res.status < 300, "{method} {path} {base}: {}", res.describe());
        for pointer in *pointers {
            for v in body_extremes() {
                let body = set(base, pointer, v.clone());
                // A new check-in each time (a retry would only return the stored one).
                let path = path.replace("{n}", &format!("{tried:06}"));
                tried += 1;
                let res = app.call(method.clone(), &path, Some(token), Some(&body)).await;
                failures.extend(failure(&format!("{method} {path} {pointer}={v}"), &res));
            }
        }
    }
    assert_no_failures(&failures);
}

/// OsmAnd query fields and OwnTracks JSON members at their extremes: each fix is answered (refused
/// or stored), never with a server error.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn extreme_phone_values_are_answered_not_server_errors(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let mut failures = Vec::new();
    let fix = [
        ("timestamp", "1700000000"),
        ("lat", "39.95"),
        ("lon", "116.05"),
        ("speed", "1"),
        ("bearing", "10"),
        ("altitude", "5"),
        ("accuracy", "5"),
        ("batt", "50"),
        ("hdop", "1"),
    ];
    let all: Vec<String> = fix.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let res = app.send(app.client.get(app.url(&format!("/osmand?id={}&{}", w.device.osmand_id, all.join("&"))))).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    for (param, _) in fix {
        for v in EXTREMES {
            let others: Vec<String> =
                fix.iter().filter(|(k, _)| *k != param).map(|(k, v)| format!("{k}={v}")).collect();
            let path = format!("/osmand?id={}&{}&{param}={v}", w.device.osmand_id, others.join("&"));
            let res = app.send(app.client.get(app.url(&path))).await;
            failures.extend(failure(&path, &res));
        }
    }
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{}", w.device.owntracks_user, w.device.owntracks_password)
        )
    );
    let location = json!({"_type": "location", "lat": 39.95, "lon": 116.05, "tst": 1_700_000_000, "acc": 5,
                          "vel": 3, "cog": 10, "alt": 5, "batt": 50, "created_at": 1_700_000_000});
    let res = app.send(app.client.post(app.url("/owntracks")).header("authorization", &auth).json(&location)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    for pointer in ["/tst", "/lat", "/lon", "/acc", "/vel", "/cog", "/alt", "/batt", "/created_at"] {
        for v in body_extremes() {
            let body = set(&location, pointer, v.clone());
            let res = app.send(app.client.post(app.url("/owntracks")).header("authorization", &auth).json(&body)).await;
            failures.extend(failure(&format!("/owntracks {pointer}={v}"), &res));
        }
    }
    assert_no_failures(&failures);
}

/// `FV_VISIT_LEDGER_DAYS` takes any u32; a horizon that far back overflowed the date arithmetic
/// when the ledger loaded (a panic on the first map or tile request of each org).
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_visit_ledger_reaching_past_chronos_first_day_keeps_everything(pool: PgPool) {
    let w = World::seed(&pool).await;
    let config = fieldvisit::config::Config { visit_ledger_days: u32::MAX, ..crate::common::test_config("") };
    let app = TestApp::spawn_with(pool, config).await;
    for path in ["/api/v1/layers/outlets", "/tiles/outlets/0/0/0.mvt"] {
        let res = app.get(path, Some(&w.admin.token)).await;
        assert_eq!(res.status, 200, "{path}: {}", res.describe());
    }
}
