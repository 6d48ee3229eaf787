//! Vector tiles over the real server: a tile decodes (with geozero's MVT reader and with GDAL's
//! MVT driver) to exactly the outlets inside it, with their properties; the caller's scope holds;
//! the TileJSON points at the tiles.

mod common;

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

#[sqlx::test(migrations = "./migrations")]
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
