//! The territory tree.

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Page, Paged, Path, Query};
use super::people::audit;
use crate::app;
use crate::app::territories::TerritoryImport;
use crate::db;
use crate::db::territories::{NewTerritory, Territory};
use crate::domain::audit::AuditAction;
use crate::domain::territory::TerritoryLevel;
use crate::domain::validation::{CODE_MAX_CHARS, FieldError, NAME_MAX_CHARS, check_text, one_line_text};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_territories, create_territory))
        .routes(routes!(get_territory))
        .routes(routes!(territory_summary))
        .routes(routes!(import_territories))
}

/// Territories in the caller's scope (their subtree), by id.
#[utoipa::path(get, path = "/territories", tag = "territories", params(Page), responses((status = 200, body = Paged<Territory>)))]
async fn list_territories(
    State(state): State<AppState>,
    auth: Can<p::ReadTerritories>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<Territory>>, ApiError> {
    let limit = page.limit()?;
    let items = db::territories::list(&state.db, auth.org_id, auth.scope_root(), page.after(), limit).await?;
    Ok(Json(Paged::new(items, limit, |t| t.id)))
}

/// One territory.
#[utoipa::path(get, path = "/territories/{id}", tag = "territories", responses(
    (status = 200, body = Territory), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_territory(
    State(state): State<AppState>,
    auth: Can<p::ReadTerritories>,
    Path(id): Path<i64>,
) -> Result<Json<Territory>, ApiError> {
    let t =
        db::territories::get(&state.db, auth.org_id, id).await?.ok_or_else(|| ApiError::not_found("territory", id))?;
    auth.check_territory(Some(&t.path))?;
    Ok(Json(t))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TerritoryInput {
    parent_id: Option<i64>,
    #[schema(schema_with = one_line_text::<CODE_MAX_CHARS>)]
    code: String,
    #[schema(schema_with = one_line_text::<NAME_MAX_CHARS>)]
    name: String,
    /// country, province, city, district, county, grid or region
    #[schema(value_type = TerritoryLevel)]
    level: String,
    /// GeoJSON Polygon or MultiPolygon (WGS84).
    #[schema(value_type = Option<Object>)]
    boundary: Option<serde_json::Value>,
}

/// The new territory's boundary as GeoJSON text, once its code, name and boundary are judged
/// sound (422 naming each problem otherwise).
async fn judged_boundary(state: &AppState, input: &TerritoryInput) -> Result<Option<String>, ApiError> {
    let mut errors = Vec::new();
    check_text("code", &input.code, CODE_MAX_CHARS, &mut errors);
    check_text("name", &input.name, NAME_MAX_CHARS, &mut errors);
    if let Some(b) = &input.boundary
        && let Some(reason) = boundary_problem(state, b).await?
    {
        errors.push(FieldError::new("boundary", reason));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    Ok(input.boundary.as_ref().map(serde_json::Value::to_string))
}

/// Creates a territory under `parent_id` (or a root).
#[utoipa::path(post, path = "/territories", tag = "territories", request_body = TerritoryInput, responses(
    (status = 201, body = Territory), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_territory(
    State(state): State<AppState>,
    auth: Can<p::WriteTerritories>,
    Json(input): Json<TerritoryInput>,
) -> Result<(StatusCode, Json<Territory>), ApiError> {
    let boundary = judged_boundary(&state, &input).await?;
    // A new root is org-wide: only org-wide admins may add one.
    let parent_path = territory_path(&state, auth.org_id, input.parent_id, "parent_id").await?;
    auth.check_territory(parent_path.as_deref())?;
    let mut tx = state.db.begin().await?;
    let t = db::territories::create(
        &mut *tx,
        auth.org_id,
        &NewTerritory {
            parent_id: input.parent_id,
            code: &input.code,
            name: &input.name,
            level: level_of(&input.level)?,
            boundary_geojson: boundary.as_deref(),
        },
    )
    .await?;
    let reassigned =
        if t.boundary.is_some() { db::territories::reassign_outlets(&mut *tx, auth.org_id).await? } else { 0 };
    audit(
        &mut *tx,
        &auth,
        AuditAction::TerritoryCreate,
        "territory",
        t.id,
        json!({"code": t.code, "outlets_reassigned": reassigned}),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// The path (root..node ids) of a territory named in a request body, `None` when none is named;
/// 422 on `field` when the org has no such territory.
pub(super) async fn territory_path(
    state: &AppState,
    org_id: i64,
    territory_id: Option<i64>,
    field: &str,
) -> Result<Option<Vec<i64>>, ApiError> {
    let Some(id) = territory_id else { return Ok(None) };
    let t = db::territories::get(&state.db, org_id, id)
        .await?
        .ok_or_else(|| ApiError::field(field, "no such territory in this org"))?;
    Ok(Some(t.path))
}

/// Why a boundary is unacceptable (structure, ranges, closed rings; then PostGIS validity such as
/// self-intersection), or `None`.
pub(super) async fn boundary_problem(
    state: &AppState,
    geometry: &serde_json::Value,
) -> Result<Option<String>, ApiError> {
    Ok(app::territories::boundary_problem(&state.db, geometry).await?)
}

/// Outlet counts of the territory's subtree by tier, channel type and status.
#[utoipa::path(get, path = "/territories/{id}/summary", tag = "territories", responses(
    (status = 200, body = db::territories::Summary), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn territory_summary(
    State(state): State<AppState>,
    auth: Can<p::ReadTerritories>,
    Path(id): Path<i64>,
) -> Result<Json<db::territories::Summary>, ApiError> {
    let t =
        db::territories::get(&state.db, auth.org_id, id).await?.ok_or_else(|| ApiError::not_found("territory", id))?;
    auth.check_territory(Some(&t.path))?;
    Ok(Json(db::territories::summary(&state.db, auth.org_id, id).await?))
}

/// Imports a GeoJSON `FeatureCollection` of territories: each feature is a Polygon/MultiPolygon with
/// properties `code`, `name`, `level` and optional `parent_code` (a territory already stored or in
/// the same file, in any order). Existing codes are updated. All or nothing: any bad feature → 422
/// listing every bad feature (`index` = position in `features`) and nothing is written.
#[utoipa::path(post, path = "/territories/import", tag = "territories", request_body(content = super::import::FeatureCollection, content_type = "application/geo+json"), responses(
    (status = 200, body = TerritoryImport), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn import_territories(
    State(state): State<AppState>,
    auth: Can<p::WriteTerritories>,
    body: Bytes,
) -> Result<Json<TerritoryImport>, ApiError> {
    Ok(Json(app::territories::import(&state.db, &auth.caller(), &body).await?))
}

/// The level named `text`; an unknown one is refused as the database's check refuses it.
fn level_of(text: &str) -> Result<TerritoryLevel, ApiError> {
    text.parse().map_err(|_| ApiError::check_violation("territories_level_known"))
}
