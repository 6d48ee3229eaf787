//! Beat plans: create (recurring and dated items), read, end; and a rep's plan of a day for the phone.

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query};
use crate::db;
use crate::db::plans::{DayPlanEntry, Plan};
use crate::domain::access::Role;
use crate::domain::audit::AuditAction;
use crate::domain::outlet::OutletStatus;
use crate::domain::plan::{self, PlanInput};
use crate::domain::validation::FieldError;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use sqlx::Connection;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_plan, list_plans))
        .routes(routes!(get_plan, revise_plan, end_plan))
        .routes(routes!(rep_day_plan))
        .routes(routes!(plan_proposal))
}

/// 422 naming every problem: `errors`, and each item whose outlet is not one of the org's.
async fn check_items(
    state: &AppState,
    org_id: i64,
    items: &[plan::ItemInput],
    mut errors: Vec<FieldError>,
) -> Result<(), ApiError> {
    let outlet_ids: Vec<i64> = items.iter().map(|i| i.outlet_id).collect();
    let unknown = db::plans::unknown_outlets(&state.db, org_id, &outlet_ids).await?;
    for (i, item) in items.iter().enumerate() {
        if unknown.contains(&item.outlet_id) {
            errors.push(FieldError::new(format!("items[{i}].outlet_id"), "no such outlet in this org").at(i));
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    let detail = format!("{}: {}", errors[0].field, errors[0].reason);
    Err(ApiError::Unprocessable { detail, errors })
}

/// Item `i` of a request as stored (its route position defaults to its place in the list).
fn new_item(i: usize, item: &plan::ItemInput, planned_from: Option<NaiveDate>) -> db::plans::NewPlanItem {
    db::plans::NewPlanItem {
        outlet_id: item.outlet_id,
        weekday: item.weekday,
        week_of_cycle: item.week_of_cycle,
        visit_date: item.visit_date,
        window_start: item.window_start,
        window_end: item.window_end,
        expected_duration_s: item.expected_duration_s,
        seq: item.seq.unwrap_or(i32::try_from(i).unwrap_or(i32::MAX).saturating_add(1)),
        planned_from,
    }
}

/// Recurring items are materialised this far ahead when a plan is created (later days when read).
const HORIZON_DAYS: i64 = 56;

/// The rep `rep_id` (a user with role rep) if the caller may see them.
async fn plan_rep(state: &AppState, auth: &Principal, rep_id: i64, field: &str) -> Result<db::users::User, ApiError> {
    let rep = db::users::get(&state.db, auth.org_id, rep_id).await?;
    let rep = match rep {
        Some(r) if r.role == Role::Rep => r,
        Some(_) => return Err(ApiError::field(field, "is not a rep")),
        None => return Err(ApiError::field(field, "no such rep in this org")),
    };
    auth.check_rep(rep.id, rep.territory_path.as_deref())?;
    Ok(rep)
}

/// Creates a plan of a rep: recurring items (ISO `weekday`, optional `week_of_cycle` of a
/// `cycle_weeks` cycle that starts with the week of `valid_from`) and dated items (`visit_date`),
/// each with an optional org-local time window and expected duration. Planned visits are
/// materialised for the dated items and for recurring ones from `valid_from` to 8 weeks ahead
/// (later days as they are read: the phone's plan, compliance). Every problem is named (`items[3].weekday`). Admins and managers of the rep's
/// territory; audited.
#[utoipa::path(post, path = "/plans", tag = "plans", request_body = PlanInput, responses(
    (status = 201, body = Plan), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_plan(
    State(state): State<AppState>,
    auth: Can<p::WritePlans>,
    Json(input): Json<PlanInput>,
) -> Result<(StatusCode, Json<Plan>), ApiError> {
    check_items(&state, auth.org_id, &input.items, plan::problems(&input)).await?;
    let rep = plan_rep(&state, &auth, input.rep_id, "rep_id").await?;
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await?;
    let new = db::plans::NewPlan {
        rep_id: rep.id,
        name: input.name.trim(),
        cycle_weeks: input.cycle_weeks.unwrap_or(1),
        valid_from: input.valid_from,
        valid_to: input.valid_to,
    };
    let plan_id = db::plans::create(&mut *tx, auth.org_id, &new).await?;
    for (i, item) in input.items.iter().enumerate() {
        let item = new_item(i, item, None);
        db::plans::add_item(&mut *tx, auth.org_id, plan_id, &item).await?;
    }
    db::plans::materialize_dated(&mut *tx, auth.org_id, plan_id).await?;
    super::people::audit(
        &mut *tx,
        &auth,
        AuditAction::PlanCreate,
        "plan",
        plan_id,
        serde_json::json!({"rep_id": rep.id, "items": input.items.len()}),
    )
    .await?;
    tx.commit().await?;
    drop(conn);
    let today = db::plans::local_date(&state.db, auth.org_id, chrono::Utc::now()).await?;
    // From the first valid day (a plan may start in the past; at most a year back), to the horizon.
    let from = input.valid_from.max(today - Duration::days(366));
    let to = today.max(input.valid_from) + Duration::days(HORIZON_DAYS);
    db::plans::materialize_recurring(&state.db, auth.org_id, rep.id, from, to).await?;
    let plan =
        db::plans::get(&state.db, auth.org_id, plan_id).await?.ok_or_else(|| ApiError::not_found("plan", plan_id))?;
    Ok((StatusCode::CREATED, Json(plan)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PlansQuery {
    /// The rep whose plans to list.
    rep_id: i64,
}

/// The plans of a rep (active and ended), newest first, with their items.
#[utoipa::path(get, path = "/plans", tag = "plans", params(PlansQuery), responses(
    (status = 200, body = [Plan]), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_plans(
    State(state): State<AppState>,
    auth: Can<p::ReadPlans>,
    Query(q): Query<PlansQuery>,
) -> Result<Json<Vec<Plan>>, ApiError> {
    let rep = plan_rep(&state, &auth, q.rep_id, "rep_id").await?;
    Ok(Json(db::plans::list(&state.db, auth.org_id, &[rep.id]).await?))
}

async fn visible_plan(state: &AppState, auth: &Principal, plan_id: i64) -> Result<Plan, ApiError> {
    let plan =
        db::plans::get(&state.db, auth.org_id, plan_id).await?.ok_or_else(|| ApiError::not_found("plan", plan_id))?;
    let rep = db::users::get(&state.db, auth.org_id, plan.rep_id)
        .await?
        .ok_or_else(|| ApiError::not_found("plan", plan_id))?;
    auth.check_rep(rep.id, rep.territory_path.as_deref())?;
    Ok(plan)
}

/// One plan with its items.
#[utoipa::path(get, path = "/plans/{id}", tag = "plans", responses(
    (status = 200, body = Plan), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_plan(
    State(state): State<AppState>,
    auth: Can<p::ReadPlans>,
    Path(plan_id): Path<i64>,
) -> Result<Json<Plan>, ApiError> {
    Ok(Json(visible_plan(&state, &auth, plan_id).await?))
}

/// A plan's new content from a day on.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PlanRevisionInput {
    name: String,
    /// The plan's cycle length in weeks, if given: a revision keeps the cycle (and its week 1, the
    /// week of the plan's first day); to change it, end the plan and create another.
    cycle_weeks: Option<i16>,
    /// Last day (inclusive); absent = open-ended.
    valid_to: Option<NaiveDate>,
    /// The items in force from the revision's first day (they replace all the current ones).
    items: Vec<plan::ItemInput>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReviseQuery {
    /// The first local day of the revision (YYYY-MM-DD, today or later); default tomorrow, so
    /// that today's planned visits stay.
    from: Option<NaiveDate>,
}

/// 409: plan `plan_id` is not in force on `from`.
fn plan_ended(plan_id: i64, from: NaiveDate) -> ApiError {
    ApiError::Conflict {
        detail: format!("plan {plan_id} is not in force on {from} (ended or cancelled): create a new plan"),
        errors: Vec::new(),
    }
}

/// Whether plan `current` may be revised from `from`: not in the past, still in force then, its
/// cycle kept.
fn check_revision(current: &Plan, from: NaiveDate, today: NaiveDate, cycle_weeks: Option<i16>) -> Result<(), ApiError> {
    if from < today || !plan::date_in_range(from) {
        return Err(ApiError::field("from", "must be today or a later day (up to 2100-12-31): the past is kept"));
    }
    if !current.active || current.valid_to.is_some_and(|t| t < from) {
        return Err(plan_ended(current.id, from));
    }
    if cycle_weeks.is_some_and(|c| c != current.cycle_weeks) {
        return Err(ApiError::field(
            "cycle_weeks",
            format!(
                "a revision keeps the plan's cycle of {} weeks: end the plan and create another",
                current.cycle_weeks
            ),
        ));
    }
    Ok(())
}

/// Writes a revision of plan `plan_id` from the day `from` in one transaction: the plan's new
/// name and end, the items from then on, the dated planned visits; audited. `false` when the plan
/// is no longer in force then (ended or cancelled meanwhile).
async fn store_revision(
    state: &AppState,
    auth: &Principal,
    plan_id: i64,
    from: NaiveDate,
    whole: &PlanInput,
) -> Result<bool, ApiError> {
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await?;
    let revision = db::plans::PlanRevision { name: whole.name.trim(), valid_to: whole.valid_to };
    if !db::plans::revise(&mut tx, auth.org_id, plan_id, from, &revision).await? {
        return Ok(false);
    }
    for (i, item) in whole.items.iter().enumerate() {
        let item = new_item(i, item, Some(from));
        db::plans::add_item(&mut *tx, auth.org_id, plan_id, &item).await?;
    }
    db::plans::materialize_dated(&mut *tx, auth.org_id, plan_id).await?;
    super::people::audit(
        &mut *tx,
        auth,
        AuditAction::PlanRevise,
        "plan",
        plan_id,
        serde_json::json!({"from": from, "items": whole.items.len()}),
    )
    .await?;
    tx.commit().await?;
    drop(conn);
    Ok(true)
}

/// Revises a plan from a day on (default tomorrow): its name, last day and items become the given
/// ones (the cycle stays). The items in force until then are retired from that day and listed under
/// `retired_items`; every day before it keeps its planned visits (its compliance does not
/// change); the plan keeps its id and its cycle's start. Every problem is named
/// (`items[3].visit_date`). 409 for an ended or cancelled plan. Audited.
#[utoipa::path(put, path = "/plans/{id}", tag = "plans", params(ReviseQuery), request_body = PlanRevisionInput,
    responses((status = 200, body = Plan), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn revise_plan(
    State(state): State<AppState>,
    auth: Can<p::WritePlans>,
    Path(plan_id): Path<i64>,
    Query(q): Query<ReviseQuery>,
    Json(input): Json<PlanRevisionInput>,
) -> Result<Json<Plan>, ApiError> {
    let current = visible_plan(&state, &auth, plan_id).await?;
    let today = db::plans::local_date(&state.db, auth.org_id, chrono::Utc::now()).await?;
    let from = q.from.unwrap_or(today + Duration::days(1));
    check_revision(&current, from, today, input.cycle_weeks)?;
    let whole = PlanInput {
        rep_id: current.rep_id,
        name: input.name,
        cycle_weeks: Some(current.cycle_weeks),
        valid_from: current.valid_from,
        valid_to: input.valid_to,
        items: input.items,
    };
    check_items(&state, auth.org_id, &whole.items, plan::revision_problems(&whole, from)).await?;
    if !store_revision(&state, &auth, plan_id, from, &whole).await? {
        return Err(plan_ended(plan_id, from));
    }
    db::plans::materialize_recurring(
        &state.db,
        auth.org_id,
        current.rep_id,
        from,
        from.max(today) + Duration::days(HORIZON_DAYS),
    )
    .await?;
    let plan =
        db::plans::get(&state.db, auth.org_id, plan_id).await?.ok_or_else(|| ApiError::not_found("plan", plan_id))?;
    Ok(Json(plan))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct EndQuery {
    /// The first local day without the plan (YYYY-MM-DD, today or later); default tomorrow, so
    /// that today's planned visits stay.
    from: Option<NaiveDate>,
}

/// Ends a plan: its last day becomes the day before `from` (default tomorrow; a plan that had not
/// started by then is cancelled), its planned visits from `from` on are removed, and earlier days
/// keep theirs (their compliance does not change). Audited.
#[utoipa::path(delete, path = "/plans/{id}", tag = "plans", params(EndQuery), responses(
    (status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn end_plan(
    State(state): State<AppState>,
    auth: Can<p::WritePlans>,
    Path(plan_id): Path<i64>,
    Query(q): Query<EndQuery>,
) -> Result<StatusCode, ApiError> {
    let plan = visible_plan(&state, &auth, plan_id).await?;
    let today = db::plans::local_date(&state.db, auth.org_id, chrono::Utc::now()).await?;
    let from = q.from.unwrap_or(today + Duration::days(1));
    if from < today || !plan::date_in_range(from) {
        return Err(ApiError::field("from", "must be today or a later day (up to 2100-12-31): the past is kept"));
    }
    db::plans::end(&state.db, auth.org_id, plan.id, from).await?;
    super::people::audit(&state.db, &auth, AuditAction::PlanEnd, "plan", plan.id, serde_json::json!({"from": from}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DayQuery {
    /// The local day (YYYY-MM-DD); default today.
    date: Option<NaiveDate>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct DayPlan {
    rep_id: i64,
    date: NaiveDate,
    /// The planned visits in route order, with their outlets and windows.
    visits: Vec<DayPlanEntry>,
}

/// The `date` of a request (default the org's today), checked to be in range.
pub(super) async fn day_or_today(
    state: &AppState,
    auth: &Principal,
    date: Option<NaiveDate>,
) -> Result<NaiveDate, ApiError> {
    match date {
        Some(d) if !plan::date_in_range(d) => {
            Err(ApiError::field("date", "must be a date from 2000-01-01 to 2100-12-31"))
        }
        Some(d) => Ok(d),
        None => Ok(db::plans::local_date(&state.db, auth.org_id, chrono::Utc::now()).await?),
    }
}

/// A rep's plan of a day, for the phone (the rep's device token works): the planned visits in
/// route order with outlet code, name, address, position, time window and expected duration.
#[utoipa::path(get, path = "/reps/{id}/plan", tag = "plans", params(DayQuery), responses(
    (status = 200, body = DayPlan), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn rep_day_plan(
    State(state): State<AppState>,
    auth: Can<p::ReadPlans>,
    Path(rep_id): Path<i64>,
    Query(q): Query<DayQuery>,
) -> Result<Json<DayPlan>, ApiError> {
    let rep = super::tracks::visible_rep(&state, &auth, rep_id).await?;
    let date = day_or_today(&state, &auth, q.date).await?;
    db::plans::materialize_recurring(&state.db, auth.org_id, rep.id, date, date).await?;
    let visits = db::plans::day_plan(&state.db, auth.org_id, rep.id, date).await?;
    Ok(Json(DayPlan { rep_id: rep.id, date, visits }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ProposalQuery {
    /// The day to plan (org-local, YYYY-MM-DD); default today.
    date: Option<NaiveDate>,
    /// Most outlets in the day (1-60, default 12).
    max_outlets: Option<usize>,
    /// Where the route starts; default the rep's last position, else their declared home.
    start_lat: Option<f64>,
    start_lon: Option<f64>,
}

/// Where a proposed route starts.
#[derive(Serialize, utoipa::ToSchema)]
struct RouteStart {
    /// `null` when withheld: a rep's declared home is shown to the rep and admins only, and a
    /// last position near it not to others when the org blurs homes; the route then starts at
    /// its most urgent outlet instead.
    lat: Option<f64>,
    lon: Option<f64>,
    /// `given`, `last_position` or `home`.
    source: String,
}

/// A proposed stop with the outlet's code and name.
#[derive(Serialize, utoipa::ToSchema)]
struct ProposalStop {
    code: String,
    name: String,
    tier: String,
    #[serde(flatten)]
    stop: plan::ProposedStop,
}

/// A dated item of the proposal, ready for `POST /plans`.
#[derive(Serialize, utoipa::ToSchema)]
struct ProposedItem {
    outlet_id: i64,
    visit_date: NaiveDate,
    seq: i32,
}

#[derive(Serialize, utoipa::ToSchema)]
struct PlanProposal {
    rep_id: i64,
    date: NaiveDate,
    /// `None` when neither a start was given nor the rep has a position or home: the route then
    /// starts at the most overdue outlet.
    start: Option<RouteStart>,
    /// Outlets due in the rep's territory (active on the day).
    due_outlets: usize,
    stops: Vec<ProposalStop>,
    /// Sum of the legs, great-circle metres.
    route_m: f64,
    /// The stops as dated plan items (`{"rep_id", "name", "valid_from", "valid_to", "items"}` of
    /// `POST /plans`).
    items: Vec<ProposedItem>,
}

/// The active outlets of territory `root`'s subtree (the org without one) on `date`, and each as
/// a due candidate: its tier's interval, its last valid visit before `date` (as far back as the
/// longest interval asks, at least 28 days), whether its last checklist answers found a problem.
pub(super) async fn due_candidates(
    state: &AppState,
    org_id: i64,
    root: Option<i64>,
    date: NaiveDate,
) -> Result<(Vec<db::compliance::SubtreeOutlet>, Vec<plan::DueCandidate>), ApiError> {
    let outlets = db::compliance::subtree_outlets(&state.db, org_id, root, date).await?;
    // Active now (a proposal plans ahead: an outlet registered today is proposed, one closed is not).
    let active: Vec<_> = outlets.into_iter().filter(|o| o.status == OutletStatus::Active).collect();
    let lookback = active.iter().map(|o| i64::from(o.outlet.cycle_days)).max().unwrap_or(28).max(28);
    let visits = db::compliance::subtree_visits(
        &state.db,
        org_id,
        root,
        date - Duration::days(lookback),
        date - Duration::days(1),
    )
    .await?;
    let ids: Vec<i64> = active.iter().map(|o| o.outlet.id).collect();
    // Sorted by id.
    let with_problem = db::checklists::outlets_with_problems(&state.db, org_id, &ids).await?;
    let candidates = plan::due_candidates(active.iter().map(|o| (&o.outlet, o.lat, o.lon)), &visits, &with_problem);
    Ok((active, candidates))
}

/// The most outlets asked for (default 12) and the start position given, if any.
fn proposal_params(q: &ProposalQuery) -> Result<(usize, Option<(f64, f64)>), ApiError> {
    let max = q.max_outlets.unwrap_or(12);
    if !(1..=60).contains(&max) {
        return Err(ApiError::field("max_outlets", "must be from 1 to 60"));
    }
    let given = match (q.start_lat, q.start_lon) {
        (Some(lat), Some(lon)) if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) => Some((lat, lon)),
        (Some(_), Some(_)) => return Err(ApiError::field("start_lat", "start_lat/start_lon must be a position")),
        (None, None) => None,
        _ => return Err(ApiError::field("start_lat", "give both start_lat and start_lon, or neither")),
    };
    Ok((max, given))
}

/// The proposal as answered: each stop with its outlet's code, name and tier, the route's length
/// and the plan items that would make it.
fn proposal(
    rep_id: i64,
    date: NaiveDate,
    start: Option<RouteStart>,
    due_outlets: usize,
    stops: Vec<plan::ProposedStop>,
    active: &[db::compliance::SubtreeOutlet],
) -> PlanProposal {
    let by_id: std::collections::HashMap<i64, &db::compliance::SubtreeOutlet> =
        active.iter().map(|o| (o.outlet.id, o)).collect();
    let route_m = stops.iter().map(|s| s.leg_m).sum();
    let items = stops.iter().map(|s| ProposedItem { outlet_id: s.outlet_id, visit_date: date, seq: s.seq }).collect();
    let stops = stops
        .into_iter()
        .filter_map(|stop| {
            let o = by_id.get(&stop.outlet_id)?;
            Some(ProposalStop { code: o.code.clone(), name: o.name.clone(), tier: o.outlet.tier.clone(), stop })
        })
        .collect();
    PlanProposal { rep_id, date, start, due_outlets, stops, route_m, items }
}

/// A proposed day for a rep: the outlets of the rep's territory that are due by their tier's
/// policy (never validly visited, or the last valid visit by any rep at least cycle days / required
/// visits ago; active now) or whose last checklist answers found a problem, those with a problem
/// first, then the most overdue, at most `max_outlets`, ordered as a nearest-neighbour
/// route from the start (given, else the rep's last position, else their home). Nothing is stored:
/// post `items` as a dated plan to adopt it. Admins and managers of the rep's territory.
#[utoipa::path(get, path = "/reps/{id}/plan-proposal", tag = "plans", params(ProposalQuery), responses(
    (status = 200, body = PlanProposal), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn plan_proposal(
    State(state): State<AppState>,
    auth: Can<p::WritePlans>,
    Path(rep_id): Path<i64>,
    Query(q): Query<ProposalQuery>,
) -> Result<Json<PlanProposal>, ApiError> {
    let (max, given) = proposal_params(&q)?;
    let rep = super::tracks::visible_rep(&state, &auth, rep_id).await?;
    if rep.role != Role::Rep {
        return Err(ApiError::not_found("rep", rep_id));
    }
    let date = day_or_today(&state, &auth, q.date).await?;
    let (active, candidates) = due_candidates(&state, auth.org_id, rep.territory_id, date).await?;
    let start = match given {
        Some((lat, lon)) => Some((lat, lon, "given".to_owned())),
        None => db::compliance::rep_start(&state.db, auth.org_id, rep.id, date).await?,
    };
    let due_outlets = plan::due_count(&candidates, date);
    let blur = super::privacy::HomeBlur::for_reader(&state, &auth, [rep.id], None).await?;
    let sees_home = auth.user_id() == Some(rep.id) || auth.role() == Some(Role::Admin);
    let withheld = start.as_ref().is_some_and(|(lat, lon, source)| {
        source != "given" && ((source == "home" && !sees_home) || blur.hides_live(rep.id, *lat, *lon))
    });
    // A start the caller may not see is not routed from either: the order and the first leg
    // would tell where it is.
    let route_from = start.as_ref().filter(|_| !withheld).map(|s| (s.0, s.1));
    let stops = plan::propose(&candidates, date, route_from, max);
    let start = start.map(|(lat, lon, source)| {
        if withheld {
            RouteStart { lat: None, lon: None, source }
        } else {
            RouteStart { lat: Some(lat), lon: Some(lon), source }
        }
    });
    Ok(Json(proposal(rep.id, date, start, due_outlets, stops, &active)))
}
