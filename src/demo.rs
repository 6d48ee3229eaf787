//! Deterministic demo data (see `fieldvisit demo`).

use sqlx::PgPool;

/// Options of `fieldvisit demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {}

/// Loads the demo data (idempotent) and returns one line per demo user.
pub async fn load(_pool: &PgPool, _args: &DemoArgs) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    Ok(Vec::new())
}
