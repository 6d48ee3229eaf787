//! Mapbox Vector Tiles of the outlets with their period status (`/tiles/outlets/{z}/{x}/{y}.mvt`)
//! and the layer's TileJSON (`/tiles/outlets.json`), for the zoom levels where GeoJSON would be
//! too large. Same token and scope as the GeoJSON layers.

use super::AppState;
use super::auth::{Can, p};
use super::coverage::{StatusFilter, statuses};
use super::error::ApiError;
use super::extract::Query;
use crate::domain::tiles::{self, TilePoint};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use geozero::mvt::TileValue;
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new().route("/tiles/outlets.json", get(tilejson)).route("/tiles/outlets/{z}/{x}/{y}", get(outlets_tile))
}

const MVT: &str = "application/vnd.mapbox-vector-tile";

#[derive(Deserialize)]
struct PeriodQuery {
    /// First local day of the period (YYYY-MM-DD); default today.
    from: Option<NaiveDate>,
    /// Last local day, inclusive; default `from`.
    to: Option<NaiveDate>,
}

/// TileJSON 3.0.0 of the outlets layer.
async fn tilejson(_auth: Can<p::ReadTeamCompliance>, headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:8080");
    let scheme = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
    let body = json!({
        "tilejson": "3.0.0",
        "name": "outlets",
        "description": "Outlets with their status at the end of the period (?from=&to=, default today)",
        "tiles": [format!("{scheme}://{host}/tiles/outlets/{{z}}/{{x}}/{{y}}.mvt")],
        "minzoom": 0,
        "maxzoom": tiles::MAX_ZOOM,
        "bounds": [-180.0, -85.051_128_78, 180.0, 85.051_128_78],
        "vector_layers": [{
            "id": "outlets",
            "fields": {"code": "String", "name": "String", "tier": "String", "channel_type": "String",
                       "status": "String: visited, due, overdue, never_visited, closed"},
        }],
    });
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body.to_string()).into_response()
}

/// One tile of the outlets of the caller's scope registered by the end of the period, each a
/// point with code, name, tier, channel type and status at the end of the period.
async fn outlets_tile(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    Path((z, x, y)): Path<(u8, u32, String)>,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, ApiError> {
    let y: u32 = y
        .strip_suffix(".mvt")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::field("y", "expected the tile row followed by .mvt"))?;
    if !tiles::valid(z, x, y) {
        return Err(ApiError::field(
            "z",
            format!("no tile {z}/{x}/{y}: zoom 0-{}, x and y below 2^zoom", tiles::MAX_ZOOM),
        ));
    }
    let (from, to) =
        super::compliance::period(&state, &auth, &super::visits::VisitsQuery { from: q.from, to: q.to }).await?;
    let filter = StatusFilter { bbox: Some(tiles::bounds(z, x, y)), limit: usize::MAX, ..StatusFilter::default() };
    let points: Vec<TilePoint> = statuses(&state, auth.org_id, auth.scope_root(), (from, to), filter)
        .await?
        .rows
        .into_iter()
        .filter_map(|o| {
            let at = tiles::to_tile(o.lat, o.lon, z, x, y)?;
            Some(TilePoint {
                id: u64::try_from(o.outlet_id).ok()?,
                at,
                properties: vec![
                    ("code", TileValue::Str(o.code)),
                    ("name", TileValue::Str(o.name)),
                    ("tier", TileValue::Str(o.tier)),
                    ("channel_type", TileValue::Str(o.channel_type)),
                    ("status", TileValue::Str(o.status.as_str().to_owned())),
                ],
            })
        })
        .collect();
    let bytes = tiles::encode_points("outlets", points);
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(MVT))], bytes).into_response())
}
