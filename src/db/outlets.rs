//! Outlets. Locations are stored as PostGIS points and exposed as lat/lon.

use crate::domain::outlet::{ChannelType, OutletStatus};
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Outlet {
    pub id: i64,
    pub code: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub channel_type: ChannelType,
    pub tier: String,
    pub lat: f64,
    pub lon: f64,
    /// Own geofence radius, metres; `null` = the tier policy's default.
    pub radius_m: Option<f32>,
    #[sqlx(try_from = "String")]
    pub status: OutletStatus,
    pub territory_id: Option<i64>,
    pub address: Option<String>,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    /// Outline of the premises (GeoJSON MultiPolygon), where known: a fix inside it or near it
    /// counts as at the outlet like one near its point.
    #[schema(value_type = Option<Object>)]
    pub footprint: Option<serde_json::Value>,
    /// Territory path, for scope checks.
    #[serde(skip)]
    pub territory_path: Option<Vec<i64>>,
}

const SELECT: &str =
    "SELECT o.id, o.code, o.name, o.channel_type, o.tier, ST_Y(o.location) AS lat, ST_X(o.location) AS lon,
                             o.radius_m, o.status, o.territory_id, o.address, o.attributes,
                             ST_AsGeoJSON(o.footprint)::jsonb AS footprint, t.path AS territory_path
                        FROM outlets o LEFT JOIN territories t ON t.org_id = o.org_id AND t.id = o.territory_id";

/// Fields of a new outlet, or the full new state of an existing one.
#[derive(Debug, Clone)]
pub struct OutletFields {
    pub code: String,
    pub name: String,
    pub channel_type: ChannelType,
    pub tier: String,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: Option<f64>,
    pub status: OutletStatus,
    pub territory_id: Option<i64>,
    pub address: Option<String>,
    pub attributes: serde_json::Value,
    /// GeoJSON Polygon or MultiPolygon (stored as a MultiPolygon).
    pub footprint: Option<serde_json::Value>,
}

impl From<Outlet> for OutletFields {
    fn from(o: Outlet) -> Self {
        OutletFields {
            code: o.code,
            name: o.name,
            channel_type: o.channel_type,
            tier: o.tier,
            lat: o.lat,
            lon: o.lon,
            radius_m: o.radius_m.map(f64::from),
            status: o.status,
            territory_id: o.territory_id,
            address: o.address,
            attributes: o.attributes,
            footprint: o.footprint,
        }
    }
}

pub async fn create(db: impl PgExecutor<'_>, org_id: i64, f: &OutletFields) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO outlets (org_id, code, name, channel_type, tier, location, radius_m, status, territory_id, address,
                              attributes, footprint)
         VALUES ($1, $2, $3, $4, $5, ST_SetSRID(ST_MakePoint($7, $6), 4326), $8, $9, $10, $11, $12,
                 ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($13), 4326)))
         RETURNING id",
    )
    .bind(org_id)
    .bind(&f.code)
    .bind(&f.name)
    .bind(f.channel_type.as_str())
    .bind(&f.tier)
    .bind(f.lat)
    .bind(f.lon)
    .bind(f.radius_m.map(|r| r as f32))
    .bind(f.status.as_str())
    .bind(f.territory_id)
    .bind(&f.address)
    .bind(&f.attributes)
    .bind(f.footprint.as_ref().map(ToString::to_string))
    .fetch_one(db)
    .await
}

/// Replaces the state of an outlet; location changes are kept in the history by trigger. The
/// stored footprint is kept as it is unless `footprint_changed` (its GeoJSON text may be rounded).
pub async fn update(
    db: impl PgExecutor<'_>,
    org_id: i64,
    id: i64,
    f: &OutletFields,
    footprint_changed: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outlets SET code = $3, name = $4, channel_type = $5, tier = $6,
                location = ST_SetSRID(ST_MakePoint($8, $7), 4326), radius_m = $9, status = $10,
                territory_id = $11, address = $12, attributes = $13, updated_at = now(),
                footprint = CASE WHEN $14 THEN ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($15), 4326)) ELSE footprint END
          WHERE org_id = $1 AND id = $2",
    )
    .bind(org_id)
    .bind(id)
    .bind(&f.code)
    .bind(&f.name)
    .bind(f.channel_type.as_str())
    .bind(&f.tier)
    .bind(f.lat)
    .bind(f.lon)
    .bind(f.radius_m.map(|r| r as f32))
    .bind(f.status.as_str())
    .bind(f.territory_id)
    .bind(&f.address)
    .bind(&f.attributes)
    .bind(footprint_changed)
    .bind(f.footprint.as_ref().map(ToString::to_string))
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get(db: impl PgExecutor<'_>, org_id: i64, id: i64) -> Result<Option<Outlet>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE o.org_id = $1 AND o.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// List filters; `None` means "any".
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub scope_root: Option<i64>,
    pub territory_id: Option<i64>,
    pub tier: Option<String>,
    pub channel_type: Option<ChannelType>,
    pub status: Option<OutletStatus>,
    /// min lon, min lat, max lon, max lat; min lon > max lon crosses the antimeridian.
    pub bbox: Option<[f64; 4]>,
    /// lat, lon, radius in metres (great-circle).
    pub near: Option<[f64; 3]>,
    pub q: Option<String>,
}

/// The conditions of a [`Filter`] ($1 org, $2..$9 as [`bind_filter`] binds them).
const FILTER: &str = "WHERE o.org_id = $1
           AND ($2::bigint IS NULL OR t.path @> ARRAY[$2::bigint])
           AND ($3::bigint IS NULL OR t.path @> ARRAY[$3::bigint])
           AND ($4::text IS NULL OR o.tier = $4)
           AND ($5::text IS NULL OR o.channel_type = $5)
           AND ($6::text IS NULL OR o.status = $6)
           AND ($7::float8[] IS NULL
                OR ($7[1] <= $7[3] AND o.location && ST_MakeEnvelope($7[1], $7[2], $7[3], $7[4], 4326))
                OR ($7[1] > $7[3] AND (o.location && ST_MakeEnvelope($7[1], $7[2], 180, $7[4], 4326)
                                       OR o.location && ST_MakeEnvelope(-180, $7[2], $7[3], $7[4], 4326))))
           AND ($8::text IS NULL OR o.code ILIKE '%' || $8 || '%' OR o.name ILIKE '%' || $8 || '%')
           AND ($9::float8[] IS NULL OR ST_DWithin(o.location::geography,
                    ST_SetSRID(ST_MakePoint($9[2], $9[1]), 4326)::geography, $9[3], false))";

fn bind_filter<'q, O>(
    q: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    org_id: i64,
    f: &'q Filter,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    q.bind(org_id)
        .bind(f.scope_root)
        .bind(f.territory_id)
        .bind(&f.tier)
        .bind(f.channel_type.map(ChannelType::as_str))
        .bind(f.status.map(OutletStatus::as_str))
        .bind(f.bbox.map(|b| b.to_vec()))
        .bind(&f.q)
        .bind(f.near.map(|n| n.to_vec()))
}

/// Outlets matching the filter with id > `after_id`, ordered by id (stable cursor order).
pub async fn list(
    db: impl PgExecutor<'_>,
    org_id: i64,
    f: &Filter,
    after_id: i64,
    limit: i64,
) -> Result<Vec<Outlet>, sqlx::Error> {
    let sql = format!("{SELECT} {FILTER} AND o.id > $10 ORDER BY o.id LIMIT $11");
    bind_filter(sqlx::query_as(&sql), org_id, f).bind(after_id).bind(limit).fetch_all(db).await
}

/// How many outlets match the filter.
pub async fn count(db: impl PgExecutor<'_>, org_id: i64, f: &Filter) -> Result<i64, sqlx::Error> {
    let sql = format!(
        "SELECT count(*) FROM outlets o LEFT JOIN territories t ON t.org_id = o.org_id AND t.id = o.territory_id {FILTER}"
    );
    let (n,): (i64,) = bind_filter(sqlx::query_as(&sql), org_id, f).fetch_one(db).await?;
    Ok(n)
}

/// A period during which an outlet stood at one place.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct LocationPeriod {
    pub valid_from: chrono::DateTime<chrono::Utc>,
    /// `null` for the current location.
    pub valid_to: Option<chrono::DateTime<chrono::Utc>>,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: Option<f32>,
}

/// A change of an outlet's status.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct StatusChange {
    pub changed_at: chrono::DateTime<chrono::Utc>,
    #[sqlx(try_from = "String")]
    pub status: OutletStatus,
}

/// Every location and status the outlet has had, oldest first.
pub async fn history(
    db: &mut sqlx::PgConnection,
    org_id: i64,
    id: i64,
) -> Result<(Vec<LocationPeriod>, Vec<StatusChange>), sqlx::Error> {
    let locations = sqlx::query_as(
        "SELECT valid_from, valid_to, ST_Y(location) AS lat, ST_X(location) AS lon, radius_m
           FROM outlet_locations WHERE org_id = $1 AND outlet_id = $2 ORDER BY valid_from",
    )
    .bind(org_id)
    .bind(id)
    .fetch_all(&mut *db)
    .await?;
    let statuses = sqlx::query_as(
        "SELECT changed_at, status FROM outlet_status_changes WHERE org_id = $1 AND outlet_id = $2 ORDER BY changed_at",
    )
    .bind(org_id)
    .bind(id)
    .fetch_all(&mut *db)
    .await?;
    Ok((locations, statuses))
}

/// An outlet as the in-memory index holds it (`index::outlets::IndexedOutlet`).
#[derive(Debug, Clone, FromRow)]
pub struct IndexRow {
    pub id: i64,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: Option<f32>,
    pub active: bool,
    pub territory_id: Option<i64>,
    /// GeoJSON MultiPolygon.
    pub footprint: Option<serde_json::Value>,
    pub code: String,
    pub name: String,
    pub tier: String,
    #[sqlx(try_from = "String")]
    pub channel_type: ChannelType,
    /// Its last status change (`None`: none since it was recorded).
    pub status_since: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

const INDEX_COLUMNS: &str = "o.id, ST_Y(o.location) AS lat, ST_X(o.location) AS lon, o.radius_m,
                             o.status = 'active' AS active, o.territory_id,
                             ST_AsGeoJSON(o.footprint)::jsonb AS footprint,
                             o.code, o.name, o.tier, o.channel_type, o.created_at";

/// Every outlet of the org, whatever its status, for the index.
pub async fn index_rows(db: impl PgExecutor<'_>, org_id: i64) -> Result<Vec<IndexRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INDEX_COLUMNS}, c.status_since
           FROM outlets o
           LEFT JOIN (SELECT outlet_id, max(changed_at) AS status_since FROM outlet_status_changes
                       WHERE org_id = $1 GROUP BY outlet_id) c ON c.outlet_id = o.id
          WHERE o.org_id = $1"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// The given outlets of the org for the index; ids that no longer exist are absent.
pub async fn index_rows_by_id(db: impl PgExecutor<'_>, org_id: i64, ids: &[i64]) -> Result<Vec<IndexRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {INDEX_COLUMNS},
                (SELECT max(c.changed_at) FROM outlet_status_changes c
                  WHERE c.org_id = o.org_id AND c.outlet_id = o.id) AS status_since
           FROM outlets o
          WHERE o.org_id = $1 AND o.id = ANY($2)"
    ))
    .bind(org_id)
    .bind(ids)
    .fetch_all(db)
    .await
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
pub async fn labels(
    db: impl PgExecutor<'_>,
    org_id: i64,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Label>, sqlx::Error> {
    let rows: Vec<Label> = sqlx::query_as(
        "SELECT id, code, name, channel_type, tier, status FROM outlets WHERE org_id = $1 AND id = ANY($2)",
    )
    .bind(org_id)
    .bind(ids)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|l| (l.id, l)).collect())
}

/// Moves the start of every recorded location and status of the org's outlets `days` earlier, as
/// if they had stood there before (the demo's outlets predate its tracks).
pub async fn backdate_history(conn: &mut sqlx::PgConnection, org_id: i64, days: i32) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outlet_locations SET valid_from = valid_from - make_interval(days => $2) WHERE org_id = $1")
        .bind(org_id)
        .bind(days)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE outlet_status_changes SET changed_at = changed_at - make_interval(days => $2) WHERE org_id = $1",
    )
    .bind(org_id)
    .bind(days)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
