//! The offline street basemap (issue 27 item 7): the test builds a small `PMTiles` extract at run
//! time (the `pmtiles` crate's writer, MVT tiles encoded with geozero's protobuf types) holding a
//! few generated Beijing streets with Chinese names in the Protomaps basemap schema (`earth`,
//! `water`, `buildings`, `roads`, `places`) at zooms 12-15, starts the server with
//! `FV_BASEMAP_PMTILES` pointing at it, and checks
//! - the file over HTTP: a full GET (200, `Accept-Ranges: bytes`, an `ETag`), byte ranges (206
//!   with the right bytes and `Content-Range`), a range past the end (416 problem+json), `If-Range`
//!   with another tag (the whole file), `If-None-Match` (304), HEAD, and `/config.json` naming it;
//! - in Chromium (`map-ui/tests/basemap.mjs`): the managers' map signed in draws the road label
//!   layer with 长安街 from the file, switches its labels to `name:zh` with the page's language,
//!   fetches only the shipped Latin glyphs and nothing off
//!   127.0.0.1, with no console error, and saves `target/map-ui-screenshots/basemap.png`.

use crate::common::{self, TestApp, World, test_config};
use fieldvisit::domain::tiles::to_tile_unclipped;
use geozero::mvt::tile::{Feature, GeomType, Layer};
use geozero::mvt::{Message, TagsBuilder, Tile, TileValue};
use pmtiles::{PmTilesWriter, TileCoord, TileType};
use sqlx::PgPool;
use std::path::{Path, PathBuf};

/// A generated street: Protomaps `roads` kind, its names, and its vertices (lon, lat).
struct Street {
    kind: &'static str,
    name: &'static str,
    name_en: Option<&'static str>,
    line: &'static [(f64, f64)],
}

/// Streets near Tian'anmen (positions approximate; only the names matter to the test).
const STREETS: &[Street] = &[
    Street {
        kind: "major_road",
        name: "长安街",
        name_en: None,
        line: &[(116.360, 39.9075), (116.390, 39.9076), (116.420, 39.9077), (116.450, 39.9078)],
    },
    Street {
        kind: "major_road",
        name: "王府井大街",
        name_en: Some("Wangfujing Street"),
        line: &[(116.4105, 39.9080), (116.4110, 39.9180)],
    },
    Street {
        kind: "minor_road", name: "南池子大街", name_en: None, line: &[(116.4010, 39.9080), (116.4012, 39.9160)]
    },
    Street {
        kind: "highway",
        name: "二环路",
        name_en: Some("2nd Ring Road"),
        line: &[(116.360, 39.8990), (116.450, 39.8992)],
    },
];

/// The extract's area and zooms.
const WEST: f64 = 116.35;
const EAST: f64 = 116.46;
const SOUTH: f64 = 39.895;
const NORTH: f64 = 39.925;
const ZOOMS: std::ops::RangeInclusive<u8> = 12..=15;

fn tile_of(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor() as u32;
    let lat = lat.to_radians();
    let y = ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor() as u32;
    (x, y)
}

fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn command(id: u32, count: u32) -> u32 {
    (count << 3) | id
}

/// MVT geometry of a line or a closed ring (`close`) through `points` (tile coordinates).
fn geometry(points: &[(i32, i32)], close: bool) -> Vec<u32> {
    let mut g = vec![command(1, 1), zigzag(points[0].0), zigzag(points[0].1)];
    g.push(command(2, points.len() as u32 - 1));
    for w in points.windows(2) {
        g.extend([zigzag(w[1].0 - w[0].0), zigzag(w[1].1 - w[0].1)]);
    }
    if close {
        g.push(command(7, 1));
    }
    g
}

/// A feature of a test tile: geometry type, MVT geometry, properties.
type TestFeature<'a> = (GeomType, Vec<u32>, Vec<(&'a str, TileValue)>);

/// One layer of a tile.
fn layer(name: &str, features: Vec<TestFeature<'_>>) -> Layer {
    let mut tags = TagsBuilder::new();
    let features = features
        .into_iter()
        .enumerate()
        .map(|(i, (kind, geometry, props))| {
            let mut feature_tags = Vec::new();
            for (k, v) in props {
                let (ki, vi) = tags.insert(k.to_owned(), v);
                feature_tags.extend([ki, vi]);
            }
            Feature { id: Some(i as u64 + 1), tags: feature_tags, r#type: Some(kind as i32), geometry }
        })
        .collect();
    let (keys, values) = tags.into_tags();
    Layer {
        version: 2,
        name: name.to_owned(),
        features,
        keys,
        values: values.into_iter().map(Into::into).collect(),
        extent: Some(4096),
    }
}

/// The tile z/x/y of the extract: land over the whole tile, a pond, a building, the streets, Beijing.
fn street_tile(z: u8, x: u32, y: u32) -> Vec<u8> {
    let at = |lon: f64, lat: f64| to_tile_unclipped(lat, lon, z, x, y);
    let s = |v: &str| TileValue::Str(v.to_owned());
    let square = [(-64, -64), (4160, -64), (4160, 4160), (-64, 4160)];
    let earth = layer("earth", vec![(GeomType::Polygon, geometry(&square, true), vec![("kind", s("earth"))])]);
    let ring = |w: f64, s_: f64, e: f64, n: f64| [at(w, n), at(e, n), at(e, s_), at(w, s_)];
    let water = layer(
        "water",
        vec![(GeomType::Polygon, geometry(&ring(116.383, 39.912, 116.388, 39.918), true), vec![("kind", s("lake"))])],
    );
    let buildings = layer(
        "buildings",
        vec![(
            GeomType::Polygon,
            geometry(&ring(116.4115, 39.910, 116.4135, 39.912), true),
            vec![("kind", s("building"))],
        )],
    );
    let roads = layer(
        "roads",
        STREETS
            .iter()
            .map(|st| {
                let points: Vec<(i32, i32)> = st.line.iter().map(|&(lon, lat)| at(lon, lat)).collect();
                let mut props = vec![("kind", s(st.kind)), ("name", s(st.name)), ("name:zh", s(st.name))];
                if let Some(en) = st.name_en {
                    props.push(("name:en", s(en)));
                }
                (GeomType::Linestring, geometry(&points, false), props)
            })
            .collect(),
    );
    let (px, py) = at(116.3975, 39.9087);
    let places = layer(
        "places",
        vec![(
            GeomType::Point,
            vec![command(1, 1), zigzag(px), zigzag(py)],
            vec![("kind", s("locality")), ("name", s("北京")), ("name:en", s("Beijing"))],
        )],
    );
    Tile { layers: vec![earth, water, buildings, roads, places] }.encode_to_vec()
}

/// Writes the extract to `path`: every tile of [`ZOOMS`] over the area, in tile-id order.
fn write_extract(path: &Path) {
    let file = std::fs::File::create(path).expect("create the extract");
    let layers: Vec<serde_json::Value> = ["earth", "water", "buildings", "roads", "places"]
        .into_iter()
        .map(|id| serde_json::json!({"id": id, "fields": {}}))
        .collect();
    let metadata = serde_json::json!({"name": "fieldvisit test streets", "vector_layers": layers});
    let mut writer = PmTilesWriter::new(TileType::Mvt)
        .min_zoom(*ZOOMS.start())
        .max_zoom(*ZOOMS.end())
        .bounds(WEST, SOUTH, EAST, NORTH)
        .center(116.405, 39.908)
        .center_zoom(14)
        .metadata(metadata.to_string())
        .create(file)
        .expect("pmtiles writer");
    let mut coords = Vec::new();
    for z in ZOOMS {
        let (x0, y0) = tile_of(WEST, NORTH, z);
        let (x1, y1) = tile_of(EAST, SOUTH, z);
        for x in x0..=x1 {
            for y in y0..=y1 {
                coords.push(TileCoord::new(z, x, y).expect("tile coordinates"));
            }
        }
    }
    coords.sort_by_key(|c| pmtiles::TileId::from(*c).value());
    for c in coords {
        writer.add_tile(c, &street_tile(c.z(), c.x(), c.y())).expect("add a tile");
    }
    writer.finalize().expect("finish the extract");
}

/// The server with the extract as `FV_BASEMAP_PMTILES` and the built map UI; the extract's path.
async fn spawn(pool: PgPool, dir: &Path) -> (TestApp, PathBuf) {
    let extract = dir.join("beijing.pmtiles");
    write_extract(&extract);
    let mut config = test_config("unused");
    config.basemap_pmtiles = Some(extract.clone());
    config.map_ui_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("map-ui/dist");
    (TestApp::spawn_with(pool, config).await, extract)
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_street_basemap_is_served_in_byte_ranges(pool: PgPool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (app, extract) = spawn(pool, dir.path()).await;
    let bytes = std::fs::read(&extract).expect("read the extract");
    let len = bytes.len();
    assert!(bytes.starts_with(b"PMTiles\x03"), "a PMTiles v3 archive");
    let url = format!("{}/basemap/streets.pmtiles", app.base);
    let get = |headers: &[(&str, &str)]| {
        let mut req = app.client.get(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };

    let config = app.get("/config.json", None).await;
    assert_eq!(config.status, 200, "{}", config.describe());
    assert_eq!(config.json["basemap_pmtiles"], "/basemap/streets.pmtiles", "{}", config.describe());
    assert!(config.json["basemap_style"].is_null() && config.json["basemap_xyz"].is_null(), "{}", config.describe());

    // The whole file.
    let res = get(&[]).await.expect("GET");
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["content-type"], "application/vnd.pmtiles");
    let etag = h["etag"].to_str().expect("ascii etag").to_owned();
    assert!(etag.starts_with('"'), "a strong tag: {etag}");
    assert_eq!(res.bytes().await.expect("body").as_ref(), bytes.as_slice());

    // The header, as the pmtiles client asks first, and a range in the middle.
    for (from, to) in [(0, 126), (len / 3, len / 2)] {
        let res = get(&[("range", &format!("bytes={from}-{to}"))]).await.expect("range GET");
        assert_eq!(res.status(), 206);
        assert_eq!(res.headers()["content-range"], format!("bytes {from}-{to}/{len}").as_str());
        assert_eq!(res.headers()["etag"], etag.as_str());
        assert_eq!(res.bytes().await.expect("body").as_ref(), &bytes[from..=to]);
    }
    // The same range of the same file (If-Range with its tag), and of another file: the whole.
    let res = get(&[("range", "bytes=0-9"), ("if-range", &etag)]).await.expect("If-Range");
    assert_eq!(res.status(), 206);
    let res = get(&[("range", "bytes=0-9"), ("if-range", "\"an-older-file\"")]).await.expect("If-Range");
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.expect("body").len(), len);
    // Past the end: 416 naming the file's length.
    let res = get(&[("range", &format!("bytes={}-{}", len + 10, len + 20))]).await.expect("bad range");
    assert_eq!(res.status(), 416);
    assert_eq!(res.headers()["content-range"], format!("bytes */{len}").as_str());
    assert!(res.headers()["content-type"].to_str().is_ok_and(|c| c.starts_with("application/problem+json")));
    let problem: serde_json::Value = res.json().await.expect("problem json");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains(&len.to_string())), "{problem}");
    assert_eq!(problem["instance"], "/basemap/streets.pmtiles");
    // Kept by the client: 304.
    let res = get(&[("if-none-match", &etag)]).await.expect("If-None-Match");
    assert_eq!(res.status(), 304);
    // HEAD: the length, no body. Other methods are refused.
    let res = app.client.head(&url).send().await.expect("HEAD");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-length"], len.to_string().as_str());
    let res = app.client.post(&url).body("x").send().await.expect("POST");
    assert_eq!(res.status(), 405);

    // Documented: every status the route answers.
    let doc = app.get("/openapi.json", None).await;
    let responses = &doc.json["paths"]["/basemap/streets.pmtiles"]["get"]["responses"];
    for status in ["200", "206", "304", "404", "416"] {
        assert!(!responses[status].is_null(), "{status} missing: {responses}");
    }
    assert!(!responses["206"]["content"]["application/vnd.pmtiles"].is_null(), "{responses}");
    assert!(!doc.json["paths"]["/config.json"]["get"].is_null());
}

/// Without `FV_BASEMAP_PMTILES` the route says so (404 problem+json) and the map keeps the land.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn without_an_extract_the_route_is_404_and_the_config_names_none(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app.get("/basemap/streets.pmtiles", None).await;
    common::assert_problem(&res, 404, "/basemap/streets.pmtiles");
    assert!(res.text.contains("FV_BASEMAP_PMTILES"), "{}", res.describe());
    let config = app.get("/config.json", None).await;
    assert!(config.json["basemap_pmtiles"].is_null(), "{}", config.describe());
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_managers_map_draws_named_streets_from_the_extract(pool: PgPool) {
    let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("map-ui/dist");
    assert!(dist.join("glyphs").is_dir(), "map-ui is not built with glyphs: run scripts/map-ui.sh (make test does)");
    let w = World::seed(&pool).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (app, _) = spawn(pool, dir.path()).await;
    common::run_browser_test(
        "basemap.mjs",
        &[("FV_BASE_URL", app.base.clone()), ("FV_ADMIN_TOKEN", w.admin.token.clone())],
        std::time::Duration::from_secs(300),
        6,
    )
    .await;
}
