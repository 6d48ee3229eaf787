//! Map layers as RFC 7946 GeoJSON (`application/geo+json`), each limited to the caller's scope and
//! to a bounding box, capped with an honest `truncated`, with an `ETag` (`If-None-Match` answers
//! 304) and gzip or brotli when the client accepts it: outlets with their status for a period,
//! H3 coverage hexagons with their figures, territories simplified for a zoom level, visits with
//! their verdict, the reps' tracks and planned routes of a day.

use super::AppState;
use super::auth::{Can, p};
use super::coverage::{channel_type_param, resolution, status_param};
use super::error::{ApiError, Problem};
use super::extract::{Query, int_range};
use crate::app::coverage::{OutletStatusRow, StatusFilter, statuses, tallies};
use crate::db;
use crate::domain::coverage::{CellFigures, PeriodStatus};
use crate::domain::layers::{self, CellFeature, PointFeature, TypedCollection, collection, feature};
use crate::domain::outlet::ChannelType;
use crate::domain::territory::multipolygon;
use crate::domain::visit::Verdict;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower_http::compression::CompressionLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(outlets_layer))
        .routes(routes!(coverage_layer))
        .routes(routes!(territories_layer))
        .routes(routes!(visits_layer))
        .routes(routes!(tracks_layer))
        .routes(routes!(routes_layer))
        .layer(CompressionLayer::new())
}

/// GeoJSON (RFC 7946) media type.
const GEO_JSON: &str = "application/geo+json";

/// Features a layer returns unless asked for fewer (at most [`MAX_FEATURES`]).
const DEFAULT_FEATURES: usize = 5_000;
const MAX_FEATURES: usize = 50_000;

/// A bounding box `min_lon,min_lat,max_lon,max_lat`; `min_lon > max_lon` crosses the antimeridian.
#[derive(Debug, Clone, Copy)]
struct BBox([f64; 4]);

impl BBox {
    fn parse(text: Option<&str>) -> Result<Option<BBox>, ApiError> {
        let Some(text) = text else { return Ok(None) };
        layers::parse_bbox(text).map(|b| Some(BBox(b))).ok_or_else(|| {
            ApiError::field(
                "bbox",
                "expected `min_lon,min_lat,max_lon,max_lat` in degrees (min_lat <= max_lat; min_lon > max_lon crosses the antimeridian)",
            )
        })
    }

    fn contains(&self, lat: f64, lon: f64) -> bool {
        let [w, s, e, n] = self.0;
        (s..=n).contains(&lat) && if w <= e { (w..=e).contains(&lon) } else { lon >= w || lon <= e }
    }

    /// Whether the box `[w, s, e, n]` (not crossing the antimeridian) meets this one.
    fn meets(&self, other: [f64; 4]) -> bool {
        let [w, s, e, n] = self.0;
        let lat_ok = other[1] <= n && other[3] >= s;
        let lon_ok = if w <= e { other[0] <= e && other[2] >= w } else { other[2] >= w || other[0] <= e };
        lat_ok && lon_ok
    }
}

fn limit_of(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_FEATURES);
    if (1..=MAX_FEATURES).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::field("limit", format!("must be from 1 to {MAX_FEATURES}")))
    }
}

/// The features up to `limit`, and whether there were more.
fn capped(mut features: Vec<Value>, limit: usize) -> Value {
    let truncated = features.len() > limit;
    features.truncate(limit);
    collection(features, truncated)
}

/// The layer as `application/geo+json` with a weak `ETag` of its content; 304 when the client
/// already holds it (`If-None-Match`).
fn reply(headers: &HeaderMap, body: &Value) -> Response {
    reply_bytes(headers, body.to_string().into_bytes())
}

/// [`reply`] for a body already serialised.
fn reply_bytes(headers: &HeaderMap, bytes: Vec<u8>) -> Response {
    tagged(headers, GEO_JSON, bytes)
}

/// `bytes` as `content_type` with a weak `ETag` of them; 304 when the client holds it.
pub(super) fn tagged(headers: &HeaderMap, content_type: &'static str, bytes: Vec<u8>) -> Response {
    let digest = Sha256::digest(&bytes);
    // Weak: the same content is served plain, gzip or br (RFC 9110 8.8.1).
    let tag = format!("\"{}\"", hex::encode(&digest[..16]));
    let held = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == tag || t == "*");
    let etag = HeaderValue::from_str(&format!("W/{tag}")).unwrap_or_else(|_| HeaderValue::from_static("W/\"\""));
    let vary = (header::VARY, HeaderValue::from_static("accept-encoding"));
    if held {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag), vary]).into_response();
    }
    ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type)), (header::ETAG, etag), vary], bytes)
        .into_response()
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OutletsLayerQuery {
    /// First local day of the period (YYYY-MM-DD); default today.
    from: Option<NaiveDate>,
    /// Last local day, inclusive; default `from`.
    to: Option<NaiveDate>,
    /// `min_lon,min_lat,max_lon,max_lat`.
    bbox: Option<String>,
    /// Only outlets with this status at the end of the period.
    #[param(value_type = Option<PeriodStatus>)]
    status: Option<String>,
    tier: Option<String>,
    channel_type: Option<String>,
    /// Most features (1-50,000, default 5,000); beyond it the collection says `truncated`.
    #[param(schema_with = int_range::<1, { MAX_FEATURES as i64 }>)]
    limit: Option<usize>,
}

/// The outlet layer's GeoJSON: the first `limit` rows as points with what the map shows of each,
/// whether more were found, and the period.
fn outlets_body(
    rows: &[OutletStatusRow],
    limit: usize,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<Vec<u8>, ApiError> {
    let truncated = rows.len() > limit;
    let features: Vec<PointFeature<OutletProperties>> = rows
        .iter()
        .take(limit)
        .map(|o| {
            let properties = OutletProperties {
                code: &o.code,
                name: &o.name,
                tier: &o.tier,
                channel_type: o.channel_type,
                status: o.status,
                last_valid_visit: o.last_valid_visit,
                valid_visits: o.valid_visits,
                required_visits: o.required_visits,
            };
            PointFeature::new(o.outlet_id, o.lat, o.lon, properties)
        })
        .collect();
    let body = TypedCollection::new(&features, truncated, json!({"period": {"from": from, "to": to}}));
    let mut bytes = Vec::with_capacity(256 + features.len() * 320);
    serde_json::to_writer(&mut bytes, &body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(bytes)
}

/// The outlets of the caller's scope registered by the end of the period, as Points with their
/// status then (`visited`, `due`, `overdue`, `never_visited`, `closed`, as in the outlet-status
/// list), last valid visit, valid visits in the period and visits required in it; by outlet id.
#[utoipa::path(get, path = "/layers/outlets", tag = "layers", params(OutletsLayerQuery), responses(
    (status = 200, description = "FeatureCollection", content_type = "application/geo+json", body = Object),
    (status = 304), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn outlets_layer(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    headers: HeaderMap,
    Query(q): Query<OutletsLayerQuery>,
) -> Result<Response, ApiError> {
    let bbox = BBox::parse(q.bbox.as_deref())?;
    let limit = limit_of(q.limit)?;
    let wanted = status_param(q.status.as_deref())?;
    let (from, to) =
        super::compliance::period(&state, &auth, &super::visits::VisitsQuery { from: q.from, to: q.to }).await?;
    let rows = match channel_type_param(q.channel_type.as_deref()) {
        Ok(channel_type) => {
            let filter = StatusFilter {
                bbox: bbox.map(|b| b.0),
                tier: q.tier.as_deref(),
                channel_type,
                status: wanted,
                limit,
                counts_only: false,
                ids: None,
            };
            statuses(state.read_stores(), auth.org_id, auth.scope_root(), (from, to), filter).await?.rows
        }
        // A channel type that does not exist: no outlet has it.
        Err(()) => Vec::new(),
    };
    let bytes = outlets_body(&rows, limit, (from, to))?;
    Ok(reply_bytes(&headers, bytes))
}

/// What the outlet layer says of an outlet.
#[derive(Serialize)]
struct OutletProperties<'a> {
    code: &'a str,
    name: &'a str,
    tier: &'a str,
    channel_type: ChannelType,
    status: PeriodStatus,
    last_valid_visit: Option<NaiveDate>,
    valid_visits: usize,
    required_visits: f64,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CoverageLayerQuery {
    /// First local day of the period (YYYY-MM-DD); default today.
    from: Option<NaiveDate>,
    /// Last local day, inclusive; default `from`.
    to: Option<NaiveDate>,
    /// H3 resolution 5-10 (default 8).
    #[param(minimum = 5, maximum = 10)]
    h3_res: Option<u8>,
    /// `min_lon,min_lat,max_lon,max_lat`: the cells whose centre lies in it.
    bbox: Option<String>,
    /// Most features (1-50,000, default 5,000); beyond it the collection says `truncated`.
    #[param(schema_with = int_range::<1, { MAX_FEATURES as i64 }>)]
    limit: Option<usize>,
}

/// The H3 cells holding outlets of U in the caller's scope, as Polygons with their outlet figures
/// for the period (coverage %, frequency and dwell compliance %) and `white_space`; in cell order.
#[utoipa::path(get, path = "/layers/coverage", tag = "layers", params(CoverageLayerQuery), responses(
    (status = 200, description = "FeatureCollection", content_type = "application/geo+json", body = Object),
    (status = 304), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn coverage_layer(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    headers: HeaderMap,
    Query(q): Query<CoverageLayerQuery>,
) -> Result<Response, ApiError> {
    let bbox = BBox::parse(q.bbox.as_deref())?;
    let limit = limit_of(q.limit)?;
    let res = resolution(q.h3_res)?;
    let (from, to) =
        super::compliance::period(&state, &auth, &super::visits::VisitsQuery { from: q.from, to: q.to }).await?;
    let root = auth.scope_root();
    // Only the outlets near the box can be in a cell centred in it.
    let near = bbox.map(|b| crate::domain::coverage::grown_by_cells(b.0, res));
    let cells = tallies(state.read_stores(), auth.org_id, root, (from, to), near, Some(res), false).await?.cells();
    let mut features: Vec<CellFeature<&CellFigures>> = cells
        .iter()
        .filter_map(|c| {
            let cell: h3o::CellIndex = c.cell.parse().ok()?;
            let centre = h3o::LatLng::from(cell);
            if bbox.is_some_and(|b| !b.contains(centre.lat(), centre.lng())) {
                return None;
            }
            Some(CellFeature::of_cell(cell, c))
        })
        .take(limit + 1)
        .collect();
    let truncated = features.len() > limit;
    features.truncate(limit);
    let extra = json!({"period": {"from": from, "to": to}, "h3_resolution": u8::from(res)});
    let body = TypedCollection::new(&features, truncated, extra);
    let mut bytes = Vec::with_capacity(256 + features.len() * 640);
    serde_json::to_writer(&mut bytes, &body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(reply_bytes(&headers, bytes))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TerritoriesLayerQuery {
    /// `min_lon,min_lat,max_lon,max_lat`: the territories whose boundary box meets it.
    bbox: Option<String>,
    /// Web map zoom (0-24): boundaries are simplified to half a pixel at it; absent = full detail.
    #[param(minimum = 0, maximum = 24)]
    zoom: Option<u8>,
    /// Most features (1-50,000, default 5,000); beyond it the collection says `truncated`.
    #[param(schema_with = int_range::<1, { MAX_FEATURES as i64 }>)]
    limit: Option<usize>,
}

/// The territories of the caller's scope that have a boundary, as `MultiPolygons` (exterior rings
/// counter-clockwise), simplified for `zoom`, with code, name, level and parent; by id.
#[utoipa::path(get, path = "/layers/territories", tag = "layers", params(TerritoriesLayerQuery), responses(
    (status = 200, description = "FeatureCollection", content_type = "application/geo+json", body = Object),
    (status = 304), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn territories_layer(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    headers: HeaderMap,
    Query(q): Query<TerritoriesLayerQuery>,
) -> Result<Response, ApiError> {
    let bbox = BBox::parse(q.bbox.as_deref())?;
    let limit = limit_of(q.limit)?;
    if q.zoom.is_some_and(|z| z > 24) {
        return Err(ApiError::field("zoom", "must be from 0 to 24"));
    }
    let tolerance = q.zoom.map(layers::tolerance_deg);
    let territories = db::territories::with_boundary_in(
        state.read_db(),
        auth.org_id,
        auth.scope_root(),
        bbox.map(|b| b.0),
        i64::try_from(limit + 1).unwrap_or(i64::MAX),
    )
    .await?;
    let features: Vec<Value> = territories
        .into_iter()
        .filter_map(|t| {
            let area = multipolygon(t.boundary.as_ref()?)?;
            Some(feature(
                t.id,
                layers::multipolygon_geometry(&area, tolerance),
                json!({"code": t.code, "name": t.name, "level": t.level, "parent_id": t.parent_id}),
            ))
        })
        .collect();
    Ok(reply(&headers, &capped(features, limit)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct VisitsLayerQuery {
    /// First rep-day (local date, YYYY-MM-DD); default today.
    from: Option<NaiveDate>,
    /// Last rep-day, inclusive; default `from`.
    to: Option<NaiveDate>,
    /// `min_lon,min_lat,max_lon,max_lat`.
    bbox: Option<String>,
    /// Only visits with this verdict (`verified`, `short`, `unverified`, `suspect`).
    #[param(value_type = Option<Verdict>)]
    verdict: Option<String>,
    /// Only this rep's visits.
    rep_id: Option<i64>,
    /// Most features (1-50,000, default 5,000); beyond it the collection says `truncated`.
    #[param(schema_with = int_range::<1, { MAX_FEATURES as i64 }>)]
    limit: Option<usize>,
}

/// A visit of the visits layer as a GeoJSON point feature.
fn visit_feature(v: &db::layers::LayerVisit) -> Value {
    feature(
        v.id,
        layers::point_geometry(v.lat, v.lon),
        json!({
            "rep_id": v.rep_id, "rep_login": v.rep_login, "outlet_id": v.outlet_id,
            "outlet_code": v.outlet_code, "rep_day": v.rep_day, "arrival": v.arrival,
            "departure": v.departure, "dwell_s": v.dwell_s, "verdict": v.verdict,
            "risk_score": v.risk_score, "review": v.review,
        }),
    )
}

/// The `verdict` filter of a request, if any.
fn verdict_param(verdict: Option<&str>) -> Result<Option<Verdict>, ApiError> {
    verdict
        .map(str::parse::<Verdict>)
        .transpose()
        .map_err(|_| ApiError::field("verdict", "must be one of verified, short, unverified, suspect"))
}

/// The visits of the reps in the caller's scope, as Points at the mean position of their fixes,
/// with outlet, rep, arrival, departure, dwell, verdict, risk score and the latest review; by id.
#[utoipa::path(get, path = "/layers/visits", tag = "layers", params(VisitsLayerQuery), responses(
    (status = 200, description = "FeatureCollection", content_type = "application/geo+json", body = Object),
    (status = 304), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn visits_layer(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    headers: HeaderMap,
    Query(q): Query<VisitsLayerQuery>,
) -> Result<Response, ApiError> {
    let bbox = BBox::parse(q.bbox.as_deref())?;
    let limit = limit_of(q.limit)?;
    let verdict = verdict_param(q.verdict.as_deref())?;
    if let Some(rep_id) = q.rep_id {
        super::tracks::visible_rep(&state, &auth, rep_id).await?;
    }
    let (from, to) =
        super::compliance::period(&state, &auth, &super::visits::VisitsQuery { from: q.from, to: q.to }).await?;
    let filter = db::layers::VisitFilter {
        scope_root: auth.scope_root(),
        from,
        to,
        verdict,
        rep_id: q.rep_id,
        bbox: bbox.map(|b| b.0),
        limit: i64::try_from(limit + 1).unwrap_or(i64::MAX),
    };
    let features: Vec<Value> =
        db::layers::visits(state.read_db(), auth.org_id, &filter).await?.iter().map(visit_feature).collect();
    let mut body = capped(features, limit);
    body["period"] = json!({"from": from, "to": to});
    Ok(reply(&headers, &body))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DayLayerQuery {
    /// The local day (YYYY-MM-DD); default today.
    date: Option<NaiveDate>,
    /// Only this rep.
    rep_id: Option<i64>,
    /// Web map zoom (0-24): lines are simplified to half a pixel at it; absent = every fix.
    #[param(minimum = 0, maximum = 24)]
    zoom: Option<u8>,
    /// `min_lon,min_lat,max_lon,max_lat`: the lines whose box meets it.
    bbox: Option<String>,
    /// Most features (1-50,000, default 5,000); beyond it the collection says `truncated`.
    #[param(schema_with = int_range::<1, { MAX_FEATURES as i64 }>)]
    limit: Option<usize>,
}

/// The checked parameters of a day layer: bbox, limit, tolerance and the day.
async fn day_layer(
    state: &AppState,
    auth: &super::auth::Principal,
    q: &DayLayerQuery,
) -> Result<(Option<BBox>, usize, Option<f64>, NaiveDate), ApiError> {
    let bbox = BBox::parse(q.bbox.as_deref())?;
    let limit = limit_of(q.limit)?;
    if q.zoom.is_some_and(|z| z > 24) {
        return Err(ApiError::field("zoom", "must be from 0 to 24"));
    }
    if let Some(rep_id) = q.rep_id {
        super::tracks::visible_rep(state, auth, rep_id).await?;
    }
    let (day, _) =
        super::compliance::period(state, auth, &super::visits::VisitsQuery { from: q.date, to: q.date }).await?;
    Ok((bbox, limit, q.zoom.map(layers::tolerance_deg), day))
}

/// A rep's line being built: rep id, login, (lat, lon) positions.
type RepLine = (i64, String, Vec<(f64, f64)>);

/// One line per rep, from `(rep_id, login, lat, lon)` rows in rep order, as features whose box
/// meets `bbox`.
fn lines(
    rows: impl IntoIterator<Item = (i64, String, f64, f64)>,
    bbox: Option<BBox>,
    tolerance: Option<f64>,
    properties: impl Fn(i64, &str, usize) -> Value,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut current: Option<RepLine> = None;
    let flush = |c: Option<RepLine>, out: &mut Vec<Value>| {
        let Some((rep, login, points)) = c else { return };
        if points.len() < 2 {
            return;
        }
        let (mut w, mut s, mut e, mut n) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for &(lat, lon) in &points {
            (w, s, e, n) = (w.min(lon), s.min(lat), e.max(lon), n.max(lat));
        }
        if bbox.is_some_and(|b| !b.meets([w, s, e, n])) {
            return;
        }
        out.push(feature(rep, layers::line_geometry(&points, tolerance), properties(rep, &login, points.len())));
    };
    for (rep, login, lat, lon) in rows {
        match current.as_mut() {
            Some(c) if c.0 == rep => c.2.push((lat, lon)),
            _ => {
                flush(current.take(), &mut out);
                current = Some((rep, login, vec![(lat, lon)]));
            }
        }
    }
    flush(current, &mut out);
    out
}

/// The tracks of a local day of the reps in the caller's scope: one `LineString` per rep through
/// their fixes in time order (fixes flagged as speed jumps left out), simplified for `zoom`; by
/// rep id.
#[utoipa::path(get, path = "/layers/tracks", tag = "layers", params(DayLayerQuery), responses(
    (status = 200, description = "FeatureCollection", content_type = "application/geo+json", body = Object),
    (status = 304), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn tracks_layer(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    headers: HeaderMap,
    Query(q): Query<DayLayerQuery>,
) -> Result<Response, ApiError> {
    let (bbox, limit, tolerance, day) = day_layer(&state, &auth, &q).await?;
    let fixes = db::layers::track_fixes(state.read_db(), auth.org_id, auth.scope_root(), day, q.rep_id).await?;
    let subjects: std::collections::BTreeSet<i64> = fixes.iter().map(|f| f.rep_id).collect();
    let bounds = db::visits::day_bounds(state.read_db(), auth.org_id, day).await?;
    let blur = super::privacy::HomeBlur::for_reader(&state, &auth, subjects.iter().copied(), Some(bounds)).await?;
    super::audit::record_access(&state, &auth, subjects, "tracks_layer", json!({"date": day})).await?;
    let mut fixes = fixes;
    blur.retain_by_rep(
        &mut fixes,
        |f| f.rep_id,
        |f| crate::domain::privacy::BlurFix::new(f.fix_time, f.lat, f.lon, None, false, f.flags),
    );
    let rows = fixes
        .into_iter()
        .filter(|f| f.flags & crate::domain::ping::flags::SPEED_JUMP == 0)
        .map(|f| (f.rep_id, f.rep_login, f.lat, f.lon));
    let features = lines(
        rows,
        bbox,
        tolerance,
        |rep, login, n| json!({"rep_id": rep, "rep_login": login, "date": day, "fix_count": n}),
    );
    let mut body = capped(features.into_iter().take(limit + 1).collect(), limit);
    body["date"] = json!(day);
    Ok(reply(&headers, &body))
}

/// The planned routes of a local day of the reps in the caller's scope: one `LineString` per rep
/// through their planned outlets in route order, with the stops' outlet ids; by rep id.
#[utoipa::path(get, path = "/layers/routes", tag = "layers", params(DayLayerQuery), responses(
    (status = 200, description = "FeatureCollection", content_type = "application/geo+json", body = Object),
    (status = 304), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn routes_layer(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    headers: HeaderMap,
    Query(q): Query<DayLayerQuery>,
) -> Result<Response, ApiError> {
    let (bbox, limit, tolerance, day) = day_layer(&state, &auth, &q).await?;
    for rep in db::layers::planned_reps(&state.db, auth.org_id, auth.scope_root(), day, q.rep_id).await? {
        db::plans::materialize_recurring(&state.db, auth.org_id, rep, day, day).await?;
    }
    let stops = db::layers::route_stops(&state.db, auth.org_id, auth.scope_root(), day, q.rep_id).await?;
    let mut outlets: std::collections::HashMap<i64, Vec<i64>> = std::collections::HashMap::new();
    for s in &stops {
        outlets.entry(s.rep_id).or_default().push(s.outlet_id);
    }
    let rows = stops.into_iter().map(|s| (s.rep_id, s.rep_login, s.lat, s.lon));
    let features = lines(
        rows,
        bbox,
        tolerance,
        |rep, login, _| json!({"rep_id": rep, "rep_login": login, "date": day, "outlet_ids": outlets.get(&rep)}),
    );
    let mut body = capped(features.into_iter().take(limit + 1).collect(), limit);
    body["date"] = json!(day);
    Ok(reply(&headers, &body))
}
