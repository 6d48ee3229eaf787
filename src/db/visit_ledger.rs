//! What the in-memory visit ledger (`index::ledger`) reads: the counted visits of an org and the
//! log of the outlets whose visits changed (`visit_outlet_changes`, migration 0016), read from the
//! xmin of the previous read's snapshot.

use chrono::NaiveDate;
use sqlx::PgExecutor;

/// The xmin of the current snapshot: every transaction below it has ended.
pub async fn snapshot_xmin(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").fetch_one(db).await
}

/// (outlet, local day, dwell in seconds) of the counted visits of the org on local days from `from` on.
pub async fn counted(
    db: impl PgExecutor<'_>,
    org_id: i64,
    from: NaiveDate,
) -> Result<Vec<(i64, NaiveDate, i32)>, sqlx::Error> {
    sqlx::query_as("SELECT outlet_id, rep_day, dwell_s FROM visits WHERE org_id = $1 AND counted AND rep_day >= $2")
        .bind(org_id)
        .bind(from)
        .fetch_all(db)
        .await
}

/// The same for the given outlets of the org only.
pub async fn counted_of(
    db: impl PgExecutor<'_>,
    org_id: i64,
    outlet_ids: &[i64],
    from: NaiveDate,
) -> Result<Vec<(i64, NaiveDate, i32)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT outlet_id, rep_day, dwell_s FROM visits
          WHERE org_id = $1 AND outlet_id = ANY($2) AND counted AND rep_day >= $3",
    )
    .bind(org_id)
    .bind(outlet_ids)
    .bind(from)
    .fetch_all(db)
    .await
}

/// The xmin of the current snapshot, and the outlets of the org logged by transactions at or
/// above `cursor` (a previous snapshot's xmin).
pub async fn changed_since(db: impl PgExecutor<'_>, org_id: i64, cursor: i64) -> Result<(i64, Vec<i64>), sqlx::Error> {
    sqlx::query_as(
        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint,
                coalesce((SELECT array_agg(DISTINCT outlet_id) FROM visit_outlet_changes
                           WHERE org_id = $1 AND xid >= $2::text::xid8), '{}')",
    )
    .bind(org_id)
    .bind(cursor.to_string())
    .fetch_one(db)
    .await
}

/// Deletes the log rows older than `hours`.
pub async fn prune(db: impl PgExecutor<'_>, hours: i32) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM visit_outlet_changes WHERE changed_at < now() - make_interval(hours => $1)")
        .bind(hours)
        .execute(db)
        .await?;
    Ok(())
}
