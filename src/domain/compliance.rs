//! Compliance of a rep-day: the planned visits matched against the derived visits, and the day's
//! figures, as DESIGN.md defines them.
//!
//! - A visit is *valid* when its verdict is `verified` and no review rejected it, or when a review
//!   accepted it (the latest accept/reject decision counts).
//! - Each planned visit takes the first unused visit to its outlet that day, preferring valid ones
//!   inside its window: `done` (valid, arrival inside the window or no window), `late` (valid,
//!   outside the window), `short` (only a `short` visit), else `missed`.
//! - Plan compliance % = done / planned x 100 (no plan: none).
//! - Unplanned visits: valid visits not taken by a planned visit.
//! - Time in market = last departure - first arrival of the valid visits; in-store time = the sum
//!   of their dwell; travel time = time in market - in-store time.
//! - Distance travelled: the sum of great-circle steps between consecutive usable fixes (accuracy
//!   known and at most [`ComplianceRules::max_accuracy_m`] or unknown, and not implying more than
//!   [`ComplianceRules::max_speed_mps`] from the previous kept fix); a step across a gap longer
//!   than [`ComplianceRules::max_gap_s`] is not bridged.
//! - Verified rate % = verified / all visits; suspect rate % likewise.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::geo::haversine_m;

/// Thresholds of the distance figure; [`Default`] holds the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplianceRules {
    /// Gaps longer than this (seconds) are not bridged in the distance. Default 600.
    pub max_gap_s: i64,
    /// Fixes less accurate than this (metres) are left out of the distance. Default 100.
    pub max_accuracy_m: f64,
    /// A fix implying more than this speed (m/s) from the previous kept one is left out. Default 70.
    pub max_speed_mps: f64,
}

impl Default for ComplianceRules {
    fn default() -> Self {
        ComplianceRules { max_gap_s: 600, max_accuracy_m: 100.0, max_speed_mps: 70.0 }
    }
}

/// A planned visit of the day.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub id: i64,
    pub outlet_id: i64,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
}

/// A supervisor's latest accept/reject decision on a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Review {
    Accepted,
    Rejected,
}

/// A derived visit of the day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayVisit {
    pub id: i64,
    pub outlet_id: i64,
    pub arrival: DateTime<Utc>,
    pub departure: DateTime<Utc>,
    pub dwell_s: i64,
    /// `verified`, `short`, `unverified` or `suspect`.
    pub verdict: String,
    pub review: Option<Review>,
}

impl DayVisit {
    /// Counts for compliance (module documentation).
    pub fn is_valid(&self) -> bool {
        match self.review {
            Some(Review::Accepted) => true,
            Some(Review::Rejected) => false,
            None => self.verdict == "verified",
        }
    }
}

/// A fix for the distance figure.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackFix {
    pub fix_time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f32>,
    pub flags: i32,
}

/// What became of a planned visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlannedOutcome {
    Done,
    Late,
    Short,
    Missed,
}

/// A planned visit and the visit that answered it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PlannedResult {
    pub planned_visit_id: i64,
    pub outlet_id: i64,
    pub outcome: PlannedOutcome,
    pub visit_id: Option<i64>,
}

/// The figures of one rep-day.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DayCompliance {
    pub planned: usize,
    pub done: usize,
    pub late: usize,
    pub short: usize,
    pub missed: usize,
    /// done / planned x 100; `None` without planned visits.
    pub plan_compliance_pct: Option<f64>,
    pub visits: usize,
    pub valid_visits: usize,
    pub unplanned_visits: usize,
    pub verified_visits: usize,
    pub suspect_visits: usize,
    pub verified_rate_pct: Option<f64>,
    pub suspect_rate_pct: Option<f64>,
    pub first_arrival: Option<DateTime<Utc>>,
    pub last_departure: Option<DateTime<Utc>>,
    pub time_in_market_s: i64,
    pub in_store_s: i64,
    pub travel_s: i64,
    pub distance_m: f64,
    pub planned_visits: Vec<PlannedResult>,
}

fn in_window(p: &Planned, v: &DayVisit) -> bool {
    p.window_start.is_none_or(|s| v.arrival >= s) && p.window_end.is_none_or(|e| v.arrival <= e)
}

fn pct(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// Distance travelled over the usable fixes (module documentation).
pub fn distance_m(fixes: &[TrackFix], rules: &ComplianceRules) -> f64 {
    let mut usable: Vec<&TrackFix> = fixes
        .iter()
        .filter(|f| f.accuracy_m.is_none_or(|a| f64::from(a) <= rules.max_accuracy_m))
        .filter(|f| f.lat.is_finite() && f.lon.is_finite())
        .collect();
    usable.sort_by(|a, b| a.fix_time.cmp(&b.fix_time).then(a.lat.total_cmp(&b.lat)).then(a.lon.total_cmp(&b.lon)));
    // Jumps are judged here against the previous kept fix (not by the stored flag, which depends
    // on how the fixes arrived).
    let mut total = 0.0;
    let mut previous: Option<&TrackFix> = None;
    for f in usable {
        let Some(p) = previous else {
            previous = Some(f);
            continue;
        };
        let dt = (f.fix_time - p.fix_time).num_milliseconds() as f64 / 1000.0;
        let step = haversine_m(p.lat, p.lon, f.lat, f.lon);
        if dt > 0.0 && step / dt > rules.max_speed_mps {
            continue;
        }
        if dt <= rules.max_gap_s as f64 {
            total += step;
        }
        previous = Some(f);
    }
    total
}

/// The compliance of one rep-day.
pub fn rep_day(planned: &[Planned], visits: &[DayVisit], fixes: &[TrackFix], rules: &ComplianceRules) -> DayCompliance {
    let mut visits: Vec<&DayVisit> = visits.iter().collect();
    visits.sort_by(|a, b| a.arrival.cmp(&b.arrival).then(a.id.cmp(&b.id)));
    let mut planned: Vec<&Planned> = planned.iter().collect();
    planned.sort_by(|a, b| a.window_start.cmp(&b.window_start).then(a.id.cmp(&b.id)));
    let mut used = vec![false; visits.len()];
    let mut results = Vec::with_capacity(planned.len());
    for p in &planned {
        let free = |pred: &dyn Fn(&DayVisit) -> bool, used: &[bool]| {
            visits.iter().enumerate().position(|(i, v)| !used[i] && v.outlet_id == p.outlet_id && pred(v))
        };
        let (outcome, taken) = if let Some(i) = free(&|v| v.is_valid() && in_window(p, v), &used) {
            (PlannedOutcome::Done, Some(i))
        } else if let Some(i) = free(&|v| v.is_valid(), &used) {
            (PlannedOutcome::Late, Some(i))
        } else if let Some(i) = free(&|v| v.verdict == "short" && v.review != Some(Review::Rejected), &used) {
            (PlannedOutcome::Short, Some(i))
        } else {
            (PlannedOutcome::Missed, None)
        };
        if let Some(i) = taken {
            used[i] = true;
        }
        results.push(PlannedResult {
            planned_visit_id: p.id,
            outlet_id: p.outlet_id,
            outcome,
            visit_id: taken.map(|i| visits[i].id),
        });
    }
    let count = |o: PlannedOutcome| results.iter().filter(|r| r.outcome == o).count();
    let valid: Vec<&DayVisit> = visits.iter().copied().filter(|v| v.is_valid()).collect();
    let unplanned = visits.iter().enumerate().filter(|(i, v)| !used[*i] && v.is_valid()).count();
    let first_arrival = valid.iter().map(|v| v.arrival).min();
    let last_departure = valid.iter().map(|v| v.departure).max();
    let time_in_market_s = match (first_arrival, last_departure) {
        (Some(a), Some(d)) => (d - a).num_seconds(),
        _ => 0,
    };
    let in_store_s: i64 = valid.iter().map(|v| v.dwell_s).sum();
    let verified = visits.iter().filter(|v| v.verdict == "verified").count();
    let suspect = visits.iter().filter(|v| v.verdict == "suspect").count();
    let done = count(PlannedOutcome::Done);
    DayCompliance {
        planned: results.len(),
        done,
        late: count(PlannedOutcome::Late),
        short: count(PlannedOutcome::Short),
        missed: count(PlannedOutcome::Missed),
        plan_compliance_pct: pct(done, results.len()),
        visits: visits.len(),
        valid_visits: valid.len(),
        unplanned_visits: unplanned,
        verified_visits: verified,
        suspect_visits: suspect,
        verified_rate_pct: pct(verified, visits.len()),
        suspect_rate_pct: pct(suspect, visits.len()),
        first_arrival,
        last_departure,
        time_in_market_s,
        in_store_s,
        travel_s: (time_in_market_s - in_store_s).max(0),
        distance_m: distance_m(fixes, rules),
        planned_visits: results,
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(h: i64, m: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).single().expect("time") + Duration::minutes(h * 60 + m)
    }

    fn planned(id: i64, outlet_id: i64, window: Option<(DateTime<Utc>, DateTime<Utc>)>) -> Planned {
        Planned { id, outlet_id, window_start: window.map(|w| w.0), window_end: window.map(|w| w.1) }
    }

    fn visit(id: i64, outlet_id: i64, arrival: DateTime<Utc>, minutes: i64, verdict: &str) -> DayVisit {
        DayVisit {
            id,
            outlet_id,
            arrival,
            departure: arrival + Duration::minutes(minutes),
            dwell_s: minutes * 60,
            verdict: verdict.into(),
            review: None,
        }
    }

    /// A hand-computed day: five planned outlets, six visits.
    #[test]
    fn a_day_is_computed_as_defined() {
        let nine_to_noon = Some((t(9, 0), t(12, 0)));
        let plan = [
            planned(1, 10, nine_to_noon),
            planned(2, 20, nine_to_noon),
            planned(3, 30, None),
            planned(4, 40, None),
            planned(5, 50, None),
        ];
        let mut rejected = visit(106, 50, t(15, 0), 20, "verified");
        rejected.review = Some(Review::Rejected);
        let visits = [
            visit(101, 10, t(9, 30), 20, "verified"), // done
            visit(102, 20, t(13, 0), 15, "verified"), // late: after the window
            visit(103, 30, t(10, 0), 2, "short"),     // short
            visit(104, 60, t(11, 0), 30, "verified"), // unplanned
            visit(105, 70, t(14, 0), 10, "suspect"),  // suspect, not valid
            rejected,                                 // outlet 50: missed
        ];
        let c = rep_day(&plan, &visits, &[], &ComplianceRules::default());
        assert_eq!((c.planned, c.done, c.late, c.short, c.missed), (5, 1, 1, 1, 2));
        assert_eq!(c.plan_compliance_pct, Some(20.0));
        assert_eq!((c.visits, c.valid_visits, c.unplanned_visits, c.suspect_visits), (6, 3, 1, 1));
        assert_eq!(c.verified_rate_pct, Some(4.0 * 100.0 / 6.0));
        assert_eq!((c.first_arrival, c.last_departure), (Some(t(9, 30)), Some(t(13, 15))));
        assert_eq!((c.time_in_market_s, c.in_store_s, c.travel_s), (225 * 60, 65 * 60, 160 * 60));
        let outcome = |id| c.planned_visits.iter().find(|r| r.planned_visit_id == id).map(|r| (r.outcome, r.visit_id));
        assert_eq!(outcome(1), Some((PlannedOutcome::Done, Some(101))));
        assert_eq!(outcome(2), Some((PlannedOutcome::Late, Some(102))));
        assert_eq!(outcome(3), Some((PlannedOutcome::Short, Some(103))));
        assert_eq!(outcome(5), Some((PlannedOutcome::Missed, None)));
    }

    #[test]
    fn an_accepted_review_makes_a_visit_count() {
        let mut v = visit(1, 10, t(9, 0), 3, "unverified");
        v.review = Some(Review::Accepted);
        let c = rep_day(&[planned(1, 10, None)], &[v], &[], &ComplianceRules::default());
        assert_eq!((c.done, c.plan_compliance_pct), (1, Some(100.0)));
        let c = rep_day(&[], &[], &[], &ComplianceRules::default());
        assert_eq!((c.plan_compliance_pct, c.time_in_market_s, c.distance_m), (None, 0, 0.0));
    }

    #[test]
    fn distance_skips_gaps_jumps_and_blurred_fixes() {
        let at = |m: i64, north_m: f64, acc: Option<f32>, flags: i32| TrackFix {
            fix_time: t(9, m),
            lat: 39.9 + north_m / 111_195.0,
            lon: 116.4,
            accuracy_m: acc,
            flags,
        };
        let fixes = [
            at(0, 0.0, Some(5.0), 0),
            at(1, 100.0, None, 0),
            at(2, 5000.0, Some(5.0), 1),  // left out: 80 m/s from the fix before
            at(3, 200.0, Some(500.0), 0), // left out: blurred
            at(4, 300.0, Some(5.0), 0),
            at(30, 1300.0, Some(5.0), 0), // after a 26-minute gap: not bridged
            at(31, 1400.0, Some(5.0), 0),
        ];
        let d = distance_m(&fixes, &ComplianceRules::default());
        assert!((d - 400.0).abs() < 0.5, "{d}");
    }
}
