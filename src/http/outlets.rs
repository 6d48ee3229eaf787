//! Outlets and tier policies.

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Page, Paged, Path, Query};
use super::people::audit;
use super::territories::{boundary_problem, territory_path};
use crate::db;
use crate::db::outlets::{Filter, LocationPeriod, Outlet, OutletFields, StatusChange};
use crate::domain::audit::AuditAction;
use crate::domain::outlet::{ChannelType, OutletStatus, TierPolicy, footprint_problem, validate_outlet};
use crate::domain::territory::multipolygon;
use crate::domain::validation::FieldError;
use axum::body::Bytes;
use axum::extract::State;
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
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OutletQuery {
    /// `min_lon,min_lat,max_lon,max_lat` (`min_lon > max_lon` crosses the antimeridian)
    bbox: Option<String>,
    /// `lat,lon`: only outlets within `radius` metres of this point (great-circle).
    near: Option<String>,
    /// Metres around `near` (default 1000, at most 100000).
    radius: Option<f64>,
    /// Territory id: outlets in it and below it.
    territory: Option<i64>,
    tier: Option<String>,
    channel_type: Option<String>,
    status: Option<String>,
    /// Text contained in the code or name.
    q: Option<String>,
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

async fn load(state: &AppState, who: &Principal, id: i64) -> Result<Outlet, ApiError> {
    let outlet = db::outlets::get(&state.db, who.org_id, id).await?.ok_or_else(|| ApiError::not_found("outlet", id))?;
    who.check_territory(outlet.territory_path.as_deref())?;
    Ok(outlet)
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
    let outlet = load(&state, &auth, id).await?;
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
    load(&state, &auth, id).await?;
    let mut conn = state.db.acquire().await?;
    let (locations, statuses) = db::outlets::history(&mut conn, auth.org_id, id).await?;
    Ok(Json(OutletHistory { outlet_id: id, locations, statuses }))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StatusReason {
    /// Why (kept in the audit log).
    reason: Option<String>,
}

/// The optional `{"reason": ...}` body of a status change (an empty body is fine).
fn reason(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: StatusReason = serde_json::from_slice(body)
        .map_err(|e| ApiError::Unprocessable { detail: format!("invalid body: {e}"), errors: Vec::new() })?;
    Ok(parsed.reason)
}

async fn set_status(
    state: &AppState,
    who: &Principal,
    id: i64,
    status: OutletStatus,
    reason: Option<String>,
) -> Result<Json<Outlet>, ApiError> {
    let cur = load(state, who, id).await?;
    let fields = OutletFields { status, ..OutletFields::from(cur) };
    db::outlets::update(&state.db, who.org_id, id, &fields, false).await?;
    audit(&state.db, who, AuditAction::outlet_status(status), "outlet", id, json!({ "reason": reason })).await?;
    Ok(Json(load(state, who, id).await?))
}

/// Closes an outlet (it leaves coverage from now on; its history stays).
#[utoipa::path(post, path = "/outlets/{id}/close", tag = "outlets", request_body = Option<StatusReason>, responses(
    (status = 200, body = Outlet), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn close_outlet(
    State(state): State<AppState>,
    auth: Can<p::WriteOutlets>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Outlet>, ApiError> {
    set_status(&state, &auth, id, OutletStatus::Closed, reason(&body)?).await
}

/// Suspends an outlet (temporarily not to be visited).
#[utoipa::path(post, path = "/outlets/{id}/suspend", tag = "outlets", request_body = Option<StatusReason>, responses(
    (status = 200, body = Outlet), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn suspend_outlet(
    State(state): State<AppState>,
    auth: Can<p::WriteOutlets>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Outlet>, ApiError> {
    set_status(&state, &auth, id, OutletStatus::Suspended, reason(&body)?).await
}

/// Makes a closed or suspended outlet active again.
#[utoipa::path(post, path = "/outlets/{id}/reopen", tag = "outlets", request_body = Option<StatusReason>, responses(
    (status = 200, body = Outlet), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn reopen_outlet(
    State(state): State<AppState>,
    auth: Can<p::WriteOutlets>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Outlet>, ApiError> {
    set_status(&state, &auth, id, OutletStatus::Active, reason(&body)?).await
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`), for PATCH.
#[allow(clippy::option_option)]
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A new outlet, or the fields of an outlet to change (PATCH: absent fields keep their value,
/// `null` clears `radius_m`, `address` and `territory_id`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(clippy::option_option)] // PATCH tells an absent field (keep) from `null` (clear).
struct OutletInput {
    code: Option<String>,
    name: Option<String>,
    channel_type: Option<String>,
    tier: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    /// Geofence radius in metres; omit (or `null` in a PATCH) to use the tier's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>)]
    radius_m: Option<Option<f64>>,
    status: Option<String>,
    /// Territory; omit to assign by point-in-polygon (`null` in a PATCH: assign by point-in-polygon again).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    territory_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    address: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    attributes: Option<serde_json::Value>,
    /// Outline of the premises: a GeoJSON Polygon or MultiPolygon within 2 km of the point (`null`
    /// in a PATCH removes it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    footprint: Option<Option<serde_json::Value>>,
}

fn required<T: Clone>(v: Option<&T>, field: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    if v.is_none() {
        errors.push(FieldError::new(field, "is required"));
    }
    v.cloned()
}

/// The state of an outlet a request asks for (a PATCH's fields merged over the stored ones), not
/// yet checked: its channel type and status are the text given.
struct Draft {
    code: String,
    name: String,
    channel_type: String,
    tier: String,
    lat: f64,
    lon: f64,
    radius_m: Option<f64>,
    status: String,
    territory_id: Option<i64>,
    address: Option<String>,
    attributes: serde_json::Value,
    footprint: Option<serde_json::Value>,
}

/// Validates the merged state and resolves the territory (given, or by point-in-polygon), which
/// must be within the caller's scope.
async fn finish(
    state: &AppState,
    who: &Principal,
    f: Draft,
    territory_given: bool,
    footprint_given: bool,
) -> Result<OutletFields, ApiError> {
    let mut errors = validate_outlet(&f.code, &f.name, &f.channel_type, &f.status, f.lat, f.lon, f.radius_m);
    if !f.attributes.is_object() {
        errors.push(FieldError::new("attributes", "must be a JSON object"));
    }
    // A footprint given now is judged whole; a stored one must still fit a moved point.
    if let Some(geometry) = &f.footprint
        && errors.is_empty()
    {
        let topology = if footprint_given { boundary_problem(state, geometry).await? } else { None };
        let problem = match topology {
            Some(reason) => Some(reason),
            None => multipolygon(geometry).and_then(|area| footprint_problem(f.lat, f.lon, &area)),
        };
        if let Some(reason) = problem {
            errors.push(FieldError::new("footprint", reason));
        }
    }
    // Both parse: `validate_outlet` found no error in them.
    let (Ok(channel_type), Ok(status), true) = (f.channel_type.parse(), f.status.parse(), errors.is_empty()) else {
        return Err(ApiError::invalid(errors));
    };
    let mut fields = OutletFields {
        code: f.code,
        name: f.name,
        channel_type,
        tier: f.tier,
        lat: f.lat,
        lon: f.lon,
        radius_m: f.radius_m,
        status,
        territory_id: f.territory_id,
        address: f.address,
        attributes: f.attributes,
        footprint: f.footprint,
    };
    if !territory_given {
        fields.territory_id = db::territories::locate(&state.db, who.org_id, fields.lat, fields.lon).await?;
    }
    let path = territory_path(state, who.org_id, fields.territory_id, "territory_id").await?;
    who.check_territory(path.as_deref())?;
    Ok(fields)
}

/// Creates an outlet. Its territory is given or found by point-in-polygon and must be in your scope.
#[utoipa::path(post, path = "/outlets", tag = "outlets", request_body = OutletInput, responses(
    (status = 201, body = Outlet), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_outlet(
    State(state): State<AppState>,
    auth: Can<p::WriteOutlets>,
    Json(input): Json<OutletInput>,
) -> Result<(StatusCode, Json<Outlet>), ApiError> {
    let mut errors = Vec::new();
    let code = required(input.code.as_ref(), "code", &mut errors);
    let name = required(input.name.as_ref(), "name", &mut errors);
    let channel_type = required(input.channel_type.as_ref(), "channel_type", &mut errors);
    let tier = required(input.tier.as_ref(), "tier", &mut errors);
    let lat = required(input.lat.as_ref(), "lat", &mut errors);
    let lon = required(input.lon.as_ref(), "lon", &mut errors);
    let (Some(code), Some(name), Some(channel_type), Some(tier), Some(lat), Some(lon)) =
        (code, name, channel_type, tier, lat, lon)
    else {
        return Err(ApiError::invalid(errors));
    };
    let draft = Draft {
        code,
        name,
        channel_type,
        tier,
        lat,
        lon,
        radius_m: input.radius_m.flatten(),
        status: input.status.unwrap_or_else(|| OutletStatus::Active.as_str().to_owned()),
        territory_id: input.territory_id.flatten(),
        address: input.address.flatten(),
        attributes: input.attributes.unwrap_or_else(|| json!({})),
        footprint: input.footprint.flatten(),
    };
    let territory_given = draft.territory_id.is_some();
    let fields = finish(&state, &auth, draft, territory_given, true).await?;
    let id = db::outlets::create(&state.db, auth.org_id, &fields).await?;
    audit(&state.db, &auth, AuditAction::OutletCreate, "outlet", id, json!({"code": fields.code})).await?;
    Ok((StatusCode::CREATED, Json(load(&state, &auth, id).await?)))
}

/// Changes an outlet; a new lat/lon re-pins it (the old location stays in its history).
#[utoipa::path(patch, path = "/outlets/{id}", tag = "outlets", request_body = OutletInput, responses(
    (status = 200, body = Outlet), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update_outlet(
    State(state): State<AppState>,
    auth: Can<p::WriteOutlets>,
    Path(id): Path<i64>,
    Json(input): Json<OutletInput>,
) -> Result<Json<Outlet>, ApiError> {
    let cur = load(&state, &auth, id).await?;
    let moved = input.lat.is_some() || input.lon.is_some();
    let footprint_changed = input.footprint.is_some();
    // An explicit territory wins; `null` or a move re-assigns by point-in-polygon.
    let territory_given = match input.territory_id {
        Some(t) => t.is_some(),
        None => !moved,
    };
    let draft = Draft {
        code: input.code.unwrap_or(cur.code),
        name: input.name.unwrap_or(cur.name),
        channel_type: input.channel_type.unwrap_or_else(|| cur.channel_type.to_string()),
        tier: input.tier.unwrap_or(cur.tier),
        lat: input.lat.unwrap_or(cur.lat),
        lon: input.lon.unwrap_or(cur.lon),
        radius_m: input.radius_m.unwrap_or(cur.radius_m.map(f64::from)),
        status: input.status.unwrap_or_else(|| cur.status.to_string()),
        territory_id: input.territory_id.unwrap_or(cur.territory_id),
        address: input.address.unwrap_or(cur.address),
        attributes: input.attributes.unwrap_or(cur.attributes),
        footprint: input.footprint.unwrap_or(cur.footprint),
    };
    let fields = finish(&state, &auth, draft, territory_given, footprint_changed).await?;
    db::outlets::update(&state.db, auth.org_id, id, &fields, footprint_changed).await?;
    audit(&state.db, &auth, AuditAction::OutletUpdate, "outlet", id, json!({"moved": moved})).await?;
    Ok(Json(load(&state, &auth, id).await?))
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
struct TierInput {
    required_visits: i32,
    cycle_days: i32,
    min_dwell_s: i32,
    default_radius_m: f32,
}

/// Creates or replaces the policy of one tier.
#[utoipa::path(put, path = "/tier-policies/{tier}", tag = "tier-policies", request_body = TierInput, responses(
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
    let saved = db::tiers::upsert(&state.db, auth.org_id, &policy).await?;
    audit(&state.db, &auth, AuditAction::TierPolicyPut, "tier_policy", &saved.tier, json!(saved)).await?;
    Ok(Json(saved))
}
