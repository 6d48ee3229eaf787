//! Reading the audit log.

use super::AppState;
use super::auth::{Can, p};
use super::error::ApiError;
use super::extract::{Json, Page, Paged, Query};
use crate::db;
use crate::db::audit::AuditEntry;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit_log))
}

/// The org's audit log, newest first (`after` is the id to continue below).
#[utoipa::path(get, path = "/audit-log", tag = "audit", params(Page), responses((status = 200, body = Paged<AuditEntry>)))]
async fn audit_log(
    State(state): State<AppState>,
    auth: Can<p::ReadAuditLog>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<AuditEntry>>, ApiError> {
    let limit = page.limit()?;
    let before = page.after.unwrap_or(i64::MAX);
    let items = db::audit::list(&state.db, auth.org_id, before, limit).await?;
    Ok(Json(Paged::new(items, limit, |e| e.id)))
}
