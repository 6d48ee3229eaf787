//! Audit exports: start one (a job), follow its progress, download its files, verify a file and
//! the data behind it against the stored manifest.

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Page, Paged, Path, Query};
use crate::app;
use crate::db;
use crate::db::exports::Export;
use crate::domain::access::Role;
use crate::domain::export::{ExportFormat, ExportParams, sha256_hex};
use crate::export::Verification;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_export, list_exports))
        .routes(routes!(get_export))
        .routes(routes!(export_file))
        .routes(routes!(territory_assessment))
        .layer(DefaultBodyLimit::max(super::SMALL_BODY_BYTES))
        // Verify reads a whole export file: the global FV_BODY_LIMIT_BYTES, like the imports.
        .routes(routes!(verify))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AssessmentQuery {
    /// The month (YYYY-MM); default the org's current month.
    month: Option<String>,
}

/// The monthly assessment bulletin of a territory: its active reps ranked by plan compliance
/// and verified rate, its direct child territories by plan compliance, outlet coverage and
/// frequency compliance, each with last month's figure and the change in percentage points
/// (ranks: 1 = best, equal figures share a rank). Managers, supervisors, auditors and admins of
/// the territory; a rep (or their phone) the bulletin of their own territory, those below it and
/// the one directly above it (their team), where they find themselves ranked among their team
/// (403 for a rep with no territory).
#[utoipa::path(get, path = "/territories/{id}/assessment", tag = "exports", params(AssessmentQuery), responses(
    (status = 200, body = crate::export::assessment::Assessment), (status = 403, body = Problem),
    (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn territory_assessment(
    State(state): State<AppState>,
    auth: Can<p::ReadBulletin>,
    Path(id): Path<i64>,
    Query(q): Query<AssessmentQuery>,
) -> Result<Json<crate::export::assessment::Assessment>, ApiError> {
    let caller = auth.caller();
    let t = if caller.own_rep.is_some() {
        app::exports::rep_team_territory(&state.db, &caller, id).await?
    } else {
        super::compliance::visible_territory(&state, &auth, id).await?
    };
    Ok(Json(app::exports::assessment(&state.db, auth.org_id, &t, q.month.as_deref()).await?))
}

/// The export, when the caller may read it (see `app::exports::get`).
async fn visible_export(state: &AppState, auth: &Principal, id: i64) -> Result<Export, ApiError> {
    Ok(app::exports::get(&state.db, &auth.caller(), id).await?)
}

/// Starts an audit export of a scope (a territory's team, or one rep) and period (at most 366
/// days): XLSX (summary per rep, rep days, visits with evidence and verdict, missed planned
/// visits, suspect visits, reviews, metric definitions), the same tables as zipped CSV, and
/// GeoJSON of visits and day tracks, and a PDF summary (a page per rep). 202 with the job: poll it for `status` and `progress_pct`;
/// when `done` it holds the manifest (SHA-256 of every file and of the rows it was made from).
/// Managers, supervisors and auditors export within their territories; reps their own data.
/// Audited. 409 when the caller (`FV_EXPORTS_PER_USER`) or the org (`FV_EXPORTS_PER_ORG`) already
/// has that many exports queued or running: wait for one to finish (poll `GET /exports`).
#[utoipa::path(post, path = "/exports", tag = "exports", request_body = ExportParams, responses(
    (status = 202, body = Export), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn start_export(
    State(state): State<AppState>,
    auth: Can<p::ExportAudits>,
    Json(params): Json<ExportParams>,
) -> Result<Response, ApiError> {
    let caps =
        app::exports::ExportCaps { per_user: state.config.exports_per_user, per_org: state.config.exports_per_org };
    let export = app::exports::start(&state.db, &state.background_db, &auth.caller(), &params, caps).await?;
    let id = export.id;
    let mut response = (StatusCode::ACCEPTED, Json(export)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/exports/{id}")) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Exports, newest first: the caller's own; org-wide admins and auditors see every export of the org.
#[utoipa::path(get, path = "/exports", tag = "exports", params(Page), responses((status = 200, body = Paged<Export>),
    (status = 403, body = Problem)))]
async fn list_exports(
    State(state): State<AppState>,
    auth: Can<p::ExportAudits>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<Export>>, ApiError> {
    let limit = page.limit()?;
    // Org-wide admins and auditors see every export; everyone else their own.
    let org_wide = matches!(auth.role(), Some(Role::Admin | Role::Auditor)) && auth.scope_root().is_none();
    let mine = match (org_wide, auth.user_id()) {
        (true, _) => None,
        (false, Some(me)) => Some(me),
        (false, None) => return Err(ApiError::Forbidden("exports are requested by users, not devices".into())),
    };
    let items = db::exports::list(&state.db, auth.org_id, mine, page.after.unwrap_or(i64::MAX), limit).await?;
    Ok(Json(Paged::new(items, limit, |e| e.id)))
}

/// One export: its status, progress and, once done, its manifest.
#[utoipa::path(get, path = "/exports/{id}", tag = "exports", responses(
    (status = 200, body = Export), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_export(
    State(state): State<AppState>,
    auth: Can<p::ExportAudits>,
    Path(id): Path<i64>,
) -> Result<Json<Export>, ApiError> {
    Ok(Json(visible_export(&state, &auth, id).await?))
}

/// The bytes of a binary export file, as the OpenAPI document describes them (a string of
/// format `binary`, not an array of numbers).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(dead_code, reason = "describes the file in the OpenAPI document only")]
struct FileBytes(Vec<u8>);

/// A file of a finished export (`audit.xlsx`, `audit-csv.zip`, `audit.geojson`,
/// `audit-summary.pdf`), streamed.
#[utoipa::path(get, path = "/exports/{id}/files/{name}", tag = "exports", responses(
    (status = 200, description = "The file, typed by its format",
        content((FileBytes = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (FileBytes = "application/zip"), (serde_json::Value = "application/geo+json"),
            (FileBytes = "application/pdf"))),
    (status = 403, body = Problem),
    (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn export_file(
    State(state): State<AppState>,
    auth: Can<p::ExportAudits>,
    Path((id, name)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    let e = visible_export(&state, &auth, id).await?;
    let Some(manifest) = e.manifest.map(|m| m.0) else {
        return Err(ApiError::Conflict { detail: format!("export {id} is {}", e.status), errors: Vec::new() });
    };
    let file = manifest.files.iter().find(|f| f.name == name).ok_or_else(|| ApiError::not_found("file", &name))?;
    let format = ExportFormat::of_file(&name).ok_or_else(|| ApiError::not_found("file", &name))?;
    super::audit::record_access(
        &state,
        &auth,
        manifest.rep_ids.iter().copied(),
        "export",
        serde_json::json!({"export_id": id, "file": name}),
    )
    .await?;
    let (db, org_id, stored) = (state.db.clone(), auth.org_id, name.clone());
    // One chunk read at a time: memory stays at a chunk however large the file.
    let chunks = futures_util::stream::try_unfold(0i32, move |seq| {
        let (db, stored) = (db.clone(), stored.clone());
        async move {
            let chunk = db::exports::chunk(&db, org_id, id, &stored, seq).await.map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>(chunk.map(|c| (Bytes::from(c), seq + 1)))
        }
    });
    let mut response = Response::new(Body::from_stream(chunks));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.bytes));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"fieldvisit-export-{id}-{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", file.sha256)) {
        headers.insert(header::ETAG, v);
    }
    Ok(response)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct VerifyQuery {
    /// The export to check against; default: every export with a file of this content.
    export_id: Option<i64>,
    /// The file's hex SHA-256, instead of sending the file (large files: hash them locally).
    #[param(pattern = "^[0-9a-fA-F]{64}$")]
    sha256: Option<String>,
    /// The file's length in bytes, with `sha256`.
    #[param(value_type = Option<i64>, minimum = 0)]
    bytes: Option<u64>,
}

/// The file to check, as its SHA-256 and length: of the body, or given by `sha256` and `bytes`;
/// `None` when neither is sent.
fn file_given(q: &VerifyQuery, body: &[u8]) -> Result<Option<(String, u64)>, ApiError> {
    // As the schema says, whether or not a body is sent: an `int64` length, 64 hex digits.
    if q.bytes.is_some_and(|n| i64::try_from(n).is_err()) {
        return Err(ApiError::field("bytes", format!("must be at most {}", i64::MAX)));
    }
    if q.sha256.as_deref().is_some_and(|h| h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(ApiError::field("sha256", "must be 64 hex digits"));
    }
    Ok(match (&q.sha256, q.bytes, body.is_empty()) {
        (Some(h), Some(n), true) => Some((h.to_ascii_lowercase(), n)),
        (Some(_), None, true) => return Err(ApiError::field("bytes", "give the file's length with its sha256")),
        (_, _, false) => Some((sha256_hex(body), body.len() as u64)),
        (None, _, true) => None,
    })
}

/// Verifies a file (the request body, or its `sha256` and `bytes`) against a stored export
/// manifest, and whether the export's underlying data changed since it was made. With
/// `export_id` and no file: the data check alone. 200 whether or not it matches: read
/// `file_matches` and `data_changed`.
#[utoipa::path(post, path = "/exports/verify", tag = "exports", params(VerifyQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"), responses(
    (status = 200, body = Verification), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn verify(
    State(state): State<AppState>,
    auth: Can<p::ExportAudits>,
    Query(q): Query<VerifyQuery>,
    body: Bytes,
) -> Result<Json<Verification>, ApiError> {
    let given = file_given(&q, &body)?;
    Ok(Json(app::exports::verify(&state.background_db, &auth.caller(), q.export_id, given).await?))
}
