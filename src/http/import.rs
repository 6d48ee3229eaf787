//! Bulk import of outlets: the request body is the file (CSV or GeoJSON).

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem, cap_errors};
use super::extract::{Json, Query};
use crate::db::import::{ImportError, ImportRequest, import_outlets};
use crate::domain::access::Scope;
use crate::domain::crs::Crs;
use crate::domain::import::{Format, ImportReport, Mode, parse};
use crate::domain::names::UnknownName;
use crate::domain::validation::FieldError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde::Deserialize;
use std::fmt::Write as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import_outlets_file))
}

/// A GeoJSON `FeatureCollection` as an import reads it; what each feature must hold is in the
/// operation's description (its rows are judged one by one and named in the answer).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the body in the OpenAPI document only")]
pub(super) struct FeatureCollection {
    #[schema(rename = "type", pattern = "^FeatureCollection$")]
    kind: String,
    #[schema(value_type = Vec<Object>)]
    features: Vec<()>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ImportQuery {
    /// `atomic` (default): any bad row and nothing is written; the 422 answer lists every error.
    /// `partial`: the good rows are written and the bad ones reported in the 200 answer.
    #[param(pattern = "^(atomic|partial)$")]
    mode: Option<String>,
    /// `csv` or `geojson`; default: from the content type (or the content, when it names none).
    #[param(pattern = "^(csv|geojson)$")]
    format: Option<String>,
    /// Coordinate system of the file's positions (default `wgs84`): `gcj02` (AMap/Gaode, Tencent)
    /// and `bd09` (Baidu) are converted to WGS-84 before anything is judged; outside mainland China
    /// no shift applies.
    #[param(pattern = "^(wgs84|gcj02|bd09)$")]
    crs: Option<String>,
    /// `true`: a preview. Every row is judged exactly as the import would judge it, the answer (200,
    /// `dry_run: true`) counts what it would insert and update and lists every bad row, and nothing
    /// is written (no audit entry either), whatever the mode.
    dry_run: Option<bool>,
}

fn format_of(q: &ImportQuery, headers: &HeaderMap, body: &[u8]) -> Result<Format, ApiError> {
    if let Some(f) = &q.format {
        return f.parse().map_err(|reason: String| ApiError::BadRequest {
            detail: reason.clone(),
            errors: vec![FieldError::new("format", reason)],
        });
    }
    let Some(ct) = headers.get(CONTENT_TYPE) else {
        return Ok(Format::sniff(body));
    };
    let ct = ct.to_str().unwrap_or_default();
    if let Some(f) = Format::from_media_type(ct) {
        return Ok(f);
    }
    let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence == "text/plain" || essence == "application/octet-stream" {
        return Ok(Format::sniff(body));
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "cannot import `{essence}`: send the file as text/csv or application/geo+json (or say ?format=csv|geojson)"
    )))
}

/// Imports outlets from a CSV or GeoJSON file, upserting by outlet `code`.
///
/// CSV columns are matched by header name (case-insensitive): `code` (`outlet_code`, `id`), `name`,
/// `channel_type` (`channel`, `type`), `tier`, `lat` (`latitude`, `y`), `lon` (`lng`, `long`,
/// `longitude`, `x`), `radius_m` (`radius`), `status`, `territory` (a territory code; omitted: by
/// point-in-polygon), `address`, `wkt` (`POINT(lon lat)` instead of lat/lon); other columns become
/// string attributes. GeoJSON: a `FeatureCollection` of Point features with the same properties.
/// Each error names the row (`index`: the CSV line number with the header as line 1, or the
/// GeoJSON feature position from 0), the field and the reason.
#[utoipa::path(post, path = "/outlets/import", tag = "outlets", params(ImportQuery),
    request_body(description = "The file itself (UTF-8 CSV with `,` or `;` delimiters, or a GeoJSON FeatureCollection)",
        content((String = "text/csv"), (FeatureCollection = "application/geo+json"), (FeatureCollection = "application/json"))),
    responses(
        (status = 200, body = ImportReport, description = "Imported (in partial mode: the good rows; `errors` lists the rest), or with `dry_run=true` what would be (nothing written)"),
        (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 413, body = Problem, description = "The file is larger than the body limit"),
        (status = 415, body = Problem),
        (status = 422, body = Problem, description = "Atomic mode with bad rows (nothing written), or an unreadable file; `errors` names each row, field and reason")))]
async fn import_outlets_file(
    State(state): State<AppState>,
    auth: Can<p::WriteOutlets>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ImportReport>, ApiError> {
    let mode = mode_of(&q)?;
    let crs = crs_of(q.crs.as_deref())?;
    let format = format_of(&q, &headers, &body)?;
    // Reading 100k rows takes a while: off the async workers.
    let parsed = tokio::task::spawn_blocking(move || parse(format, &body))
        .await
        .map_err(|e| ApiError::Internal(format!("import parser failed: {e}")))?
        .map_err(|errors| ApiError::Unprocessable {
            detail: format!("the {format} file cannot be imported"),
            errors,
        })?;
    let req = ImportRequest {
        org_id: auth.org_id,
        scope: Scope::from_territory(auth.scope_root()),
        mode,
        format,
        actor_user_id: auth.user_id(),
        request_id: auth.request_id.as_deref(),
        source: "api",
        crs,
        dry_run: q.dry_run.unwrap_or(false),
    };
    import_outlets(&state.background_db, &req, parsed).await.map(Json).map_err(|e| import_error(format, e))
}

/// The coordinate system asked for by `?crs=` (default WGS-84).
pub(super) fn crs_of(crs: Option<&str>) -> Result<Crs, ApiError> {
    crs.map_or(Ok(Crs::Wgs84), |c| {
        c.parse().map_err(|e: UnknownName| ApiError::BadRequest {
            detail: e.to_string(),
            errors: vec![FieldError::new("crs", e.to_string())],
        })
    })
}

/// The import mode asked for (default atomic).
fn mode_of(q: &ImportQuery) -> Result<Mode, ApiError> {
    match &q.mode {
        None => Ok(Mode::Atomic),
        Some(m) => m.parse().map_err(|reason: String| ApiError::BadRequest {
            detail: reason.clone(),
            errors: vec![FieldError::new("mode", reason)],
        }),
    }
}

/// The problem an import that wrote nothing answers with: 422 naming each row and field (the
/// first ones, when there are very many), or the database's error.
fn import_error(format: Format, e: ImportError) -> ApiError {
    match e {
        ImportError::File(errors) => {
            ApiError::Unprocessable { detail: format!("the {format} file cannot be imported"), errors }
        }
        ImportError::Rejected(report) => {
            let mut errors = report.errors;
            let dropped = cap_errors(&mut errors);
            let mut detail = format!(
                "{} of {} rows are invalid; nothing was written (mode=atomic; mode=partial writes the good rows)",
                report.rejected, report.rows
            );
            if dropped > 0 {
                let _ = write!(detail, "; the first {} errors are listed, {dropped} more are not", errors.len());
            }
            ApiError::Unprocessable { detail, errors }
        }
        ImportError::Db(e) => e.into(),
    }
}
