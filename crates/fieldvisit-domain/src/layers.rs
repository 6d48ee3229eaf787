//! Map layers as RFC 7946 GeoJSON: positions in longitude, latitude order; polygons with closed
//! rings and the right-hand rule (exterior rings counter-clockwise, holes clockwise); lines and
//! polygons simplified to half a pixel of the zoom level asked for; every collection with its
//! bounding box, and a cap that says when it cut (`truncated`) instead of cutting silently.

use geo::{Coord, LineString, MultiPolygon, Orient, Polygon, Simplify, orient::Direction};
use h3o::CellIndex;
use serde::Serialize;
use serde_json::{Value, json};

/// A bounding box `min_lon,min_lat,max_lon,max_lat` in degrees (min lat <= max lat; min lon >
/// max lon crosses the antimeridian); `None` when it is not one.
pub fn parse_bbox(text: &str) -> Option<[f64; 4]> {
    let parts: Vec<f64> = text.split(',').map(|x| x.trim().parse::<f64>()).collect::<Result<_, _>>().ok()?;
    let b: [f64; 4] = parts.try_into().ok()?;
    let lon = -180.0..=180.0;
    let lat = -90.0..=90.0;
    (lon.contains(&b[0]) && lon.contains(&b[2]) && lat.contains(&b[1]) && lat.contains(&b[3]) && b[1] <= b[3])
        .then_some(b)
}

/// Degrees of half a pixel of a 256-pixel web map tile at `zoom` (at the equator): lines and
/// rings are simplified to this, so the map cannot show the difference.
pub fn tolerance_deg(zoom: u8) -> f64 {
    360.0 / 256.0 / 2f64.powi(i32::from(zoom.min(24))) / 2.0
}

fn ring_coords(ring: &LineString<f64>) -> Value {
    let mut coords: Vec<Value> = ring.coords().map(|c| json!([c.x, c.y])).collect();
    // Closed: the first position repeated at the end (geo keeps rings closed; this makes sure).
    if let (Some(first), Some(last)) = (ring.0.first(), ring.0.last())
        && first != last
    {
        coords.push(json!([first.x, first.y]));
    }
    Value::Array(coords)
}

/// A polygon's rings, simplified to `tolerance` degrees when given (a ring that would collapse
/// keeps its full detail), oriented by the right-hand rule.
fn polygon_rings(p: &Polygon<f64>, tolerance: Option<f64>) -> Value {
    let simple = |r: &LineString<f64>| match tolerance {
        Some(t) if t > 0.0 => {
            let s = r.simplify(t);
            if s.0.len() >= 4 { s } else { r.clone() }
        }
        _ => r.clone(),
    };
    let p = Polygon::new(simple(p.exterior()), p.interiors().iter().map(simple).collect()).orient(Direction::Default);
    Value::Array(std::iter::once(p.exterior()).chain(p.interiors()).map(ring_coords).collect())
}

/// A MultiPolygon geometry, simplified for the map and oriented by the right-hand rule.
pub fn multipolygon_geometry(mp: &MultiPolygon<f64>, tolerance: Option<f64>) -> Value {
    json!({
        "type": "MultiPolygon",
        "coordinates": mp.0.iter().map(|p| polygon_rings(p, tolerance)).collect::<Vec<_>>(),
    })
}

/// A Point geometry.
pub fn point_geometry(lat: f64, lon: f64) -> Value {
    json!({"type": "Point", "coordinates": [lon, lat]})
}

/// A `LineString` geometry of `(lat, lon)` positions, simplified to `tolerance` degrees when given.
pub fn line_geometry(positions: &[(f64, f64)], tolerance: Option<f64>) -> Value {
    let line: LineString<f64> = positions.iter().map(|&(lat, lon)| Coord { x: lon, y: lat }).collect();
    let line = match tolerance {
        Some(t) if t > 0.0 && line.0.len() > 2 => line.simplify(t),
        _ => line,
    };
    json!({"type": "LineString", "coordinates": line.coords().map(|c| [c.x, c.y]).collect::<Vec<_>>()})
}

/// The hexagon (or pentagon) of an H3 cell as a Polygon geometry: closed, counter-clockwise. A
/// cell across the antimeridian is given with longitudes beyond 180 on its eastern side, so that
/// the ring does not wrap around the globe.
pub fn cell_geometry(cell: CellIndex) -> Value {
    serde_json::to_value(cell_polygon(cell)).unwrap_or(Value::Null)
}

/// [`cell_geometry`] as a typed Polygon.
pub fn cell_polygon(cell: CellIndex) -> PolygonGeometry {
    let mut ring: Vec<Coord<f64>> = cell.boundary().iter().map(|v| Coord { x: v.lng(), y: v.lat() }).collect();
    if ring.iter().any(|c| c.x > 90.0) && ring.iter().any(|c| c.x < -90.0) {
        for c in &mut ring {
            if c.x < 0.0 {
                c.x += 360.0;
            }
        }
    }
    let polygon = Polygon::new(LineString::from(ring), vec![]).orient(Direction::Default);
    // `Polygon::new` closes the ring.
    let exterior: Vec<[f64; 2]> = polygon.exterior().coords().map(|c| [c.x, c.y]).collect();
    PolygonGeometry { kind: "Polygon", coordinates: vec![exterior] }
}

fn extend(bbox: &mut Option<[f64; 4]>, coords: &Value) {
    match coords {
        Value::Array(items) if items.len() >= 2 && items.iter().all(Value::is_number) => {
            let (Some(x), Some(y)) = (items[0].as_f64(), items[1].as_f64()) else { return };
            let b = bbox.get_or_insert([x, y, x, y]);
            *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
        }
        Value::Array(items) => items.iter().for_each(|i| extend(bbox, i)),
        _ => {}
    }
}

/// A `FeatureCollection` of `features` with its bounding box (absent when empty), how many features
/// it holds and whether a cap left some out.
pub fn collection(features: Vec<Value>, truncated: bool) -> Value {
    let mut bbox = None;
    for f in &features {
        extend(&mut bbox, &f["geometry"]["coordinates"]);
    }
    let mut fc = json!({
        "type": "FeatureCollection",
        "numberReturned": features.len(),
        "truncated": truncated,
    });
    fc["features"] = Value::Array(features);
    if let Some(b) = bbox {
        fc["bbox"] = json!(b);
    }
    fc
}

/// A Feature serialised straight to text (no JSON tree): the layers of many features.
#[derive(Debug, Serialize)]
pub struct TypedFeature<I, G, P> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: I,
    pub geometry: G,
    pub properties: P,
}

/// A Point Feature with a numeric id.
pub type PointFeature<P> = TypedFeature<i64, PointGeometry, P>;

/// An H3 cell's Feature: its id is the cell.
pub type CellFeature<P> = TypedFeature<String, PolygonGeometry, P>;

/// An RFC 7946 Point: `[lon, lat]`.
#[derive(Debug, Serialize)]
pub struct PointGeometry {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub coordinates: [f64; 2],
}

/// An RFC 7946 Polygon: closed rings of `[lon, lat]`, the exterior first.
#[derive(Debug, Serialize)]
pub struct PolygonGeometry {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub coordinates: Vec<Vec<[f64; 2]>>,
}

/// A geometry's positions, for the collection's bounding box.
pub trait Positions {
    fn each_position(&self, f: &mut dyn FnMut([f64; 2]));
}

impl Positions for PointGeometry {
    fn each_position(&self, f: &mut dyn FnMut([f64; 2])) {
        f(self.coordinates);
    }
}

impl Positions for PolygonGeometry {
    fn each_position(&self, f: &mut dyn FnMut([f64; 2])) {
        self.coordinates.iter().flatten().for_each(|p| f(*p));
    }
}

impl<P> PointFeature<P> {
    pub fn new(id: i64, lat: f64, lon: f64, properties: P) -> Self {
        TypedFeature {
            kind: "Feature",
            id,
            geometry: PointGeometry { kind: "Point", coordinates: [lon, lat] },
            properties,
        }
    }
}

impl<P> CellFeature<P> {
    pub fn of_cell(cell: CellIndex, properties: P) -> Self {
        TypedFeature { kind: "Feature", id: cell.to_string(), geometry: cell_polygon(cell), properties }
    }
}

/// A `FeatureCollection` of typed features as [`collection`] makes it (bounding box, count,
/// `truncated`), with the members of `extra` beside them.
#[derive(Debug, Serialize)]
pub struct TypedCollection<'a, F, E> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "numberReturned")]
    number_returned: usize,
    truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    bbox: Option<[f64; 4]>,
    features: &'a [F],
    #[serde(flatten)]
    extra: E,
}

impl<'a, I, G: Positions, P, E> TypedCollection<'a, TypedFeature<I, G, P>, E> {
    pub fn new(features: &'a [TypedFeature<I, G, P>], truncated: bool, extra: E) -> Self {
        let mut bbox: Option<[f64; 4]> = None;
        for f in features {
            f.geometry.each_position(&mut |[x, y]| {
                let b = bbox.get_or_insert([x, y, x, y]);
                *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
            });
        }
        TypedCollection { kind: "FeatureCollection", number_returned: features.len(), truncated, bbox, features, extra }
    }
}

/// A Feature.
pub fn feature(id: impl Into<Value>, geometry: Value, properties: Value) -> Value {
    let mut f = serde_json::Map::new();
    f.insert("type".into(), Value::from("Feature"));
    f.insert("id".into(), id.into());
    f.insert("geometry".into(), geometry);
    f.insert("properties".into(), properties);
    Value::Object(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Area, polygon};

    fn signed_area(ring: &Value) -> f64 {
        let pts: Vec<(f64, f64)> = ring
            .as_array()
            .expect("ring")
            .iter()
            .map(|p| (p[0].as_f64().expect("x"), p[1].as_f64().expect("y")))
            .collect();
        pts.windows(2).map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1).sum::<f64>() / 2.0
    }

    #[test]
    fn polygons_follow_the_right_hand_rule_and_stay_closed() {
        // Exterior clockwise and hole counter-clockwise in the input: both turned around.
        let cw = polygon![
            exterior: [(x: 0.0, y: 0.0), (x: 0.0, y: 1.0), (x: 1.0, y: 1.0), (x: 1.0, y: 0.0), (x: 0.0, y: 0.0)],
            interiors: [[(x: 0.2, y: 0.2), (x: 0.8, y: 0.2), (x: 0.8, y: 0.8), (x: 0.2, y: 0.8), (x: 0.2, y: 0.2)]],
        ];
        assert!(cw.signed_area() < 0.0, "the input exterior is clockwise");
        let g = multipolygon_geometry(&MultiPolygon(vec![cw]), None);
        let rings = &g["coordinates"][0];
        assert!(signed_area(&rings[0]) > 0.0, "exterior counter-clockwise: {g}");
        assert!(signed_area(&rings[1]) < 0.0, "hole clockwise: {g}");
        for r in rings.as_array().expect("rings") {
            let r = r.as_array().expect("ring");
            assert_eq!(r.first(), r.last(), "closed: {g}");
        }
    }

    #[test]
    fn simplification_drops_invisible_detail_but_never_collapses_a_ring() {
        // A square with 400 points along its edges; at zoom 5 half a pixel is ~0.017 degrees.
        let mut pts: Vec<(f64, f64)> = Vec::new();
        for k in 0..100 {
            pts.push((f64::from(k) / 100.0, 0.0));
        }
        for k in 0..100 {
            pts.push((1.0, f64::from(k) / 100.0));
        }
        for k in 0..100 {
            pts.push((1.0 - f64::from(k) / 100.0, 1.0));
        }
        for k in 0..100 {
            pts.push((0.0, 1.0 - f64::from(k) / 100.0));
        }
        pts.push((0.0, 0.0));
        let square = Polygon::new(LineString::from(pts), vec![]);
        let g = multipolygon_geometry(&MultiPolygon(vec![square.clone()]), Some(tolerance_deg(5)));
        assert_eq!(g["coordinates"][0][0].as_array().map(Vec::len), Some(5), "{g}");
        // A tiny triangle far below the tolerance keeps its points.
        let tiny = polygon![(x: 0.0, y: 0.0), (x: 1e-6, y: 0.0), (x: 0.0, y: 1e-6), (x: 0.0, y: 0.0)];
        let g = multipolygon_geometry(&MultiPolygon(vec![tiny]), Some(tolerance_deg(0)));
        assert_eq!(g["coordinates"][0][0].as_array().map(Vec::len), Some(4), "{g}");
    }

    #[test]
    fn cells_are_closed_counter_clockwise_rings_in_lon_lat_order() {
        let cell = h3o::LatLng::new(39.9, 116.4).expect("position").to_cell(h3o::Resolution::Eight);
        let g = cell_geometry(cell);
        let ring = &g["coordinates"][0];
        let pts = ring.as_array().expect("ring");
        assert_eq!(pts.len(), 7, "six corners and the closing one: {g}");
        assert_eq!(pts.first(), pts.last());
        assert!(signed_area(ring) > 0.0);
        assert!(pts.iter().all(|p| (116.3..116.5).contains(&p[0].as_f64().expect("lon"))), "lon first: {g}");
        // Across the antimeridian: a small ring, not one around the globe.
        let wrap = h3o::LatLng::new(0.0, 179.999).expect("position").to_cell(h3o::Resolution::Five);
        let g = cell_geometry(wrap);
        let lons: Vec<f64> =
            g["coordinates"][0].as_array().expect("ring").iter().filter_map(|p| p[0].as_f64()).collect();
        let span = lons.iter().copied().fold(f64::MIN, f64::max) - lons.iter().copied().fold(f64::MAX, f64::min);
        assert!(span < 1.0, "{g}");
    }

    #[test]
    fn a_collection_has_its_bbox_and_says_whether_it_was_cut() {
        let fc = collection(
            vec![
                feature(1, point_geometry(39.9, 116.4), json!({})),
                feature(2, line_geometry(&[(40.0, 116.0), (40.1, 116.2)], None), json!({})),
            ],
            true,
        );
        assert_eq!(fc["bbox"], json!([116.0, 39.9, 116.4, 40.1]));
        assert_eq!((fc["numberReturned"].as_u64(), &fc["truncated"]), (Some(2), &json!(true)));
        assert!(collection(vec![], false).get("bbox").is_none());
        assert!((tolerance_deg(0) - 0.703_125).abs() < 1e-12);
    }
}
