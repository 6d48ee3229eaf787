//! Outlets: the retail points reps visit, and the rules their attributes obey.

use super::geo::haversine_m;
use super::validation::{FieldError, check_lat_lon, check_text};
use geo::{CoordsIter, MultiPolygon};
use serde::{Deserialize, Serialize};

/// The channel types of telecom retail (see DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelType {
    BusinessHall,
    CooperativeHall,
    PhoneMall,
    FranchiseStore,
    AgentPoint,
    CollectionPoint,
    DirectSeller,
    CampusPoint,
    TemporaryPoint,
    Other,
}

named!(ChannelType, "channel type", {
    BusinessHall => "business_hall",
    CooperativeHall => "cooperative_hall",
    PhoneMall => "phone_mall",
    FranchiseStore => "franchise_store",
    AgentPoint => "agent_point",
    CollectionPoint => "collection_point",
    DirectSeller => "direct_seller",
    CampusPoint => "campus_point",
    TemporaryPoint => "temporary_point",
    Other => "other",
});

/// An outlet's lifecycle status (where it stands now, or stood at a moment of its history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutletStatus {
    /// Open: in coverage, to be visited.
    Active,
    /// Closed for good (it leaves coverage; its history stays).
    Closed,
    /// Temporarily not to be visited.
    Suspended,
}

named!(OutletStatus, "status", {
    Active => "active",
    Closed => "closed",
    Suspended => "suspended",
});

/// Largest accepted visit geofence radius, metres.
pub const MAX_RADIUS_M: f64 = 5000.0;

/// Farthest a footprint vertex may lie from its outlet's point, metres: a footprint outlines
/// premises, not a district (and distances to it are exact only at this scale).
pub const MAX_FOOTPRINT_EXTENT_M: f64 = 2000.0;

/// Nearer the poles lon/lat outlines and great-circle edges part by metres: no footprints there.
pub const MAX_FOOTPRINT_LAT: f64 = 85.0;

/// Why a footprint (already a well-formed lon/lat polygon) does not fit its outlet at `lat`/`lon`.
pub fn footprint_problem(lat: f64, lon: f64, footprint: &MultiPolygon<f64>) -> Option<String> {
    // Inside is judged on lon/lat: an outline across ±180° would wrap the globe there.
    let (west, east) =
        footprint.coords_iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(w, e), c| (w.min(c.x), e.max(c.x)));
    if east - west > 180.0 {
        return Some("crosses the antimeridian (±180° longitude); give it in one hemisphere".into());
    }
    if lat.abs() > MAX_FOOTPRINT_LAT {
        return Some(format!("footprints are not supported beyond ±{MAX_FOOTPRINT_LAT}° latitude"));
    }
    let far = footprint.coords_iter().map(|c| (haversine_m(lat, lon, c.y, c.x), c)).max_by(|a, b| a.0.total_cmp(&b.0));
    match far {
        Some((d, c)) if d > MAX_FOOTPRINT_EXTENT_M => Some(format!(
            "vertex [{}, {}] is {d:.0} m from the outlet's location; a footprint stays within {MAX_FOOTPRINT_EXTENT_M} m",
            c.x, c.y
        )),
        _ => None,
    }
}

/// A tier policy: how often outlets of a tier must be visited and what counts as a visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TierPolicy {
    pub tier: String,
    /// Required valid visits per cycle.
    pub required_visits: i32,
    /// Cycle length in days.
    pub cycle_days: i32,
    /// Minimum dwell for a verified visit, seconds.
    pub min_dwell_s: i32,
    /// Geofence radius for outlets of this tier that set none, metres.
    pub default_radius_m: f32,
}

/// Most tier policies an org may hold: tiers and channel types are numbered with a `u16` in the
/// coverage tallies, so the count must stay far below 65,536 (a tier beyond it is a 422).
pub const MAX_TIERS: usize = 100;

/// The default tier policies of a new org: A 4 per 28 days, B 2, C 1, VIP 8; 100 m; 5 min.
pub fn default_tier_policies() -> Vec<TierPolicy> {
    [("A", 4), ("B", 2), ("C", 1), ("VIP", 8)]
        .into_iter()
        .map(|(tier, required_visits)| TierPolicy {
            tier: tier.to_owned(),
            required_visits,
            cycle_days: 28,
            min_dwell_s: 300,
            default_radius_m: 100.0,
        })
        .collect()
}

/// Checks the fields of a new or changed outlet that can be judged without the database.
/// Tier membership and code uniqueness are judged by the database constraints.
pub fn validate_outlet(
    code: &str,
    name: &str,
    channel_type: &str,
    status: &str,
    lat: f64,
    lon: f64,
    radius_m: Option<f64>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_text("code", code, crate::validation::CODE_MAX_CHARS, &mut errors);
    check_text("name", name, crate::validation::NAME_MAX_CHARS, &mut errors);
    if let Err(e) = channel_type.parse::<ChannelType>() {
        errors.push(FieldError::new("channel_type", e.to_string()));
    }
    if status.parse::<OutletStatus>().is_err() {
        errors.push(FieldError::new(
            "status",
            format!("unknown status `{status}` (expected active, closed or suspended)"),
        ));
    }
    check_lat_lon(lat, lon, &mut errors);
    if let Some(r) = radius_m
        && !(r.is_finite() && r > 0.0 && r <= MAX_RADIUS_M)
    {
        errors.push(FieldError::new("radius_m", format!("must be greater than 0 and at most {MAX_RADIUS_M} m")));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policies_match_the_brief() {
        let p = default_tier_policies();
        let req: Vec<_> = p.iter().map(|t| (t.tier.as_str(), t.required_visits)).collect();
        assert_eq!(req, [("A", 4), ("B", 2), ("C", 1), ("VIP", 8)]);
        assert!(
            p.iter().all(|t| t.cycle_days == 28
                && t.min_dwell_s == 300
                && (t.default_radius_m - 100.0).abs() < f32::EPSILON)
        );
    }

    #[test]
    fn channel_types_are_listed_in_declaration_order() {
        // Callers index tables by `channel_type as usize` (the coverage tallies).
        for (i, c) in ChannelType::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i, "{c}");
        }
    }

    #[test]
    fn outlet_validation_names_each_bad_field() {
        assert!(validate_outlet("X1", "Hall", "business_hall", "active", 39.9, 116.4, Some(80.0)).is_empty());
        let e = validate_outlet(" ", "Hall", "kiosk", "open", 95.0, 116.4, Some(0.0));
        let fields: Vec<_> = e.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["code", "channel_type", "status", "lat", "radius_m"]);
    }

    #[test]
    fn a_footprint_must_stay_near_its_outlet() {
        use geo::{LineString, Polygon};
        let square = |half: f64| {
            let ring = LineString::from(vec![
                (116.4 - half, 39.9 - half),
                (116.4 + half, 39.9 - half),
                (116.4 + half, 39.9 + half),
                (116.4 - half, 39.9 + half),
                (116.4 - half, 39.9 - half),
            ]);
            MultiPolygon::new(vec![Polygon::new(ring, vec![])])
        };
        assert_eq!(footprint_problem(39.9, 116.4, &square(0.0005)), None);
        assert!(footprint_problem(39.9, 116.4, &square(0.05)).is_some_and(|r| r.contains("within 2000 m")));
        let across = MultiPolygon::new(vec![Polygon::new(
            LineString::from(vec![
                (179.995, -17.005),
                (-179.995, -17.005),
                (-179.995, -16.995),
                (179.995, -16.995),
                (179.995, -17.005),
            ]),
            vec![],
        )]);
        assert!(footprint_problem(-17.0, 179.999, &across).is_some_and(|r| r.contains("antimeridian")));
    }
}
