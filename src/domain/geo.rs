//! Distances on the sphere. Everything the product says in metres comes from here, never from degrees.

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

#[cfg(test)]
mod tests {
    use super::*;

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
