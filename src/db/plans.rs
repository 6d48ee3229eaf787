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
    /// The first day the item is planned when a revision added it (`None` = the plan's first day).
    pub planned_from: Option<NaiveDate>,
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
                                 window_end, expected_duration_s, seq, planned_from)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
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
    .bind(item.planned_from)
    .fetch_one(db)
    .await
}

/// Materialises the dated items of an active plan (within its validity and the item's revision
/// span) into planned visits, turning
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
            AND (i.planned_from IS NULL OR i.visit_date >= i.planned_from)
            AND (i.retired_from IS NULL OR i.visit_date < i.retired_from)
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

/// A plan with its items, as the API shows it.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Plan {
    pub id: i64,
    pub rep_id: i64,
    pub name: String,
    pub cycle_weeks: i16,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    /// The items in force (from the last revision on).
    #[sqlx(skip)]
    pub items: Vec<PlanItem>,
    /// Items a revision replaced, each with the day it stopped being planned (`retired_from`).
    #[sqlx(skip)]
    pub retired_items: Vec<PlanItem>,
}

impl Plan {
    fn add(&mut self, item: PlanItem) {
        if item.retired_from.is_some() { self.retired_items.push(item) } else { self.items.push(item) }
    }
}

/// One item of a stored plan.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct PlanItem {
    pub id: i64,
    pub plan_id: i64,
    pub outlet_id: i64,
    pub weekday: Option<i16>,
    pub week_of_cycle: Option<i16>,
    pub visit_date: Option<NaiveDate>,
    pub window_start: Option<NaiveTime>,
    pub window_end: Option<NaiveTime>,
    pub expected_duration_s: Option<i32>,
    pub seq: i32,
    /// The first day it is planned, when a revision added it (absent = the plan's first day).
    pub planned_from: Option<NaiveDate>,
    /// The first day a revision no longer plans this item; absent = in force.
    pub retired_from: Option<NaiveDate>,
}

const PLAN_COLUMNS: &str = "id, rep_id, name, cycle_weeks, valid_from, valid_to, active, created_at";
const ITEM_COLUMNS: &str =
    "id, plan_id, outlet_id, weekday, week_of_cycle, visit_date, window_start, window_end, expected_duration_s, seq,
     planned_from, retired_from";

/// Plans of the org (of one rep when given), newest first, with their items.
pub async fn list(db: &sqlx::PgPool, org_id: i64, rep_ids: &[i64]) -> Result<Vec<Plan>, sqlx::Error> {
    let mut plans: Vec<Plan> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM plans WHERE org_id = $1 AND rep_id = ANY($2) ORDER BY created_at DESC, id DESC"
    ))
    .bind(org_id)
    .bind(rep_ids)
    .fetch_all(db)
    .await?;
    let ids: Vec<i64> = plans.iter().map(|p| p.id).collect();
    let items: Vec<PlanItem> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM plan_items WHERE org_id = $1 AND plan_id = ANY($2) ORDER BY plan_id, seq, id"
    ))
    .bind(org_id)
    .bind(&ids)
    .fetch_all(db)
    .await?;
    for item in items {
        if let Some(p) = plans.iter_mut().find(|p| p.id == item.plan_id) {
            p.add(item);
        }
    }
    Ok(plans)
}

/// One plan with its items.
pub async fn get(db: &sqlx::PgPool, org_id: i64, plan_id: i64) -> Result<Option<Plan>, sqlx::Error> {
    let plan: Option<Plan> = sqlx::query_as(&format!("SELECT {PLAN_COLUMNS} FROM plans WHERE org_id = $1 AND id = $2"))
        .bind(org_id)
        .bind(plan_id)
        .fetch_optional(db)
        .await?;
    let Some(mut plan) = plan else { return Ok(None) };
    let items: Vec<PlanItem> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM plan_items WHERE org_id = $1 AND plan_id = $2 ORDER BY seq, id"
    ))
    .bind(org_id)
    .bind(plan_id)
    .fetch_all(db)
    .await?;
    for item in items {
        plan.add(item);
    }
    Ok(Some(plan))
}

/// Ends a plan before local day `from`: its last day becomes `from - 1` (or, when it had not
/// started by then, it is cancelled: inactive), and its planned visits from `from` on are removed.
/// Earlier days keep their planned visits. Returns whether the plan was found.
pub async fn end(
    db: impl sqlx::Acquire<'_, Database = sqlx::Postgres>,
    org_id: i64,
    plan_id: i64,
    from: NaiveDate,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let found = sqlx::query(
        "UPDATE plans
            SET valid_to = CASE WHEN valid_from < $3 THEN least(coalesce(valid_to, $3 - 1), $3 - 1) ELSE valid_to END,
                active = active AND valid_from < $3,
                updated_at = now()
          WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(plan_id)
    .bind(from)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    remove_planned_from(&mut tx, org_id, plan_id, from).await?;
    tx.commit().await?;
    Ok(found)
}

/// Removes the plan's planned visits from local day `from` on.
async fn remove_planned_from(
    conn: &mut sqlx::PgConnection,
    org_id: i64,
    plan_id: i64,
    from: NaiveDate,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM planned_visits pv USING plan_items i
          WHERE pv.org_id = $1 AND i.org_id = pv.org_id AND i.id = pv.plan_item_id AND i.plan_id = $2
            AND pv.visit_date >= $3",
    )
    .bind(org_id)
    .bind(plan_id)
    .bind(from)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// What a revision changes of a plan (its cycle stays: the days before the revision are planned
/// on it whenever they are materialised).
#[derive(Debug, Clone)]
pub struct PlanRevision<'a> {
    pub name: &'a str,
    pub valid_to: Option<NaiveDate>,
}

/// Revises a plan from local day `from` on (in the caller's transaction): name and last day
/// change, the items in force are retired from `from`, and their planned visits from `from` on are
/// removed; earlier days keep theirs. The caller then adds the new items and materialises.
/// Returns `false`, changing nothing, when the plan is not in force on `from` (ended or cancelled,
/// also by a concurrent request).
pub async fn revise(
    conn: &mut sqlx::PgConnection,
    org_id: i64,
    plan_id: i64,
    from: NaiveDate,
    r: &PlanRevision<'_>,
) -> Result<bool, sqlx::Error> {
    let found = sqlx::query(
        "UPDATE plans SET name = $3, valid_to = $4, updated_at = now()
          WHERE org_id = $1 AND id = $2 AND active AND (valid_to IS NULL OR valid_to >= $5)",
    )
    .bind(org_id)
    .bind(plan_id)
    .bind(r.name)
    .bind(r.valid_to)
    .bind(from)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if !found {
        return Ok(false);
    }
    // Items that would only have started on or after `from` (of an earlier revision, or of a plan
    // that has not started) never come into force; every other item still planned on `from` is
    // retired from then.
    sqlx::query(
        "DELETE FROM plan_items i USING plans p
          WHERE i.org_id = $1 AND i.plan_id = $2 AND p.org_id = i.org_id AND p.id = i.plan_id
            AND coalesce(i.planned_from, p.valid_from) >= $3",
    )
    .bind(org_id)
    .bind(plan_id)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE plan_items SET retired_from = $3
          WHERE org_id = $1 AND plan_id = $2 AND (retired_from IS NULL OR retired_from > $3)",
    )
    .bind(org_id)
    .bind(plan_id)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    remove_planned_from(conn, org_id, plan_id, from).await?;
    Ok(true)
}

#[derive(FromRow)]
struct RecurringItem {
    id: i64,
    planned_from: Option<NaiveDate>,
    retired_from: Option<NaiveDate>,
    weekday: i16,
    week_of_cycle: Option<i16>,
    cycle_weeks: i16,
    valid_from: NaiveDate,
    valid_to: Option<NaiveDate>,
}

/// Materialises the recurring items of the rep's active plans into planned visits for the days
/// `from..=to` (an item only from its `planned_from` and before its `retired_from`; already
/// materialised ones stay as they are). Returns the number created.
pub async fn materialize_recurring(
    db: &sqlx::PgPool,
    org_id: i64,
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<u64, sqlx::Error> {
    let items: Vec<RecurringItem> = sqlx::query_as(
        "SELECT i.id, i.planned_from, i.retired_from, i.weekday, i.week_of_cycle, p.cycle_weeks, p.valid_from,
                p.valid_to
           FROM plan_items i JOIN plans p ON p.org_id = i.org_id AND p.id = i.plan_id
          WHERE i.org_id = $1 AND p.rep_id = $2 AND p.active AND i.weekday IS NOT NULL
            AND p.valid_from <= $4 AND (p.valid_to IS NULL OR p.valid_to >= $3)
            AND (i.retired_from IS NULL OR i.retired_from > $3)
            AND (i.planned_from IS NULL OR i.planned_from <= $4)",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    let (mut item_ids, mut days) = (Vec::new(), Vec::new());
    for i in items {
        // An item plans the days of its revision span only; the cycle stays the plan's.
        let last = match (i.valid_to, i.retired_from.and_then(|r| r.pred_opt())) {
            (Some(t), Some(r)) => Some(t.min(r)),
            (t, r) => t.or(r),
        };
        let first = i.planned_from.map_or(from, |p| p.max(from));
        for day in crate::domain::plan::recurring_days(
            i.valid_from,
            last,
            i.cycle_weeks,
            i.weekday,
            i.week_of_cycle,
            first,
            to,
        ) {
            item_ids.push(i.id);
            days.push(day);
        }
    }
    if item_ids.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "INSERT INTO planned_visits (org_id, rep_id, visit_date, outlet_id, plan_item_id, seq, window_start,
                                     window_end, expected_duration_s)
         SELECT i.org_id, $2, t.day, i.outlet_id, i.id, i.seq,
                (t.day + i.window_start) AT TIME ZONE o.timezone,
                (t.day + i.window_end) AT TIME ZONE o.timezone,
                i.expected_duration_s
           FROM UNNEST($3::bigint[], $4::date[]) AS t(item_id, day)
           JOIN plan_items i ON i.org_id = $1 AND i.id = t.item_id
           JOIN orgs o ON o.id = i.org_id
         ON CONFLICT (org_id, rep_id, visit_date, plan_item_id) DO NOTHING",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(&item_ids)
    .bind(&days)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// A planned visit of a day with what the phone shows of its outlet.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct DayPlanEntry {
    pub planned_visit_id: i64,
    pub seq: i32,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub outlet_name: String,
    pub address: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub expected_duration_s: Option<i32>,
}

/// The planned visits of a rep-day in route order, with their outlets.
pub async fn day_plan(
    db: impl PgExecutor<'_>,
    org_id: i64,
    rep_id: i64,
    day: NaiveDate,
) -> Result<Vec<DayPlanEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT pv.id AS planned_visit_id, pv.seq, pv.outlet_id, o.code AS outlet_code, o.name AS outlet_name,
                o.address, ST_Y(o.location) AS lat, ST_X(o.location) AS lon, pv.window_start, pv.window_end,
                pv.expected_duration_s
           FROM planned_visits pv JOIN outlets o ON o.org_id = pv.org_id AND o.id = pv.outlet_id
          WHERE pv.org_id = $1 AND pv.rep_id = $2 AND pv.visit_date = $3
          ORDER BY pv.seq, pv.id",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(day)
    .fetch_all(db)
    .await
}

/// Which of `outlet_ids` are not outlets of the org.
pub async fn unknown_outlets(
    db: impl PgExecutor<'_>,
    org_id: i64,
    outlet_ids: &[i64],
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT t.id FROM UNNEST($2::bigint[]) AS t(id)
          WHERE NOT EXISTS (SELECT 1 FROM outlets o WHERE o.org_id = $1 AND o.id = t.id)",
    )
    .bind(org_id)
    .bind(outlet_ids)
    .fetch_all(db)
    .await
}
