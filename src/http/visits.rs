//! Derived visits: a rep's visits of a period with their verdict and evidence, and the admin's
//! recomputation of a period (after a rule change, or to check a figure).

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query};
use crate::db;
use crate::db::visits::StoredVisit;
use axum::extract::State;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rep_visits)).routes(routes!(recompute))
}

/// Longest period one request covers.
const MAX_DAYS: i64 = 93;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct VisitsQuery {
    /// First rep-day (local date of the org, YYYY-MM-DD); default today.
    from: Option<NaiveDate>,
    /// Last rep-day, inclusive; default `from`.
    to: Option<NaiveDate>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct RepVisits {
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
    visits: Vec<StoredVisit>,
}

fn days(from: Option<NaiveDate>, to: Option<NaiveDate>, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let from = from.unwrap_or(today);
    let to = to.unwrap_or(from);
    if to < from {
        return Err(ApiError::field("to", "must not be before `from`"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ApiError::field("to", format!("a request covers at most {MAX_DAYS} days")));
    }
    Ok((from, to))
}

/// The visits of a rep with rep-day in `[from, to]`, in arrival order, each with its verdict
/// (`verified`, `short`, `unverified`, `suspect`), risk score, evidence and alternatives. Visits
/// are derived in the background from the stored pings within seconds of their commit. Reps see
/// their own; managers, supervisors and auditors the reps of their territories.
#[utoipa::path(get, path = "/reps/{id}/visits", tag = "visits", params(VisitsQuery), responses(
    (status = 200, body = RepVisits), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn rep_visits(
    State(state): State<AppState>,
    auth: Can<p::ReadVisits>,
    Path(rep_id): Path<i64>,
    Query(q): Query<VisitsQuery>,
) -> Result<Json<RepVisits>, ApiError> {
    let rep =
        db::users::get(&state.db, auth.org_id, rep_id).await?.ok_or_else(|| ApiError::not_found("rep", rep_id))?;
    auth.check_rep(rep.id, rep.territory_path.as_deref())?;
    let today = db::plans::local_date(&state.db, auth.org_id, chrono::Utc::now()).await?;
    let (from, to) = days(q.from, q.to, today)?;
    let visits = db::visits::of_rep(&state.db, auth.org_id, rep.id, from, to).await?;
    Ok(Json(RepVisits { rep_id: rep.id, from, to, visits }))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RecomputeRequest {
    /// First local day.
    from: NaiveDate,
    /// Last local day, inclusive.
    to: NaiveDate,
}

#[derive(Serialize, utoipa::ToSchema)]
struct RecomputeReport {
    /// Rep-days (with pings or visits in the period) marked for derivation.
    rep_days: u64,
}

/// Marks every rep-day of the org in `[from, to]` that has pings or visits for derivation again;
/// the workers recompute them in the background. Admins only; audited.
#[utoipa::path(post, path = "/visits/recompute", tag = "visits", request_body = RecomputeRequest, responses(
    (status = 202, body = RecomputeReport), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn recompute(
    State(state): State<AppState>,
    auth: Can<p::RecomputeVisits>,
    Json(req): Json<RecomputeRequest>,
) -> Result<(axum::http::StatusCode, Json<RecomputeReport>), ApiError> {
    if req.to < req.from {
        return Err(ApiError::field("to", "must not be before `from`"));
    }
    if (req.to - req.from).num_days() >= 366 {
        return Err(ApiError::field("to", "a recomputation covers at most 366 days"));
    }
    let rep_days = db::visits::mark_period(&state.db, auth.org_id, req.from, req.to, "recompute").await?;
    super::people::audit(
        &state.db,
        &auth,
        "recompute_visits",
        "org",
        auth.org_id,
        serde_json::json!({"from": req.from, "to": req.to, "rep_days": rep_days}),
    )
    .await?;
    state.deriver.wake();
    Ok((axum::http::StatusCode::ACCEPTED, Json(RecomputeReport { rep_days })))
}
