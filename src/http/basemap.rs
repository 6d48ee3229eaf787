//! The map UI's basemap settings (`/config.json`) and the offline street basemap: the
//! deployment's `PMTiles` file (`FV_BASEMAP_PMTILES`) at [`STREETS_PATH`], read by the map UI with
//! HTTP range requests (the `pmtiles` protocol asks for the header, then each tile's bytes).
//!
//! Both are public like the rest of the map UI's static files (`/basemap/*.geojson`, the pages):
//! a basemap holds no data of the org. Only GET and HEAD are routed, and no body is ever read.
//! Ranges, `Last-Modified` and `If-Modified-Since` are tower-http's [`ServeFile`]; this module adds
//! a strong `ETag` (of the file's length and modification time), `If-None-Match` and `If-Range`
//! (a range only of the file the client already has parts of), and problem+json for 404 and 416.

use super::AppState;
use super::error::{ApiError, Problem};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::UNIX_EPOCH;
use tower::ServiceExt as _;
use tower_http::services::ServeFile;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where the street basemap file is served (and what `/config.json` names as `basemap_pmtiles`).
pub const STREETS_PATH: &str = "/basemap/streets.pmtiles";

/// Media type of a `PMTiles` archive.
const PMTILES: &str = "application/vnd.pmtiles";

/// `/config.json` and the street basemap file.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(map_config)).routes(routes!(streets))
}

/// What the map UI needs to know of the deployment's basemap. The UI draws the first one set:
/// `basemap_style`, then `basemap_pmtiles`, then `basemap_xyz`, else the Natural Earth land
/// basemap built into the UI.
#[derive(Serialize, ToSchema)]
#[expect(clippy::struct_field_names, reason = "the member names the map UI reads from /config.json")]
pub struct MapConfig {
    /// A MapLibre style URL of the org's own tile server (`FV_BASEMAP_STYLE_URL`).
    basemap_style: Option<String>,
    /// Path of the street basemap file (`FV_BASEMAP_PMTILES` set), drawn with the UI's own style.
    #[schema(example = "/basemap/streets.pmtiles")]
    basemap_pmtiles: Option<String>,
    /// A raster tile URL template with `{z}`, `{x}` and `{y}` (`FV_BASEMAP_XYZ`).
    basemap_xyz: Option<String>,
    /// Attribution of the `basemap_xyz` tiles (`FV_BASEMAP_ATTRIBUTION`).
    basemap_attribution: Option<String>,
}

/// The map UI's basemap settings (see [`MapConfig`] for which one is drawn).
#[utoipa::path(get, path = "/config.json", tag = "map", security(()), responses((status = 200, body = MapConfig)))]
async fn map_config(State(state): State<AppState>) -> axum::Json<MapConfig> {
    let c = &state.config;
    axum::Json(MapConfig {
        basemap_style: c.basemap_style_url.clone(),
        basemap_pmtiles: c.basemap_pmtiles.as_ref().map(|_| STREETS_PATH.to_owned()),
        basemap_xyz: c.basemap_xyz.clone(),
        basemap_attribution: c.basemap_attribution.clone(),
    })
}

/// The bytes of the `PMTiles` file, as the OpenAPI document describes them.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(dead_code, reason = "describes the file in the OpenAPI document only")]
struct PmtilesBytes(Vec<u8>);

/// The street basemap (`FV_BASEMAP_PMTILES`): the whole file, or one byte range of it.
#[utoipa::path(get, path = "/basemap/streets.pmtiles", tag = "map", security(()),
    params(
        ("Range" = Option<String>, Header, description = "One byte range, e.g. `bytes=0-16383` (other units are ignored)"),
        ("If-Range" = Option<String>, Header, description = "The `ETag` the client's parts came from: the range is served only of that file, else the whole file"),
        ("If-None-Match" = Option<String>, Header, description = "`ETag`s the client has: 304 when the file is one of them"),
    ),
    responses(
        (status = 200, description = "The whole file", content_type = "application/vnd.pmtiles", body = PmtilesBytes),
        (status = 206, description = "The range asked for, with `Content-Range`", content_type = "application/vnd.pmtiles", body = PmtilesBytes),
        (status = 304, description = "Not modified (`If-None-Match` or `If-Modified-Since`)"),
        (status = 404, description = "No street basemap is configured, or its file is missing", body = Problem, content_type = "application/problem+json"),
        (status = 416, description = "The range lies outside the file, or several ranges were asked for; `Content-Range: bytes */<length>`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn streets(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let Some(path) = state.config.basemap_pmtiles.as_deref() else {
        return Err(ApiError::NotFound(format!(
            "no street basemap is configured at {STREETS_PATH} (FV_BASEMAP_PMTILES)"
        )));
    };
    // The body is never read: a GET or HEAD has none worth reading.
    let (mut parts, _) = req.into_parts();
    let meta = tokio::fs::metadata(path).await.map_err(|e| {
        tracing::warn!(path = %path.display(), error = %e, "FV_BASEMAP_PMTILES cannot be read");
        ApiError::NotFound(format!("the street basemap file of {STREETS_PATH} is missing on the server"))
    })?;
    let mtime_ns = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let etag = strong_etag(meta.len(), mtime_ns);
    if none_match(&parts.headers, &etag) {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        set_etag(res.headers_mut(), &etag);
        return Ok(res);
    }
    if !range_applies(&parts.headers, &etag) {
        parts.headers.remove(header::RANGE);
    }
    let range = parts.headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let Ok(res) = ServeFile::new(path).oneshot(Request::from_parts(parts, Body::empty())).await;
    finish(res.map(Body::new), &etag, range, meta.len())
}

/// The file's answer as the client gets it: a missing file or an unsatisfiable range as problem
/// details, else the `PMTiles` type, `no-cache` and the validator.
fn finish(mut res: Response, etag: &str, range: Option<String>, len: u64) -> Result<Response, ApiError> {
    match res.status() {
        StatusCode::NOT_FOUND => {
            return Err(ApiError::NotFound(format!(
                "the street basemap file of {STREETS_PATH} is missing on the server"
            )));
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let detail = format!(
                "`Range: {}` cannot be served from {STREETS_PATH}: it holds {len} bytes, and one range is served at a time",
                range.unwrap_or_default(),
            );
            let mut out = Problem::new(StatusCode::RANGE_NOT_SATISFIABLE, detail).into_response();
            if let Some(v) = res.headers().get(header::CONTENT_RANGE) {
                out.headers_mut().insert(header::CONTENT_RANGE, v.clone());
            }
            return Ok(out);
        }
        _ => {}
    }
    let headers = res.headers_mut();
    if headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PMTILES));
    }
    // Kept, but asked about again each time: a new extract replaces the file in place.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    set_etag(headers, etag);
    Ok(res)
}

/// A strong validator of the file: its length and modification time (nanoseconds).
fn strong_etag(len: u64, mtime_ns: u128) -> String {
    format!("\"{len:x}-{mtime_ns:x}\"")
}

fn set_etag(headers: &mut HeaderMap, etag: &str) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, v);
    }
}

/// `If-None-Match` names the file (`*`, or its tag, weak or strong: weak comparison).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag))
}

/// Whether a `Range` header is to be honoured: its unit is bytes (others are ignored, RFC 9110
/// 14.2) and an `If-Range`, if any, is this file's strong tag (a date or another tag: the client's
/// parts may be of an older file, so it gets the whole new one).
fn range_applies(headers: &HeaderMap, etag: &str) -> bool {
    let bytes = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|r| r.trim_start().to_ascii_lowercase().starts_with("bytes="));
    let same_file = headers.get(header::IF_RANGE).is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == etag));
    bytes && same_file
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.clone(), HeaderValue::from_str(v).expect("ascii header"))).collect()
    }

    #[test]
    fn a_range_is_served_only_of_the_file_the_client_has() {
        let tag = strong_etag(1000, 42);
        assert_eq!(tag, "\"3e8-2a\"");
        assert!(range_applies(&headers(&[(header::RANGE, "bytes=0-99")]), &tag));
        assert!(range_applies(&headers(&[(header::RANGE, "bytes=0-99"), (header::IF_RANGE, &tag)]), &tag));
        assert!(!range_applies(&headers(&[(header::RANGE, "bytes=0-99"), (header::IF_RANGE, "\"old\"")]), &tag));
        let date = "Sun, 06 Dec 2026 10:00:00 GMT";
        assert!(!range_applies(&headers(&[(header::RANGE, "bytes=0-99"), (header::IF_RANGE, date)]), &tag));
        assert!(!range_applies(&headers(&[(header::RANGE, "lines=1-2")]), &tag));
        assert!(!range_applies(&HeaderMap::new(), &tag));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let tag = strong_etag(1, 2);
        assert!(none_match(&headers(&[(header::IF_NONE_MATCH, &format!("\"x\", W/{tag}"))]), &tag));
        assert!(none_match(&headers(&[(header::IF_NONE_MATCH, "*")]), &tag));
        assert!(!none_match(&headers(&[(header::IF_NONE_MATCH, "\"x\"")]), &tag));
    }
}
