//! The index-backed outlet queries over HTTP (`/api/v1/outlets/nearest`, `within`, `in-cell/{h3}`,
//! `in-territory/{id}`): equal to a brute-force computation over the outlets in the database, filtered
//! to the caller's scope, patched by changes made through the API, coherent across two server
//! processes on one database within 1 s, and resynchronised after the listener loses its connection.

use crate::common;

use common::{IN_T1, IN_T2, TestApp, World, assert_problem};
use fieldvisit::domain::geo::haversine_m;
use h3o::{LatLng, Resolution};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashSet;
use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bound: a committed change reaches every instance's index within this.
const PROPAGATION: Duration = Duration::from_secs(1);

/// An outlet as the database has it.
#[derive(Debug, Clone)]
struct DbOutlet {
    id: i64,
    lat: f64,
    lon: f64,
    active: bool,
    territory_id: Option<i64>,
}

/// Deterministic pseudo-random numbers (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

fn in_box((lat, lon): (f64, f64), lon0: f64, lat0: f64, lon1: f64, lat1: f64) -> bool {
    (lon0..=lon1).contains(&lon) && (lat0..=lat1).contains(&lat)
}

/// Adds `n` outlets to org A around and inside the seeded territories (some outside any territory,
/// some closed or suspended), plus a few across the antimeridian and near the pole, in one statement.
async fn seed_outlets(pool: &PgPool, w: &World, n: usize) {
    let mut rng = Rng(0x5EED);
    let mut rows: Vec<(String, f64, f64, String, Option<i64>)> = Vec::new();
    for i in 0..n {
        let (lat, lon) = match i % 4 {
            // Dense inside T1 and T2, sparse elsewhere in and around R.
            0 => (rng.range(39.9, 40.0), rng.range(116.0, 116.1)),
            1 => (rng.range(39.9, 40.0), rng.range(116.2, 116.3)),
            _ => (rng.range(39.75, 40.15), rng.range(115.85, 116.45)),
        };
        let territory = if in_box((lat, lon), 116.0, 39.9, 116.1, 40.0) {
            Some(w.t1)
        } else if in_box((lat, lon), 116.2, 39.9, 116.3, 40.0) {
            Some(w.t2)
        } else if in_box((lat, lon), 115.9, 39.8, 116.4, 40.1) {
            Some(w.root)
        } else {
            None
        };
        let status = match rng.next() % 20 {
            0 | 1 => "closed",
            2 => "suspended",
            _ => "active",
        };
        rows.push((format!("R{i:04}"), lat, lon, status.to_owned(), territory));
    }
    for (i, (lat, lon)) in
        [(60.0, 179.9995), (60.0, -179.9995), (60.001, 179.98), (89.9, 10.0), (89.9, -170.0)].into_iter().enumerate()
    {
        rows.push((format!("FAR{i}"), lat, lon, "active".to_owned(), None));
    }
    let codes: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let lats: Vec<f64> = rows.iter().map(|r| r.1).collect();
    let lons: Vec<f64> = rows.iter().map(|r| r.2).collect();
    let statuses: Vec<String> = rows.iter().map(|r| r.3.clone()).collect();
    let territories: Vec<Option<i64>> = rows.iter().map(|r| r.4).collect();
    sqlx::query(
        "INSERT INTO outlets (org_id, code, name, channel_type, tier, location, status, territory_id)
         SELECT $1, c, c || ' name', 'agent_point', 'B', ST_SetSRID(ST_MakePoint(lon, lat), 4326), s, t
           FROM unnest($2::text[], $3::float8[], $4::float8[], $5::text[], $6::int8[]) AS u (c, lat, lon, s, t)",
    )
    .bind(w.org_a)
    .bind(&codes)
    .bind(&lats)
    .bind(&lons)
    .bind(&statuses)
    .bind(&territories)
    .execute(pool)
    .await
    .expect("seed outlets");
}

async fn db_outlets(pool: &PgPool, org_id: i64) -> Vec<DbOutlet> {
    let rows: Vec<(i64, f64, f64, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, ST_Y(location), ST_X(location), status, territory_id FROM outlets WHERE org_id = $1 ORDER BY id",
    )
    .bind(org_id)
    .fetch_all(pool)
    .await
    .expect("read outlets");
    rows.into_iter()
        .map(|(id, lat, lon, status, territory_id)| DbOutlet { id, lat, lon, active: status == "active", territory_id })
        .collect()
}

/// Territory ids a user whose scope starts at `root` may see (`None`: the whole org).
async fn scope_territories(pool: &PgPool, org_id: i64, root: Option<i64>) -> Option<HashSet<i64>> {
    let root = root?;
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM territories WHERE org_id = $1 AND path @> ARRAY[$2::bigint]")
            .bind(org_id)
            .bind(root)
            .fetch_all(pool)
            .await
            .expect("scope territories");
    Some(ids.into_iter().collect())
}

fn visible(o: &DbOutlet, scope: Option<&HashSet<i64>>) -> bool {
    o.active && scope.is_none_or(|s| o.territory_id.is_some_and(|t| s.contains(&t)))
}

/// (id, distance) of every visible outlet, nearest first.
fn brute_nearest(all: &[DbOutlet], scope: Option<&HashSet<i64>>, lat: f64, lon: f64) -> Vec<(i64, f64)> {
    let mut v: Vec<(i64, f64)> =
        all.iter().filter(|o| visible(o, scope)).map(|o| (o.id, haversine_m(lat, lon, o.lat, o.lon))).collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    v
}

fn items(res: &common::Res) -> Vec<Value> {
    res.json["items"].as_array().cloned().unwrap_or_default()
}

fn hits(res: &common::Res) -> Vec<(i64, f64)> {
    items(res).iter().map(|i| (i["id"].as_i64().expect("id"), i["distance_m"].as_f64().expect("distance_m"))).collect()
}

/// Same outlets at the same distances, in order; outlets at equal distances may come in either order.
fn assert_same_hits(got: &[(i64, f64)], want: &[(i64, f64)], all: &[(i64, f64)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    let ids: HashSet<i64> = got.iter().map(|g| g.0).collect();
    assert_eq!(ids.len(), got.len(), "{what}: an outlet twice: {got:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g.1 - w.1).abs() < 1e-6, "{what}: distance {} vs {}: {got:?} vs {want:?}", g.1, w.1);
        let genuine = all.iter().any(|a| a.0 == g.0 && (a.1 - g.1).abs() < 1e-6);
        assert!(g.0 == w.0 || genuine, "{what}: {got:?} vs {want:?}");
    }
}

/// Every page of an id-ordered answer, concatenated.
async fn all_pages(app: &TestApp, path: &str, token: &str, limit: usize) -> Vec<i64> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut ids = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let url = match after {
            Some(a) => format!("{path}{sep}limit={limit}&after={a}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let res = app.get(&url, Some(token)).await;
        assert_eq!(res.status, 200, "{url}: {}", res.describe());
        ids.extend(res.ids());
        match res.json["next"].as_i64() {
            Some(n) => after = Some(n),
            None => return ids,
        }
    }
}

const QUERY_POINTS: [(f64, f64); 8] =
    [IN_T1, IN_T2, (39.95, 116.15), (40.2, 116.5), (39.7, 115.8), (60.0, -179.9999), (60.0, 179.9999), (89.95, 100.0)];

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn index_queries_equal_brute_force(pool: PgPool) {
    let w = World::seed(&pool).await;
    seed_outlets(&pool, &w, 600).await;
    let app = TestApp::spawn(pool.clone()).await;
    let all = db_outlets(&pool, w.org_a).await;

    for who in [&w.admin, &w.manager, &w.rep2] {
        let scope = scope_territories(&pool, w.org_a, who.territory_id).await;
        let scope = scope.as_ref();
        let token = Some(who.token.as_str());

        for (lat, lon) in QUERY_POINTS {
            let want = brute_nearest(&all, scope, lat, lon);
            for k in [1usize, 5, 17, 100] {
                let path = format!("/api/v1/outlets/nearest?lat={lat}&lon={lon}&k={k}");
                let res = app.get(&path, token).await;
                assert_eq!(res.status, 200, "{path}: {}", res.describe());
                let want_k: Vec<_> = want.iter().copied().take(k).collect();
                assert_same_hits(&hits(&res), &want_k, &want, &format!("{} {path}", who.login));
            }
            for radius in [50.0, 500.0, 2_000.0, 20_000.0] {
                let path = format!("/api/v1/outlets/within?lat={lat}&lon={lon}&radius_m={radius}&limit=1000");
                let res = app.get(&path, token).await;
                assert_eq!(res.status, 200, "{path}: {}", res.describe());
                let want_r: Vec<_> = want.iter().copied().filter(|h| h.1 <= radius).collect();
                assert_same_hits(&hits(&res), &want_r, &want, &format!("{} {path}", who.login));
                assert_eq!(res.json["total"].as_u64(), Some(want_r.len() as u64), "{path}");
            }
        }
        // The default k is 5; a small limit keeps the nearest and still counts all.
        let res = app.get(&format!("/api/v1/outlets/nearest?lat={}&lon={}", IN_T1.0, IN_T1.1), token).await;
        assert_eq!(hits(&res).len(), 5.min(brute_nearest(&all, scope, IN_T1.0, IN_T1.1).len()));
        let path = format!("/api/v1/outlets/within?lat={}&lon={}&radius_m=20000&limit=3", IN_T1.0, IN_T1.1);
        let res = app.get(&path, token).await;
        let want: Vec<_> =
            brute_nearest(&all, scope, IN_T1.0, IN_T1.1).into_iter().filter(|h| h.1 <= 20_000.0).collect();
        assert_same_hits(&hits(&res), &want[..3], &want, &path);
        assert_eq!(res.json["total"].as_u64(), Some(want.len() as u64));

        // Cells of every supported resolution around some of the outlets.
        for o in all.iter().step_by(37) {
            for res_level in 5u8..=10 {
                let r = Resolution::try_from(res_level).expect("resolution");
                let cell = LatLng::new(o.lat, o.lon).expect("valid").to_cell(r);
                let want: Vec<i64> = all
                    .iter()
                    .filter(|x| visible(x, scope))
                    .filter(|x| LatLng::new(x.lat, x.lon).expect("valid").to_cell(r) == cell)
                    .map(|x| x.id)
                    .collect();
                let got = all_pages(&app, &format!("/api/v1/outlets/in-cell/{cell}"), &who.token, 1000).await;
                assert_eq!(got, want, "{} cell {cell} (res {res_level})", who.login);
            }
        }

        // Territories in scope: every visible outlet inside (or on) the boundary; paging is stable.
        let boxes = [
            (w.t1, (116.0, 39.9, 116.1, 40.0)),
            (w.t2, (116.2, 39.9, 116.3, 40.0)),
            (w.root, (115.9, 39.8, 116.4, 40.1)),
        ];
        for (territory, (lon0, lat0, lon1, lat1)) in boxes {
            let path = format!("/api/v1/outlets/in-territory/{territory}");
            let in_scope = scope.is_none_or(|s| s.contains(&territory));
            if !in_scope {
                let res = app.get(&path, token).await;
                assert_problem(&res, 403, &path);
                continue;
            }
            let want: Vec<i64> = all
                .iter()
                .filter(|x| visible(x, scope) && in_box((x.lat, x.lon), lon0, lat0, lon1, lat1))
                .map(|x| x.id)
                .collect();
            assert!(!want.is_empty(), "the seeded data has outlets in territory {territory}");
            assert_eq!(all_pages(&app, &path, &who.token, 1000).await, want, "{} {path}", who.login);
            assert_eq!(all_pages(&app, &path, &who.token, 7).await, want, "{} {path} in pages of 7", who.login);
        }
    }

    // Inactive outlets on request, with their status.
    let (lat, lon) = IN_T1;
    let res = app
        .get(
            &format!("/api/v1/outlets/within?lat={lat}&lon={lon}&radius_m=100000&limit=1000&include_inactive=true"),
            Some(&w.admin.token),
        )
        .await;
    let statuses: HashSet<String> =
        items(&res).iter().filter_map(|i| i["status"].as_str().map(str::to_owned)).collect();
    assert!(statuses.contains("closed") && statuses.contains("suspended"), "{statuses:?}");
    let total_in_range = all.iter().filter(|o| haversine_m(lat, lon, o.lat, o.lon) <= 100_000.0).count();
    assert_eq!(res.json["total"].as_u64(), Some(total_in_range as u64));
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn scope_keeps_other_territories_and_orgs_out(pool: PgPool) {
    let w = World::seed(&pool).await;
    seed_outlets(&pool, &w, 200).await;
    let app = TestApp::spawn(pool.clone()).await;
    let all = db_outlets(&pool, w.org_a).await;
    let t1_ids: HashSet<i64> = all.iter().filter(|o| o.territory_id == Some(w.t1)).map(|o| o.id).collect();
    let t2 = format!("T2 is territory {}", w.t2);

    // A T1 manager asking right on top of T2 outlets still gets only T1 outlets.
    for (who, own) in [(&w.manager, w.t1), (&w.rep, w.t1), (&w.rep2, w.t2)] {
        for path in [
            format!("/api/v1/outlets/nearest?lat={}&lon={}&k=100", IN_T2.0, IN_T2.1),
            format!(
                "/api/v1/outlets/within?lat={}&lon={}&radius_m=100000&limit=1000&include_inactive=true",
                IN_T2.0, IN_T2.1
            ),
            format!("/api/v1/outlets/in-territory/{own}?limit=1000&include_inactive=true"),
        ] {
            let res = app.get(&path, Some(&who.token)).await;
            assert_eq!(res.status, 200, "{path}: {}", res.describe());
            assert!(!res.ids().is_empty(), "{} {path}: {}", who.login, res.describe());
            for i in items(&res) {
                assert_eq!(i["territory_id"].as_i64(), Some(own), "{} {path}: {i} ({t2})", who.login);
            }
        }
    }
    let res = app
        .get(&format!("/api/v1/outlets/nearest?lat={}&lon={}&k=100", IN_T2.0, IN_T2.1), Some(&w.manager.token))
        .await;
    assert!(res.ids().iter().all(|id| t1_ids.contains(id)));
    assert!(!res.ids().contains(&w.o2), "o2 is in T2");
    let cell = LatLng::new(IN_T2.0, IN_T2.1).expect("valid").to_cell(Resolution::Five);
    let res = app.get(&format!("/api/v1/outlets/in-cell/{cell}?limit=1000"), Some(&w.manager.token)).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert!(res.ids().iter().all(|id| t1_ids.contains(id)), "{}", res.describe());

    // Territories outside the scope are 403, another org's are 404, and org B never shows up.
    let path = format!("/api/v1/outlets/in-territory/{}", w.t2);
    assert_problem(&app.get(&path, Some(&w.manager.token)).await, 403, &path);
    let path = format!("/api/v1/outlets/in-territory/{}", w.root);
    assert_problem(&app.get(&path, Some(&w.manager.token)).await, 403, &path);
    let path = format!("/api/v1/outlets/in-territory/{}", w.tb);
    assert_problem(&app.get(&path, Some(&w.admin.token)).await, 404, &path);
    let res = app
        .get(
            &format!("/api/v1/outlets/within?lat={}&lon={}&radius_m=100000", common::IN_TB.0, common::IN_TB.1),
            Some(&w.admin.token),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.json["total"], 0, "{}", res.describe());
    let res = app
        .get(
            &format!("/api/v1/outlets/nearest?lat={}&lon={}&k=100", common::IN_TB.0, common::IN_TB.1),
            Some(&w.admin.token),
        )
        .await;
    assert!(!res.text.contains(common::ORG_B_MARKER), "{}", res.describe());
    let res = app
        .get(
            &format!("/api/v1/outlets/nearest?lat={}&lon={}", common::IN_TB.0, common::IN_TB.1),
            Some(&w.admin_b.token),
        )
        .await;
    assert_eq!(res.ids(), vec![w.ob], "org B sees its own outlet: {}", res.describe());

    // A device acts for its rep: it sees exactly what the rep sees; no token is 401.
    let path = "/api/v1/outlets/nearest";
    let near = format!("{path}?lat={}&lon={}&k=100", IN_T2.0, IN_T2.1);
    let (by_rep, by_device) = (app.get(&near, Some(&w.rep.token)).await, app.get(&near, Some(&w.device.token)).await);
    assert!(
        !by_rep.ids().is_empty() && !by_rep.ids().contains(&w.o2),
        "the rep's territory only: {}",
        by_rep.describe()
    );
    assert_eq!(by_device.ids(), by_rep.ids(), "{}", by_device.describe());
    assert_problem(&app.get(&format!("{path}?lat=1&lon=1"), None).await, 401, path);
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn bad_parameters_are_named(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let t = Some(w.admin.token.as_str());
    let cell4 = LatLng::new(IN_T1.0, IN_T1.1).expect("valid").to_cell(Resolution::Four);
    let cell11 = LatLng::new(IN_T1.0, IN_T1.1).expect("valid").to_cell(Resolution::Eleven);
    let cell10 = LatLng::new(IN_T1.0, IN_T1.1).expect("valid").to_cell(Resolution::Ten);
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("/api/v1/outlets/nearest".into(), vec!["lat", "lon"]),
        ("/api/v1/outlets/nearest?lat=91&lon=10".into(), vec!["lat"]),
        ("/api/v1/outlets/nearest?lat=NaN&lon=10".into(), vec!["lat"]),
        ("/api/v1/outlets/nearest?lat=10&lon=inf".into(), vec!["lon"]),
        ("/api/v1/outlets/nearest?lat=10&lon=-180.5".into(), vec!["lon"]),
        ("/api/v1/outlets/nearest?lat=abc&lon=1".into(), vec!["lat"]),
        ("/api/v1/outlets/nearest?lat=1&lon=1&k=0".into(), vec!["k"]),
        ("/api/v1/outlets/nearest?lat=1&lon=1&k=101".into(), vec!["k"]),
        ("/api/v1/outlets/nearest?lat=1&lon=1&k=2.5".into(), vec!["k"]),
        ("/api/v1/outlets/nearest?lat=1&lon=1&include_inactive=maybe".into(), vec!["include_inactive"]),
        ("/api/v1/outlets/within?lat=1&lon=1".into(), vec!["radius_m"]),
        ("/api/v1/outlets/within?lat=1&lon=1&radius_m=0".into(), vec!["radius_m"]),
        ("/api/v1/outlets/within?lat=1&lon=1&radius_m=-5".into(), vec!["radius_m"]),
        ("/api/v1/outlets/within?lat=1&lon=1&radius_m=NaN".into(), vec!["radius_m"]),
        ("/api/v1/outlets/within?lat=1&lon=1&radius_m=100001".into(), vec!["radius_m"]),
        ("/api/v1/outlets/within?lat=1&lon=1&radius_m=10&limit=1001".into(), vec!["limit"]),
        ("/api/v1/outlets/in-cell/nonsense".into(), vec!["h3"]),
        (format!("/api/v1/outlets/in-cell/{cell4}"), vec!["h3"]),
        (format!("/api/v1/outlets/in-cell/{cell11}"), vec!["h3"]),
        (format!("/api/v1/outlets/in-cell/{cell10}?limit=0"), vec!["limit"]),
        (format!("/api/v1/outlets/in-cell/{cell10}?after=x"), vec!["after"]),
        ("/api/v1/outlets/in-territory/abc".into(), vec!["id"]),
    ];
    for (path, fields) in cases {
        let res = app.get(&path, t).await;
        let instance = path.split('?').next().unwrap_or_default();
        assert_problem(&res, 422, instance);
        let mut got = res.error_fields();
        got.sort();
        assert_eq!(got, fields, "{path}: {}", res.describe());
    }
    let path = "/api/v1/outlets/in-territory/987654";
    assert_problem(&app.get(path, t).await, 404, path);
    // A territory without a boundary has no area to search.
    let bare = sqlx::query_scalar::<_, i64>(
        "INSERT INTO territories (org_id, parent_id, code, name, level) VALUES ($1, $2, 'BARE', 'bare', 'grid') RETURNING id",
    )
    .bind(w.org_a)
    .bind(w.t1)
    .fetch_one(&app.pool)
    .await
    .expect("territory");
    let path = format!("/api/v1/outlets/in-territory/{bare}");
    let res = app.get(&path, t).await;
    assert_problem(&res, 422, &path);
    assert_eq!(res.error_fields(), ["id"]);
    // The endpoints are documented.
    let doc = app.get("/openapi.json", None).await.json;
    for p in [
        "/api/v1/outlets/nearest",
        "/api/v1/outlets/within",
        "/api/v1/outlets/in-cell/{h3}",
        "/api/v1/outlets/in-territory/{id}",
    ] {
        assert!(doc["paths"][p]["get"].is_object(), "{p} missing from the OpenAPI document");
    }
}

/// Polls `check` until it holds; returns how long it took, or `None` after `limit`.
async fn wait_for<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The nearest outlet (including inactive ones when asked) at a point, as (id, distance, status).
async fn nearest_one(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    (lat, lon): (f64, f64),
    inactive: bool,
) -> Option<(i64, f64, String)> {
    let url = format!("{base}/api/v1/outlets/nearest?lat={lat}&lon={lon}&k=1&include_inactive={inactive}");
    let res = common::read(client.get(&url).bearer_auth(token).send().await.expect("request")).await;
    assert_eq!(res.status, 200, "{url}: {}", res.describe());
    let item = items(&res).into_iter().next()?;
    Some((item["id"].as_i64()?, item["distance_m"].as_f64()?, item["status"].as_str()?.to_owned()))
}

fn at(id: i64) -> impl Fn(&Option<(i64, f64, String)>) -> bool {
    move |n| n.as_ref().is_some_and(|(i, d, _)| *i == id && *d < 0.01)
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn changes_made_through_the_api_reach_the_index(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (client, base) = (app.client.clone(), app.base.clone());
    let p1 = (39.9321, 116.0432);
    let p2 = (39.9712, 116.0876);
    let p3 = (39.9456, 116.2543); // in T2

    // The index is loaded and its listener in place before the changes, so they must arrive as
    // notifications (a change made before the first LISTEN is picked up by the initial resync).
    assert_eq!(nearest_one(&client, &base, &w.manager.token, IN_T1, false).await.map(|n| n.0), Some(w.o1));
    let listening = wait_for(Duration::from_secs(30), || async {
        metric(&app.get("/metrics", None).await.text, "fieldvisit_index_listening") == 1
    })
    .await;
    assert!(listening.is_some(), "the index listener is up");

    let res = app
        .post(
            "/api/v1/outlets",
            Some(&w.manager.token),
            &json!({"code": "NEW-1", "name": "New", "channel_type": "agent_point", "tier": "B", "lat": p1.0, "lon": p1.1}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let id = res.json["id"].as_i64().expect("id");
    let seen =
        wait_for(PROPAGATION, || async { at(id)(&nearest_one(&client, &base, &w.manager.token, p1, false).await) })
            .await;
    assert!(seen.is_some(), "a created outlet shows in the index within {PROPAGATION:?}");

    let res =
        app.patch(&format!("/api/v1/outlets/{id}"), Some(&w.manager.token), &json!({"lat": p2.0, "lon": p2.1})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let seen = wait_for(PROPAGATION, || async {
        at(id)(&nearest_one(&client, &base, &w.manager.token, p2, false).await)
            && !at(id)(&nearest_one(&client, &base, &w.manager.token, p1, false).await)
    })
    .await;
    assert!(seen.is_some(), "a moved outlet is found at its new place only");
    let res =
        app.get(&format!("/api/v1/outlets/within?lat={}&lon={}&radius_m=10", p1.0, p1.1), Some(&w.manager.token)).await;
    assert_eq!(res.json["total"], 0, "nothing left at the old place: {}", res.describe());

    let res = app.patch(&format!("/api/v1/outlets/{id}"), Some(&w.manager.token), &json!({"status": "closed"})).await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let seen = wait_for(PROPAGATION, || async {
        !at(id)(&nearest_one(&client, &base, &w.manager.token, p2, false).await)
            && nearest_one(&client, &base, &w.manager.token, p2, true)
                .await
                .is_some_and(|n| n.0 == id && n.2 == "closed")
    })
    .await;
    assert!(seen.is_some(), "a closed outlet leaves the default answers and stays with include_inactive");

    // Reopened and moved into T2 by an org-wide admin: it leaves the T1 manager's scope.
    let res = app
        .patch(
            &format!("/api/v1/outlets/{id}"),
            Some(&w.admin.token),
            &json!({"status": "active", "lat": p3.0, "lon": p3.1}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(res.json["territory_id"].as_i64(), Some(w.t2), "{}", res.describe());
    let seen = wait_for(PROPAGATION, || async {
        at(id)(&nearest_one(&client, &base, &w.admin.token, p3, false).await)
            && nearest_one(&client, &base, &w.manager.token, p3, true).await.is_none_or(|n| n.0 != id)
    })
    .await;
    assert!(seen.is_some(), "the territory change reaches the index and the scope filter");
    let cell = LatLng::new(p3.0, p3.1).expect("valid").to_cell(Resolution::Ten);
    let res = app.get(&format!("/api/v1/outlets/in-cell/{cell}"), Some(&w.rep2.token)).await;
    assert_eq!(res.ids(), vec![id], "{}", res.describe());
    let res = app.get(&format!("/api/v1/outlets/in-territory/{}", w.t2), Some(&w.rep2.token)).await;
    assert!(res.ids().contains(&id), "{}", res.describe());

    // A bulk statement (more than 250 rows) sends one "reload org" notification.
    sqlx::query(
        "INSERT INTO outlets (org_id, code, name, channel_type, tier, location, territory_id)
         SELECT $1, 'BULK' || g, 'bulk', 'other', 'C', ST_SetSRID(ST_MakePoint(116.0 + g * 1e-4, 39.91), 4326), $2
           FROM generate_series(1, 300) g",
    )
    .bind(w.org_a)
    .bind(w.t1)
    .execute(&pool)
    .await
    .expect("bulk insert");
    let seen = wait_for(PROPAGATION, || async {
        let res =
            app.get("/api/v1/outlets/within?lat=39.91&lon=116.015&radius_m=2000&limit=1", Some(&w.manager.token)).await;
        res.json["total"] == 300
    })
    .await;
    assert!(seen.is_some(), "a bulk insert reaches the index");
    let metrics = app.get("/metrics", None).await.text;
    assert!(metric(&metrics, "fieldvisit_index_notifications_total") >= 5, "{metrics}");
    assert_eq!(metric(&metrics, "fieldvisit_index_orgs_loaded"), 1, "{metrics}");
    assert!(metric(&metrics, "fieldvisit_index_outlets") >= 303, "{metrics}");
}

/// The value of an unlabelled integer metric.
fn metric(text: &str, name: &str) -> i64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or_else(|| panic!("metric {name} missing:\n{text}"), |v| v.round() as i64)
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn listener_resynchronises_after_losing_its_connection(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let (client, base) = (app.client.clone(), app.base.clone());
    assert_eq!(nearest_one(&client, &base, &w.admin.token, IN_T1, false).await.map(|n| n.0), Some(w.o1));
    let listening = wait_for(Duration::from_secs(10), || async {
        metric(&app.get("/metrics", None).await.text, "fieldvisit_index_listening") == 1
    })
    .await;
    assert!(listening.is_some(), "the listener connects");

    // A change whose notification is lost: triggers are off in this session (replica role).
    let moved = (39.9611, 116.0777);
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await.expect("replica role");
    sqlx::query("UPDATE outlets SET location = ST_SetSRID(ST_MakePoint($2, $1), 4326) WHERE id = $3")
        .bind(moved.0)
        .bind(moved.1)
        .bind(w.o1)
        .execute(&mut *tx)
        .await
        .expect("silent move");
    tx.commit().await.expect("commit");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !at(w.o1)(&nearest_one(&client, &base, &w.admin.token, moved, false).await),
        "without a notification the index cannot know yet"
    );

    // Another change committed while the listener is being terminated.
    let moved2 = (39.9599, 116.2699);
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query("UPDATE outlets SET location = ST_SetSRID(ST_MakePoint($2, $1), 4326) WHERE id = $3")
        .bind(moved2.0)
        .bind(moved2.1)
        .bind(w.o2)
        .execute(&mut *tx)
        .await
        .expect("move o2");
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
          WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(fieldvisit::index::registry::LISTENER_APPLICATION_NAME)
    .fetch_all(&mut *tx)
    .await
    .expect("terminate the listener");
    tx.commit().await.expect("commit");
    assert_eq!(terminated, [true], "exactly one listener connection, terminated");

    let seen = wait_for(Duration::from_secs(10), || async {
        at(w.o1)(&nearest_one(&client, &base, &w.admin.token, moved, false).await)
            && at(w.o2)(&nearest_one(&client, &base, &w.admin.token, moved2, false).await)
    })
    .await;
    assert!(seen.is_some(), "after reconnecting the index is rebuilt and has both changes");
    let metrics = app.get("/metrics", None).await.text;
    assert!(metric(&metrics, "fieldvisit_index_resyncs_total") >= 1, "{metrics}");

    // And notifications flow again.
    let res = app
        .patch(&format!("/api/v1/outlets/{}", w.o1), Some(&w.admin.token), &json!({"lat": IN_T1.0, "lon": IN_T1.1}))
        .await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let seen =
        wait_for(PROPAGATION, || async { at(w.o1)(&nearest_one(&client, &base, &w.admin.token, IN_T1, false).await) })
            .await;
    assert!(seen.is_some(), "changes after the resync arrive as notifications");
}

/// Kills the child on drop, so a failing assertion never leaves a server running.
struct Running(Child, std::path::PathBuf);

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
        let _ = std::fs::remove_file(&self.1);
    }
}

impl Running {
    fn log_tail(&self) -> String {
        common::log_tail(&self.1)
    }
}

/// Starts `fieldvisit serve` on a free port over the database at `url` and waits until it is ready.
async fn start_server(url: &str, name: &str) -> (Running, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let log = std::env::temp_dir().join(format!("fieldvisit-index-{name}-{port}.log"));
    let log_file = std::fs::File::create(&log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_fieldvisit"))
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("FV_MAP_UI_DIR", "/nonexistent/fieldvisit-test-map-ui")
        .env("FV_DB_MAX_CONNECTIONS", "4")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .spawn()
        .expect("start the fieldvisit binary");
    let mut server = Running(child, log);
    let base = format!("http://127.0.0.1:{port}");
    let client = common::client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = server.0.try_wait().expect("poll child") {
            panic!("server {name} exited early with {status}; log:\n{}", server.log_tail());
        }
        if let Ok(res) = client.get(format!("{base}/readyz")).timeout(Duration::from_secs(5)).send().await
            && res.status().as_u16() == 200
        {
            return (server, base);
        }
        assert!(Instant::now() < deadline, "server {name} not ready within 60 s; log:\n{}", server.log_tail());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn two_server_processes_see_each_others_changes_within_a_second(pool: PgPool) {
    let w = World::seed(&pool).await;
    let base_url = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
    let dbname: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await.expect("db name");
    let url = common::url_for_database(&base_url, &dbname);
    let (a, base_a) = start_server(&url, "a").await;
    let (b, base_b) = start_server(&url, "b").await;
    let client = common::client();
    let token = w.manager.token.clone();
    for base in [&base_a, &base_b] {
        assert_eq!(nearest_one(&client, base, &token, IN_T1, false).await.map(|n| n.0), Some(w.o1));
    }

    let p1 = (39.9288, 116.0199);
    let res = common::read(
        client
            .post(format!("{base_a}/api/v1/outlets"))
            .bearer_auth(&token)
            .json(&json!({"code": "TWO-1", "name": "Two", "channel_type": "phone_mall", "tier": "A", "lat": p1.0, "lon": p1.1}))
            .send()
            .await
            .expect("create through A"),
    )
    .await;
    assert_eq!(res.status, 201, "{}; log A:\n{}", res.describe(), a.log_tail());
    let id = res.json["id"].as_i64().expect("id");
    let took =
        wait_for(PROPAGATION, || async { at(id)(&nearest_one(&client, &base_b, &token, p1, false).await) }).await;
    assert!(
        took.is_some(),
        "B's index did not show the outlet created through A within {PROPAGATION:?}; log B:\n{}",
        b.log_tail()
    );
    eprintln!("create through A seen by B after {took:?}");

    let p2 = (39.9811, 116.0911);
    let res = common::read(
        client
            .patch(format!("{base_a}/api/v1/outlets/{id}"))
            .bearer_auth(&token)
            .json(&json!({"lat": p2.0, "lon": p2.1}))
            .send()
            .await
            .expect("move through A"),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let took = wait_for(PROPAGATION, || async {
        at(id)(&nearest_one(&client, &base_b, &token, p2, false).await)
            && !at(id)(&nearest_one(&client, &base_b, &token, p1, false).await)
    })
    .await;
    assert!(
        took.is_some(),
        "B's index did not show the move made through A within {PROPAGATION:?}; log B:\n{}",
        b.log_tail()
    );
    eprintln!("move through A seen by B after {took:?}");

    // And the other way round: a change through B reaches A.
    let res = common::read(
        client
            .patch(format!("{base_b}/api/v1/outlets/{id}"))
            .bearer_auth(&token)
            .json(&json!({"status": "closed"}))
            .send()
            .await
            .expect("close through B"),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.describe());
    let took =
        wait_for(PROPAGATION, || async { !at(id)(&nearest_one(&client, &base_a, &token, p2, false).await) }).await;
    assert!(
        took.is_some(),
        "A's index did not drop the outlet closed through B within {PROPAGATION:?}; log A:\n{}",
        a.log_tail()
    );
    eprintln!("close through B seen by A after {took:?}");
    drop((a, b));
}
