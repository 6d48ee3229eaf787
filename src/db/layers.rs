//! What the map layers read that no other aggregate does: visits in a box, a day's tracks and
//! planned routes of the reps in a territory subtree.

use crate::domain::compliance::Review;
use crate::domain::visit::Verdict;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{FromRow, PgExecutor};

/// A visit as the visits layer shows it.
#[derive(Debug, Clone, FromRow)]
pub struct LayerVisit {
    pub id: i64,
    pub rep_id: i64,
    pub rep_login: String,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub rep_day: NaiveDate,
    pub arrival: DateTime<Utc>,
    pub departure: DateTime<Utc>,
    pub dwell_s: i32,
    #[sqlx(try_from = "String")]
    pub verdict: Verdict,
    pub risk_score: f32,
    pub lat: f64,
    pub lon: f64,
    /// The latest accept/reject review, if any.
    #[sqlx(try_from = "crate::db::NullableName")]
    pub review: Option<Review>,
}

/// What the visits layer asks for.
#[derive(Debug, Clone)]
pub struct VisitFilter {
    /// Territory subtree of the reps (`None` = the org).
    pub scope_root: Option<i64>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub verdict: Option<Verdict>,
    pub rep_id: Option<i64>,
    /// `[min_lon, min_lat, max_lon, max_lat]`.
    pub bbox: Option<[f64; 4]>,
    pub limit: i64,
}

/// Visits of the reps in scope, by id (`src/db/sql/layer_visits.sql`).
pub async fn visits(db: impl PgExecutor<'_>, org_id: i64, f: &VisitFilter) -> Result<Vec<LayerVisit>, sqlx::Error> {
    let b = f.bbox.map_or([None; 4], |b| b.map(Some));
    sqlx::query_as(include_str!("sql/layer_visits.sql"))
        .bind(org_id)
        .bind(f.scope_root)
        .bind(f.from)
        .bind(f.to)
        .bind(f.verdict.map(Verdict::as_str))
        .bind(f.rep_id)
        .bind(b[0])
        .bind(b[1])
        .bind(b[2])
        .bind(b[3])
        .bind(f.limit)
        .fetch_all(db)
        .await
}

/// One fix of a rep's track.
#[derive(Debug, Clone, FromRow)]
pub struct LayerFix {
    pub rep_id: i64,
    pub rep_login: String,
    pub fix_time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub flags: i32,
}

/// The fixes of local day `day` of the reps in scope (one rep when given), by rep and time.
pub async fn track_fixes(
    db: impl PgExecutor<'_>,
    org_id: i64,
    scope_root: Option<i64>,
    day: NaiveDate,
    rep_id: Option<i64>,
) -> Result<Vec<LayerFix>, sqlx::Error> {
    sqlx::query_as(include_str!("sql/layer_tracks.sql"))
        .bind(org_id)
        .bind(scope_root)
        .bind(day)
        .bind(rep_id)
        .fetch_all(db)
        .await
}

/// One stop of a planned route.
#[derive(Debug, Clone, FromRow)]
pub struct RouteStop {
    pub rep_id: i64,
    pub rep_login: String,
    pub planned_visit_id: i64,
    pub seq: i32,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub lat: f64,
    pub lon: f64,
}

/// The planned visits of local day `day` of the reps in scope (one rep when given), by rep and
/// route order.
pub async fn route_stops(
    db: impl PgExecutor<'_>,
    org_id: i64,
    scope_root: Option<i64>,
    day: NaiveDate,
    rep_id: Option<i64>,
) -> Result<Vec<RouteStop>, sqlx::Error> {
    sqlx::query_as(include_str!("sql/layer_routes.sql"))
        .bind(org_id)
        .bind(scope_root)
        .bind(day)
        .bind(rep_id)
        .fetch_all(db)
        .await
}

/// The reps in scope (one rep when given) with a plan in force on local day `day`, whose
/// recurring items the routes layer materialises first.
pub async fn planned_reps(
    db: impl PgExecutor<'_>,
    org_id: i64,
    scope_root: Option<i64>,
    day: NaiveDate,
    rep_id: Option<i64>,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT p.rep_id
           FROM plans p
           JOIN users u ON u.org_id = p.org_id AND u.id = p.rep_id
           LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
          WHERE p.org_id = $1 AND ($2::bigint IS NULL OR t.path @> ARRAY[$2::bigint]) AND ($4::bigint IS NULL OR p.rep_id = $4)
            AND p.active AND p.valid_from <= $3 AND (p.valid_to IS NULL OR p.valid_to >= $3)
          ORDER BY p.rep_id",
    )
    .bind(org_id)
    .bind(scope_root)
    .bind(day)
    .bind(rep_id)
    .fetch_all(db)
    .await
}
