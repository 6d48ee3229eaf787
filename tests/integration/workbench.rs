//! The managers' workbench in the browser: `map-ui/tests/workbench.mjs` runs every workflow of
//! `map-ui/tests/workbench/` (each in its own browser context, so each stands alone) against one
//! real server loaded with a small demo team, sharing the server and Chromium between them. Every
//! workflow must pass: the count of `ok` lines is the count of workflow files.
//!
//! Needs `map-ui/dist` (built by `scripts/map-ui.sh`) and `/usr/bin/chromium`
//! (`scripts/test-tools.sh`); `make test` provides both. One workflow by hand:
//! `FV_WORKFLOW=navigation cargo nextest run -E 'test(/workbench/)'`.

use crate::common;

use common::{TestApp, test_config};
use fieldvisit_demo::DemoArgs;
use sqlx::PgPool;
use std::path::PathBuf;

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn every_workbench_workflow_passes_in_the_browser(pool: PgPool) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dist = root.join("map-ui/dist");
    assert!(dist.join("index.html").is_file(), "map-ui is not built: run scripts/map-ui.sh (make test does)");
    let filter = std::env::var("FV_WORKFLOW").unwrap_or_default();
    let workflows = std::fs::read_dir(root.join("map-ui/tests/workbench"))
        .expect("map-ui/tests/workbench")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| {
            std::path::Path::new(f).extension().is_some_and(|x| x.eq_ignore_ascii_case("mjs")) && !f.starts_with('_')
        })
        .filter(|f| filter.is_empty() || f.contains(&filter))
        .count();
    assert!(workflows > 0, "no workflow matches `{filter}`");
    let lines = fieldvisit_demo::load(
        &pool,
        &DemoArgs { data_dir: root.join("fixtures"), anchor_date: None, reps: 4, weeks: 1 },
    )
    .await
    .expect("demo loads");
    let mut config = test_config("unused");
    config.map_ui_dir = dist;
    let app = TestApp::spawn_with(pool, config).await;
    let token = |login: &str| common::demo_token(&lines, login);
    common::run_browser_test(
        "workbench.mjs",
        &[
            ("FV_BASE_URL", app.base.clone()),
            ("FV_ADMIN_TOKEN", token("admin")),
            ("FV_MANAGER_D1_TOKEN", token("manager-d1")),
            ("FV_SUPERVISOR_TOKEN", token("supervisor")),
            ("FV_REP_TOKEN", token("rep1")),
            ("FV_WORKFLOW", filter),
        ],
        std::time::Duration::from_secs(900),
        workflows,
    )
    .await;
}
