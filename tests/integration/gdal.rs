//! GDAL reads the server as a real client: `ogrinfo` with the OAPIF driver lists the collections
//! of `/ogc` and reads the outlets with their attributes and geometry, with the caller's token and
//! scope (`make test` installs gdal-bin when `ogrinfo` is missing: scripts/test-tools.sh).

use crate::common;

use common::{TestApp, World};
use sqlx::PgPool;
use std::process::Command;

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn ogrinfo_lists_the_collections_and_reads_scoped_outlets(pool: PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool.clone()).await;
    let base = app.base.clone();
    let admin = w.admin.token.clone();
    let manager = w.manager.token.clone();
    // ogrinfo blocks; the server answers on the test runtime meanwhile.
    let (listing, all, t1) = tokio::task::spawn_blocking(move || {
        let app = TestAppRef { base };
        (app.run(&admin, &[]), app.run(&admin, &["outlets"]), app.run(&manager, &["outlets"]))
    })
    .await
    .expect("ogrinfo thread");
    assert!(listing.contains("outlets (title: Outlets) (Point)"), "{listing}");
    assert!(listing.contains("territories (title: Territories) (Multi Polygon)"), "{listing}");
    assert!(all.contains("Feature Count: 2"), "{all}");
    assert!(all.contains("code (String) = O1") && all.contains("code (String) = O2"), "{all}");
    assert!(all.contains(&format!("POINT ({} {})", common::IN_T1.1, common::IN_T1.0)), "lon lat: {all}");
    assert!(all.contains("tier (String) = A"), "{all}");
    // A T1 manager's client sees O1 only.
    assert!(t1.contains("Feature Count: 1") && t1.contains("code (String) = O1"), "{t1}");
    assert!(!t1.contains("O2"), "{t1}");
    drop(app);
}

/// `ogrinfo -ro OAPIF:<server>/ogc <args>` with a token in the Authorization header, from a
/// blocking thread.
struct TestAppRef {
    base: String,
}

impl TestAppRef {
    fn run(&self, token: &str, args: &[&str]) -> String {
        let out = Command::new("ogrinfo")
            .arg("-ro")
            .arg(format!("OAPIF:{}/ogc", self.base))
            .args(args)
            .env("GDAL_HTTP_HEADERS", format!("Authorization: Bearer {token}"))
            .env("GDAL_HTTP_TIMEOUT", "30")
            .output()
            .expect("ogrinfo runs (make test installs gdal-bin: scripts/test-tools.sh)");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "ogrinfo failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    }
}
