//! Employee privacy: the access log of location reads, and raw-ping retention.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};

/// One read of a rep's location data by someone else.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct AccessEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub reader_user_id: i64,
    pub reader_login: String,
    pub subject_rep_id: i64,
    /// `pings`, `track`, `live_positions`, `live_stream` or `tracks_layer`.
    pub what: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub request_id: Option<String>,
}

/// Records that `reader` read `what` of each of `subjects` (one row each).
pub async fn record_access(
    db: impl PgExecutor<'_>,
    org_id: i64,
    reader: i64,
    subjects: &[i64],
    what: &str,
    detail: &serde_json::Value,
    request_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    if subjects.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO access_log (org_id, reader_user_id, subject_rep_id, what, detail, request_id)
         SELECT $1, $2, s, $4, $5, $6 FROM unnest($3::bigint[]) AS s",
    )
    .bind(org_id)
    .bind(reader)
    .bind(subjects)
    .bind(what)
    .bind(detail)
    .bind(request_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Newest first, ids below `before_id`; only reads of `subject`'s data when given, and only of
/// reps whose territory lies under `root` when given.
pub async fn access_log(
    db: impl PgExecutor<'_>,
    org_id: i64,
    subject: Option<i64>,
    root: Option<i64>,
    before_id: i64,
    limit: i64,
) -> Result<Vec<AccessEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT a.id, a.at, a.reader_user_id, u.login AS reader_login, a.subject_rep_id, a.what, a.detail, a.request_id
           FROM access_log a JOIN users u ON u.org_id = a.org_id AND u.id = a.reader_user_id
          WHERE a.org_id = $1 AND ($2::bigint IS NULL OR a.subject_rep_id = $2) AND a.id < $3
            AND ($5::bigint IS NULL OR EXISTS (
                 SELECT 1 FROM users s JOIN territories t ON t.org_id = s.org_id AND t.id = s.territory_id
                  WHERE s.org_id = a.org_id AND s.id = a.subject_rep_id AND t.path @> ARRAY[$5::bigint]))
          ORDER BY a.id DESC LIMIT $4",
    )
    .bind(org_id)
    .bind(subject)
    .bind(before_id)
    .bind(limit)
    .bind(root)
    .fetch_all(db)
    .await
}

/// An org and its org settings (the retention period is `settings.pings.retention_days`).
#[derive(Debug, Clone, FromRow)]
pub struct OrgRetention {
    pub id: i64,
    pub settings: serde_json::Value,
    pub timezone: String,
}

pub async fn orgs(db: impl PgExecutor<'_>) -> Result<Vec<OrgRetention>, sqlx::Error> {
    sqlx::query_as("SELECT id, settings, timezone FROM orgs ORDER BY id").fetch_all(db).await
}

/// What one retention pass removed in one org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removed {
    pub pings: u64,
    /// Rep-days waiting for derivation that could only be derived from what was removed.
    pub dirty_rep_days: u64,
    /// Local days before this one have no raw pings left: their visits are final.
    pub kept_from: NaiveDate,
    /// Pings with a fix time before this instant (the start of `kept_from`) were deleted.
    pub before: DateTime<Utc>,
}

/// Deletes the org's pings of the local days wholly before the one holding `cutoff` and retires
/// those days (no re-derivation: their visits stay as they are). The day holding `cutoff` keeps
/// all its pings until the next day's pass: a day is never left half deleted. The org row is
/// locked first, so an ingest cannot mark a retired day dirty between the two steps.
pub async fn remove_pings_before(
    conn: &mut PgConnection,
    org_id: i64,
    cutoff: DateTime<Utc>,
) -> Result<Removed, sqlx::Error> {
    let (kept_from, day_start): (NaiveDate, DateTime<Utc>) = sqlx::query_as(
        "SELECT ($2::timestamptz AT TIME ZONE timezone)::date,
                (($2::timestamptz AT TIME ZONE timezone)::date::timestamp AT TIME ZONE timezone)
           FROM orgs WHERE id = $1 FOR UPDATE",
    )
    .bind(org_id)
    .bind(cutoff)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("UPDATE orgs SET pings_kept_from = greatest(pings_kept_from, $2) WHERE id = $1")
        .bind(org_id)
        .bind(kept_from)
        .execute(&mut *conn)
        .await?;
    let dirty = sqlx::query("DELETE FROM rep_day_dirty WHERE org_id = $1 AND day < $2")
        .bind(org_id)
        .bind(kept_from)
        .execute(&mut *conn)
        .await?;
    let pings = sqlx::query("DELETE FROM pings WHERE org_id = $1 AND fix_time < $2")
        .bind(org_id)
        .bind(day_start)
        .execute(&mut *conn)
        .await?;
    Ok(Removed { pings: pings.rows_affected(), dirty_rep_days: dirty.rows_affected(), kept_from, before: day_start })
}
