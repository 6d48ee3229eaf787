//! Outlet queries answered by the in-memory index: nearest to a point, within a radius, in an H3
//! cell, in a territory's boundary. Distances are great-circle metres. Every answer holds only
//! outlets in the caller's territory scope, and only active ones unless `include_inactive=true`.

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Paged, Path, Query, int_range};
use crate::db;
use crate::domain::outlet::{ChannelType, OutletStatus};
use crate::domain::territory::multipolygon;
use crate::domain::validation::FieldError;
use crate::index::outlets::{IndexedOutlet, MAX_CELL_RES, MIN_CELL_RES};
use crate::index::registry;
use axum::extract::State;
use h3o::CellIndex;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(nearest))
        .routes(routes!(within))
        .routes(routes!(in_cell))
        .routes(routes!(in_territory))
}

/// Largest `k` of a nearest query.
pub const MAX_K: usize = 100;
/// Largest radius of a within query, metres.
pub const MAX_RADIUS_M: f64 = 100_000.0;
/// Largest page of the list answers.
pub const MAX_LIMIT: usize = 1000;

/// An outlet found by an index query.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NearbyOutlet {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub channel_type: ChannelType,
    pub tier: String,
    pub status: OutletStatus,
    pub territory_id: Option<i64>,
    pub lat: f64,
    pub lon: f64,
    /// Great-circle distance from the query point, metres (nearest and within queries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<f64>,
}

/// Outlets nearest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Nearest {
    pub items: Vec<NearbyOutlet>,
}

/// Outlets within a radius, nearest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Within {
    /// At most `limit` outlets, nearest first.
    pub items: Vec<NearbyOutlet>,
    /// How many outlets are within the radius in all.
    pub total: usize,
}

/// Query parameters arrive as text so that a bad value is reported by name (422, `errors[].field`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct NearestQuery {
    /// Latitude of the point, degrees (-90 to 90).
    #[param(value_type = f64, minimum = -90, maximum = 90)]
    lat: Option<String>,
    /// Longitude of the point, degrees (-180 to 180).
    #[param(value_type = f64, minimum = -180, maximum = 180)]
    lon: Option<String>,
    /// How many outlets (1-100, default 5).
    #[param(value_type = Option<u32>, schema_with = int_range::<1, { MAX_K as i64 }>)]
    k: Option<String>,
    /// Also closed and suspended outlets (default false).
    #[param(value_type = Option<bool>)]
    include_inactive: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WithinQuery {
    /// Latitude of the centre, degrees (-90 to 90).
    #[param(value_type = f64, minimum = -90, maximum = 90)]
    lat: Option<String>,
    /// Longitude of the centre, degrees (-180 to 180).
    #[param(value_type = f64, minimum = -180, maximum = 180)]
    lon: Option<String>,
    /// Radius, metres (greater than 0, at most 100000).
    // `f64::MIN_POSITIVE` to `MAX_RADIUS_M`, as `within` reads it (literals: `schema_with` would
    // drop `required`).
    #[param(value_type = f64, minimum = 2.225_073_858_507_201_4e-308, maximum = 100_000)]
    radius_m: Option<String>,
    /// Most outlets to return, nearest first (1-1000, default 100); `total` counts all.
    #[param(value_type = Option<u32>, schema_with = int_range::<1, { MAX_LIMIT as i64 }>)]
    limit: Option<String>,
    /// Also closed and suspended outlets (default false).
    #[param(value_type = Option<bool>)]
    include_inactive: Option<String>,
}

/// Paging of the id-ordered answers.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Items per page (1-1000, default 100).
    #[param(value_type = Option<u32>, schema_with = int_range::<1, { MAX_LIMIT as i64 }>)]
    limit: Option<String>,
    /// Cursor: `next` of the previous page.
    #[param(value_type = Option<i64>)]
    after: Option<String>,
    /// Also closed and suspended outlets (default false).
    #[param(value_type = Option<bool>)]
    include_inactive: Option<String>,
}

/// Collects field errors while parsing parameters.
#[derive(Default)]
struct Params(Vec<FieldError>);

impl Params {
    fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.0.push(FieldError::new(field, reason));
    }

    fn number(&mut self, field: &str, text: Option<&str>, range: (f64, f64), what: &str) -> Option<f64> {
        let Some(text) = text else {
            self.fail(field, "is required");
            return None;
        };
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v >= range.0 && v <= range.1 => Some(v),
            _ => {
                self.fail(field, what.to_owned());
                None
            }
        }
    }

    fn count(&mut self, field: &str, text: Option<&str>, default: usize, max: usize) -> usize {
        let Some(text) = text else { return default };
        match text.trim().parse::<usize>() {
            Ok(v) if (1..=max).contains(&v) => v,
            _ => {
                self.fail(field, format!("must be an integer from 1 to {max}"));
                default
            }
        }
    }

    fn flag(&mut self, field: &str, text: Option<&str>) -> bool {
        match text.map(str::trim) {
            None | Some("false" | "0") => false,
            Some("true" | "1") => true,
            Some(_) => {
                self.fail(field, "must be true or false");
                false
            }
        }
    }

    fn position(&mut self, lat: Option<&str>, lon: Option<&str>) -> (f64, f64) {
        let lat = self.number("lat", lat, (-90.0, 90.0), "must be a number of degrees from -90 to 90");
        let lon = self.number("lon", lon, (-180.0, 180.0), "must be a number of degrees from -180 to 180");
        (lat.unwrap_or_default(), lon.unwrap_or_default())
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::invalid(self.0)) }
    }
}

/// Which outlets the caller may see: all of the org, or those of a set of territories.
enum Visible {
    All,
    Territories(HashSet<i64>),
}

impl Visible {
    async fn of(state: &AppState, who: &Principal) -> Result<Visible, ApiError> {
        Ok(match who.scope_root() {
            None => Visible::All,
            Some(root) => Visible::Territories(
                db::territories::subtree_ids(&state.db, who.org_id, root).await?.into_iter().collect(),
            ),
        })
    }

    /// The filter of an answer: in scope, and active unless inactive ones are wanted.
    fn keeps(&self, o: &IndexedOutlet, include_inactive: bool) -> bool {
        (include_inactive || o.active)
            && match self {
                Visible::All => true,
                Visible::Territories(set) => o.territory_id.is_some_and(|t| set.contains(&t)),
            }
    }
}

/// Labels the outlets found (in the given order) from the database; an outlet deleted meanwhile is left out.
async fn describe(
    state: &AppState,
    org_id: i64,
    found: Vec<(IndexedOutlet, Option<f64>)>,
) -> Result<Vec<NearbyOutlet>, ApiError> {
    let ids: Vec<i64> = found.iter().map(|(o, _)| o.id).collect();
    let mut labels = db::outlets::labels(&state.db, org_id, &ids).await?;
    Ok(found
        .into_iter()
        .filter_map(|(o, distance_m)| {
            let l = labels.remove(&o.id)?;
            Some(NearbyOutlet {
                id: o.id,
                code: l.code,
                name: l.name,
                channel_type: l.channel_type,
                tier: l.tier,
                status: l.status,
                territory_id: o.territory_id,
                lat: o.lat,
                lon: o.lon,
                distance_m,
            })
        })
        .collect())
}

/// The `k` outlets nearest to a point, nearest first.
#[utoipa::path(get, path = "/outlets/nearest", tag = "outlets", params(NearestQuery), responses(
    (status = 200, body = Nearest), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn nearest(
    State(state): State<AppState>,
    auth: Can<p::ReadOutlets>,
    Query(q): Query<NearestQuery>,
) -> Result<Json<Nearest>, ApiError> {
    let mut params = Params::default();
    let (lat, lon) = params.position(q.lat.as_deref(), q.lon.as_deref());
    let k = params.count("k", q.k.as_deref(), 5, MAX_K);
    let inactive = params.flag("include_inactive", q.include_inactive.as_deref());
    params.finish()?;
    let visible = Visible::of(&state, &auth).await?;
    let index = state.index.org(auth.org_id).await?;
    let found: Vec<(IndexedOutlet, Option<f64>)> = {
        let ix = registry::read(&index);
        ix.nearest_where(lat, lon, k, |o| visible.keeps(o, inactive))
            .into_iter()
            .filter_map(|h| ix.get(h.id).map(|o| (o.clone(), Some(h.distance_m))))
            .collect()
    };
    Ok(Json(Nearest { items: describe(&state, auth.org_id, found).await? }))
}

/// Outlets within `radius_m` metres of a point, nearest first.
#[utoipa::path(get, path = "/outlets/within", tag = "outlets", params(WithinQuery), responses(
    (status = 200, body = Within), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn within(
    State(state): State<AppState>,
    auth: Can<p::ReadOutlets>,
    Query(q): Query<WithinQuery>,
) -> Result<Json<Within>, ApiError> {
    let mut params = Params::default();
    let (lat, lon) = params.position(q.lat.as_deref(), q.lon.as_deref());
    let radius = params.number(
        "radius_m",
        q.radius_m.as_deref(),
        (f64::MIN_POSITIVE, MAX_RADIUS_M),
        "must be a number of metres greater than 0 and at most 100000",
    );
    let limit = params.count("limit", q.limit.as_deref(), 100, MAX_LIMIT);
    let inactive = params.flag("include_inactive", q.include_inactive.as_deref());
    params.finish()?;
    let radius = radius.unwrap_or_default();
    let visible = Visible::of(&state, &auth).await?;
    let index = state.index.org(auth.org_id).await?;
    let (found, total) = {
        let ix = registry::read(&index);
        let hits: Vec<(IndexedOutlet, Option<f64>)> = ix
            .within_radius(lat, lon, radius)
            .into_iter()
            .filter_map(|h| ix.get(h.id).map(|o| (o.clone(), Some(h.distance_m))))
            .filter(|(o, _)| visible.keeps(o, inactive))
            .collect();
        let total = hits.len();
        (hits.into_iter().take(limit).collect(), total)
    };
    Ok(Json(Within { items: describe(&state, auth.org_id, found).await?, total }))
}

/// One page of an id-ordered answer.
async fn page(
    state: &AppState,
    who: &Principal,
    q: &ListQuery,
    params: Params,
    ids: impl FnOnce(&crate::index::outlets::OutletIndex) -> Vec<i64>,
) -> Result<Json<Paged<NearbyOutlet>>, ApiError> {
    let mut params = params;
    let limit = params.count("limit", q.limit.as_deref(), 100, MAX_LIMIT);
    let after = match q.after.as_deref().map(|a| a.trim().parse::<i64>()) {
        None => 0,
        Some(Ok(a)) => a,
        Some(Err(_)) => {
            params.fail("after", "must be the `next` cursor of the previous page");
            0
        }
    };
    let inactive = params.flag("include_inactive", q.include_inactive.as_deref());
    params.finish()?;
    let visible = Visible::of(state, who).await?;
    let index = state.index.org(who.org_id).await?;
    let found: Vec<(IndexedOutlet, Option<f64>)> = {
        let ix = registry::read(&index);
        ids(&ix)
            .into_iter()
            .filter(|id| *id > after)
            .filter_map(|id| ix.get(id).cloned())
            .filter(|o| visible.keeps(o, inactive))
            .take(limit)
            .map(|o| (o, None))
            .collect()
    };
    let items = describe(state, who.org_id, found).await?;
    Ok(Json(Paged::new(items, limit as i64, |o| o.id)))
}

/// Outlets inside an H3 cell of resolution 5 to 10 (hexadecimal index), by id.
#[utoipa::path(get, path = "/outlets/in-cell/{h3}", tag = "outlets", params(
    ("h3" = String, Path, description = "H3 cell index in hexadecimal, resolution 5 to 10"), ListQuery), responses(
    (status = 200, body = Paged<NearbyOutlet>), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn in_cell(
    State(state): State<AppState>,
    auth: Can<p::ReadOutlets>,
    Path(h3): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Paged<NearbyOutlet>>, ApiError> {
    let mut params = Params::default();
    let cell = match parse_cell(&h3) {
        Ok(cell) => Some(cell),
        Err(reason) => {
            params.fail("h3", reason);
            None
        }
    };
    page(&state, &auth, &q, params, |ix| cell.map(|c| ix.in_cell(c)).unwrap_or_default()).await
}

fn parse_cell(text: &str) -> Result<CellIndex, String> {
    let text = text.trim();
    let cell = text
        .parse::<CellIndex>()
        .or_else(|_| text.parse::<u64>().map_err(|_| ()).and_then(|n| CellIndex::try_from(n).map_err(|_| ())))
        .map_err(|()| "not an H3 cell index (hexadecimal, e.g. 8a31aa5a2a07fff)".to_owned())?;
    let res = cell.resolution();
    if res < MIN_CELL_RES || res > MAX_CELL_RES {
        return Err(format!(
            "resolution {} is not supported: use a cell of resolution {} to {}",
            u8::from(res),
            u8::from(MIN_CELL_RES),
            u8::from(MAX_CELL_RES)
        ));
    }
    Ok(cell)
}

/// Outlets inside (or on) the boundary of a territory in your scope, by id.
#[utoipa::path(get, path = "/outlets/in-territory/{id}", tag = "outlets", params(
    ("id" = i64, Path, description = "Territory id"), ListQuery), responses(
    (status = 200, body = Paged<NearbyOutlet>), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn in_territory(
    State(state): State<AppState>,
    auth: Can<p::ReadOutlets>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Paged<NearbyOutlet>>, ApiError> {
    let id: i64 = id.trim().parse().map_err(|_| ApiError::field("id", "must be a territory id (an integer)"))?;
    let t =
        db::territories::get(&state.db, auth.org_id, id).await?.ok_or_else(|| ApiError::not_found("territory", id))?;
    auth.check_territory(Some(&t.path))?;
    let boundary = t.boundary.ok_or_else(|| ApiError::field("id", "this territory has no boundary"))?;
    let area = multipolygon(&boundary)
        .ok_or_else(|| ApiError::Internal(format!("territory {id}: boundary is not a GeoJSON (multi)polygon")))?;
    page(&state, &auth, &q, Params::default(), |ix| ix.within_polygon(&area)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_parse_in_hex_or_decimal_and_resolution_is_checked() {
        let cell = h3o::LatLng::new(39.9, 116.4).expect("valid").to_cell(h3o::Resolution::Eight);
        assert_eq!(parse_cell(&cell.to_string()), Ok(cell));
        assert_eq!(parse_cell(&u64::from(cell).to_string()), Ok(cell));
        let coarse = h3o::LatLng::new(39.9, 116.4).expect("valid").to_cell(h3o::Resolution::Four);
        assert!(parse_cell(&coarse.to_string()).expect_err("too coarse").contains("resolution 4"));
        assert!(parse_cell("zzz").is_err());
    }
}
