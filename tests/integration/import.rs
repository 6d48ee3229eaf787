//! Bulk outlet import (`POST /api/v1/outlets/import`, `fieldvisit import outlets`): CSV and GeoJSON,
//! atomic and partial modes, upsert by code with location history, territory by point-in-polygon or
//! by code, scope of a territory manager, exact row/field errors, the body limit and the CLI.

use crate::common;

use std::fmt::Write as _;

use common::{BODY_LIMIT, IN_T1, IN_T2, Res, TestApp, World, assert_problem};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::process::Command;

const PATH: &str = "/api/v1/outlets/import";

async fn import(app: &TestApp, token: &str, query: &str, content_type: &str, body: impl Into<String>) -> Res {
    let path = if query.is_empty() { PATH.to_owned() } else { format!("{PATH}?{query}") };
    let rb = app.request(Method::POST, &path, Some(token)).header("content-type", content_type).body(body.into());
    app.send(rb).await
}

async fn csv(app: &TestApp, token: &str, query: &str, body: impl Into<String>) -> Res {
    import(app, token, query, "text/csv", body).await
}

/// `(index, field)` of each error of a report or problem.
fn errors(res: &Res) -> Vec<(i64, String)> {
    res.json["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| (e["index"].as_i64().unwrap_or(-1), e["field"].as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn reason<'a>(res: &'a Res, index: i64, field: &str) -> &'a str {
    res.json["errors"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["index"].as_i64() == Some(index) && e["field"] == field))
        .and_then(|e| e["reason"].as_str())
        .unwrap_or_else(|| panic!("no error for row {index} field {field}: {}", res.describe()))
}

fn owned(list: &[(i64, &str)]) -> Vec<(i64, String)> {
    list.iter().map(|(i, f)| (*i, (*f).to_owned())).collect()
}

async fn outlet_count(pool: &PgPool, org: i64) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outlets WHERE org_id = $1").bind(org).fetch_one(pool).await.expect("count")
}

/// (`name`, `channel_type`, `tier`, `lat`, `lon`, `radius_m`, `status`, territory code, `address`, `attributes`) of an outlet.
type Stored = (String, String, String, f64, f64, Option<f32>, String, Option<String>, Option<String>, Value);

async fn stored(pool: &PgPool, org: i64, code: &str) -> Stored {
    sqlx::query_as(
        "SELECT o.name, o.channel_type, o.tier, ST_Y(o.location), ST_X(o.location), o.radius_m, o.status, t.code,
                o.address, o.attributes
           FROM outlets o LEFT JOIN territories t ON t.org_id = o.org_id AND t.id = o.territory_id
          WHERE o.org_id = $1 AND o.code = $2",
    )
    .bind(org)
    .bind(code)
    .fetch_optional(pool)
    .await
    .expect("query outlet")
    .unwrap_or_else(|| panic!("outlet {code} not stored"))
}

async fn territory_of(pool: &PgPool, org: i64, code: &str) -> Option<String> {
    stored(pool, org, code).await.7
}

/// Lines 2..=9: good, bad, good, bad, bad, good, bad, good.
fn mixed_file() -> String {
    let (t1, t2) = (IN_T1, IN_T2);
    [
        "code,name,channel_type,tier,lat,lon,radius_m,status".to_owned(),
        format!("M1,Hall one,business_hall,A,{},{},,", t1.0, t1.1),
        format!("M2,Bad channel,kiosk,A,{},{},,", t1.0, t1.1),
        format!("M3,Mall,phone_mall,B,{},{},80,suspended", t2.0, t2.1),
        format!("M4,Far north,other,C,95,{},,", t1.1),
        format!("M5,,other,NOPE,{},{},0,", t1.0, t1.1),
        format!("M6,Agent,agent_point,ZA,{},{},,", t1.0 + 0.01, t1.1),
        format!("M1,Again,other,A,{},{},,", t1.0, t1.1),
        format!("M8,Campus,campus_point,VIP,{},{},5000,closed", t2.0, t2.1 + 0.01),
    ]
    .join("\n")
}

fn mixed_errors() -> Vec<(i64, String)> {
    owned(&[(3, "channel_type"), (5, "lat"), (6, "name"), (6, "radius_m"), (6, "tier"), (8, "code")])
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn atomic_mode_reports_every_bad_row_and_writes_nothing(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let before = common::row_counts(&pool).await;
    for query in ["", "mode=atomic"] {
        let res = csv(&app, &w.admin.token, query, mixed_file()).await;
        assert_problem(&res, 422, PATH);
        assert_eq!(errors(&res), mixed_errors(), "{}", res.describe());
        assert!(res.json["detail"].as_str().unwrap_or_default().contains("4 of 8 rows"), "{}", res.describe());
        assert_eq!(reason(&res, 8, "code"), "duplicate code `M1`: first given on line 2");
        assert!(reason(&res, 3, "channel_type").starts_with("unknown channel type `kiosk`"));
        assert!(reason(&res, 6, "tier").contains("`NOPE` is not a tier"));
        assert_eq!(common::row_counts(&pool).await, before, "atomic mode with bad rows writes nothing");
    }
    assert_eq!(outlet_count(&pool, w.org_a).await, 2);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn partial_mode_writes_the_good_rows_and_reports_the_bad(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let res = csv(&app, &w.manager.token, "mode=partial", mixed_file()).await;
    // The manager is scoped to T1: M3 and M8 (in T2) are outside, on top of the bad rows.
    assert_eq!(res.status, 200, "{}", res.describe());
    let mut expected = mixed_errors();
    expected.insert(1, (4, "territory".to_owned()));
    expected.push((9, "territory".to_owned()));
    assert_eq!(errors(&res), expected);
    assert_eq!(reason(&res, 4, "territory"), "outside your territory");
    let r = &res.json;
    assert_eq!((r["mode"].as_str(), r["rows"].as_u64()), (Some("partial"), Some(8)));
    assert_eq!((r["inserted"].as_u64(), r["updated"].as_u64(), r["unchanged"].as_u64()), (Some(2), Some(0), Some(0)));
    assert_eq!(r["rejected"].as_u64(), Some(6));

    let res = csv(&app, &w.admin.token, "mode=partial", mixed_file()).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(errors(&res), mixed_errors());
    let r = &res.json;
    assert_eq!((r["inserted"].as_u64(), r["updated"].as_u64(), r["unchanged"].as_u64()), (Some(2), Some(0), Some(2)));
    assert_eq!(r["rejected"].as_u64(), Some(4));
    assert_eq!(outlet_count(&pool, w.org_a).await, 2 + 4);
    let m3 = stored(&pool, w.org_a, "M3").await;
    assert_eq!(
        (m3.0.as_str(), m3.1.as_str(), m3.2.as_str(), m3.5, m3.6.as_str(), m3.7.as_deref()),
        ("Mall", "phone_mall", "B", Some(80.0), "suspended", Some("T2"))
    );
    let m6 = stored(&pool, w.org_a, "M6").await;
    assert_eq!((m6.2.as_str(), m6.5, m6.6.as_str(), m6.7.as_deref()), ("ZA", None, "active", Some("T1")));
    for missing in ["M2", "M4", "M5"] {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outlets WHERE code = $1")
            .bind(missing)
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(n, 0, "{missing} is bad and must not be written");
    }

    // One audit entry per import, with the counts.
    let log = app.get("/api/v1/audit-log", Some(&w.admin.token)).await;
    let imports: Vec<&Value> =
        log.json["items"].as_array().expect("items").iter().filter(|e| e["action"] == "outlet.import").collect();
    assert_eq!(imports.len(), 2, "{}", log.describe());
    assert_eq!(imports[0]["actor_user_id"].as_i64(), Some(w.admin.id));
    assert_eq!(imports[0]["detail"]["inserted"], 2);
    assert_eq!(imports[0]["detail"]["unchanged"], 2);
    assert_eq!(imports[0]["detail"]["rejected"], 4);
    assert_eq!(imports[1]["actor_user_id"].as_i64(), Some(w.manager.id));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn upsert_updates_existing_codes_and_a_move_keeps_history(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (t1, t2) = (IN_T1, IN_T2);
    let moved = (t1.0 + 0.02, t1.1 + 0.02);
    let file = format!(
        "code,name,channel_type,tier,lat,lon,address\n\
         O1,Renamed hall,franchise_store,B,{},{},1 New Street\n\
         O2,O2 name,business_hall,A,{},{},\n\
         N1,New one,other,C,{},{},\n",
        moved.0, moved.1, t2.0, t2.1, t1.0, t1.1
    );
    let res = csv(&app, &w.admin.token, "", file.clone()).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let r = &res.json;
    assert_eq!(
        (r["rows"].as_u64(), r["inserted"].as_u64(), r["updated"].as_u64(), r["unchanged"].as_u64()),
        (Some(3), Some(1), Some(1), Some(1)),
        "{}",
        res.describe()
    );
    assert_eq!(r["errors"], json!([]));
    let o1 = stored(&pool, w.org_a, "O1").await;
    assert_eq!((o1.0.as_str(), o1.1.as_str(), o1.2.as_str()), ("Renamed hall", "franchise_store", "B"));
    assert_eq!((o1.3, o1.4), moved);
    assert_eq!(o1.5, Some(50.0), "a radius the file does not give is kept");
    assert_eq!((o1.7.as_deref(), o1.8.as_deref()), (Some("T1"), Some("1 New Street")));

    let history: Vec<(f64, f64, bool)> = sqlx::query_as(
        "SELECT ST_Y(location), ST_X(location), valid_to IS NULL FROM outlet_locations
          WHERE org_id = $1 AND outlet_id = $2 ORDER BY valid_from",
    )
    .bind(w.org_a)
    .bind(w.o1)
    .fetch_all(&pool)
    .await
    .expect("history");
    assert_eq!(history, [(t1.0, t1.1, false), (moved.0, moved.1, true)], "the move is kept in the history");
    let o2_history: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outlet_locations WHERE org_id = $1 AND outlet_id = $2")
            .bind(w.org_a)
            .bind(w.o2)
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(o2_history, 1, "an unchanged outlet gets no history row");

    // The same file again changes nothing.
    let before = common::row_counts(&pool).await;
    let res = csv(&app, &w.admin.token, "", file).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(
        (res.json["inserted"].as_u64(), res.json["updated"].as_u64(), res.json["unchanged"].as_u64()),
        (Some(0), Some(0), Some(3))
    );
    let after = common::row_counts(&pool).await;
    let changed: Vec<_> = before.iter().zip(&after).filter(|(b, a)| b != a).map(|(b, a)| (b.0, b.1, a.1)).collect();
    assert_eq!(changed.len(), 1, "a re-import only adds its audit entry: {changed:?}");
    assert_eq!((changed[0].0, changed[0].2 - changed[0].1), ("audit_log", 1));

    // The imported outlet is what the API serves.
    let list = app.get("/api/v1/outlets?q=N1", Some(&w.admin.token)).await;
    assert_eq!(list.status, 200, "{}", list.describe());
    let item = &list.json["items"][0];
    assert_eq!((item["code"].as_str(), item["territory_id"].as_i64()), (Some("N1"), Some(w.t1)));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn columns_are_found_by_name_with_aliases_bom_and_semicolons(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    // lon before lat, aliases, mixed case, BOM, semicolons, decimal commas, a quoted delimiter.
    let file = "\u{FEFF}Longitude;Outlet_Code;LATITUDE;Outlet Name;Type;TIER;Radius;CRM Segment;Territory_Code\r\n\
                116,05;S1;39,95;\"Hall; north\";Business Hall;vip;75;gold;T1\r\n";
    let res = csv(&app, &w.admin.token, "", file).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["inserted"], 1, "{}", res.describe());
    let s1 = stored(&pool, w.org_a, "S1").await;
    assert_eq!((s1.0.as_str(), s1.1.as_str(), s1.2.as_str()), ("Hall; north", "business_hall", "VIP"));
    assert_eq!((s1.3, s1.4, s1.5), (39.95, 116.05, Some(75.0)));
    assert_eq!(s1.9, json!({"CRM Segment": "gold"}));

    // x/y, lng/lat and WKT spellings.
    let file = "id,name,channel,tier,x,y\nX1,By x y,other,A,116.06,39.96\n";
    assert_eq!(csv(&app, &w.admin.token, "", file).await.json["inserted"], 1);
    let file = "code,name,channel_type,tier,lng,lat\nX2,By lng lat,other,A,116.07,39.97\n";
    assert_eq!(csv(&app, &w.admin.token, "", file).await.json["inserted"], 1);
    let file = "code,name,channel_type,tier,wkt\nX3,By wkt,other,A,POINT(116.08 39.98)\n";
    assert_eq!(csv(&app, &w.admin.token, "", file).await.json["inserted"], 1);
    for (code, lat, lon) in [("X1", 39.96, 116.06), ("X2", 39.97, 116.07), ("X3", 39.98, 116.08)] {
        let s = stored(&pool, w.org_a, code).await;
        assert_eq!((s.3, s.4), (lat, lon), "{code}");
        assert_eq!(s.7.as_deref(), Some("T1"), "{code}: by point-in-polygon");
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn territory_by_point_in_polygon_or_by_code(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let file = format!(
        "code,name,channel_type,tier,lat,lon,territory\n\
         P1,In T1,other,A,{},{},\n\
         P2,Only in R,other,A,39.85,115.95,\n\
         P3,Nowhere,other,A,30.0,100.0,\n\
         P4,Named T2 though in T1,other,A,{},{},T2\n\
         P5,Named R,other,A,{},{},R\n",
        IN_T1.0, IN_T1.1, IN_T1.0, IN_T1.1, IN_T2.0, IN_T2.1
    );
    let res = csv(&app, &w.admin.token, "", file).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["inserted"], 5);
    let mut got = Vec::new();
    for code in ["P1", "P2", "P3", "P4", "P5"] {
        got.push(territory_of(&pool, w.org_a, code).await);
    }
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        got,
        [some("T1"), some("R"), None, some("T2"), some("R")],
        "deepest containing territory, or the named one"
    );

    // Org B's territory code is unknown in org A.
    let file =
        format!("code,name,channel_type,tier,lat,lon,territory\nP6,x,other,A,{},{},bsecret-terr\n", IN_T1.0, IN_T1.1);
    let res = csv(&app, &w.admin.token, "", file).await;
    assert_problem(&res, 422, PATH);
    assert_eq!(errors(&res), owned(&[(2, "territory")]));
    assert_eq!(reason(&res, 2, "territory"), "no territory with code `bsecret-terr` in this org");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn geojson_features_are_imported(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let doc = json!({
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [IN_T1.1, IN_T1.0]},
             "properties": {"code": "G1", "name": "Geo hall", "channel_type": "business_hall", "tier": "A",
                            "radius_m": 120, "floors": 2, "brand": "x"}},
            {"type": "Feature", "id": "G2", "geometry": {"type": "Point", "coordinates": [IN_T2.1, IN_T2.0]},
             "properties": {"name": "By feature id", "channel": "phone_mall", "tier": "B", "status": "suspended"}},
        ]
    });
    for ct in ["application/geo+json", "application/json"] {
        let res = import(&app, &w.admin.token, "", ct, doc.to_string()).await;
        assert_eq!(res.status, 200, "{ct}: {}", res.describe());
    }
    let g1 = stored(&pool, w.org_a, "G1").await;
    assert_eq!((g1.3, g1.4, g1.5, g1.7.as_deref()), (IN_T1.0, IN_T1.1, Some(120.0), Some("T1")));
    assert_eq!(g1.9, json!({"floors": 2, "brand": "x"}));
    let g2 = stored(&pool, w.org_a, "G2").await;
    assert_eq!((g2.1.as_str(), g2.6.as_str(), g2.7.as_deref()), ("phone_mall", "suspended", Some("T2")));

    // ?format= overrides the content type; errors name the feature position (from 0).
    let bad = json!({
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [116.0, 39.9]},
             "properties": {"code": "G3", "name": "ok", "channel_type": "other", "tier": "A"}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [116.0, -91]},
             "properties": {"code": "G4", "name": "south of south", "channel_type": "other", "tier": "A"}},
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
             "properties": {"code": "G5", "name": "line", "channel_type": "other", "tier": "A"}}
        ]
    });
    let res = import(&app, &w.admin.token, "format=geojson", "text/plain", bad.to_string()).await;
    assert_problem(&res, 422, PATH);
    assert_eq!(errors(&res), owned(&[(1, "geometry"), (2, "geometry")]));
    let res = import(&app, &w.admin.token, "format=geojson&mode=partial", "text/plain", bad.to_string()).await;
    assert_eq!((res.status, res.json["inserted"].as_u64()), (200, Some(1)), "{}", res.describe());

    // Not a FeatureCollection: the file as a whole is refused.
    let res =
        import(&app, &w.admin.token, "", "application/geo+json", r#"{"type": "Point", "coordinates": [1, 2]}"#).await;
    assert_problem(&res, 422, PATH);
    assert_eq!(res.error_fields(), ["file"]);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn bad_values_never_500_and_each_is_named(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (la, lo) = IN_T1;
    let file = [
        "code,name,channel_type,tier,lat,lon,radius_m".to_owned(),
        format!("B1,dup first,other,A,{la},{lo},"),
        format!("B1,dup second,other,A,{la},{lo},"),
        format!("B3,unknown channel,supermarket,A,{la},{lo},"),
        format!("B4,other org tier,other,ZB,{la},{lo},"),
        format!("B5,zero radius,other,A,{la},{lo},0"),
        format!("B6,negative radius,other,A,{la},{lo},-10"),
        format!("B7,huge radius,other,A,{la},{lo},5000.01"),
        format!("B8,nan lat,other,A,NaN,{lo},"),
        format!("B9,lat range,other,A,-90.5,{lo},"),
        format!("B10,lon range,other,A,{la},180.5,"),
        "B11,null island,other,A,0,0,".to_owned(),
        format!("B12,infinite,other,A,{la},-inf,"),
        format!("B13,text lat,other,A,north,{lo},"),
        format!("B14,text radius,other,A,{la},{lo},wide"),
    ]
    .join("\n");
    let before = common::row_counts(&pool).await;
    let res = csv(&app, &w.admin.token, "", file.clone()).await;
    assert_problem(&res, 422, PATH);
    let expected = owned(&[
        (3, "code"),
        (4, "channel_type"),
        (5, "tier"),
        (6, "radius_m"),
        (7, "radius_m"),
        (8, "radius_m"),
        (9, "lat"),
        (10, "lat"),
        (11, "lon"),
        (12, "lat"),
        (13, "lon"),
        (14, "lat"),
        (15, "radius_m"),
    ]);
    assert_eq!(errors(&res), expected);
    assert_eq!(common::row_counts(&pool).await, before);
    assert_eq!(reason(&res, 3, "code"), "duplicate code `B1`: first given on line 2");
    assert!(reason(&res, 5, "tier").contains("`ZB` is not a tier of this org's tier policies (A, B, C, VIP, ZA)"));
    assert!(reason(&res, 6, "radius_m").contains("greater than 0"));
    assert!(reason(&res, 12, "lat").contains("null island"));

    let res = csv(&app, &w.admin.token, "mode=partial", file).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(errors(&res), expected);
    assert_eq!((res.json["inserted"].as_u64(), res.json["rejected"].as_u64()), (Some(1), Some(13)));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn scoped_manager_cannot_import_outside_their_territory(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let file = format!(
        "code,name,channel_type,tier,lat,lon,territory\n\
         K1,mine,other,A,{},{},\n\
         K2,in T2,other,A,{},{},\n\
         K3,outside all,other,A,30,100,\n\
         K4,named T2,other,A,{},{},T2\n\
         O2,their outlet,other,A,{},{},\n",
        IN_T1.0, IN_T1.1, IN_T2.0, IN_T2.1, IN_T1.0, IN_T1.1, IN_T1.0, IN_T1.1
    );
    let before = common::row_counts(&pool).await;
    let res = csv(&app, &w.manager.token, "", file.clone()).await;
    assert_problem(&res, 422, PATH);
    assert_eq!(errors(&res), owned(&[(3, "territory"), (4, "territory"), (5, "territory"), (6, "territory")]));
    for line in [3, 4, 5] {
        assert_eq!(reason(&res, line, "territory"), "outside your territory");
    }
    assert!(reason(&res, 6, "territory").starts_with("outside your territory"));
    assert_eq!(common::row_counts(&pool).await, before);

    let res = csv(&app, &w.manager.token, "mode=partial", file.clone()).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!((res.json["inserted"].as_u64(), res.json["rejected"].as_u64()), (Some(1), Some(4)));
    assert_eq!(territory_of(&pool, w.org_a, "K1").await.as_deref(), Some("T1"));
    assert_eq!(stored(&pool, w.org_a, "O2").await.0, "O2 name", "an outlet outside the scope is untouched");

    // Roles without the right to change outlets.
    for who in [&w.rep, &w.auditor, &w.supervisor] {
        let res = csv(&app, &who.token, "", file.clone()).await;
        assert_problem(&res, 403, PATH);
    }
    assert_problem(&app.send(app.request(Method::POST, PATH, None).body(file)).await, 401, PATH);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_file_over_the_body_limit_is_413(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let before = common::row_counts(&pool).await;
    let mut file = String::from("code,name,channel_type,tier,lat,lon\n");
    let mut i = 0;
    while file.len() <= BODY_LIMIT + 64 * 1024 {
        let _ = writeln!(file, "BIG{i},Outlet {i},other,A,{},{}", IN_T1.0, IN_T1.1);
        i += 1;
    }
    let res = csv(&app, &w.admin.token, "", file).await;
    assert_problem(&res, 413, PATH);
    assert_eq!(common::row_counts(&pool).await, before);
}

/// A 200 MB CSV against the production body limit (32 MiB), streamed over a raw socket in both
/// framings (declared with its length, and chunked): the server refuses it with 413 problem+json,
/// writes nothing and keeps serving.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_200_mb_upload_is_refused_by_size(pool: PgPool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const SIZE: usize = 200 * 1024 * 1024;
    let w = World::seed(&pool).await;
    let mut config = common::test_config("unused");
    config.body_limit_bytes = 32 * 1024 * 1024;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let before = common::row_counts(&pool).await;
    let mut chunk = String::new();
    let mut i = 0;
    while chunk.len() < 1024 * 1024 {
        let _ = writeln!(chunk, "HUGE{i},Outlet {i},other,A,{},{}", IN_T1.0, IN_T1.1);
        i += 1;
    }
    for chunked in [false, true] {
        let mut socket = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
        let framing = if chunked { "Transfer-Encoding: chunked".to_owned() } else { format!("Content-Length: {SIZE}") };
        let head = format!(
            "POST {PATH} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: text/csv\r\n{framing}\r\n\r\n",
            app.addr, w.admin.token
        );
        let (mut rx, mut tx) = socket.split();
        let send = async {
            tx.write_all(head.as_bytes()).await?;
            let header = "code,name,channel_type,tier,lat,lon\n";
            if chunked {
                tx.write_all(format!("{:x}\r\n{header}\r\n", header.len()).as_bytes()).await?;
            } else {
                tx.write_all(header.as_bytes()).await?;
            }
            let mut sent = header.len();
            while sent < SIZE {
                if chunked {
                    tx.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
                    tx.write_all(chunk.as_bytes()).await?;
                    tx.write_all(b"\r\n").await?;
                } else {
                    tx.write_all(&chunk.as_bytes()[..chunk.len().min(SIZE - sent)]).await?;
                }
                // (the terminating zero-size chunk never comes: the server answers long before)
                sent += chunk.len();
            }
            std::io::Result::Ok(sent)
        };
        let receive = async {
            let mut answer = Vec::new();
            let mut buf = [0u8; 8192];
            // The head and the problem body arrive in the first reads; the server may then close.
            while !String::from_utf8_lossy(&answer).contains("\"status\":413") {
                match tokio::time::timeout(common::HTTP_TIMEOUT, rx.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            String::from_utf8_lossy(&answer).into_owned()
        };
        // Sending ends when all is sent or when the server closes the connection on its answer.
        let (_sent, answer) = tokio::join!(send, receive);
        assert!(answer.starts_with("HTTP/1.1 413"), "chunked: {chunked}: {answer}");
        assert!(answer.to_ascii_lowercase().contains("content-type: application/problem+json"), "{answer}");
        assert!(answer.contains("/problems/payload-too-large"), "{answer}");
    }
    assert_eq!(common::row_counts(&pool).await, before);
    let res = app.send(app.request(Method::GET, "/api/v1/outlets?limit=1", Some(&w.admin.token))).await;
    assert_eq!(res.status, 200, "the server still serves");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn request_problems_are_problem_json(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let ok = format!("code,name,channel_type,tier,lat,lon\nQ1,n,other,A,{},{}\n", IN_T1.0, IN_T1.1);
    let res = import(&app, &w.admin.token, "", "multipart/form-data; boundary=x", ok.clone()).await;
    assert_problem(&res, 415, PATH);
    let res = csv(&app, &w.admin.token, "mode=everything", ok.clone()).await;
    assert_problem(&res, 400, PATH);
    assert_eq!(res.error_fields(), ["mode"]);
    let res = csv(&app, &w.admin.token, "format=xlsx", ok.clone()).await;
    assert_problem(&res, 400, PATH);
    assert_eq!(res.error_fields(), ["format"]);
    // Missing columns: the file as a whole.
    let res = csv(&app, &w.admin.token, "", "code,name,tier,latitude\nQ2,n,A,39.9\n").await;
    assert_problem(&res, 422, PATH);
    assert_eq!(res.error_fields(), ["channel_type", "lon"]);
    let res = csv(&app, &w.admin.token, "", "").await;
    assert_problem(&res, 422, PATH);
    // No content type: sniffed.
    let res = app.send(app.request(Method::POST, PATH, Some(&w.admin.token)).body(ok)).await;
    assert_eq!((res.status, res.json["inserted"].as_u64()), (200, Some(1)), "{}", res.describe());
    // Listed in the API description.
    let doc = app.get("/openapi.json", None).await;
    assert!(doc.json["paths"]["/api/v1/outlets/import"]["post"].is_object(), "import is documented");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn cli_imports_a_file_and_prints_the_counts(pool: PgPool) {
    let w = World::seed(&pool).await;
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
    let dbname: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await.expect("db name");
    let url = common::url_for_database(&base, &dbname);
    let dir = std::env::temp_dir().join(format!("fieldvisit-import-{dbname}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("outlets.csv");
    std::fs::write(
        &file,
        format!(
            "code;name;channel_type;tier;latitude;longitude\nC1;Cli one;other;A;{};{}\nC2;Cli two;other;B;{};{}\nC3;Bad;nope;A;{};{}\n",
            IN_T1.0, IN_T1.1, IN_T2.0, IN_T2.1, IN_T1.0, IN_T1.1
        ),
    )
    .expect("write file");
    let run = |mode: &str| {
        Command::new(env!("CARGO_BIN_EXE_fieldvisit"))
            .args(["import", "outlets"])
            .arg(&file)
            .args(["--org", "org-a", "--mode", mode])
            .args(if mode == "partial" { &["--crs", "gcj02"][..] } else { &[] })
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run the fieldvisit binary")
    };

    let out = run("atomic");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "atomic with a bad row fails: {stdout} {stderr}");
    assert!(stderr.contains("line 4: channel_type: unknown channel type `nope`"), "{stderr}");
    assert!(stderr.contains("1 of 3 rows are invalid; nothing was written"), "{stderr}");
    assert_eq!(outlet_count(&pool, w.org_a).await, 2);

    let out = run("partial");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout} {stderr}");
    assert!(stdout.contains("rows 3, inserted 2, updated 0, unchanged 0, rejected 1"), "{stdout}");
    assert!(stderr.contains("line 4: channel_type"), "{stderr}");
    assert_eq!(outlet_count(&pool, w.org_a).await, 4);
    assert_eq!(territory_of(&pool, w.org_a, "C2").await.as_deref(), Some("T2"));
    // `--crs gcj02`: the file's positions were GCJ-02, stored as WGS-84 (a few hundred metres away).
    let d = metres_from(&stored(&pool, w.org_a, "C1").await, IN_T1);
    assert!((100.0..1000.0).contains(&d), "C1 stored {d} m from the file's numbers");
    let entry: (Option<i64>, Value) =
        sqlx::query_as("SELECT actor_user_id, detail FROM audit_log WHERE org_id = $1 AND action = 'outlet.import'")
            .bind(w.org_a)
            .fetch_one(&pool)
            .await
            .expect("one audit entry");
    assert_eq!(entry.0, None);
    assert_eq!((entry.1["source"].as_str(), entry.1["inserted"].as_u64()), (Some("cli"), Some(2)));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Over 1,000 rows: written in chunks, with the lookups of the next chunk beside the writes.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_large_file_is_written_in_chunks(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let n = 12_500;
    let mut file = String::from("code,name,channel_type,tier,lat,lon,segment\n");
    for i in 0..n {
        // Spread over T1 and T2 (and R between them).
        let lon = 116.0 + 0.3 * (i as f64 / n as f64);
        let _ = writeln!(file, "L{i:05},Outlet {i},other,B,39.95,{lon:.6},s{}", i % 3);
    }
    // An existing outlet moved, and two bad rows far apart.
    file.push_str("O1,Moved in a big file,business_hall,A,39.96,116.06,\n");
    file.push_str("L00007,duplicate,other,B,39.95,116.01,\n");
    file.push_str("BAD,nowhere,other,B,91,116.01,\n");
    let res = csv(&app, &w.admin.token, "", file.clone()).await;
    assert_problem(&res, 422, PATH);
    assert_eq!(errors(&res), owned(&[(n + 3, "code"), (n + 4, "lat")]));
    assert_eq!(outlet_count(&pool, w.org_a).await, 2);

    let res = csv(&app, &w.admin.token, "mode=partial", file).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let r = &res.json;
    let n = n as u64;
    assert_eq!(
        (r["rows"].as_u64(), r["inserted"].as_u64(), r["updated"].as_u64(), r["rejected"].as_u64()),
        (Some(n + 3), Some(n), Some(1), Some(2))
    );
    assert_eq!(outlet_count(&pool, w.org_a).await, 2 + n as i64);
    let by_territory: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT t.code, count(*) FROM outlets o LEFT JOIN territories t ON t.org_id = o.org_id AND t.id = o.territory_id
          WHERE o.org_id = $1 AND o.code LIKE 'L%' GROUP BY t.code ORDER BY t.code",
    )
    .bind(w.org_a)
    .fetch_all(&pool)
    .await
    .expect("territory counts");
    let total: i64 = by_territory.iter().map(|(_, c)| c).sum();
    assert_eq!(total, n as i64);
    let codes: Vec<_> = by_territory.iter().map(|(t, _)| t.clone().unwrap_or_default()).collect();
    assert_eq!(codes, ["R", "T1", "T2"], "every point got its deepest territory: {by_territory:?}");
    let o1 = stored(&pool, w.org_a, "O1").await;
    assert_eq!((o1.0.as_str(), o1.3, o1.4), ("Moved in a big file", 39.96, 116.06));
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM outlet_locations WHERE org_id = $1 AND outlet_id = $2")
        .bind(w.org_a)
        .bind(w.o1)
        .fetch_one(&pool)
        .await
        .expect("history");
    assert_eq!(history, 2);
    // Every new outlet has its history rows (the per-row trigger ran for each).
    let locations: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outlet_locations l JOIN outlets o ON o.org_id = l.org_id AND o.id = l.outlet_id
          WHERE o.org_id = $1 AND o.code LIKE 'L%'",
    )
    .bind(w.org_a)
    .fetch_one(&pool)
    .await
    .expect("locations");
    assert_eq!(locations, n as i64);
}

/// Tian'anmen area: WGS-84 (lat, lon) and its published GCJ-02 and BD-09 forms.
const REF_WGS: (f64, f64) = (39.915, 116.404);
const REF_GCJ: (f64, f64) = (39.916_404_281_501_64, 116.410_244_499_169_38);
const REF_BD: (f64, f64) = (39.922_699_552_216_216, 116.416_627_243_787_33);

fn metres_from(stored: &Stored, (lat, lon): (f64, f64)) -> f64 {
    fieldvisit::domain::geo::haversine_m(stored.3, stored.4, lat, lon)
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn a_dry_run_judges_every_row_counts_and_writes_nothing(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let before = common::row_counts(&pool).await;
    for query in ["dry_run=true", "mode=atomic&dry_run=true", "mode=partial&dry_run=true"] {
        let res = csv(&app, &w.admin.token, query, mixed_file()).await;
        assert_eq!(res.status, 200, "{query}: {}", res.describe());
        assert_eq!(res.json["dry_run"], true, "{}", res.describe());
        assert_eq!(errors(&res), mixed_errors(), "{}", res.describe());
        assert_eq!(reason(&res, 8, "code"), "duplicate code `M1`: first given on line 2");
        let counts = ["rows", "inserted", "updated", "unchanged", "rejected"].map(|k| res.json[k].as_u64());
        assert_eq!(counts, [Some(8), Some(4), Some(0), Some(0), Some(4)], "{}", res.describe());
        assert_eq!(common::row_counts(&pool).await, before, "{query}: a dry run writes nothing, no audit entry either");
    }
    // A territory manager's preview judges their scope too, exactly as their import then does.
    let preview = csv(&app, &w.manager.token, "mode=partial&dry_run=true", mixed_file()).await;
    assert_eq!(common::row_counts(&pool).await, before);
    let done = csv(&app, &w.manager.token, "mode=partial", mixed_file()).await;
    assert_eq!((done.status, done.json["dry_run"].as_bool()), (200, Some(false)), "{}", done.describe());
    assert_eq!(errors(&preview), errors(&done), "{}", preview.describe());
    assert!(errors(&preview).contains(&(4, "territory".to_owned())), "{}", preview.describe());
    for k in ["rows", "inserted", "updated", "unchanged", "rejected"] {
        assert_eq!(preview.json[k], done.json[k], "{k}: {} vs {}", preview.describe(), done.describe());
    }
    assert!(done.json["inserted"].as_u64() > Some(0), "{}", done.describe());
    // A preview of a move counts an update (a row equal to the stored outlet: unchanged), and the
    // outlet stays where it was.
    let moved = format!(
        "code,name,channel_type,tier,lat,lon\nM1,Hall one,business_hall,A,{},{}\nM6,Agent,agent_point,ZA,{},{}\n",
        IN_T1.0 + 0.001,
        IN_T1.1,
        IN_T1.0 + 0.01,
        IN_T1.1
    );
    let after_import = common::row_counts(&pool).await;
    let res = csv(&app, &w.admin.token, "dry_run=true", moved).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let counts = ["inserted", "updated", "unchanged", "rejected"].map(|k| res.json[k].as_u64());
    assert_eq!(counts, [Some(0), Some(1), Some(1), Some(0)], "{}", res.describe());
    assert!((stored(&pool, w.org_a, "M1").await.3 - IN_T1.0).abs() < 1e-12, "not moved by a preview");
    assert_eq!(common::row_counts(&pool).await, after_import);
    // `dry_run` that is not a boolean is a bad request, not an import.
    let bad = csv(&app, &w.admin.token, "dry_run=maybe", mixed_file()).await;
    assert_problem(&bad, 400, PATH);
    assert_eq!(common::row_counts(&pool).await, after_import);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn gcj02_and_bd09_files_land_on_the_wgs84_point(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let row = |code: &str, (lat, lon): (f64, f64)| {
        format!("code,name,channel_type,tier,lat,lon\n{code},Shifted,other,A,{lat},{lon}\n")
    };
    for (crs, code, given) in [("gcj02", "G1", REF_GCJ), ("bd09", "B1", REF_BD), ("wgs84", "W1", REF_WGS)] {
        let res = csv(&app, &w.admin.token, &format!("crs={crs}"), row(code, given)).await;
        assert_eq!((res.status, res.json["inserted"].as_u64()), (200, Some(1)), "{crs}: {}", res.describe());
        let d = metres_from(&stored(&pool, w.org_a, code).await, REF_WGS);
        assert!(d < 1.0, "{crs}: stored {d} m from the reference point");
    }
    // Read as WGS-84 (the default), the GCJ-02 numbers land hundreds of metres off.
    let res = csv(&app, &w.admin.token, "", row("G2", REF_GCJ)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(metres_from(&stored(&pool, w.org_a, "G2").await, REF_WGS) > 500.0);
    // GeoJSON positions are converted the same way.
    let fc = json!({"type": "FeatureCollection", "features": [{"type": "Feature",
        "geometry": {"type": "Point", "coordinates": [REF_BD.1, REF_BD.0]},
        "properties": {"code": "B2", "name": "Baidu", "channel_type": "other", "tier": "A"}}]});
    let res = import(&app, &w.admin.token, "crs=bd09", "application/geo+json", fc.to_string()).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(metres_from(&stored(&pool, w.org_a, "B2").await, REF_WGS) < 1.0);
    // Outside mainland China no shift applies.
    let res = csv(&app, &w.admin.token, "crs=gcj02", row("HK1", (22.3193, 114.1694))).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let hk = stored(&pool, w.org_a, "HK1").await;
    assert_eq!((hk.3, hk.4), (22.3193, 114.1694));
    // An unknown system is refused by name.
    let before = common::row_counts(&pool).await;
    let bad = csv(&app, &w.admin.token, "crs=epsg3857", row("X1", REF_WGS)).await;
    assert_problem(&bad, 400, PATH);
    assert_eq!(bad.error_fields(), vec!["crs".to_owned()], "{}", bad.describe());
    assert_eq!(common::row_counts(&pool).await, before);
}
