//! Mapbox Vector Tiles of the outlets with their period status (`/tiles/outlets/{z}/{x}/{y}.mvt`)
//! and of the H3 coverage hexagons with their figures (`/tiles/coverage/{z}/{x}/{y}.mvt`), with
//! each layer's TileJSON (`/tiles/outlets.json`, `/tiles/coverage.json`), for the zoom levels
//! where GeoJSON would be too large. Same token and scope as the GeoJSON layers; tiles carry a weak
//! `ETag` (304 on `If-None-Match`) and are compressed when the request accepts gzip or br.

use super::AppState;
use super::auth::{Can, p};
use super::error::ApiError;
use super::extract::Query;
use super::links::BaseUrl;
use crate::app::coverage::{StatusFilter, statuses, tallies};
use crate::domain::coverage;
use crate::domain::tiles::{self, TilePoint, TilePolygon};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use geozero::mvt::TileValue;
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::compression::CompressionLayer;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tiles/outlets.json", get(tilejson))
        .route("/tiles/outlets/{z}/{x}/{y}", get(outlets_tile))
        .route("/tiles/coverage.json", get(coverage_tilejson))
        .route("/tiles/coverage/{z}/{x}/{y}", get(coverage_tile))
        .layer(CompressionLayer::new())
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
async fn tilejson(_auth: Can<p::ReadTeamCompliance>, root: BaseUrl) -> Response {
    let fields = json!({"code": "String", "name": "String", "tier": "String", "channel_type": "String",
                        "status": "String: visited, due, overdue, never_visited, closed"});
    tilejson_of(
        &root,
        "outlets",
        "Outlets with their status at the end of the period (?from=&to=, default today)",
        &fields,
    )
}

/// A TileJSON 3.0.0 document for the one-layer tiles at `/tiles/{layer}/{z}/{x}/{y}.mvt` under
/// the request's base URL.
fn tilejson_of(root: &BaseUrl, layer: &str, description: &str, fields: &Value) -> Response {
    let root = &root.0;
    let body = json!({
        "tilejson": "3.0.0",
        "name": layer,
        "description": description,
        "tiles": [format!("{root}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt")],
        "minzoom": 0,
        "maxzoom": tiles::MAX_ZOOM,
        "bounds": [-180.0, -85.051_128_78, 180.0, 85.051_128_78],
        "vector_layers": [{"id": layer, "fields": fields}],
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
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let y = tile_row(z, x, &y)?;
    let (from, to) =
        super::compliance::period(&state, &auth, &super::visits::VisitsQuery { from: q.from, to: q.to }).await?;
    let filter = StatusFilter { bbox: Some(tiles::bounds(z, x, y)), limit: usize::MAX, ..StatusFilter::default() };
    let points: Vec<TilePoint> = statuses(state.read_stores(), auth.org_id, auth.scope_root(), (from, to), filter)
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
                    ("channel_type", TileValue::Str(o.channel_type.as_str().to_owned())),
                    ("status", TileValue::Str(o.status.as_str().to_owned())),
                ],
            })
        })
        .collect();
    Ok(super::layers::tagged(&headers, MVT, tiles::encode_points("outlets", points)))
}

/// The tile row of a `{y}.mvt` path segment, once `z/x/y` is known to be a tile.
fn tile_row(z: u8, x: u32, y: &str) -> Result<u32, ApiError> {
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
    Ok(y)
}

/// The H3 resolution coverage tiles use at zoom `z` when none is asked for: cells of a few
/// pixels to a few tens of pixels across.
fn resolution_for_zoom(z: u8) -> u8 {
    match z {
        0..=6 => 5,
        7..=8 => 6,
        9..=10 => 7,
        11..=12 => 8,
        13 => 9,
        _ => 10,
    }
}

#[derive(Deserialize)]
struct CoverageTileQuery {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    /// H3 resolution 5-10; default by zoom.
    h3_res: Option<u8>,
}

/// TileJSON 3.0.0 of the coverage hexagons layer.
async fn coverage_tilejson(_auth: Can<p::ReadTeamCompliance>, root: BaseUrl) -> Response {
    let fields = json!({"cell": "String: H3 index", "active_outlets": "Number", "visited_outlets": "Number",
                        "coverage_pct": "Number", "frequency_compliance_pct": "Number",
                        "dwell_compliance_pct": "Number (absent without valid visits)",
                        "white_space": "Boolean"});
    let description = "H3 cells holding outlets active at the start of the period (?from=&to=, default today; \
                       ?h3_res=5-10, default by zoom) with their outlet figures and white space";
    tilejson_of(&root, "coverage", description, &fields)
}

/// One tile of the H3 cells (at `h3_res`, default by zoom) holding outlets of U in the caller's
/// scope, each a polygon with the cell's outlet figures for the period and `white_space`. A cell
/// on the tile's edge is in every tile it meets, with the figures of all its outlets; a cell under
/// two tile units across is drawn as a square of two units.
async fn coverage_tile(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    Path((z, x, y)): Path<(u8, u32, String)>,
    Query(q): Query<CoverageTileQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let y = tile_row(z, x, &y)?;
    let res = super::coverage::resolution(Some(q.h3_res.unwrap_or_else(|| resolution_for_zoom(z))))?;
    let (from, to) =
        super::compliance::period(&state, &auth, &super::visits::VisitsQuery { from: q.from, to: q.to }).await?;
    let bbox = coverage::grown_by_cells(tiles::bounds(z, x, y), res);
    let cells = tallies(state.read_stores(), auth.org_id, auth.scope_root(), (from, to), Some(bbox), Some(res), false)
        .await?
        .cells();
    let polygons: Vec<TilePolygon> = cells.iter().filter_map(|c| tiles::cell_polygon(c, z, x, y)).collect();
    Ok(super::layers::tagged(&headers, MVT, tiles::encode_polygons("coverage", polygons)))
}
