//! Last known positions shared between server instances. Each instance publishes the fixes that
//! became a device's newest (coalesced, every [`FLUSH_EVERY`]) with PostgreSQL `NOTIFY`, and
//! listens for the others': a live stream or an implied-speed check on any instance sees what
//! every instance committed, as with a single instance.

use super::{Ingest, LastFix};
use crate::domain::ping::Fix;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::mpsc;

/// The notification channel.
pub const CHANNEL: &str = "fieldvisit_positions";
/// How long fixes are collected before one round of notifications.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Most payload bytes per notification (PostgreSQL's limit is 8,000).
const MAX_PAYLOAD: usize = 7_500;
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// One notification: the sending instance and its newest fixes.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    from: u64,
    fixes: Vec<Wire>,
}

/// A fix as sent: (org, device, fix time µs, received µs, lat, lon, accuracy, speed, heading,
/// altitude, battery, mock).
type Wire = (i64, i64, i64, i64, f64, f64, Option<f32>, Option<f32>, Option<f32>, Option<f32>, Option<f32>, bool);

fn to_wire(l: &LastFix) -> Wire {
    let f = &l.fix;
    (
        l.org_id,
        l.device_id,
        f.fix_time.timestamp_micros(),
        l.received_at.timestamp_micros(),
        f.lat,
        f.lon,
        f.accuracy_m,
        f.speed_mps,
        f.heading_deg,
        f.altitude_m,
        f.battery_pct,
        f.mock,
    )
}

fn from_wire(w: Wire) -> Option<LastFix> {
    let (
        org_id,
        device_id,
        fix_us,
        received_us,
        lat,
        lon,
        accuracy_m,
        speed_mps,
        heading_deg,
        altitude_m,
        battery_pct,
        mock,
    ) = w;
    let mut fix = Fix::at(DateTime::<Utc>::from_timestamp_micros(fix_us)?, lat, lon);
    fix.accuracy_m = accuracy_m;
    fix.speed_mps = speed_mps;
    fix.heading_deg = heading_deg;
    fix.altitude_m = altitude_m;
    fix.battery_pct = battery_pct;
    fix.mock = mock;
    Some(LastFix { org_id, device_id, fix, received_at: DateTime::<Utc>::from_timestamp_micros(received_us)? })
}

/// Payloads of at most [`MAX_PAYLOAD`] bytes holding all the fixes.
fn payloads(from: u64, fixes: &[LastFix]) -> Vec<String> {
    let mut out = Vec::new();
    let mut chunk: Vec<Wire> = Vec::new();
    let mut size = 0;
    for l in fixes {
        let wire = to_wire(l);
        let len = serde_json::to_string(&wire).map_or(0, |s| s.len() + 1);
        if !chunk.is_empty() && size + len > MAX_PAYLOAD - 40 {
            out.extend(serde_json::to_string(&Message { from, fixes: std::mem::take(&mut chunk) }).ok());
            size = 0;
        }
        chunk.push(wire);
        size += len;
    }
    if !chunk.is_empty() {
        out.extend(serde_json::to_string(&Message { from, fixes: chunk }).ok());
    }
    out
}

/// Publishes the fixes handed to `rx` until the ingest pipeline is gone.
pub(super) async fn publish(db: PgPool, instance: u64, mut rx: mpsc::UnboundedReceiver<LastFix>) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(FLUSH_EVERY).await;
        let mut newest: HashMap<(i64, i64), LastFix> = HashMap::new();
        let mut keep = |l: LastFix| {
            let key = (l.org_id, l.device_id);
            if newest.get(&key).is_none_or(|n| n.fix.fix_time < l.fix.fix_time) {
                newest.insert(key, l);
            }
        };
        keep(first);
        while let Ok(l) = rx.try_recv() {
            keep(l);
        }
        let fixes: Vec<LastFix> = newest.into_values().collect();
        for payload in payloads(instance, &fixes) {
            if let Err(e) = crate::db::notify(&db, CHANNEL, &payload).await {
                // Best effort: the other instances see this device's next fix.
                tracing::debug!(error = %e, "positions not relayed to other instances");
                break;
            }
        }
    }
}

/// Reads the stored last positions once it listens, then takes the other instances' fixes into
/// `ingest` until it is gone or the pool is closed; after a lost connection it reads the stored
/// positions again (what it missed meanwhile).
pub(super) async fn listen(db: PgPool, instance: u64, ingest: Weak<Ingest>) {
    let options = (*db.connect_options()).clone().application_name("fieldvisit positions listener");
    let listen_pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options);
    loop {
        if db.is_closed() || ingest.strong_count() == 0 {
            return;
        }
        let mut listener = match PgListener::connect_with(&listen_pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "positions listener cannot connect");
                tokio::time::sleep(RECONNECT_AFTER).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::debug!(error = %e, "positions listener cannot listen");
            tokio::time::sleep(RECONNECT_AFTER).await;
            continue;
        }
        // Listening: what was stored before (at start) or meanwhile (after a lost connection).
        if let Some(ingest) = ingest.upgrade() {
            ingest.reload_latest(&db).await;
        }
        loop {
            let received = tokio::select! {
                r = listener.try_recv() => r,
                () = db.close_event() => return,
            };
            let Some(ingest) = ingest.upgrade() else { return };
            match received {
                Ok(Some(n)) => match serde_json::from_str::<Message>(n.payload()) {
                    Ok(m) if m.from != instance => ingest.take_relayed(m.fixes.into_iter().filter_map(from_wire)),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "unreadable positions notification"),
                },
                // The connection was lost and sqlx listens again: catch up from the database.
                Ok(None) => ingest.reload_latest(&db).await,
                Err(e) => {
                    tracing::debug!(error = %e, "positions listener failed; reconnecting");
                    break;
                }
            }
        }
        tokio::time::sleep(RECONNECT_AFTER).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(device_id: i64, s: i64) -> LastFix {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000 + s, 123_456_000).expect("time");
        let mut fix = Fix::at(t, 39.912_345_678_9, 116.4);
        fix.accuracy_m = Some(4.5);
        fix.mock = device_id % 2 == 0;
        LastFix { org_id: 7, device_id, fix, received_at: t }
    }

    #[test]
    fn payloads_fit_a_notification_and_round_trip() {
        let fixes: Vec<LastFix> = (0..500).map(|d| fix(d, d)).collect();
        let payloads = payloads(42, &fixes);
        assert!(payloads.len() > 1);
        let mut back = Vec::new();
        for p in &payloads {
            assert!(p.len() <= MAX_PAYLOAD, "{} bytes", p.len());
            let m: Message = serde_json::from_str(p).expect("message");
            assert_eq!(m.from, 42);
            back.extend(m.fixes.into_iter().filter_map(from_wire));
        }
        assert_eq!(back.len(), fixes.len());
        for (a, b) in back.iter().zip(&fixes) {
            assert_eq!((a.org_id, a.device_id, &a.fix, a.received_at), (b.org_id, b.device_id, &b.fix, b.received_at));
        }
    }
}
