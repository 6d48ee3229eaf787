//! Derived visits: a rep's visits of a period with their verdict and evidence, and the admin's
//! recomputation of a period (after a rule change, or to check a figure).

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query};
use crate::app;
use crate::db;
use crate::db::visits::{StoredVisit, VisitReview};
use axum::extract::{DefaultBodyLimit, State};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(rep_visits))
        .routes(routes!(recompute, recompute_progress))
        .routes(routes!(review_visit, visit_reviews))
        .layer(DefaultBodyLimit::max(super::SMALL_BODY_BYTES))
}

/// Longest period one request covers.
const MAX_DAYS: i64 = 93;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct VisitsQuery {
    /// First rep-day (local date of the org, YYYY-MM-DD); default today.
    pub from: Option<NaiveDate>,
    /// Last rep-day, inclusive; default `from`.
    pub to: Option<NaiveDate>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct RepVisits {
    rep_id: i64,
    from: NaiveDate,
    to: NaiveDate,
    visits: Vec<StoredVisit>,
}

pub(super) fn days(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let from = from.unwrap_or(today);
    let to = to.unwrap_or(from);
    for (field, d) in [("from", from), ("to", to)] {
        if !crate::domain::plan::date_in_range(d) {
            return Err(ApiError::field(field, "must be a date from 2000-01-01 to 2100-12-31"));
        }
    }
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
    let rep = super::tracks::visible_rep(&state, &auth, rep_id).await?;
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
    let rep_days = app::visits::recompute(&state.background_db, &auth.caller(), req.from, req.to).await?;
    state.deriver.wake();
    Ok((axum::http::StatusCode::ACCEPTED, Json(RecomputeReport { rep_days })))
}

/// The org's derivation backlog: what a recomputation (or a rule change, or new pings) still
/// waits for.
#[derive(Serialize, utoipa::ToSchema)]
struct RecomputeProgress {
    /// Rep-days marked for derivation and not yet derived (claimed or not); 0 when every stored
    /// ping is reflected in the visits.
    pending_rep_days: i64,
    /// Of those, rep-days a worker is deriving now.
    claimed_rep_days: i64,
    /// Newly recorded outlets not yet checked for rep-days they add visits to.
    outlets_to_check: i64,
}

/// Progress of derivation for the caller's org: poll it after `POST /visits/recompute` until
/// `pending_rep_days` is 0. Every instance's workers share the backlog (claims), so the figure is
/// the org's, whichever instance answers. Admins only.
#[utoipa::path(get, path = "/visits/recompute", tag = "visits", responses(
    (status = 200, body = RecomputeProgress), (status = 403, body = Problem)))]
async fn recompute_progress(
    State(state): State<AppState>,
    auth: Can<p::RecomputeVisits>,
) -> Result<Json<RecomputeProgress>, ApiError> {
    let (pending_rep_days, claimed_rep_days, outlets_to_check) =
        db::visits::derivation_backlog(&state.db, auth.org_id).await?;
    Ok(Json(RecomputeProgress { pending_rep_days, claimed_rep_days, outlets_to_check }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReviewRequest {
    /// `accepted` or `rejected` (supervisors, auditors and admins of the rep's territory), or
    /// `disputed` (the rep, about their own visit).
    #[schema(pattern = "^(accepted|rejected|disputed)$")]
    decision: String,
    /// Why (required): what the reviewer saw, or the rep's comment.
    #[schema(schema_with = crate::domain::validation::multi_line_text::<{ app::reviews::MAX_REASON_CHARS }>)]
    reason: String,
}

/// Records a review of a visit: a supervisor's, auditor's or admin's `accepted`/`rejected` with a
/// reason, or the rep's `disputed` with a comment. The visit's evidence is never changed; the
/// latest accept/reject decides whether the visit counts in compliance; every review is in the
/// audit log. 201 with the review.
#[utoipa::path(post, path = "/visits/{id}/reviews", tag = "visits", request_body = ReviewRequest, responses(
    (status = 201, body = VisitReview), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn review_visit(
    State(state): State<AppState>,
    auth: Can<p::ReadVisits>,
    Path(visit_id): Path<i64>,
    Json(req): Json<ReviewRequest>,
) -> Result<(axum::http::StatusCode, Json<VisitReview>), ApiError> {
    let review = app::reviews::review(&state.db, &auth.caller(), visit_id, &req.decision, &req.reason).await?;
    Ok((axum::http::StatusCode::CREATED, Json(review)))
}

/// The reviews of a visit, oldest first (they follow the visit across recomputations).
#[utoipa::path(get, path = "/visits/{id}/reviews", tag = "visits", responses(
    (status = 200, body = [VisitReview]), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn visit_reviews(
    State(state): State<AppState>,
    auth: Can<p::ReadVisits>,
    Path(visit_id): Path<i64>,
) -> Result<Json<Vec<VisitReview>>, ApiError> {
    let visit = db::visits::key(&state.db, auth.org_id, visit_id)
        .await?
        .ok_or_else(|| ApiError::not_found("visit", visit_id))?;
    auth.check_rep(visit.rep_id, visit.rep_territory_path.as_deref())?;
    Ok(Json(db::visits::reviews(&state.db, auth.org_id, &visit).await?))
}
