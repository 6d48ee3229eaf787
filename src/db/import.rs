//! Bulk outlet import: the database half. Everything is written in one transaction, with a handful
//! of set-based statements per 10,000 rows (no per-row round trips):
//! 1. the org's tier policies and the territories the file names (one query each);
//! 2. for every row, the stored outlet with its code and — when the row names no territory and the
//!    outlet is new or moves — the deepest territory whose boundary contains the point
//!    (`UNNEST ... LEFT JOIN LATERAL` on the GiST-indexed boundaries);
//! 3. the judgement in [`crate::domain::import`]; in atomic mode any bad row ends it here;
//! 4. `INSERT ... SELECT FROM UNNEST(...) ON CONFLICT (org_id, code) DO UPDATE` of the new and
//!    changed outlets (moves land in the location history by the outlets trigger) and one audit entry.
//!
//! For a caller whose scope is the whole org nothing step 2 finds can make a row bad, so the
//! judgement is complete after step 1 and steps 2 and 4 run as a pipeline: a second connection
//! looks up chunk n+1 while the transaction writes chunk n (the writes are the bottleneck: the
//! per-row history trigger and foreign keys cost ~80 us a row). A territory-scoped caller's rows are
//! all looked up, inside the transaction, before anything is written.

use crate::domain::access::Scope;
use crate::domain::audit::AuditAction;
use crate::domain::crs::Crs;
use crate::domain::import::{
    Existing, Format, ImportReport, Mode, OrgContext, Parsed, Resolved, Row, TerritoryRef, Write, check_org, parse,
    plan, territory_codes,
};
use crate::domain::outlet::{ChannelType, OutletStatus};
use crate::domain::validation::FieldError;
use serde_json::json;
use sqlx::{FromRow, PgConnection, PgPool};
use std::ops::Range;
use std::time::Duration;

/// Rows per statement.
const CHUNK: usize = 10_000;

/// Who imports what, and how.
#[derive(Debug, Clone)]
pub struct ImportRequest<'a> {
    pub org_id: i64,
    /// The caller's territory scope: rows must land inside it.
    pub scope: Scope,
    pub mode: Mode,
    pub format: Format,
    pub actor_user_id: Option<i64>,
    pub request_id: Option<&'a str>,
    /// Where the file came from, for the audit log (`api`, `cli`, ...).
    pub source: &'a str,
    /// The coordinate system of the file's positions (converted to WGS-84 before judging).
    pub crs: Crs,
    /// Judge every row and count what would be written, but write nothing (no audit entry either).
    pub dry_run: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file as a whole cannot be read (see the errors).
    #[error("the file cannot be imported: {}", describe(.0))]
    File(Vec<FieldError>),
    /// Atomic mode and some rows are bad: nothing was written.
    #[error("{} of {} rows are invalid; nothing was written", .0.rejected, .0.rows)]
    Rejected(ImportReport),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn describe(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>().join("; ")
}

/// Reads `bytes` (see [`crate::domain::import::parse`]) and imports them.
pub async fn import_bytes(pool: &PgPool, req: &ImportRequest<'_>, bytes: &[u8]) -> Result<ImportReport, ImportError> {
    let parsed = parse(req.format, bytes).map_err(ImportError::File)?;
    import_outlets(pool, req, parsed).await
}

/// Judges the parsed rows against the org and writes them (all, or in partial mode the good ones).
pub async fn import_outlets(
    pool: &PgPool,
    req: &ImportRequest<'_>,
    parsed: Parsed,
) -> Result<ImportReport, ImportError> {
    let mut parsed = parsed;
    parsed.convert_to_wgs84(req.crs);
    let mut tx = pool.begin().await?;
    no_jit(&mut tx).await?;
    let ctx = load_context(&mut tx, req.org_id, &territory_codes(&parsed)).await?;
    check_org(&mut parsed, &ctx);
    let Parsed { rows, mut errors, total, .. } = parsed;
    // For an org-wide caller every error is known now: nothing the lookups find can make a row bad.
    if req.scope == Scope::Org && req.mode == Mode::Atomic && !errors.is_empty() && !req.dry_run {
        return Err(ImportError::Rejected(ImportReport::new(req.mode, total, errors)));
    }
    if req.dry_run {
        return preview(tx, req, rows, &ctx, errors, total).await;
    }
    // The pipeline's lookups need a second connection; when the pool has none to spare soon, the
    // lookups run inside the transaction, one after the other.
    let reader = if req.scope == Scope::Org && rows.len() > FIRST_CHUNK {
        tokio::time::timeout(Duration::from_millis(500), pool.begin()).await.ok().transpose()?
    } else {
        None
    };
    let written = if let Some(reader) = reader {
        pipeline(reader, &mut tx, req.org_id, &ctx, rows, &mut errors).await?
    } else {
        let resolved = resolve_all(&mut tx, req.org_id, &rows).await?;
        let plan = plan(rows, resolved, &ctx, req.scope, &mut errors);
        if req.mode == Mode::Atomic && !errors.is_empty() {
            return Err(ImportError::Rejected(ImportReport::new(req.mode, total, errors)));
        }
        let new_rows = plan.writes.iter().filter(|w| w.existing_id.is_none()).count();
        let refresh = statistics_stale(&mut tx, new_rows).await?;
        let mut written = Written { unchanged: plan.unchanged, ..Written::default() };
        for (n, range) in chunk_ranges(plan.writes.len(), refresh).into_iter().enumerate() {
            if n == 1 && refresh {
                analyze(&mut tx).await?;
            }
            written.add(&plan.writes[range.clone()], upsert(&mut tx, req.org_id, &plan.writes[range]).await?);
        }
        written
    };
    let mut report = ImportReport::new(req.mode, total, errors);
    report.inserted = written.inserted;
    report.updated = written.updated;
    report.unchanged = written.unchanged;
    crate::db::audit::record(
        &mut *tx,
        req.org_id,
        crate::db::audit::NewEntry {
            actor_user_id: req.actor_user_id,
            actor_device_id: None,
            action: AuditAction::OutletImport,
            object_type: "outlet",
            object_id: None,
            request_id: req.request_id,
            detail: json!({
                "source": req.source,
                "format": req.format.as_str(),
                "mode": req.mode,
                "rows": report.rows,
                "inserted": report.inserted,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "rejected": report.rejected,
            }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// Every row's stored outlet and point territory, chunk by chunk in one connection.
async fn resolve_all(db: &mut PgConnection, org_id: i64, rows: &[Row]) -> Result<Vec<Resolved>, sqlx::Error> {
    let keys = keys(rows);
    let mut resolved = Vec::with_capacity(rows.len());
    for chunk in keys.chunks(CHUNK) {
        resolved.extend(resolve(&mut *db, org_id, chunk).await?);
    }
    Ok(resolved)
}

/// A dry run: every row looked up and judged as the import would, the counts of what it would
/// insert and update, and the transaction rolled back (it wrote nothing; no audit entry).
async fn preview(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    req: &ImportRequest<'_>,
    rows: Vec<Row>,
    ctx: &OrgContext,
    mut errors: Vec<FieldError>,
    total: usize,
) -> Result<ImportReport, ImportError> {
    let resolved = resolve_all(&mut tx, req.org_id, &rows).await?;
    let plan = plan(rows, resolved, ctx, req.scope, &mut errors);
    tx.rollback().await?;
    let mut report = ImportReport::new(req.mode, total, errors);
    report.dry_run = true;
    report.inserted = plan.writes.iter().filter(|w| w.existing_id.is_none()).count();
    report.updated = plan.writes.len() - report.inserted;
    report.unchanged = plan.unchanged;
    Ok(report)
}

/// The set-based statements look expensive enough to the planner to be JIT-compiled, which costs
/// more (0.1-0.2 s a statement) than it saves on 10,000 rows.
async fn no_jit(db: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET LOCAL jit = off").execute(&mut *db).await.map(|_| ())
}

/// Counts of an import's writes.
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    inserted: usize,
    updated: usize,
    unchanged: usize,
}

impl Written {
    /// Adds the outcome of upserting `writes`; rows someone else changed to the same state meanwhile
    /// are unchanged too.
    fn add(&mut self, writes: &[Write], (inserted, updated): (usize, usize)) {
        self.inserted += inserted;
        self.updated += updated;
        self.unchanged += writes.len() - inserted - updated;
    }
}

/// Looks up chunk n+1 on a second connection while the transaction writes chunk n.
async fn pipeline(
    mut reader: sqlx::Transaction<'static, sqlx::Postgres>,
    tx: &mut PgConnection,
    org_id: i64,
    ctx: &OrgContext,
    rows: Vec<Row>,
    errors: &mut Vec<FieldError>,
) -> Result<Written, sqlx::Error> {
    let refresh = statistics_stale(&mut *tx, rows.len()).await?;
    let ranges = chunk_ranges(rows.len(), refresh);
    let keys = keys(&rows);
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<Resolved>>(2);
    let lookups = {
        let (keys, ranges) = (&keys, &ranges);
        async move {
            // Read-only, beside the writing transaction (the file's codes are distinct, so the
            // lookups never need to see this import's own writes).
            let result = async {
                no_jit(&mut reader).await?;
                for range in ranges {
                    let resolved = resolve(&mut reader, org_id, &keys[range.clone()]).await?;
                    if sender.send(resolved).await.is_err() {
                        break;
                    }
                }
                reader.rollback().await
            }
            .await;
            drop(sender);
            result
        }
    };
    let writes = {
        let ranges = &ranges;
        async move {
            let result = async {
                let mut written = Written::default();
                let mut rows = rows.into_iter();
                for (n, range) in ranges.iter().enumerate() {
                    let Some(resolved) = receiver.recv().await else {
                        return Ok(None);
                    };
                    if n == 1 && refresh {
                        analyze(&mut *tx).await?;
                    }
                    let chunk: Vec<Row> = rows.by_ref().take(range.len()).collect();
                    let plan = plan(chunk, resolved, ctx, Scope::Org, errors);
                    written.unchanged += plan.unchanged;
                    let counts = upsert(&mut *tx, org_id, &plan.writes).await?;
                    written.add(&plan.writes, counts);
                }
                Ok(Some(written))
            }
            .await;
            // Stops the lookups when the writes fail.
            drop(receiver);
            result
        }
    };
    match tokio::join!(lookups, writes) {
        (_, Err(e)) | (Err(e), _) => Err(e),
        (Ok(()), Ok(Some(written))) => Ok(written),
        (Ok(()), Ok(None)) => Err(sqlx::Error::Protocol("the import's lookups ended early".into())),
    }
}

/// Rows written before the planner statistics are refreshed, when they are stale (see [`analyze`]).
const FIRST_CHUNK: usize = 1_000;

/// Whether writing `new_rows` outlets at least doubles the table as the planner sees it.
async fn statistics_stale(db: &mut PgConnection, new_rows: usize) -> Result<bool, sqlx::Error> {
    let believed: f32 = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = 'outlets'::regclass")
        .fetch_one(&mut *db)
        .await?;
    Ok(new_rows > FIRST_CHUNK && new_rows as f32 > believed.max(0.0))
}

/// Refreshes the planner statistics of `outlets` inside the import's transaction.
///
/// When an import at least doubles the outlets table, the statistics are stale (after the table was
/// analysed while empty they say 0 rows), and PostgreSQL then plans the foreign-key checks of the
/// history rows (`outlet_locations`, `outlet_status_changes` -> `outlets (org_id, id)`) on the wrong
/// index (`outlets_territory_idx`, also led by `org_id`): every check scans the org's rows and a 100k
/// import turns quadratic (minutes instead of seconds). So a first small chunk is written, the table
/// analysed (`ANALYZE` counts this transaction's own rows; a role that may not analyse it gets a
/// warning, not an error) and the rest written with plans that use the primary key.
async fn analyze(db: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("ANALYZE outlets").execute(&mut *db).await.map(|_| ())
}

/// Chunks of at most [`CHUNK`] rows; the first one [`FIRST_CHUNK`] rows when statistics are refreshed.
fn chunk_ranges(len: usize, small_first: bool) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < len {
        let size = if small_first && start == 0 { FIRST_CHUNK } else { CHUNK };
        let end = (start + size).min(len);
        ranges.push(start..end);
        start = end;
    }
    ranges
}

/// The org's tiers and the territories named by code.
async fn load_context(db: &mut PgConnection, org_id: i64, codes: &[String]) -> Result<OrgContext, sqlx::Error> {
    let tiers = crate::db::tiers::list(&mut *db, org_id).await?.into_iter().map(|p| p.tier).collect();
    let rows: Vec<(String, i64, Vec<i64>)> =
        sqlx::query_as("SELECT code, id, path FROM territories WHERE org_id = $1 AND code = ANY($2)")
            .bind(org_id)
            .bind(codes)
            .fetch_all(&mut *db)
            .await?;
    let territories = rows.into_iter().map(|(code, id, path)| (code, TerritoryRef { id, path })).collect();
    Ok(OrgContext { tiers, territories })
}

#[derive(FromRow)]
struct ResolvedRow {
    id: Option<i64>,
    name: Option<String>,
    #[sqlx(try_from = "crate::db::NullableName")]
    channel_type: Option<ChannelType>,
    tier: Option<String>,
    lat: Option<f64>,
    lon: Option<f64>,
    radius_m: Option<f32>,
    #[sqlx(try_from = "crate::db::NullableName")]
    status: Option<OutletStatus>,
    territory_id: Option<i64>,
    territory_path: Option<Vec<i64>>,
    address: Option<String>,
    attributes: Option<serde_json::Value>,
    located_id: Option<i64>,
    located_path: Option<Vec<i64>>,
}

fn territory(id: Option<i64>, path: Option<Vec<i64>>) -> Option<TerritoryRef> {
    id.map(|id| TerritoryRef { id, path: path.unwrap_or_default() })
}

impl TryFrom<ResolvedRow> for Resolved {
    type Error = sqlx::Error;
    fn try_from(r: ResolvedRow) -> Result<Self, sqlx::Error> {
        // A stored outlet has both (NOT NULL columns); they are NULL only when there is none.
        let stored = |column: &str| sqlx::Error::ColumnDecode { index: column.to_owned(), source: "NULL".into() };
        let existing = match r.id {
            None => None,
            Some(id) => Some(Existing {
                id,
                name: r.name.unwrap_or_default(),
                channel_type: r.channel_type.ok_or_else(|| stored("channel_type"))?,
                tier: r.tier.unwrap_or_default(),
                lat: r.lat.unwrap_or_default(),
                lon: r.lon.unwrap_or_default(),
                radius_m: r.radius_m,
                status: r.status.ok_or_else(|| stored("status"))?,
                territory: territory(r.territory_id, r.territory_path),
                address: r.address,
                attributes: r.attributes.unwrap_or_else(|| json!({})),
            }),
        };
        Ok(Resolved { existing, located: territory(r.located_id, r.located_path) })
    }
}

/// What a lookup needs of a row.
struct Key {
    code: String,
    lat: f64,
    lon: f64,
    /// The row names no territory: find the one its point lies in.
    locate: bool,
}

fn keys(rows: &[Row]) -> Vec<Key> {
    rows.iter().map(|r| Key { code: r.code.clone(), lat: r.lat, lon: r.lon, locate: r.territory.is_none() }).collect()
}

/// For each key (in order): the stored outlet with its code, and the deepest territory containing
/// its point when the row names no territory and the outlet is new or moves.
async fn resolve(db: &mut PgConnection, org_id: i64, keys: &[Key]) -> Result<Vec<Resolved>, sqlx::Error> {
    let codes: Vec<&str> = keys.iter().map(|k| k.code.as_str()).collect();
    let lats: Vec<f64> = keys.iter().map(|k| k.lat).collect();
    let lons: Vec<f64> = keys.iter().map(|k| k.lon).collect();
    let locate: Vec<bool> = keys.iter().map(|k| k.locate).collect();
    let found: Vec<ResolvedRow> = sqlx::query_as(
        "SELECT o.id, o.name, o.channel_type, o.tier, ST_Y(o.location) AS lat, ST_X(o.location) AS lon,
                o.radius_m, o.status, o.territory_id, t.path AS territory_path, o.address, o.attributes,
                loc.id AS located_id, loc.path AS located_path
           FROM UNNEST($2::text[], $3::float8[], $4::float8[], $5::bool[]) WITH ORDINALITY AS u(code, lat, lon, locate, n)
           LEFT JOIN outlets o ON o.org_id = $1 AND o.code = u.code
           LEFT JOIN territories t ON t.org_id = o.org_id AND t.id = o.territory_id
           LEFT JOIN LATERAL (
                SELECT tt.id, tt.path FROM territories tt
                 WHERE u.locate AND (o.id IS NULL OR ST_Y(o.location) <> u.lat OR ST_X(o.location) <> u.lon)
                   AND tt.org_id = $1 AND tt.boundary IS NOT NULL
                   AND ST_Intersects(tt.boundary, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326))
                 ORDER BY cardinality(tt.path) DESC, tt.id LIMIT 1) loc ON true
          ORDER BY u.n",
    )
    .bind(org_id)
    .bind(&codes)
    .bind(&lats)
    .bind(&lons)
    .bind(&locate)
    .fetch_all(&mut *db)
    .await?;
    if found.len() != keys.len() {
        return Err(sqlx::Error::Protocol(format!("resolved {} of {} import rows", found.len(), keys.len())));
    }
    found.into_iter().map(Resolved::try_from).collect()
}

/// Upserts the new states in one statement; returns (inserted, updated).
async fn upsert(db: &mut PgConnection, org_id: i64, writes: &[Write]) -> Result<(usize, usize), sqlx::Error> {
    if writes.is_empty() {
        return Ok((0, 0));
    }
    let codes: Vec<&str> = writes.iter().map(|w| w.code.as_str()).collect();
    let names: Vec<&str> = writes.iter().map(|w| w.name.as_str()).collect();
    let channels: Vec<&str> = writes.iter().map(|w| w.channel_type.as_str()).collect();
    let tiers: Vec<&str> = writes.iter().map(|w| w.tier.as_str()).collect();
    let lats: Vec<f64> = writes.iter().map(|w| w.lat).collect();
    let lons: Vec<f64> = writes.iter().map(|w| w.lon).collect();
    let radii: Vec<Option<f32>> = writes.iter().map(|w| w.radius_m).collect();
    let statuses: Vec<&str> = writes.iter().map(|w| w.status.as_str()).collect();
    let territories: Vec<Option<i64>> = writes.iter().map(|w| w.territory_id).collect();
    let addresses: Vec<Option<&str>> = writes.iter().map(|w| w.address.as_deref()).collect();
    let attributes: Vec<&serde_json::Value> = writes.iter().map(|w| &w.attributes).collect();
    let flags: Vec<bool> = sqlx::query_scalar(
        "INSERT INTO outlets AS o (org_id, code, name, channel_type, tier, location, radius_m, status,
                                   territory_id, address, attributes)
         SELECT $1, u.code, u.name, u.channel_type, u.tier, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326),
                u.radius_m, u.status, u.territory_id, u.address, u.attributes
           FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::real[],
                       $9::text[], $10::int8[], $11::text[], $12::jsonb[])
                AS u(code, name, channel_type, tier, lat, lon, radius_m, status, territory_id, address, attributes)
         ON CONFLICT (org_id, code) DO UPDATE
            SET name = EXCLUDED.name, channel_type = EXCLUDED.channel_type, tier = EXCLUDED.tier,
                location = EXCLUDED.location, radius_m = EXCLUDED.radius_m, status = EXCLUDED.status,
                territory_id = EXCLUDED.territory_id, address = EXCLUDED.address,
                attributes = EXCLUDED.attributes, updated_at = now()
          WHERE NOT (o.location ~= EXCLUDED.location)
             OR (o.name, o.channel_type, o.tier, o.radius_m, o.status, o.territory_id, o.address, o.attributes)
                IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.channel_type, EXCLUDED.tier, EXCLUDED.radius_m,
                                  EXCLUDED.status, EXCLUDED.territory_id, EXCLUDED.address, EXCLUDED.attributes)
         RETURNING (xmax = 0)",
    )
    .bind(org_id)
    .bind(&codes)
    .bind(&names)
    .bind(&channels)
    .bind(&tiers)
    .bind(&lats)
    .bind(&lons)
    .bind(&radii)
    .bind(&statuses)
    .bind(&territories)
    .bind(&addresses)
    .bind(&attributes)
    .fetch_all(&mut *db)
    .await?;
    let inserted = flags.iter().filter(|&&f| f).count();
    Ok((inserted, flags.len() - inserted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // one chunk is meant: a list holding one range
    fn chunks_cover_every_row_once() {
        assert!(chunk_ranges(0, true).is_empty());
        assert_eq!(chunk_ranges(5, false), vec![0..5]);
        assert_eq!(chunk_ranges(25_000, false), [0..10_000, 10_000..20_000, 20_000..25_000]);
        assert_eq!(chunk_ranges(12_000, true), [0..1_000, 1_000..11_000, 11_000..12_000]);
        assert_eq!(chunk_ranges(800, true), [0..800]);
    }
}
