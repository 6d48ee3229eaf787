//! Beat plans (journey plans): plans, their items, and the planned visits they materialise into.
//! Windows are org-local wall-clock times on the items and instants (timestamptz) on planned visits;
//! the conversion uses the org's time zone inside the database.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

/// A new plan of one rep.
#[derive(Debug, Clone)]
pub struct NewPlan<'a> {
    pub rep_id: i64,
    pub name: &'a str,
    /// Length of the recurrence cycle in weeks (1..=12).
    pub cycle_weeks: i16,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

/// One item of a plan: either recurring (`weekday` + `week_of_cycle`) or dated (`visit_date`).
#[derive(Debug, Clone)]
pub struct NewPlanItem {
    pub outlet_id: i64,
    /// ISO weekday, 1 = Monday .. 7 = Sunday (recurring items).
    pub weekday: Option<i16>,
    /// Week of the plan cycle, 1-based (recurring items; `None` = every week).
    pub week_of_cycle: Option<i16>,
    /// The day of a dated item.
    pub visit_date: Option<NaiveDate>,
    /// Org-local time window of the visit.
    pub window_start: Option<NaiveTime>,
    pub window_end: Option<NaiveTime>,
    pub expected_duration_s: Option<i32>,
    /// Position of the item in the rep's route for the day.
    pub seq: i32,
}

/// One planned visit of a rep-day.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct PlannedVisit {
    pub id: i64,
    pub rep_id: i64,
    pub visit_date: NaiveDate,
    pub outlet_id: i64,
    pub plan_item_id: i64,
    pub seq: i32,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub expected_duration_s: Option<i32>,
}

pub async fn create(db: impl PgExecutor<'_>, org_id: i64, p: &NewPlan<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO plans (org_id, rep_id, name, cycle_weeks, valid_from, valid_to)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(org_id)
    .bind(p.rep_id)
    .bind(p.name)
    .bind(p.cycle_weeks)
    .bind(p.valid_from)
    .bind(p.valid_to)
    .fetch_one(db)
    .await
}

pub async fn add_item(
    db: impl PgExecutor<'_>,
    org_id: i64,
    plan_id: i64,
    item: &NewPlanItem,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO plan_items (org_id, plan_id, outlet_id, weekday, week_of_cycle, visit_date, window_start,
                                 window_end, expected_duration_s, seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(org_id)
    .bind(plan_id)
    .bind(item.outlet_id)
    .bind(item.weekday)
    .bind(item.week_of_cycle)
    .bind(item.visit_date)
    .bind(item.window_start)
    .bind(item.window_end)
    .bind(item.expected_duration_s)
    .bind(item.seq)
    .fetch_one(db)
    .await
}

/// Materialises the dated items of an active plan (within its validity) into planned visits, turning
/// the org-local windows into instants with the org's time zone. Already materialised items are left
/// as they are. Returns the number of planned visits created.
pub async fn materialize_dated(db: impl PgExecutor<'_>, org_id: i64, plan_id: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO planned_visits (org_id, rep_id, visit_date, outlet_id, plan_item_id, seq, window_start,
                                     window_end, expected_duration_s)
         SELECT i.org_id, p.rep_id, i.visit_date, i.outlet_id, i.id, i.seq,
                (i.visit_date + i.window_start) AT TIME ZONE o.timezone,
                (i.visit_date + i.window_end) AT TIME ZONE o.timezone,
                i.expected_duration_s
           FROM plan_items i
           JOIN plans p ON p.org_id = i.org_id AND p.id = i.plan_id
           JOIN orgs o ON o.id = i.org_id
          WHERE i.org_id = $1 AND i.plan_id = $2 AND p.active AND i.visit_date IS NOT NULL
            AND i.visit_date >= p.valid_from AND (p.valid_to IS NULL OR i.visit_date <= p.valid_to)
          ORDER BY i.seq, i.id
         ON CONFLICT (org_id, rep_id, visit_date, plan_item_id) DO NOTHING",
    )
    .bind(org_id)
    .bind(plan_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Planned visits of a rep for the days `from..=to`, in day and route order.
pub async fn planned_visits(
    db: impl PgExecutor<'_>,
    org_id: i64,
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<PlannedVisit>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, rep_id, visit_date, outlet_id, plan_item_id, seq, window_start, window_end, expected_duration_s
           FROM planned_visits
          WHERE org_id = $1 AND rep_id = $2 AND visit_date BETWEEN $3 AND $4
          ORDER BY visit_date, seq, id",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}

/// The org-local calendar day of an instant (plans and rep-days are local days).
pub async fn local_date(db: impl PgExecutor<'_>, org_id: i64, at: DateTime<Utc>) -> Result<NaiveDate, sqlx::Error> {
    sqlx::query_scalar("SELECT ($2::timestamptz AT TIME ZONE timezone)::date FROM orgs WHERE id = $1")
        .bind(org_id)
        .bind(at)
        .fetch_one(db)
        .await
}
