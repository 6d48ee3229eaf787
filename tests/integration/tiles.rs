//! Vector tiles over the real server: a tile decodes (with geozero's MVT reader and with GDAL's
//! MVT driver) to exactly the outlets inside it, with their properties; the caller's scope holds;
//! the TileJSON points at the tiles.

use crate::common;

use common::{TestApp, World, assert_problem};
use geozero::mvt::{Message, Tile};
use sqlx::PgPool;

/// The XYZ tile holding a position at `z` (the slippy-map formula).
fn tile_of((lat, lon): (f64, f64), zoom: u8) -> (u32, u32) {
    let tiles = f64::from(1u32 << zoom);
    let column = ((lon + 180.0) / 360.0 * tiles).floor() as u32;
    let rad = lat.to_radians();
    let row = ((1.0 - (rad.tan() + 1.0 / rad.cos()).ln() / std::f64::consts::PI) / 2.0 * tiles).floor() as u32;
    (column, row)
}

async fn tile(app: &TestApp, token: &str, z: u8, (x, y): (u32, u32)) -> Tile {
    let res = app
        .request(reqwest::Method::GET, &format!("/tiles/outlets/{z}/{x}/{y}.mvt"), Some(token))
        .send()
        .await
        .expect("tile request");
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/vnd.mapbox-vector-tile")
    );
    let bytes = res.bytes().await.expect("tile body");
    Tile::decode(bytes.as_ref()).expect("a valid MVT")
}

fn codes(tile: &Tile) -> Vec<String> {
    let layer = &tile.layers[0];
    layer
        .features
        .iter()
        .map(|f| {
            let k = layer.keys.iter().position(|k| k == "code").expect("code key") as u32;
            let v = f.tags.chunks(2).find(|t| t[0] == k).expect("code tag")[1];
            layer.values[v as usize].string_value.clone().expect("code value")
        })
        .collect()
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn outlet_tiles_decode_to_the_outlets_inside_them(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let z = 12;
    let t1 = tile_of(common::IN_T1, z);
    let t2 = tile_of(common::IN_T2, z);
    assert_ne!(t1, t2);

    let admin_t1 = tile(&app, &w.admin.token, z, t1).await;
    assert_eq!(admin_t1.layers.len(), 1);
    assert_eq!(admin_t1.layers[0].name, "outlets");
    assert_eq!(codes(&admin_t1), vec!["O1".to_owned()]);
    assert_eq!(admin_t1.layers[0].features[0].id, Some(w.o1 as u64));
    assert_eq!(codes(&tile(&app, &w.admin.token, z, t2).await), vec!["O2".to_owned()]);
    // The world tile holds both; a T1 manager's holds O1 only, and T2's tile is empty for them.
    let mut world = codes(&tile(&app, &w.admin.token, 0, (0, 0)).await);
    world.sort();
    assert_eq!(world, vec!["O1".to_owned(), "O2".to_owned()]);
    assert_eq!(codes(&tile(&app, &w.manager.token, 0, (0, 0)).await), vec!["O1".to_owned()]);
    assert!(tile(&app, &w.manager.token, z, t2).await.layers[0].features.is_empty());

    // GDAL's MVT driver reads the tile too, and puts O1 where it is.
    let res = app
        .request(reqwest::Method::GET, &format!("/tiles/outlets/{z}/{}/{}.mvt", t1.0, t1.1), Some(&w.admin.token))
        .send()
        .await
        .expect("tile");
    let bytes = res.bytes().await.expect("body");
    let dir = std::env::temp_dir().join(format!("fv-tile-{}", std::process::id()));
    let path = dir.join(format!("{z}/{}/{}.pbf", t1.0, t1.1));
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(&path, &bytes).expect("write tile");
    let out = std::process::Command::new("ogrinfo")
        .args(["-ro", "-al", "-oo", "CLIP=NO"])
        .arg(format!("MVT:{}", path.display()))
        .output()
        .expect("ogrinfo runs (make test installs gdal-bin)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    std::fs::remove_dir_all(&dir).ok();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Feature Count: 1") && text.contains("code (String) = O1"), "{text}");
    assert!(text.contains("status (String) = never_visited"), "{text}");

    // TileJSON, and bad tiles.
    let tj = app.get("/tiles/outlets.json", Some(&w.manager.token)).await;
    assert_eq!(tj.json["tilejson"], "3.0.0", "{}", tj.describe());
    let template = tj.json["tiles"][0].as_str().expect("template");
    assert!(template.ends_with("/tiles/outlets/{z}/{x}/{y}.mvt"), "{template}");
    assert_eq!(tj.json["vector_layers"][0]["id"], "outlets");
    for bad in ["/tiles/outlets/3/8/0.mvt", "/tiles/outlets/23/0/0.mvt", "/tiles/outlets/1/0/0.png"] {
        let res = app.get(bad, Some(&w.admin.token)).await;
        assert_eq!(res.status / 100, 4, "{bad}: {}", res.describe());
    }
    assert_problem(&app.get("/tiles/outlets/0/0/0.mvt", Some(&w.rep.token)).await, 403, "/tiles/outlets/0/0/0.mvt");
}

/// The rings of a polygon feature in tile coordinates (MVT 4.3 commands).
fn rings(geometry: &[u32]) -> Vec<Vec<(i64, i64)>> {
    let unzig = |v: u32| i64::from((v >> 1) as i32 ^ -((v & 1) as i32));
    let (mut rings, mut at, mut i) = (Vec::new(), (0i64, 0i64), 0);
    while i < geometry.len() {
        let (id, count) = (geometry[i] & 7, geometry[i] >> 3);
        i += 1;
        match id {
            1 | 2 => {
                for _ in 0..count {
                    at = (at.0 + unzig(geometry[i]), at.1 + unzig(geometry[i + 1]));
                    i += 2;
                    if id == 1 {
                        rings.push(Vec::new());
                    }
                    rings.last_mut().expect("MoveTo first").push(at);
                }
            }
            7 => {}
            other => panic!("unknown command {other}"),
        }
    }
    rings
}

/// Whether `p` lies inside the ring (ray casting).
fn inside(ring: &[(i64, i64)], p: (f64, f64)) -> bool {
    let mut inside = false;
    for i in 0..ring.len() {
        let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
        let (ax, ay, bx, by) = (a.0 as f64, a.1 as f64, b.0 as f64, b.1 as f64);
        if (ay > p.1) != (by > p.1) && p.0 < (bx - ax) * (p.1 - ay) / (by - ay) + ax {
            inside = !inside;
        }
    }
    inside
}

fn property(
    layer: &geozero::mvt::tile::Layer,
    f: &geozero::mvt::tile::Feature,
    key: &str,
) -> Option<geozero::mvt::tile::Value> {
    let k = layer.keys.iter().position(|k| k == key)? as u32;
    let v = f.tags.chunks(2).find(|t| t[0] == k)?[1];
    layer.values.get(v as usize).cloned()
}

/// Coverage tiles: the H3 cells of the outlets of U in the tile with their figures, as hexagons
/// that hold their outlets, wound as MVT exterior rings; scoped like the outlet tiles.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn coverage_tiles_hold_the_cells_of_the_outlets_with_their_figures(pool: PgPool) {
    let w = World::seed(&pool).await;
    sqlx::query("UPDATE outlet_status_changes SET changed_at = now() - interval '30 days' WHERE org_id = $1")
        .bind(w.org_a)
        .execute(&pool)
        .await
        .expect("registered a month ago");
    sqlx::query(
        "INSERT INTO visits (org_id, rep_id, outlet_id, rep_day, arrival, departure, dwell_s, verdict, ping_count, rule_version)
         SELECT $1, $2, $3, (now() AT TIME ZONE o.timezone)::date, now(), now(), 900, 'verified', 10, 'visits-v3'
           FROM orgs o WHERE o.id = $1",
    )
    .bind(w.org_a)
    .bind(w.rep.id)
    .bind(w.o1)
    .execute(&pool)
    .await
    .expect("a verified visit at o1 today");
    let mut config = common::test_config("unused");
    config.derive_visits = false;
    let app = TestApp::spawn_with(pool.clone(), config).await;
    let get = |token: String, path: String| {
        let app = &app;
        async move {
            let res = app.request(reqwest::Method::GET, &path, Some(&token)).send().await.expect("tile request");
            assert_eq!(res.status(), 200, "{path}");
            Tile::decode(res.bytes().await.expect("body").as_ref()).expect("a valid MVT")
        }
    };
    let z = 12;
    for (position, visited) in [(common::IN_T1, true), (common::IN_T2, false)] {
        let (x, y) = tile_of(position, z);
        let tile = get(w.admin.token.clone(), format!("/tiles/coverage/{z}/{x}/{y}.mvt?h3_res=8")).await;
        let layer = &tile.layers[0];
        assert_eq!((layer.name.as_str(), layer.features.len()), ("coverage", 1), "{position:?}");
        let f = &layer.features[0];
        let cell = h3o::LatLng::new(position.0, position.1).expect("position").to_cell(h3o::Resolution::Eight);
        assert_eq!(property(layer, f, "cell").and_then(|v| v.string_value), Some(cell.to_string()));
        assert_eq!(f.id, Some(u64::from(cell)));
        assert_eq!(property(layer, f, "active_outlets").and_then(|v| v.uint_value), Some(1));
        assert_eq!(property(layer, f, "visited_outlets").and_then(|v| v.uint_value), Some(u64::from(visited)));
        assert_eq!(property(layer, f, "white_space").and_then(|v| v.bool_value), Some(!visited));
        assert_eq!(
            property(layer, f, "coverage_pct").and_then(|v| v.double_value),
            Some(if visited { 100.0 } else { 0.0 })
        );
        // A hexagon around the outlet, wound clockwise on screen (positive surveyor's area).
        let ring = &rings(&f.geometry)[0];
        assert_eq!(ring.len(), 6, "{ring:?}");
        let area: i64 = (0..6).map(|i| ring[i].0 * ring[(i + 1) % 6].1 - ring[(i + 1) % 6].0 * ring[i].1).sum();
        assert!(area > 0, "exterior ring winding: {ring:?}");
        let n = f64::from(1u32 << z);
        let px = ((position.1 + 180.0) / 360.0 * n - f64::from(x)) * 4096.0;
        let rad = position.0.to_radians();
        let py = ((1.0 - (rad.tan() + 1.0 / rad.cos()).ln() / std::f64::consts::PI) / 2.0 * n - f64::from(y)) * 4096.0;
        assert!(inside(ring, (px, py)), "the cell holds its outlet: {ring:?} ({px}, {py})");
    }
    // The world tile holds both cells; a T1 manager sees only T1's.
    let world = get(w.admin.token.clone(), "/tiles/coverage/0/0/0.mvt?h3_res=8".to_owned()).await;
    assert_eq!(world.layers[0].features.len(), 2);
    let mine = get(w.manager.token.clone(), "/tiles/coverage/0/0/0.mvt?h3_res=8".to_owned()).await;
    assert_eq!(mine.layers[0].features.len(), 1);
    let (x2, y2) = tile_of(common::IN_T2, z);
    assert!(
        get(w.manager.token.clone(), format!("/tiles/coverage/{z}/{x2}/{y2}.mvt")).await.layers[0].features.is_empty()
    );
    // A weak ETag answers 304 when held; gzip when accepted.
    let path = format!("/tiles/coverage/{z}/{}/{}.mvt", tile_of(common::IN_T1, z).0, tile_of(common::IN_T1, z).1);
    let first = app.request(reqwest::Method::GET, &path, Some(&w.admin.token)).send().await.expect("tile");
    let etag = first.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").to_owned();
    assert!(etag.starts_with("W/\""), "{etag}");
    let again = app
        .request(reqwest::Method::GET, &path, Some(&w.admin.token))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("tile");
    assert_eq!(again.status(), 304);
    let zipped = app
        .request(reqwest::Method::GET, &path, Some(&w.admin.token))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("tile");
    assert_eq!(zipped.headers().get("content-encoding").and_then(|v| v.to_str().ok()), Some("gzip"));
    // Default resolution by zoom; TileJSON; bad requests.
    assert_eq!(get(w.admin.token.clone(), "/tiles/coverage/0/0/0.mvt".to_owned()).await.layers[0].name, "coverage");
    let tj = app.get("/tiles/coverage.json", Some(&w.manager.token)).await;
    assert!(
        tj.json["tiles"][0].as_str().is_some_and(|t| t.ends_with("/tiles/coverage/{z}/{x}/{y}.mvt")),
        "{}",
        tj.describe()
    );
    let bad = app.get("/tiles/coverage/0/0/0.mvt?h3_res=4", Some(&w.admin.token)).await;
    assert_problem(&bad, 422, "/tiles/coverage/0/0/0.mvt");
    assert!(bad.text.contains("h3_res"), "{}", bad.describe());
    assert_problem(&app.get("/tiles/coverage/0/0/0.mvt", Some(&w.rep.token)).await, 403, "/tiles/coverage/0/0/0.mvt");
}
