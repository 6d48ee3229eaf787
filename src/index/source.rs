//! What the outlet index reads from PostgreSQL: an org's outlets (whole, or a few by id), the labels
//! of the outlets a query found, and the territories of a caller's scope. Kept next to the index
//! because these queries exist only for it.

use super::outlets::{IndexedOutlet, Label as IndexLabel, LastCell};
use crate::domain::geo::Footprint;
use crate::domain::outlet::{ChannelType, OutletStatus};
use crate::domain::territory::multipolygon;
use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(FromRow)]
struct Row {
    id: i64,
    lat: f64,
    lon: f64,
    radius_m: Option<f32>,
    active: bool,
    territory_id: Option<i64>,
    /// GeoJSON MultiPolygon.
    footprint: Option<serde_json::Value>,
    code: String,
    name: String,
    tier: String,
    #[sqlx(try_from = "String")]
    channel_type: ChannelType,
    status_since: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<Row> for IndexedOutlet {
    fn from(r: Row) -> Self {
        IndexedOutlet {
            id: r.id,
            lat: r.lat,
            lon: r.lon,
            radius_m: r.radius_m,
            active: r.active,
            territory_id: r.territory_id,
            footprint: r.footprint.as_ref().and_then(multipolygon).and_then(Footprint::new).map(Arc::new),
            label: Some(Box::new(IndexLabel {
                code: r.code.into(),
                name: r.name.into(),
                tier: r.tier.into(),
                channel_type: r.channel_type,
                status_since: r.status_since.unwrap_or(r.created_at),
            })),
            cell: LastCell::default(),
        }
    }
}

const COLUMNS: &str = "o.id, ST_Y(o.location) AS lat, ST_X(o.location) AS lon, o.radius_m,
                       o.status = 'active' AS active, o.territory_id,
                       ST_AsGeoJSON(o.footprint)::jsonb AS footprint,
                       o.code, o.name, o.tier, o.channel_type, o.created_at";

/// Every outlet of the org, whatever its status.
pub async fn outlets_of(db: impl PgExecutor<'_>, org_id: i64) -> Result<Vec<IndexedOutlet>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, c.status_since
           FROM outlets o
           LEFT JOIN (SELECT outlet_id, max(changed_at) AS status_since FROM outlet_status_changes
                       WHERE org_id = $1 GROUP BY outlet_id) c ON c.outlet_id = o.id
          WHERE o.org_id = $1"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(IndexedOutlet::from).collect())
}

/// The current state of the given outlets of the org; ids that no longer exist are absent.
pub async fn outlets_by_id(
    db: impl PgExecutor<'_>,
    org_id: i64,
    ids: &[i64],
) -> Result<HashMap<i64, IndexedOutlet>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS},
                (SELECT max(c.changed_at) FROM outlet_status_changes c
                  WHERE c.org_id = o.org_id AND c.outlet_id = o.id) AS status_since
           FROM outlets o
          WHERE o.org_id = $1 AND o.id = ANY($2)"
    ))
    .bind(org_id)
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, IndexedOutlet::from(r))).collect())
}

/// Every org id.
pub async fn org_ids(db: impl PgExecutor<'_>) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM orgs ORDER BY id").fetch_all(db).await
}

/// What an answer says about an outlet besides its position.
#[derive(Debug, Clone, FromRow)]
pub struct Label {
    pub id: i64,
    pub code: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub channel_type: ChannelType,
    pub tier: String,
    #[sqlx(try_from = "String")]
    pub status: OutletStatus,
}

/// Labels of the given outlets of the org, by id.
pub async fn labels(db: impl PgExecutor<'_>, org_id: i64, ids: &[i64]) -> Result<HashMap<i64, Label>, sqlx::Error> {
    let rows: Vec<Label> = sqlx::query_as(
        "SELECT id, code, name, channel_type, tier, status FROM outlets WHERE org_id = $1 AND id = ANY($2)",
    )
    .bind(org_id)
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|l| (l.id, l)).collect())
}

/// Ids of the territory `root` and every territory below it.
pub async fn subtree(db: impl PgExecutor<'_>, org_id: i64, root: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM territories WHERE org_id = $1 AND path @> ARRAY[$2::bigint]")
        .bind(org_id)
        .bind(root)
        .fetch_all(db)
        .await
}
