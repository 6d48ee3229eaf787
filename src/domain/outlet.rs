//! Outlets: the retail points reps visit, and the rules their attributes obey.

use super::validation::{FieldError, check_lat_lon, check_text};
use serde::{Deserialize, Serialize};

/// The channel types of telecom retail (see DESIGN.md).
pub const CHANNEL_TYPES: [&str; 10] = [
    "business_hall",
    "cooperative_hall",
    "phone_mall",
    "franchise_store",
    "agent_point",
    "collection_point",
    "direct_seller",
    "campus_point",
    "temporary_point",
    "other",
];

/// Outlet lifecycle states.
pub const STATUSES: [&str; 3] = ["active", "closed", "suspended"];

/// Largest accepted visit geofence radius, metres.
pub const MAX_RADIUS_M: f64 = 5000.0;

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
    check_text("code", code, 64, &mut errors);
    check_text("name", name, 200, &mut errors);
    if !CHANNEL_TYPES.contains(&channel_type) {
        errors.push(FieldError::new(
            "channel_type",
            format!("unknown channel type `{channel_type}` (expected one of {})", CHANNEL_TYPES.join(", ")),
        ));
    }
    if !STATUSES.contains(&status) {
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
    fn outlet_validation_names_each_bad_field() {
        assert!(validate_outlet("X1", "Hall", "business_hall", "active", 39.9, 116.4, Some(80.0)).is_empty());
        let e = validate_outlet(" ", "Hall", "kiosk", "open", 95.0, 116.4, Some(0.0));
        let fields: Vec<_> = e.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["code", "channel_type", "status", "lat", "radius_m"]);
    }
}
