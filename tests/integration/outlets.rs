//! Outlets and territories API beyond the basics: GeoJSON, proximity filter, move history,
//! close/suspend/reopen, PATCH clearing, territory GeoJSON import and summary, boundary checks.

use crate::common;

use common::{IN_T1, IN_T2, TestApp, World, assert_problem, square};
use serde_json::{Value, json};
use sqlx::PgPool;

fn new_outlet(code: &str, (lat, lon): (f64, f64)) -> Value {
    json!({"code": code, "name": format!("Hall {code}"), "channel_type": "business_hall", "tier": "A", "lat": lat, "lon": lon})
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn outlets_are_served_as_geojson_when_asked(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let res = app
        .send(
            app.request(reqwest::Method::GET, "/api/v1/outlets", Some(&w.admin.token))
                .header("accept", "application/geo+json"),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(res.content_type().starts_with("application/geo+json"), "{}", res.content_type());
    assert_eq!(res.json["type"], "FeatureCollection");
    let features = res.json["features"].as_array().expect("features");
    let f = features.iter().find(|f| f["id"] == w.o1).expect("o1 is a feature");
    assert_eq!(f["geometry"]["type"], "Point");
    assert_eq!(f["geometry"]["coordinates"], json!([IN_T1.1, IN_T1.0]), "GeoJSON positions are [lon, lat]");
    assert_eq!(f["properties"]["code"], "O1");
    assert!(f["properties"].get("lat").is_none());

    let one = app
        .send(
            app.request(reqwest::Method::GET, &format!("/api/v1/outlets/{}", w.o1), Some(&w.admin.token))
                .header("accept", "application/geo+json"),
        )
        .await;
    assert_eq!(one.json["type"], "Feature");
    assert_eq!(one.json["id"], w.o1);
    // Plain JSON stays the default.
    let plain = app.get(&format!("/api/v1/outlets/{}", w.o1), Some(&w.admin.token)).await;
    assert!(plain.content_type().starts_with("application/json"));
    assert_eq!(plain.json["lat"], json!(IN_T1.0));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn near_filter_is_in_metres_on_the_sphere(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    // 0.001 deg of latitude is ~111 m: one outlet 100 m north of o1 (in T1), one ~330 m north.
    let close = (IN_T1.0 + 0.0009, IN_T1.1);
    let far = (IN_T1.0 + 0.003, IN_T1.1);
    let c = app.post("/api/v1/outlets", Some(&w.admin.token), &new_outlet("NEAR-1", close)).await;
    let f = app.post("/api/v1/outlets", Some(&w.admin.token), &new_outlet("NEAR-2", far)).await;
    assert_eq!((c.status, f.status), (201, 201), "{} {}", c.describe(), f.describe());
    let path = |r: u32| format!("/api/v1/outlets?near={},{}&radius={r}", IN_T1.0, IN_T1.1);
    let ids = app.get(&path(150), Some(&w.admin.token)).await.ids();
    assert_eq!(ids, vec![w.o1, c.json["id"].as_i64().expect("id")]);
    let ids = app.get(&path(400), Some(&w.admin.token)).await.ids();
    assert_eq!(ids.len(), 3);
    let ids = app.get(&path(50), Some(&w.admin.token)).await.ids();
    assert_eq!(ids, vec![w.o1]);
    // Scope still applies: the T1 manager near T2's outlet sees nothing.
    let t2 = format!("/api/v1/outlets?near={},{}&radius=1000", IN_T2.0, IN_T2.1);
    assert!(app.get(&t2, Some(&w.manager.token)).await.ids().is_empty());
    for bad in ["near=abc", "near=91,0", &format!("near={},{}&radius=0", IN_T1.0, IN_T1.1)] {
        let res = app.get(&format!("/api/v1/outlets?{bad}"), Some(&w.admin.token)).await;
        assert_problem(&res, 422, "/api/v1/outlets");
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn moving_an_outlet_keeps_its_history_and_reassigns_its_territory(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let res = app
        .patch(&format!("/api/v1/outlets/{}", w.o1), Some(&w.admin.token), &json!({"lat": IN_T2.0, "lon": IN_T2.1}))
        .await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["territory_id"], w.t2, "re-pinned into T2 by point-in-polygon");
    let h = app.get(&format!("/api/v1/outlets/{}/history", w.o1), Some(&w.admin.token)).await;
    assert_eq!(h.status, 200, "{}", h.describe());
    let locs = h.json["locations"].as_array().expect("locations");
    assert_eq!(locs.len(), 2);
    assert_eq!(locs[0]["lat"], json!(IN_T1.0));
    assert!(!locs[0]["valid_to"].is_null(), "the old location is closed");
    assert_eq!(locs[0]["valid_to"], locs[1]["valid_from"], "no gap between locations");
    assert!(locs[1]["valid_to"].is_null());
    // The T1 manager no longer sees it; moving it into T2 themselves is forbidden too.
    let res = app.get(&format!("/api/v1/outlets/{}", w.o1), Some(&w.manager.token)).await;
    assert_eq!(res.status, 403);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn close_suspend_reopen_are_recorded(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let base = format!("/api/v1/outlets/{}", w.o1);
    let res = app.post(&format!("{base}/close"), Some(&w.manager.token), &json!({"reason": "shop shut down"})).await;
    assert_eq!((res.status, res.json["status"].as_str()), (200, Some("closed")), "{}", res.describe());
    let res = app.send(app.request(reqwest::Method::POST, &format!("{base}/suspend"), Some(&w.manager.token))).await;
    assert_eq!(
        (res.status, res.json["status"].as_str()),
        (200, Some("suspended")),
        "empty body is fine: {}",
        res.describe()
    );
    // A body that is not an object or null is refused, not read by position (`[null]` used to
    // be a struct with no reason: the 200-example fuzz run).
    let res = app.post(&format!("{base}/reopen"), Some(&w.manager.token), &json!([null])).await;
    assert_problem(&res, 422, &format!("{base}/reopen"));
    let res = app.post(&format!("{base}/reopen"), Some(&w.manager.token), &json!({})).await;
    assert_eq!(res.json["status"], "active");
    let statuses: Vec<String> = app.get(&format!("{base}/history"), Some(&w.manager.token)).await.json["statuses"]
        .as_array()
        .expect("statuses")
        .iter()
        .map(|s| s["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(statuses, ["active", "closed", "suspended", "active"]);
    let log = app.get("/api/v1/audit-log", Some(&w.admin.token)).await;
    let actions: Vec<&str> =
        log.json["items"].as_array().expect("items").iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(
        actions.contains(&"outlet.closed")
            && actions.contains(&"outlet.suspended")
            && actions.contains(&"outlet.active")
    );
    // Auditors may not, other territories may not, junk bodies are 422.
    assert_eq!(app.post(&format!("{base}/close"), Some(&w.auditor.token), &json!({})).await.status, 403);
    assert_eq!(
        app.post(&format!("/api/v1/outlets/{}/close", w.o2), Some(&w.manager.token), &json!({})).await.status,
        403
    );
    let res = app.post(&format!("{base}/close"), Some(&w.manager.token), &json!({"why": 1})).await;
    assert_problem(&res, 422, &format!("{base}/close"));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn patch_null_clears_optional_fields(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let base = format!("/api/v1/outlets/{}", w.o1);
    let res = app.patch(&base, Some(&w.admin.token), &json!({"radius_m": 80, "address": "1 Main St"})).await;
    assert_eq!((res.json["radius_m"].as_f64(), res.json["address"].as_str()), (Some(80.0), Some("1 Main St")));
    let res = app.patch(&base, Some(&w.admin.token), &json!({"name": "Renamed"})).await;
    assert_eq!(res.json["radius_m"].as_f64(), Some(80.0), "absent keeps");
    let res = app.patch(&base, Some(&w.admin.token), &json!({"radius_m": null, "address": null})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(res.json["radius_m"].is_null(), "null clears to the tier default");
    assert!(res.json["address"].is_null());
    assert_eq!(res.json["name"], "Renamed");
    let res = app.patch(&base, Some(&w.admin.token), &json!({"radius_m": 0})).await;
    assert_problem(&res, 422, &base);
    assert_eq!(res.error_fields(), ["radius_m"]);
}

fn feature(code: &str, parent: Option<&str>, level: &str, geometry: &Value) -> Value {
    json!({"type": "Feature", "geometry": geometry,
           "properties": {"code": code, "name": format!("Area {code}"), "level": level, "parent_code": parent}})
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn territories_import_from_geojson_in_any_order_and_reassign_outlets(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    // A grid inside T1 holding o1, listed before a new district that is its parent.
    let fc = json!({"type": "FeatureCollection", "features": [
        feature("T1-G1", Some("T3"), "grid", &square(116.04, 39.94, 116.06, 39.96)),
        feature("T3", Some("T1"), "district", &square(116.01, 39.91, 116.09, 39.99)),
    ]});
    let res = app.post("/api/v1/territories/import", Some(&w.admin.token), &fc).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!((res.json["created"].as_i64(), res.json["updated"].as_i64()), (Some(2), Some(0)));
    assert_eq!(res.json["outlets_reassigned"], 1, "o1 now belongs to the grid");
    let o1 = app.get(&format!("/api/v1/outlets/{}", w.o1), Some(&w.admin.token)).await;
    let g1: i64 =
        sqlx::query_scalar("SELECT id FROM territories WHERE code = 'T1-G1'").fetch_one(&pool).await.expect("g1");
    assert_eq!(o1.json["territory_id"], g1);
    // The T1 manager still sees it (the grid is below T1).
    assert_eq!(app.get(&format!("/api/v1/outlets/{}", w.o1), Some(&w.manager.token)).await.status, 200);
    // Re-import updates by code.
    let res = app.post("/api/v1/territories/import", Some(&w.admin.token), &fc).await;
    assert_eq!((res.json["created"].as_i64(), res.json["updated"].as_i64()), (Some(0), Some(2)));

    let summary = app.get(&format!("/api/v1/territories/{}/summary", w.t1), Some(&w.manager.token)).await;
    assert_eq!(summary.status, 200, "{}", summary.describe());
    assert_eq!(summary.json["outlets"], 1);
    assert_eq!(summary.json["by_tier"]["A"], 1);
    assert_eq!(app.get(&format!("/api/v1/territories/{}/summary", w.t2), Some(&w.manager.token)).await.status, 403);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn territory_import_is_all_or_nothing_and_names_each_bad_feature(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM territories").fetch_one(&pool).await.expect("count");
    let bowtie = json!({"type": "Polygon", "coordinates": [[[116.0, 39.9], [116.1, 40.0], [116.1, 39.9], [116.0, 40.0], [116.0, 39.9]]]});
    let open =
        json!({"type": "Polygon", "coordinates": [[[116.0, 39.9], [116.1, 39.9], [116.1, 40.0], [116.0, 40.0]]]});
    let far = json!({"type": "Polygon", "coordinates": [[[116.0, 39.9], [216.1, 39.9], [116.1, 40.0], [116.0, 39.9]]]});
    let fc = json!({"type": "FeatureCollection", "features": [
        feature("OK-1", Some("R"), "district", &square(116.31, 39.81, 116.39, 39.89)),
        feature("BAD-1", Some("R"), "district", &bowtie),
        feature("BAD-2", Some("R"), "district", &open),
        feature("BAD-3", Some("R"), "district", &far),
        feature("BAD-4", Some("R"), "district", &json!({"type": "Point", "coordinates": [116.0, 39.9]})),
    ]});
    let res = app.post("/api/v1/territories/import", Some(&w.admin.token), &fc).await;
    assert_problem(&res, 422, "/api/v1/territories/import");
    let errors = res.json["errors"].as_array().expect("errors");
    let by_index: Vec<(i64, &str, &str)> = errors
        .iter()
        .map(|e| {
            (e["index"].as_i64().unwrap_or(-1), e["field"].as_str().unwrap_or(""), e["reason"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(
        by_index.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>(),
        [(1, "geometry"), (2, "geometry"), (3, "geometry"), (4, "geometry")]
    );
    assert!(by_index[0].2.to_lowercase().contains("self-intersection"), "{}", by_index[0].2);
    assert!(by_index[1].2.contains("not closed"), "{}", by_index[1].2);
    assert!(by_index[2].2.contains("out of range"), "{}", by_index[2].2);
    assert!(by_index[3].2.contains("Point"), "{}", by_index[3].2);
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM territories").fetch_one(&pool).await.expect("count");
    assert_eq!(before, after, "nothing written");

    // A parent that exists nowhere; a T1-scoped admin importing under T2.
    let orphan = json!({"type": "FeatureCollection", "features": [feature("X", Some("NOPE"), "grid", &square(116.0, 39.9, 116.01, 39.91))]});
    let res = app.post("/api/v1/territories/import", Some(&w.admin.token), &orphan).await;
    assert_problem(&res, 422, "/api/v1/territories/import");
    assert_eq!(res.error_fields(), ["parent_code"]);
    let under_t2 = json!({"type": "FeatureCollection", "features": [feature("Y", Some("T2"), "grid", &square(116.21, 39.91, 116.22, 39.92))]});
    let res = app.post("/api/v1/territories/import", Some(&w.admin_t1.token), &under_t2).await;
    assert_eq!(res.status, 422, "{}", res.describe());
    assert_eq!(res.error_fields(), ["parent_code"]);
    let res = app.post("/api/v1/territories/import", Some(&w.manager.token), &under_t2).await;
    assert_eq!(res.status, 403);
    let res = app.post("/api/v1/territories/import", Some(&w.admin.token), &json!({"type": "Feature"})).await;
    assert_problem(&res, 400, "/api/v1/territories/import");
}

/// An outlet's footprint: stored and served as GeoJSON, judged before it is stored (structure,
/// self-intersection, distance from the point), and counted by the index: a position inside the
/// footprint is 0 m from the outlet, one beside it is measured to its edge; removing the footprint
/// (PATCH `null`) puts the distance back on the point.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn footprints_are_validated_stored_and_measured_to(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (lat, lon) = (IN_T1.0 + 0.01, IN_T1.1 + 0.01);
    // A hall of ~170 m x ~110 m east of its pin (the pin is at its west edge).
    let hall = square(lon, lat - 0.0005, lon + 0.002, lat + 0.0005);
    let mut body = new_outlet("FOOT-1", (lat, lon));
    body["footprint"] = hall.clone();
    let res = app.post("/api/v1/outlets", Some(&w.admin.token), &body).await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let id = res.json["id"].as_i64().expect("id");
    assert_eq!(res.json["footprint"]["type"], "MultiPolygon");
    assert_eq!(res.json["footprint"]["coordinates"][0], hall["coordinates"], "stored as given, as a MultiPolygon");
    let geo = app
        .send(
            app.request(reqwest::Method::GET, &format!("/api/v1/outlets/{id}"), Some(&w.admin.token))
                .header("accept", "application/geo+json"),
        )
        .await;
    assert_eq!(geo.json["geometry"]["type"], "Point", "the feature stays the pin");
    assert_eq!(geo.json["properties"]["footprint"]["type"], "MultiPolygon");

    // Inside the hall, ~150 m east of the pin: 0 m away. Beside it, 0.0005 deg (~55.6 m) north of
    // its north edge: measured to that edge, not to the pin.
    let inside = (lat, lon + 0.0018);
    let beside = (lat + 0.001, lon + 0.001);
    let nearest = |(la, lo): (f64, f64)| format!("/api/v1/outlets/nearest?lat={la}&lon={lo}&k=1");
    let within = |(la, lo): (f64, f64), r: u32| format!("/api/v1/outlets/within?lat={la}&lon={lo}&radius_m={r}");
    let first = |res: &common::Res| -> (i64, f64) {
        let item = &res.json["items"][0];
        (item["id"].as_i64().expect("id"), item["distance_m"].as_f64().expect("distance"))
    };
    let mut got = (0, f64::NAN);
    for _ in 0..100 {
        // The index hears of the new outlet through LISTEN/NOTIFY.
        got = first(&app.get(&nearest(inside), Some(&w.admin.token)).await);
        if got.0 == id {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(got, (id, 0.0), "inside the footprint");
    let (found, d) = first(&app.get(&nearest(beside), Some(&w.admin.token)).await);
    assert_eq!(found, id);
    assert!((d - 55.6).abs() < 0.5, "to the north edge: {d}");
    let ids = app.get(&within(inside, 20), Some(&w.admin.token)).await.ids();
    assert_eq!(ids, vec![id], "within 20 m of a point 150 m from the pin, inside the hall");

    // Bad footprints name the field and the reason; nothing is written.
    let bowtie = json!({"type": "Polygon", "coordinates": [[[lon, lat], [lon + 0.001, lat + 0.001], [lon + 0.001, lat], [lon, lat + 0.001], [lon, lat]]]});
    let far = square(lon + 0.05, lat, lon + 0.051, lat + 0.001);
    let open =
        json!({"type": "Polygon", "coordinates": [[[lon, lat], [lon + 0.001, lat], [lon + 0.001, lat + 0.001]]]});
    let line = json!({"type": "LineString", "coordinates": [[lon, lat], [lon + 0.001, lat]]});
    for (i, (bad, says)) in
        [(bowtie, "self-intersection"), (far, "within 2000 m"), (open, "at least 4"), (line, "Polygon or MultiPolygon")]
            .into_iter()
            .enumerate()
    {
        let mut body = new_outlet(&format!("FOOT-BAD-{i}"), (lat, lon));
        body["footprint"] = bad;
        let res = app.post("/api/v1/outlets", Some(&w.admin.token), &body).await;
        assert_problem(&res, 422, "/api/v1/outlets");
        assert_eq!(res.error_fields(), ["footprint"], "{}", res.describe());
        assert!(res.text.to_lowercase().contains(&says.to_lowercase()), "{says}: {}", res.describe());
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outlets WHERE code LIKE 'FOOT-BAD-%'")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(n, 0);

    // A status change keeps the footprint; moving the pin 3 km away from it is refused.
    let path = format!("/api/v1/outlets/{id}");
    let res = app.post(&format!("{path}/suspend"), Some(&w.admin.token), &json!({})).await;
    assert_eq!(res.json["footprint"]["coordinates"][0], hall["coordinates"], "{}", res.describe());
    let res = app.post(&format!("{path}/reopen"), Some(&w.admin.token), &json!({})).await;
    assert_eq!(res.status, 200);
    let res = app.patch(&path, Some(&w.admin.token), &json!({"lat": lat + 0.03})).await;
    assert_problem(&res, 422, &path);
    assert_eq!(res.error_fields(), ["footprint"]);
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM outlet_locations WHERE outlet_id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(history, 1, "status changes do not touch the location history");

    // Without the footprint the distance is to the pin again (~153 m), and the change is history.
    let res = app.patch(&path, Some(&w.admin.token), &json!({"footprint": null})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(res.json["footprint"].is_null());
    let mut d = 0.0;
    for _ in 0..100 {
        d = first(&app.get(&nearest(inside), Some(&w.admin.token)).await).1;
        if d > 100.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!((d - 153.3).abs() < 1.0, "to the pin: {d}");
    let history: Vec<bool> = sqlx::query_scalar(
        "SELECT footprint IS NOT NULL FROM outlet_locations WHERE outlet_id = $1 ORDER BY valid_from",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .expect("history");
    assert_eq!(history, [true, false]);
}

/// Tian'anmen area: WGS-84 (lat, lon) and its published GCJ-02 and BD-09 forms.
const REF_WGS: (f64, f64) = (39.915, 116.404);
const REF_GCJ: (f64, f64) = (39.916_404_281_501_64, 116.410_244_499_169_38);
const REF_BD: (f64, f64) = (39.922_699_552_216_216, 116.416_627_243_787_33);

fn metres_to(o: &Value, (lat, lon): (f64, f64)) -> f64 {
    let (a, b) = (o["lat"].as_f64().unwrap_or(f64::NAN), o["lon"].as_f64().unwrap_or(f64::NAN));
    fieldvisit::domain::geo::haversine_m(a, b, lat, lon)
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn gcj02_and_bd09_input_is_stored_as_wgs84(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let tok = Some(w.admin.token.as_str());
    let g = app.post("/api/v1/outlets?crs=gcj02", tok, &new_outlet("CRS-G", REF_GCJ)).await;
    assert_eq!(g.status, 201, "{}", g.describe());
    assert!(metres_to(&g.json, REF_WGS) < 1.0, "{}", g.describe());
    let b = app.post("/api/v1/outlets?crs=bd09", tok, &new_outlet("CRS-B", REF_BD)).await;
    assert_eq!(b.status, 201, "{}", b.describe());
    assert!(metres_to(&b.json, REF_WGS) < 1.0, "{}", b.describe());
    let plain = app.post("/api/v1/outlets", tok, &new_outlet("CRS-W", REF_GCJ)).await;
    assert!(metres_to(&plain.json, REF_WGS) > 500.0, "wgs84 is the default: {}", plain.describe());

    // A move given in BD-09 lands on the WGS-84 point; the footprint is converted with it.
    let path = format!("/api/v1/outlets/{}", plain.json["id"]);
    let d = 0.0005;
    let ring = json!([[
        [REF_BD.1 - d, REF_BD.0 - d],
        [REF_BD.1 + d, REF_BD.0 - d],
        [REF_BD.1 + d, REF_BD.0 + d],
        [REF_BD.1 - d, REF_BD.0 + d],
        [REF_BD.1 - d, REF_BD.0 - d]
    ]]);
    let body = json!({"lat": REF_BD.0, "lon": REF_BD.1, "footprint": {"type": "Polygon", "coordinates": ring}});
    let moved = app.patch(&format!("{path}?crs=bd09"), tok, &body).await;
    assert_eq!(moved.status, 200, "{}", moved.describe());
    assert!(metres_to(&moved.json, REF_WGS) < 1.0, "{}", moved.describe());
    let corner = &moved.json["footprint"]["coordinates"][0][0][0];
    let corner = (corner[1].as_f64().unwrap_or_default(), corner[0].as_f64().unwrap_or_default());
    let expected = (REF_WGS.0 - d, REF_WGS.1 - d);
    assert!(fieldvisit::domain::geo::haversine_m(corner.0, corner.1, expected.0, expected.1) < 2.0, "{corner:?}");
    let h = app.get(&format!("{path}/history"), tok).await;
    assert_eq!(h.json["locations"].as_array().map(Vec::len), Some(2), "{}", h.describe());

    // Converting needs both coordinates; an unknown system is a bad request naming `crs`.
    let half = app.patch(&format!("{path}?crs=gcj02"), tok, &json!({"lat": REF_GCJ.0})).await;
    assert_problem(&half, 422, &path);
    assert_eq!(half.error_fields(), vec!["lon".to_owned()], "{}", half.describe());
    let bad = app.post("/api/v1/outlets?crs=mars", tok, &new_outlet("CRS-X", REF_GCJ)).await;
    assert_problem(&bad, 400, "/api/v1/outlets");
    assert_eq!(bad.error_fields(), vec!["crs".to_owned()], "{}", bad.describe());
}
