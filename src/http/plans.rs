//! Beat plans: create (recurring and dated items), read, end; and a rep's plan of a day for the phone.

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query};
use crate::app;
use crate::app::plans::{DayPlan, PlanProposal, PlanRevisionInput};
use crate::db;
use crate::db::plans::Plan;
use crate::domain::access::Role;
use crate::domain::plan::{self, PlanInput};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_plan, list_plans))
        .routes(routes!(get_plan, revise_plan, end_plan))
        .routes(routes!(rep_day_plan))
        .routes(routes!(plan_proposal))
        .layer(DefaultBodyLimit::max(PLAN_BODY_BYTES))
}

/// Body limit of a plan or a revision: its items (an outlet and its days, ~100 bytes each), up to
/// ten thousand (a 12-week cycle of 150 outlets a week is 1,800).
const PLAN_BODY_BYTES: usize = 1024 * 1024;

/// A refusal of a plan's content: its 422 names the first problem in `detail` (every one is in
/// `errors`), as the plan endpoints always have, where others count the invalid fields.
fn first_problem(err: app::Error) -> ApiError {
    match err {
        app::Error::Invalid(errors) if !errors.is_empty() => {
            let detail = format!("{}: {}", errors[0].field, errors[0].reason);
            ApiError::Unprocessable { detail, errors }
        }
        err => err.into(),
    }
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
    // The use case checks that the rep is within the caller's scope, after naming the plan's problems.
    let plan = app::plans::create(&state.db, &auth.caller(), &input).await.map_err(first_problem)?;
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
    let rep = app::plans::rep(&state.db, auth.org_id, q.rep_id).await?;
    auth.check_rep(rep.id, rep.territory_path.as_deref())?;
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReviseQuery {
    /// The first local day of the revision (YYYY-MM-DD, today or later); default tomorrow, so
    /// that today's planned visits stay.
    from: Option<NaiveDate>,
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
    let plan = app::plans::revise(&state.db, &auth.caller(), &current, q.from, input).await.map_err(first_problem)?;
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
    app::plans::end(&state.db, &auth.caller(), plan.id, q.from).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DayQuery {
    /// The local day (YYYY-MM-DD); default today.
    date: Option<NaiveDate>,
}

/// The `date` of a request (default the org's today), checked to be in range.
pub(super) async fn day_or_today(
    state: &AppState,
    auth: &Principal,
    date: Option<NaiveDate>,
) -> Result<NaiveDate, ApiError> {
    Ok(app::plans::day_or_today(&state.db, auth.org_id, date).await?)
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
    Ok(Json(app::plans::day_plan(&state.db, &auth.caller(), rep.id, q.date).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ProposalQuery {
    /// The day to plan (org-local, YYYY-MM-DD); default today.
    date: Option<NaiveDate>,
    /// Most outlets in the day (1-60, default 12).
    #[param(minimum = 1, maximum = 60)]
    max_outlets: Option<usize>,
    /// Where the route starts; default the rep's last position, else their declared home.
    start_lat: Option<f64>,
    start_lon: Option<f64>,
}

/// The active outlets of territory `root`'s subtree (the org without one) on `date`, each as a
/// due candidate (see [`app::plans::due_candidates`]).
pub(super) async fn due_candidates(
    state: &AppState,
    org_id: i64,
    root: Option<i64>,
    date: NaiveDate,
) -> Result<(Vec<db::compliance::SubtreeOutlet>, Vec<plan::DueCandidate>), ApiError> {
    Ok(app::plans::due_candidates(&state.db, org_id, root, date).await?)
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
    let ask = app::plans::ProposalAsk::new(q.date, q.max_outlets, q.start_lat, q.start_lon)?;
    let rep = super::tracks::visible_rep(&state, &auth, rep_id).await?;
    // Where the rep starts is withheld from a caller who may not see it: the declared home from
    // all but the rep and admins, a position near it from others when the org blurs homes.
    let blur = super::privacy::HomeBlur::for_reader(&state, &auth, [rep.id], None).await?;
    let sees_home = auth.own_rep() == Some(rep.id) || auth.role() == Some(Role::Admin);
    let hidden = |lat, lon, source: &str| (source == "home" && !sees_home) || blur.hides_live(rep.id, lat, lon);
    Ok(Json(app::plans::propose(&state.db, &auth.caller(), &rep, &ask, hidden).await?))
}
