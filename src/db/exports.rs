//! Audit exports: the job rows, their files in chunks, and the rows an export is made from.

use crate::domain::compliance::{Review, ReviewDecision};
use crate::domain::export::{ExportParams, ExportStatus, Manifest, PlannedFacts, ReviewFacts, VisitFacts};
use crate::domain::visit::Verdict;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::stream::BoxStream;
use serde::Serialize;
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgExecutor};

/// Files are stored in chunks of this many bytes.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// An export job and, once done, its manifest.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Export {
    pub id: i64,
    pub requested_by: Option<i64>,
    pub requested_at: DateTime<Utc>,
    #[schema(value_type = ExportParams)]
    pub params: Json<ExportParams>,
    #[sqlx(try_from = "String")]
    pub status: ExportStatus,
    pub progress_pct: f32,
    pub error: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<Manifest>)]
    pub manifest: Option<Json<Manifest>>,
}

const SELECT: &str = "SELECT id, requested_by, requested_at, params, status, progress_pct, error, finished_at, manifest
                        FROM exports";

pub async fn create(
    db: impl PgExecutor<'_>,
    org_id: i64,
    requested_by: Option<i64>,
    params: &ExportParams,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("INSERT INTO exports (org_id, requested_by, params) VALUES ($1, $2, $3) RETURNING id")
        .bind(org_id)
        .bind(requested_by)
        .bind(Json(params))
        .fetch_one(db)
        .await
}

/// Holds back every other start of an export in `org_id` until this transaction ends, so that the
/// jobs counted by [`active_counts`] stay the jobs there are until the new one is stored.
pub async fn lock_starts(tx: &mut PgConnection, org_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('fieldvisit.export_starts'), ($1 % 2147483647)::int)")
        .bind(org_id)
        .execute(tx)
        .await
        .map(drop)
}

/// Exports queued or running: the org's, and how many of them `user` requested.
pub async fn active_counts(db: impl PgExecutor<'_>, org_id: i64, user: Option<i64>) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE requested_by = $2) FROM exports
          WHERE org_id = $1 AND status IN ('queued', 'running')",
    )
    .bind(org_id)
    .bind(user)
    .fetch_one(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, org_id: i64, id: i64) -> Result<Option<Export>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE org_id = $1 AND id = $2")).bind(org_id).bind(id).fetch_optional(db).await
}

/// Newest first, ids below `before_id`; only `requested_by`'s when given.
pub async fn list(
    db: impl PgExecutor<'_>,
    org_id: i64,
    requested_by: Option<i64>,
    before_id: i64,
    limit: i64,
) -> Result<Vec<Export>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE org_id = $1 AND ($2::bigint IS NULL OR requested_by = $2) AND id < $3 ORDER BY id DESC LIMIT $4"
    ))
    .bind(org_id)
    .bind(requested_by)
    .bind(before_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The finished exports with a file of this SHA-256.
pub async fn with_file(db: impl PgExecutor<'_>, org_id: i64, sha256: &str) -> Result<Vec<Export>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE org_id = $1 AND status = 'done'
            AND manifest->'files' @> jsonb_build_array(jsonb_build_object('sha256', $2::text)) ORDER BY id"
    ))
    .bind(org_id)
    .bind(sha256)
    .fetch_all(db)
    .await
}

pub async fn set_progress(
    db: impl PgExecutor<'_>,
    org_id: i64,
    id: i64,
    status: ExportStatus,
    progress_pct: f32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE exports SET status = $3, progress_pct = $4, heartbeat_at = now()
          WHERE org_id = $1 AND id = $2 AND status IN ('queued', 'running')",
    )
    .bind(org_id)
    .bind(id)
    .bind(status.as_str())
    .bind(progress_pct)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn fail(db: impl PgExecutor<'_>, org_id: i64, id: i64, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE exports SET status = 'failed', error = $3, finished_at = now() WHERE org_id = $1 AND id = $2 AND status <> 'done'",
    )
    .bind(org_id)
    .bind(id)
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}

/// Shows that a queued export is still waiting (for a free slot) in a live server.
pub async fn heartbeat(db: impl PgExecutor<'_>, org_id: i64, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE exports SET heartbeat_at = now() WHERE org_id = $1 AND id = $2 AND status IN ('queued', 'running')",
    )
    .bind(org_id)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Marks failed every queued or running export (of any org) that has not shown it is alive for
/// `silent_s` seconds: its server stopped. Returns their (org id, id).
pub async fn fail_silent(db: impl PgExecutor<'_>, silent_s: i64) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE exports SET status = 'failed', finished_at = now(),
                error = 'interrupted: the server running it stopped; request the export again'
          WHERE status IN ('queued', 'running')
            AND coalesce(heartbeat_at, requested_at) < now() - make_interval(secs => $1)
          RETURNING org_id, id",
    )
    .bind(silent_s as f64)
    .fetch_all(db)
    .await
}

/// Marks the export done with its manifest (once: a done export never changes).
pub async fn finish(db: impl PgExecutor<'_>, org_id: i64, id: i64, manifest: &Manifest) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE exports SET status = 'done', progress_pct = 100, manifest = $3, finished_at = $4
          WHERE org_id = $1 AND id = $2 AND status <> 'done'",
    )
    .bind(org_id)
    .bind(id)
    .bind(Json(manifest))
    .bind(manifest.generated_at)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn put_chunk(
    db: impl PgExecutor<'_>,
    org_id: i64,
    id: i64,
    file: &str,
    seq: i32,
    data: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO export_chunks (org_id, export_id, file, seq, data) VALUES ($1, $2, $3, $4, $5)")
        .bind(org_id)
        .bind(id)
        .bind(file)
        .bind(seq)
        .bind(data)
        .execute(db)
        .await?;
    Ok(())
}

/// Chunk `seq` of a stored file.
pub async fn chunk(
    db: impl PgExecutor<'_>,
    org_id: i64,
    id: i64,
    file: &str,
    seq: i32,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT data FROM export_chunks WHERE org_id = $1 AND export_id = $2 AND file = $3 AND seq = $4")
        .bind(org_id)
        .bind(id)
        .bind(file)
        .bind(seq)
        .fetch_optional(db)
        .await
}

/// A rep in an export's scope.
#[derive(Debug, Clone, FromRow)]
pub struct ScopeRep {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub territory_id: Option<i64>,
    pub territory_code: Option<String>,
}

/// The reps of an export: `ids`, by id.
pub async fn reps(db: impl PgExecutor<'_>, org_id: i64, ids: &[i64]) -> Result<Vec<ScopeRep>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id, u.login, u.name, u.territory_id, t.code AS territory_code
           FROM users u LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
          WHERE u.org_id = $1 AND u.id = ANY($2) ORDER BY u.id",
    )
    .bind(org_id)
    .bind(ids)
    .fetch_all(db)
    .await
}

/// A planned visit with its outlet.
#[derive(Debug, Clone, FromRow)]
pub struct PlannedRow {
    pub id: i64,
    pub rep_id: i64,
    pub visit_date: NaiveDate,
    pub seq: i32,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub outlet_name: String,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
}

impl PlannedRow {
    pub fn facts(&self) -> PlannedFacts {
        PlannedFacts {
            id: self.id,
            rep_id: self.rep_id,
            outlet_id: self.outlet_id,
            day: self.visit_date,
            window_start: self.window_start,
            window_end: self.window_end,
        }
    }
}

/// A rep's planned visits on the local days `[from, to]`, by day and route order.
pub async fn planned(
    conn: &mut PgConnection,
    org_id: i64,
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<PlannedRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT pv.id, pv.rep_id, pv.visit_date, pv.seq, pv.outlet_id, o.code AS outlet_code, o.name AS outlet_name,
                pv.window_start, pv.window_end
           FROM planned_visits pv JOIN outlets o ON o.org_id = pv.org_id AND o.id = pv.outlet_id
          WHERE pv.org_id = $1 AND pv.rep_id = $2 AND pv.visit_date BETWEEN $3 AND $4
          ORDER BY pv.visit_date, pv.seq, pv.id",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await
}

/// A visit as exported: its figures, evidence and latest review.
#[derive(Debug, Clone, FromRow)]
pub struct VisitRow {
    pub id: i64,
    pub rep_id: i64,
    pub rep_login: String,
    pub rep_day: NaiveDate,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub outlet_name: String,
    pub arrival: DateTime<Utc>,
    pub departure: DateTime<Utc>,
    pub dwell_s: i32,
    #[sqlx(try_from = "String")]
    pub verdict: Verdict,
    pub risk_score: f32,
    pub ping_count: i32,
    pub min_distance_m: Option<f32>,
    pub median_distance_m: Option<f32>,
    pub median_accuracy_m: Option<f32>,
    pub max_gap_s: Option<i32>,
    pub signals: Option<serde_json::Value>,
    pub rule_version: String,
    /// The latest accept/reject review.
    #[sqlx(try_from = "crate::db::NullableName")]
    pub review: Option<Review>,
    pub counted: bool,
    pub lat: f64,
    pub lon: f64,
}

impl VisitRow {
    pub fn facts(&self) -> VisitFacts<'_> {
        VisitFacts {
            id: self.id,
            rep_id: self.rep_id,
            outlet_id: self.outlet_id,
            rep_day: self.rep_day,
            arrival: self.arrival,
            departure: self.departure,
            dwell_s: self.dwell_s,
            verdict: self.verdict,
            risk_score: self.risk_score,
            rule_version: &self.rule_version,
            review: self.review,
        }
    }
}

/// The visits of `reps` with rep-day in `[from, to]`, streamed by rep and arrival.
pub fn visits<'c>(
    conn: &'c mut PgConnection,
    org_id: i64,
    reps: &'c [i64],
    from: NaiveDate,
    to: NaiveDate,
) -> BoxStream<'c, Result<VisitRow, sqlx::Error>> {
    sqlx::query_as(
        "SELECT v.id, v.rep_id, u.login AS rep_login, v.rep_day, v.outlet_id, o.code AS outlet_code, o.name AS outlet_name,
                v.arrival, v.departure, v.dwell_s, v.verdict, v.risk_score, v.ping_count, v.min_distance_m,
                v.median_distance_m, v.median_accuracy_m, v.max_gap_s, v.evidence->'signals' AS signals, v.rule_version,
                v.review, v.counted, ST_Y(v.location) AS lat, ST_X(v.location) AS lon
           FROM visits v
           JOIN users u ON u.org_id = v.org_id AND u.id = v.rep_id
           JOIN outlets o ON o.org_id = v.org_id AND o.id = v.outlet_id
          WHERE v.org_id = $1 AND v.rep_id = ANY($2) AND v.rep_day BETWEEN $3 AND $4
          ORDER BY v.rep_id, v.arrival, v.id",
    )
    .bind(org_id)
    .bind(reps)
    .bind(from)
    .bind(to)
    .fetch(conn)
}

/// How many visits [`visits`] yields (for progress).
pub async fn visit_count(
    conn: &mut PgConnection,
    org_id: i64,
    reps: &[i64],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM visits WHERE org_id = $1 AND rep_id = ANY($2) AND rep_day BETWEEN $3 AND $4",
    )
    .bind(org_id)
    .bind(reps)
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await
}

/// A review of a visit in an export.
#[derive(Debug, Clone, FromRow)]
pub struct ReviewRow {
    pub id: i64,
    pub visit_id: Option<i64>,
    pub rep_id: i64,
    pub outlet_id: i64,
    pub arrival: DateTime<Utc>,
    pub reviewer_id: i64,
    pub reviewer_login: String,
    #[sqlx(try_from = "String")]
    pub decision: ReviewDecision,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

impl ReviewRow {
    pub fn facts(&self) -> ReviewFacts<'_> {
        ReviewFacts {
            id: self.id,
            visit_id: self.visit_id,
            reviewer_id: self.reviewer_id,
            decision: self.decision,
            reason: &self.reason,
            created_at: self.created_at,
        }
    }
}

/// The reviews (accepts, rejects, disputes, resolutions) of visits of `reps` that arrived in the
/// local days `[from, to]`, including reviews whose visit was since recomputed away, streamed by id.
pub fn reviews<'c>(
    conn: &'c mut PgConnection,
    org_id: i64,
    reps: &'c [i64],
    from: NaiveDate,
    to: NaiveDate,
) -> BoxStream<'c, Result<ReviewRow, sqlx::Error>> {
    sqlx::query_as(
        "SELECT r.id, r.visit_id, r.rep_id, r.outlet_id, r.arrival, r.reviewer_id, u.login AS reviewer_login,
                r.decision, r.reason, r.created_at
           FROM visit_reviews r
           JOIN orgs g ON g.id = r.org_id
           JOIN users u ON u.org_id = r.org_id AND u.id = r.reviewer_id
          WHERE r.org_id = $1 AND r.rep_id = ANY($2)
            AND (r.arrival AT TIME ZONE g.timezone)::date BETWEEN $3 AND $4
          ORDER BY r.id",
    )
    .bind(org_id)
    .bind(reps)
    .bind(from)
    .bind(to)
    .fetch(conn)
}

/// A visit's photo in an export (a check-in's photo too: it is anchored to the check-in's visit).
#[derive(Debug, Clone, FromRow)]
pub struct PhotoRow {
    pub id: i64,
    pub visit_id: Option<i64>,
    pub rep_id: i64,
    pub login: String,
    pub rep_day: NaiveDate,
    pub visit_arrival: DateTime<Utc>,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub uploaded_at: DateTime<Utc>,
    pub taken_at: Option<DateTime<Utc>>,
    pub exif_lat: Option<f64>,
    pub exif_lon: Option<f64>,
    pub reused_photo_id: Option<i64>,
    pub findings: serde_json::Value,
    pub content_type: String,
    pub bytes: i32,
    pub sha256: String,
    /// The check-in it was taken at and the app's id of it (`None` for a visit's photo).
    pub checkin_id: Option<i64>,
    pub client_id: Option<String>,
    /// The app's capture claim: when, where, and the accuracy of that fix (metres).
    pub capture_at: Option<DateTime<Utc>>,
    pub capture_lat: Option<f64>,
    pub capture_lon: Option<f64>,
    pub capture_accuracy_m: Option<f64>,
}

/// The photos taken for visits of `reps` on the local days `[from, to]`, streamed by id.
pub fn photos<'c>(
    conn: &'c mut PgConnection,
    org_id: i64,
    reps: &'c [i64],
    from: NaiveDate,
    to: NaiveDate,
) -> BoxStream<'c, Result<PhotoRow, sqlx::Error>> {
    sqlx::query_as(
        "SELECT p.id, p.visit_id, p.rep_id, u.login, p.rep_day, p.visit_arrival, p.outlet_id, o.code AS outlet_code,
                p.uploaded_at, p.taken_at, p.exif_lat, p.exif_lon, p.reused_photo_id, p.findings, p.content_type,
                p.bytes, p.sha256, p.checkin_id, p.client_id, p.capture_at, p.capture_lat, p.capture_lon,
                p.capture_accuracy_m::numeric::float8 AS capture_accuracy_m
           FROM photos p
           JOIN users u ON u.org_id = p.org_id AND u.id = p.rep_id
           JOIN outlets o ON o.org_id = p.org_id AND o.id = p.outlet_id
          WHERE p.org_id = $1 AND p.rep_id = ANY($2) AND p.rep_day BETWEEN $3 AND $4
          ORDER BY p.id",
    )
    .bind(org_id)
    .bind(reps)
    .bind(from)
    .bind(to)
    .fetch(conn)
}

/// A visit's checklist answers in an export.
#[derive(Debug, Clone, FromRow)]
pub struct OutcomeRow {
    pub id: i64,
    pub visit_id: Option<i64>,
    pub rep_id: i64,
    pub login: String,
    pub visit_arrival: DateTime<Utc>,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub checklist_id: i64,
    pub checklist: String,
    pub version: i32,
    pub answers: serde_json::Value,
    pub problems: Vec<String>,
    pub submitted_at: DateTime<Utc>,
    /// The check-in they were given at and the app's id of them (`None` for a visit's answers).
    pub checkin_id: Option<i64>,
    pub client_id: Option<String>,
}

/// The checklist answers given for visits of `reps` on the local days `[from, to]`, streamed by id.
pub fn outcomes<'c>(
    conn: &'c mut PgConnection,
    org_id: i64,
    reps: &'c [i64],
    from: NaiveDate,
    to: NaiveDate,
) -> BoxStream<'c, Result<OutcomeRow, sqlx::Error>> {
    sqlx::query_as(
        "SELECT v.id, v.visit_id, v.rep_id, u.login, v.visit_arrival, v.outlet_id, o.code AS outlet_code,
                v.checklist_id, c.name AS checklist, c.version, v.answers, v.problems, v.submitted_at, v.checkin_id,
                v.client_id
           FROM visit_outcomes v
           JOIN checklists c ON c.org_id = v.org_id AND c.id = v.checklist_id
           JOIN users u ON u.org_id = v.org_id AND u.id = v.rep_id
           JOIN outlets o ON o.org_id = v.org_id AND o.id = v.outlet_id
          WHERE v.org_id = $1 AND v.rep_id = ANY($2) AND v.rep_day BETWEEN $3 AND $4
          ORDER BY v.id",
    )
    .bind(org_id)
    .bind(reps)
    .bind(from)
    .bind(to)
    .fetch(conn)
}
