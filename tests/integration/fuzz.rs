//! HTTP-level fuzzing of every operation in /openapi.json with Schemathesis (scripts/fuzz.sh),
//! against the real server over a seeded world, with the org admin's token: no server error, no
//! response a standard client cannot read, every status code and content type documented, every
//! body as its schema says, every schema-valid request accepted and every invalid one refused (all
//! default checks; the rules JSON Schema cannot express are listed, each with its reason, in
//! schemathesis.toml). Token revocation (it would end the run's own credential) and the SSE stream
//! are left out. The at-length run is `scripts/fuzz.sh URL TOKEN --max-examples 200`.

use crate::common::{TestApp, World};
use std::process::Command;

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn schemathesis_finds_no_server_error_and_nothing_undocumented(pool: sqlx::PgPool) {
    let w = World::seed(&pool).await;
    let app = TestApp::spawn(pool).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fuzz.sh");
    let base = app.url("");
    let token = w.admin.token.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(script)
            .args([base.as_str(), token.as_str(), "--max-examples", "10", "--exclude-path-regex", "/token$|/live$"])
            .env("NO_COLOR", "1")
            .output()
    })
    .await
    .expect("join")
    .expect("scripts/fuzz.sh runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !text.contains("Network Error"),
        "schemathesis failed ({}):\n{}\n{}",
        out.status,
        text.lines().rev().take(400).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}
