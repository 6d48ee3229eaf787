//! OGC API – Features over the real server: the landing page and conformance declaration, the
//! collections, items with numberMatched / numberReturned and `next` links a client can follow,
//! bbox, single items, 400 for unknown parameters, and the caller's scope.

use crate::common;

use common::{TestApp, World, assert_problem};
use serde_json::Value;
use sqlx::PgPool;

fn href(links: &Value, rel: &str) -> Option<String> {
    links.as_array()?.iter().find(|l| l["rel"] == rel).and_then(|l| l["href"].as_str()).map(str::to_owned)
}

/// The path and query of an absolute link of the test server.
fn local(app: &TestApp, url: &str) -> String {
    url.strip_prefix(&app.base).unwrap_or_else(|| panic!("{url} is not a link to {}", app.base)).to_owned()
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn ogc_api_features_serves_scoped_collections_a_client_can_page(pool: PgPool) {
    let w = World::seed(&pool).await;
    let mut extra = Vec::new();
    for k in 0..3 {
        let at = (39.95 + f64::from(k) * 0.01, 116.06);
        extra.push(
            fieldvisit::db::outlets::create(
                &pool,
                w.org_a,
                &common::outlet_fields(&format!("X{k}"), "A", at, Some(w.t1)),
            )
            .await
            .expect("outlet"),
        );
    }
    let app = TestApp::spawn(pool.clone()).await;

    // The landing page and the conformance declaration need no token.
    let landing = app.get("/ogc", None).await;
    assert_eq!(landing.status, 200, "{}", landing.describe());
    let conformance = href(&landing.json["links"], "conformance").expect("conformance link");
    let data = href(&landing.json["links"], "data").expect("data link");
    assert!(href(&landing.json["links"], "service-desc").is_some());
    let classes = app.get(&local(&app, &conformance), None).await.json;
    let classes: Vec<&str> =
        classes["conformsTo"].as_array().expect("conformsTo").iter().filter_map(Value::as_str).collect();
    assert!(classes.contains(&"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"));
    assert!(classes.contains(&"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"));

    // Collections need a token.
    assert_eq!(app.get(&local(&app, &data), None).await.status, 401);
    let list = app.get(&local(&app, &data), Some(&w.admin.token)).await;
    assert_eq!(list.status, 200, "{}", list.describe());
    let ids: Vec<&str> =
        list.json["collections"].as_array().expect("collections").iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, vec!["outlets", "territories"]);
    let outlets = &list.json["collections"][0];
    let items = href(&outlets["links"], "items").expect("items link");

    // Items a page at a time, following `next`, as GDAL does: every outlet of the org once.
    let mut url = format!("{}?limit=2", local(&app, &items));
    let mut seen: Vec<i64> = Vec::new();
    let mut pages = 0;
    loop {
        let page = app.get(&url, Some(&w.admin.token)).await;
        assert_eq!(page.status, 200, "{}", page.describe());
        assert_eq!(page.content_type(), "application/geo+json");
        assert_eq!(page.json["numberMatched"], 5, "{}", page.describe());
        let features = page.json["features"].as_array().expect("features");
        assert_eq!(page.json["numberReturned"].as_u64(), Some(features.len() as u64));
        seen.extend(features.iter().filter_map(|f| f["id"].as_i64()));
        pages += 1;
        match href(&page.json["links"], "next") {
            Some(next) => url = local(&app, &next),
            None => break,
        }
        assert!(pages < 10, "paging never ends");
    }
    let mut want = vec![w.o1, w.o2];
    want.extend(&extra);
    assert_eq!(seen, want);
    assert_eq!(pages, 3);

    // A feature: lon/lat, attributes; bbox; scope (a T1 manager sees no T2 outlet, not even by id).
    let one = app.get(&format!("/ogc/collections/outlets/items/{}", w.o1), Some(&w.manager.token)).await;
    assert_eq!(one.status, 200, "{}", one.describe());
    assert_eq!(one.json["geometry"]["coordinates"], serde_json::json!([common::IN_T1.1, common::IN_T1.0]));
    assert_eq!(one.json["properties"]["code"], "O1");
    let t2_path = format!("/ogc/collections/outlets/items/{}", w.o2);
    assert_problem(&app.get(&t2_path, Some(&w.manager.token)).await, 404, &t2_path);
    let mine = app.get("/ogc/collections/outlets/items", Some(&w.manager.token)).await;
    assert_eq!(mine.json["numberMatched"], 4, "{}", mine.describe());
    let boxed = app.get("/ogc/collections/outlets/items?bbox=116.2,39.9,116.3,40.0", Some(&w.admin.token)).await;
    let boxed_ids: Vec<i64> =
        boxed.json["features"].as_array().expect("features").iter().filter_map(|f| f["id"].as_i64()).collect();
    assert_eq!(boxed_ids, vec![w.o2]);
    let timed = app.get("/ogc/collections/outlets/items?datetime=2026-01-01T00:00:00Z/..", Some(&w.admin.token)).await;
    assert_eq!(timed.json["numberMatched"], 5, "no time dimension: {}", timed.describe());

    // Territories: polygons by the right-hand rule.
    let terr = app.get("/ogc/collections/territories/items", Some(&w.manager.token)).await;
    assert_eq!(terr.status, 200, "{}", terr.describe());
    let tids: Vec<i64> =
        terr.json["features"].as_array().expect("features").iter().filter_map(|f| f["id"].as_i64()).collect();
    assert_eq!(tids, vec![w.t1]);
    assert_eq!(terr.json["features"][0]["geometry"]["type"], "MultiPolygon");

    // Bad requests: OGC asks for 400 on unknown parameters.
    for bad in ["colour=red", "bbox=1,2,3", "limit=many", "datetime=yesterday"] {
        let path = "/ogc/collections/outlets/items";
        assert_problem(&app.get(&format!("{path}?{bad}"), Some(&w.admin.token)).await, 400, path);
    }
    assert_problem(&app.get("/ogc/collections/visits", Some(&w.admin.token)).await, 404, "/ogc/collections/visits");
}
