//! Raw pings. Written in batches with UNNEST (one statement per batch) into daily partitions.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgExecutor};
use std::collections::BTreeSet;

/// One position fix as stored.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct Ping {
    pub device_id: i64,
    pub fix_time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f32>,
    pub speed_mps: Option<f32>,
    pub heading_deg: Option<f32>,
    pub altitude_m: Option<f32>,
    pub battery_pct: Option<f32>,
    pub mock: bool,
    pub source: String,
}

/// Creates the daily partitions the given fix times fall into.
pub async fn ensure_partitions(
    conn: &mut PgConnection,
    times: impl Iterator<Item = DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    let days: BTreeSet<NaiveDate> = times.map(|t| t.date_naive()).collect();
    for day in days {
        match sqlx::query("SELECT ensure_ping_partition($1)").bind(day).execute(&mut *conn).await {
            // Another writer created it a moment ago (duplicate_table): it exists, which is the point.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P07") => {}
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// Inserts pings; exact duplicates (same device and fix time) are ignored. Returns rows stored.
pub async fn insert(conn: &mut PgConnection, org_id: i64, pings: &[Ping]) -> Result<u64, sqlx::Error> {
    if pings.is_empty() {
        return Ok(0);
    }
    ensure_partitions(conn, pings.iter().map(|p| p.fix_time)).await?;
    let col = |f: fn(&Ping) -> Option<f32>| pings.iter().map(f).collect::<Vec<_>>();
    let done = sqlx::query(
        "INSERT INTO pings (org_id, device_id, fix_time, lat, lon, accuracy_m, speed_mps, heading_deg, altitude_m,
                            battery_pct, mock, source)
         SELECT $1, * FROM UNNEST($2::bigint[], $3::timestamptz[], $4::float8[], $5::float8[], $6::real[], $7::real[],
                                  $8::real[], $9::real[], $10::real[], $11::bool[], $12::text[])
         ON CONFLICT (org_id, device_id, fix_time) DO NOTHING",
    )
    .bind(org_id)
    .bind(pings.iter().map(|p| p.device_id).collect::<Vec<_>>())
    .bind(pings.iter().map(|p| p.fix_time).collect::<Vec<_>>())
    .bind(pings.iter().map(|p| p.lat).collect::<Vec<_>>())
    .bind(pings.iter().map(|p| p.lon).collect::<Vec<_>>())
    .bind(col(|p| p.accuracy_m))
    .bind(col(|p| p.speed_mps))
    .bind(col(|p| p.heading_deg))
    .bind(col(|p| p.altitude_m))
    .bind(col(|p| p.battery_pct))
    .bind(pings.iter().map(|p| p.mock).collect::<Vec<_>>())
    .bind(pings.iter().map(|p| p.source.clone()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// One ping of a batch written by the ingest writer.
#[derive(Debug, Clone)]
pub struct NewPing {
    pub org_id: i64,
    pub device_id: i64,
    pub fix: crate::domain::ping::Fix,
    pub source: crate::domain::ping::Source,
    pub flags: i32,
}

/// Writes one batch (any orgs and devices) in the caller's transaction and marks the rep-days of
/// the new rows dirty (the day in the org's time zone). Returns, per input ping, whether it was
/// stored (`false`: a ping with the same device and fix time was already there, or came earlier
/// in this batch).
pub async fn insert_batch(conn: &mut PgConnection, pings: &[NewPing]) -> Result<Vec<bool>, sqlx::Error> {
    if pings.is_empty() {
        return Ok(Vec::new());
    }
    let col = |f: fn(&crate::domain::ping::Fix) -> Option<f32>| pings.iter().map(|p| f(&p.fix)).collect::<Vec<_>>();
    let attributes: Vec<Option<serde_json::Value>> = pings
        .iter()
        .map(|p| (!p.fix.attributes.is_empty()).then(|| serde_json::Value::Object(p.fix.attributes.clone())))
        .collect();
    let inserted: Vec<(i64, i64, DateTime<Utc>)> = sqlx::query_as(include_str!("sql/insert_pings.sql"))
        .bind(pings.iter().map(|p| p.org_id).collect::<Vec<_>>())
        .bind(pings.iter().map(|p| p.device_id).collect::<Vec<_>>())
        .bind(pings.iter().map(|p| p.fix.fix_time).collect::<Vec<_>>())
        .bind(pings.iter().map(|p| p.fix.lat).collect::<Vec<_>>())
        .bind(pings.iter().map(|p| p.fix.lon).collect::<Vec<_>>())
        .bind(col(|f| f.accuracy_m))
        .bind(col(|f| f.speed_mps))
        .bind(col(|f| f.heading_deg))
        .bind(col(|f| f.altitude_m))
        .bind(col(|f| f.battery_pct))
        .bind(pings.iter().map(|p| p.fix.mock).collect::<Vec<_>>())
        .bind(pings.iter().map(|p| p.source.as_str()).collect::<Vec<_>>())
        .bind(pings.iter().map(|p| p.fix.client_ping_id.clone()).collect::<Vec<_>>())
        .bind(pings.iter().map(|p| p.flags).collect::<Vec<_>>())
        .bind(attributes)
        .fetch_all(&mut *conn)
        .await?;
    let mut new: std::collections::HashSet<(i64, i64, DateTime<Utc>)> = inserted.into_iter().collect();
    // The first occurrence of a key in the batch is the one stored; `remove` hands it out once.
    Ok(pings.iter().map(|p| new.remove(&(p.org_id, p.device_id, p.fix.fix_time))).collect())
}

/// Pings of the given devices with fix time in `[from, to)`, in fix-time order.
pub async fn for_devices(
    db: impl PgExecutor<'_>,
    org_id: i64,
    device_ids: &[i64],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Ping>, sqlx::Error> {
    sqlx::query_as(
        "SELECT device_id, fix_time, lat, lon, accuracy_m, speed_mps, heading_deg, altitude_m, battery_pct, mock, source
           FROM pings WHERE org_id = $1 AND device_id = ANY($2) AND fix_time >= $3 AND fix_time < $4
          ORDER BY fix_time, device_id LIMIT $5",
    )
    .bind(org_id)
    .bind(device_ids)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// One stored fix with what a track export shows of it.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct TrackPing {
    pub device_id: i64,
    pub fix_time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f32>,
    pub speed_mps: Option<f32>,
    pub heading_deg: Option<f32>,
    pub altitude_m: Option<f32>,
    pub battery_pct: Option<f32>,
    pub mock: bool,
    pub source: String,
    /// Filter flags (bit 1: implausible implied speed from the previous fix).
    pub flags: i32,
}

/// The first `limit` pings (by fix time) of the given devices in `[from, to)`, grouped by device in
/// ascending id and in fix-time order within each device. A cut by `limit` keeps the earliest fixes
/// of the period across all devices, never drops a whole device's period.
pub async fn track(
    db: impl PgExecutor<'_>,
    org_id: i64,
    device_ids: &[i64],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<TrackPing>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM (
             SELECT device_id, fix_time, lat, lon, accuracy_m, speed_mps, heading_deg, altitude_m, battery_pct, mock,
                    source, flags
               FROM pings WHERE org_id = $1 AND device_id = ANY($2) AND fix_time >= $3 AND fix_time < $4
              ORDER BY fix_time, device_id LIMIT $5) first
          ORDER BY device_id, fix_time",
    )
    .bind(org_id)
    .bind(device_ids)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(db)
    .await
}
