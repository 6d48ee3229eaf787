//! The territory tree. Boundaries travel as GeoJSON text and are parsed/validated by PostGIS.

use crate::domain::territory::TerritoryLevel;
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Territory {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub code: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub level: TerritoryLevel,
    /// Ids from the root down to this territory.
    pub path: Vec<i64>,
    /// Boundary as a GeoJSON MultiPolygon, when set.
    #[schema(value_type = Option<Object>)]
    pub boundary: Option<serde_json::Value>,
}

const SELECT: &str =
    "SELECT id, parent_id, code, name, level, path, ST_AsGeoJSON(boundary, 7)::jsonb AS boundary FROM territories";

pub struct NewTerritory<'a> {
    pub parent_id: Option<i64>,
    pub code: &'a str,
    pub name: &'a str,
    pub level: TerritoryLevel,
    /// GeoJSON Polygon or MultiPolygon text.
    pub boundary_geojson: Option<&'a str>,
}

/// Why a GeoJSON boundary is not acceptable, or `None` when it is a valid (multi)polygon.
pub async fn boundary_problem(db: impl PgExecutor<'_>, geojson: &str) -> Result<Option<String>, sqlx::Error> {
    let res: Result<(Option<String>, String), sqlx::Error> = sqlx::query_as(
        "SELECT CASE WHEN ST_IsValid(g) THEN NULL ELSE ST_IsValidReason(g) END, GeometryType(g)
           FROM (SELECT ST_SetSRID(ST_GeomFromGeoJSON($1), 4326) AS g) s",
    )
    .bind(geojson)
    .fetch_one(db)
    .await;
    match res {
        Ok((_, kind)) if kind != "POLYGON" && kind != "MULTIPOLYGON" => {
            Ok(Some(format!("must be a Polygon or MultiPolygon, not {kind}")))
        }
        Ok((reason, _)) => Ok(reason),
        Err(sqlx::Error::Database(e)) => Ok(Some(format!("not a readable GeoJSON geometry: {}", e.message()))),
        Err(e) => Err(e),
    }
}

pub async fn create(db: impl PgExecutor<'_>, org_id: i64, t: &NewTerritory<'_>) -> Result<Territory, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO territories (org_id, parent_id, code, name, level, boundary)
         VALUES ($1, $2, $3, $4, $5, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($6), 4326)))
         RETURNING id, parent_id, code, name, level, path, ST_AsGeoJSON(boundary, 7)::jsonb AS boundary",
    )
    .bind(org_id)
    .bind(t.parent_id)
    .bind(t.code)
    .bind(t.name)
    .bind(t.level.as_str())
    .bind(t.boundary_geojson)
    .fetch_one(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, org_id: i64, id: i64) -> Result<Option<Territory>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE org_id = $1 AND id = $2")).bind(org_id).bind(id).fetch_optional(db).await
}

pub async fn by_code(db: impl PgExecutor<'_>, org_id: i64, code: &str) -> Result<Option<Territory>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE org_id = $1 AND code = $2"))
        .bind(org_id)
        .bind(code)
        .fetch_optional(db)
        .await
}

/// Territories in the subtree `scope_root` (all when `None`), ordered by id.
pub async fn list(
    db: impl PgExecutor<'_>,
    org_id: i64,
    scope_root: Option<i64>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<Territory>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE org_id = $1 AND ($2::bigint IS NULL OR path @> ARRAY[$2::bigint]) AND id > $3 ORDER BY id LIMIT $4"
    ))
    .bind(org_id)
    .bind(scope_root)
    .bind(after_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Territories with a boundary in the subtree `scope_root` (all when `None`) whose boundary box
/// meets `bbox` (`[min_lon, min_lat, max_lon, max_lat]`; min lon > max lon crosses the
/// antimeridian; `None` = anywhere), ordered by id, at most `limit`.
pub async fn with_boundary_in(
    db: impl PgExecutor<'_>,
    org_id: i64,
    scope_root: Option<i64>,
    bbox: Option<[f64; 4]>,
    limit: i64,
) -> Result<Vec<Territory>, sqlx::Error> {
    let b = bbox.map_or([None; 4], |b| b.map(Some));
    sqlx::query_as(&format!(
        "{SELECT} WHERE org_id = $1 AND ($2::bigint IS NULL OR path @> ARRAY[$2::bigint]) AND boundary IS NOT NULL
            AND ($3::float8 IS NULL
                 OR boundary && ST_MakeEnvelope($3, $4, CASE WHEN $3 <= $5 THEN $5 ELSE 180 END, $6, 4326)
                 OR ($3 > $5 AND boundary && ST_MakeEnvelope(-180, $4, $5, $6, 4326)))
          ORDER BY id LIMIT $7"
    ))
    .bind(org_id)
    .bind(scope_root)
    .bind(b[0])
    .bind(b[1])
    .bind(b[2])
    .bind(b[3])
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The direct children of a territory, by code.
pub async fn children(db: impl PgExecutor<'_>, org_id: i64, parent_id: i64) -> Result<Vec<Territory>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE org_id = $1 AND parent_id = $2 ORDER BY code"))
        .bind(org_id)
        .bind(parent_id)
        .fetch_all(db)
        .await
}

/// Ids of the territory `root` and every territory below it.
pub async fn subtree_ids(db: impl PgExecutor<'_>, org_id: i64, root: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM territories WHERE org_id = $1 AND path @> ARRAY[$2::bigint]")
        .bind(org_id)
        .bind(root)
        .fetch_all(db)
        .await
}

/// The deepest territory whose boundary contains the point, if any.
pub async fn locate(db: impl PgExecutor<'_>, org_id: i64, lat: f64, lon: f64) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM territories
          WHERE org_id = $1 AND boundary IS NOT NULL
            AND ST_Intersects(boundary, ST_SetSRID(ST_MakePoint($3, $2), 4326))
          ORDER BY cardinality(path) DESC, id LIMIT 1",
    )
    .bind(org_id)
    .bind(lat)
    .bind(lon)
    .fetch_optional(db)
    .await
}

/// Updates name, level and boundary of an existing territory (by code); returns its id.
pub async fn update_by_code(
    db: impl PgExecutor<'_>,
    org_id: i64,
    t: &NewTerritory<'_>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE territories SET name = $3, level = $4,
                boundary = ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($5), 4326)), updated_at = now()
          WHERE org_id = $1 AND code = $2 RETURNING id",
    )
    .bind(org_id)
    .bind(t.code)
    .bind(t.name)
    .bind(t.level.as_str())
    .bind(t.boundary_geojson)
    .fetch_optional(db)
    .await
}

/// Re-assigns every outlet of the org to the deepest territory containing it (after boundaries
/// changed). Outlets outside every boundary keep their territory. Returns how many changed.
pub async fn reassign_outlets(db: impl PgExecutor<'_>, org_id: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE outlets o SET territory_id = best.id, updated_at = now()
           FROM (SELECT o2.id AS outlet_id,
                        (SELECT t.id FROM territories t
                          WHERE t.org_id = o2.org_id AND t.boundary IS NOT NULL AND ST_Intersects(t.boundary, o2.location)
                          ORDER BY cardinality(t.path) DESC, t.id LIMIT 1) AS id
                   FROM outlets o2 WHERE o2.org_id = $1) best
          WHERE o.org_id = $1 AND o.id = best.outlet_id AND best.id IS NOT NULL
            AND o.territory_id IS DISTINCT FROM best.id",
    )
    .bind(org_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Outlet counts of a territory's subtree.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub territory_id: i64,
    pub outlets: i64,
    pub by_tier: BTreeMap<String, i64>,
    pub by_channel_type: BTreeMap<String, i64>,
    pub by_status: BTreeMap<String, i64>,
}

pub async fn summary(db: impl PgExecutor<'_>, org_id: i64, territory_id: i64) -> Result<Summary, sqlx::Error> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT o.tier, o.channel_type, o.status, count(*)
           FROM outlets o JOIN territories t ON t.org_id = o.org_id AND t.id = o.territory_id
          WHERE o.org_id = $1 AND t.path @> ARRAY[$2::bigint]
          GROUP BY 1, 2, 3",
    )
    .bind(org_id)
    .bind(territory_id)
    .fetch_all(db)
    .await?;
    let mut s = Summary {
        territory_id,
        outlets: 0,
        by_tier: BTreeMap::new(),
        by_channel_type: BTreeMap::new(),
        by_status: BTreeMap::new(),
    };
    for (tier, channel, status, n) in rows {
        s.outlets += n;
        *s.by_tier.entry(tier).or_default() += n;
        *s.by_channel_type.entry(channel).or_default() += n;
        *s.by_status.entry(status).or_default() += n;
    }
    Ok(s)
}

/// Each territory of `root`'s subtree with the direct child of `root` it lies under (`None` for
/// `root` itself).
pub async fn child_of_each(
    db: impl PgExecutor<'_>,
    org_id: i64,
    root: i64,
) -> Result<std::collections::HashMap<i64, Option<i64>>, sqlx::Error> {
    let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, path[array_position(path, $2::bigint) + 1] FROM territories
          WHERE org_id = $1 AND path @> ARRAY[$2::bigint]",
    )
    .bind(org_id)
    .bind(root)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}
