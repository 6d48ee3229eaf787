//! Ping ingestion: the native JSON/NDJSON API, OsmAnd / Traccar Client, OwnTracks HTTP and GPX
//! upload. Each handler decodes (`domain::protocols`), judges (`domain::ping_filter`) and hands the
//! pings to the ingest writer; it answers 2xx only after the commit that holds them.

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path};
use super::limits;
use crate::app;
use crate::app::ingest::IngestReport;
use crate::db;
use crate::db::devices::Sender;
use crate::domain::credentials::{hash_secret, verify_secret};
use crate::domain::ping::{Fix, Source};
use crate::domain::ping_filter::{DropReason, FilterPolicy};
use crate::domain::protocols::{MAX_DEVICE_KEY_CHARS, gpx, is_too_many_items, native, osmand, owntracks};
use crate::domain::validation::FieldError;
use crate::ingest::WriteError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Body limit of a batch (`/api/v1/pings`, `/owntracks`): 10,000 pings of up to ~800 bytes each
/// (a typical one is 150-300; `attributes` may be up to 4 KiB, in fewer items).
pub(crate) const BATCH_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Body limit of `/osmand`, whose device id may be inside the body: one position (Traccar Client
/// sends one JSON location of under 1 KiB per request, never a batch; OsmAnd a short form).
pub(crate) const OSMAND_BODY_BYTES: usize = 64 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_pings))
        .layer(DefaultBodyLimit::max(BATCH_BODY_BYTES))
        // A GPX backfill is a file upload: the global FV_BODY_LIMIT_BYTES, like the imports.
        .routes(routes!(post_gpx))
}

/// The phone-protocol endpoints, outside `/api/v1` (their paths are what the apps are told).
pub fn protocol_router() -> Router<AppState> {
    Router::new()
        .route("/osmand", get(osmand).post(osmand).layer(DefaultBodyLimit::max(OSMAND_BODY_BYTES)))
        .route("/owntracks", axum::routing::post(owntracks).layer(DefaultBodyLimit::max(BATCH_BODY_BYTES)))
}

/// The OsmAnd protocol at `/` for a separate Traccar-style port (5055): phones are configured with
/// just `http://host:5055`.
pub fn osmand_port_router() -> Router<AppState> {
    Router::new().route("/", get(osmand).post(osmand).layer(DefaultBodyLimit::max(OSMAND_BODY_BYTES)))
}

/// A body the decoder refuses whole: 413 for a batch of too many items, else 400.
fn undecodable(errors: Vec<FieldError>) -> ApiError {
    match errors.as_slice() {
        [one] if is_too_many_items(one) => ApiError::PayloadTooLarge(format!("{}: {}", one.field, one.reason)),
        _ => {
            let detail =
                errors.first().map_or_else(|| "undecodable body".to_owned(), |e| format!("{}: {}", e.field, e.reason));
            ApiError::BadRequest { detail, errors }
        }
    }
}

fn write_error(e: &WriteError) -> ApiError {
    let detail = match e {
        WriteError::CredentialRefused => return ApiError::Forbidden(e.to_string()),
        WriteError::QueueFull => format!("{e}; nothing was stored, retry the same request"),
        // A connection lost during the commit leaves its outcome unknown to us.
        WriteError::Database(_) => {
            format!("{e}; the pings were not acknowledged, retry the same request (a retry never stores a ping twice)")
        }
    };
    ApiError::RetryLater { detail, after_s: e.retry_after_s() }
}

/// Hands decoded fixes to the ingest use case; a write that cannot commit now is a 503.
async fn accept(
    state: &AppState,
    sender: &Sender,
    source: Source,
    fixes: Vec<(usize, Fix, i32)>,
    rejected: Vec<FieldError>,
) -> Result<IngestReport, ApiError> {
    app::ingest::accept(&state.ingest, &state.db, sender, source, fixes, rejected).await.map_err(|e| write_error(&e))
}

/// 422 when every item of the request is malformed. Items the filters drop are answered with
/// success: phone apps resend whatever was not answered 2xx, and a fix that will never be stored
/// would otherwise be resent forever (and hold back the app's queue behind it).
fn nothing_usable(report: &IngestReport) -> Option<ApiError> {
    report.nothing_usable().then(|| {
        let detail = match report.rejected.as_slice() {
            [one] => format!("item {}: {}: {}", one.index.unwrap_or(0), one.field, one.reason),
            many => format!("none of the {} items can be stored", crate::domain::validation::items_named(many)),
        };
        ApiError::Unprocessable { detail, errors: report.rejected.clone() }
    })
}

fn active(sender: Option<Sender>, what: &str) -> Result<Sender, ApiError> {
    let sender = sender.ok_or_else(|| ApiError::NotFound(format!("no device is registered with this {what}")))?;
    if !sender.active {
        return Err(ApiError::Forbidden("this device is deactivated".into()));
    }
    Ok(sender)
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The native format of a batch: by content type, else by its first character.
fn native_format(headers: &HeaderMap, body: &[u8]) -> Result<native::Format, ApiError> {
    Ok(match content_type(headers).as_str() {
        "application/json" => native::Format::JsonArray,
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/json-seq" => {
            native::Format::Ndjson
        }
        "" => {
            if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
                native::Format::JsonArray
            } else {
                native::Format::Ndjson
            }
        }
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "`{other}` is not accepted: send application/json (an array) or application/x-ndjson"
            )));
        }
    })
}

/// Stores a batch of pings of the calling device: a JSON array or NDJSON (one object per line), up
/// to 10,000 items (413 beyond, and beyond 8 MiB). Items that fail are listed with their index and reason, the others stored;
/// items the org's filters drop are counted in `dropped` and answered 200 like the rest (a retry
/// would never store them); 422 when every item is malformed. 503 + `Retry-After` when the pings cannot be committed now: nothing of
/// the request is stored then, and retrying the same request is safe (duplicates are recognised).
#[utoipa::path(post, path = "/pings", tag = "pings",
    request_body(content = String, description = "JSON array or NDJSON of pings", content_type = "application/json"),
    responses((status = 200, body = IngestReport), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
              (status = 422, body = Problem), (status = 503, body = Problem)))]
async fn post_pings(
    State(state): State<AppState>,
    auth: Can<p::IngestPings>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<IngestReport>, ApiError> {
    let device_id = auth.device_id().ok_or_else(|| ApiError::Forbidden("posting pings needs a device token".into()))?;
    let format = native_format(&headers, &body)?;
    let items = native::decode(&body, format).map_err(|e| undecodable(vec![e]))?;
    let sender = active(db::devices::sender(&state.db, auth.org_id, device_id).await?, "token")?;
    let (mut fixes, mut rejected) = (Vec::with_capacity(items.len()), Vec::new());
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Ok(item) => {
                if item.device_id.is_some_and(|id| id != device_id) {
                    return Err(ApiError::Forbidden(format!(
                        "item {index}: device_id {} is not the device of this token; nothing was stored",
                        item.device_id.unwrap_or_default()
                    )));
                }
                fixes.push((index, item.fix, 0));
            }
            Err(errors) => rejected.extend(errors.into_iter().map(|e| e.at(index))),
        }
    }
    let report = accept(&state, &sender, Source::Native, fixes, rejected).await?;
    if let Some(e) = nothing_usable(&report) {
        return Err(e);
    }
    Ok(Json(report))
}

/// Backfills a device's track from a GPX file (track points and waypoints with times). Admins and
/// managers, for devices of reps in their scope.
#[utoipa::path(post, path = "/devices/{id}/gpx", tag = "pings",
    request_body(content = String, description = "GPX 1.0/1.1", content_type = "application/gpx+xml"),
    responses((status = 200, body = IngestReport), (status = 400, body = Problem), (status = 403, body = Problem),
              (status = 404, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem),
              (status = 503, body = Problem)))]
async fn post_gpx(
    State(state): State<AppState>,
    auth: Can<p::ManageDevices>,
    Path(device_id): Path<i64>,
    body: Bytes,
) -> Result<Json<IngestReport>, ApiError> {
    let device = db::devices::get(&state.db, auth.org_id, device_id)
        .await?
        .ok_or_else(|| ApiError::not_found("device", device_id))?;
    auth.check_rep(device.rep_id, device.rep_territory_path.as_deref())?;
    let fixes = gpx::decode(&body)
        .map_err(|e| ApiError::BadRequest { detail: format!("{}: {}", e.field, e.reason), errors: vec![e] })?;
    let sender = active(db::devices::sender(&state.db, auth.org_id, device_id).await?, "id")?;
    let mut report = IngestReport { stored: 0, duplicates: 0, dropped: 0, rejected: Vec::new() };
    // In request-sized slices, so a long track does not hold the whole queue.
    for (chunk_no, chunk) in fixes.chunks(native::MAX_ITEMS).enumerate() {
        let base = chunk_no * native::MAX_ITEMS;
        let fixes = chunk.iter().cloned().enumerate().map(|(i, f)| (base + i, f, 0)).collect();
        let part = accept(&state, &sender, Source::Gpx, fixes, Vec::new()).await?;
        report.stored += part.stored;
        report.duplicates += part.duplicates;
        report.dropped += part.dropped;
        report.rejected.extend(part.rejected);
    }
    if let Some(e) = nothing_usable(&report) {
        return Err(e);
    }
    Ok(Json(report))
}

/// OsmAnd / Traccar Client: `id` (the device's secret OsmAnd id) and the position in the query
/// string, a form body, or the JSON body of the current app. 200 with an empty body when stored,
/// when the request carries no position (e.g. only cell towers) and when the org's filters drop
/// the position (as Traccar does: the app resends anything not answered 200, so a fix that will
/// never be stored would block its queue); 400 for an undecodable request, 404 for an unknown id,
/// 503 + Retry-After when it cannot be committed now.
async fn osmand(
    State(state): State<AppState>,
    counted: Option<Extension<limits::CredentialCounted>>,
    _known: OsmandQueryId,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (message, from_query) = match osmand_message(&uri, &headers, &body) {
        Ok(decoded) => decoded,
        Err(e) => return e.into_response(),
    };
    // An id the middleware could not see (in a JSON or form body) takes from its bucket here.
    if counted.is_none()
        && let Err(refused) = state.limits.take_osmand_id(&message.device_key)
    {
        return refused.into_response();
    }
    match osmand_deliver(&state, message, from_query).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

/// An OsmAnd id in the query string names an active device: checked before the body is read,
/// so a wrong id costs no body (a 404 or 403 however large the declared body). A request whose id
/// is only in its body (Traccar Client's JSON, a form), or whose query ids are malformed, passes
/// on to the handler, which reads the capped body and decodes (and refuses) it.
struct OsmandQueryId;

impl FromRequestParts<AppState> for OsmandQueryId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let params: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or_default()).unwrap_or_default();
        let ids: Vec<&str> =
            params.iter().filter(|(k, _)| k == "id" || k == "deviceid").map(|(_, v)| v.as_str()).collect();
        let Some(&id) = ids.first() else { return Ok(OsmandQueryId) };
        if ids.iter().any(|other| *other != id) || id.trim().is_empty() || id.chars().count() > MAX_DEVICE_KEY_CHARS {
            return Ok(OsmandQueryId);
        }
        osmand_sender(state, id, true).await.map(|_| OsmandQueryId).map_err(IntoResponse::into_response)
    }
}

/// The OsmAnd message of a request (query, form or Traccar Client JSON), and whether it came
/// from the query or a form (whose speeds are in the org's unit).
fn osmand_message(
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(osmand::Message, bool), ApiError> {
    let now = Utc::now();
    let bad = |errors: Vec<FieldError>| {
        let detail =
            errors.first().map_or_else(|| "undecodable request".to_owned(), |e| format!("{}: {}", e.field, e.reason));
        ApiError::BadRequest { detail, errors }
    };
    let mut params: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or_default())
        .map_err(|e| bad(vec![FieldError::new("query", format!("not a valid query string: {e}"))]))?;
    let ctype = content_type(headers);
    let from_query = !(ctype == "application/json" || (ctype.is_empty() && body.first() == Some(&b'{')));
    let message = if from_query {
        if ctype == "application/x-www-form-urlencoded" || (!body.is_empty() && params.is_empty()) {
            let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|e| bad(vec![FieldError::new("body", format!("not a valid form body: {e}"))]))?;
            params.extend(form);
        }
        osmand::decode_query(&params, osmand::SpeedUnit::default(), now).map_err(bad)?
    } else {
        osmand::decode_json(body, now).map_err(bad)?
    };
    Ok((message, from_query))
}

/// Stores the fix of an OsmAnd message (or checks the device of a heartbeat).
async fn osmand_deliver(state: &AppState, message: osmand::Message, from_query: bool) -> Result<(), ApiError> {
    let Some(fix) = message.fix else {
        // A heartbeat without a position: the device must still be known and active.
        osmand_sender(state, &message.device_key, true).await?;
        state.ingest.count_received(Source::Osmand, 1);
        state.ingest.count_drop(Source::Osmand, DropReason::NoPosition);
        return Ok(());
    };
    let sender = osmand_sender(state, &message.device_key, true).await?;
    let report = match osmand_accept(state, &sender, fix.clone(), from_query).await {
        // The cached credential went stale (rotated, moved to a reassigned device, deactivated):
        // forget it and judge the request once more against the database.
        Err(ApiError::Forbidden(_)) => {
            state.ingest.osmand_senders.forget(&message.device_key);
            let sender = osmand_sender(state, &message.device_key, false).await?;
            osmand_accept(state, &sender, fix, from_query).await?
        }
        other => other?,
    };
    match nothing_usable(&report) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The active device whose OsmAnd id is `key`, from this instance's cache when `cached` allows.
async fn osmand_sender(state: &AppState, key: &str, cached: bool) -> Result<Sender, ApiError> {
    if cached && let Some(s) = state.ingest.osmand_senders.get(key) {
        return active(Some(s), "id");
    }
    let found = db::devices::sender_by_osmand_id(&state.db, &hash_secret(key)).await?;
    if let Some(s) = found.as_ref().filter(|s| s.active) {
        state.ingest.osmand_senders.put(key.to_owned(), s.clone());
    }
    active(found, "id")
}

/// Accepts one OsmAnd fix, its speed read in the org's unit.
async fn osmand_accept(
    state: &AppState,
    sender: &Sender,
    mut fix: Fix,
    from_query: bool,
) -> Result<IngestReport, ApiError> {
    // Query-string speeds were read as knots; an org whose phones send another unit says so.
    let unit = FilterPolicy::from_settings(&sender.org_settings).map(|p| p.osmand_speed_unit).unwrap_or_default();
    if from_query && unit != osmand::SpeedUnit::Knots {
        let scale = unit.to_mps() / osmand::SpeedUnit::Knots.to_mps();
        fix.speed_mps = fix.speed_mps.map(|s| (f64::from(s) * scale) as f32);
    }
    accept(state, sender, Source::Osmand, vec![(0, fix, 0)], Vec::new()).await
}

/// OwnTracks HTTP mode: HTTP basic auth names the device, checked before the body is read;
/// `_type: location` payloads are stored, every other `_type` and empty bodies are ignored. The
/// reply is a JSON array (`[]`).
async fn owntracks(State(state): State<AppState>, OwnTracksDevice(sender): OwnTracksDevice, body: Bytes) -> Response {
    match owntracks_inner(&state, &sender, &body).await {
        Ok(commands) => (StatusCode::OK, Json(serde_json::Value::Array(commands))).into_response(),
        Err(e) => owntracks_error(e),
    }
}

/// An OwnTracks error; a 401 carries the Basic challenge.
fn owntracks_error(e: ApiError) -> Response {
    let challenge = matches!(e, ApiError::Unauthorized(_));
    let mut res = e.into_response();
    if challenge {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"fieldvisit\""));
    }
    res
}

/// The active device named by an OwnTracks request's HTTP basic auth. An extractor, so that it
/// runs before the body is read: a wrong password costs no body.
struct OwnTracksDevice(Sender);

impl FromRequestParts<AppState> for OwnTracksDevice {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        owntracks_sender(state, &parts.headers).await.map(OwnTracksDevice).map_err(owntracks_error)
    }
}

async fn owntracks_sender(state: &AppState, headers: &HeaderMap) -> Result<Sender, ApiError> {
    let (user, password) = basic_auth(headers)
        .ok_or_else(|| ApiError::Unauthorized("OwnTracks needs HTTP basic auth (device user and password)".into()))?;
    let sender = db::devices::sender_by_owntracks_user(&state.db, &user).await?;
    let sender = match sender {
        Some(s) if s.owntracks_password_hash.as_deref().is_some_and(|h| verify_secret(&password, h)) => s,
        _ => return Err(ApiError::Unauthorized("unknown OwnTracks user or wrong password".into())),
    };
    if !sender.active {
        return Err(ApiError::Forbidden("this device is deactivated".into()));
    }
    Ok(sender)
}

/// Stores the locations; returns the commands for the device (pending position requests).
async fn owntracks_inner(state: &AppState, sender: &Sender, body: &[u8]) -> Result<Vec<serde_json::Value>, ApiError> {
    let locations = owntracks::decode(body).map_err(undecodable)?;
    let commands = || async {
        let pending = db::position_requests::deliver(&state.db, sender.org_id, sender.id).await?;
        Ok::<_, ApiError>(
            pending.iter().map(|_| serde_json::json!({"_type": "cmd", "action": "reportLocation"})).collect::<Vec<_>>(),
        )
    };
    if locations.is_empty() {
        return commands().await;
    }
    // `t: r` answers a reportLocation request.
    let fixes = locations
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let flags = if l.trigger.as_deref() == Some("r") { crate::domain::ping::flags::REQUESTED } else { 0 };
            (i, l.fix, flags)
        })
        .collect();
    let report = accept(state, sender, Source::Owntracks, fixes, Vec::new()).await?;
    match nothing_usable(&report) {
        Some(e) => Err(e),
        None => commands().await,
    }
}

/// User and password of an `Authorization: Basic` header.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}
