//! Visits derived from one rep-day's fixes: stay detection (distance D and time T, as in Li et al.
//! 2008, trackintel and Traccar), presence runs inside each candidate outlet's geofence, the choice
//! between outlets in range, spoofing signals, and a verdict with its evidence.
//!
//! [`derive`] is a pure function of the set of fixes, the candidate outlets and the rules: the
//! order in which fixes arrived never changes its answer.
//!
//! Definitions (rule version [`RULE_VERSION`]):
//! - A fix is *at* an outlet when its distance to the outlet (to its point, or to its footprint
//!   when it has one: 0 inside) is at most the outlet's radius plus the fix's accuracy, the
//!   accuracy capped at [`VisitRules::accuracy_cap_m`] (accuracy unknown = 0), against the
//!   location the outlet had at the fix's time ([`CandidateOutlet::located_at`]). Until `visits-v2`
//!   the location valid at the start of the day was used, and an outlet's first location held
//!   for all the time before it was recorded (now for a few days: `db::visits::RECORDING_GRACE_DAYS`).
//! - A *presence* at an outlet is a run of fixes at it, in fix-time order. Fixes elsewhere for at
//!   most [`VisitRules::exit_grace_s`] do not end it (GPS scatter); a data gap (no fixes at all)
//!   that starts and ends at the outlet is bridged up to [`VisitRules::max_bridge_s`], and a
//!   bridged gap longer than [`VisitRules::max_gap_s`] makes the visit `unverified` (inferred).
//! - Arrival is the first fix of the presence, departure the last; dwell = departure - arrival.
//! - A presence shorter than [`VisitRules::min_presence_s`], or in which the rep never stopped, is a
//!   pass-by: no visit. The rep stopped when, from some fix of the presence to the first fix at
//!   least [`VisitRules::min_presence_s`] later or any later one within 10 minutes, the net
//!   displacement beyond the two fixes'
//!   accuracies (their sum, capped at [`VisitRules::accuracy_cap_m`]) is at most
//!   [`VisitRules::max_pass_speed_mps`] x the time between them (15 m in a minute). Over the whole presence instead
//!   (rules `visits-v1`), the legs driven into and out of the geofence outweighed a real one-minute
//!   halt at a bus stop.
//! - When presences at several outlets overlap in time, the one with the smallest median distance
//!   wins (then the longest dwell, then the smallest outlet id); the others are its alternatives.
//! - Verdict: `suspect` when the risk score is at least [`VisitRules::suspect_risk`]; else
//!   `unverified` when inferred across a gap or the median accuracy is worse than
//!   [`VisitRules::poor_accuracy_m`]; else `short` when the dwell is below the tier's minimum;
//!   else `verified`.
//! - Risk score (0..1, capped sum): a mock fix 0.6; an implied-speed jump inside the presence 0.3;
//!   a teleport into it (jump from the fix before arrival) 0.3; coordinates identical over
//!   [`VisitRules::min_fixes_for_variance`] or more fixes 0.4, accuracy identical over as many 0.2;
//!   a fix time ahead of its receive time by more than [`VisitRules::max_clock_ahead_s`] 0.3.
//! - Photos taken for the visit (since `visits-v4`, [`apply_photos`]): a photo far from the outlet
//!   adds 0.5, one taken at another time 0.5, a picture reused from another visit or outlet 0.6;
//!   a photo that confirms the visit (at the outlet, during it) by its EXIF with none against
//!   takes 0.2 off and keeps gaps or poor accuracy from making it `unverified` (one confirming only
//!   by the app's capture claim does not: [`PhotoSignals::seen_there`]).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::geo::{Footprint, chord_for_m, haversine_m, unit_xyz};
use crate::photo::{self, OutletPlace, PhotoFacts, PhotoRules, PhotoVerdict};
use geo::CoordsIter;

/// Version of these rules, stored with every visit.
pub const RULE_VERSION: &str = "visits-v4";

/// Thresholds of visit derivation; [`Default`] holds the documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisitRules {
    /// Stay detection distance D (metres). Default 100.
    pub stay_distance_m: f64,
    /// Stay detection time T (seconds). Default 300.
    pub stay_time_s: i64,
    /// Most accuracy added to an outlet's radius (metres). Default 50.
    pub accuracy_cap_m: f64,
    /// Median accuracy beyond which a visit is `unverified` (metres). Default 100.
    pub poor_accuracy_m: f64,
    /// Fixes elsewhere for at most this long do not end a presence (seconds). Default 60.
    pub exit_grace_s: i64,
    /// A bridged gap longer than this makes a visit inferred, `unverified` (seconds). Default 600.
    pub max_gap_s: i64,
    /// Longest data gap bridged at one outlet; longer splits the presence (seconds). Default 3 h.
    pub max_bridge_s: i64,
    /// Presences shorter than this are pass-bys (seconds). Default 60.
    pub min_presence_s: i64,
    /// Net displacement speed over a `min_presence_s` window up to which the rep stopped (m/s).
    /// Default 0.25.
    pub max_pass_speed_mps: f64,
    /// Implied speed between consecutive fixes beyond which they jump (m/s). Default 70.
    pub max_speed_mps: f64,
    /// Fixes needed before identical coordinates/accuracy count as a spoofing signal. Default 10.
    pub min_fixes_for_variance: usize,
    /// A fix time ahead of its receive time by more than this is a signal (seconds). Default 60.
    pub max_clock_ahead_s: i64,
    /// Risk score from which a visit is `suspect`. Default 0.5.
    pub suspect_risk: f64,
}

impl Default for VisitRules {
    fn default() -> Self {
        VisitRules {
            stay_distance_m: 100.0,
            stay_time_s: 300,
            accuracy_cap_m: 50.0,
            poor_accuracy_m: 100.0,
            exit_grace_s: 60,
            max_gap_s: 600,
            max_bridge_s: 3 * 3600,
            min_presence_s: 60,
            max_pass_speed_mps: 0.25,
            max_speed_mps: 70.0,
            min_fixes_for_variance: 10,
            max_clock_ahead_s: 60,
            suspect_risk: 0.5,
        }
    }
}

/// One stored fix of the rep-day.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitFix {
    pub fix_time: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    /// Metres; `None` = unknown.
    pub accuracy_m: Option<f32>,
    pub mock: bool,
    /// `pings.flags`, kept for the record; the rules recompute speed jumps themselves, since the
    /// stored flag depends on the order the fixes arrived in.
    pub flags: i32,
}

/// An outlet that may have been visited, at one of the locations it had on the rep-day (an outlet
/// that moved that day is a candidate once per location, each judged only for its own time).
#[derive(Debug, Clone)]
pub struct CandidateOutlet {
    pub id: i64,
    pub lat: f64,
    pub lon: f64,
    pub footprint: Option<Footprint>,
    /// Geofence radius (metres): the outlet's own or its tier's default.
    pub radius_m: f64,
    /// The tier's minimum dwell (seconds).
    pub min_dwell_s: i64,
    /// Since when the outlet stood here (for its first location, some days before the org
    /// recorded it); `None` = always.
    pub valid_from: Option<DateTime<Utc>>,
    /// Until when (exclusive); `None` = still.
    pub valid_to: Option<DateTime<Utc>>,
}

impl CandidateOutlet {
    /// Whether the outlet stood at this location at `t`.
    pub fn located_at(&self, t: DateTime<Utc>) -> bool {
        self.valid_from.is_none_or(|v| v <= t) && self.valid_to.is_none_or(|v| t < v)
    }

    /// How far from the outlet a fix of this accuracy may be and still be at it: the radius plus
    /// the accuracy (unknown = 0), capped at [`VisitRules::accuracy_cap_m`]. The one rule for
    /// "at the outlet", for derived visits and for a rep's check-in alike.
    pub fn allowance_m(&self, accuracy_m: Option<f32>, rules: &VisitRules) -> f64 {
        let accuracy = accuracy_m.map_or(0.0, f64::from).max(0.0);
        self.radius_m + accuracy.min(rules.accuracy_cap_m)
    }

    /// Distance from a position to the outlet: to the nearer of its point and its footprint.
    pub fn distance_m(&self, lat: f64, lon: f64) -> f64 {
        let point = haversine_m(lat, lon, self.lat, self.lon);
        self.footprint.as_ref().map_or(point, |f| f.distance_m(lat, lon).min(point))
    }
}

/// A stay: the rep stayed within D metres for at least T.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stay {
    pub arrival: DateTime<Utc>,
    pub departure: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub fix_count: usize,
}

/// How a visit was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Verified,
    Short,
    Unverified,
    Suspect,
}

named!(Verdict, "verdict", {
    Verified => "verified",
    Short => "short",
    Unverified => "unverified",
    Suspect => "suspect",
});

/// Spoofing signals seen in a visit's fixes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Signals {
    /// Fixes the phone marked as coming from a mock location provider.
    pub mock_fixes: usize,
    /// Implied-speed jumps between fixes of the visit (flagged at ingestion or found here).
    pub speed_jumps: usize,
    /// The fix before arrival is farther than any vehicle could have come from.
    pub teleport: bool,
    /// All fixes of the visit have the same coordinates (no GPS scatter).
    pub constant_position: bool,
    /// All fixes of the visit report the same accuracy.
    pub constant_accuracy: bool,
    /// Fixes whose time is ahead of their receive time.
    pub clock_ahead_fixes: usize,
}

/// Another outlet in range during the visit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alternative {
    pub outlet_id: i64,
    pub median_distance_m: f64,
    pub dwell_s: i64,
}

/// What a visit is based on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub fix_count: usize,
    pub min_distance_m: f64,
    pub median_distance_m: f64,
    /// Median of the known accuracies; `None` when no fix had one.
    pub median_accuracy_m: Option<f64>,
    /// Longest time between two consecutive fixes of the visit (seconds).
    pub max_gap_s: i64,
    /// Gaps longer than the rules' `max_gap_s` that the visit was inferred across (seconds).
    pub bridged_gaps_s: Vec<i64>,
    /// A stay (D, T) overlaps the visit.
    pub stay: bool,
    pub signals: Signals,
    /// What the photos taken for the visit showed (absent without photos).
    #[serde(skip_serializing_if = "PhotoSignals::is_empty")]
    pub photos: PhotoSignals,
    /// Mean position of the fixes.
    pub lat: f64,
    pub lon: f64,
}

/// One derived visit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Visit {
    pub outlet_id: i64,
    pub arrival: DateTime<Utc>,
    pub departure: DateTime<Utc>,
    pub dwell_s: i64,
    pub verdict: Verdict,
    pub risk_score: f64,
    pub evidence: Evidence,
    pub alternatives: Vec<Alternative>,
}

/// Fixes in the order every rule reads them: fix time, then position and accuracy.
fn ordered(fixes: &[VisitFix]) -> Vec<VisitFix> {
    let mut v: Vec<VisitFix> = fixes.iter().filter(|f| f.lat.is_finite() && f.lon.is_finite()).cloned().collect();
    v.sort_by(|a, b| {
        a.fix_time
            .cmp(&b.fix_time)
            .then(a.lat.total_cmp(&b.lat))
            .then(a.lon.total_cmp(&b.lon))
            .then(accuracy(a).total_cmp(&accuracy(b)))
    });
    // One fix per fix time (the store keeps one; this keeps the function total).
    v.dedup_by(|b, a| a.fix_time == b.fix_time);
    v
}

fn accuracy(f: &VisitFix) -> f64 {
    f.accuracy_m.map_or(0.0, |a| f64::from(a).max(0.0))
}

/// Stays of the day, by the sliding method of Li et al. (2008) as trackintel implements it
/// (`generate_staypoints(method="sliding")`, without a gap threshold, `include_last`): one pass
/// keeps an anchor fix; the first later fix at least D from the anchor ends the run, which is a
/// stay when that fix is at least T after the anchor (the stay lasts from the anchor to that fix,
/// its position is the mean of the fixes before it); either way that fix becomes the next anchor.
/// A run still open at the last fix is a stay when it lasts T up to the last fix.
pub fn stays(fixes: &[VisitFix], rules: &VisitRules) -> Vec<Stay> {
    stays_of_ordered(&ordered(fixes), rules)
}

/// [`stays`] of fixes already in [`ordered`] order.
fn stays_of_ordered(f: &[VisitFix], rules: &VisitRules) -> Vec<Stay> {
    // At least D on the sphere <=> unit-sphere chord at least the chord of D (monotone): three
    // multiplications per fix instead of a haversine.
    let limit = chord_for_m(rules.stay_distance_m).powi(2);
    let stay = |from: usize, to: usize, until: DateTime<Utc>| {
        let run = &f[from..to];
        let n = run.len() as f64;
        Stay {
            arrival: f[from].fix_time,
            departure: until,
            lat: run.iter().map(|x| x.lat).sum::<f64>() / n,
            lon: run.iter().map(|x| x.lon).sum::<f64>() / n,
            fix_count: run.len(),
        }
    };
    let mut out = Vec::new();
    let Some(first) = f.first() else { return out };
    let mut start = 0;
    let mut anchor = unit_xyz(first.lat, first.lon);
    for curr in 1..f.len() {
        let p = unit_xyz(f[curr].lat, f[curr].lon);
        let (dx, dy, dz) = (p[0] - anchor[0], p[1] - anchor[1], p[2] - anchor[2]);
        if dx * dx + dy * dy + dz * dz >= limit {
            if (f[curr].fix_time - f[start].fix_time).num_seconds() >= rules.stay_time_s {
                out.push(stay(start, curr, f[curr].fix_time));
            }
            start = curr;
            anchor = p;
        }
    }
    let last = f.len() - 1;
    if last > start && (f[last].fix_time - f[start].fix_time).num_seconds() >= rules.stay_time_s {
        out.push(stay(start, f.len(), f[last].fix_time));
    }
    out
}

/// A presence run at one outlet: indexes into the ordered fixes, and the distances.
struct Presence {
    fixes: Vec<usize>,
    distances: Vec<f64>,
    bridged: Vec<i64>,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { values[n / 2] } else { f64::midpoint(values[n / 2 - 1], values[n / 2]) }
}

fn implied_speed(a: &VisitFix, b: &VisitFix) -> f64 {
    let excess = haversine_m(a.lat, a.lon, b.lat, b.lon) - accuracy(a) - accuracy(b);
    if excess <= 0.0 {
        return 0.0;
    }
    let dt = (b.fix_time - a.fix_time).num_milliseconds() as f64 / 1000.0;
    if dt <= 0.0 { f64::INFINITY } else { excess / dt }
}

/// Fix indexes by latitude, for the fixes near an outlet.
struct ByLatitude {
    order: Vec<usize>,
    lats: Vec<f64>,
}

impl ByLatitude {
    fn new(f: &[VisitFix]) -> Self {
        let mut order: Vec<usize> = (0..f.len()).collect();
        order.sort_by(|&a, &b| f[a].lat.total_cmp(&f[b].lat).then(a.cmp(&b)));
        let lats = order.iter().map(|&k| f[k].lat).collect();
        ByLatitude { order, lats }
    }

    /// Indexes (in fix order) of the fixes with latitude in `[lo, hi]`.
    fn band(&self, lo: f64, hi: f64) -> Vec<usize> {
        let from = self.lats.partition_point(|&l| l < lo);
        let to = self.lats.partition_point(|&l| l <= hi);
        let mut v = self.order[from..to].to_vec();
        v.sort_unstable();
        v
    }
}

/// Metres per degree of latitude, a little less than the true ~111.2 km so that bands err wide.
const M_PER_DEG_LAT: f64 = 110_000.0;

/// The fixes at one location of an outlet (only those from the time it stood there), in fix order,
/// with their distance.
fn fixes_at(f: &[VisitFix], near: &ByLatitude, o: &CandidateOutlet, rules: &VisitRules) -> Vec<(usize, f64)> {
    let reach_max = o.radius_m + rules.accuracy_cap_m;
    let (mut lo, mut hi) = (o.lat, o.lat);
    if let Some(fp) = &o.footprint {
        for c in fp.area.coords_iter() {
            lo = lo.min(c.y);
            hi = hi.max(c.y);
        }
    }
    let (mut west, mut east) = (o.lon, o.lon);
    if let Some(fp) = &o.footprint {
        for c in fp.area.coords_iter() {
            west = west.min(c.x);
            east = east.max(c.x);
        }
    }
    let pad = reach_max / M_PER_DEG_LAT;
    // Degrees of longitude per degree of latitude shrink towards the poles; near them (and across
    // the antimeridian) every fix of the band is judged.
    let cos = (lo.abs().max(hi.abs()) + pad).min(90.0).to_radians().cos();
    let lon_pad = if cos > 0.05 && east - west < 1.0 { pad / cos } else { f64::INFINITY };
    let in_lon = |lon: f64| {
        let d = if lon < west {
            west - lon
        } else if lon > east {
            lon - east
        } else {
            0.0
        };
        d.min(360.0 - d) <= lon_pad
    };
    near.band(lo - pad, hi + pad)
        .into_iter()
        .filter(|&k| in_lon(f[k].lon) && o.located_at(f[k].fix_time))
        .filter_map(|k| {
            let d = o.distance_m(f[k].lat, f[k].lon);
            (d <= o.allowance_m(f[k].accuracy_m, rules)).then_some((k, d))
        })
        .collect()
}

/// The presences at one outlet over the ordered fixes; `sites` are its locations during the day
/// (one history row each, disjoint in time): each fix is judged against the one of its time, and
/// a presence runs on across a change of location (a re-pin while the rep is there).
fn presences(f: &[VisitFix], near: &ByLatitude, sites: &[&CandidateOutlet], rules: &VisitRules) -> Vec<Presence> {
    let mut at: Vec<(usize, f64)> = sites.iter().flat_map(|o| fixes_at(f, near, o, rules)).collect();
    at.sort_by_key(|&(k, _)| k);
    at.dedup_by_key(|&mut (k, _)| k);
    let mut out = Vec::new();
    let mut current: Option<Presence> = None;
    for (n, &(k, d)) in at.iter().enumerate() {
        if let Some(p) = current.as_mut() {
            let prev = at[n - 1].0;
            let last = &f[prev];
            // The first fix elsewhere since the last fix at the outlet, if any.
            let away_since = (k > prev + 1).then(|| f[prev + 1].fix_time);
            // The data gap after the last fix at the outlet (up to the first fix elsewhere, if
            // any) is bridged up to the limit; time away (from that first fix elsewhere) is
            // allowed up to the grace.
            let until = away_since.unwrap_or(f[k].fix_time);
            let gap = (until - last.fix_time).num_seconds();
            let left = away_since.is_some_and(|a| (f[k].fix_time - a).num_seconds() > rules.exit_grace_s);
            if left || gap > rules.max_bridge_s {
                out.extend(current.take());
            } else if gap > rules.max_gap_s {
                p.bridged.push(gap);
            }
        }
        let p =
            current.get_or_insert_with(|| Presence { fixes: Vec::new(), distances: Vec::new(), bridged: Vec::new() });
        p.fixes.push(k);
        p.distances.push(d);
    }
    out.extend(current);
    out
}

/// Longest window (seconds) the stop test looks at from one fix: it bounds the work on long
/// presences, and a rep who stayed has some window this short that shows it.
const STOP_WINDOW_MAX_S: f64 = 600.0;

/// Whether the rep stopped during a presence (module documentation): from some fix of the
/// presence to the first fix 60 s or more later, or to any fix up to 10 minutes later, the net displacement beyond the two fixes'
/// accuracies (capped) is at most `max_pass_speed_mps` x the time between them.
fn stopped(f: &[VisitFix], presence: &[usize], rules: &VisitRules) -> bool {
    let mut first = 0;
    for i in 0..presence.len() {
        let a = &f[presence[i]];
        first = first.max(i + 1);
        while first < presence.len() && (f[presence[first]].fix_time - a.fix_time).num_seconds() < rules.min_presence_s
        {
            first += 1;
        }
        for (n, &bj) in presence[first.min(presence.len())..].iter().enumerate() {
            let b = &f[bj];
            let dt = (b.fix_time - a.fix_time).num_milliseconds() as f64 / 1000.0;
            // The first fix at least a minute later always counts (across a data gap too).
            if n > 0 && dt > STOP_WINDOW_MAX_S {
                break;
            }
            // Scatter within the fixes' accuracy (capped) is not movement.
            let scatter = (accuracy(a) + accuracy(b)).min(rules.accuracy_cap_m);
            if haversine_m(a.lat, a.lon, b.lat, b.lon) - scatter <= rules.max_pass_speed_mps * dt {
                return true;
            }
        }
    }
    false
}

/// A presence judged as a visit (before the choice between overlapping outlets); `None` for a pass-by.
fn judge(f: &[VisitFix], p: &Presence, o: &CandidateOutlet, stays: &[Stay], rules: &VisitRules) -> Option<Visit> {
    let first = &f[p.fixes[0]];
    let last = &f[*p.fixes.last()?];
    let dwell_s = (last.fix_time - first.fix_time).num_seconds();
    if dwell_s < rules.min_presence_s {
        return None;
    }
    if !stopped(f, &p.fixes, rules) {
        return None;
    }
    let fixes: Vec<&VisitFix> = p.fixes.iter().map(|&k| &f[k]).collect();
    let mut distances = p.distances.clone();
    let min_distance_m = distances.iter().copied().fold(f64::INFINITY, f64::min);
    let median_distance_m = median(&mut distances);
    let mut accuracies: Vec<f64> = fixes.iter().filter_map(|x| x.accuracy_m).map(f64::from).collect();
    let median_accuracy_m = (!accuracies.is_empty()).then(|| median(&mut accuracies));
    let max_gap_s = fixes.windows(2).map(|w| (w[1].fix_time - w[0].fix_time).num_seconds()).max().unwrap_or(0);

    let mut signals = Signals { mock_fixes: fixes.iter().filter(|x| x.mock).count(), ..Signals::default() };
    // Recomputed here, not read from the stored flag (which depends on how the fixes arrived).
    signals.speed_jumps = fixes.windows(2).filter(|w| implied_speed(w[0], w[1]) > rules.max_speed_mps).count();
    signals.teleport = p.fixes[0] > 0 && implied_speed(&f[p.fixes[0] - 1], first) > rules.max_speed_mps;
    if fixes.len() >= rules.min_fixes_for_variance {
        // Bit-identical: real fixes scatter in the last digits.
        signals.constant_position =
            fixes.iter().all(|x| x.lat.to_bits() == first.lat.to_bits() && x.lon.to_bits() == first.lon.to_bits());
        signals.constant_accuracy =
            first.accuracy_m.is_some() && fixes.iter().all(|x| x.accuracy_m == first.accuracy_m);
    }
    signals.clock_ahead_fixes =
        fixes.iter().filter(|x| (x.fix_time - x.received_at).num_seconds() > rules.max_clock_ahead_s).count();
    let risk_score = risk(&signals);

    let stay = stays.iter().any(|s| s.arrival <= last.fix_time && s.departure >= first.fix_time);
    let n = fixes.len() as f64;
    let evidence = Evidence {
        fix_count: fixes.len(),
        min_distance_m,
        median_distance_m,
        median_accuracy_m,
        max_gap_s,
        bridged_gaps_s: p.bridged.clone(),
        stay,
        lat: fixes.iter().map(|x| x.lat).sum::<f64>() / n,
        lon: fixes.iter().map(|x| x.lon).sum::<f64>() / n,
        signals,
        photos: PhotoSignals::default(),
    };
    let verdict = verdict_of(risk_score, &evidence, dwell_s, o.min_dwell_s, rules);
    Some(Visit {
        outlet_id: o.id,
        arrival: first.fix_time,
        departure: last.fix_time,
        dwell_s,
        verdict,
        risk_score,
        evidence,
        alternatives: Vec::new(),
    })
}

/// The verdict of a visit with this risk and evidence (module documentation); a photo that
/// confirms the visit by its own EXIF (and none against it) shows the rep was there, so gaps or
/// poor accuracy no longer make it `unverified`.
fn verdict_of(risk_score: f64, evidence: &Evidence, dwell_s: i64, min_dwell_s: i64, rules: &VisitRules) -> Verdict {
    let seen_there = evidence.photos.seen_there();
    let inferred =
        !evidence.bridged_gaps_s.is_empty() || evidence.median_accuracy_m.is_some_and(|a| a > rules.poor_accuracy_m);
    if risk_score >= rules.suspect_risk {
        Verdict::Suspect
    } else if inferred && !seen_there {
        Verdict::Unverified
    } else if dwell_s < min_dwell_s {
        Verdict::Short
    } else {
        Verdict::Verified
    }
}

/// What the photos taken for a visit showed ([`crate::photo`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PhotoSignals {
    /// The photos, by id.
    pub photo_ids: Vec<i64>,
    /// Taken at the outlet during the visit.
    pub confirming: usize,
    /// Of those, confirming by the app's own capture claim (no EXIF position): the same phone's
    /// GPS as the visit's fixes, so not independent proof that the rep was there.
    #[serde(default)]
    pub confirming_by_claim: usize,
    /// Taken farther than the photo rules' `far_m` from the outlet.
    pub far: usize,
    /// Taken outside the visit's time (with the tolerance).
    pub off_time: usize,
    /// The same picture as one given before for another visit or outlet.
    pub reused: usize,
    /// Without EXIF position or time to judge by.
    pub unverifiable: usize,
}

impl PhotoSignals {
    pub fn is_empty(&self) -> bool {
        self.photo_ids.is_empty()
    }

    /// Photos against the visit (one may count in several ways).
    pub fn contradicting(&self) -> usize {
        self.far + self.off_time + self.reused
    }

    /// A photo confirms the visit by its own EXIF and none is against it: the rep was seen there
    /// (a gap or poor accuracy no longer makes the visit `unverified`; 0.2 off its risk). A photo
    /// confirming only by the app's capture claim does not count: its position is the same phone's
    /// GPS as the visit's fixes.
    pub fn seen_there(&self) -> bool {
        self.confirming > self.confirming_by_claim && self.contradicting() == 0
    }
}

/// A photo taken for a visit, as derivation reads it: the visit it was uploaded for is found
/// again by outlet and arrival (as a review is), whatever its id now.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitPhoto {
    pub id: i64,
    pub outlet_id: i64,
    /// Arrival of the visit the photo was uploaded for.
    pub visit_arrival: DateTime<Utc>,
    pub facts: PhotoFacts,
}

/// Adds photo evidence to derived visits and judges them again. Each photo goes to the visit at
/// its outlet nearest the arrival it was uploaded for (within 30 minutes of the visit's time).
/// Risk (module documentation of [`crate::photo`]): a far photo adds 0.5, one taken off
/// time 0.5, a reused one 0.6; a confirming photo with none against takes 0.2 off.
pub fn apply_photos(
    visits: &mut [Visit],
    photos: &[VisitPhoto],
    outlets: &[CandidateOutlet],
    rules: &VisitRules,
    photo_rules: &PhotoRules,
) {
    let slack = Duration::minutes(30);
    let mut touched = vec![false; visits.len()];
    let mut photos: Vec<&VisitPhoto> = photos.iter().collect();
    photos.sort_by_key(|p| p.id);
    for p in photos {
        let nearest = visits
            .iter()
            .enumerate()
            .filter(|(_, v)| {
                v.outlet_id == p.outlet_id
                    && v.arrival - slack <= p.visit_arrival
                    && p.visit_arrival <= v.departure + slack
            })
            .min_by_key(|(_, v)| ((v.arrival - p.visit_arrival).num_seconds().abs(), v.arrival));
        let Some((index, _)) = nearest else { continue };
        let visit = &mut visits[index];
        let at = |o: &&CandidateOutlet| o.id == visit.outlet_id && o.located_at(visit.arrival);
        let Some(outlet) = outlets.iter().find(at) else { continue };
        let place = OutletPlace { lat: outlet.lat, lon: outlet.lon, radius_m: outlet.radius_m };
        let f = photo::findings(&p.facts, place, Some((visit.arrival, visit.departure)), photo_rules);
        let s = &mut visit.evidence.photos;
        s.photo_ids.push(p.id);
        match f.verdict {
            PhotoVerdict::Confirms => {
                s.confirming += 1;
                s.confirming_by_claim += usize::from(f.position_source == Some(photo::FactSource::App));
            }
            PhotoVerdict::Unverifiable => s.unverifiable += 1,
            PhotoVerdict::Contradicts => {
                s.far += usize::from(f.far);
                s.off_time += usize::from(f.during_visit == Some(false));
                s.reused += usize::from(f.reused_photo_id.is_some());
            }
        }
        touched[index] = true;
    }
    for (v, _) in visits.iter_mut().zip(touched).filter(|(_, t)| *t) {
        let Some(o) = outlets.iter().find(|o| o.id == v.outlet_id && o.located_at(v.arrival)) else { continue };
        v.risk_score = risk_with_photos(&v.evidence.signals, &v.evidence.photos);
        v.verdict = verdict_of(v.risk_score, &v.evidence, v.dwell_s, o.min_dwell_s, rules);
    }
}

/// [`risk`] with the photo terms of [`apply_photos`], in hundredths, within 0..1.
pub fn risk_with_photos(s: &Signals, p: &PhotoSignals) -> f64 {
    let base = (risk(s) * 100.0).round() as i64;
    let against = [(p.far > 0, 50), (p.off_time > 0, 50), (p.reused > 0, 60)]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, points)| points)
        .sum::<i64>();
    let relief = if p.seen_there() { 20 } else { 0 };
    (base + against - relief).clamp(0, 100) as f64 / 100.0
}

/// The risk score of a set of signals (weights in the module documentation), summed in
/// hundredths so that equal signals always give the same score.
pub fn risk(s: &Signals) -> f64 {
    let points = [
        (s.mock_fixes > 0, 60),
        (s.speed_jumps > 0, 30),
        (s.teleport, 30),
        (s.constant_position, 40),
        (s.constant_accuracy, 20),
        (s.clock_ahead_fixes > 0, 30),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, p)| p)
    .sum::<u32>();
    f64::from(points.min(100)) / 100.0
}

/// The visits of a rep-day, in arrival order.
pub fn derive(fixes: &[VisitFix], outlets: &[CandidateOutlet], rules: &VisitRules) -> Vec<Visit> {
    let f = ordered(fixes);
    let day_stays = stays_of_ordered(&f, rules);
    let near = ByLatitude::new(&f);
    let mut outlets: Vec<&CandidateOutlet> = outlets.iter().collect();
    outlets.sort_by_key(|o| (o.id, o.valid_from));
    outlets.dedup_by_key(|o| (o.id, o.valid_from));
    let mut candidates: Vec<Visit> = Vec::new();
    for sites in outlets.chunk_by(|a, b| a.id == b.id) {
        for p in presences(&f, &near, sites, rules) {
            candidates.extend(judge(&f, &p, sites[0], &day_stays, rules));
        }
    }
    // Best evidence first: nearest median distance, then longest dwell, then smallest outlet id.
    candidates.sort_by(|a, b| {
        a.evidence
            .median_distance_m
            .total_cmp(&b.evidence.median_distance_m)
            .then(b.dwell_s.cmp(&a.dwell_s))
            .then(a.outlet_id.cmp(&b.outlet_id))
            .then(a.arrival.cmp(&b.arrival))
    });
    let mut chosen: Vec<Visit> = Vec::new();
    for v in candidates {
        match chosen.iter_mut().find(|w| w.arrival <= v.departure && v.arrival <= w.departure) {
            Some(w) => {
                if !w.alternatives.iter().any(|a| a.outlet_id == v.outlet_id) {
                    w.alternatives.push(Alternative {
                        outlet_id: v.outlet_id,
                        median_distance_m: v.evidence.median_distance_m,
                        dwell_s: v.dwell_s,
                    });
                }
            }
            None => chosen.push(v),
        }
    }
    for v in &mut chosen {
        v.alternatives
            .sort_by(|a, b| a.median_distance_m.total_cmp(&b.median_distance_m).then(a.outlet_id.cmp(&b.outlet_id)));
    }
    chosen.sort_by(|a, b| a.arrival.cmp(&b.arrival).then(a.outlet_id.cmp(&b.outlet_id)));
    chosen
}

/// The extent of a rep-day's fixes within one cell of the grid that the candidate-outlet query
/// probes the outlets' index with (degrees: `x` longitude, `y` latitude).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackBox {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

/// The fixes grouped by cell of `cell_deg` degrees (`floor(lon / cell_deg)`, `floor(lat /
/// cell_deg)`, as PostgreSQL's `floor` of a `float8` quotient), one box per cell that holds any:
/// the smallest and largest longitude and latitude of its fixes. A few hundred index probes for a
/// day instead of one per fix; in cell order, so that equal inputs give equal outputs.
#[must_use]
pub fn track_boxes(fixes: &[VisitFix], cell_deg: f64) -> Vec<TrackBox> {
    let mut cells: std::collections::BTreeMap<(i64, i64), TrackBox> = std::collections::BTreeMap::new();
    for f in fixes {
        // Cells are whole numbers of a few hundred thousand at most: exact as i64.
        #[allow(clippy::cast_possible_truncation)]
        let key = ((f.lon / cell_deg).floor() as i64, (f.lat / cell_deg).floor() as i64);
        cells
            .entry(key)
            .and_modify(|b| {
                b.x0 = b.x0.min(f.lon);
                b.y0 = b.y0.min(f.lat);
                b.x1 = b.x1.max(f.lon);
                b.y1 = b.y1.max(f.lat);
            })
            .or_insert(TrackBox { x0: f.lon, y0: f.lat, x1: f.lon, y1: f.lat });
    }
    cells.into_values().collect()
}

/// A visit already stored for a rep-day, as [`carry_ids`] matches it against a new derivation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorVisit {
    pub id: i64,
    pub outlet_id: i64,
    pub arrival: DateTime<Utc>,
    pub departure: DateTime<Utc>,
}

/// How far a re-derived visit's times may move and still be the same visit: late or corrected
/// fixes shift arrival and departure by minutes, not by half an hour.
pub const SAME_VISIT_SLACK_S: i64 = 30 * 60;

/// Which stored visit each newly derived visit of the same rep-day continues, so that a visit
/// keeps its id when its day is derived again (after late pings, a photo or a rule change) and a
/// client holding the id can still add evidence to it. A new visit continues the unclaimed stored
/// visit at the same outlet whose times overlap it (within [`SAME_VISIT_SLACK_S`]) with the
/// nearest arrival; visits are taken in arrival order, so the result does not depend on how the
/// inputs are ordered beyond that. `None` means a new visit.
#[must_use]
pub fn carry_ids(stored: &[PriorVisit], derived: &[Visit]) -> Vec<Option<i64>> {
    let slack = Duration::seconds(SAME_VISIT_SLACK_S);
    let mut order: Vec<usize> = (0..derived.len()).collect();
    order.sort_by_key(|&i| (derived[i].arrival, derived[i].outlet_id));
    let mut taken = vec![false; stored.len()];
    let mut ids = vec![None; derived.len()];
    for i in order {
        let v = &derived[i];
        let best = stored
            .iter()
            .enumerate()
            .filter(|(k, s)| {
                !taken[*k]
                    && s.outlet_id == v.outlet_id
                    && s.arrival <= v.departure + slack
                    && s.departure >= v.arrival - slack
            })
            .min_by_key(|(_, s)| ((s.arrival - v.arrival).num_seconds().abs(), s.id));
        if let Some((k, s)) = best {
            taken[k] = true;
            ids[i] = Some(s.id);
        }
    }
    ids
}

#[cfg(test)]
// Exact values are the point of these assertions.
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    const LAT: f64 = 39.9;
    const LON: f64 = 116.4;
    /// Metres per degree of latitude (for building positions).
    const M: f64 = 1.0 / 111_195.0;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).single().expect("time") + Duration::seconds(s)
    }

    fn at(lat: f64, lon: f64) -> VisitFix {
        VisitFix { fix_time: t(0), received_at: t(0), lat, lon, accuracy_m: None, mock: false, flags: 0 }
    }

    #[test]
    fn track_boxes_hold_the_extent_of_each_cells_fixes() {
        // Cells of 0.002 degrees: two fixes in one cell, one in the next cell east, one in a
        // cell south-west across zero (floor, not truncation: -0.0005 is in cell -1).
        let fixes = [at(39.9001, 116.4001), at(39.9015, 116.4012), at(39.9003, 116.4025), at(-0.0005, -0.0001)];
        let boxes = track_boxes(&fixes, 0.002);
        assert_eq!(
            boxes,
            vec![
                TrackBox { x0: -0.0001, y0: -0.0005, x1: -0.0001, y1: -0.0005 },
                TrackBox { x0: 116.4001, y0: 39.9001, x1: 116.4012, y1: 39.9015 },
                TrackBox { x0: 116.4025, y0: 39.9003, x1: 116.4025, y1: 39.9003 },
            ]
        );
        assert!(track_boxes(&[], 0.002).is_empty());
    }

    proptest! {
        #[test]
        fn track_boxes_cover_every_fix_in_its_own_cell(
            pts in proptest::collection::vec((-89.9f64..89.9, -179.9f64..179.9), 0..60),
        ) {
            let fixes: Vec<VisitFix> = pts.iter().map(|&(lat, lon)| at(lat, lon)).collect();
            let boxes = track_boxes(&fixes, 0.002);
            // Order does not matter.
            let mut reversed = fixes.clone();
            reversed.reverse();
            prop_assert_eq!(&track_boxes(&reversed, 0.002), &boxes);
            for f in &fixes {
                prop_assert!(boxes.iter().any(|b| b.x0 <= f.lon && f.lon <= b.x1 && b.y0 <= f.lat && f.lat <= b.y1));
            }
            // Each box lies in one cell and its corners are fixes' coordinates.
            for b in &boxes {
                prop_assert_eq!((b.x0 / 0.002).floor(), (b.x1 / 0.002).floor());
                prop_assert_eq!((b.y0 / 0.002).floor(), (b.y1 / 0.002).floor());
                prop_assert!(fixes.iter().any(|f| f.lon == b.x0) && fixes.iter().any(|f| f.lat == b.y1));
            }
            let cells: std::collections::BTreeSet<(i64, i64)> = fixes
                .iter()
                .map(|f| ((f.lon / 0.002).floor() as i64, (f.lat / 0.002).floor() as i64))
                .collect();
            prop_assert_eq!(boxes.len(), cells.len());
        }
    }

    fn fix(s: i64, north_m: f64, accuracy: f32) -> VisitFix {
        VisitFix {
            fix_time: t(s),
            received_at: t(s) + Duration::seconds(2),
            lat: LAT + north_m * M,
            lon: LON,
            accuracy_m: Some(accuracy),
            mock: false,
            flags: 0,
        }
    }

    fn outlet(id: i64, north_m: f64, radius_m: f64) -> CandidateOutlet {
        CandidateOutlet {
            id,
            lat: LAT + north_m * M,
            lon: LON,
            footprint: None,
            radius_m,
            min_dwell_s: 300,
            valid_from: None,
            valid_to: None,
        }
    }

    /// Fixes every `step` seconds in `[from, to]`, scattered a few metres around `north_m`, with
    /// accuracies scattered around 8 m (as a real phone's are).
    fn around(from: i64, to: i64, step: usize, north_m: f64) -> Vec<VisitFix> {
        (from..=to)
            .step_by(step)
            .enumerate()
            .map(|(i, s)| fix(s, north_m + ((i * 7) % 11) as f64 - 5.0, 6.0 + ((i * 3) % 5) as f32))
            .collect()
    }

    #[test]
    fn a_stop_at_an_outlet_is_one_verified_visit_with_its_evidence() {
        let fixes = around(0, 900, 30, 0.0);
        let visits = derive(&fixes, &[outlet(1, 0.0, 50.0)], &VisitRules::default());
        assert_eq!(visits.len(), 1, "{visits:?}");
        let v = &visits[0];
        assert_eq!((v.outlet_id, v.arrival, v.departure, v.dwell_s), (1, t(0), t(900), 900));
        assert_eq!(v.verdict, Verdict::Verified);
        assert_eq!(v.evidence.fix_count, 31);
        assert_eq!(v.evidence.max_gap_s, 30);
        assert_eq!(v.evidence.median_accuracy_m, Some(8.0));
        assert_eq!(v.evidence.signals, Signals::default());
        assert!(v.evidence.min_distance_m <= v.evidence.median_distance_m && v.evidence.median_distance_m < 6.0);
        assert!(v.evidence.stay, "a 15-minute stop is a stay");
        assert_eq!(v.risk_score, 0.0);
        assert!(v.alternatives.is_empty());
    }

    fn photo(id: i64, north_m: f64, at: i64) -> VisitPhoto {
        VisitPhoto {
            id,
            outlet_id: 1,
            visit_arrival: t(0),
            facts: PhotoFacts {
                taken_at: Some(t(at)),
                position: Some((LAT + north_m * M, LON)),
                reused_photo_id: None,
                capture: None,
            },
        }
    }

    #[test]
    fn photos_raise_or_lower_a_visits_standing() {
        let o = [outlet(1, 0.0, 50.0)];
        let rules = VisitRules::default();
        let derived = derive(&around(0, 900, 30, 0.0), &o, &rules);
        let with = |photos: &[VisitPhoto]| {
            let mut v = derived.clone();
            apply_photos(&mut v, photos, &o, &rules, &PhotoRules::default());
            v.remove(0)
        };
        // Taken at the outlet during the visit: evidence for it.
        let v = with(&[photo(5, 20.0, 300)]);
        assert_eq!((v.verdict, v.risk_score), (Verdict::Verified, 0.0));
        assert_eq!((v.evidence.photos.confirming, v.evidence.photos.photo_ids.clone()), (1, vec![5]));
        // 2 km away, or a day earlier: the visit is flagged, and says why.
        let v = with(&[photo(6, 2000.0, 300)]);
        assert_eq!((v.verdict, v.risk_score, v.evidence.photos.far), (Verdict::Suspect, 0.5, 1));
        let v = with(&[photo(7, 10.0, 300 - 86_400)]);
        assert_eq!((v.verdict, v.risk_score, v.evidence.photos.off_time), (Verdict::Suspect, 0.5, 1));
        let reused = VisitPhoto {
            facts: PhotoFacts { reused_photo_id: Some(2), ..photo(8, 10.0, 300).facts },
            ..photo(8, 10.0, 300)
        };
        let v = with(&[reused]);
        assert_eq!((v.verdict, v.risk_score, v.evidence.photos.reused), (Verdict::Suspect, 0.6, 1));
        // A photo of another outlet, or of a visit hours away, is not this visit's.
        let elsewhere = VisitPhoto { outlet_id: 2, ..photo(9, 2000.0, 300) };
        let later = VisitPhoto { visit_arrival: t(7200), ..photo(10, 2000.0, 300) };
        assert_eq!(with(&[elsewhere, later]), derived[0]);

        // A visit inferred across a data gap is `unverified`; a confirming photo shows the rep was there.
        let mut gappy = around(0, 300, 30, 0.0);
        gappy.extend(around(1500, 1800, 30, 0.0));
        let inferred = derive(&gappy, &o, &rules);
        assert_eq!(inferred[0].verdict, Verdict::Unverified, "{inferred:?}");
        let mut confirmed = inferred.clone();
        apply_photos(&mut confirmed, &[photo(11, 0.0, 600)], &o, &rules, &PhotoRules::default());
        assert_eq!(confirmed[0].verdict, Verdict::Verified);
        // The app's capture claim instead of EXIF (a browser stripped it): the photo confirms, but
        // its position is the same phone's GPS as the fixes, so it does not lift the verdict.
        let claimed = PhotoFacts {
            capture: Some(photo::Capture { at: Some(t(600)), lat: Some(LAT), lon: Some(LON), accuracy_m: Some(10.0) }),
            ..PhotoFacts::default()
        };
        let mut confirmed = inferred.clone();
        apply_photos(
            &mut confirmed,
            &[VisitPhoto { facts: claimed, ..photo(12, 0.0, 600) }],
            &o,
            &rules,
            &PhotoRules::default(),
        );
        let p = &confirmed[0].evidence.photos;
        assert_eq!((confirmed[0].verdict, p.confirming, p.confirming_by_claim), (Verdict::Unverified, 1, 1));
        assert_eq!(confirmed[0].risk_score, inferred[0].risk_score, "no relief from a claim");
    }

    #[test]
    fn a_re_pin_during_a_stop_keeps_one_visit_judged_at_each_location() {
        // Re-pinned 20 m north (and its radius cut to 30 m) half-way through a 15-minute stop.
        let fixes = around(0, 900, 30, 0.0);
        let before = CandidateOutlet { valid_to: Some(t(450)), ..outlet(1, 0.0, 50.0) };
        let after = CandidateOutlet { valid_from: Some(t(450)), ..outlet(1, 20.0, 30.0) };
        let visits = derive(&fixes, &[after.clone(), before.clone()], &VisitRules::default());
        assert_eq!(visits.len(), 1, "{visits:?}");
        assert_eq!((visits[0].arrival, visits[0].departure, visits[0].evidence.fix_count), (t(0), t(900), 31));
        assert!(visits[0].alternatives.is_empty(), "{visits:?}");
        // Re-pinned 500 m away instead: only the fixes before it are at the outlet.
        let far = CandidateOutlet { valid_from: Some(t(450)), ..outlet(1, 500.0, 50.0) };
        let visits = derive(&fixes, &[before, far], &VisitRules::default());
        assert_eq!(visits.len(), 1, "{visits:?}");
        assert_eq!((visits[0].arrival, visits[0].departure), (t(0), t(420)));
    }

    #[test]
    fn driving_past_is_not_a_visit() {
        // 10 m/s through a 50 m geofence, a fix every 2 s, and a slow crawl through in traffic.
        let fast: Vec<VisitFix> = (0..40).map(|i| fix(i * 2, -400.0 + i as f64 * 20.0, 5.0)).collect();
        let slow: Vec<VisitFix> = (0..100).map(|i| fix(1000 + i * 5, -150.0 + i as f64 * 3.0, 5.0)).collect();
        let rules = VisitRules::default();
        assert!(derive(&fast, &[outlet(1, 0.0, 50.0)], &rules).is_empty());
        assert!(derive(&slow, &[outlet(1, 0.0, 50.0)], &rules).is_empty());
    }

    #[test]
    fn a_one_minute_halt_between_driving_in_and_out_is_a_visit() {
        // A bus: 8 m/s into a 30 m geofence, 70 s at the stop (a fix every 10 s), 8 m/s out. Net
        // displacement over the whole presence is ~56 m in ~84 s (0.67 m/s); over the halt, ~0.
        let mut bus: Vec<VisitFix> = (0..10).map(|i| fix(i * 2, -72.0 + i as f64 * 8.0, 5.0)).collect();
        bus.extend((0..=7).map(|i| fix(20 + i * 10, 8.0, 5.0)));
        bus.extend((1..10).map(|i| fix(90 + i * 2, 8.0 + i as f64 * 8.0, 5.0)));
        let rules = VisitRules::default();
        let visits = derive(&bus, &[outlet(1, 0.0, 30.0)], &rules);
        assert_eq!(visits.len(), 1, "{visits:?}");
        assert_eq!(visits[0].verdict, Verdict::Short);
        // The same path without the halt is a drive-by; so is a 40 s halt.
        let through: Vec<VisitFix> = (0..20).map(|i| fix(i * 2, -72.0 + i as f64 * 8.0, 5.0)).collect();
        assert!(derive(&through, &[outlet(1, 0.0, 30.0)], &rules).is_empty());
        let mut brief: Vec<VisitFix> = (0..10).map(|i| fix(i * 2, -72.0 + i as f64 * 8.0, 5.0)).collect();
        brief.extend((0..=4).map(|i| fix(20 + i * 10, 8.0, 5.0)));
        brief.extend((1..10).map(|i| fix(60 + i * 2, 8.0 + i as f64 * 8.0, 5.0)));
        assert!(derive(&brief, &[outlet(1, 0.0, 30.0)], &rules).is_empty());
    }

    #[test]
    fn a_gap_of_few_fixes_at_the_outlet_is_still_a_stop() {
        // Three fixes, 40 minutes without any, three fixes: all at the outlet.
        let mut f: Vec<VisitFix> = (0..3).map(|i| fix(i * 10, 2.0, 5.0)).collect();
        f.extend((0..3).map(|i| fix(2420 + i * 10, 3.0, 5.0)));
        let visits = derive(&f, &[outlet(1, 0.0, 50.0)], &VisitRules::default());
        assert_eq!(visits.iter().map(|v| v.verdict).collect::<Vec<_>>(), [Verdict::Unverified], "{visits:?}");
    }

    #[test]
    fn scatter_within_the_accuracy_is_not_movement() {
        // Ten minutes indoors, a fix every 90 s jumping 40 m with 25 m accuracy: a visit.
        let indoors: Vec<VisitFix> =
            (0..=6).map(|i| fix(i * 90, if i % 2 == 0 { -20.0 } else { 20.0 }, 25.0)).collect();
        let visits = derive(&indoors, &[outlet(1, 0.0, 50.0)], &VisitRules::default());
        assert_eq!(visits.len(), 1, "{visits:?}");
        // With 2 m accuracy each 90 s step is movement, but the rep keeps coming back: pacing in
        // the shop, a stop (from a fix to the one 180 s later nothing moved).
        let pacing: Vec<VisitFix> = (0..=6).map(|i| fix(i * 90, if i % 2 == 0 { -20.0 } else { 20.0 }, 2.0)).collect();
        assert_eq!(derive(&pacing, &[outlet(1, 0.0, 50.0)], &VisitRules::default()).len(), 1);
        // Walking steadily through at 0.5 m/s, with the same accuracy: no stop.
        let through: Vec<VisitFix> = (0..=10).map(|i| fix(i * 20, -50.0 + i as f64 * 10.0, 2.0)).collect();
        assert!(derive(&through, &[outlet(1, 0.0, 50.0)], &VisitRules::default()).is_empty());
    }

    #[test]
    fn a_stop_below_the_tiers_dwell_is_short() {
        let visits = derive(&around(0, 180, 20, 0.0), &[outlet(1, 0.0, 50.0)], &VisitRules::default());
        assert_eq!(visits.iter().map(|v| (v.verdict, v.dwell_s)).collect::<Vec<_>>(), vec![(Verdict::Short, 180)]);
    }

    #[test]
    fn poor_accuracy_is_unverified_and_accuracy_widens_the_geofence_up_to_the_cap() {
        let blurred: Vec<VisitFix> = around(0, 900, 30, 80.0)
            .into_iter()
            .map(|f| VisitFix { accuracy_m: f.accuracy_m.map(|a| a + 140.0), ..f })
            .collect();
        let visits = derive(&blurred, &[outlet(1, 0.0, 50.0)], &VisitRules::default());
        assert_eq!(visits.iter().map(|v| v.verdict).collect::<Vec<_>>(), vec![Verdict::Unverified]);
        // 120 m away: beyond 50 m radius + 50 m capped accuracy.
        let far: Vec<VisitFix> = (0..=30).map(|i| fix(i * 30, 120.0 + (i % 3) as f64, 150.0)).collect();
        assert!(derive(&far, &[outlet(1, 0.0, 50.0)], &VisitRules::default()).is_empty());
    }

    #[test]
    fn a_gap_that_starts_and_ends_at_the_outlet_is_bridged_and_unverified() {
        let mut fixes = around(0, 300, 30, 0.0);
        fixes.extend(around(2400, 2700, 30, 0.0));
        let visits = derive(&fixes, &[outlet(1, 0.0, 50.0)], &VisitRules::default());
        assert_eq!(visits.len(), 1, "{visits:?}");
        let v = &visits[0];
        assert_eq!((v.arrival, v.departure, v.verdict), (t(0), t(2700), Verdict::Unverified));
        assert_eq!(v.evidence.bridged_gaps_s, vec![2100]);
        // Leaving in between (fixes 500 m away for 10 minutes) makes two visits instead.
        let mut away = around(0, 300, 30, 0.0);
        away.extend((0..20).map(|i| fix(400 + i * 30, 500.0, 8.0)));
        away.extend(around(1200, 1500, 30, 0.0));
        let visits = derive(&away, &[outlet(1, 0.0, 50.0)], &VisitRules::default());
        assert_eq!(
            visits.iter().map(|v| (v.arrival, v.departure)).collect::<Vec<_>>(),
            vec![(t(0), t(300)), (t(1200), t(1500))]
        );
    }

    #[test]
    fn a_long_gap_ending_in_a_stray_fix_is_not_bridged() {
        let mut fixes = around(0, 300, 30, 0.0);
        fixes.push(fix(5 * 3600, 200.0, 8.0));
        fixes.extend(around(5 * 3600 + 30, 5 * 3600 + 330, 30, 0.0));
        let visits = derive(&fixes, &[outlet(1, 0.0, 50.0)], &VisitRules::default());
        assert_eq!(
            visits.iter().map(|v| (v.arrival, v.dwell_s)).collect::<Vec<_>>(),
            vec![(t(0), 300), (t(5 * 3600 + 30), 300)]
        );
    }

    #[test]
    fn one_stray_fix_does_not_split_a_visit() {
        let mut fixes = around(0, 900, 30, 0.0);
        fixes.push(fix(455, 400.0, 8.0));
        let visits = derive(&fixes, &[outlet(1, 0.0, 50.0)], &VisitRules::default());
        assert_eq!(visits.iter().map(|v| (v.arrival, v.departure)).collect::<Vec<_>>(), vec![(t(0), t(900))]);
    }

    #[test]
    fn of_two_outlets_in_range_the_nearer_wins_and_the_other_is_an_alternative() {
        let fixes = around(0, 900, 30, 10.0);
        let visits = derive(&fixes, &[outlet(2, 40.0, 60.0), outlet(1, 0.0, 60.0)], &VisitRules::default());
        assert_eq!(visits.len(), 1, "{visits:?}");
        assert_eq!(visits[0].outlet_id, 1);
        assert_eq!(visits[0].alternatives.iter().map(|a| a.outlet_id).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn a_fix_inside_the_footprint_is_at_the_outlet() {
        use geo::{MultiPolygon, polygon};
        // A 200 m square building north of the point; fixes 150 m north, inside it.
        let (s, n) = (LAT + 50.0 * M, LAT + 250.0 * M);
        let square =
            polygon![(x: LON - 0.001, y: s), (x: LON + 0.001, y: s), (x: LON + 0.001, y: n), (x: LON - 0.001, y: n)];
        let mut o = outlet(1, 0.0, 30.0);
        o.footprint = Footprint::new(MultiPolygon(vec![square]));
        assert!(o.footprint.is_some());
        let visits = derive(&around(0, 900, 30, 150.0), &[o], &VisitRules::default());
        assert_eq!(visits.len(), 1, "{visits:?}");
        assert_eq!(visits[0].evidence.min_distance_m, 0.0);
    }

    #[test]
    fn spoofing_signals_make_a_visit_suspect() {
        let rules = VisitRules::default();
        let o = [outlet(1, 0.0, 50.0)];
        let mut mocked = around(0, 900, 30, 0.0);
        mocked[3].mock = true;
        let v = &derive(&mocked, &o, &rules)[0];
        assert_eq!((v.verdict, v.evidence.signals.mock_fixes), (Verdict::Suspect, 1));

        // Identical coordinates for 31 fixes, after a fix 100 km away a minute before.
        let mut frozen: Vec<VisitFix> = (0..=30).map(|i| fix(120 + i * 30, 0.0, 5.0)).collect();
        frozen.push(fix(60, 100_000.0, 5.0));
        let v = &derive(&frozen, &o, &rules)[0];
        let s = &v.evidence.signals;
        assert!(s.teleport && s.constant_position && s.constant_accuracy, "{s:?}");
        assert_eq!((v.verdict, v.risk_score), (Verdict::Suspect, 0.9));

        let mut ahead = around(0, 900, 30, 0.0);
        ahead[5].received_at = ahead[5].fix_time - Duration::minutes(10);
        let v = &derive(&ahead, &o, &rules)[0];
        assert_eq!(
            (v.evidence.signals.clock_ahead_fixes, v.verdict),
            (1, Verdict::Verified),
            "0.3 alone is not suspect"
        );
    }

    #[test]
    fn stays_follow_li_et_al_as_trackintel_does() {
        let mut fixes = around(0, 600, 30, 0.0);
        fixes.extend((0..30).map(|i| fix(630 + i * 10, 120.0 + i as f64 * 15.0, 5.0)));
        fixes.extend(around(1000, 1200, 30, 2000.0));
        let s = stays(&fixes, &VisitRules::default());
        assert_eq!(s.len(), 1, "{s:?}");
        // The stay lasts until the first fix 100 m or more from its anchor (630 s), and holds the
        // 21 fixes before it; the walk and the 200 s at the end are no stay.
        assert_eq!((s[0].arrival, s[0].departure, s[0].fix_count), (t(0), t(630), 21));
        // A run still open at the last fix counts when it lasts T.
        let open = around(0, 600, 30, 0.0);
        let s = stays(&open, &VisitRules::default());
        assert_eq!(s.iter().map(|s| (s.arrival, s.departure, s.fix_count)).collect::<Vec<_>>(), [(t(0), t(600), 21)]);
        // A too-short run restarts at the fix that left it: from 0 the fix at 200 s leaves; from
        // there the fixes stay within 100 m for 300 s.
        let mut restart = around(0, 180, 30, 0.0);
        restart.extend(around(200, 500, 30, 150.0));
        restart.push(fix(530, 1000.0, 5.0));
        let s = stays(&restart, &VisitRules::default());
        assert_eq!(s.iter().map(|s| (s.arrival, s.departure)).collect::<Vec<_>>(), [(t(200), t(530))]);
    }

    fn day() -> Vec<VisitFix> {
        let mut fixes = around(0, 900, 30, 0.0);
        fixes.extend((0..60).map(|i| fix(930 + i * 10, 60.0 + i as f64 * 10.0, 6.0)));
        fixes.extend(around(1600, 2000, 20, 700.0));
        fixes.extend(around(2100, 2200, 20, 1400.0));
        fixes
    }

    proptest! {
        /// Late, shuffled or repeated delivery gives exactly the visits of in-order delivery.
        #[test]
        fn any_arrival_order_gives_the_same_visits(seed in any::<u64>(), repeat in 0usize..20) {
            use rand::seq::SliceRandom;
            use rand::SeedableRng;
            let outlets = [outlet(1, 0.0, 50.0), outlet(2, 700.0, 50.0), outlet(3, 30.0, 40.0), outlet(4, 1400.0, 30.0)];
            let rules = VisitRules::default();
            let in_order = derive(&day(), &outlets, &rules);
            prop_assert_eq!(in_order.len(), 3);
            let mut shuffled = day();
            let extra: Vec<VisitFix> = shuffled.iter().take(repeat).cloned().collect();
            shuffled.extend(extra);
            shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
            let mut reversed_outlets = outlets.to_vec();
            reversed_outlets.reverse();
            prop_assert_eq!(derive(&shuffled, &reversed_outlets, &rules), in_order);
        }
    }

    fn derived(outlet_id: i64, from_s: i64, to_s: i64) -> Visit {
        Visit {
            outlet_id,
            arrival: t(from_s),
            departure: t(to_s),
            dwell_s: to_s - from_s,
            verdict: Verdict::Verified,
            risk_score: 0.0,
            evidence: Evidence {
                fix_count: 1,
                min_distance_m: 0.0,
                median_distance_m: 0.0,
                median_accuracy_m: None,
                max_gap_s: 0,
                bridged_gaps_s: Vec::new(),
                stay: true,
                signals: Signals::default(),
                photos: PhotoSignals::default(),
                lat: LAT,
                lon: LON,
            },
            alternatives: Vec::new(),
        }
    }

    fn stored(id: i64, outlet_id: i64, from_s: i64, to_s: i64) -> PriorVisit {
        PriorVisit { id, outlet_id, arrival: t(from_s), departure: t(to_s) }
    }

    #[test]
    fn a_re_derived_visit_keeps_its_id() {
        let before = [stored(7, 1, 0, 600), stored(8, 2, 1200, 1800), stored(9, 1, 3600, 4200)];
        // Late fixes moved the first arrival, the second visit is gone, a third outlet is new and
        // the last visit of outlet 1 is split in two (only one half can continue it).
        let after = [derived(1, -120, 600), derived(3, 1300, 1700), derived(1, 3600, 3900), derived(1, 4000, 4200)];
        assert_eq!(carry_ids(&before, &after), vec![Some(7), None, Some(9), None]);
        // Another outlet never continues a visit, however close in time.
        assert_eq!(carry_ids(&[stored(8, 2, 0, 600)], &[derived(1, 0, 600)]), vec![None]);
        // Half an hour apart without overlap is another visit.
        assert_eq!(carry_ids(&[stored(7, 1, 0, 600)], &[derived(1, 600 + 1801, 3000)]), vec![None]);
        assert_eq!(carry_ids(&[stored(7, 1, 0, 600)], &[derived(1, 600 + 1800, 3000)]), vec![Some(7)]);
        // Two stored visits merged into one: the one with the nearest arrival continues.
        assert_eq!(
            carry_ids(&[stored(7, 1, 0, 600), stored(8, 1, 900, 1500)], &[derived(1, 800, 1500)]),
            vec![Some(8)]
        );
        // The order of the derived visits does not matter.
        let mut reversed = after.to_vec();
        reversed.reverse();
        let mut ids = carry_ids(&before, &reversed);
        ids.reverse();
        assert_eq!(ids, vec![Some(7), None, Some(9), None]);
    }
}
