//! Coordinates from Chinese map sources. Maps of mainland China (AMap/Gaode, Tencent, Google's
//! China tiles) publish GCJ-02 coordinates, Baidu publishes BD-09; both are WGS-84 shifted by a
//! few hundred metres. Everything fieldvisit stores is WGS-84: input in another system is converted
//! on the way in ([`Crs::to_wgs84`]), with the maintained `coordtransform` crate (its inverses are
//! refined numerically, well below a metre). Outside mainland China no shift applies, as with the
//! published algorithms (a point there is WGS-84 whatever it claims to be).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The coordinate reference system of input coordinates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Crs {
    /// WGS-84 (GPS, OpenStreetMap): stored as given.
    #[default]
    Wgs84,
    /// GCJ-02, the "Mars" coordinates of AMap/Gaode, Tencent and Google's China maps.
    Gcj02,
    /// BD-09, Baidu's coordinates.
    Bd09,
}

named!(Crs, "coordinate system", { Wgs84 => "wgs84", Gcj02 => "gcj02", Bd09 => "bd09" });

impl Crs {
    /// The WGS-84 `(lat, lon)` of `(lat, lon)` given in this system. Non-finite input comes back
    /// unchanged (and is refused by the range checks that follow).
    pub fn to_wgs84(self, lat: f64, lon: f64) -> (f64, f64) {
        if !(lat.is_finite() && lon.is_finite()) {
            return (lat, lon);
        }
        let (lon, lat) = match self {
            Crs::Wgs84 => (lon, lat),
            Crs::Gcj02 => coordtransform::gcj02_to_wgs84(lon, lat),
            Crs::Bd09 => coordtransform::bd09_to_wgs84(lon, lat),
        };
        (lat, lon)
    }

    /// `(lat, lon)` in WGS-84 expressed in this system (the forward shift; for tests and clients).
    pub fn of_wgs84(self, lat: f64, lon: f64) -> (f64, f64) {
        let (lon, lat) = match self {
            Crs::Wgs84 => (lon, lat),
            Crs::Gcj02 => coordtransform::wgs84_to_gcj02(lon, lat),
            Crs::Bd09 => coordtransform::wgs84_to_bd09(lon, lat),
        };
        (lat, lon)
    }

    /// Converts every `[lon, lat, ...]` position of a GeoJSON geometry's `coordinates` (any
    /// nesting) to WGS-84 in place; anything that is not a position is left as it is (and judged
    /// later by the geometry's own checks).
    pub fn geometry_to_wgs84(self, geometry: &mut Value) {
        if self == Crs::Wgs84 {
            return;
        }
        if let Some(coords) = geometry.get_mut("coordinates") {
            self.positions_to_wgs84(coords);
        }
    }

    fn positions_to_wgs84(self, v: &mut Value) {
        let Value::Array(items) = v else { return };
        if let [Value::Number(lon), Value::Number(lat), ..] = items.as_slice() {
            if let (Some(lon), Some(lat)) = (lon.as_f64(), lat.as_f64()) {
                let (lat, lon) = self.to_wgs84(lat, lon);
                if let (Some(lon), Some(lat)) = (serde_json::Number::from_f64(lon), serde_json::Number::from_f64(lat)) {
                    items[0] = Value::Number(lon);
                    items[1] = Value::Number(lat);
                }
            }
            return;
        }
        for item in items {
            self.positions_to_wgs84(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::haversine_m;

    /// Tian'anmen area: WGS-84 (39.915, 116.404) and its published GCJ-02 and BD-09 forms (the
    /// values the reference implementations in Java, Python and Go print for this point).
    const WGS: (f64, f64) = (39.915, 116.404);
    const GCJ: (f64, f64) = (39.916_404_281_501_64, 116.410_244_499_169_38);
    const BD: (f64, f64) = (39.922_699_552_216_216, 116.416_627_243_787_33);

    fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
        haversine_m(a.0, a.1, b.0, b.1)
    }

    #[test]
    fn forward_shifts_give_the_published_values() {
        assert!(metres(Crs::Gcj02.of_wgs84(WGS.0, WGS.1), GCJ) < 1e-6);
        assert!(metres(Crs::Bd09.of_wgs84(WGS.0, WGS.1), BD) < 1e-6);
        // The shifts are hundreds of metres, so the test below is not vacuous.
        assert!(metres(WGS, GCJ) > 500.0, "{}", metres(WGS, GCJ));
        assert!(metres(WGS, BD) > 1000.0, "{}", metres(WGS, BD));
    }

    #[test]
    fn gcj02_and_bd09_come_back_to_wgs84_within_a_metre() {
        assert!(metres(Crs::Gcj02.to_wgs84(GCJ.0, GCJ.1), WGS) < 1.0);
        assert!(metres(Crs::Bd09.to_wgs84(BD.0, BD.1), WGS) < 1.0);
        assert_eq!(Crs::Wgs84.to_wgs84(GCJ.0, GCJ.1), GCJ);
    }

    #[test]
    fn inverse_is_under_a_metre_across_china() {
        for lat in (19..=52).step_by(3) {
            for lon in (75..=133).step_by(4) {
                let p = (f64::from(lat) + 0.123, f64::from(lon) + 0.456);
                for crs in [Crs::Gcj02, Crs::Bd09] {
                    let (la, lo) = crs.of_wgs84(p.0, p.1);
                    let back = crs.to_wgs84(la, lo);
                    assert!(metres(back, p) < 1.0, "{crs} {p:?}: {}", metres(back, p));
                }
            }
        }
    }

    #[test]
    fn outside_china_nothing_moves() {
        for p in [(51.5, -0.12), (-33.9, 151.2), (22.3193, 114.1694), (37.5665, 126.978)] {
            assert_eq!(Crs::Gcj02.to_wgs84(p.0, p.1), p);
            assert_eq!(Crs::Bd09.to_wgs84(p.0, p.1), p);
        }
    }

    #[test]
    fn geometry_positions_are_converted_at_any_depth() {
        let mut g = serde_json::json!({"type": "Polygon", "coordinates": [[[GCJ.1, GCJ.0], [GCJ.1, GCJ.0 + 0.001], [GCJ.1 + 0.001, GCJ.0], [GCJ.1, GCJ.0]]]});
        Crs::Gcj02.geometry_to_wgs84(&mut g);
        let first = &g["coordinates"][0][0];
        let back = (first[1].as_f64().unwrap_or_default(), first[0].as_f64().unwrap_or_default());
        assert!(metres(back, WGS) < 1.0, "{back:?}");
        assert_eq!(g["coordinates"][0].as_array().map(Vec::len), Some(4));
    }

    #[test]
    fn names_read_back() {
        for c in Crs::ALL {
            assert_eq!(c.as_str().parse::<Crs>().ok(), Some(c));
            assert_eq!(serde_json::to_value(c).ok(), Some(Value::String(c.to_string())));
        }
        assert!("epsg3857".parse::<Crs>().is_err());
    }
}
