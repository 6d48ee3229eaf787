//! Multi-week beat proposals: the solver plans a cycle of a rep's or a team's outlets; nothing is
//! stored (the manager accepts a rep's proposal by posting its `plan` to `POST /plans`).

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::Json;
use crate::app;
use crate::app::beats::{BeatAsk, BeatProposal};
use crate::app::day_order::{DayOrder, DayOrderAsk};
use axum::extract::{DefaultBodyLimit, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Registers the beat proposal route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(propose_beats))
        .layer(DefaultBodyLimit::max(BEAT_BODY_BYTES))
        .merge(OpenApiRouter::new().routes(routes!(order_day)).layer(DefaultBodyLimit::max(DAY_ORDER_BODY_BYTES)))
}

/// Body limit of an ask: a handful of small fields.
const BEAT_BODY_BYTES: usize = 4 * 1024;
/// Body limit of a day to order: 200 stops of ~110 bytes each, and room to spare.
const DAY_ORDER_BODY_BYTES: usize = 32 * 1024;

/// Proposes a multi-week beat (cycle of 1-12 weeks) for one rep (`rep_id`: the active outlets of
/// the rep's territory) or a team (`territory_id`: the active outlets of its subtree spread over
/// the active reps of its subtree, each outlet with one rep, their load balanced). Every outlet
/// gets its tier's visits of the cycle, spread over it, within its time window (outlet
/// attributes `window_start` / `window_end`) and the working hours, routed by a vehicle-routing
/// solver over straight-line distance × 1.3 at 15 km/h, within `max_seconds`. Each item says
/// `why` it landed on its day; visits that could not be placed are listed with the reason.
/// Nothing is stored: post a rep's `plan` to `POST /plans` to accept it. At most 10,000
/// outlets. Admins, and managers for reps and territories in their scope.
#[utoipa::path(post, path = "/beats/proposals", tag = "plans", request_body = BeatAsk, responses(
    (status = 200, body = BeatProposal), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn propose_beats(
    State(state): State<AppState>,
    auth: Can<p::WritePlans>,
    Json(ask): Json<BeatAsk>,
) -> Result<Json<BeatProposal>, ApiError> {
    let ask = app::beats::check(&ask)?;
    let prepared = app::beats::prepare(&state.db, &auth.caller(), &ask).await?;
    // The solver is CPU-bound for up to `max_seconds`: off the async workers.
    let proposal = tokio::task::spawn_blocking(move || app::beats::solve(&prepared))
        .await
        .map_err(|e| app::Error::Internal(format!("the beat solver stopped: {e}")))?;
    Ok(Json(proposal))
}

/// Orders one day's stops of a rep's plan by the same solver and model as `/beats/proposals`:
/// from the rep's start, each stop within its window (the one given, else the outlet's) and the
/// working hours, least travel first. Answers the stops in route order with their planned
/// arrival and leg, the stops that fit nowhere in the day with the reason, and the travel of the
/// new and the given order. At most 200 stops, each an outlet of the rep's territory (else a 422
/// on `stops[i].outlet_id`). Nothing is stored. Admins, and managers for reps in their scope.
#[utoipa::path(post, path = "/beats/day-order", tag = "plans", request_body = DayOrderAsk, responses(
    (status = 200, body = DayOrder), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn order_day(
    State(state): State<AppState>,
    auth: Can<p::WritePlans>,
    Json(ask): Json<DayOrderAsk>,
) -> Result<Json<DayOrder>, ApiError> {
    let ask = app::day_order::check(&ask)?;
    let prepared = app::day_order::prepare(&state.db, &auth.caller(), &ask).await?;
    let order = tokio::task::spawn_blocking(move || app::day_order::solve(&prepared))
        .await
        .map_err(|e| app::Error::Internal(format!("the day solver stopped: {e}")))?;
    Ok(Json(order))
}
