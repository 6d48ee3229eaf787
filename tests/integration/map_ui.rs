//! The managers' map end to end: `map-ui/tests/e2e.mjs` drives Debian's chromium (playwright-core)
//! against the real server loaded with the demo data. It checks: no console errors and no request
//! leaving 127.0.0.1; the outlet, coverage and territory layers rendered; an outlet's popup
//! figures; a phone's fix moving its rep on the live layer; the resolution switch; the summary panel (figures equal to the API, chart, CSV
//! download); the replay slider moving the rep marker along the track; a visit's evidence and a
//! reviewer's rejection stored with its reason; a district manager seeing only their district; a
//! rep's own visit with the photo and checklist answers their phone posted (the thumbnail decoded
//! in the browser, the answer found wrong marked); the zh/en switch; a 390 px viewport. Screenshots of each view go to `target/map-ui-screenshots/`.
//!
//! Needs `map-ui/dist` (built by `scripts/map-ui.sh`) and `/usr/bin/chromium`
//! (`scripts/test-tools.sh`); `make test` provides both.

use crate::common;

use common::{TestApp, test_config};
use fieldvisit_demo::DemoArgs;
use sqlx::PgPool;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demo team's size: small in the suite (4 reps, one week); `FV_DEMO_REPS=20 FV_DEMO_WEEKS=5`
/// runs the browser test over the full demo, whose `overview.png` is the README's picture.
fn size<T: std::str::FromStr>(var: &str, small: T) -> T {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(small)
}

fn token(lines: &[String], login: &str) -> String {
    common::demo_token(lines, login)
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_map_shows_each_view_to_the_roles_that_may_see_it(pool: PgPool) {
    let dist = root().join("map-ui/dist");
    assert!(dist.join("index.html").is_file(), "map-ui is not built: run scripts/map-ui.sh (make test does)");
    let lines = fieldvisit_demo::load(
        &pool,
        &DemoArgs {
            data_dir: root().join("fixtures"),
            anchor_date: None,
            reps: size("FV_DEMO_REPS", 4),
            weeks: size("FV_DEMO_WEEKS", 1),
        },
    )
    .await
    .expect("demo loads");
    let mut config = test_config("unused");
    config.map_ui_dir = dist;
    let app = TestApp::spawn_with(pool, config).await;
    common::run_browser_test(
        "e2e.mjs",
        &[
            ("FV_BASE_URL", app.base.clone()),
            ("FV_ADMIN_TOKEN", token(&lines, "admin")),
            ("FV_MANAGER_D1_TOKEN", token(&lines, "manager-d1")),
            ("FV_REP_TOKEN", token(&lines, "rep1")),
            ("FV_DEVICE_TOKEN", token(&lines, "rep1-phone")),
        ],
        std::time::Duration::from_secs(600),
        15,
    )
    .await;
}

/// The web apps' pure helpers (formatting, i18n tables, API client, plan and summary figures)
/// under node's own test runner: `npm test` in map-ui/.
#[test]
fn the_web_apps_pure_helpers_pass_their_unit_tests() {
    let out = std::process::Command::new("npm")
        .args(["test", "--silent"])
        .current_dir(root().join("map-ui"))
        .output()
        .expect("npm runs (scripts/map-ui.sh installs Node.js)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let passed = stdout.lines().find_map(|l| l.strip_prefix("# pass ")).and_then(|n| n.trim().parse::<u32>().ok());
    assert!(passed.is_some_and(|n| n >= 30), "{stdout}");
}

/// The web apps' files go out as built: brotli or gzip (precompressed by `map-ui/build.mjs`) to a
/// client that accepts it, as they are to one that does not, with the same content type, so a
/// phone on a slow network downloads a fraction of the bytes.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_web_apps_are_sent_compressed_to_clients_that_accept_it(pool: PgPool) {
    let dist = root().join("map-ui/dist");
    assert!(dist.join("app/index.html").is_file(), "map-ui is not built: run scripts/map-ui.sh (make test does)");
    let plain_js = std::fs::read(dist.join("app/app.js")).expect("app.js");
    let app = TestApp::spawn_with(pool, fieldvisit::config::Config { map_ui_dir: dist, ..test_config("unused") }).await;
    for (path, kind) in [("/app/app.js", "javascript"), ("/app/", "text/html"), ("/app.js", "javascript")] {
        for (accept, encoding) in [("br, gzip", Some("br")), ("gzip", Some("gzip")), ("identity", None)] {
            let res = app.client.get(app.url(path)).header("accept-encoding", accept).send().await.expect("GET");
            let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
            assert_eq!(res.status(), 200, "{path} {accept}");
            assert!(header("content-type").is_some_and(|t| t.contains(kind)), "{path} {accept}: {:?}", res.headers());
            assert_eq!(header("content-encoding").as_deref(), encoding, "{path} {accept}");
            let body = res.bytes().await.expect("body");
            if path == "/app/app.js" {
                let decoded = match encoding {
                    Some("gzip") => {
                        let mut out = Vec::new();
                        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
                            .expect("gzip");
                        out
                    }
                    Some(_) => {
                        assert!(body.len() * 2 < plain_js.len(), "brotli is smaller");
                        continue;
                    }
                    None => body.to_vec(),
                };
                assert_eq!(decoded, plain_js, "{accept}: the same file");
            }
        }
    }
}
