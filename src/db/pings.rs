//! Raw pings. Written in batches with UNNEST (one statement per batch) into daily partitions.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{Connection, FromRow, PgConnection, PgExecutor};
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
    /// The device's credential version when its credential was checked: the ping is stored only
    /// while the device is active at that version (deactivation, rotation and reassignment bump it).
    pub credential_version: i32,
}

/// A row of `insert_pings.sql`: a stored ping's key, or (no fix time) a refused device and the
/// credential version its pings carried.
type WriteOutcome = (i64, i64, Option<DateTime<Utc>>, Option<i32>);

/// What the writer did with one ping of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Stored,
    /// A ping with the same device and fix time was already there, or came earlier in the batch.
    Duplicate,
    /// Not stored: its device was deactivated, or its credential rotated or moved, meanwhile.
    Refused,
}

/// Writes one batch (any orgs and devices) and marks the rep-days of the new rows dirty (the day
/// in the org's time zone), committed before it returns. Returns, per input ping, whether it was
/// stored (`false`: a ping with the same device and fix time was already there, or came earlier
/// in this batch).
///
/// A large batch of new fixes goes through binary `COPY` (several times cheaper for PostgreSQL per
/// row than an `INSERT`); one holding a fix that is already stored (a client retry) fails that
/// `COPY` on the primary key, is rolled back, and is written again with `INSERT .. ON CONFLICT DO
/// NOTHING`, which tells stored from duplicate. A small batch takes that one statement directly:
/// for a few rows its single round trip costs less than the four of the `COPY` transaction.
pub async fn insert_batch(conn: &mut PgConnection, pings: &[NewPing]) -> Result<Vec<Written>, sqlx::Error> {
    if pings.is_empty() {
        return Ok(Vec::new());
    }
    if pings.len() < COPY_MIN_PINGS {
        return insert_batch_on_conflict(conn, pings).await;
    }
    match copy_batch(conn, pings).await {
        Ok(true) => Ok(vec![Written::Stored; pings.len()]),
        // A device's credential changed meanwhile: the statement below tells its pings apart.
        Ok(false) => insert_batch_on_conflict(conn, pings).await,
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(UNIQUE_VIOLATION) => {
            insert_batch_on_conflict(conn, pings).await
        }
        Err(e) => Err(e),
    }
}

const UNIQUE_VIOLATION: &str = "23505";

/// Batches from this size on are written with `COPY`.
pub const COPY_MIN_PINGS: usize = 500;

/// The columns [`copy_rows`] encodes, in its order.
const COPY_PINGS: &str = "COPY pings (org_id, device_id, fix_time, lat, lon, accuracy_m, speed_mps, heading_deg, \
     altitude_m, battery_pct, mock, source, client_ping_id, flags, attributes) FROM STDIN WITH (FORMAT binary)";

/// One transaction: `COPY` of the rows, then the dirty rep-days. Rolled back on any error, and
/// (`false`) when a device of the batch is no longer active at its credential version.
async fn copy_batch(conn: &mut PgConnection, pings: &[NewPing]) -> Result<bool, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let mut copy = tx.copy_in_raw(COPY_PINGS).await?;
    copy.send(copy_rows(pings)).await?;
    let copied = copy.finish().await;
    match copied {
        Ok(n) if n == pings.len() as u64 => {
            if !credentials_live(&mut tx, pings).await? {
                tx.rollback().await?;
                return Ok(false);
            }
            mark_dirty(&mut tx, pings).await?;
            tx.commit().await.map(|()| true)
        }
        Ok(n) => {
            tx.rollback().await?;
            Err(sqlx::Error::Protocol(format!("COPY stored {n} of {} pings", pings.len())))
        }
        Err(e) => {
            tx.rollback().await?;
            Err(e)
        }
    }
}

/// Whether every device of the batch is still active at the credential version its pings carry.
async fn credentials_live(conn: &mut PgConnection, pings: &[NewPing]) -> Result<bool, sqlx::Error> {
    let keys: std::collections::HashSet<(i64, i64, i32)> =
        pings.iter().map(|p| (p.org_id, p.device_id, p.credential_version)).collect();
    let (orgs, (ids, versions)): (Vec<i64>, (Vec<i64>, Vec<i32>)) =
        keys.into_iter().map(|(o, d, v)| (o, (d, v))).unzip();
    let live: i64 = sqlx::query_scalar(include_str!("sql/live_credentials.sql"))
        .bind(&orgs)
        .bind(&ids)
        .bind(&versions)
        .fetch_one(&mut *conn)
        .await?;
    Ok(live == orgs.len() as i64)
}

/// Marks the rep-days of the pings dirty. One fix per device and 15-minute UTC bucket is enough:
/// every time zone's offset is a multiple of 15 minutes, so a bucket never straddles a local midnight.
async fn mark_dirty(conn: &mut PgConnection, pings: &[NewPing]) -> Result<(), sqlx::Error> {
    const BUCKET_S: i64 = 15 * 60;
    let mut seen = std::collections::HashSet::new();
    let (mut orgs, mut devices, mut times) = (Vec::new(), Vec::new(), Vec::new());
    for p in pings {
        if seen.insert((p.org_id, p.device_id, p.fix.fix_time.timestamp().div_euclid(BUCKET_S))) {
            orgs.push(p.org_id);
            devices.push(p.device_id);
            times.push(p.fix.fix_time);
        }
    }
    sqlx::query(include_str!("sql/mark_ping_days_dirty.sql"))
        .bind(orgs)
        .bind(devices)
        .bind(times)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// The pings as the body of a binary `COPY` in the column order of [`COPY_PINGS`].
fn copy_rows(pings: &[NewPing]) -> Vec<u8> {
    fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
        buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        buf.extend_from_slice(bytes);
    }
    fn null(buf: &mut Vec<u8>) {
        buf.extend_from_slice(&(-1i32).to_be_bytes());
    }
    fn real(buf: &mut Vec<u8>, v: Option<f32>) {
        match v {
            Some(v) => field(buf, &v.to_be_bytes()),
            None => null(buf),
        }
    }
    let mut buf = Vec::with_capacity(19 + pings.len() * 140);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes()); // flags
    buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for p in pings {
        let f = &p.fix;
        buf.extend_from_slice(&15i16.to_be_bytes());
        field(&mut buf, &p.org_id.to_be_bytes());
        field(&mut buf, &p.device_id.to_be_bytes());
        field(&mut buf, &(f.fix_time.timestamp_micros() - PG_EPOCH_US).to_be_bytes());
        field(&mut buf, &f.lat.to_be_bytes());
        field(&mut buf, &f.lon.to_be_bytes());
        for v in [f.accuracy_m, f.speed_mps, f.heading_deg, f.altitude_m, f.battery_pct] {
            real(&mut buf, v);
        }
        field(&mut buf, &[u8::from(f.mock)]);
        field(&mut buf, p.source.as_str().as_bytes());
        match &f.client_ping_id {
            Some(id) => field(&mut buf, id.as_bytes()),
            None => null(&mut buf),
        }
        field(&mut buf, &p.flags.to_be_bytes());
        if f.attributes.is_empty() {
            null(&mut buf);
        } else {
            // jsonb's binary form: version 1, then the JSON text.
            let at = buf.len();
            buf.extend_from_slice(&[0, 0, 0, 0, 1]);
            // Writing a JSON map into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut buf, &f.attributes);
            let len = (buf.len() - at - 4) as i32;
            buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    buf
}

/// The batch as one `INSERT .. ON CONFLICT DO NOTHING` that also marks the rep-days of the stored
/// rows dirty; its `RETURNING` keys tell which pings were new.
async fn insert_batch_on_conflict(conn: &mut PgConnection, pings: &[NewPing]) -> Result<Vec<Written>, sqlx::Error> {
    let col = |f: fn(&crate::domain::ping::Fix) -> Option<f32>| pings.iter().map(|p| f(&p.fix)).collect::<Vec<_>>();
    let attributes: Vec<Option<serde_json::Value>> = pings
        .iter()
        .map(|p| (!p.fix.attributes.is_empty()).then(|| serde_json::Value::Object(p.fix.attributes.clone())))
        .collect();
    let inserted: Vec<WriteOutcome> = sqlx::query_as(include_str!("sql/insert_pings.sql"))
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
        .bind(pings.iter().map(|p| p.credential_version).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?;
    // Rows without a fix time name the devices whose pings were refused.
    let mut refused = std::collections::HashSet::new();
    let mut new = std::collections::HashSet::new();
    for (org_id, device_id, fix_time, version) in inserted {
        match fix_time {
            Some(t) => new.insert((org_id, device_id, t)),
            None => refused.insert((org_id, device_id, version.unwrap_or_default())),
        };
    }
    // The first occurrence of a key in the batch is the one stored; `remove` hands it out once.
    Ok(pings
        .iter()
        .map(|p| {
            if refused.contains(&(p.org_id, p.device_id, p.credential_version)) {
                Written::Refused
            } else if new.remove(&(p.org_id, p.device_id, p.fix.fix_time)) {
                Written::Stored
            } else {
                Written::Duplicate
            }
        })
        .collect())
}

/// The newest stored fix of a device, with when it was received.
#[derive(Debug, Clone, FromRow)]
pub struct LatestPing {
    pub org_id: i64,
    pub device_id: i64,
    pub fix_time: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f32>,
    pub speed_mps: Option<f32>,
    pub heading_deg: Option<f32>,
    pub altitude_m: Option<f32>,
    pub battery_pct: Option<f32>,
    pub mock: bool,
}

/// The newest fix of every device with a fix at or after `since` (all orgs): one index probe per
/// device and daily partition since then.
pub async fn latest_per_device(db: impl PgExecutor<'_>, since: DateTime<Utc>) -> Result<Vec<LatestPing>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.org_id, d.id AS device_id, p.fix_time, p.received_at, p.lat, p.lon, p.accuracy_m, p.speed_mps,
                p.heading_deg, p.altitude_m, p.battery_pct, p.mock
           FROM devices d
          CROSS JOIN LATERAL (
                SELECT * FROM pings
                 WHERE org_id = d.org_id AND device_id = d.id AND fix_time >= $1
                 ORDER BY fix_time DESC LIMIT 1) p",
    )
    .bind(since)
    .fetch_all(db)
    .await
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

/// Refreshes the planner's statistics of the pings and the dirty rep-days after a bulk load (the
/// demo loader's five weeks of a team in seconds): until autovacuum gets to them, the statistics
/// describe the empty tables and the derivation's queries are planned for that. A role that may
/// not analyse them gets a warning from PostgreSQL, not an error.
pub async fn analyze_after_bulk_load(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("ANALYZE pings, rep_day_dirty").execute(db).await.map(|_| ())
}
