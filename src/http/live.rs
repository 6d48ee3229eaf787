//! Live positions of the devices in the caller's scope: a Server-Sent Events stream and a JSON snapshot.
//! Both come from this process's ingest pipeline (the fixes it committed), not from the database.

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::Json;
use super::privacy::HomeBlur;
use crate::db;
use crate::ingest::LastFix;
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tower_http::services::fs::AsyncReadBody;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(live)).routes(routes!(live_positions))
}

/// A comment line is sent when nothing else was for this long (keeps proxies from closing the stream).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How often a stream re-checks the caller's token and the set of devices in scope.
const REFRESH: Duration = Duration::from_secs(60);

/// Devices listed per query while computing the scope.
const DEVICE_PAGE: i64 = 1000;

/// Bytes buffered between the stream task and the connection; a slower client makes the task wait
/// and, once the broadcast overtakes it, get a `lagged` event.
const BUFFER_BYTES: usize = 64 * 1024;

/// A device's newest known position.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
struct Position {
    device_id: i64,
    rep_id: i64,
    fix_time: DateTime<Utc>,
    lat: f64,
    lon: f64,
    accuracy_m: Option<f32>,
    speed_mps: Option<f32>,
    heading_deg: Option<f32>,
    battery_pct: Option<f32>,
    mock: bool,
    /// When the server received the fix.
    received_at: DateTime<Utc>,
}

impl Position {
    fn new(last: &LastFix, rep_id: i64) -> Self {
        let f = &last.fix;
        Position {
            device_id: last.device_id,
            rep_id,
            fix_time: f.fix_time,
            lat: f.lat,
            lon: f.lon,
            accuracy_m: f.accuracy_m,
            speed_mps: f.speed_mps,
            heading_deg: f.heading_deg,
            battery_pct: f.battery_pct,
            mock: f.mock,
            received_at: last.received_at,
        }
    }
}

/// Devices the caller may watch, device id -> rep id: a rep their own devices, everyone else the
/// devices of reps in their territory subtree (the whole org without a territory).
async fn visible_devices(state: &AppState, who: &Principal) -> Result<HashMap<i64, i64>, ApiError> {
    if let Some(rep) = who.own_rep() {
        // A rep, or a rep's device acting for them: the rep's own devices.
        let ids = db::devices::ids_of_rep(&state.db, who.org_id, rep).await?;
        return Ok(ids.into_iter().map(|d| (d, rep)).collect());
    }
    let mut out = HashMap::new();
    let mut after = 0;
    loop {
        let page = db::devices::list(&state.db, who.org_id, who.scope_root(), after, DEVICE_PAGE).await?;
        out.extend(page.iter().map(|d| (d.id, d.rep_id)));
        match page.last() {
            Some(last) if page.len() as i64 == DEVICE_PAGE => after = last.id,
            _ => return Ok(out),
        }
    }
}

/// The last known positions of the visible devices, by device id; positions in a rep's home zone
/// are left out when `blur` says so.
fn snapshot(state: &AppState, org_id: i64, visible: &HashMap<i64, i64>, blur: &HomeBlur) -> Vec<Position> {
    let mut out: Vec<Position> = state
        .ingest
        .last_fixes(org_id)
        .iter()
        .filter_map(|l| visible.get(&l.device_id).map(|rep| Position::new(l, *rep)))
        .filter(|p| !blur.hides_live(p.rep_id, p.lat, p.lon))
        .collect();
    out.sort_by_key(|p| p.device_id);
    out
}

/// The last known position of every device in the caller's scope that this server has received a
/// fix from since it started (the same data a new `/live` stream starts with).
#[utoipa::path(get, path = "/live/positions", tag = "live", responses(
    (status = 200, body = [Position]), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn live_positions(
    State(state): State<AppState>,
    auth: Can<p::ReadTracks>,
) -> Result<Json<Vec<Position>>, ApiError> {
    let visible = visible_devices(&state, &auth).await?;
    let blur = HomeBlur::for_reader(&state, &auth, visible.values().copied(), None).await?;
    let positions = snapshot(&state, auth.org_id, &visible, &blur);
    super::audit::record_access(
        &state,
        &auth,
        positions.iter().map(|p| p.rep_id),
        "live_positions",
        serde_json::json!({}),
    )
    .await?;
    Ok(Json(positions))
}

/// Server-Sent Events of the positions of the devices in the caller's scope: first one `position`
/// event per device whose last position this server knows, then one per newer fix as it is committed
/// (data: a JSON `Position`). A client too slow for the flow gets a `lagged` event (data
/// `{"missed": n}`) and should re-read `/live/positions`. A comment line every 15 s keeps the
/// connection open; every 60 s the token and the devices in scope are checked again (a revoked token
/// ends the stream). Fixes committed through any server instance are seen (`ingest::relay`); the
/// snapshot also holds what was stored before this instance started (the last 7 days). A user (or
/// device) has at most `FV_LIVE_STREAMS_PER_USER` streams open on one server: one more gets 429.
#[utoipa::path(get, path = "/live", tag = "live", responses(
    (status = 200, description = "`text/event-stream` of `position` events (data: Position) and `lagged` events",
        content_type = "text/event-stream", body = String),
    (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn live(
    State(state): State<AppState>,
    auth: Can<p::ReadTracks>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let slot = match state.limits.open_stream(&auth) {
        Ok(slot) => slot,
        Err(refused) => return Ok(axum::response::IntoResponse::into_response(refused)),
    };
    let visible = visible_devices(&state, &auth).await?;
    // The stream may show any rep in scope: each is recorded once, when it opens.
    super::audit::record_access(&state, &auth, visible.values().copied(), "live_stream", serde_json::json!({})).await?;
    // Subscribe before taking the snapshot, so no fix falls between the two (`sent` drops repeats).
    let blur = HomeBlur::for_reader(&state, &auth, visible.values().copied(), None).await?;
    let rx = state.ingest.subscribe();
    let initial = snapshot(&state, auth.org_id, &visible, &blur);
    let (writer, reader) = tokio::io::duplex(BUFFER_BYTES);
    let feed = Feed {
        state,
        org_id: auth.org_id,
        authorization: headers.get(header::AUTHORIZATION).cloned(),
        visible,
        blur,
        sent: HashMap::new(),
        out: writer,
        _slot: slot,
    };
    tokio::spawn(feed.run(rx, initial));
    let mut res = Response::new(Body::new(AsyncReadBody::with_capacity(reader, BUFFER_BYTES)));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell nginx-style proxies not to buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

/// One client's stream: filters the broadcast to the caller's scope and writes SSE frames until the
/// client goes away (a write fails), the token stops being valid, or the broadcast closes.
struct Feed {
    state: AppState,
    org_id: i64,
    authorization: Option<HeaderValue>,
    /// Device id -> rep id of the devices in scope.
    visible: HashMap<i64, i64>,
    /// Home blurring of the reps in scope (refreshed with the scope).
    blur: HomeBlur,
    /// Fix time of the last position sent per device: nothing older or repeated is sent.
    sent: HashMap<i64, DateTime<Utc>>,
    out: DuplexStream,
    /// This stream's place among the caller's open streams (`FV_LIVE_STREAMS_PER_USER`).
    _slot: super::limits::StreamSlot,
}

impl Feed {
    async fn run(mut self, rx: Receiver<LastFix>, initial: Vec<Position>) {
        // An error here means the client has gone: nothing to report.
        let _ = self.pump(rx, initial).await;
    }

    async fn pump(&mut self, mut rx: Receiver<LastFix>, initial: Vec<Position>) -> std::io::Result<()> {
        for p in initial {
            self.send_position(&p).await?;
        }
        let mut keep_alive = interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
        let mut refresh = interval_at(Instant::now() + REFRESH, REFRESH);
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Ok(last) => {
                        if last.org_id != self.org_id {
                            continue;
                        }
                        let Some(rep_id) = self.visible.get(&last.device_id).copied() else { continue };
                        if self.blur.hides_live(rep_id, last.fix.lat, last.fix.lon) {
                            continue;
                        }
                        if self.send_position(&Position::new(&last, rep_id)).await? {
                            keep_alive.reset();
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        self.write(&format!("event: lagged\ndata: {{\"missed\":{missed}}}\n\n")).await?;
                        keep_alive.reset();
                    }
                    Err(RecvError::Closed) => return Ok(()),
                },
                _ = keep_alive.tick() => self.write(": keep-alive\n\n").await?,
                _ = refresh.tick() => {
                    if !self.refresh().await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Sends `p` unless a position at least as new was sent for its device. Returns whether it did.
    async fn send_position(&mut self, p: &Position) -> std::io::Result<bool> {
        if self.sent.get(&p.device_id).is_some_and(|t| *t >= p.fix_time) {
            return Ok(false);
        }
        let Ok(data) = serde_json::to_string(p) else { return Ok(false) };
        self.write(&format!("event: position\ndata: {data}\n\n")).await?;
        self.sent.insert(p.device_id, p.fix_time);
        Ok(true)
    }

    async fn write(&mut self, frame: &str) -> std::io::Result<()> {
        self.out.write_all(frame.as_bytes()).await
    }

    /// Re-checks the token and recomputes the devices in scope; sends the last known position of
    /// devices that came into scope. `false`: the token no longer allows this stream.
    async fn refresh(&mut self) -> std::io::Result<bool> {
        let who = match self.reauthorize().await {
            Ok(who) if who.org_id == self.org_id => who,
            Ok(_) | Err(ApiError::Unauthorized(_) | ApiError::Forbidden(_)) => return Ok(false),
            // The database is unavailable: keep the current scope and try again next time.
            Err(_) => return Ok(true),
        };
        let Ok(visible) = visible_devices(&self.state, &who).await else { return Ok(true) };
        let Ok(blur) = HomeBlur::for_reader(&self.state, &who, visible.values().copied(), None).await else {
            return Ok(true);
        };
        self.blur = blur;
        let new: Vec<(i64, i64)> =
            visible.iter().filter(|(d, _)| !self.visible.contains_key(d)).map(|(d, r)| (*d, *r)).collect();
        self.visible = visible;
        self.sent.retain(|d, _| self.visible.contains_key(d));
        for (device_id, rep_id) in new {
            let Some(last) = self.state.ingest.last_fix(self.org_id, device_id) else { continue };
            if !self.blur.hides_live(rep_id, last.fix.lat, last.fix.lon) {
                self.send_position(&Position::new(&last, rep_id)).await?;
            }
        }
        Ok(true)
    }

    /// The caller again, from the stream's `Authorization` header, through the same extractor as a request.
    async fn reauthorize(&self) -> Result<Principal, ApiError> {
        let mut builder = axum::http::Request::builder();
        if let Some(value) = &self.authorization {
            builder = builder.header(header::AUTHORIZATION, value.clone());
        }
        let (mut parts, ()) =
            builder.body(()).map_err(|e| ApiError::Internal(format!("re-authorising a stream: {e}")))?.into_parts();
        let can = Can::<p::ReadTracks>::from_request_parts(&mut parts, &self.state).await?;
        Ok(can.0)
    }
}
