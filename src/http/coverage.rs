//! Coverage of a territory's outlets over a period: the figures by tier, channel type, child
//! territory and H3 cell (with the white space), each outlet's status, and how much of a rep's
//! planned route their track came near. Definitions in `src/domain/coverage.rs` and the README.

use super::AppState;
use super::auth::{Can, p};
use super::compliance::{GroupRow, figures_of, grouped, period, visible_territory};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query};
use crate::db;
use crate::domain::compliance::OutletFigures;
use crate::domain::coverage::{self, CellFigures, CorridorCoverage, H3_RESOLUTIONS, OutletStatus};
use axum::extract::State;
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(territory_coverage))
        .routes(routes!(outlet_status))
        .routes(routes!(route_coverage))
}

/// Days before a period's end searched for an outlet's last valid visit: an outlet without one in
/// that time is `never_visited`.
const LAST_VISIT_LOOKBACK_DAYS: i64 = 366;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CoverageQuery {
    /// First local day (YYYY-MM-DD); default today.
    from: Option<NaiveDate>,
    /// Last local day, inclusive; default `from`.
    to: Option<NaiveDate>,
    /// H3 resolution of the cells, 5-10 (default 8).
    h3_res: Option<u8>,
}

/// A child territory's outlet figures.
#[derive(Serialize, utoipa::ToSchema)]
struct ChildCoverage {
    territory_id: i64,
    code: String,
    name: String,
    outlets: OutletFigures,
}

#[derive(Serialize, utoipa::ToSchema)]
struct H3Coverage {
    resolution: u8,
    /// Cells holding outlets of U, in cell order.
    cells: Vec<CellFigures>,
    /// How many of them are white space.
    white_space_cells: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TerritoryCoverage {
    territory_id: i64,
    code: String,
    name: String,
    from: NaiveDate,
    to: NaiveDate,
    period_days: i64,
    /// Coverage, frequency and dwell compliance of the subtree's outlets of U.
    outlets: OutletFigures,
    by_tier: Vec<GroupRow>,
    by_channel_type: Vec<GroupRow>,
    /// Each direct child territory, by code.
    children: Vec<ChildCoverage>,
    h3: H3Coverage,
    /// Outlets of the subtree registered by the end of the period, by status at its end.
    status_counts: BTreeMap<OutletStatus, usize>,
}

/// The `status` filter of a request, if any.
pub(super) fn status_param(status: Option<&str>) -> Result<Option<OutletStatus>, ApiError> {
    status
        .map(|s| {
            OutletStatus::parse(s)
                .ok_or_else(|| ApiError::field("status", "must be one of visited, due, overdue, never_visited, closed"))
        })
        .transpose()
}

/// The H3 resolution asked for (default 8).
pub(super) fn resolution(h3_res: Option<u8>) -> Result<h3o::Resolution, ApiError> {
    let r = h3_res.unwrap_or(8);
    if !H3_RESOLUTIONS.contains(&r) {
        return Err(ApiError::field("h3_res", "must be an H3 resolution from 5 to 10"));
    }
    h3o::Resolution::try_from(r).map_err(|_| ApiError::field("h3_res", "must be an H3 resolution from 5 to 10"))
}

/// One outlet's status at the end of a period.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct OutletStatusRow {
    pub outlet_id: i64,
    pub code: String,
    pub name: String,
    pub tier: String,
    pub channel_type: String,
    pub lat: f64,
    pub lon: f64,
    pub status: OutletStatus,
    /// Local day of the last valid visit up to the end of the period (366 days back at most).
    pub last_valid_visit: Option<NaiveDate>,
    /// Valid visits in the period.
    pub valid_visits: usize,
    /// Visits its tier requires in the period (pro rata).
    pub required_visits: f64,
}

/// Each outlet of territory `root`'s subtree (the org's for `None`) registered by the end of `to`,
/// with its status then.
pub(super) async fn statuses(
    state: &AppState,
    org_id: i64,
    root: Option<i64>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<OutletStatusRow>, ApiError> {
    let period_days = (to - from).num_days() + 1;
    let at_end = db::compliance::subtree_outlets(&state.db, org_id, root, to + Duration::days(1)).await?;
    let visits =
        db::compliance::subtree_visits(&state.db, org_id, root, to - Duration::days(LAST_VISIT_LOOKBACK_DAYS - 1), to)
            .await?;
    let last = coverage::last_valid_visits(&visits, to);
    let mut in_period: HashMap<i64, usize> = HashMap::new();
    for v in visits.iter().filter(|v| v.rep_day >= from && v.visit.is_valid()) {
        *in_period.entry(v.outlet_id).or_default() += 1;
    }
    Ok(at_end
        .into_iter()
        .filter(|o| o.outlet.status_at_start != "unregistered")
        .map(|o| {
            let last_valid = last.get(&o.outlet.id).copied();
            OutletStatusRow {
                status: coverage::outlet_status(&o.outlet, o.outlet.status_at_start == "active", last_valid, to),
                last_valid_visit: last_valid,
                valid_visits: in_period.get(&o.outlet.id).copied().unwrap_or(0),
                required_visits: o.outlet.required_in(period_days),
                outlet_id: o.outlet.id,
                tier: o.outlet.tier,
                channel_type: o.outlet.channel_type,
                code: o.code,
                name: o.name,
                lat: o.lat,
                lon: o.lon,
            }
        })
        .collect())
}

/// Coverage of a territory's outlets for the local days `[from, to]` (at most 93): the outlet
/// figures of U (outlets active at the start of the period: coverage %, frequency compliance %,
/// dwell compliance %), by tier, by channel type, by direct child territory and by H3 cell of
/// resolution `h3_res` (5-10, default 8) with the white space (cells with outlets of U and no
/// valid visit); and how many outlets end the period `visited`, `due`, `overdue`,
/// `never_visited` or `closed`. Managers, supervisors, auditors and admins of a territory
/// containing it.
#[utoipa::path(get, path = "/territories/{id}/coverage", tag = "coverage", params(CoverageQuery), responses(
    (status = 200, body = TerritoryCoverage), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn territory_coverage(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    Path(id): Path<i64>,
    Query(q): Query<CoverageQuery>,
) -> Result<Json<TerritoryCoverage>, ApiError> {
    let t = visible_territory(&state, &auth, id).await?;
    let res = resolution(q.h3_res)?;
    let (from, to) = period(&state, &auth, &super::visits::VisitsQuery { from: q.from, to: q.to }).await?;
    let period_days = (to - from).num_days() + 1;
    let outlets = db::compliance::subtree_outlets(&state.db, auth.org_id, Some(t.id), from).await?;
    let visits = db::compliance::subtree_visits(&state.db, auth.org_id, Some(t.id), from, to).await?;
    let cells = coverage::h3_figures(outlets.iter().map(|o| (&o.outlet, o.lat, o.lon)), &visits, period_days, res);
    let mut children = Vec::new();
    for c in db::territories::children(&state.db, auth.org_id, t.id).await? {
        let figures = figures_of(outlets.iter().filter(|o| o.child_id == Some(c.id)), &visits, period_days);
        children.push(ChildCoverage { territory_id: c.id, code: c.code, name: c.name, outlets: figures });
    }
    let mut status_counts: BTreeMap<OutletStatus, usize> = OutletStatus::ALL.iter().map(|s| (*s, 0)).collect();
    for row in statuses(&state, auth.org_id, Some(t.id), from, to).await? {
        *status_counts.entry(row.status).or_default() += 1;
    }
    Ok(Json(TerritoryCoverage {
        territory_id: t.id,
        code: t.code,
        name: t.name,
        from,
        to,
        period_days,
        outlets: figures_of(outlets.iter(), &visits, period_days),
        by_tier: grouped(&outlets, &visits, period_days, |o| &o.outlet.tier),
        by_channel_type: grouped(&outlets, &visits, period_days, |o| &o.outlet.channel_type),
        children,
        h3: H3Coverage {
            resolution: u8::from(res),
            white_space_cells: cells.iter().filter(|c| c.white_space).count(),
            cells,
        },
        status_counts,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StatusQuery {
    /// First local day (YYYY-MM-DD); default today.
    from: Option<NaiveDate>,
    /// Last local day, inclusive; default `from`.
    to: Option<NaiveDate>,
    /// Only outlets with this status (`visited`, `due`, `overdue`, `never_visited`, `closed`).
    status: Option<String>,
    /// Most rows (1-10,000, default 1,000).
    limit: Option<i64>,
    /// Rows to skip.
    offset: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct OutletStatusPage {
    territory_id: i64,
    from: NaiveDate,
    to: NaiveDate,
    /// Outlets matching (before paging).
    total: usize,
    outlets: Vec<OutletStatusRow>,
}

/// Each outlet of a territory's subtree registered by the end of the period, with its status at
/// the end of the local day `to` (`visited`, `due`, `overdue`, `never_visited`, `closed`: see the
/// README), its last valid visit, its valid visits in the period and the visits its tier requires
/// in it; by outlet id. Same access as the territory's coverage.
#[utoipa::path(get, path = "/territories/{id}/outlet-status", tag = "coverage", params(StatusQuery), responses(
    (status = 200, body = OutletStatusPage), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn outlet_status(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    Path(id): Path<i64>,
    Query(q): Query<StatusQuery>,
) -> Result<Json<OutletStatusPage>, ApiError> {
    let t = visible_territory(&state, &auth, id).await?;
    let wanted = status_param(q.status.as_deref())?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::field("limit", "must be from 1 to 10000"));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::field("offset", "must not be negative"));
    }
    let (from, to) = period(&state, &auth, &super::visits::VisitsQuery { from: q.from, to: q.to }).await?;
    let rows: Vec<OutletStatusRow> = statuses(&state, auth.org_id, Some(t.id), from, to)
        .await?
        .into_iter()
        .filter(|r| wanted.is_none_or(|w| r.status == w))
        .collect();
    let total = rows.len();
    let outlets = rows.into_iter().skip(usize::try_from(offset).unwrap_or(usize::MAX)).take(limit as usize).collect();
    Ok(Json(OutletStatusPage { territory_id: t.id, from, to, total, outlets }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct RouteQuery {
    /// The local day (YYYY-MM-DD); default today.
    date: Option<NaiveDate>,
    /// Corridor half-width in metres (1-5,000, default 100).
    within_m: Option<f64>,
}

/// One planned stop of the route.
#[derive(Serialize, utoipa::ToSchema)]
struct RouteStop {
    seq: i32,
    outlet_id: i64,
    lat: f64,
    lon: f64,
}

#[derive(Serialize, utoipa::ToSchema)]
struct RouteCoverage {
    rep_id: i64,
    date: NaiveDate,
    within_m: f64,
    /// The planned visits of the day in route order.
    stops: Vec<RouteStop>,
    #[serde(flatten)]
    coverage: CorridorCoverage,
    /// The rep's usable fixes of the day the corridor was measured against.
    fix_count: usize,
}

/// Route corridor coverage of a rep-day: the share of the planned route's line (the day's planned
/// visits in route order, joined by great-circle segments) that lies within `within_m` metres of
/// the rep's track that day (the line through the usable fixes, gaps over 10 minutes not bridged). Reps see their own; managers, supervisors and auditors the
/// reps of their territories.
#[utoipa::path(get, path = "/reps/{id}/route-coverage", tag = "coverage", params(RouteQuery), responses(
    (status = 200, body = RouteCoverage), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn route_coverage(
    State(state): State<AppState>,
    auth: Can<p::ReadVisits>,
    Path(rep_id): Path<i64>,
    Query(q): Query<RouteQuery>,
) -> Result<Json<RouteCoverage>, ApiError> {
    let within_m = q.within_m.unwrap_or(100.0);
    if !(1.0..=5000.0).contains(&within_m) {
        return Err(ApiError::field("within_m", "must be from 1 to 5000 metres"));
    }
    let rep = super::tracks::visible_rep(&state, &auth, rep_id).await?;
    let (date, _) = period(&state, &auth, &super::visits::VisitsQuery { from: q.date, to: q.date }).await?;
    db::plans::materialize_recurring(&state.db, auth.org_id, rep.id, date, date).await?;
    let stops: Vec<RouteStop> = db::plans::day_plan(&state.db, auth.org_id, rep.id, date)
        .await?
        .into_iter()
        .map(|e| RouteStop { seq: e.seq, outlet_id: e.outlet_id, lat: e.lat, lon: e.lon })
        .collect();
    let fixes = db::visits::day_fixes(&state.db, auth.org_id, rep.id, date, date).await?;
    let fixes: Vec<_> = fixes.into_iter().map(|(_, f)| f).collect();
    let track = crate::domain::compliance::track_pieces(&fixes, &crate::domain::compliance::ComplianceRules::default());
    let route: Vec<(f64, f64)> = stops.iter().map(|s| (s.lat, s.lon)).collect();
    Ok(Json(RouteCoverage {
        rep_id: rep.id,
        date,
        within_m,
        coverage: coverage::corridor_coverage(&route, &track, within_m),
        fix_count: track.iter().map(Vec::len).sum(),
        stops,
    }))
}
