//! OGC API – Features – Part 1 (Core and GeoJSON conformance classes) under `/ogc`, so that `QGIS`,
//! `ArcGIS` and `GDAL` read the outlets and territories straight from the server: landing page,
//! conformance, collections, items with `bbox`, `limit`, `datetime` and `next` links, and single
//! items. The same token and scope as the rest of the API (the landing page and the conformance
//! declaration are public: they hold no data).

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::ApiError;
use super::links::BaseUrl;
use crate::db;
use crate::domain::layers::{self, feature};
use crate::domain::territory::multipolygon;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ogc", get(landing))
        .route("/ogc/conformance", get(conformance))
        .route("/ogc/collections", get(collections))
        .route("/ogc/collections/{id}", get(collection))
        .route("/ogc/collections/{id}/items", get(items))
        .route("/ogc/collections/{id}/items/{fid}", get(item))
}

const GEO_JSON: &str = "application/geo+json";
const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
/// Items per page unless asked for fewer or more (at most [`MAX_LIMIT`]).
const DEFAULT_LIMIT: i64 = 1_000;
const MAX_LIMIT: i64 = 10_000;
/// Largest `after` taken: an offset or id beyond it could not be followed by a page (`after +
/// limit` would overflow), so it is a 400 rather than a wrapped cursor.
pub const MAX_AFTER: i64 = i64::MAX - MAX_LIMIT;

/// The collections served: id, title, description.
const COLLECTIONS: [(&str, &str, &str); 2] = [
    ("outlets", "Outlets", "Retail outlets of the caller's territories: code, name, tier, channel type, status"),
    ("territories", "Territories", "The territory tree of the caller's scope, with boundaries"),
];

/// The OGC API root under the request's base URL (for absolute links).
fn base(root: &BaseUrl) -> String {
    format!("{}/ogc", root.0)
}

fn json_reply(content_type: &'static str, body: &Value) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body.to_string()).into_response()
}

fn link(href: String, rel: &str, media: &str, title: &str) -> Value {
    let mut l = serde_json::Map::new();
    l.insert("href".into(), Value::String(href));
    l.insert("rel".into(), rel.into());
    l.insert("type".into(), media.into());
    l.insert("title".into(), title.into());
    Value::Object(l)
}

async fn landing(root: BaseUrl) -> Response {
    let b = base(&root);
    let root = b.trim_end_matches("/ogc").to_owned();
    json_reply(
        "application/json",
        &json!({
            "title": "fieldvisit",
            "description": "Outlets and territories of a field sales organisation (OGC API - Features)",
            "links": [
                link(b.clone(), "self", "application/json", "This document"),
                link(format!("{root}/openapi.json"), "service-desc", "application/vnd.oai.openapi+json;version=3.0", "The API definition"),
                link(format!("{root}/docs"), "service-doc", "text/html", "The API documentation"),
                link(format!("{b}/conformance"), "conformance", "application/json", "Conformance classes"),
                link(format!("{b}/collections"), "data", "application/json", "The collections"),
            ],
        }),
    )
}

async fn conformance() -> Response {
    json_reply(
        "application/json",
        &json!({"conformsTo": [
            "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
            "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        ]}),
    )
}

fn describe(b: &str, id: &str, title: &str, description: &str) -> Value {
    json!({
        "id": id,
        "title": title,
        "description": description,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]], "crs": CRS84}},
        "links": [
            link(format!("{b}/collections/{id}"), "self", "application/json", title),
            link(format!("{b}/collections/{id}/items"), "items", GEO_JSON, title),
        ],
    })
}

fn known(id: &str) -> Result<(&'static str, &'static str, &'static str), ApiError> {
    COLLECTIONS.into_iter().find(|c| c.0 == id).ok_or_else(|| ApiError::not_found("collection", id))
}

async fn collections(_auth: Can<p::ReadOutlets>, root: BaseUrl) -> Response {
    let b = base(&root);
    json_reply(
        "application/json",
        &json!({
            "links": [link(format!("{b}/collections"), "self", "application/json", "The collections")],
            "collections": COLLECTIONS.iter().map(|(id, t, d)| describe(&b, id, t, d)).collect::<Vec<_>>(),
        }),
    )
}

async fn collection(_auth: Can<p::ReadOutlets>, root: BaseUrl, Path(id): Path<String>) -> Result<Response, ApiError> {
    let (id, title, description) = known(&id)?;
    Ok(json_reply("application/json", &describe(&base(&root), id, title, description)))
}

/// The query parameters of an items request (OGC: an unknown parameter is a 400).
#[derive(Debug, Default)]
struct ItemsQuery {
    bbox: Option<[f64; 4]>,
    limit: i64,
    /// Outlets: the id after which the page starts; territories: the offset.
    after: i64,
}

fn bad(field: &str, reason: &str) -> ApiError {
    ApiError::bad_request(format!("{field}: {reason}"))
}

fn parse_items_query(raw: Option<&str>) -> Result<ItemsQuery, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|_| bad("query", "not a valid query string"))?;
    let mut q = ItemsQuery { limit: DEFAULT_LIMIT, ..ItemsQuery::default() };
    for (k, v) in pairs {
        match k.as_str() {
            "bbox" => {
                q.bbox = Some(layers::parse_bbox(&v).ok_or_else(|| {
                    bad("bbox", "expected min lon, min lat, max lon, max lat in range, min lat not above max lat")
                })?);
            }
            // Any limit is accepted and brought into range (OGC: the server may cap it).
            "limit" => {
                q.limit = v.parse::<i64>().map_err(|_| bad("limit", "not an integer"))?.clamp(1, MAX_LIMIT);
            }
            "after" => {
                q.after = v.parse::<i64>().map_err(|_| bad("after", "not an integer"))?.max(0);
                if q.after > MAX_AFTER {
                    return Err(bad("after", &format!("at most {MAX_AFTER}")));
                }
            }
            // The collections have no time dimension: a well-formed datetime selects everything.
            "datetime" => {
                let ok =
                    v.split('/').all(|p| p == ".." || p.is_empty() || chrono::DateTime::parse_from_rfc3339(p).is_ok())
                        && v.split('/').count() <= 2;
                if !ok {
                    return Err(bad("datetime", "expected an RFC 3339 instant or interval (a/b, ../b, a/..)"));
                }
            }
            "f" if v == "json" || v == "geojson" => {}
            other => return Err(bad(other, "unknown parameter")),
        }
    }
    Ok(q)
}

fn page_links(b: &str, id: &str, q: &ItemsQuery, next_after: Option<i64>) -> Vec<Value> {
    let bbox = q.bbox.map(|b| format!("&bbox={},{},{},{}", b[0], b[1], b[2], b[3])).unwrap_or_default();
    let mut links = vec![link(
        format!("{b}/collections/{id}/items?limit={}&after={}{bbox}", q.limit, q.after),
        "self",
        GEO_JSON,
        "This page",
    )];
    if let Some(after) = next_after {
        links.push(link(
            format!("{b}/collections/{id}/items?limit={}&after={after}{bbox}", q.limit),
            "next",
            GEO_JSON,
            "Next page",
        ));
    }
    links.push(link(format!("{b}/collections/{id}"), "collection", "application/json", id));
    links
}

fn outlet_feature(o: &db::outlets::Outlet) -> Value {
    feature(
        o.id,
        layers::point_geometry(o.lat, o.lon),
        json!({
            "code": o.code, "name": o.name, "tier": o.tier, "channel_type": o.channel_type,
            "status": o.status, "territory_id": o.territory_id, "address": o.address, "radius_m": o.radius_m,
        }),
    )
}

fn territory_feature(t: &db::territories::Territory) -> Option<Value> {
    let area = multipolygon(t.boundary.as_ref()?)?;
    Some(feature(
        t.id,
        layers::multipolygon_geometry(&area, None),
        json!({"code": t.code, "name": t.name, "level": t.level, "parent_id": t.parent_id}),
    ))
}

/// A page of the outlets in the caller's scope: their features, how many match, the next cursor.
async fn outlets_page(
    state: &AppState,
    auth: &Principal,
    q: &ItemsQuery,
) -> Result<(Vec<Value>, i64, Option<i64>), ApiError> {
    let filter = db::outlets::Filter {
        scope_root: auth.scope_root(),
        territory_id: None,
        tier: None,
        channel_type: None,
        status: None,
        bbox: q.bbox,
        near: None,
        q: None,
    };
    let rows = db::outlets::list(&state.db, auth.org_id, &filter, q.after, q.limit + 1).await?;
    let matched = db::outlets::count(&state.db, auth.org_id, &filter).await?;
    let more = rows.len() as i64 > q.limit;
    let page: Vec<&db::outlets::Outlet> = rows.iter().take(q.limit as usize).collect();
    let next = more.then(|| page.last().map(|o| o.id)).flatten();
    Ok((page.into_iter().map(outlet_feature).collect(), matched, next))
}

/// A page of the territories with a boundary in the caller's scope (the cursor is an offset).
async fn territories_page(
    state: &AppState,
    auth: &Principal,
    q: &ItemsQuery,
) -> Result<(Vec<Value>, i64, Option<i64>), ApiError> {
    let all = db::territories::with_boundary_in(&state.db, auth.org_id, auth.scope_root(), q.bbox, i64::MAX).await?;
    let matched = all.len() as i64;
    let page: Vec<Value> =
        all.iter().skip(q.after as usize).take(q.limit as usize).filter_map(territory_feature).collect();
    let next = q.after.checked_add(q.limit).filter(|n| *n < matched);
    Ok((page, matched, next))
}

async fn items(
    State(state): State<AppState>,
    auth: Can<p::ReadOutlets>,
    root: BaseUrl,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (id, _, _) = known(&id)?;
    let q = parse_items_query(raw.as_deref())?;
    let b = base(&root);
    let (features, matched, next_after) = if id == "outlets" {
        outlets_page(&state, &auth, &q).await?
    } else {
        territories_page(&state, &auth, &q).await?
    };
    let mut body = json!({
        "type": "FeatureCollection",
        "timeStamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "numberMatched": matched,
        "numberReturned": features.len(),
        "links": page_links(&b, id, &q, next_after),
    });
    body["features"] = Value::Array(features);
    Ok(json_reply(GEO_JSON, &body))
}

async fn item(
    State(state): State<AppState>,
    auth: Can<p::ReadOutlets>,
    root: BaseUrl,
    Path((id, fid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (id, _, _) = known(&id)?;
    let fid_n: i64 = fid.parse().map_err(|_| ApiError::not_found(id, fid.as_str()))?;
    let found = if id == "outlets" {
        match db::outlets::get(&state.db, auth.org_id, fid_n).await? {
            Some(o) if auth.check_territory(o.territory_path.as_deref()).is_ok() => Some(outlet_feature(&o)),
            _ => None,
        }
    } else {
        match db::territories::get(&state.db, auth.org_id, fid_n).await? {
            Some(t) if auth.check_territory(Some(&t.path)).is_ok() => territory_feature(&t),
            _ => None,
        }
    };
    // Outside the caller's scope looks like absent (no probing of ids).
    let mut f = found.ok_or_else(|| ApiError::not_found(id, fid_n))?;
    let b = base(&root);
    f["links"] = json!([
        link(format!("{b}/collections/{id}/items/{fid_n}"), "self", GEO_JSON, "This feature"),
        link(format!("{b}/collections/{id}"), "collection", "application/json", id),
    ]);
    Ok(json_reply(GEO_JSON, &f))
}
