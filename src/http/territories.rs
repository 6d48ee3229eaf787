//! The territory tree.

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Page, Paged, Path, Query};
use super::people::audit;
use crate::db;
use crate::db::territories::{NewTerritory, Territory};
use crate::domain::audit::AuditAction;
use crate::domain::territory::TerritoryLevel;
use crate::domain::validation::{FieldError, check_text};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
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
    code: String,
    name: String,
    /// country, province, city, district, county, grid or region
    level: String,
    /// GeoJSON Polygon or MultiPolygon (WGS84).
    #[schema(value_type = Option<Object>)]
    boundary: Option<serde_json::Value>,
}

/// Creates a territory under `parent_id` (or a root).
#[utoipa::path(post, path = "/territories", tag = "territories", request_body = TerritoryInput, responses(
    (status = 201, body = Territory), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_territory(
    State(state): State<AppState>,
    auth: Can<p::WriteTerritories>,
    Json(input): Json<TerritoryInput>,
) -> Result<(StatusCode, Json<Territory>), ApiError> {
    let mut errors = Vec::new();
    check_text("code", &input.code, 64, &mut errors);
    check_text("name", &input.name, 200, &mut errors);
    if let Some(b) = &input.boundary
        && let Some(reason) = boundary_problem(&state, b).await?
    {
        errors.push(FieldError::new("boundary", reason));
    }
    let boundary = input.boundary.as_ref().map(serde_json::Value::to_string);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
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
    if let Some(reason) = crate::domain::territory::boundary_problem(geometry) {
        return Ok(Some(reason));
    }
    Ok(db::territories::boundary_problem(&state.db, &geometry.to_string()).await?)
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

#[derive(Serialize, utoipa::ToSchema)]
struct TerritoryImport {
    created: usize,
    updated: usize,
    /// Outlets whose territory changed because boundaries changed.
    outlets_reassigned: u64,
}

/// Imports a GeoJSON `FeatureCollection` of territories: each feature is a Polygon/MultiPolygon with
/// properties `code`, `name`, `level` and optional `parent_code` (a territory already stored or in
/// the same file, in any order). Existing codes are updated. All or nothing: any bad feature → 422
/// listing every bad feature (`index` = position in `features`) and nothing is written.
#[utoipa::path(post, path = "/territories/import", tag = "territories", request_body(content = Object, content_type = "application/geo+json"), responses(
    (status = 200, body = TerritoryImport), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn import_territories(
    State(state): State<AppState>,
    auth: Can<p::WriteTerritories>,
    body: Bytes,
) -> Result<Json<TerritoryImport>, ApiError> {
    let doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("not JSON: {e}")))?;
    let (Some("FeatureCollection"), Some(serde_json::Value::Array(features))) =
        (doc.get("type").and_then(serde_json::Value::as_str), doc.get("features"))
    else {
        return Err(ApiError::bad_request("expected a GeoJSON FeatureCollection"));
    };
    // Judge every feature before writing anything.
    let mut errors = Vec::new();
    let mut rows = Vec::with_capacity(features.len());
    for (i, f) in features.iter().enumerate() {
        let prop = |k: &str| f.get("properties").and_then(|p| p.get(k)).and_then(serde_json::Value::as_str);
        let mut errs = Vec::new();
        let (code, name, level) = (prop("code").unwrap_or(""), prop("name").unwrap_or(""), prop("level").unwrap_or(""));
        check_text("code", code, 64, &mut errs);
        check_text("name", name, 200, &mut errs);
        check_text("level", level, 32, &mut errs);
        match f.get("geometry") {
            Some(g) if !g.is_null() => {
                if let Some(reason) = boundary_problem(&state, g).await? {
                    errs.push(FieldError::new("geometry", reason));
                }
            }
            _ => errs.push(FieldError::new("geometry", "is required")),
        }
        if rows.iter().any(|(c, ..): &(String, String, String, Option<String>, String)| c == code) {
            errs.push(FieldError::new("code", format!("`{code}` appears twice in this file")));
        }
        if errs.is_empty() {
            let geometry = f.get("geometry").map(serde_json::Value::to_string).unwrap_or_default();
            rows.push((
                code.to_owned(),
                name.to_owned(),
                level.to_owned(),
                prop("parent_code").map(str::to_owned),
                geometry,
            ));
        }
        errors.extend(errs.into_iter().map(|e| e.at(i)));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let mut tx = state.db.begin().await?;
    let (mut created, mut updated) = (0, 0);
    let mut pending: Vec<usize> = (0..rows.len()).collect();
    while !pending.is_empty() {
        let mut next = Vec::new();
        for &i in &pending {
            let (code, name, level, parent_code, geometry) = &rows[i];
            let parent = match parent_code {
                Some(pc) => {
                    let Some(p) = db::territories::by_code(&mut *tx, auth.org_id, pc).await? else {
                        // Its parent comes later in the file: try again in the next pass.
                        next.push(i);
                        continue;
                    };
                    Some(p)
                }
                None => None,
            };
            auth.check_territory(parent.as_ref().map(|p| p.path.as_slice()))
                .map_err(|_| ApiError::invalid(vec![FieldError::new("parent_code", "outside your territory").at(i)]))?;
            let level = level_of(level).map_err(|e| e.at(i))?;
            let t =
                NewTerritory { parent_id: parent.map(|p| p.id), code, name, level, boundary_geojson: Some(geometry) };
            if db::territories::update_by_code(&mut *tx, auth.org_id, &t).await.map_err(|e| at(e, i))?.is_some() {
                updated += 1;
            } else {
                db::territories::create(&mut *tx, auth.org_id, &t).await.map_err(|e| at(e, i))?;
                created += 1;
            }
        }
        if next.len() == pending.len() {
            let errors = next
                .iter()
                .map(|&i| FieldError::new("parent_code", "no such territory in this org or this file").at(i))
                .collect();
            return Err(ApiError::invalid(errors));
        }
        pending = next;
    }
    let outlets_reassigned = db::territories::reassign_outlets(&mut *tx, auth.org_id).await?;
    audit(
        &mut *tx,
        &auth,
        AuditAction::TerritoryImport,
        "territory",
        "*",
        json!({"created": created, "updated": updated}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(TerritoryImport { created, updated, outlets_reassigned }))
}

/// The level named `text`; an unknown one is refused as the database's check refuses it.
fn level_of(text: &str) -> Result<TerritoryLevel, ApiError> {
    text.parse().map_err(|_| ApiError::check_violation("territories_level_known"))
}

/// A database error about feature `i`, with the feature index on each field error.
fn at(e: sqlx::Error, i: usize) -> ApiError {
    ApiError::from(e).at(i)
}
