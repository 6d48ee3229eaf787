//! Targeted positioning requests: asked by a manager, delivered to the device, answered by its
//! next fix.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct PositionRequest {
    pub id: i64,
    pub device_id: i64,
    pub requested_by: i64,
    pub requested_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    /// Fix time of the ping that answered the request.
    pub answer_fix_time: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, device_id, requested_by, requested_at, delivered_at, answered_at, answer_fix_time";

pub async fn create(
    db: impl PgExecutor<'_>,
    org_id: i64,
    device_id: i64,
    requested_by: i64,
) -> Result<PositionRequest, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO position_requests (org_id, device_id, requested_by) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    ))
    .bind(org_id)
    .bind(device_id)
    .bind(requested_by)
    .fetch_one(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, org_id: i64, id: i64) -> Result<Option<PositionRequest>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM position_requests WHERE org_id = $1 AND id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Open requests of a device not yet handed to it; marks them delivered now.
pub async fn deliver(
    db: impl PgExecutor<'_>,
    org_id: i64,
    device_id: i64,
) -> Result<Vec<PositionRequest>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE position_requests SET delivered_at = now()
          WHERE org_id = $1 AND device_id = $2 AND answered_at IS NULL AND delivered_at IS NULL
          RETURNING {COLUMNS}"
    ))
    .bind(org_id)
    .bind(device_id)
    .fetch_all(db)
    .await
}

/// Marks the device's delivered, open requests answered by the fix at `fix_time`; returns how
/// many it answered.
pub async fn answer(
    db: impl PgExecutor<'_>,
    org_id: i64,
    device_id: i64,
    fix_time: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE position_requests SET answered_at = now(), answer_fix_time = $3
          WHERE org_id = $1 AND device_id = $2 AND answered_at IS NULL AND delivered_at IS NOT NULL
            AND delivered_at <= now()",
    )
    .bind(org_id)
    .bind(device_id)
    .bind(fix_time)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
