//! A rep's raw pings (JSON) and track (GeoJSON, CSV or GPX; split at time gaps, optionally simplified).

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query, int_range, positive_up_to};
use super::privacy::HomeBlur;
use crate::db;
use crate::db::pings::{Ping, TrackPing};
use crate::domain::plan;
use crate::domain::privacy::BlurFix;
use crate::domain::track::{self, DEFAULT_MAX_GAP_S, MAX_SIMPLIFY_M};
use crate::domain::validation::FieldError;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Serialize};
use std::cmp::{Ordering, Reverse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rep_pings)).routes(routes!(rep_track))
}

/// Most pings one request returns.
const MAX_PINGS: i64 = 50_000;

/// Largest `max_gap_s`: one day.
const MAX_GAP_S_LIMIT: i64 = 86_400;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TrackQuery {
    /// A UTC day (YYYY-MM-DD); default today. Ignored when `from` and `to` are given.
    date: Option<NaiveDate>,
    /// Start of the period (RFC 3339), inclusive.
    from: Option<DateTime<Utc>>,
    /// End of the period (RFC 3339), exclusive.
    to: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Track {
    rep_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    pings: Vec<Ping>,
    /// True when the period held more than the returned pings.
    truncated: bool,
    /// Fixes left out because they are a day's first or last near the rep's declared home
    /// (home blurring; never for the rep's own reads).
    home_withheld: usize,
}

/// The period `[from, to)` of a track request: both bounds, or a UTC day (default today); at most 31 days.
fn period(
    date: Option<NaiveDate>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let (from, to) = match (from, to) {
        // The days the API takes; `to` is exclusive, so the last day's end (2101-01-01T00:00Z) is one.
        (Some(f), _) if !plan::instant_in_range(f) => {
            return Err(ApiError::field("from", "must be a time from 2000-01-01 to 2100-12-31 (UTC)"));
        }
        (_, Some(t)) if !plan::period_end_in_range(t) => {
            return Err(ApiError::field("to", "must be a time from 2000-01-01 to 2101-01-01 (UTC)"));
        }
        (Some(f), Some(t)) if t > f => (f, t),
        (Some(_), Some(_)) => return Err(ApiError::field("to", "must be after `from`")),
        (None, None) => {
            let day = date.unwrap_or_else(|| Utc::now().date_naive());
            // The one range of days the API takes (a far date would overflow the day's end).
            if !plan::date_in_range(day) {
                return Err(ApiError::field("date", "must be a date from 2000-01-01 to 2100-12-31"));
            }
            let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
            let end = start
                .checked_add_signed(chrono::Duration::days(1))
                .ok_or_else(|| ApiError::field("date", "must be a date from 2000-01-01 to 2100-12-31"))?;
            (start, end)
        }
        _ => return Err(ApiError::bad_request("give both `from` and `to`, or `date`")),
    };
    if to - from > chrono::Duration::days(31) {
        return Err(ApiError::field("to", "a track covers at most 31 days"));
    }
    Ok((from, to))
}

/// The rep `rep_id` of the caller's org (404 otherwise) if the caller may see their data (403 otherwise).
pub(super) async fn visible_rep(state: &AppState, auth: &Principal, rep_id: i64) -> Result<db::users::User, ApiError> {
    let rep =
        db::users::get(&state.db, auth.org_id, rep_id).await?.ok_or_else(|| ApiError::not_found("rep", rep_id))?;
    auth.check_rep(rep.id, rep.territory_path.as_deref())?;
    Ok(rep)
}

/// The pings of a rep's devices in a period, in fix-time order. Reps see only their own.
#[utoipa::path(get, path = "/reps/{id}/pings", tag = "tracks", params(TrackQuery), responses(
    (status = 200, body = Track), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn rep_pings(
    State(state): State<AppState>,
    auth: Can<p::ReadTracks>,
    Path(rep_id): Path<i64>,
    Query(q): Query<TrackQuery>,
) -> Result<Json<Track>, ApiError> {
    let rep = visible_rep(&state, &auth, rep_id).await?;
    let (from, to) = period(q.date, q.from, q.to)?;
    super::audit::record_access(&state, &auth, [rep.id], "pings", serde_json::json!({"from": from, "to": to})).await?;
    let devices = db::devices::ids_of_rep(&state.db, auth.org_id, rep.id).await?;
    let mut pings = db::pings::for_devices(&state.db, auth.org_id, &devices, from, to, MAX_PINGS + 1).await?;
    let truncated = pings.len() as i64 > MAX_PINGS;
    pings.truncate(MAX_PINGS as usize);
    let blur = HomeBlur::for_reader(&state, &auth, [rep.id], Some((from, to))).await?;
    let home_withheld =
        blur.retain(rep.id, &mut pings, |p| BlurFix::new(p.fix_time, p.lat, p.lon, p.accuracy_m, p.mock, 0));
    Ok(Json(Track { rep_id: rep.id, from, to, pings, truncated, home_withheld }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ShapeQuery {
    /// A UTC day (YYYY-MM-DD); default today. Ignored when `from` and `to` are given.
    date: Option<NaiveDate>,
    /// Start of the period (RFC 3339), inclusive.
    from: Option<DateTime<Utc>>,
    /// End of the period (RFC 3339), exclusive.
    to: Option<DateTime<Utc>>,
    /// `geojson`, `csv` or `gpx`; overrides the `Accept` header.
    #[param(pattern = "^(geojson|csv|gpx)$")]
    format: Option<String>,
    /// Douglas–Peucker tolerance in metres (0 < m <= 1000); absent: every ping.
    #[param(value_type = Option<f64>, schema_with = positive_up_to::<{ MAX_SIMPLIFY_M as u32 }>)]
    simplify_m: Option<String>,
    /// Consecutive pings further apart (seconds) start a new line segment (1-86400, default 600).
    #[param(value_type = Option<i64>, schema_with = int_range::<1, MAX_GAP_S_LIMIT>)]
    max_gap_s: Option<String>,
}

/// What the track is rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    GeoJson,
    Csv,
    Gpx,
}

impl Format {
    fn media_type(self) -> &'static str {
        match self {
            Format::GeoJson => "application/geo+json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Gpx => "application/gpx+xml",
        }
    }

    fn from_param(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "geojson" | "json" => Some(Format::GeoJson),
            "csv" => Some(Format::Csv),
            "gpx" => Some(Format::Gpx),
            _ => None,
        }
    }
}

/// Media types this endpoint makes, in order of preference.
const OFFERS: [(&str, &str, Format); 5] = [
    ("application", "geo+json", Format::GeoJson),
    ("application", "json", Format::GeoJson),
    ("application", "vnd.geo+json", Format::GeoJson),
    ("text", "csv", Format::Csv),
    ("application", "gpx+xml", Format::Gpx),
];

/// The format an `Accept` header asks for (RFC 9110 §12.5.1: each offer takes the quality of its most
/// specific matching range; highest quality wins, then specificity, then the client's order, then ours).
/// `None`: nothing this endpoint makes is acceptable. A missing or empty header means GeoJSON.
fn negotiate(accept: Option<&str>) -> Option<Format> {
    let accept = accept.map(str::trim).unwrap_or_default();
    if accept.is_empty() {
        return Some(Format::GeoJson);
    }
    // (type, subtype, quality) of each well-formed media range, in the client's order.
    let ranges: Vec<(String, String, f32)> = accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';');
            let (kind, sub) = parts.next()?.trim().split_once('/')?;
            let mut q = 1.0;
            for (k, v) in parts.filter_map(|param| param.split_once('=')) {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q))?;
                }
            }
            Some((kind.trim().to_ascii_lowercase(), sub.trim().to_ascii_lowercase(), q))
        })
        .collect();
    OFFERS
        .into_iter()
        .enumerate()
        .filter_map(|(rank, (kind, sub, format))| {
            let (specificity, pos, q) = ranges
                .iter()
                .enumerate()
                .filter_map(|(pos, (k, s, q))| {
                    let specificity = match (k.as_str(), s.as_str()) {
                        (k, s) if k == kind && s == sub => 2,
                        (k, "*") if k == kind => 1,
                        ("*", "*") => 0,
                        _ => return None,
                    };
                    Some((specificity, pos, *q))
                })
                .max_by_key(|(specificity, pos, _)| (*specificity, Reverse(*pos)))?;
            (q > 0.0).then_some(((q, specificity, Reverse(pos), Reverse(rank)), format))
        })
        // Qualities are finite (0..=1), so the comparison is total.
        .max_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal))
        .map(|(_, format)| format)
}

/// How the pings are drawn: gap threshold and optional simplification tolerance.
#[derive(Debug, Clone, Copy)]
struct Shape {
    max_gap_s: i64,
    simplify_m: Option<f64>,
}

impl Shape {
    /// Reads `simplify_m` and `max_gap_s`; every bad value is named in one 422.
    fn parse(q: &ShapeQuery) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        // An empty value is refused like any other non-number: the OpenAPI document says so.
        let simplify_m = match q.simplify_m.as_deref().map(str::trim) {
            None => None,
            Some(s) => match s.parse::<f64>() {
                Ok(m) if m > 0.0 && m <= MAX_SIMPLIFY_M => Some(m),
                _ => {
                    errors.push(FieldError::new(
                        "simplify_m",
                        format!("must be a number of metres greater than 0 and at most {MAX_SIMPLIFY_M}"),
                    ));
                    None
                }
            },
        };
        let max_gap_s = match q.max_gap_s.as_deref().map(str::trim) {
            None => DEFAULT_MAX_GAP_S,
            Some(s) => match s.parse::<i64>() {
                Ok(g) if (1..=MAX_GAP_S_LIMIT).contains(&g) => g,
                _ => {
                    errors.push(FieldError::new(
                        "max_gap_s",
                        format!("must be a whole number of seconds from 1 to {MAX_GAP_S_LIMIT}"),
                    ));
                    DEFAULT_MAX_GAP_S
                }
            },
        };
        if errors.is_empty() { Ok(Shape { max_gap_s, simplify_m }) } else { Err(ApiError::invalid(errors)) }
    }
}

/// The track of a rep's devices in a period as GeoJSON (default), CSV or GPX, chosen by `Accept` or
/// `format`. Lines are split where consecutive pings are more than `max_gap_s` apart (gaps are never
/// bridged) and, with `simplify_m`, simplified by Douglas–Peucker in metres (each segment keeps its
/// first and last ping). GeoJSON: per device a `LineString` (or `MultiLineString`) feature whose
/// `times` parallel its coordinates, `ping_count` = pings shown, `simplified_from` = pings before
/// simplification; then one `Point` feature per ping shown. At most 50,000 pings (the earliest) are
/// read: `truncated` (or the `x-truncated` header) tells when the period held more.
#[utoipa::path(get, path = "/reps/{id}/track", tag = "tracks", params(ShapeQuery), responses(
    (status = 200, description = "The track", content(
        (Object = "application/geo+json"), (String = "text/csv"), (String = "application/gpx+xml"))),
    (status = 403, body = Problem), (status = 404, body = Problem), (status = 406, body = Problem),
    (status = 422, body = Problem)))]
async fn rep_track(
    State(state): State<AppState>,
    auth: Can<p::ReadTracks>,
    Path(rep_id): Path<i64>,
    Query(q): Query<ShapeQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rep = visible_rep(&state, &auth, rep_id).await?;
    let (from, to) = period(q.date, q.from, q.to)?;
    let shape = Shape::parse(&q)?;
    let Some(format) = track_format(q.format.as_deref(), &headers)? else { return Ok(not_acceptable()) };
    let (pings, truncated, home_withheld) = read_track(&state, &auth, rep.id, (from, to)).await?;
    let meta = TrackMeta { rep_id: rep.id, from, to, shape, truncated, home_withheld };
    let body = tokio::task::spawn_blocking(move || render(format, &meta, &pings))
        .await
        .map_err(|e| ApiError::Internal(format!("track rendering failed: {e}")))??;
    Ok(track_response(format, body, rep.id, from, truncated, home_withheld))
}

/// The format asked for by `format=`, else by `Accept` (`None`: nothing acceptable).
fn track_format(param: Option<&str>, headers: &HeaderMap) -> Result<Option<Format>, ApiError> {
    if let Some(f) = param {
        let f = Format::from_param(f.trim())
            .ok_or_else(|| ApiError::field("format", "must be one of geojson, csv, gpx"))?;
        return Ok(Some(f));
    }
    // Several Accept headers read as one list; one that is not text matches nothing.
    let values: Vec<&str> = headers.get_all(header::ACCEPT).iter().map(|v| v.to_str().unwrap_or("\u{0}")).collect();
    let accept = (!values.is_empty()).then(|| values.join(","));
    Ok(negotiate(accept.as_deref()))
}

/// The pings of the rep's devices in `[from, to)` the reader may see (home fixes withheld), the
/// earliest `MAX_PINGS`; whether more were there, and how many were withheld. The read is in the
/// access log.
async fn read_track(
    state: &AppState,
    auth: &Principal,
    rep_id: i64,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<(Vec<TrackPing>, bool, usize), ApiError> {
    super::audit::record_access(state, auth, [rep_id], "track", serde_json::json!({"from": from, "to": to})).await?;
    let devices = db::devices::ids_of_rep(&state.db, auth.org_id, rep_id).await?;
    let mut pings = db::pings::track(&state.db, auth.org_id, &devices, from, to, MAX_PINGS + 1).await?;
    let truncated = pings.len() as i64 > MAX_PINGS;
    if truncated {
        // Rows are grouped by device: drop the one the time-ordered cut would have left out.
        let last = pings.iter().enumerate().max_by_key(|(_, p)| (p.fix_time, p.device_id)).map(|(i, _)| i);
        if let Some(i) = last {
            pings.remove(i);
        }
    }
    let blur = HomeBlur::for_reader(state, auth, [rep_id], Some((from, to))).await?;
    let home_withheld =
        blur.retain(rep_id, &mut pings, |p| BlurFix::new(p.fix_time, p.lat, p.lon, p.accuracy_m, p.mock, p.flags));
    Ok((pings, truncated, home_withheld))
}

/// The rendered track with its media type, a file name for CSV and GPX, and the truncation and
/// home-withheld headers.
fn track_response(
    format: Format,
    body: Vec<u8>,
    rep_id: i64,
    from: DateTime<Utc>,
    truncated: bool,
    home_withheld: usize,
) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
    h.insert(header::VARY, HeaderValue::from_static("accept"));
    let extension = match format {
        Format::GeoJson => None,
        Format::Csv => Some("csv"),
        Format::Gpx => Some("gpx"),
    };
    if let Some(ext) = extension {
        let day = if from.num_seconds_from_midnight() == 0 && from.nanosecond() == 0 {
            from.format("%Y-%m-%d").to_string()
        } else {
            from.format("%Y-%m-%dT%H%M%SZ").to_string()
        };
        let disposition = format!("attachment; filename=\"rep-{rep_id}-{day}.{ext}\"");
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    if truncated {
        h.insert("x-truncated", HeaderValue::from_static("true"));
    }
    h.insert("x-home-withheld", HeaderValue::from(home_withheld));
    res
}

/// 406 problem: the `Accept` header names nothing this endpoint makes.
fn not_acceptable() -> Response {
    let mut problem = Problem::new(
        StatusCode::NOT_ACCEPTABLE,
        "acceptable: application/geo+json, application/json, text/csv, application/gpx+xml (or use `format`)",
    );
    "/problems/not-acceptable".clone_into(&mut problem.kind);
    problem.into_response()
}

/// What every rendering states besides the pings.
struct TrackMeta {
    rep_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    shape: Shape,
    truncated: bool,
    home_withheld: usize,
}

/// One device's pings and the indices kept per gap-separated segment.
struct DeviceTrack<'a> {
    device_id: i64,
    pings: &'a [TrackPing],
    segments: Vec<Vec<usize>>,
}

impl DeviceTrack<'_> {
    fn kept(&self) -> impl Iterator<Item = &TrackPing> {
        self.segments.iter().flatten().map(|&i| &self.pings[i])
    }
}

/// Splits pings (grouped by device, fix-time order) into per-device tracks and shapes each.
fn device_tracks(pings: &[TrackPing], shape: Shape) -> Vec<DeviceTrack<'_>> {
    let max_gap = chrono::Duration::seconds(shape.max_gap_s);
    pings
        .chunk_by(|a, b| a.device_id == b.device_id)
        .map(|run| {
            let times: Vec<DateTime<Utc>> = run.iter().map(|p| p.fix_time).collect();
            let points: Vec<(f64, f64)> = run.iter().map(|p| (p.lat, p.lon)).collect();
            DeviceTrack {
                device_id: run[0].device_id,
                pings: run,
                segments: track::shape(&times, &points, max_gap, shape.simplify_m),
            }
        })
        .collect()
}

fn render(format: Format, meta: &TrackMeta, pings: &[TrackPing]) -> Result<Vec<u8>, ApiError> {
    let tracks = device_tracks(pings, meta.shape);
    match format {
        Format::GeoJson => geojson(meta, &tracks),
        Format::Csv => csv(&tracks),
        Format::Gpx => gpx(meta, &tracks),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[derive(Serialize)]
struct FeatureCollection<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    rep_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max_gap_s: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    simplify_m: Option<f64>,
    truncated: bool,
    home_withheld: usize,
    features: Vec<Feature<'a>>,
}

#[derive(Serialize)]
struct Feature<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    geometry: Option<Geometry>,
    properties: Properties<'a>,
}

/// RFC 7946 geometries; positions are [lon, lat].
#[derive(Serialize)]
#[serde(tag = "type", content = "coordinates")]
enum Geometry {
    Point([f64; 2]),
    LineString(Vec<[f64; 2]>),
    MultiLineString(Vec<Vec<[f64; 2]>>),
}

#[derive(Serialize)]
#[serde(untagged)]
enum Properties<'a> {
    Line(LineProperties),
    Ping(PingProperties<'a>),
}

#[derive(Serialize)]
struct LineProperties {
    device_id: i64,
    rep_id: i64,
    /// Parallel to the coordinates (nested like them for a `MultiLineString`).
    times: Times,
    ping_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    simplified_from: Option<usize>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Times {
    Line(Vec<DateTime<Utc>>),
    Multi(Vec<Vec<DateTime<Utc>>>),
}

#[derive(Serialize)]
struct PingProperties<'a> {
    device_id: i64,
    fix_time: DateTime<Utc>,
    accuracy_m: Option<f32>,
    speed_mps: Option<f32>,
    heading_deg: Option<f32>,
    altitude_m: Option<f32>,
    battery_pct: Option<f32>,
    mock: bool,
    source: &'a str,
    flags: i32,
}

fn geojson(meta: &TrackMeta, tracks: &[DeviceTrack<'_>]) -> Result<Vec<u8>, ApiError> {
    let mut features = Vec::new();
    for t in tracks {
        // A lone ping between gaps is no line (RFC 7946 wants two positions); it stays a Point feature.
        let lines: Vec<&Vec<usize>> = t.segments.iter().filter(|s| s.len() >= 2).collect();
        let coords = |s: &Vec<usize>| s.iter().map(|&i| [t.pings[i].lon, t.pings[i].lat]).collect::<Vec<_>>();
        let times = |s: &Vec<usize>| s.iter().map(|&i| t.pings[i].fix_time).collect::<Vec<_>>();
        let (geometry, times) = match lines.as_slice() {
            [] => (None, Times::Line(Vec::new())),
            [one] => (Some(Geometry::LineString(coords(one))), Times::Line(times(one))),
            many => (
                Some(Geometry::MultiLineString(many.iter().map(|s| coords(s)).collect())),
                Times::Multi(many.iter().map(|s| times(s)).collect()),
            ),
        };
        let shown = t.segments.iter().map(Vec::len).sum();
        features.push(Feature {
            kind: "Feature",
            geometry,
            properties: Properties::Line(LineProperties {
                device_id: t.device_id,
                rep_id: meta.rep_id,
                times,
                ping_count: shown,
                simplified_from: meta.shape.simplify_m.map(|_| t.pings.len()),
            }),
        });
    }
    for t in tracks {
        for p in t.kept() {
            features.push(Feature {
                kind: "Feature",
                geometry: Some(Geometry::Point([p.lon, p.lat])),
                properties: Properties::Ping(PingProperties {
                    device_id: p.device_id,
                    fix_time: p.fix_time,
                    accuracy_m: p.accuracy_m,
                    speed_mps: p.speed_mps,
                    heading_deg: p.heading_deg,
                    altitude_m: p.altitude_m,
                    battery_pct: p.battery_pct,
                    mock: p.mock,
                    source: &p.source,
                    flags: p.flags,
                }),
            });
        }
    }
    let collection = FeatureCollection {
        kind: "FeatureCollection",
        rep_id: meta.rep_id,
        from: meta.from,
        to: meta.to,
        max_gap_s: meta.shape.max_gap_s,
        simplify_m: meta.shape.simplify_m,
        truncated: meta.truncated,
        home_withheld: meta.home_withheld,
        features,
    };
    serde_json::to_vec(&collection).map_err(|e| ApiError::Internal(format!("track GeoJSON: {e}")))
}

/// Column order of the CSV export.
const CSV_HEADER: [&str; 12] = [
    "device_id",
    "fix_time",
    "lat",
    "lon",
    "accuracy_m",
    "speed_mps",
    "heading_deg",
    "altitude_m",
    "battery_pct",
    "mock",
    "source",
    "flags",
];

fn csv(tracks: &[DeviceTrack<'_>]) -> Result<Vec<u8>, ApiError> {
    let fail = |e: csv::Error| ApiError::Internal(format!("track CSV: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER).map_err(fail)?;
    let opt = |v: Option<f32>| v.map(|v| v.to_string()).unwrap_or_default();
    for p in tracks.iter().flat_map(DeviceTrack::kept) {
        w.write_record([
            p.device_id.to_string(),
            rfc3339(p.fix_time),
            p.lat.to_string(),
            p.lon.to_string(),
            opt(p.accuracy_m),
            opt(p.speed_mps),
            opt(p.heading_deg),
            opt(p.altitude_m),
            opt(p.battery_pct),
            p.mock.to_string(),
            p.source.clone(),
            p.flags.to_string(),
        ])
        .map_err(fail)?;
    }
    w.into_inner().map_err(|e| ApiError::Internal(format!("track CSV: {e}")))
}

fn gpx(meta: &TrackMeta, tracks: &[DeviceTrack<'_>]) -> Result<Vec<u8>, ApiError> {
    let mut times = gpx_times(tracks.iter().flat_map(DeviceTrack::kept).map(|p| p.fix_time))?.into_iter();
    let mut doc = gpx::Gpx {
        version: gpx::GpxVersion::Gpx11,
        creator: Some("fieldvisit".to_owned()),
        metadata: Some(gpx::Metadata {
            name: Some(format!("rep {} {}..{}", meta.rep_id, rfc3339(meta.from), rfc3339(meta.to))),
            ..gpx::Metadata::default()
        }),
        ..gpx::Gpx::default()
    };
    for t in tracks {
        let mut trk = gpx::Track { name: Some(format!("device {}", t.device_id)), ..gpx::Track::default() };
        for s in &t.segments {
            let mut seg = gpx::TrackSegment::new();
            for &i in s {
                let p = &t.pings[i];
                let mut point = gpx::Waypoint::new(geo::Point::new(p.lon, p.lat));
                point.elevation = p.altitude_m.map(f64::from);
                point.time = times.next();
                seg.points.push(point);
            }
            trk.segments.push(seg);
        }
        doc.tracks.push(trk);
    }
    let mut out = Vec::new();
    gpx::write(&doc, &mut out).map_err(|e| ApiError::Internal(format!("track GPX: {e}")))?;
    Ok(out)
}

/// The times as `gpx::Time` (a wrapper of `time::OffsetDateTime`), to the nanosecond.
fn gpx_times(times: impl Iterator<Item = DateTime<Utc>>) -> Result<Vec<gpx::Time>, ApiError> {
    times
        .map(|t| {
            let nanos = i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos());
            time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
                .map(gpx::Time::from)
                .map_err(|e| ApiError::Internal(format!("track GPX time {t}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_best_offer() {
        let cases: [(Option<&str>, Option<Format>); 14] = [
            (None, Some(Format::GeoJson)),
            (Some(""), Some(Format::GeoJson)),
            (Some("*/*"), Some(Format::GeoJson)),
            (Some("application/json"), Some(Format::GeoJson)),
            (Some("application/geo+json"), Some(Format::GeoJson)),
            (Some("text/csv"), Some(Format::Csv)),
            (Some("text/*"), Some(Format::Csv)),
            (Some("application/gpx+xml"), Some(Format::Gpx)),
            (Some("text/csv;q=0.5, application/gpx+xml"), Some(Format::Gpx)),
            (Some("text/csv, application/geo+json"), Some(Format::Csv)),
            (Some("text/csv;q=0, */*;q=0.1"), Some(Format::GeoJson)),
            (Some("image/png"), None),
            (Some("application/*;q=0, text/csv;q=0"), None),
            (Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"), Some(Format::GeoJson)),
        ];
        for (accept, want) in cases {
            assert_eq!(negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn malformed_accept_ranges_are_ignored() {
        assert_eq!(negotiate(Some("garbage, text/csv")), Some(Format::Csv));
        assert_eq!(negotiate(Some("text/csv;q=high")), None);
        assert_eq!(negotiate(Some("\u{0}")), None);
    }

    #[test]
    fn gpx_times_read_back_exactly() {
        let t = DateTime::parse_from_rfc3339("2024-05-01T08:00:01.250Z").expect("time").with_timezone(&Utc);
        let times = gpx_times([t, t + chrono::Duration::seconds(1)].into_iter()).expect("times");
        assert_eq!(times.len(), 2);
        let text = times[0].format().expect("format");
        assert_eq!(DateTime::parse_from_rfc3339(&text).expect("rfc 3339").with_timezone(&Utc), t);
    }
}
