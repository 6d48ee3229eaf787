//! Compliance figures: of a rep per day and period, of a territory (its reps and its outlets,
//! rolled up and by child territory, tier and channel type), each outlet's visit frequency, and
//! one outlet's visits. Definitions in `src/domain/compliance.rs` and the README.

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query};
use super::visits::{VisitsQuery, days};
use crate::app::coverage::GroupRow;
use crate::db;
use crate::db::compliance::SubtreeOutlet;
use crate::db::territories::Territory;
use crate::db::visits::StoredVisit;
use crate::domain::access::Role;
use crate::domain::compliance::{
    self, ComplianceDay, ComplianceRules, OutletFigures, OutletFrequency, OutletVisit, PeriodTotals,
};
use crate::domain::outlet::OutletStatus;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
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

/// One rep's figures in a territory roll-up.
#[derive(Serialize, utoipa::ToSchema)]
struct RepRow {
    rep_id: i64,
    login: String,
    name: String,
    territory_id: Option<i64>,
    totals: PeriodTotals,
}

/// A child territory's figures.
#[derive(Serialize, utoipa::ToSchema)]
struct ChildRow {
    territory_id: i64,
    code: String,
    name: String,
    /// Plan figures of the reps of the child's subtree.
    plan: PeriodTotals,
    /// Outlet figures of the child's subtree.
    outlets: OutletFigures,
}

#[derive(Serialize, utoipa::ToSchema)]
struct TerritoryCompliance {
    territory_id: i64,
    code: String,
    name: String,
    from: NaiveDate,
    to: NaiveDate,
    period_days: i64,
    /// Plan figures of every active rep of the subtree, summed.
    plan: PeriodTotals,
    /// Coverage, frequency and dwell compliance of the subtree's outlets.
    outlets: OutletFigures,
    by_tier: Vec<GroupRow>,
    by_channel_type: Vec<GroupRow>,
    /// Each direct child territory, by code.
    children: Vec<ChildRow>,
    /// Each active rep of the subtree, by id.
    reps: Vec<RepRow>,
}

pub(super) fn figures_of<'a>(
    outlets: impl Iterator<Item = &'a SubtreeOutlet>,
    visits: &[OutletVisit],
    period_days: i64,
) -> OutletFigures {
    let outlets: Vec<_> = outlets.map(|o| o.outlet.clone()).collect();
    compliance::outlet_figures(&outlets, visits, period_days)
}

pub(super) fn grouped(
    outlets: &[SubtreeOutlet],
    visits: &[OutletVisit],
    period_days: i64,
    key: fn(&SubtreeOutlet) -> &str,
) -> Vec<GroupRow> {
    let mut groups: BTreeMap<&str, Vec<&SubtreeOutlet>> = BTreeMap::new();
    for o in outlets {
        groups.entry(key(o)).or_default().push(o);
    }
    groups
        .into_iter()
        .map(|(k, members)| GroupRow {
            key: k.to_owned(),
            outlets: figures_of(members.into_iter(), visits, period_days),
        })
        .collect()
}

/// Most rep-days (reps x days) one territory roll-up computes.
const MAX_REP_DAYS: i64 = 20_000;

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
    let (from, to) = period(&state, &auth, &q).await?;
    let period_days = (to - from).num_days() + 1;
    let subtree_reps = db::compliance::subtree_reps(&state.db, auth.org_id, t.id).await?;
    let rep_days = subtree_reps.len() as i64 * period_days;
    if rep_days > MAX_REP_DAYS {
        return Err(ApiError::field(
            "to",
            format!(
                "{} reps x {period_days} days is more than {MAX_REP_DAYS} rep-days: ask for a shorter period or a smaller territory",
                subtree_reps.len()
            ),
        ));
    }
    let outlets = db::compliance::subtree_outlets(&state.db, auth.org_id, Some(t.id), from).await?;
    let visits = db::compliance::subtree_visits(&state.db, auth.org_id, Some(t.id), from, to).await?;
    let rules = ComplianceRules::default();
    let mut plan = PeriodTotals::default();
    let mut reps = Vec::new();
    let mut by_child: HashMap<i64, PeriodTotals> = HashMap::new();
    for r in subtree_reps {
        let inputs = db::compliance::rep_inputs(&state.db, auth.org_id, r.id, from, to).await?;
        let (_, totals) = compliance::rep_period(inputs, &rules);
        plan.add(&totals);
        if let Some(child) = r.child_id {
            by_child.entry(child).or_default().add(&totals);
        }
        reps.push(RepRow { rep_id: r.id, login: r.login, name: r.name, territory_id: r.territory_id, totals });
    }
    let mut children = Vec::new();
    for c in db::territories::children(&state.db, auth.org_id, t.id).await? {
        let figures = figures_of(outlets.iter().filter(|o| o.child_id == Some(c.id)), &visits, period_days);
        children.push(ChildRow {
            territory_id: c.id,
            plan: by_child.remove(&c.id).unwrap_or_default(),
            outlets: figures,
            code: c.code,
            name: c.name,
        });
    }
    Ok(Json(TerritoryCompliance {
        territory_id: t.id,
        code: t.code,
        name: t.name,
        from,
        to,
        period_days,
        plan,
        outlets: figures_of(outlets.iter(), &visits, period_days),
        by_tier: grouped(&outlets, &visits, period_days, |o| &o.outlet.tier),
        by_channel_type: grouped(&outlets, &visits, period_days, |o| o.outlet.channel_type.as_str()),
        children,
        reps,
    }))
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
    limit: Option<i64>,
    /// Rows to skip.
    offset: Option<i64>,
}

/// One outlet's frequency in the territory list.
#[derive(Serialize, utoipa::ToSchema)]
struct FrequencyRow {
    code: String,
    name: String,
    tier: String,
    territory_child_id: Option<i64>,
    #[serde(flatten)]
    frequency: OutletFrequency,
}

#[derive(Serialize, utoipa::ToSchema)]
struct OutletFrequencyList {
    territory_id: i64,
    from: NaiveDate,
    to: NaiveDate,
    period_days: i64,
    /// Rows matching (before `limit`/`offset`).
    total: usize,
    outlets: Vec<FrequencyRow>,
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
    let outlets = db::compliance::subtree_outlets(&state.db, auth.org_id, Some(t.id), from).await?;
    let visits = db::compliance::subtree_visits(&state.db, auth.org_id, Some(t.id), from, to).await?;
    let plain: Vec<_> = outlets.iter().map(|o| o.outlet.clone()).collect();
    let by_id: HashMap<i64, &SubtreeOutlet> = outlets.iter().map(|o| (o.outlet.id, o)).collect();
    let mut rows: Vec<FrequencyRow> = compliance::outlet_frequencies(&plain, &visits, period_days)
        .into_iter()
        .filter(|f| q.below_pct.is_none_or(|b| f.frequency_compliance_pct < b))
        .filter_map(|f| {
            let o = by_id.get(&f.outlet_id)?;
            Some(FrequencyRow {
                code: o.code.clone(),
                name: o.name.clone(),
                tier: o.outlet.tier.clone(),
                territory_child_id: o.child_id,
                frequency: f,
            })
        })
        .collect();
    rows.sort_by(|a, b| {
        a.frequency.frequency_compliance_pct.total_cmp(&b.frequency.frequency_compliance_pct).then(a.code.cmp(&b.code))
    });
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
/// outlet see the visits of the reps of their territories; a rep sees only their own.
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
    let only_rep = if auth.role() == Some(Role::Rep) {
        auth.user_id()
    } else {
        auth.check_territory(outlet.territory_path.as_deref())?;
        None
    };
    let (from, to) = period(&state, &auth, &q).await?;
    let period_days = (to - from).num_days() + 1;
    let policy = db::compliance::outlet_policy(&state.db, auth.org_id, outlet.id, from)
        .await?
        .ok_or_else(|| ApiError::not_found("outlet", id))?;
    let counted = db::compliance::outlet_visits(&state.db, auth.org_id, outlet.id, only_rep, from, to).await?;
    // Computed as if the outlet were active: its figures are asked for by name.
    let active = compliance::ScopeOutlet { status_at_start: Some(OutletStatus::Active), ..policy };
    let f = compliance::outlet_frequencies(std::slice::from_ref(&active), &counted, period_days).pop();
    let (required_visits, valid_visits, frequency_compliance_pct, last_valid_visit) = f
        .map_or((active.required_in(period_days), 0, 0.0, None), |f| {
            (f.required_visits, f.valid_visits, f.frequency_compliance_pct, f.last_valid_visit)
        });
    // Managers and others see the visits of the reps of their territories only.
    let visits =
        db::visits::of_outlet(&state.db, auth.org_id, outlet.id, only_rep, auth.scope_root(), from, to).await?;
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
