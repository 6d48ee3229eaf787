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
//! - A period sums its days' counts and times, and recomputes the percentages from the sums.
//!
//! Outlet figures of a period and scope (U = the outlets in scope whose status at the start of
//! the period was `active`: registered by then, and not closed or suspended; V = the valid visits
//! of the period at outlets in U, by any rep):
//! - outlet coverage % = |distinct outlets of U with a visit in V| / |U| x 100;
//! - required visits of an outlet = its tier's required visits per cycle x period days / cycle
//!   days (pro rata, not rounded: a 7-day period requires 1 of an A outlet's 4 per 28 days);
//! - frequency compliance of an outlet = min(valid visits / required visits, 1); frequency
//!   compliance % = the mean over U x 100;
//! - dwell compliance % = |V with dwell >= the tier's minimum dwell| / |V| x 100.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

use crate::geo::haversine_m;
use crate::outlet::{ChannelType, OutletStatus};
use crate::visit::Verdict;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Review {
    Accepted,
    Rejected,
}

named!(Review, "review", {
    Accepted => "accepted",
    Rejected => "rejected",
});

/// What a review of a visit says. Only the latest accept or reject decides whether the visit
/// counts ([`Review`]); a dispute or its resolution does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewDecision {
    /// A supervisor, auditor or admin accepts the visit.
    Accepted,
    /// A supervisor, auditor or admin rejects the visit.
    Rejected,
    /// The rep disputes a decision on their own visit.
    Disputed,
    /// A dispute was settled.
    Resolved,
}

named!(ReviewDecision, "decision", {
    Accepted => "accepted",
    Rejected => "rejected",
    Disputed => "disputed",
    Resolved => "resolved",
});

impl ReviewDecision {
    /// The accept/reject this decision is, if it is one.
    pub fn review(self) -> Option<Review> {
        match self {
            ReviewDecision::Accepted => Some(Review::Accepted),
            ReviewDecision::Rejected => Some(Review::Rejected),
            ReviewDecision::Disputed | ReviewDecision::Resolved => None,
        }
    }
}

/// A derived visit of the day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayVisit {
    pub id: i64,
    pub outlet_id: i64,
    pub arrival: DateTime<Utc>,
    pub departure: DateTime<Utc>,
    pub dwell_s: i64,
    pub verdict: Verdict,
    pub review: Option<Review>,
}

impl DayVisit {
    /// Counts for compliance (module documentation). The one definition of a valid visit: the
    /// database's generated column `visits.counted` applies it too, and
    /// `tests/integration/rules.rs` fails when the two part.
    pub fn is_valid(&self) -> bool {
        match self.review {
            Some(Review::Accepted) => true,
            Some(Review::Rejected) => false,
            None => self.verdict == Verdict::Verified,
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

/// The track as the figures read it: the usable fixes (known accuracy no worse than the rules'
/// limit, no implied-speed jump from the previous kept fix) in time order, as pieces of
/// (lat, lon) positions; a gap longer than the rules' limit starts a new piece.
pub fn track_pieces(fixes: &[TrackFix], rules: &ComplianceRules) -> Vec<Vec<(f64, f64)>> {
    let mut usable: Vec<&TrackFix> = fixes
        .iter()
        .filter(|f| f.accuracy_m.is_none_or(|a| f64::from(a) <= rules.max_accuracy_m))
        .filter(|f| f.lat.is_finite() && f.lon.is_finite())
        .collect();
    usable.sort_by(|a, b| a.fix_time.cmp(&b.fix_time).then(a.lat.total_cmp(&b.lat)).then(a.lon.total_cmp(&b.lon)));
    // Jumps are judged here against the previous kept fix (not by the stored flag, which depends
    // on how the fixes arrived).
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut previous: Option<&TrackFix> = None;
    for f in usable {
        if let Some(p) = previous {
            let dt = (f.fix_time - p.fix_time).num_milliseconds() as f64 / 1000.0;
            if dt > 0.0 && haversine_m(p.lat, p.lon, f.lat, f.lon) / dt > rules.max_speed_mps {
                continue;
            }
            if dt > rules.max_gap_s as f64 {
                pieces.push(Vec::new());
            }
        } else {
            pieces.push(Vec::new());
        }
        if let Some(piece) = pieces.last_mut() {
            piece.push((f.lat, f.lon));
        }
        previous = Some(f);
    }
    pieces
}

/// Distance travelled over the usable fixes (module documentation).
pub fn distance_m(fixes: &[TrackFix], rules: &ComplianceRules) -> f64 {
    track_pieces(fixes, rules)
        .iter()
        .flat_map(|piece| piece.windows(2).map(|w| haversine_m(w[0].0, w[0].1, w[1].0, w[1].1)))
        .sum()
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
        } else if let Some(i) = free(&|v| v.verdict == Verdict::Short && v.review != Some(Review::Rejected), &used) {
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
    let verified = visits.iter().filter(|v| v.verdict == Verdict::Verified).count();
    let suspect = visits.iter().filter(|v| v.verdict == Verdict::Suspect).count();
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

/// What one rep-day's compliance is computed from: planned visits, visits, fixes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayInputs {
    pub planned: Vec<Planned>,
    pub visits: Vec<DayVisit>,
    pub fixes: Vec<TrackFix>,
    /// The day's distance travelled as kept when the retention pass removed its fixes (`fixes`
    /// is empty then): the figure outlives the raw pings.
    pub kept_distance_m: Option<f64>,
}

/// One rep-day's compliance.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ComplianceDay {
    pub day: NaiveDate,
    #[serde(flatten)]
    pub figures: DayCompliance,
}

/// A period's plan figures: counts and times summed over the days (and reps), percentages over
/// the sums.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PeriodTotals {
    pub planned: usize,
    pub done: usize,
    pub late: usize,
    pub short: usize,
    pub missed: usize,
    pub plan_compliance_pct: Option<f64>,
    pub visits: usize,
    pub valid_visits: usize,
    pub unplanned_visits: usize,
    pub verified_visits: usize,
    pub suspect_visits: usize,
    pub verified_rate_pct: Option<f64>,
    pub suspect_rate_pct: Option<f64>,
    pub time_in_market_s: i64,
    pub in_store_s: i64,
    pub travel_s: i64,
    pub distance_m: f64,
    /// Rep-days with at least one visit.
    pub days_in_market: usize,
}

impl PeriodTotals {
    /// Adds a rep-day.
    pub fn add_day(&mut self, d: &DayCompliance) {
        self.add(&PeriodTotals {
            planned: d.planned,
            done: d.done,
            late: d.late,
            short: d.short,
            missed: d.missed,
            visits: d.visits,
            valid_visits: d.valid_visits,
            unplanned_visits: d.unplanned_visits,
            verified_visits: d.verified_visits,
            suspect_visits: d.suspect_visits,
            time_in_market_s: d.time_in_market_s,
            in_store_s: d.in_store_s,
            travel_s: d.travel_s,
            distance_m: d.distance_m,
            days_in_market: usize::from(d.visits > 0),
            ..PeriodTotals::default()
        });
    }

    /// Adds another period's (or rep's) sums and recomputes the percentages.
    pub fn add(&mut self, o: &PeriodTotals) {
        self.planned += o.planned;
        self.done += o.done;
        self.late += o.late;
        self.short += o.short;
        self.missed += o.missed;
        self.visits += o.visits;
        self.valid_visits += o.valid_visits;
        self.unplanned_visits += o.unplanned_visits;
        self.verified_visits += o.verified_visits;
        self.suspect_visits += o.suspect_visits;
        self.time_in_market_s += o.time_in_market_s;
        self.in_store_s += o.in_store_s;
        self.travel_s += o.travel_s;
        self.distance_m += o.distance_m;
        self.days_in_market += o.days_in_market;
        self.plan_compliance_pct = pct(self.done, self.planned);
        self.verified_rate_pct = pct(self.verified_visits, self.visits);
        self.suspect_rate_pct = pct(self.suspect_visits, self.visits);
    }
}

/// A rep's compliance over a period: every day with inputs, and the totals.
pub fn rep_period(days: BTreeMap<NaiveDate, DayInputs>, rules: &ComplianceRules) -> (Vec<ComplianceDay>, PeriodTotals) {
    let days: Vec<ComplianceDay> = days
        .into_iter()
        .map(|(day, d)| {
            let mut figures = rep_day(&d.planned, &d.visits, &d.fixes, rules);
            if let Some(kept) = d.kept_distance_m {
                figures.distance_m = kept;
            }
            ComplianceDay { day, figures }
        })
        .collect();
    let mut totals = PeriodTotals::default();
    for d in &days {
        totals.add_day(&d.figures);
    }
    (days, totals)
}

/// An outlet in scope, with what the outlet figures need of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeOutlet {
    pub id: i64,
    pub tier: String,
    pub channel_type: ChannelType,
    /// Its status at the start of the period; `None` when it was not registered yet.
    pub status_at_start: Option<OutletStatus>,
    /// The tier policy: required visits per cycle of `cycle_days`, minimum dwell.
    pub required_visits: i32,
    pub cycle_days: i32,
    pub min_dwell_s: i32,
}

impl ScopeOutlet {
    /// Required visits in a period of `period_days` (pro rata, module documentation).
    pub fn required_in(&self, period_days: i64) -> f64 {
        required_in(self.required_visits, self.cycle_days, period_days)
    }
}

/// Visits a tier requiring `required_visits` per cycle of `cycle_days` requires in a period of
/// `period_days` (pro rata, module documentation).
pub fn required_in(required_visits: i32, cycle_days: i32, period_days: i64) -> f64 {
    f64::from(required_visits) * period_days as f64 / f64::from(cycle_days.max(1))
}

/// A visit at an outlet in scope.
#[derive(Debug, Clone, PartialEq)]
pub struct OutletVisit {
    pub outlet_id: i64,
    /// The rep-day (local date) of the visit.
    pub rep_day: NaiveDate,
    pub visit: DayVisit,
}

/// The outlet figures of a period (module documentation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutletFigures {
    /// |U|: outlets in scope active at the start of the period.
    pub active_outlets: usize,
    /// Outlets of U with at least one valid visit.
    pub visited_outlets: usize,
    pub coverage_pct: Option<f64>,
    pub frequency_compliance_pct: Option<f64>,
    /// |V|: valid visits at outlets of U.
    pub valid_visits: usize,
    /// Valid visits with a dwell of at least the tier's minimum.
    pub dwell_ok_visits: usize,
    pub dwell_compliance_pct: Option<f64>,
}

/// One outlet's frequency over a period.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutletFrequency {
    pub outlet_id: i64,
    pub required_visits: f64,
    pub valid_visits: usize,
    /// min(valid / required, 1) x 100.
    pub frequency_compliance_pct: f64,
    pub last_valid_visit: Option<DateTime<Utc>>,
}

/// Each outlet of U with its frequency figures, in the order of `outlets`.
pub fn outlet_frequencies(outlets: &[ScopeOutlet], visits: &[OutletVisit], period_days: i64) -> Vec<OutletFrequency> {
    let mut valid: HashMap<i64, (usize, Option<DateTime<Utc>>)> = HashMap::new();
    for v in visits.iter().filter(|v| v.visit.is_valid()) {
        let e = valid.entry(v.outlet_id).or_default();
        e.0 += 1;
        e.1 = e.1.max(Some(v.visit.arrival));
    }
    outlets
        .iter()
        .filter(|o| o.status_at_start == Some(OutletStatus::Active))
        .map(|o| {
            let (n, last) = valid.get(&o.id).copied().unwrap_or_default();
            let required = o.required_in(period_days);
            let ratio = if required > 0.0 { (n as f64 / required).min(1.0) } else { 1.0 };
            OutletFrequency {
                outlet_id: o.id,
                required_visits: required,
                valid_visits: n,
                frequency_compliance_pct: ratio * 100.0,
                last_valid_visit: last,
            }
        })
        .collect()
}

/// What the outlet figures read of one outlet of U over a period.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tally {
    /// Visits its tier requires in the period (pro rata).
    pub required_visits: f64,
    /// Its valid visits in the period.
    pub valid_visits: usize,
    /// Those with a dwell of at least its tier's minimum.
    pub dwell_ok_visits: usize,
}

impl Tally {
    /// min(valid / required, 1) x 100 (100 when the tier requires none).
    pub fn frequency_compliance_pct(&self) -> f64 {
        let ratio =
            if self.required_visits > 0.0 { (self.valid_visits as f64 / self.required_visits).min(1.0) } else { 1.0 };
        ratio * 100.0
    }
}

/// The outlet figures of a set of outlets of U, added one outlet at a time in any order.
///
/// The frequency percentages are summed in fixed point (64 fractional bits, exact for every
/// percentage of a visit count over a required count below 2^10): integer addition does not
/// depend on the order, so the figures of the same outlets are the same bits whichever path
/// (memory or database, one thread or two) added them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FiguresSum {
    active: usize,
    visited: usize,
    frequency_sum: u128,
    valid: usize,
    dwell_ok: usize,
}

/// 2^64: one percentage point in [`FiguresSum`]'s fixed point.
const FIXED_ONE: f64 = 18_446_744_073_709_551_616.0;

impl FiguresSum {
    pub fn add(&mut self, t: &Tally) {
        self.active += 1;
        self.visited += usize::from(t.valid_visits > 0);
        // In [0, 100]; scaling by a power of two is exact, the cast drops only bits below 2^-64.
        self.frequency_sum += (t.frequency_compliance_pct().clamp(0.0, 100.0) * FIXED_ONE) as u128;
        self.valid += t.valid_visits;
        self.dwell_ok += t.dwell_ok_visits;
    }

    /// Adds the outlets summed in `other`.
    pub fn merge(&mut self, other: &FiguresSum) {
        self.active += other.active;
        self.visited += other.visited;
        self.frequency_sum += other.frequency_sum;
        self.valid += other.valid;
        self.dwell_ok += other.dwell_ok;
    }

    pub fn figures(&self) -> OutletFigures {
        OutletFigures {
            active_outlets: self.active,
            visited_outlets: self.visited,
            coverage_pct: pct(self.visited, self.active),
            frequency_compliance_pct: (self.active > 0)
                .then(|| self.frequency_sum as f64 / FIXED_ONE / self.active as f64),
            valid_visits: self.valid,
            dwell_ok_visits: self.dwell_ok,
            dwell_compliance_pct: pct(self.dwell_ok, self.valid),
        }
    }
}

/// The tally of each outlet of U among `outlets` (active at the start of the period) from their
/// `visits` in a period of `period_days`, in the order of `outlets`.
pub fn tallies<'a>(
    outlets: &'a [ScopeOutlet],
    visits: &[OutletVisit],
    period_days: i64,
) -> impl Iterator<Item = (&'a ScopeOutlet, Tally)> {
    let mut valid: HashMap<i64, Vec<i64>> = HashMap::new();
    for v in visits.iter().filter(|v| v.visit.is_valid()) {
        valid.entry(v.outlet_id).or_default().push(v.visit.dwell_s);
    }
    outlets.iter().filter(|o| o.status_at_start == Some(OutletStatus::Active)).map(move |o| {
        let dwells = valid.get(&o.id).map_or(&[][..], Vec::as_slice);
        let tally = Tally {
            required_visits: o.required_in(period_days),
            valid_visits: dwells.len(),
            dwell_ok_visits: dwells.iter().filter(|d| **d >= i64::from(o.min_dwell_s)).count(),
        };
        (o, tally)
    })
}

/// The outlet figures of `outlets` over a period of `period_days` (module documentation).
pub fn outlet_figures(outlets: &[ScopeOutlet], visits: &[OutletVisit], period_days: i64) -> OutletFigures {
    let mut sum = FiguresSum::default();
    for (_, t) in tallies(outlets, visits, period_days) {
        sum.add(&t);
    }
    sum.figures()
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
            verdict: verdict.parse().expect("a verdict"),
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

    fn scope_outlet(id: i64, tier: &str, status: &str, required: i32, cycle: i32, min_dwell_s: i32) -> ScopeOutlet {
        ScopeOutlet {
            id,
            tier: tier.into(),
            channel_type: ChannelType::AgentPoint,
            status_at_start: Some(status.parse().expect("an outlet status")),
            required_visits: required,
            cycle_days: cycle,
            min_dwell_s,
        }
    }

    /// A hand-computed 14-day period: A outlets need 4 per 28 days (2 in 14), C 1 per 28 (0.5).
    #[test]
    fn outlet_figures_are_computed_as_defined() {
        let outlets = [
            scope_outlet(1, "A", "active", 4, 28, 600),
            scope_outlet(2, "A", "active", 4, 28, 600),
            scope_outlet(3, "C", "active", 1, 28, 300),
            scope_outlet(4, "C", "closed", 1, 28, 300),
        ];
        let at = |outlet_id, id, minutes, verdict: &str| OutletVisit {
            outlet_id,
            rep_day: NaiveDate::from_ymd_opt(2026, 11, 30).expect("date"),
            visit: visit(id, outlet_id, t(9, id), minutes, verdict),
        };
        let mut accepted_short = at(2, 5, 4, "short");
        accepted_short.visit.review = Some(Review::Accepted);
        let visits = [
            at(1, 1, 20, "verified"),
            at(1, 2, 15, "verified"),
            at(1, 3, 12, "verified"), // a third: outlet 1 stays at 100 %
            at(2, 4, 2, "short"),     // not valid
            accepted_short,           // valid, below the dwell minimum
            at(4, 6, 30, "verified"), // closed outlet: not in U
            at(9, 7, 30, "verified"), // not in scope
        ];
        let f = outlet_figures(&outlets, &visits, 14);
        assert_eq!((f.active_outlets, f.visited_outlets), (3, 2));
        assert_eq!(f.coverage_pct, Some(200.0 / 3.0));
        // Outlet 1: min(3/2, 1) = 1; outlet 2: 1/2; outlet 3: 0/0.5 = 0.
        assert_eq!(f.frequency_compliance_pct, Some(150.0 / 3.0));
        assert_eq!((f.valid_visits, f.dwell_ok_visits), (4, 3));
        assert_eq!(f.dwell_compliance_pct, Some(75.0));
        let freq = outlet_frequencies(&outlets, &visits, 14);
        let of = |id| {
            freq.iter()
                .find(|f| f.outlet_id == id)
                .map(|f| (f.required_visits, f.valid_visits, f.frequency_compliance_pct))
        };
        assert_eq!(of(1), Some((2.0, 3, 100.0)));
        assert_eq!(of(2), Some((2.0, 1, 50.0)));
        assert_eq!(of(3), Some((0.5, 0, 0.0)));
        assert_eq!(of(4), None, "closed at the start: not in U");
        let empty = outlet_figures(&[], &[], 14);
        assert_eq!(
            (empty.coverage_pct, empty.frequency_compliance_pct, empty.dwell_compliance_pct),
            (None, None, None)
        );
    }

    #[test]
    fn figure_sums_do_not_depend_on_the_order_or_the_split() {
        let tallies: Vec<Tally> = (0..1000)
            .map(|i| Tally {
                required_visits: f64::from(i % 7 + 1) * 0.75,
                valid_visits: i as usize % 5,
                dwell_ok_visits: i as usize % 3,
            })
            .collect();
        let sum_of = |ts: &mut dyn Iterator<Item = &Tally>| {
            let mut s = FiguresSum::default();
            ts.for_each(|t| s.add(t));
            s
        };
        let forward = sum_of(&mut tallies.iter());
        let backward = sum_of(&mut tallies.iter().rev());
        let mut halves = sum_of(&mut tallies[500..].iter());
        halves.merge(&sum_of(&mut tallies[..500].iter()));
        assert_eq!(forward, backward);
        assert_eq!(forward, halves);
        let f = forward.figures().frequency_compliance_pct.expect("figure");
        let plain = tallies.iter().map(Tally::frequency_compliance_pct).sum::<f64>() / 1000.0;
        assert!((f - plain).abs() < 1e-9, "{f} {plain}");
        // One outlet's figure comes back bit for bit.
        let third = Tally { required_visits: 3.0, valid_visits: 1, dwell_ok_visits: 0 };
        let one = sum_of(&mut std::iter::once(&third)).figures().frequency_compliance_pct;
        assert_eq!(one.map(f64::to_bits), Some(third.frequency_compliance_pct().to_bits()));
    }

    #[test]
    fn totals_sum_the_days_and_recompute_the_percentages() {
        let mut days = BTreeMap::new();
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 30).expect("date");
        let d2 = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        days.insert(
            d1,
            DayInputs {
                planned: vec![planned(1, 10, None), planned(2, 20, None)],
                visits: vec![visit(1, 10, t(9, 0), 20, "verified")],
                ..DayInputs::default()
            },
        );
        days.insert(
            d2,
            DayInputs {
                planned: vec![planned(3, 10, None)],
                visits: vec![visit(2, 10, t(9, 0), 20, "verified"), visit(3, 30, t(10, 0), 5, "suspect")],
                // A retired day: its fixes are gone, its distance was kept.
                kept_distance_m: Some(1234.5),
                ..DayInputs::default()
            },
        );
        let (per_day, totals) = rep_period(days, &ComplianceRules::default());
        assert_eq!(per_day.len(), 2);
        assert_eq!((per_day[0].figures.distance_m, per_day[1].figures.distance_m), (0.0, 1234.5));
        assert_eq!(totals.distance_m, 1234.5);
        assert_eq!((totals.planned, totals.done, totals.missed, totals.visits, totals.suspect_visits), (3, 2, 1, 3, 1));
        assert_eq!(totals.plan_compliance_pct, Some(200.0 / 3.0));
        assert_eq!(totals.suspect_rate_pct, Some(100.0 / 3.0));
        assert_eq!((totals.in_store_s, totals.days_in_market), (40 * 60, 2));
        let mut both = totals.clone();
        both.add(&totals);
        assert_eq!((both.planned, both.done, both.plan_compliance_pct), (6, 4, Some(200.0 / 3.0)));
    }
}
