//! What compliance is computed from: a rep's planned visits, visits and fixes per local day, and
//! the outlets and visits of a territory subtree.

use crate::db;
use crate::domain::compliance::{DayInputs, DayVisit, OutletVisit, Planned, Review, ScopeOutlet};
use crate::domain::outlet::{ChannelType, OutletStatus};
use crate::domain::plan::START_FIX_MAX_AGE_DAYS;
use crate::domain::visit::Verdict;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{FromRow, PgConnection, PgExecutor, PgPool};
use std::collections::BTreeMap;

/// The inputs of a rep's compliance on the local days `[from, to]`, by day (recurring plans are
/// materialised for the period first).
pub async fn rep_inputs(
    db: &PgPool,
    org_id: i64,
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<NaiveDate, DayInputs>, sqlx::Error> {
    db::plans::materialize_recurring(db, org_id, rep_id, from, to).await?;
    read_rep_inputs(&mut *db.acquire().await?, org_id, rep_id, from, to).await
}

/// [`rep_inputs`] without materialising recurring plans: reads only, so that an export can read
/// every rep in one snapshot.
pub async fn read_rep_inputs(
    conn: &mut PgConnection,
    org_id: i64,
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<NaiveDate, DayInputs>, sqlx::Error> {
    let planned = db::plans::planned_visits(&mut *conn, org_id, rep_id, from, to).await?;
    let visits = db::visits::day_visits(&mut *conn, org_id, rep_id, from, to).await?;
    let fixes = db::visits::day_fixes(&mut *conn, org_id, rep_id, from, to).await?;
    let kept = db::privacy::kept_distances(&mut *conn, org_id, rep_id, from, to).await?;
    let mut by_day: BTreeMap<NaiveDate, DayInputs> = BTreeMap::new();
    for p in planned {
        by_day.entry(p.visit_date).or_default().planned.push(Planned {
            id: p.id,
            outlet_id: p.outlet_id,
            window_start: p.window_start,
            window_end: p.window_end,
        });
    }
    for (day, v) in visits {
        by_day.entry(day).or_default().visits.push(v);
    }
    for (day, f) in fixes {
        by_day.entry(day).or_default().fixes.push(f);
    }
    for (day, distance_m) in kept {
        by_day.entry(day).or_default().kept_distance_m = Some(distance_m);
    }
    Ok(by_day)
}

/// An outlet of a territory subtree.
#[derive(Debug, Clone)]
pub struct SubtreeOutlet {
    pub outlet: ScopeOutlet,
    pub code: String,
    pub name: String,
    /// Current status and location.
    pub status: OutletStatus,
    pub lat: f64,
    pub lon: f64,
    /// The child of the subtree root the outlet lies under; `None` for the root's own outlets.
    pub child_id: Option<i64>,
}

#[derive(FromRow)]
struct ScopeOutletRow {
    id: i64,
    code: String,
    name: String,
    tier: String,
    #[sqlx(try_from = "String")]
    channel_type: ChannelType,
    #[sqlx(try_from = "String")]
    status: OutletStatus,
    lat: f64,
    lon: f64,
    child_id: Option<i64>,
    required_visits: i32,
    cycle_days: i32,
    min_dwell_s: i32,
    /// NULL: not registered yet.
    #[sqlx(try_from = "db::NullableName")]
    status_at_start: Option<OutletStatus>,
}

/// The outlets of territory `root`'s subtree (the whole org for `None`) with their status at the
/// start of local day `from`.
pub async fn subtree_outlets(
    db: impl PgExecutor<'_>,
    org_id: i64,
    root: Option<i64>,
    from: NaiveDate,
) -> Result<Vec<SubtreeOutlet>, sqlx::Error> {
    let rows: Vec<ScopeOutletRow> = sqlx::query_as(include_str!("sql/scope_outlets.sql"))
        .bind(org_id)
        .bind(root)
        .bind(from)
        .bind(None::<i64>)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(SubtreeOutlet::from).collect())
}

/// One outlet with its tier policy and its status at the start of local day `from`.
pub async fn outlet_policy(
    db: impl PgExecutor<'_>,
    org_id: i64,
    outlet_id: i64,
    from: NaiveDate,
) -> Result<Option<ScopeOutlet>, sqlx::Error> {
    let row: Option<ScopeOutletRow> = sqlx::query_as(include_str!("sql/scope_outlets.sql"))
        .bind(org_id)
        .bind(None::<i64>)
        .bind(from)
        .bind(outlet_id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| SubtreeOutlet::from(r).outlet))
}

impl From<ScopeOutletRow> for SubtreeOutlet {
    fn from(r: ScopeOutletRow) -> Self {
        SubtreeOutlet {
            outlet: ScopeOutlet {
                id: r.id,
                tier: r.tier,
                channel_type: r.channel_type,
                status_at_start: r.status_at_start,
                required_visits: r.required_visits,
                cycle_days: r.cycle_days,
                min_dwell_s: r.min_dwell_s,
            },
            code: r.code,
            name: r.name,
            status: r.status,
            lat: r.lat,
            lon: r.lon,
            child_id: r.child_id,
        }
    }
}

#[derive(FromRow)]
struct ScopeVisitRow {
    outlet_id: i64,
    rep_day: NaiveDate,
    id: i64,
    arrival: DateTime<Utc>,
    departure: DateTime<Utc>,
    dwell_s: i32,
    #[sqlx(try_from = "String")]
    verdict: Verdict,
    #[sqlx(try_from = "db::NullableName")]
    review: Option<Review>,
}

impl From<ScopeVisitRow> for OutletVisit {
    fn from(r: ScopeVisitRow) -> Self {
        OutletVisit {
            outlet_id: r.outlet_id,
            rep_day: r.rep_day,
            visit: DayVisit {
                id: r.id,
                outlet_id: r.outlet_id,
                arrival: r.arrival,
                departure: r.departure,
                dwell_s: i64::from(r.dwell_s),
                verdict: r.verdict,
                review: r.review,
            },
        }
    }
}

/// The visits with rep-day in `[from, to]` at outlets of territory `root`'s subtree (the whole org
/// for `None`), by any rep.
pub async fn subtree_visits(
    db: impl PgExecutor<'_>,
    org_id: i64,
    root: Option<i64>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<OutletVisit>, sqlx::Error> {
    let rows: Vec<ScopeVisitRow> = sqlx::query_as(include_str!("sql/scope_visits.sql"))
        .bind(org_id)
        .bind(root)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(OutletVisit::from).collect())
}

/// Where a rep starts a day: their last stored fix before the end of local day `day` (at most
/// [`START_FIX_MAX_AGE_DAYS`] days before it), else their declared home; (lat, lon) and which of
/// the two.
pub async fn rep_start(
    db: impl PgExecutor<'_>,
    org_id: i64,
    rep_id: i64,
    day: NaiveDate,
) -> Result<Option<(f64, f64, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT lat, lon, src FROM (
             (SELECT p.lat, p.lon, 'last_position' AS src, 1 AS pref
                FROM orgs o JOIN pings p ON p.org_id = o.id
               WHERE o.id = $1 AND p.fix_time < (($3::date + 1)::timestamp AT TIME ZONE o.timezone)
                 AND p.fix_time > (($3::date - $4)::timestamp AT TIME ZONE o.timezone)
                 AND p.device_id IN (SELECT id FROM devices WHERE org_id = $1 AND rep_id = $2)
               ORDER BY p.fix_time DESC LIMIT 1)
             UNION ALL
             (SELECT ST_Y(home), ST_X(home), 'home', 2 FROM users WHERE org_id = $1 AND id = $2 AND home IS NOT NULL)
         ) s ORDER BY pref LIMIT 1",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(day)
    .bind(START_FIX_MAX_AGE_DAYS)
    .fetch_optional(db)
    .await
}

/// A rep of a territory subtree.
#[derive(Debug, Clone, FromRow)]
pub struct SubtreeRep {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub territory_id: Option<i64>,
    /// The child of the subtree root the rep belongs under; `None` for reps of the root itself.
    pub child_id: Option<i64>,
}

/// The active reps whose territory lies in territory `root`'s subtree.
pub async fn subtree_reps(db: impl PgExecutor<'_>, org_id: i64, root: i64) -> Result<Vec<SubtreeRep>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id, u.login, u.name, u.territory_id, t.path[array_position(t.path, $2::bigint) + 1] AS child_id
           FROM users u JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
          WHERE u.org_id = $1 AND u.role = 'rep' AND u.active AND t.path @> ARRAY[$2::bigint]
          ORDER BY u.id",
    )
    .bind(org_id)
    .bind(root)
    .fetch_all(db)
    .await
}

/// The visits with rep-day in `[from, to]` at one outlet (of one rep, when given), each with its
/// latest accept/reject review.
pub async fn outlet_visits(
    db: impl PgExecutor<'_>,
    org_id: i64,
    outlet_id: i64,
    rep_id: Option<i64>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<OutletVisit>, sqlx::Error> {
    let rows: Vec<ScopeVisitRow> = sqlx::query_as(
        "SELECT v.outlet_id, v.rep_day, v.id, v.arrival, v.departure, v.dwell_s, v.verdict, v.review
           FROM visits v
          WHERE v.org_id = $1 AND v.outlet_id = $2 AND ($3::bigint IS NULL OR v.rep_id = $3)
            AND v.rep_day BETWEEN $4 AND $5
          ORDER BY v.arrival, v.id",
    )
    .bind(org_id)
    .bind(outlet_id)
    .bind(rep_id)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(OutletVisit::from).collect())
}

/// An outlet with what its status at the end of a period is computed from.
#[derive(Debug, Clone, FromRow)]
pub struct StatusRow {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub tier: String,
    #[sqlx(try_from = "String")]
    pub channel_type: ChannelType,
    pub lat: f64,
    pub lon: f64,
    pub required_visits: i32,
    pub cycle_days: i32,
    pub min_dwell_s: i32,
    /// Its lifecycle status at the end of the period.
    #[sqlx(try_from = "String")]
    pub status_at_end: OutletStatus,
    pub last_valid_visit: Option<NaiveDate>,
    pub valid_visits: i64,
}

/// Which outlets [`outlet_statuses`] reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusSelection<'a> {
    /// Territory subtree (the whole org when `None`).
    pub root: Option<i64>,
    /// `[min_lon, min_lat, max_lon, max_lat]`; min lon > max lon crosses the antimeridian.
    pub bbox: Option<[f64; 4]>,
    pub tier: Option<&'a str>,
    pub channel_type: Option<ChannelType>,
    pub ids: Option<&'a [i64]>,
}

/// The selected outlets registered by the end of local day `to`, with their status then, their
/// last counted visit up to `to` (at most `lookback_days` back) and their counted visits in
/// `[from, to]`; by id, at most `limit`.
pub async fn outlet_statuses(
    db: impl PgExecutor<'_>,
    org_id: i64,
    s: StatusSelection<'_>,
    (from, to): (NaiveDate, NaiveDate),
    lookback_days: i32,
    limit: i64,
) -> Result<Vec<StatusRow>, sqlx::Error> {
    let b = s.bbox.map_or([None; 4], |b| b.map(Some));
    sqlx::query_as(include_str!("sql/outlet_statuses.sql"))
        .bind(org_id)
        .bind(s.root)
        .bind(from)
        .bind(to)
        .bind(b[0])
        .bind(b[1])
        .bind(b[2])
        .bind(b[3])
        .bind(s.tier)
        .bind(s.channel_type.map(ChannelType::as_str))
        .bind(s.ids)
        .bind(lookback_days)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// The end of the org's local day `day` (its next midnight), as an instant.
pub async fn day_end(db: impl PgExecutor<'_>, org_id: i64, day: NaiveDate) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar("SELECT (($2::date + 1)::timestamp AT TIME ZONE timezone) FROM orgs WHERE id = $1")
        .bind(org_id)
        .bind(day)
        .fetch_one(db)
        .await
}
