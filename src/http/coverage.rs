//! Coverage of a territory's outlets over a period: the figures by tier, channel type, child
//! territory and H3 cell (with the white space), each outlet's status, and how much of a rep's
//! planned route their track came near. The figures come from `app::coverage`;
//! definitions in `docs/domain.md`.

use super::AppState;
use super::auth::{Can, p};
use super::compliance::{period, visible_territory};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query};
use crate::app::coverage::{self, OutletStatusRow, RouteCoverage, StatusFilter, TerritoryCoverage};
use crate::domain::coverage::{H3_RESOLUTIONS, PeriodStatus};
use crate::domain::outlet::ChannelType;
use axum::extract::State;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(territory_coverage))
        .routes(routes!(outlet_status))
        .routes(routes!(route_coverage))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CoverageQuery {
    /// First local day (YYYY-MM-DD); default today.
    from: Option<NaiveDate>,
    /// Last local day, inclusive; default `from`.
    to: Option<NaiveDate>,
    /// H3 resolution of the cells, 5-10 (default 8).
    #[param(minimum = 5, maximum = 10)]
    h3_res: Option<u8>,
}

/// The `status` filter of a request, if any.
pub(super) fn status_param(status: Option<&str>) -> Result<Option<PeriodStatus>, ApiError> {
    status
        .map(|s| {
            s.parse::<PeriodStatus>()
                .map_err(|_| ApiError::field("status", "must be one of visited, due, overdue, never_visited, closed"))
        })
        .transpose()
}

/// The `channel_type` filter of a request: `Err(())` for text that names no channel type, which
/// no outlet matches (the answer is empty, as it always was; it is not an error).
pub(super) fn channel_type_param(channel_type: Option<&str>) -> Result<Option<ChannelType>, ()> {
    channel_type.map(|c| c.parse::<ChannelType>().map_err(|_| ())).transpose()
}

/// The H3 resolution asked for (default 8).
pub(super) fn resolution(h3_res: Option<u8>) -> Result<h3o::Resolution, ApiError> {
    let r = h3_res.unwrap_or(8);
    if !H3_RESOLUTIONS.contains(&r) {
        return Err(ApiError::field("h3_res", "must be an H3 resolution from 5 to 10"));
    }
    h3o::Resolution::try_from(r).map_err(|_| ApiError::field("h3_res", "must be an H3 resolution from 5 to 10"))
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
    let period = period(&state, &auth, &super::visits::VisitsQuery { from: q.from, to: q.to }).await?;
    Ok(Json(coverage::territory_coverage(state.read_stores(), auth.org_id, t, period, res).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StatusQuery {
    /// First local day (YYYY-MM-DD); default today.
    from: Option<NaiveDate>,
    /// Last local day, inclusive; default `from`.
    to: Option<NaiveDate>,
    /// Only outlets with this status (`visited`, `due`, `overdue`, `never_visited`, `closed`).
    #[param(value_type = Option<PeriodStatus>)]
    status: Option<String>,
    /// Most rows (1-10,000, default 1,000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<i64>,
    /// Rows to skip.
    #[param(minimum = 0)]
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
    let filter = StatusFilter { status: wanted, limit: usize::MAX, ..StatusFilter::default() };
    let rows = coverage::statuses(state.read_stores(), auth.org_id, Some(t.id), (from, to), filter).await?.rows;
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
    #[param(minimum = 1, maximum = 5000)]
    within_m: Option<f64>,
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
    Ok(Json(coverage::route_coverage(&state.db, auth.org_id, rep.id, date, within_m).await?))
}
