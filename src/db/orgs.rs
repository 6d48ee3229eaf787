//! Orgs (tenants).

use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Org {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub timezone: String,
}

pub async fn create(db: impl PgExecutor<'_>, slug: &str, name: &str, timezone: &str) -> Result<Org, sqlx::Error> {
    // A new org has no visits yet: they are all derived under the current rules.
    sqlx::query_as(
        "WITH org AS (INSERT INTO orgs (slug, name, timezone) VALUES ($1, $2, $3) RETURNING id, slug, name, timezone),
              state AS (INSERT INTO visit_rule_state (org_id, rule_version) SELECT id, $4 FROM org)
         SELECT id, slug, name, timezone FROM org",
    )
    .bind(slug)
    .bind(name)
    .bind(timezone)
    .bind(crate::domain::visit::RULE_VERSION)
    .fetch_one(db)
    .await
}

pub async fn by_slug(db: impl PgExecutor<'_>, slug: &str) -> Result<Option<Org>, sqlx::Error> {
    sqlx::query_as("SELECT id, slug, name, timezone FROM orgs WHERE slug = $1").bind(slug).fetch_optional(db).await
}

pub async fn get(db: impl PgExecutor<'_>, id: i64) -> Result<Org, sqlx::Error> {
    sqlx::query_as("SELECT id, slug, name, timezone FROM orgs WHERE id = $1").bind(id).fetch_one(db).await
}

/// Every org id, ascending.
pub async fn ids(db: impl PgExecutor<'_>) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM orgs ORDER BY id").fetch_all(db).await
}

/// The org's `settings.pings` object (ping filters, working hours, retention) and the first local
/// day that still has raw pings (`None` before any retention pass removed some).
pub async fn ping_settings(
    db: impl PgExecutor<'_>,
    id: i64,
) -> Result<(serde_json::Value, Option<chrono::NaiveDate>), sqlx::Error> {
    sqlx::query_as("SELECT coalesce(settings->'pings', '{}'::jsonb), pings_kept_from FROM orgs WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
}

/// Replaces the org's `settings.pings` object.
pub async fn set_ping_settings(db: impl PgExecutor<'_>, id: i64, pings: &serde_json::Value) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orgs SET settings = jsonb_set(settings, '{pings}', $2) WHERE id = $1")
        .bind(id)
        .bind(pings)
        .execute(db)
        .await?;
    Ok(())
}
