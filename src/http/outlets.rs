//! Outlets and tier policies.

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Page, Paged, Path, Query, present};
use super::import::crs_of;
use crate::app;
use crate::db;
use crate::db::outlets::{Filter, LocationPeriod, Outlet, StatusChange};
use crate::domain::crs::Crs;
use crate::domain::outlet::{ChannelType, OutletStatus, TierPolicy};
use crate::domain::validation::{CODE_MAX_CHARS, NAME_MAX_CHARS, optional_one_line_text, optional_plain_text};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_outlets, create_outlet))
        .routes(routes!(get_outlet, update_outlet))
        .routes(routes!(outlet_history))
        .routes(routes!(close_outlet))
        .routes(routes!(suspend_outlet))
        .routes(routes!(reopen_outlet))
        .routes(routes!(list_tiers))
        .routes(routes!(put_tier))
        .layer(DefaultBodyLimit::max(OUTLET_BODY_BYTES))
}

/// Body limit of an outlet, a tier policy or a status change: a few fields and free-form attributes.
const OUTLET_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OutletQuery {
    /// `min_lon,min_lat,max_lon,max_lat` (`min_lon > max_lon` crosses the antimeridian)
    bbox: Option<String>,
    /// `lat,lon`: only outlets within `radius` metres of this point (great-circle).
    near: Option<String>,
    /// Metres around `near` (default 1000, at most 100000).
    #[param(exclusive_minimum = 0, maximum = 100_000)]
    radius: Option<f64>,
    /// Territory id: outlets in it and below it.
    territory: Option<i64>,
    tier: Option<String>,
    channel_type: Option<String>,
    status: Option<String>,
    /// Text contained in the code or name.
    q: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    after: Option<i64>,
}

fn parse_bbox(text: &str) -> Result<[f64; 4], ApiError> {
    crate::domain::layers::parse_bbox(text)
        .ok_or_else(|| ApiError::field("bbox", "expected `min_lon,min_lat,max_lon,max_lat` in degrees, min before max"))
}

fn parse_near(text: &str, radius: Option<f64>) -> Result<[f64; 3], ApiError> {
    let bad = || ApiError::field("near", "expected `lat,lon` in degrees");
    let parts: Vec<f64> =
        text.split(',').map(|x| x.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| bad())?;
    let [lat, lon]: [f64; 2] = parts.try_into().map_err(|_| bad())?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(bad());
    }
    let radius = radius.unwrap_or(1000.0);
    if !(radius > 0.0 && radius <= 100_000.0) {
        return Err(ApiError::field("radius", "must be greater than 0 and at most 100000 m"));
    }
    Ok([lat, lon, radius])
}

/// GeoJSON (RFC 7946) media type.
const GEO_JSON: &str = "application/geo+json";

/// Whether the caller asked for GeoJSON (`Accept: application/geo+json`).
fn wants_geojson(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| v.contains(GEO_JSON))
}

/// An outlet as a GeoJSON Feature: a Point geometry, the other fields as properties.
fn feature(o: &Outlet) -> serde_json::Value {
    let mut props = serde_json::to_value(o).unwrap_or_else(|_| json!({}));
    if let Some(map) = props.as_object_mut() {
        map.remove("lat");
        map.remove("lon");
    }
    json!({
        "type": "Feature",
        "id": o.id,
        "geometry": {"type": "Point", "coordinates": [o.lon, o.lat]},
        "properties": props,
    })
}

fn geojson_response(body: &serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, GEO_JSON)], body.to_string()).into_response()
}

/// Outlets in the caller's scope, filtered, in stable id order with a cursor.
#[utoipa::path(get, path = "/outlets", tag = "outlets", params(OutletQuery), responses(
    (status = 200, body = Paged<Outlet>), (status = 400, body = Problem), (status = 401, body = Problem)))]
async fn list_outlets(
    State(state): State<AppState>,
    auth: Can<p::ReadOutlets>,
    headers: HeaderMap,
    Query(q): Query<OutletQuery>,
) -> Result<Response, ApiError> {
    let page = Page { limit: q.limit, after: q.after };
    let limit = page.limit()?;
    // A channel type or status that does not exist matches no outlet.
    let channel_type = q.channel_type.as_deref().map(str::parse::<ChannelType>).transpose();
    let status = q.status.as_deref().map(str::parse::<OutletStatus>).transpose();
    let bbox = q.bbox.as_deref().map(parse_bbox).transpose()?;
    if q.radius.is_some_and(|r| !(r > 0.0 && r <= 100_000.0)) {
        // Refused with or without `near`, as the schema says.
        return Err(ApiError::field("radius", "must be greater than 0 and at most 100000 m"));
    }
    let near = q.near.as_deref().map(|n| parse_near(n, q.radius)).transpose()?;
    let items = match (channel_type, status) {
        (Ok(channel_type), Ok(status)) => {
            let filter = Filter {
                scope_root: auth.scope_root(),
                territory_id: q.territory,
                tier: q.tier,
                channel_type,
                status,
                bbox,
                near,
                q: q.q.filter(|s| !s.trim().is_empty()),
            };
            db::outlets::list(&state.db, auth.org_id, &filter, page.after(), limit).await?
        }
        _ => Vec::new(),
    };
    let page = Paged::new(items, limit, |o| o.id);
    if wants_geojson(&headers) {
        let features: Vec<_> = page.items.iter().map(feature).collect();
        return Ok(geojson_response(&json!({"type": "FeatureCollection", "features": features, "next": page.next})));
    }
    Ok(Json(page).into_response())
}

/// One outlet.
#[utoipa::path(get, path = "/outlets/{id}", tag = "outlets", responses(
    (status = 200, body = Outlet), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_outlet(
    State(state): State<AppState>,
    auth: Can<p::ReadOutlets>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let outlet = app::outlets::get(&state.db, &auth.caller(), id).await?;
    if wants_geojson(&headers) {
        return Ok(geojson_response(&feature(&outlet)));
    }
    Ok(Json(outlet).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
struct OutletHistory {
    outlet_id: i64,
    /// Every location with its validity period, oldest first; visits are judged against the
    /// location valid at visit time.
    locations: Vec<LocationPeriod>,
    statuses: Vec<StatusChange>,
}

/// Where the outlet stood when, and its status changes.
#[utoipa::path(get, path = "/outlets/{id}/history", tag = "outlets", responses(
    (status = 200, body = OutletHistory), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn outlet_history(
    State(state): State<AppState>,
    auth: Can<p::ReadOutlets>,
    Path(id): Path<i64>,
) -> Result<Json<OutletHistory>, ApiError> {
    let (locations, statuses) = app::outlets::history(&state.db, &auth.caller(), id).await?;
    Ok(Json(OutletHistory { outlet_id: id, locations, statuses }))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StatusReason {
    /// Why (kept in the audit log).
    reason: Option<String>,
}

/// The optional `{"reason": ...}` body of a status change (an empty body or `null` is no reason,
/// as the schema's `oneOf: [null, StatusReason]` says).
fn reason(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let invalid =
        |e: serde_json::Error| ApiError::Unprocessable { detail: format!("invalid body: {e}"), errors: Vec::new() };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(invalid)?;
    // serde reads a struct from an array by position (`[null]`): only an object or `null` is one.
    if !(value.is_object() || value.is_null()) {
        return Err(ApiError::field("body", "must be a JSON object or null"));
    }
    let parsed: Option<StatusReason> = serde_json::from_value(value).map_err(invalid)?;
    Ok(parsed.and_then(|p| p.reason))
}

/// Closes an outlet (it leaves coverage from now on; its history stays).
#[utoipa::path(post, path = "/outlets/{id}/close", tag = "outlets", request_body = Option<StatusReason>, responses(
    (status = 200, body = Outlet), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 409, body = Problem, description = "The change conflicts with another outlet (a reopened outlet's code is in use)")))]
async fn close_outlet(
    State(state): State<AppState>,
    auth: Can<p::WriteOutlets>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Outlet>, ApiError> {
    Ok(Json(app::outlets::set_status(&state.db, &auth.caller(), id, OutletStatus::Closed, reason(&body)?).await?))
}

/// Suspends an outlet (temporarily not to be visited).
#[utoipa::path(post, path = "/outlets/{id}/suspend", tag = "outlets", request_body = Option<StatusReason>, responses(
    (status = 200, body = Outlet), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 409, body = Problem, description = "The change conflicts with another outlet (a reopened outlet's code is in use)")))]
async fn suspend_outlet(
    State(state): State<AppState>,
    auth: Can<p::WriteOutlets>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Outlet>, ApiError> {
    Ok(Json(app::outlets::set_status(&state.db, &auth.caller(), id, OutletStatus::Suspended, reason(&body)?).await?))
}

/// Makes a closed or suspended outlet active again.
#[utoipa::path(post, path = "/outlets/{id}/reopen", tag = "outlets", request_body = Option<StatusReason>, responses(
    (status = 200, body = Outlet), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 409, body = Problem, description = "The change conflicts with another outlet (a reopened outlet's code is in use)")))]
async fn reopen_outlet(
    State(state): State<AppState>,
    auth: Can<p::WriteOutlets>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Outlet>, ApiError> {
    Ok(Json(app::outlets::set_status(&state.db, &auth.caller(), id, OutletStatus::Active, reason(&body)?).await?))
}

/// A new outlet, or the fields of an outlet to change (PATCH: absent fields keep their value,
/// `null` clears `radius_m`, `address` and `territory_id`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(clippy::option_option)] // PATCH tells an absent field (keep) from `null` (clear).
struct OutletInput {
    #[schema(schema_with = optional_one_line_text::<CODE_MAX_CHARS>)]
    code: Option<String>,
    #[schema(schema_with = optional_one_line_text::<NAME_MAX_CHARS>)]
    name: Option<String>,
    #[schema(value_type = Option<ChannelType>)]
    channel_type: Option<String>,
    /// One of the org's tier policies (`tier_policies_tier_format`; that it exists is not in the schema).
    #[schema(pattern = "^[A-Za-z0-9_+-]{1,16}$")]
    tier: Option<String>,
    #[schema(minimum = -90, maximum = 90)]
    lat: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    lon: Option<f64>,
    /// Geofence radius in metres (`outlets_radius_range`: greater than 0, at most 5000; stored in
    /// single precision, so at least its smallest normal value, 1.2e-38); omit (or `null` in a
    /// PATCH) to use the tier's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>, minimum = 1.175_494_4e-38, maximum = 5000)]
    radius_m: Option<Option<f64>>,
    #[schema(value_type = Option<OutletStatus>)]
    status: Option<String>,
    /// Territory; omit to assign by point-in-polygon (`null` in a PATCH: assign by point-in-polygon again).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    territory_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = optional_plain_text)]
    address: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    attributes: Option<serde_json::Value>,
    /// Outline of the premises: a GeoJSON Polygon or MultiPolygon within 2 km of the point (`null`
    /// in a PATCH removes it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    footprint: Option<Option<serde_json::Value>>,
}

impl OutletInput {
    fn into_input(self, crs: Crs) -> app::outlets::Input {
        let i = self;
        app::outlets::Input {
            crs,
            code: i.code,
            name: i.name,
            channel_type: i.channel_type,
            tier: i.tier,
            lat: i.lat,
            lon: i.lon,
            radius_m: i.radius_m,
            status: i.status,
            territory_id: i.territory_id,
            address: i.address,
            attributes: i.attributes,
            footprint: i.footprint,
        }
    }
}

/// The coordinate system of a written outlet's `lat`/`lon` and `footprint`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CrsQuery {
    /// `wgs84` (default), `gcj02` (AMap/Gaode, Tencent) or `bd09` (Baidu): the body's `lat`/`lon`
    /// and `footprint` are converted to WGS-84 (with both `lat` and `lon` given); outside mainland
    /// China no shift applies. The outlet is stored and answered in WGS-84.
    #[param(pattern = "^(wgs84|gcj02|bd09)$")]
    crs: Option<String>,
}

/// Creates an outlet. Its territory is given or found by point-in-polygon and must be in your scope.
#[utoipa::path(post, path = "/outlets", tag = "outlets", params(CrsQuery), request_body = OutletInput, responses(
    (status = 201, body = Outlet), (status = 400, body = Problem, description = "An unknown `crs`"),
    (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_outlet(
    State(state): State<AppState>,
    auth: Can<p::WriteOutlets>,
    Query(q): Query<CrsQuery>,
    Json(input): Json<OutletInput>,
) -> Result<(StatusCode, Json<Outlet>), ApiError> {
    let input = input.into_input(crs_of(q.crs.as_deref())?);
    let outlet = app::outlets::create(&state.db, &auth.caller(), input).await?;
    Ok((StatusCode::CREATED, Json(outlet)))
}

/// Changes an outlet; a new lat/lon re-pins it (the old location stays in its history).
#[utoipa::path(patch, path = "/outlets/{id}", tag = "outlets", params(CrsQuery), request_body = OutletInput, responses(
    (status = 200, body = Outlet), (status = 400, body = Problem, description = "An unknown `crs`"),
    (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem),
    (status = 409, body = Problem, description = "The new code is another outlet's")))]
async fn update_outlet(
    State(state): State<AppState>,
    auth: Can<p::WriteOutlets>,
    Path(id): Path<i64>,
    Query(q): Query<CrsQuery>,
    Json(input): Json<OutletInput>,
) -> Result<Json<Outlet>, ApiError> {
    let input = input.into_input(crs_of(q.crs.as_deref())?);
    Ok(Json(app::outlets::update(&state.db, &auth.caller(), id, input).await?))
}

/// The org's tier policies.
#[utoipa::path(get, path = "/tier-policies", tag = "tier-policies", responses((status = 200, body = Vec<TierPolicy>)))]
async fn list_tiers(
    State(state): State<AppState>,
    auth: Can<p::ReadTierPolicies>,
) -> Result<Json<Vec<TierPolicy>>, ApiError> {
    Ok(Json(db::tiers::list(&state.db, auth.org_id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
/// The ranges are the database's CHECK constraints (`tier_policies_*`, migrations/0001).
struct TierInput {
    #[schema(minimum = 1)]
    required_visits: i32,
    #[schema(minimum = 1, maximum = 366)]
    cycle_days: i32,
    #[schema(minimum = 0, maximum = 86400)]
    min_dwell_s: i32,
    /// Metres; stored in single precision, so at least its smallest normal value (1.2e-38).
    #[schema(minimum = 1.175_494_4e-38, maximum = 5000)]
    default_radius_m: f32,
}

/// Creates or replaces the policy of one tier; an org holds at most 100 tiers
/// (`domain::outlet::MAX_TIERS`).
#[utoipa::path(put, path = "/tier-policies/{tier}", tag = "tier-policies", request_body = TierInput,
    params(("tier" = String, Path, description = "1-16 letters, digits or `_ + -`", pattern = "^[A-Za-z0-9_+-]{1,16}$")),
    responses(
    (status = 200, body = TierPolicy), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_tier(
    State(state): State<AppState>,
    auth: Can<p::WriteTierPolicies>,
    Path(tier): Path<String>,
    Json(input): Json<TierInput>,
) -> Result<Json<TierPolicy>, ApiError> {
    let policy = TierPolicy {
        tier,
        required_visits: input.required_visits,
        cycle_days: input.cycle_days,
        min_dwell_s: input.min_dwell_s,
        default_radius_m: input.default_radius_m,
    };
    Ok(Json(app::outlets::put_tier(&state.db, &auth.caller(), &policy).await?))
}
