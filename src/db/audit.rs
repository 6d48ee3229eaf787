//! The append-only audit log.

use crate::domain::audit::{AuditAction, LoggedAction};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

/// One thing someone did.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_user_id: Option<i64>,
    pub actor_device_id: Option<i64>,
    /// By its name, also for entries written under an older name (`create_plan`: `plan.create`).
    /// A text this version does not know is shown as it is.
    #[sqlx(try_from = "String")]
    pub action: LoggedAction,
    pub object_type: String,
    pub object_id: Option<String>,
    /// Our id of the request that did it (the response's `x-request-id`).
    pub request_id: Option<String>,
    /// The `x-request-id` the client sent, if it was at most 128 visible ASCII characters; never
    /// taken as ours.
    pub client_request_id: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// What to record; `at` and `id` are assigned by the database.
pub struct NewEntry<'a> {
    pub actor_user_id: Option<i64>,
    pub actor_device_id: Option<i64>,
    pub action: AuditAction,
    pub object_type: &'a str,
    pub object_id: Option<String>,
    pub request_id: Option<&'a str>,
    pub detail: serde_json::Value,
}

/// Appends an entry (of no client request, or one whose client sent no id of its own).
pub async fn record(db: impl PgExecutor<'_>, org_id: i64, e: NewEntry<'_>) -> Result<(), sqlx::Error> {
    record_for_client(db, org_id, e, None).await
}

/// Appends an entry, with the request id the client sent (already validated) beside ours.
pub async fn record_for_client(
    db: impl PgExecutor<'_>,
    org_id: i64,
    e: NewEntry<'_>,
    client_request_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (org_id, actor_user_id, actor_device_id, action, object_type, object_id, request_id,
                                detail, client_request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(org_id)
    .bind(e.actor_user_id)
    .bind(e.actor_device_id)
    .bind(e.action.as_str())
    .bind(e.object_type)
    .bind(e.object_id)
    .bind(e.request_id)
    .bind(e.detail)
    .bind(client_request_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Newest first, entries with id < `before_id`. With `root` (a territory-scoped reader) only the
/// entries about objects within that territory's subtree; entries about the org as a whole are
/// left out (`sql/audit_log.sql`).
pub async fn list(
    db: impl PgExecutor<'_>,
    org_id: i64,
    root: Option<i64>,
    before_id: i64,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as(include_str!("sql/audit_log.sql"))
        .bind(org_id)
        .bind(before_id)
        .bind(limit)
        .bind(root)
        .fetch_all(db)
        .await
}

/// Every entry of `action` in the org's log, oldest first (e.g. the demo loader's `demo.load`
/// entries, which tell a complete load from an interrupted one however long the log has grown).
pub async fn of_action(
    db: impl PgExecutor<'_>,
    org_id: i64,
    action: AuditAction,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, at, actor_user_id, actor_device_id, action, object_type, object_id, request_id, client_request_id,
                detail
           FROM audit_log WHERE org_id = $1 AND action = $2 ORDER BY id",
    )
    .bind(org_id)
    .bind(action.as_str())
    .fetch_all(db)
    .await
}
