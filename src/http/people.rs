//! The caller and users (devices: `devices.rs`).

use super::AppState;
use super::auth::{Actor, Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Page, Paged, Path, Query, present};
use super::territories::territory_path;
use crate::admin::{self, IssuedUser};
use crate::app;
use crate::db;
use crate::domain::access::Role;
use crate::domain::audit::AuditAction;
use crate::domain::validation::{FieldError, NAME_MAX_CHARS, check_text, one_line_text, optional_one_line_text};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(reissue_token, revoke_token))
        .layer(DefaultBodyLimit::max(super::SMALL_BODY_BYTES))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Me {
    org: db::orgs::Org,
    /// `user` or `device`.
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<db::users::User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rep_id: Option<i64>,
    /// The rep a device acts for.
    #[serde(skip_serializing_if = "Option::is_none")]
    rep: Option<db::users::User>,
    /// The latest org-local day with a visit (a rep's or device's own; the org's for everyone
    /// else), where the map opens; `null` before the first visit.
    last_visit_day: Option<chrono::NaiveDate>,
}

/// Who the token belongs to: org, user (role, territory scope) or device.
#[utoipa::path(get, path = "/me", tag = "me", responses((status = 200, body = Me), (status = 401, body = Problem)))]
async fn me(State(state): State<AppState>, principal: Principal) -> Result<Json<Me>, ApiError> {
    let org = db::orgs::get(&state.db, principal.org_id).await?;
    Ok(Json(match principal.actor {
        Actor::User { id, .. } => {
            let user = db::users::get(&state.db, principal.org_id, id).await?;
            let own = user.as_ref().filter(|u| u.role == Role::Rep).map(|u| u.id);
            let last_visit_day = db::visits::last_day(&state.db, principal.org_id, own).await?;
            Me { org, kind: "user", user, device_id: None, rep_id: None, rep: None, last_visit_day }
        }
        Actor::Device { id, rep_id, .. } => {
            let rep = db::users::get(&state.db, principal.org_id, rep_id).await?;
            let last_visit_day = db::visits::last_day(&state.db, principal.org_id, Some(rep_id)).await?;
            Me { org, kind: "device", user: None, device_id: Some(id), rep_id: Some(rep_id), rep, last_visit_day }
        }
    }))
}

/// Users in the caller's territory scope.
#[utoipa::path(get, path = "/users", tag = "users", params(Page), responses((status = 200, body = Paged<db::users::User>), (status = 403, body = Problem)))]
async fn list_users(
    State(state): State<AppState>,
    auth: Can<p::ReadUsers>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<db::users::User>>, ApiError> {
    let limit = page.limit()?;
    let items = db::users::list(&state.db, auth.org_id, auth.scope_root(), page.after(), limit).await?;
    Ok(Json(Paged::new(items, limit, |u| u.id)))
}

/// One user (403 when outside the caller's territory scope).
#[utoipa::path(get, path = "/users/{id}", tag = "users", responses((status = 200, body = db::users::User), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_user(
    State(state): State<AppState>,
    auth: Can<p::ReadUsers>,
    Path(id): Path<i64>,
) -> Result<Json<db::users::User>, ApiError> {
    let user = db::users::get(&state.db, auth.org_id, id).await?.ok_or_else(|| ApiError::not_found("user", id))?;
    auth.check_territory(user.territory_path.as_deref())?;
    Ok(Json(user))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    /// The database's `users_login_format` (migrations/0001).
    #[schema(pattern = "^[A-Za-z0-9._@+-]{1,128}$", min_length = 1, max_length = 128)]
    login: String,
    #[schema(schema_with = one_line_text::<NAME_MAX_CHARS>)]
    name: String,
    #[schema(value_type = Role)]
    role: String,
    /// Root of the territory subtree the user sees; omit for the whole org.
    territory_id: Option<i64>,
}

/// Creates a user and returns their token (shown once).
#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUser, responses(
    (status = 201, body = IssuedUser), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_user(
    State(state): State<AppState>,
    auth: Can<p::ManageUsers>,
    Json(input): Json<NewUser>,
) -> Result<(StatusCode, Json<IssuedUser>), ApiError> {
    let mut errors = Vec::new();
    check_text("login", &input.login, 128, &mut errors);
    check_text("name", &input.name, NAME_MAX_CHARS, &mut errors);
    let role = input.role.parse::<Role>();
    if let Err(e) = &role {
        errors.push(FieldError::new("role", e.to_string()));
    }
    let (Ok(role), true) = (role, errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
    // A scoped admin may only create users inside their own subtree (never org-wide ones).
    let path = territory_path(&state, auth.org_id, input.territory_id, "territory_id").await?;
    auth.check_territory(path.as_deref())?;
    let issued =
        admin::create_user(&state.db, auth.org_id, &input.login, &input.name, role, input.territory_id).await?;
    audit(
        &state.db,
        &auth,
        AuditAction::UserCreate,
        "user",
        issued.user.id,
        json!({"login": input.login, "role": role}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// The fields of a user to change: absent fields keep their value.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(clippy::option_option)] // `territory_id: null` (org-wide) differs from an absent one (keep).
struct UserPatch {
    #[schema(schema_with = optional_one_line_text::<NAME_MAX_CHARS>)]
    name: Option<String>,
    /// Among admin, manager, supervisor and auditor; a rep stays a rep and a user who is not one
    /// never becomes one (a rep's pings, visits and plans are theirs).
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    /// Root of the territory subtree the user sees; `null` for the whole org.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    territory_id: Option<Option<i64>>,
    /// `false` deactivates the user: their token (and a rep's phones) are refused at once.
    active: Option<bool>,
}

/// Changes a user's name, role, territory scope or active flag (admins, within their scope; audited).
#[utoipa::path(patch, path = "/users/{id}", tag = "users", request_body = UserPatch, responses(
    (status = 200, body = db::users::User), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn update_user(
    State(state): State<AppState>,
    auth: Can<p::ManageUsers>,
    Path(id): Path<i64>,
    Json(input): Json<UserPatch>,
) -> Result<Json<db::users::User>, ApiError> {
    let edit = app::users::UserEdit {
        name: input.name.as_deref(),
        role: input.role.as_deref(),
        territory_id: input.territory_id,
        active: input.active,
    };
    Ok(Json(app::users::update(&state.db, &auth.caller(), id, &edit).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
struct NewToken {
    token: String,
}

/// Issues a new token for a user; the previous one stops working at once.
#[utoipa::path(post, path = "/users/{id}/token", tag = "users", responses((status = 200, body = NewToken), (status = 404, body = Problem)))]
async fn reissue_token(
    State(state): State<AppState>,
    auth: Can<p::ManageUsers>,
    Path(id): Path<i64>,
) -> Result<Json<NewToken>, ApiError> {
    let user = db::users::get(&state.db, auth.org_id, id).await?.ok_or_else(|| ApiError::not_found("user", id))?;
    auth.check_territory(user.territory_path.as_deref())?;
    let token = admin::reissue_user_token(&state.db, auth.org_id, id).await?;
    audit(&state.db, &auth, AuditAction::UserTokenIssue, "user", id, json!({})).await?;
    Ok(Json(NewToken { token }))
}

/// Revokes a user's token.
#[utoipa::path(delete, path = "/users/{id}/token", tag = "users", responses((status = 204), (status = 404, body = Problem)))]
async fn revoke_token(
    State(state): State<AppState>,
    auth: Can<p::ManageUsers>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let user = db::users::get(&state.db, auth.org_id, id).await?.ok_or_else(|| ApiError::not_found("user", id))?;
    auth.check_territory(user.territory_path.as_deref())?;
    db::tokens::revoke_for_user(&state.db, auth.org_id, id).await?;
    audit(&state.db, &auth, AuditAction::UserTokenRevoke, "user", id, json!({})).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Records an action of the caller in the audit log (as the use cases do, through `Caller`).
pub async fn audit(
    db: impl sqlx::PgExecutor<'_>,
    who: &Principal,
    action: AuditAction,
    object_type: &str,
    object_id: impl ToString,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    Ok(who.caller().audit(db, action, object_type, object_id, detail).await?)
}
