//! Check-ins from the reps' app.

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query};
use super::visits::{VisitsQuery, days};
use crate::app;
use crate::app::checkins::{CheckinInput, CheckinView};
use crate::db;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_checkin))
        .routes(routes!(rep_checkins))
        .routes(routes!(open_claims))
        .routes(routes!(decide_claim))
        .layer(DefaultBodyLimit::max(super::SMALL_BODY_BYTES))
}

/// A check-in (and later its check-out) of the calling device's rep at an outlet, keyed by the
/// app's own client id: 201 when new, 200 for a retry (the stored check-in, with a check-out
/// added if it had none). The answer says at once whether the server sees the rep at the outlet
/// (distance against radius plus capped accuracy, the visit rule) and, once visits are derived,
/// whether a visit confirms it.
#[utoipa::path(put, path = "/checkins/{client_id}", tag = "visits", request_body = CheckinInput, responses(
    (status = 200, body = CheckinView), (status = 201, body = CheckinView),
    (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn put_checkin(
    State(state): State<AppState>,
    auth: Can<p::SubmitEvidence>,
    Path(client_id): Path<String>,
    Json(input): Json<CheckinInput>,
) -> Result<(StatusCode, Json<CheckinView>), ApiError> {
    let (view, created) = app::checkins::put(&state.db, &auth.caller(), &client_id, &input).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(view)))
}

/// The check-ins of a rep with their standing: `confirmed` by a derived visit (`visit_id`),
/// `pending` derivation, or `unconfirmed` (a claim for a supervisor).
#[utoipa::path(get, path = "/reps/{id}/checkins", tag = "visits", params(VisitsQuery), responses(
    (status = 200, body = Vec<CheckinView>), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn rep_checkins(
    State(state): State<AppState>,
    auth: Can<p::ReadVisits>,
    Path(rep_id): Path<i64>,
    Query(q): Query<VisitsQuery>,
) -> Result<Json<Vec<CheckinView>>, ApiError> {
    let rep = super::tracks::visible_rep(&state, &auth, rep_id).await?;
    let today = db::plans::local_date(&state.db, auth.org_id, chrono::Utc::now()).await?;
    let (from, to) = days(q.from, q.to, today)?;
    Ok(Json(app::checkins::of_rep(&state.db, &auth.caller(), rep.id, from, to).await?))
}

/// The period of the supervisor's list of claims.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ClaimsQuery {
    /// First local day (YYYY-MM-DD); default 27 days before `to`.
    from: Option<chrono::NaiveDate>,
    /// Last local day; default today.
    to: Option<chrono::NaiveDate>,
}

/// The supervisor's list of visit claims: the check-ins of the reps within the caller's scope that
/// no derived visit confirms and nobody has decided yet, oldest first, on the org's local days
/// `from..=to` (default the last 28 days). Decide each with `POST /checkins/{id}/decision`.
#[utoipa::path(get, path = "/checkins/claims", tag = "visits", params(ClaimsQuery), responses(
    (status = 200, body = Vec<CheckinView>),
    (status = 400, body = Problem, content_type = "application/problem+json"),
    (status = 401, body = Problem, content_type = "application/problem+json"),
    (status = 403, body = Problem, content_type = "application/problem+json"),
    (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn open_claims(
    State(state): State<AppState>,
    auth: Can<p::ReviewVisits>,
    Query(q): Query<ClaimsQuery>,
) -> Result<Json<Vec<CheckinView>>, ApiError> {
    let today = db::plans::local_date(&state.db, auth.org_id, chrono::Utc::now()).await?;
    let to = q.to.unwrap_or(today);
    let from = q.from.unwrap_or_else(|| to.checked_sub_days(chrono::Days::new(27)).unwrap_or(to));
    let (from, to) = days(Some(from), Some(to), today)?;
    Ok(Json(app::checkins::open_claims(&state.db, &auth.caller(), from, to).await?))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ClaimDecision {
    /// `accepted` (the visit counts) or `rejected`.
    #[schema(pattern = "^(accepted|rejected)$")]
    decision: String,
    #[schema(schema_with = crate::domain::validation::multi_line_text::<{ app::checkins::MAX_REASON_CHARS }>)]
    reason: String,
}

/// A reviewer's decision on an unconfirmed check-in (a visit claim: the rep checked in but no
/// derived visit confirms it, e.g. weak GPS indoors). Accepted, derivation adds an `unverified`
/// visit for it that counts through an accepted review; rejected, it stays out. 409 unless the
/// check-in is unconfirmed and undecided.
#[utoipa::path(post, path = "/checkins/{id}/decision", tag = "visits", request_body = ClaimDecision, responses(
    (status = 200, body = CheckinView), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn decide_claim(
    State(state): State<AppState>,
    auth: Can<p::ReviewVisits>,
    Path(id): Path<i64>,
    Json(req): Json<ClaimDecision>,
) -> Result<Json<CheckinView>, ApiError> {
    let view = app::checkins::decide_claim(&state.db, &auth.caller(), id, &req.decision, &req.reason).await?;
    state.deriver.wake();
    Ok(Json(view))
}
