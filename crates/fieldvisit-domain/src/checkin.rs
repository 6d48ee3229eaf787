//! A rep's check-in at an outlet from the reps' app: the rep's claim "I am here", judged at once by
//! the same rule visits are ("at the outlet": distance within radius plus capped accuracy), and
//! later confirmed by a derived visit or left as a claim a supervisor accepts or rejects.

use crate::visit::{CandidateOutlet, Evidence, PhotoSignals, SAME_VISIT_SLACK_S, Signals, Verdict, Visit, VisitRules};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// Whether `id` is a well-formed client id: the app's own id of a check-in, or of a photo or
/// set of answers taken at one (8-100 of `A-Za-z0-9_.:-`, as the schema checks).
pub fn valid_client_id(id: &str) -> bool {
    (8..=100).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

/// What the server sees of a check-in fix at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Judgement {
    /// Distance from the fix to the outlet (its point or footprint), metres.
    pub distance_m: f64,
    /// How far the fix may be and still be at the outlet: radius plus capped accuracy, metres.
    pub allowance_m: f64,
    /// The server sees the rep at the outlet.
    pub at_outlet: bool,
}

/// Judges a check-in fix against the outlet where it stood.
pub fn judge(outlet: &CandidateOutlet, lat: f64, lon: f64, accuracy_m: Option<f32>, rules: &VisitRules) -> Judgement {
    let distance_m = outlet.distance_m(lat, lon);
    let allowance_m = outlet.allowance_m(accuracy_m, rules);
    Judgement { distance_m, allowance_m, at_outlet: distance_m <= allowance_m }
}

/// Whether a derived visit at the check-in's outlet confirms the check-in: it overlaps the
/// check-in's span (check-in to check-out, or the check-in alone), widened by the same-visit slack.
pub fn confirms(
    checked_in: DateTime<Utc>,
    checked_out: Option<DateTime<Utc>>,
    arrival: DateTime<Utc>,
    departure: DateTime<Utc>,
) -> bool {
    let slack = Duration::seconds(SAME_VISIT_SLACK_S);
    let end = checked_out.unwrap_or(checked_in).max(checked_in);
    arrival <= end + slack && checked_in - slack <= departure
}

/// An accepted claim: a check-in no derived visit confirmed, which a supervisor accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedClaim {
    pub outlet_id: i64,
    pub checked_in_at: DateTime<Utc>,
    pub checked_out_at: Option<DateTime<Utc>>,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f32>,
    pub distance_m: f64,
}

/// The visits accepted claims stand for: one per claim that no derived visit at its outlet
/// confirms, from check-in to check-out, `unverified` (no fixes show it); it counts through the
/// accepted review written with the acceptance, which derivation links to it by its arrival.
pub fn claimed_visits(claims: &[AcceptedClaim], derived: &[Visit]) -> Vec<Visit> {
    claims
        .iter()
        .filter(|c| {
            !derived.iter().any(|v| {
                v.outlet_id == c.outlet_id && confirms(c.checked_in_at, c.checked_out_at, v.arrival, v.departure)
            })
        })
        .map(|c| {
            let departure = c.checked_out_at.unwrap_or(c.checked_in_at).max(c.checked_in_at);
            Visit {
                outlet_id: c.outlet_id,
                arrival: c.checked_in_at,
                departure,
                dwell_s: (departure - c.checked_in_at).num_seconds(),
                verdict: Verdict::Unverified,
                risk_score: 0.0,
                evidence: Evidence {
                    fix_count: 0,
                    min_distance_m: c.distance_m,
                    median_distance_m: c.distance_m,
                    median_accuracy_m: c.accuracy_m.map(f64::from),
                    max_gap_s: 0,
                    bridged_gaps_s: Vec::new(),
                    stay: false,
                    signals: Signals::default(),
                    photos: PhotoSignals::default(),
                    lat: c.lat,
                    lon: c.lon,
                },
                alternatives: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn outlet() -> CandidateOutlet {
        CandidateOutlet {
            id: 1,
            lat: 39.9,
            lon: 116.4,
            footprint: None,
            radius_m: 50.0,
            min_dwell_s: 300,
            valid_from: None,
            valid_to: None,
        }
    }

    #[test]
    fn client_ids_are_8_to_100_safe_characters() {
        assert!(valid_client_id("app-7f3a9c01") && valid_client_id("ph:2026-03-02T10.05_a"));
        assert!(!valid_client_id("short") && !valid_client_id(&"x".repeat(101)));
        assert!(!valid_client_id("has space 123") && !valid_client_id("slash/1234567"));
    }

    #[test]
    fn a_fix_within_radius_plus_capped_accuracy_is_at_the_outlet() {
        let rules = VisitRules::default();
        // ~89 m north of the outlet.
        let (lat, lon) = (39.9008, 116.4);
        assert!(!judge(&outlet(), lat, lon, Some(10.0), &rules).at_outlet);
        let j = judge(&outlet(), lat, lon, Some(45.0), &rules);
        assert!(j.at_outlet, "{j:?}");
        assert!((j.allowance_m - 95.0).abs() < 1e-9);
        // Accuracy beyond the cap does not stretch the geofence further.
        let capped = judge(&outlet(), lat, lon, Some(5000.0), &rules).allowance_m;
        assert!((capped - (50.0 + rules.accuracy_cap_m)).abs() < 1e-9, "{capped}");
    }

    #[test]
    fn a_visit_overlapping_the_check_in_within_the_slack_confirms_it() {
        let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).single().expect("time");
        assert!(confirms(t(10, 0), Some(t(10, 20)), t(10, 5), t(10, 15)));
        assert!(confirms(t(10, 0), None, t(10, 25), t(10, 40)), "within 30 min after");
        assert!(!confirms(t(10, 0), Some(t(10, 5)), t(11, 0), t(11, 20)), "an hour later");
        assert!(!confirms(t(10, 0), None, t(9, 0), t(9, 20)), "40 min before");
    }

    #[test]
    fn an_accepted_claim_is_a_visit_only_where_no_derived_visit_confirms_it() {
        let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).single().expect("time");
        let claim = |outlet_id, at| AcceptedClaim {
            outlet_id,
            checked_in_at: at,
            checked_out_at: Some(at + Duration::minutes(12)),
            lat: 39.9,
            lon: 116.4,
            accuracy_m: Some(30.0),
            distance_m: 20.0,
        };
        let derived = claimed_visits(&[claim(1, t(10, 0))], &[]);
        assert_eq!(derived.len(), 1);
        assert_eq!(
            (derived[0].verdict, derived[0].dwell_s, derived[0].evidence.fix_count),
            (Verdict::Unverified, 720, 0)
        );
        // Confirmed by a derived visit at the same outlet: no second visit; another outlet's is no help.
        let mut seen = derived[0].clone();
        seen.arrival = t(10, 5);
        assert!(claimed_visits(&[claim(1, t(10, 0))], std::slice::from_ref(&seen)).is_empty());
        seen.outlet_id = 2;
        assert_eq!(claimed_visits(&[claim(1, t(10, 0))], &[seen]).len(), 1);
    }
}
