//! Map layers over the real server: valid RFC 7946 GeoJSON (lon/lat order, closed rings, the
//! right-hand rule), nothing outside the caller's scope (a T1 manager sees none of T2), bbox and
//! filters, an honest `truncated`, `ETag` / `If-None-Match`, and gzip / brotli.

use crate::common;

use common::{TestApp, World, assert_problem};
use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

/// Twice the signed area of a ring (positive = counter-clockwise).
fn orientation(ring: &[Value]) -> f64 {
    let p: Vec<(f64, f64)> = ring.iter().map(|q| (q[0].as_f64().expect("x"), q[1].as_f64().expect("y"))).collect();
    p.windows(2).map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1).sum()
}

fn check_position(p: &Value, what: &str) {
    let a = p.as_array().unwrap_or_else(|| panic!("{what}: position is not an array: {p}"));
    assert!(a.len() == 2 || a.len() == 3, "{what}: position {p}");
    let (lon, lat) = (a[0].as_f64().expect("lon"), a[1].as_f64().expect("lat"));
    assert!((-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat), "{what}: not lon, lat: {p}");
}

fn check_polygon(rings: &Value, what: &str) {
    let rings = rings.as_array().expect("rings");
    assert!(!rings.is_empty(), "{what}: no rings");
    for (k, ring) in rings.iter().enumerate() {
        let r = ring.as_array().expect("ring");
        assert!(r.len() >= 4, "{what}: a ring needs 4 positions: {ring}");
        assert_eq!(r.first(), r.last(), "{what}: ring not closed: {ring}");
        for p in r {
            check_position(p, what);
        }
        let o = orientation(r);
        if k == 0 {
            assert!(o > 0.0, "{what}: exterior ring must be counter-clockwise: {ring}");
        } else {
            assert!(o < 0.0, "{what}: holes must be clockwise: {ring}");
        }
    }
}

/// Asserts an RFC 7946 `FeatureCollection` and returns its features.
fn features(res: &common::Res) -> Vec<Value> {
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.content_type(), "application/geo+json", "{}", res.describe());
    let fc = &res.json;
    assert_eq!(fc["type"], "FeatureCollection", "{}", res.describe());
    let features = fc["features"].as_array().expect("features").clone();
    assert_eq!(fc["numberReturned"].as_u64(), Some(features.len() as u64));
    assert!(fc["truncated"].is_boolean());
    for f in &features {
        assert_eq!(f["type"], "Feature", "{f}");
        assert!(f["properties"].is_object(), "{f}");
        let g = &f["geometry"];
        let what = format!("feature {}", f["id"]);
        match g["type"].as_str() {
            Some("Point") => check_position(&g["coordinates"], &what),
            Some("LineString") => {
                for p in g["coordinates"].as_array().expect("line") {
                    check_position(p, &what);
                }
            }
            Some("Polygon") => check_polygon(&g["coordinates"], &what),
            Some("MultiPolygon") => {
                for p in g["coordinates"].as_array().expect("polygons") {
                    check_polygon(p, &what);
                }
            }
            other => panic!("{what}: unexpected geometry type {other:?}"),
        }
    }
    if let Some(b) = fc["bbox"].as_array() {
        assert_eq!(b.len(), 4);
        assert!(b[0].as_f64() <= b[2].as_f64() && b[1].as_f64() <= b[3].as_f64(), "bbox {b:?}");
    } else {
        assert!(features.is_empty(), "a non-empty collection has a bbox");
    }
    features
}

fn ids(features: &[Value]) -> Vec<Value> {
    features.iter().map(|f| f["id"].clone()).collect()
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn layers_are_valid_geojson_within_the_callers_scope(pool: PgPool) {
    let w = World::seed(&pool).await;
    // Registered a month ago: in U for today.
    sqlx::query("UPDATE outlet_status_changes SET changed_at = changed_at - interval '30 days'")
        .execute(&pool)
        .await
        .expect("history");
    let mut config = common::test_config("unused");
    config.derive_visits = false;
    let app = TestApp::spawn_with(pool.clone(), config).await;

    // Outlets: the admin sees O1 (T1) and O2 (T2), lon first; the T1 manager only O1.
    let all = features(&app.get("/api/v1/layers/outlets", Some(&w.admin.token)).await);
    assert_eq!(ids(&all), vec![Value::from(w.o1), Value::from(w.o2)]);
    assert_eq!(all[0]["geometry"]["coordinates"], serde_json::json!([common::IN_T1.1, common::IN_T1.0]));
    assert_eq!(all[0]["properties"]["code"], "O1");
    assert_eq!(all[0]["properties"]["status"], "never_visited");
    let t1 = features(&app.get("/api/v1/layers/outlets", Some(&w.manager.token)).await);
    assert_eq!(ids(&t1), vec![Value::from(w.o1)], "a T1 manager sees none of T2");
    // A bbox around T2 only; a filter; an honest cap.
    let in_t2 = features(&app.get("/api/v1/layers/outlets?bbox=116.2,39.9,116.3,40.0", Some(&w.admin.token)).await);
    assert_eq!(ids(&in_t2), vec![Value::from(w.o2)]);
    let visited = features(&app.get("/api/v1/layers/outlets?status=visited", Some(&w.admin.token)).await);
    assert!(visited.is_empty());
    let capped = app.get("/api/v1/layers/outlets?limit=1", Some(&w.admin.token)).await;
    assert_eq!(features(&capped).len(), 1);
    assert_eq!(capped.json["truncated"], true, "{}", capped.describe());
    let whole = app.get("/api/v1/layers/outlets?limit=2", Some(&w.admin.token)).await;
    assert_eq!(whole.json["truncated"], false, "{}", whole.describe());
    // The cap counts what the filters let through.
    let filtered = app.get("/api/v1/layers/outlets?tier=A&limit=1", Some(&w.admin.token)).await;
    assert_eq!((features(&filtered).len(), &filtered.json["truncated"]), (1, &Value::Bool(true)));
    let one_left = app.get("/api/v1/layers/outlets?bbox=116.2,39.9,116.3,40.0&limit=1", Some(&w.admin.token)).await;
    assert_eq!((features(&one_left).len(), &one_left.json["truncated"]), (1, &Value::Bool(false)));

    // Territories: MultiPolygons by the right-hand rule, also T2's, stored clockwise.
    sqlx::query("UPDATE territories SET boundary = ST_Reverse(boundary) WHERE id = $1")
        .bind(w.t2)
        .execute(&pool)
        .await
        .expect("clockwise T2");
    let terr = features(&app.get("/api/v1/layers/territories?zoom=12", Some(&w.admin.token)).await);
    assert_eq!(ids(&terr), vec![Value::from(w.root), Value::from(w.t1), Value::from(w.t2)]);
    let t1_terr = features(&app.get("/api/v1/layers/territories", Some(&w.manager.token)).await);
    assert_eq!(ids(&t1_terr), vec![Value::from(w.t1)]);
    let near_t2 =
        features(&app.get("/api/v1/layers/territories?bbox=116.25,39.95,116.26,39.96", Some(&w.admin.token)).await);
    assert_eq!(ids(&near_t2), vec![Value::from(w.root), Value::from(w.t2)]);

    // H3 coverage hexagons: O1's and O2's cells for the admin, O1's only for the T1 manager.
    let cell =
        |at: (f64, f64)| h3o::LatLng::new(at.0, at.1).expect("position").to_cell(h3o::Resolution::Eight).to_string();
    let hexes = features(&app.get("/api/v1/layers/coverage?h3_res=8", Some(&w.admin.token)).await);
    let mut got: Vec<String> = hexes.iter().filter_map(|f| f["id"].as_str().map(str::to_owned)).collect();
    got.sort();
    let mut want = vec![cell(common::IN_T1), cell(common::IN_T2)];
    want.sort();
    assert_eq!(got, want);
    assert!(hexes.iter().all(|f| f["properties"]["white_space"] == true && f["properties"]["active_outlets"] == 1));
    let t1_hexes = features(&app.get("/api/v1/layers/coverage", Some(&w.manager.token)).await);
    assert_eq!(ids(&t1_hexes), vec![Value::from(cell(common::IN_T1))]);

    // Bad parameters are named; reps and other orgs see nothing.
    for (path, bad) in [
        ("/api/v1/layers/outlets", "bbox=1,2,3"),
        ("/api/v1/layers/outlets", "bbox=116.3,40.0,116.2,39.9"),
        ("/api/v1/layers/outlets", "limit=0"),
        ("/api/v1/layers/outlets", "status=late"),
        ("/api/v1/layers/coverage", "h3_res=4"),
        ("/api/v1/layers/territories", "zoom=25"),
    ] {
        assert_problem(&app.get(&format!("{path}?{bad}"), Some(&w.admin.token)).await, 422, path);
    }
    assert_problem(&app.get("/api/v1/layers/outlets", Some(&w.rep.token)).await, 403, "/api/v1/layers/outlets");
    let other = features(&app.get("/api/v1/layers/outlets", Some(&w.admin_b.token)).await);
    assert!(ids(&other).iter().all(|id| id != &Value::from(w.o1) && id != &Value::from(w.o2)));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn layers_have_etags_and_are_compressed(pool: PgPool) {
    let w = World::seed(&pool).await;
    let mut config = common::test_config("unused");
    config.derive_visits = false;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let path = "/api/v1/layers/territories";
    let first = app.get(path, Some(&w.admin.token)).await;
    let etag = first.header("etag").expect("etag").to_owned();
    assert!(etag.starts_with("W/\"") && etag.ends_with('"'), "weak: the same content plain or compressed: {etag}");
    assert_eq!(first.header("vary"), Some("accept-encoding"));
    let again = app.send(app.request(Method::GET, path, Some(&w.admin.token)).header("if-none-match", &etag)).await;
    assert_eq!((again.status, again.text.as_str()), (304, ""), "{}", again.describe());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let stale =
        app.send(app.request(Method::GET, path, Some(&w.admin.token)).header("if-none-match", "\"other\"")).await;
    assert_eq!(stale.status, 200);
    // Another caller's view is another body, so another ETag.
    let manager = app.get(path, Some(&w.manager.token)).await;
    assert_ne!(manager.header("etag"), Some(etag.as_str()));

    for (encoding, magic) in [("gzip", Some(&[0x1f_u8, 0x8b][..])), ("br", None)] {
        let res = app
            .request(Method::GET, path, Some(&w.admin.token))
            .header("accept-encoding", encoding)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers().get("content-encoding").and_then(|v| v.to_str().ok()), Some(encoding));
        let bytes = res.bytes().await.expect("body");
        // gzip has its magic bytes; brotli none, but it is no longer the plain JSON.
        assert!(magic.is_none_or(|m| bytes.starts_with(m)) && !bytes.starts_with(b"{"), "{encoding} body");
        assert!(bytes.len() < first.text.len(), "{encoding}: {} compressed vs {} bytes", bytes.len(), first.text.len());
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn visits_tracks_and_routes_layers_are_scoped_lines_and_points(pool: PgPool) {
    let w = World::seed(&pool).await;
    let mut config = common::test_config("unused");
    config.derive_visits = false;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let day = chrono::NaiveDate::parse_from_str(common::PING_DAY, "%Y-%m-%d").expect("ping day");

    // Visits: rep (T1) verified at O1, rep2 (T2) suspect at O2, at the outlets' positions.
    // And rep (T1) at O2 (T2): an outlet outside a T1 manager's scope.
    for (rep, outlet, at, verdict) in [
        (w.rep.id, w.o1, common::IN_T1, "verified"),
        (w.rep2.id, w.o2, common::IN_T2, "suspect"),
        (w.rep.id, w.o2, common::IN_T2, "short"),
    ] {
        sqlx::query(
            "INSERT INTO visits (org_id, rep_id, outlet_id, rep_day, arrival, departure, dwell_s, verdict, ping_count,
                                 rule_version, location)
             VALUES ($1, $2, $3, $4, $5, $5 + interval '10 minutes', 600, $6, 10, 'visits-v3',
                     ST_SetSRID(ST_MakePoint($8, $7), 4326))",
        )
        .bind(w.org_a)
        .bind(rep)
        .bind(outlet)
        .bind(day)
        .bind(common::ping_time(0))
        .bind(verdict)
        .bind(at.0)
        .bind(at.1)
        .execute(&pool)
        .await
        .expect("visit");
    }
    let q = format!("from={day}");
    let all = features(&app.get(&format!("/api/v1/layers/visits?{q}"), Some(&w.admin.token)).await);
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["geometry"]["coordinates"], serde_json::json!([common::IN_T1.1, common::IN_T1.0]));
    assert_eq!(
        (all[0]["properties"]["verdict"].as_str(), all[0]["properties"]["outlet_id"].as_i64()),
        (Some("verified"), Some(w.o1))
    );
    let t1 = features(&app.get(&format!("/api/v1/layers/visits?{q}"), Some(&w.manager.token)).await);
    assert_eq!(t1.len(), 1, "a T1 manager sees none of T2's reps, nor T2's outlets: {t1:?}");
    assert_eq!(
        (t1[0]["properties"]["rep_id"].as_i64(), t1[0]["properties"]["outlet_id"].as_i64()),
        (Some(w.rep.id), Some(w.o1))
    );
    let suspect = features(&app.get(&format!("/api/v1/layers/visits?{q}&verdict=suspect"), Some(&w.admin.token)).await);
    assert_eq!(suspect.iter().map(|f| f["properties"]["rep_id"].as_i64()).collect::<Vec<_>>(), vec![Some(w.rep2.id)]);
    let boxed = features(
        &app.get(&format!("/api/v1/layers/visits?{q}&bbox=116.2,39.9,116.3,40.0"), Some(&w.admin.token)).await,
    );
    assert_eq!(boxed.len(), 2);
    let path = "/api/v1/layers/visits";
    assert_problem(&app.get(&format!("{path}?{q}&rep_id={}", w.rep2.id), Some(&w.manager.token)).await, 403, path);
    assert_problem(&app.get(&format!("{path}?{q}&verdict=great"), Some(&w.admin.token)).await, 422, path);

    // Tracks of the ping day: one line per rep through their seeded fixes, lon first.
    let tracks = features(&app.get(&format!("/api/v1/layers/tracks?date={day}"), Some(&w.admin.token)).await);
    let reps: Vec<i64> = tracks.iter().filter_map(|f| f["id"].as_i64()).collect();
    assert!(reps.contains(&w.rep.id) && reps.contains(&w.rep2.id), "{tracks:?}");
    let line = tracks.iter().find(|f| f["id"] == w.rep.id).expect("rep's track");
    assert_eq!(line["geometry"]["type"], "LineString");
    assert_eq!(line["geometry"]["coordinates"][0], serde_json::json!([common::IN_T1.1, common::IN_T1.0]));
    assert_eq!(line["properties"]["fix_count"], 3);
    let t1_tracks = features(&app.get(&format!("/api/v1/layers/tracks?date={day}"), Some(&w.manager.token)).await);
    assert_eq!(t1_tracks.iter().filter_map(|f| f["id"].as_i64()).collect::<Vec<_>>(), vec![w.rep.id]);

    // Planned routes of a day: rep's O1 -> O3 -> O2 (O3 in T1, O2 in T2), rep2's O2 -> O1. The
    // T1 manager sees rep's route without O2, and none of rep2's.
    let o3_at = (39.97, 116.07);
    let o3 = fieldvisit::db::outlets::create(&pool, w.org_a, &common::outlet_fields("O3", "A", o3_at, Some(w.t1)))
        .await
        .expect("o3");
    let route_day = day + chrono::Duration::days(1);
    for (rep, stops) in [(w.rep.id, vec![w.o1, o3, w.o2]), (w.rep2.id, vec![w.o2, w.o1])] {
        let plan = serde_json::json!({"rep_id": rep, "name": "route", "valid_from": route_day, "valid_to": route_day,
            "items": stops.iter().map(|o| serde_json::json!({"outlet_id": o, "visit_date": route_day})).collect::<Vec<_>>()});
        let res = app.post("/api/v1/plans", Some(&w.admin.token), &plan).await;
        assert_eq!(res.status, 201, "{}", res.describe());
    }
    let routes = features(&app.get(&format!("/api/v1/layers/routes?date={route_day}"), Some(&w.admin.token)).await);
    assert_eq!(routes.len(), 2);
    let rep_route = routes.iter().find(|f| f["id"] == w.rep.id).expect("rep's route");
    assert_eq!(
        rep_route["geometry"]["coordinates"],
        serde_json::json!([[common::IN_T1.1, common::IN_T1.0], [o3_at.1, o3_at.0], [common::IN_T2.1, common::IN_T2.0]])
    );
    assert_eq!(rep_route["properties"]["outlet_ids"], serde_json::json!([w.o1, o3, w.o2]));
    let t1_routes =
        features(&app.get(&format!("/api/v1/layers/routes?date={route_day}"), Some(&w.manager.token)).await);
    assert_eq!(t1_routes.iter().filter_map(|f| f["id"].as_i64()).collect::<Vec<_>>(), vec![w.rep.id]);
    assert_eq!(t1_routes[0]["properties"]["outlet_ids"], serde_json::json!([w.o1, o3]), "{t1_routes:?}");
    assert_eq!(
        t1_routes[0]["geometry"]["coordinates"],
        serde_json::json!([[common::IN_T1.1, common::IN_T1.0], [o3_at.1, o3_at.0]])
    );
    assert_problem(&app.get("/api/v1/layers/routes?zoom=30", Some(&w.admin.token)).await, 422, "/api/v1/layers/routes");
}
