//! Targeted positioning: a manager asks one rep's device for a fresh fix. OwnTracks devices get a
//! `cmd` (`reportLocation`) in their next `/owntracks` reply; native clients poll
//! `GET /api/v1/devices/me/commands`. The device's next fix answers the request and is flagged
//! `requested` (flag bit 2); the request, its time and its requester are in the audit log.

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path};
use super::people::audit;
use crate::db;
use crate::db::position_requests::PositionRequest;
use crate::domain::audit::AuditAction;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(request_position)).routes(routes!(get_request)).routes(routes!(my_commands))
}

/// Asks a device for a fresh position (admins and managers, for reps in their scope).
#[utoipa::path(post, path = "/devices/{id}/position-requests", tag = "devices", responses(
    (status = 201, body = PositionRequest), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn request_position(
    State(state): State<AppState>,
    auth: Can<p::ManageDevices>,
    Path(device_id): Path<i64>,
) -> Result<(StatusCode, Json<PositionRequest>), ApiError> {
    let device = db::devices::get(&state.db, auth.org_id, device_id)
        .await?
        .ok_or_else(|| ApiError::not_found("device", device_id))?;
    auth.check_rep(device.rep_id, device.rep_territory_path.as_deref())?;
    let user_id = auth.user_id().ok_or_else(|| ApiError::Forbidden("only a user can request a position".into()))?;
    let mut tx = state.db.begin().await?;
    let request = db::position_requests::create(&mut *tx, auth.org_id, device_id, user_id).await?;
    audit(
        &mut *tx,
        &auth,
        AuditAction::DeviceRequestPosition,
        "device",
        device_id,
        serde_json::json!({"position_request_id": request.id, "rep_id": device.rep_id}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(request)))
}

/// A position request and whether (and by which fix) it was answered.
#[utoipa::path(get, path = "/position-requests/{id}", tag = "devices", responses(
    (status = 200, body = PositionRequest), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_request(
    State(state): State<AppState>,
    auth: Can<p::ReadDevices>,
    Path(id): Path<i64>,
) -> Result<Json<PositionRequest>, ApiError> {
    let request = db::position_requests::get(&state.db, auth.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("position request", id))?;
    let device = db::devices::get(&state.db, auth.org_id, request.device_id)
        .await?
        .ok_or_else(|| ApiError::not_found("position request", id))?;
    auth.check_rep(device.rep_id, device.rep_territory_path.as_deref())?;
    Ok(Json(request))
}

/// A command for the calling device.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Command {
    pub id: i64,
    /// `reportLocation`: send one fresh fix now.
    pub action: &'static str,
    pub requested_at: DateTime<Utc>,
}

/// Commands waiting for the calling device (native clients poll this); each is handed out once.
#[utoipa::path(get, path = "/devices/me/commands", tag = "devices", responses(
    (status = 200, body = [Command]), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn my_commands(State(state): State<AppState>, auth: Can<p::IngestPings>) -> Result<Json<Vec<Command>>, ApiError> {
    let device_id = auth.device_id().ok_or_else(|| ApiError::Forbidden("commands are for device tokens".into()))?;
    let delivered = db::position_requests::deliver(&state.db, auth.org_id, device_id).await?;
    Ok(Json(
        delivered
            .into_iter()
            .map(|r| Command { id: r.id, action: "reportLocation", requested_at: r.requested_at })
            .collect(),
    ))
}
