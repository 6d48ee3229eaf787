//! Reading the audit log and the access log of location reads; recording those reads.

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::ApiError;
use super::extract::{Json, Page, Paged, Query};
use crate::db;
use crate::db::audit::AuditEntry;
use crate::db::privacy::AccessEntry;
use crate::domain::access::Role;
use axum::extract::State;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit_log)).routes(routes!(access_log))
}

/// Records that the caller read `what` (`pings`, `track`, `live_positions`, `live_stream`,
/// `tracks_layer`, `export`) of the reps `subjects`; a rep reading their own data is not recorded. The
/// read fails if it cannot be recorded.
pub(super) async fn record_access(
    state: &AppState,
    auth: &Principal,
    subjects: impl IntoIterator<Item = i64>,
    what: &str,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    let Some(reader) = auth.user_id() else { return Ok(()) };
    let mut others: Vec<i64> = subjects.into_iter().filter(|s| *s != reader).collect();
    others.sort_unstable();
    others.dedup();
    db::privacy::record_access(&state.db, auth.org_id, reader, &others, what, &detail, auth.request_id.as_deref())
        .await?;
    Ok(())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AccessQuery {
    /// Only reads of this rep's data.
    rep_id: Option<i64>,
    /// Items per page (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next` of the previous page.
    after: Option<i64>,
}

/// Who read whose track, raw pings, live position or exported files, newest first. Admins and
/// auditors read those of the reps in their scope; a rep reads the reads of their own data;
/// others get 403.
#[utoipa::path(get, path = "/access-log", tag = "audit", params(AccessQuery), responses(
    (status = 200, body = Paged<AccessEntry>), (status = 403, body = super::error::Problem),
    (status = 404, description = "No such rep (`rep_id`) in the caller's org", body = super::error::Problem)))]
async fn access_log(
    State(state): State<AppState>,
    auth: Can<p::ExportAudits>,
    Query(q): Query<AccessQuery>,
) -> Result<Json<Paged<AccessEntry>>, ApiError> {
    let subject = match auth.role() {
        Some(Role::Admin | Role::Auditor) => {
            if let Some(r) = q.rep_id {
                super::tracks::visible_rep(&state, &auth, r).await?;
            }
            q.rep_id
        }
        Some(Role::Rep) => match (auth.own_rep(), q.rep_id) {
            (Some(me), None) => Some(me),
            (Some(me), Some(r)) if r == me => Some(me),
            _ => return Err(ApiError::Forbidden("a rep reads the access log of their own data only".into())),
        },
        _ => return Err(ApiError::Forbidden("the access log is for auditors and admins".into())),
    };
    let limit = Page { limit: q.limit, after: q.after }.limit()?;
    // An auditor scoped to a territory reads the reads of that territory's reps only.
    let root = if auth.role() == Some(Role::Rep) { None } else { auth.scope_root() };
    let items =
        db::privacy::access_log(&state.db, auth.org_id, subject, root, q.after.unwrap_or(i64::MAX), limit).await?;
    Ok(Json(Paged::new(items, limit, |e| e.id)))
}

/// The org's audit log, newest first (`after` is the id to continue below). An admin or auditor
/// scoped to a territory reads only the entries about objects within it (outlets, territories,
/// the users, devices, plans, visits, check-ins, photos and exports of its reps), none about the
/// org as a whole.
#[utoipa::path(get, path = "/audit-log", tag = "audit", params(Page), responses((status = 200, body = Paged<AuditEntry>)))]
async fn audit_log(
    State(state): State<AppState>,
    auth: Can<p::ReadAuditLog>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<AuditEntry>>, ApiError> {
    let limit = page.limit()?;
    let before = page.after.unwrap_or(i64::MAX);
    let items = db::audit::list(&state.db, auth.org_id, auth.scope_root(), before, limit).await?;
    Ok(Json(Paged::new(items, limit, |e| e.id)))
}
