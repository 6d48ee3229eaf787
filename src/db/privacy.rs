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

/// The local day holding `cutoff` and the instant it starts, with the org row locked (for
/// [`remove_pings_before`] in the same transaction: an ingest cannot mark a day about to be
/// retired dirty meanwhile).
pub async fn lock_cutoff_day(
    conn: &mut PgConnection,
    org_id: i64,
    cutoff: DateTime<Utc>,
) -> Result<(NaiveDate, DateTime<Utc>), sqlx::Error> {
    sqlx::query_as(
        "SELECT ($2::timestamptz AT TIME ZONE timezone)::date,
                (($2::timestamptz AT TIME ZONE timezone)::date::timestamp AT TIME ZONE timezone)
           FROM orgs WHERE id = $1 FOR UPDATE",
    )
    .bind(org_id)
    .bind(cutoff)
    .fetch_one(conn)
    .await
}

/// The rep-days (rep id, local day) with pings before `before` whose distance is not kept yet.
pub async fn unkept_rep_days(
    conn: &mut PgConnection,
    org_id: i64,
    before: DateTime<Utc>,
) -> Result<Vec<(i64, NaiveDate)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT DISTINCT d.rep_id, (p.fix_time AT TIME ZONE o.timezone)::date AS day
           FROM orgs o
           JOIN pings p ON p.org_id = o.id
           JOIN devices d ON d.org_id = p.org_id AND d.id = p.device_id
          WHERE o.id = $1 AND p.fix_time < $2
            AND NOT EXISTS (SELECT 1 FROM kept_day_distances k
                             WHERE k.org_id = o.id AND k.rep_id = d.rep_id
                               AND k.day = (p.fix_time AT TIME ZONE o.timezone)::date)
          ORDER BY 1, 2",
    )
    .bind(org_id)
    .bind(before)
    .fetch_all(conn)
    .await
}

/// Keeps a rep-day's distance travelled before its fixes are removed.
pub async fn keep_distance(
    conn: &mut PgConnection,
    org_id: i64,
    rep_id: i64,
    day: NaiveDate,
    distance_m: f64,
    fix_count: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO kept_day_distances (org_id, rep_id, day, distance_m, fix_count) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (org_id, rep_id, day) DO NOTHING",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(day)
    .bind(distance_m)
    .bind(fix_count)
    .execute(conn)
    .await?;
    Ok(())
}

/// The kept distances of a rep's local days `[from, to]`, by day.
pub async fn kept_distances(
    conn: &mut PgConnection,
    org_id: i64,
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(NaiveDate, f64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT day, distance_m FROM kept_day_distances
          WHERE org_id = $1 AND rep_id = $2 AND day BETWEEN $3 AND $4 ORDER BY day",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}

/// Deletes the org's pings before `day_start`, the start of local day `kept_from` (see
/// [`lock_cutoff_day`]), and retires the days before it (no re-derivation: their visits stay as
/// they are). The day holding the cutoff keeps all its pings until the next day's pass: a day is
/// never left half deleted.
pub async fn remove_pings_before(
    conn: &mut PgConnection,
    org_id: i64,
    (kept_from, day_start): (NaiveDate, DateTime<Utc>),
) -> Result<Removed, sqlx::Error> {
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

/// A rep's declared home and working hours: personal data, shown to the rep and admins only.
#[derive(Debug, Clone, FromRow)]
pub struct RepPrivacy {
    pub rep_id: i64,
    pub home_lat: Option<f64>,
    pub home_lon: Option<f64>,
    pub home_radius_m: Option<f32>,
    pub working_hours: Option<serde_json::Value>,
}

/// The declared homes (and own working hours) of the given reps of the org, by rep id; reps
/// without either are listed too.
pub async fn rep_privacy(db: impl PgExecutor<'_>, org_id: i64, reps: &[i64]) -> Result<Vec<RepPrivacy>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id AS rep_id, ST_Y(home) AS home_lat, ST_X(home) AS home_lon, home_radius_m, working_hours
           FROM users WHERE org_id = $1 AND id = ANY($2) ORDER BY id",
    )
    .bind(org_id)
    .bind(reps)
    .fetch_all(db)
    .await
}

/// Replaces a user's declared home (with its radius) and own working hours.
pub async fn set_rep_privacy(db: impl PgExecutor<'_>, org_id: i64, p: &RepPrivacy) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET home = CASE WHEN $3::float8 IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint($4, $3), 4326) END,
                          home_radius_m = $5, working_hours = $6
          WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(p.rep_id)
    .bind(p.home_lat)
    .bind(p.home_lon)
    .bind(p.home_radius_m)
    .bind(&p.working_hours)
    .execute(db)
    .await?;
    Ok(())
}

/// The instants the org's local days start at from the day holding `from` through the day after
/// the one holding `to`, ascending.
pub async fn day_starts(
    db: impl PgExecutor<'_>,
    org_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT d::date::timestamp AT TIME ZONE o.timezone
           FROM orgs o, generate_series(($2::timestamptz AT TIME ZONE o.timezone)::date,
                                        ($3::timestamptz AT TIME ZONE o.timezone)::date + 1, interval '1 day') AS d
          WHERE o.id = $1 ORDER BY 1",
    )
    .bind(org_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}
