//! PostgreSQL repositories (sqlx), one file per aggregate. The only place that speaks SQL.

pub mod audit;
pub mod checklists;
pub mod compliance;
pub mod devices;
pub mod exports;
pub mod import;
pub mod layers;
pub mod orgs;
pub mod outlets;
pub mod photos;
pub mod pings;
pub mod plans;
pub mod position_requests;
pub mod privacy;
pub mod territories;
pub mod tiers;
pub mod tokens;
pub mod users;
pub mod visit_ledger;
pub mod visits;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgExecutor, PgPool, Postgres, Transaction};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

/// The schema migrations compiled into the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Opens a connection pool.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?
        .application_name("fieldvisit")
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// Applies pending migrations; a no-op when the schema is current.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// A read-only transaction that sees one snapshot of the database throughout (an export and its
/// `verify` read one state).
pub async fn snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    Ok(tx)
}

/// Sends `payload` on the notification `channel` (delivered to listeners at commit).
pub async fn notify(db: impl PgExecutor<'_>, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(db).await?;
    Ok(())
}

/// Ready means: the database answers and every migration of this binary is applied.
pub async fn readiness(pool: &PgPool) -> Result<(), String> {
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await
        .map_err(|e| format!("database not reachable or not migrated: {e}"))?;
    let applied: HashSet<i64> = applied.into_iter().collect();
    let missing: Vec<String> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| format!("{} {}", m.version, m.description))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("migrations not applied: {}", missing.join(", "))) }
}
