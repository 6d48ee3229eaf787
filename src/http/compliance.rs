//! Compliance figures: of a rep per day and period, of a territory (its reps and its outlets,
//! rolled up and by child territory, tier and channel type), each outlet's visit frequency, and
//! one outlet's visits. Definitions in `src/domain/compliance.rs` and the README.

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query};
use super::visits::{VisitsQuery, days};
use crate::app;
use crate::app::compliance::TerritoryCompliance;
use crate::db;
use crate::db::territories::Territory;
use crate::db::visits::StoredVisit;
use crate::domain::compliance::{self, ComplianceDay, ComplianceRules, PeriodTotals};
use crate::domain::outlet::OutletStatus;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rep_compliance))
        .routes(routes!(territory_compliance))
        .routes(routes!(outlet_frequency))
        .routes(routes!(outlet_visits))
}

#[derive(Serialize, utoipa::ToSchema)]
struct RepCompliance {
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
    totals: PeriodTotals,
    /// Every day of the period with planned visits, visits or fixes.
    days: Vec<ComplianceDay>,
}

/// The local days `[from, to]` of a request (default today) and their count.
pub(super) async fn period(
    state: &AppState,
    auth: &Principal,
    q: &VisitsQuery,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let today = db::plans::local_date(&state.db, auth.org_id, Utc::now()).await?;
    days(q.from, q.to, today)
}

/// Plan compliance of a rep per rep-day and for the period `[from, to]` (local dates): planned
/// visits done / late / short / missed, unplanned and suspect visits, first arrival and last
/// departure, time in market, in-store and travel time, distance travelled. Reviews count: an
/// accepted visit is valid, a rejected one is not. Reps see their own; managers, supervisors and
/// auditors the reps of their territories.
#[utoipa::path(get, path = "/reps/{id}/compliance", tag = "compliance", params(VisitsQuery), responses(
    (status = 200, body = RepCompliance), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn rep_compliance(
    State(state): State<AppState>,
    auth: Can<p::ReadVisits>,
    Path(rep_id): Path<i64>,
    Query(q): Query<VisitsQuery>,
) -> Result<Json<RepCompliance>, ApiError> {
    let rep = super::tracks::visible_rep(&state, &auth, rep_id).await?;
    let (from, to) = period(&state, &auth, &q).await?;
    let inputs = db::compliance::rep_inputs(&state.db, auth.org_id, rep.id, from, to).await?;
    let (days, totals) = compliance::rep_period(inputs, &ComplianceRules::default());
    Ok(Json(RepCompliance { rep_id: rep.id, from, to, totals, days }))
}

/// A territory the caller may see (404 outside the org, 403 outside the caller's scope).
pub(super) async fn visible_territory(state: &AppState, auth: &Principal, id: i64) -> Result<Territory, ApiError> {
    let t =
        db::territories::get(&state.db, auth.org_id, id).await?.ok_or_else(|| ApiError::not_found("territory", id))?;
    auth.check_territory(Some(&t.path))?;
    Ok(t)
}

/// Compliance of a territory for the local days `[from, to]` (at most 93, and at most 20,000 rep-days): the plan figures of
/// every active rep whose territory lies in its subtree (summed, and per rep), the outlet figures
/// of its subtree's outlets (coverage %, frequency compliance % against each tier's required
/// visits, dwell compliance %; also by tier and by channel type), and both again for each direct
/// child territory. Managers, supervisors, auditors and admins of a territory containing it.
#[utoipa::path(get, path = "/territories/{id}/compliance", tag = "compliance", params(VisitsQuery), responses(
    (status = 200, body = TerritoryCompliance), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn territory_compliance(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    Path(id): Path<i64>,
    Query(q): Query<VisitsQuery>,
) -> Result<Json<TerritoryCompliance>, ApiError> {
    let t = visible_territory(&state, &auth, id).await?;
    let period = period(&state, &auth, &q).await?;
    Ok(Json(app::compliance::territory_compliance(&state.db, auth.org_id, t, period).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct FrequencyQuery {
    /// First local day (YYYY-MM-DD); default today.
    from: Option<NaiveDate>,
    /// Last local day, inclusive; default `from`.
    to: Option<NaiveDate>,
    /// Only outlets below this frequency compliance % (e.g. 100 for the under-visited ones).
    below_pct: Option<f64>,
    /// Most rows (1-10,000, default 1,000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<i64>,
    /// Rows to skip.
    #[param(minimum = 0)]
    offset: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct OutletFrequencyList {
    territory_id: i64,
    from: NaiveDate,
    to: NaiveDate,
    period_days: i64,
    /// Rows matching (before `limit`/`offset`).
    total: usize,
    outlets: Vec<app::compliance::FrequencyRow>,
}

/// Frequency compliance of each active outlet of a territory's subtree for the local days
/// `[from, to]`: its tier's required visits pro rata over the period, the valid visits, and
/// min(valid / required, 1) x 100; least compliant first (then by code). Scoped like the
/// territory's compliance.
#[utoipa::path(get, path = "/territories/{id}/outlet-frequency", tag = "compliance", params(FrequencyQuery),
    responses((status = 200, body = OutletFrequencyList), (status = 403, body = Problem),
    (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn outlet_frequency(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    Path(id): Path<i64>,
    Query(q): Query<FrequencyQuery>,
) -> Result<Json<OutletFrequencyList>, ApiError> {
    let limit = q.limit.unwrap_or(1_000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::field("limit", "must be from 1 to 10000"));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::field("offset", "must not be negative"));
    }
    if q.below_pct.is_some_and(|b| !b.is_finite()) {
        return Err(ApiError::field("below_pct", "must be a number"));
    }
    let t = visible_territory(&state, &auth, id).await?;
    let (from, to) = period(&state, &auth, &VisitsQuery { from: q.from, to: q.to }).await?;
    let period_days = (to - from).num_days() + 1;
    let rows = app::compliance::outlet_frequencies(state.read_db(), auth.org_id, t.id, (from, to), q.below_pct).await?;
    let total = rows.len();
    let outlets = rows.into_iter().skip(usize::try_from(offset).unwrap_or(usize::MAX)).take(limit as usize).collect();
    Ok(Json(OutletFrequencyList { territory_id: t.id, from, to, period_days, total, outlets }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct OutletVisits {
    outlet_id: i64,
    from: NaiveDate,
    to: NaiveDate,
    /// The tier's required visits pro rata over the period.
    required_visits: f64,
    /// Valid visits (verified and not rejected, or accepted).
    valid_visits: usize,
    frequency_compliance_pct: f64,
    last_valid_visit: Option<DateTime<Utc>>,
    /// The visits, in arrival order, with their verdict and evidence.
    visits: Vec<StoredVisit>,
}

/// The visits at an outlet with rep-day in `[from, to]` (local dates, at most 93 days), by any rep,
/// in arrival order with verdict and evidence, and the outlet's frequency over the period (counting
/// every rep's valid visits). Managers, supervisors, auditors and admins whose territory holds the
/// outlet see the visits of the reps of their territories; a rep sees only their own, and only at
/// outlets of their territory.
#[utoipa::path(get, path = "/outlets/{id}/visits", tag = "compliance", params(VisitsQuery), responses(
    (status = 200, body = OutletVisits), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn outlet_visits(
    State(state): State<AppState>,
    auth: Can<p::ReadVisits>,
    Path(id): Path<i64>,
    Query(q): Query<VisitsQuery>,
) -> Result<Json<OutletVisits>, ApiError> {
    let outlet =
        db::outlets::get(&state.db, auth.org_id, id).await?.ok_or_else(|| ApiError::not_found("outlet", id))?;
    // The outlet must be within the caller's scope, a rep's territory included (as for
    // GET /outlets/{id}); a rep then sees only their own visits there.
    auth.check_territory(outlet.territory_path.as_deref())?;
    let only_rep = auth.own_rep();
    let (from, to) = period(&state, &auth, &q).await?;
    let period_days = (to - from).num_days() + 1;
    let policy = db::compliance::outlet_policy(state.read_db(), auth.org_id, outlet.id, from)
        .await?
        .ok_or_else(|| ApiError::not_found("outlet", id))?;
    let counted = db::compliance::outlet_visits(state.read_db(), auth.org_id, outlet.id, only_rep, from, to).await?;
    // Computed as if the outlet were active: its figures are asked for by name.
    let active = compliance::ScopeOutlet { status_at_start: Some(OutletStatus::Active), ..policy };
    let f = compliance::outlet_frequencies(std::slice::from_ref(&active), &counted, period_days).pop();
    let (required_visits, valid_visits, frequency_compliance_pct, last_valid_visit) = f
        .map_or((active.required_in(period_days), 0, 0.0, None), |f| {
            (f.required_visits, f.valid_visits, f.frequency_compliance_pct, f.last_valid_visit)
        });
    // Managers and others see the visits of the reps of their territories only.
    let visits =
        db::visits::of_outlet(state.read_db(), auth.org_id, outlet.id, only_rep, auth.scope_root(), from, to).await?;
    Ok(Json(OutletVisits {
        outlet_id: outlet.id,
        from,
        to,
        required_visits,
        valid_visits,
        frequency_compliance_pct,
        last_valid_visit,
        visits,
    }))
}
