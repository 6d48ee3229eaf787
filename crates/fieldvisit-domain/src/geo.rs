//! Distances on the sphere. Everything the product says in metres comes from here, never from degrees.

use geo::{CoordsIter, Intersects, MultiPolygon, Point};

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance between two WGS84 positions, metres (haversine).
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// Unit-sphere Cartesian coordinates of a position. Straight-line (chord) distance between these
/// points grows monotonically with great-circle distance, so nearest-neighbour search on them is
/// exact on the sphere, across the antimeridian and near the poles alike.
pub fn unit_xyz(lat: f64, lon: f64) -> [f64; 3] {
    let (p, l) = (lat.to_radians(), lon.to_radians());
    [p.cos() * l.cos(), p.cos() * l.sin(), p.sin()]
}

/// Chord length on the unit sphere for a great-circle distance in metres.
pub fn chord_for_m(distance_m: f64) -> f64 {
    let half_angle = (distance_m.max(0.0) / EARTH_RADIUS_M / 2.0).min(std::f64::consts::FRAC_PI_2);
    2.0 * half_angle.sin()
}

/// Great-circle distance in metres for a chord length on the unit sphere (inverse of [`chord_for_m`]).
pub fn m_for_chord(chord: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * (chord / 2.0).clamp(0.0, 1.0).asin()
}

/// An outlet's footprint (its building or premises outline, lon/lat polygons) with the unit-sphere
/// box that holds it, for spatial indexing.
#[derive(Debug, Clone, PartialEq)]
pub struct Footprint {
    pub area: MultiPolygon<f64>,
    /// Corners of an axis-aligned box in unit-sphere coordinates that contains the footprint.
    pub lo: [f64; 3],
    pub hi: [f64; 3],
}

/// Slack on a footprint's unit-sphere box (~13 m): an edge between two vertices bulges out of the
/// chord between them, and inside is judged on lon/lat, whose straight edges leave the great-circle
/// ones by up to metres at high latitudes (footprints span at most 4 km and stay within ±85°).
const BOX_SLACK: f64 = 2e-6;

impl Footprint {
    /// `None` when the polygons have no vertex.
    pub fn new(area: MultiPolygon<f64>) -> Option<Footprint> {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for c in area.coords_iter() {
            let v = unit_xyz(c.y, c.x);
            for d in 0..3 {
                lo[d] = lo[d].min(v[d] - BOX_SLACK);
                hi[d] = hi[d].max(v[d] + BOX_SLACK);
            }
        }
        lo[0].is_finite().then_some(Footprint { area, lo, hi })
    }

    /// Great-circle distance in metres from a position to the footprint: 0 inside it or on its
    /// boundary, else the distance to the nearest edge (edges are great-circle arcs; inside is
    /// judged on lon/lat like PostGIS geometry does).
    pub fn distance_m(&self, lat: f64, lon: f64) -> f64 {
        if self.area.intersects(&Point::new(lon, lat)) {
            return 0.0;
        }
        let q = unit_xyz(lat, lon);
        let mut best = f64::INFINITY;
        for polygon in &self.area {
            for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
                for line in ring.lines() {
                    let (a, b) = (unit_xyz(line.start.y, line.start.x), unit_xyz(line.end.y, line.end.x));
                    best = best.min(arc_angle(&q, &a, &b));
                }
            }
        }
        best * EARTH_RADIUS_M
    }
}

fn cross(a: &[f64; 3], b: &[f64; 3]) -> [f64; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

fn dot(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Angle between two unit vectors, radians (stable for tiny and for large angles).
fn angle(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let c = cross(a, b);
    dot(&c, &c).sqrt().atan2(dot(a, b))
}

/// Angle from `q` to the shorter great-circle arc from `a` to `b`, radians.
#[allow(clippy::many_single_char_names)] // the vectors of the textbook formula
fn arc_angle(q: &[f64; 3], a: &[f64; 3], b: &[f64; 3]) -> f64 {
    let n = cross(a, b);
    let len = dot(&n, &n).sqrt();
    if len < 1e-15 {
        return angle(q, a);
    }
    let n = [n[0] / len, n[1] / len, n[2] / len];
    let s = dot(q, &n);
    // The foot of `q` on the arc's great circle lies between `a` and `b` when it is on the inner
    // side of both ends.
    let p = [q[0] - s * n[0], q[1] - s * n[1], q[2] - s * n[2]];
    if dot(&cross(a, &p), &n) >= 0.0 && dot(&cross(&p, b), &n) >= 0.0 {
        s.abs().min(1.0).asin()
    } else {
        angle(q, a).min(angle(q, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{LineString, Polygon};

    fn square(lat: f64, lon: f64, half_deg: f64) -> Footprint {
        let ring = LineString::from(vec![
            (lon - half_deg, lat - half_deg),
            (lon + half_deg, lat - half_deg),
            (lon + half_deg, lat + half_deg),
            (lon - half_deg, lat + half_deg),
            (lon - half_deg, lat - half_deg),
        ]);
        Footprint::new(MultiPolygon::new(vec![Polygon::new(ring, vec![])])).expect("has vertices")
    }

    #[test]
    fn footprint_distance_is_zero_inside_and_great_circle_outside() {
        let f = square(39.9, 116.4, 0.001);
        assert!(f.distance_m(39.9, 116.4).abs() < 1e-12);
        assert!(f.distance_m(39.9 + 0.001, 116.4).abs() < 1e-12, "on the edge");
        // 39.901 rounds a hair north of 39.9 + 0.001, out of the lon/lat square; the great-circle
        // edge there lies ~0.5 mm further north.
        assert!(f.distance_m(39.901, 116.4) < 0.001, "on the edge, give or take rounding");
        // Due north of the square's top edge: the distance to the edge is the latitude difference.
        let d = f.distance_m(39.902, 116.4);
        let want = haversine_m(39.902, 116.4, 39.901, 116.4);
        assert!((d - want).abs() < 0.05, "{d} vs {want}");
        // Off a corner: the distance to the corner vertex.
        let d = f.distance_m(39.903, 116.404);
        let want = haversine_m(39.903, 116.404, 39.901, 116.401);
        assert!((d - want).abs() < 1e-6, "{d} vs {want}");
        // The box holds every vertex.
        let v = unit_xyz(39.901, 116.401);
        assert!((0..3).all(|i| f.lo[i] <= v[i] && v[i] <= f.hi[i]));
    }

    #[test]
    fn haversine_matches_known_distances() {
        // One degree of latitude is ~111.2 km on this sphere.
        let d = haversine_m(0.0, 0.0, 1.0, 0.0);
        assert!((d - 111_195.0).abs() < 5.0, "{d}");
        // Across the antimeridian: 0.2 degrees of longitude at the equator.
        let d = haversine_m(0.0, 179.9, 0.0, -179.9);
        assert!((d - 22_239.0).abs() < 5.0, "{d}");
        assert!(haversine_m(39.9, 116.4, 39.9, 116.4).abs() < 1e-9);
    }

    #[test]
    fn chord_is_monotonic_with_distance() {
        let a = unit_xyz(39.9, 116.4);
        let b = unit_xyz(39.91, 116.4);
        let chord = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt();
        let m = haversine_m(39.9, 116.4, 39.91, 116.4);
        assert!((chord - chord_for_m(m)).abs() < 1e-12);
        assert!(chord_for_m(100.0) < chord_for_m(101.0));
    }
}
