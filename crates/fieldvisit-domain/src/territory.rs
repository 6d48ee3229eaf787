//! Territory boundaries: what makes a GeoJSON polygon acceptable before PostGIS judges its topology.

use geo::{LineString, MultiPolygon, Polygon};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The level of a territory in the org tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TerritoryLevel {
    Country,
    Province,
    City,
    District,
    County,
    Grid,
    Region,
}

named!(TerritoryLevel, "level", {
    Country => "country",
    Province => "province",
    City => "city",
    District => "district",
    County => "county",
    Grid => "grid",
    Region => "region",
});

/// Why a GeoJSON Polygon/MultiPolygon is not an acceptable boundary, or `None`.
/// Checks structure, coordinate ranges and closed rings; self-intersection is left to PostGIS.
pub fn boundary_problem(geometry: &Value) -> Option<String> {
    let kind = geometry.get("type").and_then(Value::as_str);
    let coords = geometry.get("coordinates");
    let polygons: Vec<&Value> = match (kind, coords) {
        (Some("Polygon"), Some(c)) => vec![c],
        (Some("MultiPolygon"), Some(Value::Array(ps))) => ps.iter().collect(),
        (Some("Polygon" | "MultiPolygon"), _) => return Some("`coordinates` is missing or not an array".into()),
        (Some(other), _) => return Some(format!("must be a Polygon or MultiPolygon, not {other}")),
        (None, _) => return Some("not a GeoJSON geometry (no `type`)".into()),
    };
    if polygons.is_empty() {
        return Some("a MultiPolygon needs at least one polygon".into());
    }
    for (p, polygon) in polygons.iter().enumerate() {
        let Some(rings) = polygon.as_array().filter(|r| !r.is_empty()) else {
            return Some(format!("polygon {p} has no rings"));
        };
        for (r, ring) in rings.iter().enumerate() {
            let Some(positions) = ring.as_array() else {
                return Some(format!("ring {r} of polygon {p} is not an array of positions"));
            };
            let mut points = Vec::with_capacity(positions.len());
            for (i, pos) in positions.iter().enumerate() {
                let xy = pos.as_array().and_then(|a| Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?)));
                let Some((lon, lat)) = xy else {
                    return Some(format!("position {i} of ring {r} of polygon {p} is not [lon, lat]"));
                };
                if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
                    return Some(format!(
                        "position {i} of ring {r} of polygon {p} is out of range: [{lon}, {lat}] (lon -180..180, lat -90..90)"
                    ));
                }
                points.push((lon, lat));
            }
            if points.len() < 4 {
                return Some(format!(
                    "ring {r} of polygon {p} has {} positions; a ring needs at least 4",
                    points.len()
                ));
            }
            if points.first() != points.last() {
                return Some(format!("ring {r} of polygon {p} is not closed (its first and last positions differ)"));
            }
        }
    }
    None
}

/// A GeoJSON Polygon or MultiPolygon as a `geo` multipolygon.
pub fn multipolygon(geojson: &Value) -> Option<MultiPolygon<f64>> {
    #[derive(Deserialize)]
    #[serde(tag = "type")]
    enum Geometry {
        Polygon { coordinates: Vec<Vec<Vec<f64>>> },
        MultiPolygon { coordinates: Vec<Vec<Vec<Vec<f64>>>> },
    }
    fn ring(positions: Vec<Vec<f64>>) -> Option<LineString<f64>> {
        positions
            .into_iter()
            .map(|p| match p.as_slice() {
                [x, y, ..] => Some((*x, *y)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(LineString::from)
    }
    fn polygon(rings: Vec<Vec<Vec<f64>>>) -> Option<Polygon<f64>> {
        let mut rings = rings.into_iter().map(ring);
        let exterior = rings.next()??;
        Some(Polygon::new(exterior, rings.collect::<Option<Vec<_>>>()?))
    }
    let polygons = match Geometry::deserialize(geojson).ok()? {
        Geometry::Polygon { coordinates } => vec![polygon(coordinates)?],
        Geometry::MultiPolygon { coordinates } => coordinates.into_iter().map(polygon).collect::<Option<Vec<_>>>()?,
    };
    Some(MultiPolygon::new(polygons))
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Intersects, Point};
    use serde_json::json;

    #[test]
    fn geojson_polygons_convert() {
        let square =
            json!({"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]});
        let mp = multipolygon(&square).expect("polygon");
        assert!(mp.intersects(&Point::new(0.5, 0.5)));
        assert!(!mp.intersects(&Point::new(1.5, 0.5)));
        let multi = json!({"type": "MultiPolygon", "coordinates": [
            [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]],
            [[[5.0, 5.0, 3.0], [6.0, 5.0, 3.0], [6.0, 6.0, 3.0], [5.0, 5.0, 3.0]]]]});
        assert_eq!(multipolygon(&multi).expect("multipolygon").0.len(), 2);
        assert!(multipolygon(&json!({"type": "Point", "coordinates": [1.0, 2.0]})).is_none());
        assert!(multipolygon(&json!({"type": "Polygon", "coordinates": [[[1.0]]]})).is_none());
    }

    #[test]
    fn accepts_closed_polygons_and_names_each_defect() {
        let square = json!({"type": "Polygon", "coordinates": [[[0.5, 0.5], [1, 0.5], [1, 1], [0.5, 1], [0.5, 0.5]]]});
        assert_eq!(boundary_problem(&square), None);
        let multi = json!({"type": "MultiPolygon", "coordinates": [square["coordinates"].clone()]});
        assert_eq!(boundary_problem(&multi), None);

        let open = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]});
        assert!(boundary_problem(&open).is_some_and(|r| r.contains("not closed")));
        let far = json!({"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [1, 1], [0, 0]]]});
        assert!(boundary_problem(&far).is_some_and(|r| r.contains("out of range")));
        let short = json!({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]});
        assert!(boundary_problem(&short).is_some_and(|r| r.contains("at least 4")));
        let point = json!({"type": "Point", "coordinates": [0, 0]});
        assert!(boundary_problem(&point).is_some_and(|r| r.contains("not Point")));
        assert!(boundary_problem(&json!({"coordinates": []})).is_some());
    }
}
