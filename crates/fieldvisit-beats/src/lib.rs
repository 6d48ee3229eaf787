//! Multi-week beat generation: which rep visits which outlet on which working day of a cycle of
//! 1-12 weeks, in which order and at what time, so that every outlet gets the visits its tier asks
//! for, within its time window and the rep's working hours, with as little travel as possible.
//!
//! # How the problem is modelled
//!
//! * **Team → reps.** Outlets with a fixed rep go to that rep. The others are assigned to reps by a
//!   capacitated clustering ([`assign`]): centres start at the reps' start points; each round
//!   assigns outlets (largest regret first) to the nearest centre that still has room for their
//!   workload (visits × (visit duration + an estimated leg)), room being the rep's share of the
//!   team's working time less the rep's daily way from its start to its outlets (a rep who lives
//!   far from them has less time to visit); centres then move to the mean of their outlets. This
//!   keeps all visits of an outlet with one rep across the cycle and balances the reps' load.
//!   Routing each rep's share separately keeps each solve small (a 5,000-outlet team is 20
//!   problems of ~250 outlets).
//! * **Visits → days (one rep).** Each required visit of an outlet in the cycle is one job of a
//!   vehicle-routing problem solved by [`vrp_core`]. The rep's working days form one continuous
//!   timeline (day `d` starts at `d × 86 400` s); each working day is one vehicle (a shift from the
//!   day's start to its end, starting from the rep's start point, open-ended). Visit `i` of `k` of
//!   an outlet may only fall on the `i`-th of `k` equal blocks of the cycle's working days (around
//!   `i × D / k`), expressed as one time window per allowed day (the outlet's own window within
//!   that day, else the working hours, its end brought forward by the visit's duration so the visit
//!   ends in time). The blocks are disjoint, so the visits of an outlet land on different days,
//!   spread over the cycle. The solver minimises unplaced visits first, then travelled distance,
//!   then the spread of the days' durations.
//! * **Repair.** The solver stops at its time cap, so a large problem may end with a visit left
//!   out that fits. Most of a rep's time goes to the whole cycle; the rest (`repair`) routes
//!   each block of days that has such a visit again, alone (a far smaller problem), and keeps the
//!   new days when they place more.
//! * **Travel** is a [`TravelMatrix`]: [`StraightLine`] is the great-circle distance × a detour
//!   factor at a mean speed; a road matrix can implement the trait later.
//!
//! [`baseline`] is what a manager gets without the solver: visits dealt round-robin over the days
//! by outlet id, each day ordered nearest-neighbour from the start as `/plan-proposal` does.

use chrono::{Datelike, Duration as Days, NaiveDate, Weekday};
use fieldvisit_domain::geo::haversine_m;
use fieldvisit_domain::plan::{DueCandidate, propose};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use vrp_core::construction::features::create_duration_balanced_feature;
use vrp_core::models::common::TimeWindow;
use vrp_core::models::problem::{JobIdDimension, VehicleIdDimension};
use vrp_core::prelude::*;
use vrp_core::rosomaxa::utils::{Parallelism, TimeQuota};

/// Seconds in a day: the length of one working day's slot on the solver's timeline.
const DAY_S: f64 = 86_400.0;
/// Largest cycle in weeks (as `POST /plans` allows).
pub const MAX_CYCLE_WEEKS: u8 = 12;

/// A place on the earth, WGS-84 degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

/// Travel between two points: where a road-distance matrix can plug in later.
pub trait TravelMatrix: Send + Sync {
    /// Metres travelled from `a` to `b`.
    fn distance_m(&self, a: Point, b: Point) -> f64;
    /// Seconds travelled from `a` to `b`.
    fn duration_s(&self, a: Point, b: Point) -> f64;
}

/// Great-circle distance × a detour factor, at a mean speed: the model when no road matrix is
/// available.
#[derive(Debug, Clone, Copy)]
pub struct StraightLine {
    /// Road metres per straight-line metre.
    pub detour: f64,
    /// Mean speed, metres per second.
    pub speed_mps: f64,
}

impl Default for StraightLine {
    /// A detour of 1.3 at 15 km/h (a walking and e-bike mix in a city).
    fn default() -> Self {
        Self { detour: 1.3, speed_mps: 15_000.0 / 3_600.0 }
    }
}

impl TravelMatrix for StraightLine {
    fn distance_m(&self, a: Point, b: Point) -> f64 {
        haversine_m(a.lat, a.lon, b.lat, b.lon) * self.detour
    }
    fn duration_s(&self, a: Point, b: Point) -> f64 {
        self.distance_m(a, b) / self.speed_mps
    }
}

/// A rep whose beat is generated: where the day starts, the working hours and working weekdays.
#[derive(Debug, Clone)]
pub struct Rep {
    pub id: i64,
    /// Home, else the centroid of the rep's territory.
    pub start: Point,
    /// Start of the working day, seconds after local midnight.
    pub day_start_s: u32,
    /// End of the working day, seconds after local midnight.
    pub day_end_s: u32,
    /// The weekdays the rep works.
    pub weekdays: Vec<Weekday>,
}

/// An outlet to be visited over the cycle.
#[derive(Debug, Clone)]
pub struct Outlet {
    pub id: i64,
    /// How the outlet is named in a stop's `why` (its code).
    pub label: String,
    pub point: Point,
    pub tier: String,
    /// Visits required in the cycle (from the tier policy).
    pub visits: u32,
    /// Time window of the visit, seconds after local midnight (start, end).
    pub window: Option<(u32, u32)>,
    /// Expected duration of one visit, seconds (the tier's minimum dwell and a margin).
    pub duration_s: u32,
    /// A rep the outlet must stay with.
    pub fixed_rep: Option<i64>,
}

/// What to plan.
#[derive(Debug, Clone)]
pub struct Request {
    pub reps: Vec<Rep>,
    pub outlets: Vec<Outlet>,
    /// Length of the cycle, 1-12 weeks; week 1 is the week (Monday to Sunday) holding `first_day`.
    pub cycle_weeks: u8,
    /// First day of the cycle (days of week 1 before it are not planned).
    pub first_day: NaiveDate,
    /// Most seconds the solver may run in all (at least one per rep).
    pub max_seconds: u32,
}

/// One planned visit of a rep's day, in route order.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub outlet_id: i64,
    pub day: NaiveDate,
    /// Week of the cycle, 1-based.
    pub week_of_cycle: u8,
    /// 1-based position in the day's route.
    pub seq: u32,
    /// Planned start of the visit, seconds after local midnight.
    pub arrival_s: u32,
    pub duration_s: u32,
    /// The visit's time window (the outlet's, else the working hours), seconds after midnight.
    pub window: (u32, u32),
    /// Metres from the previous stop (or the start).
    pub leg_m: f64,
    /// Why the stop landed on its day.
    pub why: String,
}

/// The beat proposed for one rep.
#[derive(Debug, Clone, PartialEq)]
pub struct RepBeat {
    pub rep_id: i64,
    /// Stops by day, then route order.
    pub stops: Vec<Stop>,
    /// Visits required of the outlets assigned to the rep.
    pub required_visits: u32,
    pub travel_m: f64,
    pub baseline_travel_m: f64,
}

/// Visits of an outlet that could not be placed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unplaced {
    pub outlet_id: i64,
    pub visits: u32,
    pub reason: String,
}

/// A proposed multi-week beat for one or more reps. Nothing of it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub reps: Vec<RepBeat>,
    pub unplaced: Vec<Unplaced>,
    pub required_visits: u32,
    pub placed_visits: u32,
    pub travel_m: f64,
    pub baseline_travel_m: f64,
    pub solve_ms: u64,
}

/// The working days of a rep in the cycle: the days of weeks 1..=`cycle_weeks` (Monday-based,
/// from the week holding `first_day`) on or after `first_day` whose weekday the rep works.
pub fn working_days(first_day: NaiveDate, cycle_weeks: u8, weekdays: &[Weekday]) -> Vec<NaiveDate> {
    let monday = first_day - Days::days(i64::from(first_day.weekday().num_days_from_monday()));
    (0..i64::from(cycle_weeks) * 7)
        .map(|k| monday + Days::days(k))
        .filter(|d| *d >= first_day && weekdays.contains(&d.weekday()))
        .collect()
}

/// Week of the cycle (1-based) of `day`, for a cycle whose week 1 holds `first_day`.
pub fn week_of_cycle(first_day: NaiveDate, day: NaiveDate) -> u8 {
    let monday = first_day - Days::days(i64::from(first_day.weekday().num_days_from_monday()));
    ((day - monday).num_days() / 7 + 1) as u8
}

/// The working days (indices `0..days`) visit `i` of `k` may fall on: the `i`-th of `k` equal
/// blocks, so that the visits of an outlet are spread over the cycle and never share a day.
pub fn allowed_days(i: u32, k: u32, days: usize) -> std::ops::Range<usize> {
    let (i, k) = (i as usize, k.max(1) as usize);
    (i * days / k)..((i + 1) * days / k)
}

/// The time window of a visit within its day: the outlet's window cut to the working hours, else
/// the working hours. `None` when they do not overlap by the visit's duration.
fn day_window(o: &Outlet, rep: &Rep) -> Option<(u32, u32)> {
    let (s, e) =
        o.window.map_or((rep.day_start_s, rep.day_end_s), |(s, e)| (s.max(rep.day_start_s), e.min(rep.day_end_s)));
    (e >= s + o.duration_s).then_some((s, e))
}

/// Assigns each outlet (by index) to a rep (by index): fixed outlets to their rep, the others by
/// capacitated clustering around the reps' start points (see the crate doc). Each rep's room is
/// its share of the team's working seconds in the cycle less its ways out, so that every rep's
/// visits, legs and ways out fill the same part of its days.
pub fn assign(req: &Request, travel: &dyn TravelMatrix) -> Vec<usize> {
    let n = req.reps.len();
    if n <= 1 {
        return vec![0; req.outlets.len()];
    }
    let rep_index: HashMap<i64, usize> = req.reps.iter().enumerate().map(|(k, r)| (r.id, k)).collect();
    let work_s: Vec<f64> = req
        .reps
        .iter()
        .map(|r| {
            let days = working_days(req.first_day, req.cycle_weeks, &r.weekdays).len();
            days as f64 * f64::from(r.day_end_s.saturating_sub(r.day_start_s))
        })
        .collect();
    let team_s: f64 = work_s.iter().sum::<f64>().max(1.0);
    // An outlet's load: its visits × (the visit + a leg of the mean nearest-neighbour spacing,
    // estimated from the area's density).
    let leg_s = estimated_leg_s(&req.outlets, travel);
    let load: Vec<f64> = req.outlets.iter().map(|o| f64::from(o.visits) * (f64::from(o.duration_s) + leg_s)).collect();
    let total: f64 = load.iter().sum();
    let days: Vec<f64> =
        req.reps.iter().map(|r| working_days(req.first_day, req.cycle_weeks, &r.weekdays).len() as f64).collect();
    let mut centres: Vec<Point> = req.reps.iter().map(|r| r.start).collect();
    // The mean of each rep's outlets (where its days go), as of the last round.
    let mut means = centres.clone();
    let mut owner = vec![0usize; req.outlets.len()];
    for round in 0..8 {
        // Each working day begins with the way from the rep's start to the rep's outlets (their
        // centre): a rep who lives far from them has less time for visits. Rooms share the team's
        // working time so that every rep's visits, legs and ways out fill the same part of the day.
        let way_out: Vec<f64> = (0..n).map(|r| days[r] * travel.duration_s(req.reps[r].start, means[r])).collect();
        let fill = (total + way_out.iter().sum::<f64>()) / team_s;
        let room: Vec<f64> = (0..n).map(|r| (fill * work_s[r] - way_out[r]).max(0.0) * 1.005).collect();
        let mut used = vec![0.0f64; n];
        let mut free: Vec<usize> = Vec::new();
        for (k, o) in req.outlets.iter().enumerate() {
            match o.fixed_rep.and_then(|id| rep_index.get(&id)) {
                Some(&r) => {
                    owner[k] = r;
                    used[r] += load[k];
                }
                None => free.push(k),
            }
        }
        // Distance from each free outlet to each centre; the largest regret (second nearest −
        // nearest) is placed first, as it loses most if its nearest rep fills up.
        let dist: Vec<Vec<f64>> = free
            .iter()
            .map(|&k| {
                centres
                    .iter()
                    .map(|c| haversine_m(c.lat, c.lon, req.outlets[k].point.lat, req.outlets[k].point.lon))
                    .collect()
            })
            .collect();
        let mut order: Vec<usize> = (0..free.len()).collect();
        let regret = |d: &[f64]| {
            let mut s = d.to_vec();
            s.sort_by(f64::total_cmp);
            s.get(1).copied().unwrap_or(0.0) - s[0]
        };
        let regrets: Vec<f64> = dist.iter().map(|d| regret(d)).collect();
        order.sort_by(|&a, &b| regrets[b].total_cmp(&regrets[a]).then(free[a].cmp(&free[b])));
        for j in order {
            let k = free[j];
            let mut by_dist: Vec<usize> = (0..n).collect();
            by_dist.sort_by(|&a, &b| dist[j][a].total_cmp(&dist[j][b]));
            let r = by_dist.iter().copied().find(|&r| used[r] + load[k] <= room[r]).unwrap_or_else(|| {
                // Every rep is full: the least loaded relative to its room takes it.
                (0..n)
                    .min_by(|&a, &b| (used[a] / room[a].max(1.0)).total_cmp(&(used[b] / room[b].max(1.0))))
                    .unwrap_or(0)
            });
            owner[k] = r;
            used[r] += load[k];
        }
        if round == 7 {
            break;
        }
        // Centres move to the mean of their outlets, pulled a quarter back towards the rep's start
        // (the day starts there).
        for (r, c) in centres.iter_mut().enumerate() {
            let mine: Vec<Point> =
                owner.iter().enumerate().filter(|(_, o)| **o == r).map(|(k, _)| req.outlets[k].point).collect();
            if mine.is_empty() {
                continue;
            }
            let m = mine.len() as f64;
            let (lat, lon) = mine.iter().fold((0.0, 0.0), |(a, b), p| (a + p.lat, b + p.lon));
            let start = req.reps[r].start;
            means[r] = Point { lat: lat / m, lon: lon / m };
            *c = Point { lat: 0.75 * lat / m + 0.25 * start.lat, lon: 0.75 * lon / m + 0.25 * start.lon };
        }
    }
    owner
}

/// A typical leg between neighbouring outlets, seconds: the mean spacing of points spread evenly
/// over the outlets' bounding box.
fn estimated_leg_s(outlets: &[Outlet], travel: &dyn TravelMatrix) -> f64 {
    if outlets.len() < 2 {
        return 0.0;
    }
    let (mut lo, mut hi) = (outlets[0].point, outlets[0].point);
    for o in outlets {
        lo = Point { lat: lo.lat.min(o.point.lat), lon: lo.lon.min(o.point.lon) };
        hi = Point { lat: hi.lat.max(o.point.lat), lon: hi.lon.max(o.point.lon) };
    }
    let diag = travel.duration_s(lo, hi);
    diag / (outlets.len() as f64).sqrt()
}

/// The travel of a rep's stops in order, day by day from the start: metres per stop (the leg in).
fn legs(rep: &Rep, stops: &[(NaiveDate, Point)], travel: &dyn TravelMatrix) -> Vec<f64> {
    let mut out = Vec::with_capacity(stops.len());
    let mut prev: Option<(NaiveDate, Point)> = None;
    for &(day, p) in stops {
        let from = match prev {
            Some((d, q)) if d == day => q,
            _ => rep.start,
        };
        out.push(travel.distance_m(from, p));
        prev = Some((day, p));
    }
    out
}

/// Travel of the baseline for one rep: the required visits (outlet `k` needs `visits[k]`) dealt
/// round-robin over the working days by outlet id, each day ordered nearest-neighbour from the
/// start by `fieldvisit_domain::plan::propose` (today's `/plan-proposal`). Time windows and
/// hours are ignored. Metres, start to last stop of each day.
pub fn baseline(rep: &Rep, outlets: &[&Outlet], days: &[NaiveDate], travel: &dyn TravelMatrix) -> f64 {
    if days.is_empty() {
        return 0.0;
    }
    let mut sorted: Vec<&Outlet> = outlets.to_vec();
    sorted.sort_by_key(|o| o.id);
    let mut per_day: Vec<Vec<&Outlet>> = vec![Vec::new(); days.len()];
    let mut next = 0usize;
    for o in sorted {
        for _ in 0..o.visits.min(days.len() as u32) {
            per_day[next % days.len()].push(o);
            next += 1;
        }
    }
    let mut total = 0.0;
    for (d, day_outlets) in per_day.iter().enumerate() {
        let candidates: Vec<DueCandidate> = day_outlets
            .iter()
            .map(|o| DueCandidate {
                outlet_id: o.id,
                lat: o.point.lat,
                lon: o.point.lon,
                interval_days: 1.0,
                last_valid: None,
                problem: false,
            })
            .collect();
        let route = propose(&candidates, days[d], Some((rep.start.lat, rep.start.lon)), candidates.len());
        let pts: Vec<(NaiveDate, Point)> = route.iter().map(|s| (days[d], Point { lat: s.lat, lon: s.lon })).collect();
        total += legs(rep, &pts, travel).iter().sum::<f64>();
    }
    total
}

/// What the solver made of a rep's visits: the placed stops (each with its visit's index), by day
/// and order, and the indices of the visits it left unassigned.
type Routed = (Vec<(Stop, usize)>, Vec<usize>);

/// One visit job of a rep's problem.
struct Visit {
    outlet: usize,
    /// 0-based visit number of the outlet in the cycle.
    nth: u32,
    of: u32,
    days: std::ops::Range<usize>,
}

/// Proposes the beat of a team (or of one rep): see the crate doc for the model.
pub fn generate(req: &Request, travel: &dyn TravelMatrix) -> Proposal {
    let started = Instant::now();
    let owner = assign(req, travel);
    let total_jobs: u32 = req.outlets.iter().map(|o| o.visits).sum();
    let mut reps = Vec::with_capacity(req.reps.len());
    let mut unplaced = Vec::new();
    let mut jobs_left = total_jobs;
    for (r, rep) in req.reps.iter().enumerate() {
        let mine: Vec<&Outlet> =
            req.outlets.iter().enumerate().filter(|(k, _)| owner[*k] == r).map(|(_, o)| o).collect();
        let jobs: u32 = mine.iter().map(|o| o.visits).sum();
        // The rep's share of the time left, by its share of the visits left; at least half a second.
        let left = f64::from(req.max_seconds) - started.elapsed().as_secs_f64();
        let secs = (left * f64::from(jobs) / f64::from(jobs_left.max(1))).max(0.5);
        jobs_left = jobs_left.saturating_sub(jobs);
        let (beat, lost) = solve_rep(req, rep, &mine, travel, secs);
        reps.push(beat);
        unplaced.extend(lost);
    }
    if req.reps.is_empty() {
        unplaced.extend(req.outlets.iter().map(|o| Unplaced {
            outlet_id: o.id,
            visits: o.visits,
            reason: "no rep to visit it".to_owned(),
        }));
    }
    unplaced.sort_by_key(|u| u.outlet_id);
    let required_visits = total_jobs;
    let placed_visits = reps.iter().map(|b| b.stops.len() as u32).sum();
    Proposal {
        travel_m: reps.iter().map(|b| b.travel_m).sum(),
        baseline_travel_m: reps.iter().map(|b| b.baseline_travel_m).sum(),
        reps,
        unplaced,
        required_visits,
        placed_visits,
        solve_ms: started.elapsed().as_millis() as u64,
    }
}

/// Solves one rep's outlets over the rep's working days with vrp-core.
fn solve_rep(
    req: &Request,
    rep: &Rep,
    outlets: &[&Outlet],
    travel: &dyn TravelMatrix,
    max_seconds: f64,
) -> (RepBeat, Vec<Unplaced>) {
    let days = working_days(req.first_day, req.cycle_weeks, &rep.weekdays);
    let required: u32 = outlets.iter().map(|o| o.visits).sum();
    let baseline_travel_m = baseline(rep, outlets, &days, travel);
    let mut lost: HashMap<i64, (u32, String)> = HashMap::new();
    let mut lose = |id: i64, n: u32, why: String| {
        let e = lost.entry(id).or_insert((0, why));
        e.0 += n;
    };
    let mut visits = Vec::new();
    for (k, o) in outlets.iter().enumerate() {
        if o.visits == 0 {
            continue;
        }
        if days.is_empty() {
            lose(o.id, o.visits, "the rep has no working day in the cycle".to_owned());
            continue;
        }
        if day_window(o, rep).is_none() {
            lose(o.id, o.visits, "its time window leaves no room for the visit within the working hours".to_owned());
            continue;
        }
        let k_eff = o.visits.min(days.len() as u32);
        if k_eff < o.visits {
            lose(o.id, o.visits - k_eff, format!("more visits than the {} working days of the cycle", days.len()));
        }
        for i in 0..k_eff {
            visits.push(Visit { outlet: k, nth: i, of: k_eff, days: allowed_days(i, k_eff, days.len()) });
        }
    }
    let mut stops = Vec::new();
    if !visits.is_empty() {
        let routed = route(rep, outlets, &visits, &days, travel, max_seconds * (1.0 - REPAIR_SHARE))
            .map(|r| repair(rep, outlets, &visits, &days, travel, r, max_seconds * REPAIR_SHARE));
        match routed {
            Ok((placed, unassigned)) => {
                stops = placed;
                for v in unassigned {
                    let o = outlets[visits[v].outlet];
                    lose(
                        o.id,
                        1,
                        "no day in its part of the cycle had room within the time window and working hours".to_owned(),
                    );
                }
            }
            Err(e) => {
                for v in &visits {
                    lose(outlets[v.outlet].id, 1, format!("the solver failed: {e}"));
                }
            }
        }
    }
    describe(req, rep, outlets, &visits, &mut stops, travel);
    let travel_m = stops.iter().map(|(s, _)| s.leg_m).sum();
    let mut unplaced: Vec<Unplaced> =
        lost.into_iter().map(|(outlet_id, (visits, reason))| Unplaced { outlet_id, visits, reason }).collect();
    unplaced.sort_by_key(|u| u.outlet_id);
    (
        RepBeat {
            rep_id: rep.id,
            stops: stops.into_iter().map(|(s, _)| s).collect(),
            required_visits: required,
            travel_m,
            baseline_travel_m,
        },
        unplaced,
    )
}

/// Share of a rep's solver time kept for [`repair`].
const REPAIR_SHARE: f64 = 0.15;
/// Least solver time of one block's repair, seconds.
const MIN_REPAIR_S: f64 = 0.25;

/// A second chance for the visits the solver left unassigned, on smaller problems: for each part
/// of the cycle (block of days, shorter than the cycle) such a visit must fall in, the visits placed
/// on those days and the block's unassigned ones are routed again over those days alone, each
/// within its own days there, with vrp-core; the block's new days replace the old ones only when
/// they place more visits. A small problem is searched far more thoroughly in the same time, and
/// the rest of the beat is kept.
fn repair(
    rep: &Rep,
    outlets: &[&Outlet],
    visits: &[Visit],
    days: &[NaiveDate],
    travel: &dyn TravelMatrix,
    (mut placed, mut unassigned): Routed,
    max_seconds: f64,
) -> Routed {
    let mut blocks: Vec<std::ops::Range<usize>> =
        unassigned.iter().map(|&v| visits[v].days.clone()).filter(|b| b.len() < days.len()).collect();
    blocks.sort_by_key(|b| (b.start, b.end));
    blocks.dedup();
    // At least a quarter of a second a block, within the time given: the first blocks only.
    blocks.truncate((max_seconds / MIN_REPAIR_S).floor() as usize);
    if blocks.is_empty() {
        return (placed, unassigned);
    }
    let day_index: HashMap<NaiveDate, usize> = days.iter().enumerate().map(|(d, day)| (*day, d)).collect();
    let secs = max_seconds / blocks.len() as f64;
    for block in blocks {
        let lost: Vec<usize> = unassigned.iter().copied().filter(|&v| visits[v].days == block).collect();
        let on_days = |s: &Stop| day_index.get(&s.day).is_some_and(|d| block.contains(d));
        let here: Vec<usize> = placed.iter().filter(|(s, _)| on_days(s)).map(|(_, j)| *j).collect();
        // The block's visits, each within its own days of the block, the days counted from it.
        let ids: Vec<usize> = here.iter().chain(&lost).copied().collect();
        let sub: Vec<Visit> = ids
            .iter()
            .map(|&j| {
                let v = &visits[j];
                let days = v.days.start.max(block.start) - block.start..v.days.end.min(block.end) - block.start;
                Visit { outlet: v.outlet, nth: v.nth, of: v.of, days }
            })
            .collect();
        let Ok((again, _)) = route(rep, outlets, &sub, &days[block.clone()], travel, secs) else { continue };
        if again.len() <= here.len() {
            continue;
        }
        placed.retain(|(s, _)| !on_days(s));
        placed.extend(again.into_iter().map(|(s, k)| (s, ids[k])));
        let now: std::collections::HashSet<usize> = placed.iter().map(|(_, j)| *j).collect();
        unassigned = (0..visits.len()).filter(|j| !now.contains(j)).collect();
    }
    placed.sort_by(|a, b| a.0.day.cmp(&b.0.day).then(a.0.seq.cmp(&b.0.seq)));
    (placed, unassigned)
}

/// Runs vrp-core on one rep's visits: the placed stops (with their visit index) by day and order,
/// and the indices of the visits left unassigned. A day's route ends at its last stop (the travel
/// counted is the legs in, as [`legs`] counts them), and the working hours bind through each
/// visit's window alone (each ends by the day's end).
fn route(
    rep: &Rep,
    outlets: &[&Outlet],
    visits: &[Visit],
    days: &[NaiveDate],
    travel: &dyn TravelMatrix,
    max_seconds: f64,
) -> GenericResult<Routed> {
    // Locations: 0 is the rep's start, 1 + k is outlet k, and the last is where a day ends: a
    // place no travel leads to or from costs anything, so the route ends at its last stop while
    // the shift's end time still holds the day (a vehicle with no end place would run on into
    // the next days' windows; one with an end time and no place returns to the start).
    let points: Vec<Point> = std::iter::once(rep.start).chain(outlets.iter().map(|o| o.point)).collect();
    let n = points.len();
    let end = n;
    let mut durations = Vec::with_capacity((n + 1) * (n + 1));
    let mut distances = Vec::with_capacity((n + 1) * (n + 1));
    for a in &points {
        for b in &points {
            durations.push(travel.duration_s(*a, *b).round());
            distances.push(travel.distance_m(*a, *b).round());
        }
        durations.push(0.0);
        distances.push(0.0);
    }
    durations.extend(std::iter::repeat_n(0.0, n + 1));
    distances.extend(std::iter::repeat_n(0.0, n + 1));
    let transport: Arc<dyn TransportCost> = Arc::new(SimpleTransportCost::new(durations, distances)?);
    let jobs = visits
        .iter()
        .enumerate()
        .map(|(j, v)| {
            let o = outlets[v.outlet];
            let (s, e) = day_window(o, rep).unwrap_or((rep.day_start_s, rep.day_end_s));
            let latest = e - o.duration_s;
            let times = v
                .days
                .clone()
                .map(|d| {
                    let base = d as f64 * DAY_S;
                    TimeWindow::new(base + f64::from(s), base + f64::from(latest))
                })
                .collect();
            SingleBuilder::default()
                .id(&j.to_string())
                .location(1 + v.outlet)?
                .duration(f64::from(o.duration_s))?
                .times(times)?
                .build_as_job()
        })
        .collect::<GenericResult<Vec<_>>>()?;
    let vehicles = days
        .iter()
        .enumerate()
        .map(|(d, _)| {
            let base = d as f64 * DAY_S;
            let detail =
                VehicleDetailBuilder::default().set_start_location(0).set_start_time(base + f64::from(rep.day_start_s));
            let detail = detail.set_end_location(end).set_end_time(base + f64::from(rep.day_end_s));
            VehicleBuilder::default().id(&d.to_string()).add_detail(detail.build()?).build()
        })
        .collect::<GenericResult<Vec<_>>>()?;
    let goal = GoalContextBuilder::with_features(&[
        MinimizeUnassignedBuilder::new("min-unassigned").build()?,
        TransportFeatureBuilder::new("min-distance")
            .set_transport_cost(transport.clone())
            .set_time_constrained(true)
            .build_minimize_distance()?,
        create_duration_balanced_feature("balanced-days")?,
    ])?
    .build()?;
    let problem = Arc::new(
        ProblemBuilder::default()
            .add_jobs(jobs.into_iter())
            .add_vehicles(vehicles.into_iter())
            .with_goal(goal)
            .with_transport_cost(transport)
            .build()?,
    );
    let environment = Arc::new(Environment::new(
        Arc::new(DefaultRandom::new_repeatable()),
        Some(Arc::new(TimeQuota::new(max_seconds as Float))),
        Parallelism::default(),
        Arc::new(|_: &str| {}),
        false,
    ));
    let config = VrpConfigBuilder::new(problem.clone())
        .set_environment(environment)
        .prebuild()?
        .with_max_time(Some(max_seconds.ceil() as usize))
        .with_max_generations(Some(3000))
        .build()?;
    let solution = Solver::new(problem, config).solve()?;
    let mut placed = Vec::new();
    for r in &solution.routes {
        let Some(d) = r.actor.vehicle.dimens.get_vehicle_id().and_then(|id| id.parse::<usize>().ok()) else {
            continue;
        };
        let mut seq = 0;
        for a in r.tour.all_activities() {
            let Some(j) = a.job.as_ref().and_then(|s| s.dimens.get_job_id()).and_then(|id| id.parse::<usize>().ok())
            else {
                continue;
            };
            seq += 1;
            let o = outlets[visits[j].outlet];
            let start = a.schedule.departure - f64::from(o.duration_s) - d as f64 * DAY_S;
            let window = day_window(o, rep).unwrap_or((rep.day_start_s, rep.day_end_s));
            placed.push((
                Stop {
                    outlet_id: o.id,
                    day: days[d],
                    week_of_cycle: 0,
                    seq,
                    arrival_s: start.round().max(0.0) as u32,
                    duration_s: o.duration_s,
                    window,
                    leg_m: 0.0,
                    why: String::new(),
                },
                j,
            ));
        }
    }
    placed.sort_by(|a, b| a.0.day.cmp(&b.0.day).then(a.0.seq.cmp(&b.0.seq)));
    let unassigned = solution
        .unassigned
        .iter()
        .filter_map(|(job, _)| job.dimens().get_job_id().and_then(|id| id.parse::<usize>().ok()))
        .collect();
    Ok((placed, unassigned))
}

/// One stop of a day ordered by [`order_day`].
#[derive(Debug, Clone, PartialEq)]
pub struct DayStop {
    pub outlet_id: i64,
    /// 1-based position in the day's route.
    pub seq: u32,
    /// Planned start of the visit, seconds after local midnight.
    pub arrival_s: u32,
    /// Metres from the previous stop (or the start).
    pub leg_m: f64,
}

/// A day's stops in the solver's order, those that do not fit the day, and the travel of both
/// the new order and the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct DayOrder {
    pub stops: Vec<DayStop>,
    /// Outlets (in the order given) whose visit fits nowhere in the day, with the reason.
    pub unplaced: Vec<(i64, String)>,
    pub travel_m: f64,
    pub given_travel_m: f64,
}

/// Orders one day's stops (each `Outlet` one visit; `visits` is ignored) for `rep` with the same
/// solver and model as [`generate`]: from the rep's start, within each stop's window and the
/// working hours, least travel first, the route ending at its last stop (the travel counted). The
/// given order's travel is returned beside it, so a manager sees what the solver saved; the
/// solver being a heuristic, a given order that fits the day and travels less is kept as it is.
pub fn order_day(rep: &Rep, stops: &[Outlet], travel: &dyn TravelMatrix, max_seconds: usize) -> DayOrder {
    let day = NaiveDate::from_ymd_opt(2000, 1, 3).unwrap_or_default();
    let given: Vec<(NaiveDate, Point)> = stops.iter().map(|o| (day, o.point)).collect();
    let given_legs = legs(rep, &given, travel);
    let given_travel_m: f64 = given_legs.iter().sum();
    let outlets: Vec<&Outlet> = stops.iter().collect();
    let mut unplaced = Vec::new();
    let mut visits = Vec::new();
    for (k, o) in stops.iter().enumerate() {
        if day_window(o, rep).is_some() {
            visits.push(Visit { outlet: k, nth: 0, of: 1, days: 0..1 });
        } else {
            unplaced.push((o.id, "its time window leaves no room for the visit within the working hours".to_owned()));
        }
    }
    let mut placed = Vec::new();
    if !visits.is_empty() {
        match route(rep, &outlets, &visits, &[day], travel, max_seconds.max(1) as f64) {
            Ok((stops_placed, unassigned)) => {
                placed = stops_placed;
                unplaced.extend(unassigned.into_iter().map(|v| {
                    (
                        stops[visits[v].outlet].id,
                        "it does not fit the day's working hours with the other stops".to_owned(),
                    )
                }));
            }
            Err(e) => {
                unplaced.extend(visits.iter().map(|v| (stops[v.outlet].id, format!("the solver failed: {e}"))));
            }
        }
    }
    let pts: Vec<(NaiveDate, Point)> = placed.iter().map(|(_, j)| (day, stops[visits[*j].outlet].point)).collect();
    let legs = legs(rep, &pts, travel);
    let order_of = |id: i64| stops.iter().position(|o| o.id == id).unwrap_or(usize::MAX);
    unplaced.sort_by_key(|(id, _)| order_of(*id));
    if unplaced.is_empty()
        && given_travel_m < legs.iter().sum::<f64>()
        && let Some(arrivals) = arrivals_in_order(rep, stops, travel)
    {
        return DayOrder {
            stops: stops
                .iter()
                .zip(arrivals)
                .zip(given_legs)
                .enumerate()
                .map(|(k, ((o, arrival_s), leg_m))| DayStop { outlet_id: o.id, seq: k as u32 + 1, arrival_s, leg_m })
                .collect(),
            unplaced,
            travel_m: given_travel_m,
            given_travel_m,
        };
    }
    DayOrder {
        travel_m: legs.iter().sum(),
        stops: placed
            .iter()
            .zip(legs)
            .map(|((s, _), leg_m)| DayStop { outlet_id: s.outlet_id, seq: s.seq, arrival_s: s.arrival_s, leg_m })
            .collect(),
        unplaced,
        given_travel_m,
    }
}

/// When each stop's visit starts (seconds after local midnight) going round `stops` in their order
/// from the rep's start at the day's start, waiting where a window has not opened; None when a
/// visit cannot start in its window (within the working hours) that way.
fn arrivals_in_order(rep: &Rep, stops: &[Outlet], travel: &dyn TravelMatrix) -> Option<Vec<u32>> {
    let mut t = f64::from(rep.day_start_s);
    let mut at = rep.start;
    let mut out = Vec::with_capacity(stops.len());
    for o in stops {
        let (s, e) = day_window(o, rep)?;
        t = (t + travel.duration_s(at, o.point).round()).max(f64::from(s));
        if t > f64::from(e - o.duration_s) {
            return None;
        }
        out.push(t as u32);
        t += f64::from(o.duration_s);
        at = o.point;
    }
    Some(out)
}

/// Fills each stop's week, leg and `why`.
fn describe(
    req: &Request,
    rep: &Rep,
    outlets: &[&Outlet],
    visits: &[Visit],
    stops: &mut [(Stop, usize)],
    travel: &dyn TravelMatrix,
) {
    let pts: Vec<(NaiveDate, Point)> = stops.iter().map(|(s, j)| (s.day, outlets[visits[*j].outlet].point)).collect();
    let legs = legs(rep, &pts, travel);
    let days = working_days(req.first_day, req.cycle_weeks, &rep.weekdays);
    let mut by_day: HashMap<NaiveDate, Vec<usize>> = HashMap::new();
    for (k, (s, _)) in stops.iter().enumerate() {
        by_day.entry(s.day).or_default().push(k);
    }
    let whys: Vec<String> = stops
        .iter()
        .enumerate()
        .map(|(k, (s, j))| {
            let v = &visits[*j];
            let o = outlets[v.outlet];
            let first = days.get(v.days.start).copied().unwrap_or(s.day);
            let last = days.get(v.days.end.saturating_sub(1)).copied().unwrap_or(s.day);
            let spacing = days.len() as f64 / f64::from(v.of.max(1));
            let mut near: Vec<(f64, &str)> = by_day
                .get(&s.day)
                .into_iter()
                .flatten()
                .filter(|&&m| m != k)
                .map(|&m| {
                    let q = outlets[visits[stops[m].1].outlet];
                    (travel.distance_m(o.point, q.point), q.label.as_str())
                })
                .collect();
            near.sort_by(|a, b| a.0.total_cmp(&b.0));
            let near: Vec<&str> = near.iter().take(2).map(|(_, l)| *l).collect();
            let mut why = format!(
                "tier {}: {} visits per {} weeks -> visit {} of {}, allowed {}..{} (days spread ~{:.0} working days apart)",
                o.tier,
                o.visits,
                req.cycle_weeks,
                v.nth + 1,
                v.of,
                first,
                last,
                spacing
            );
            if !near.is_empty() {
                why = format!("{why}; near {} on the same day", near.join(", "));
            }
            if let Some((ws, we)) = o.window {
                why = format!("{why}; window {}-{}", hhmm(ws), hhmm(we));
            }
            why
        })
        .collect();
    for (k, ((s, _), why)) in stops.iter_mut().zip(whys).enumerate() {
        s.week_of_cycle = week_of_cycle(req.first_day, s.day);
        s.leg_m = legs[k];
        s.why = why;
    }
}

/// `HH:MM` of seconds after midnight.
pub fn hhmm(s: u32) -> String {
    format!("{:02}:{:02}", s / 3600, s % 3600 / 60)
}

#[cfg(test)]
mod tests;
