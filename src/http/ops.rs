//! Operational endpoints: liveness, readiness, metrics, and the landing page.

use super::AppState;
use super::error::ApiError;
use super::extract::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    status: &'static str,
    version: &'static str,
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", security(()), responses((status = 200, body = Status)))]
async fn healthz() -> Json<Status> {
    Json(Status { status: "ok", version: env!("CARGO_PKG_VERSION") })
}

/// What `/readyz` answers when not ready, whatever the cause (which is logged).
pub const NOT_READY: &str = "the database is not reachable or not migrated; the server log names the cause";

/// Readiness: the database answers and every migration of this binary is applied.
#[utoipa::path(get, path = "/readyz", tag = "ops", security(()), responses(
    (status = 200, body = Status),
    (status = 503, body = super::error::Problem, content_type = "application/problem+json"),
))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    if let Err(cause) = crate::db::readiness(&state.db).await {
        // The cause (the database's own text, migration names) goes to the log, not to the caller.
        tracing::warn!(%cause, "not ready");
        return Err(ApiError::Unavailable(NOT_READY.into()));
    }
    Ok(Json(Status { status: "ready", version: env!("CARGO_PKG_VERSION") }))
}

/// Prometheus text exposition: request counts and latency per route, DB pool state. With
/// `FV_METRICS_TOKEN` set, only for `Authorization: Bearer <that token>` (401 otherwise).
#[utoipa::path(get, path = "/metrics", tag = "ops", security(()), responses(
    (status = 200, content_type = "text/plain", body = String),
    (status = 401, body = super::error::Problem, content_type = "application/problem+json")))]
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    if let Some(expected) = &state.config.metrics_token {
        let given =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        // Digests compared, so the time taken says nothing about the token.
        let digest = |t: &str| crate::domain::export::sha256_hex(t.as_bytes());
        if given.map(digest) != Some(digest(expected)) {
            return Err(ApiError::Unauthorized(
                "`/metrics` needs `Authorization: Bearer` with FV_METRICS_TOKEN".into(),
            ));
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(&state.db)))
}

/// Served at `/` when the map UI has not been built.
pub async fn landing() -> Html<&'static str> {
    Html(include_str!("landing.html"))
}
