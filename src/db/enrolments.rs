//! One-time enrolment codes of devices (hashes only): the link that opens the reps' app signed
//! in as a device.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// Stores the hash of a new code for device `device_id`, valid until `expires_at`.
pub async fn create(
    db: impl PgExecutor<'_>,
    org_id: i64,
    device_id: i64,
    code_hash: &[u8],
    created_by: Option<i64>,
    expires_at: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO device_enrolments (org_id, device_id, code_hash, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(org_id)
    .bind(device_id)
    .bind(code_hash)
    .bind(created_by)
    .bind(expires_at)
    .fetch_one(db)
    .await
}

/// Uses up the code with this hash: `(org_id, device_id)` when it was unused, unexpired and its
/// device is active; `None` otherwise (and nothing changes).
pub async fn redeem(db: impl PgExecutor<'_>, code_hash: &[u8]) -> Result<Option<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE device_enrolments e SET used_at = now()
           FROM devices d
          WHERE e.code_hash = $1 AND e.used_at IS NULL AND e.withdrawn_at IS NULL AND e.expires_at > now()
            AND d.org_id = e.org_id AND d.id = e.device_id AND d.active
      RETURNING e.org_id, e.device_id",
    )
    .bind(code_hash)
    .fetch_optional(db)
    .await
}

/// Withdraws the unused codes of a device (it was deactivated, reassigned or given a new code).
pub async fn withdraw(db: impl PgExecutor<'_>, org_id: i64, device_id: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE device_enrolments SET withdrawn_at = now()
          WHERE org_id = $1 AND device_id = $2 AND used_at IS NULL AND withdrawn_at IS NULL",
    )
    .bind(org_id)
    .bind(device_id)
    .execute(db)
    .await?
    .rows_affected())
}
