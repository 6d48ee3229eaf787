//! One rep's simulated working day: the route (the plan's due stops, less what the day's script
//! skips, plus an unplanned stop), lunch, riding and walking along jittered paths with drive-bys,
//! dwell times from a log-normal spread, the phone's fixes with realistic noise, accuracy, speed
//! and battery, its uploads (late after a gap without signal, now and then out of order), and the
//! app's check-ins, photos, answers and reviews; with the truth of it all.

use super::events::{Event, Script};
use super::team::{Team, clear_spot, delta_m, dist_m, lerp, offset, week_of_cycle};
use super::{Batch, ReviewDecision, SimAnswers, SimCheckin, SimDay, SimFix, SimPhoto, SimReview, Truth, World};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

/// Shortest stay that must count as a visit: the tiers' minimum dwell (300 s) and a margin for the
/// fixes' spacing at arrival and departure.
pub const MIN_COUNTED_DWELL_S: i64 = 390;
/// Fixes while moving, seconds apart.
const MOVING_EVERY_S: i64 = 30;
/// Fixes while staying, seconds apart.
const STAYING_EVERY_S: i64 = 60;
/// Org-local time the rep aims to be home by, seconds after midnight (17:50).
const HOME_BY_S: i64 = 17 * 3600 + 50 * 60;

/// What the simulation of one rep-day starts from.
pub struct DayInput<'a> {
    /// The org's outlets and rules.
    pub world: &'a World,
    /// The team, with the rep's plan and home.
    pub team: &'a Team,
    /// The rep (index into the team).
    pub rep: usize,
    /// The org-local date.
    pub date: NaiveDate,
    /// What goes differently this day.
    pub script: &'a Script,
    /// Seed of this day's own random stream.
    pub seed: u64,
}

/// How a stop goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Long enough to count.
    Counted,
    /// 1-3 minutes.
    Short,
}

#[derive(Debug, Clone, Copy)]
struct Stop {
    outlet: usize,
    planned: bool,
    kind: Kind,
    /// Where the rep stands: inside the outlet, a few metres from its point.
    at: (f64, f64),
}

/// The places of the day in order.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    Home,
    Stop(usize),
    Lunch((f64, f64)),
    /// A break away from the outlets, by index into the day's break durations.
    Break((f64, f64), usize),
}

/// A stop as it happened.
#[derive(Debug, Clone, Copy)]
struct Done {
    stop: Stop,
    arrive: DateTime<Utc>,
    depart: DateTime<Utc>,
}

/// Converts an org-local time of `date` (seconds after midnight) to UTC.
fn local(date: NaiveDate, secs: i64, utc_offset_s: i32) -> DateTime<Utc> {
    let midnight = Utc.from_utc_datetime(&date.and_time(chrono::NaiveTime::MIN));
    midnight + TimeDelta::seconds(secs - i64::from(utc_offset_s))
}

fn gauss(rng: &mut StdRng, sd: f64) -> f64 {
    let z: f64 = rng.sample(StandardNormal);
    z * sd
}

/// A log-normal draw with the given median and shape, clamped.
fn log_normal(rng: &mut StdRng, median: f64, sigma: f64, lo: f64, hi: f64) -> f64 {
    (median * gauss(rng, sigma).exp()).clamp(lo, hi)
}

fn round7(x: f64) -> f64 {
    (x * 1e7).round() / 1e7
}

/// The phone's recording: fixes with noise, battery and the spoofer's mock provider.
struct Phone {
    fixes: Vec<SimFix>,
    next: DateTime<Utc>,
    start: DateTime<Utc>,
    battery0: f64,
    drain_per_h: f64,
    mock: bool,
}

impl Phone {
    fn fix(&mut self, rng: &mut StdRng, t: DateTime<Utc>, p: (f64, f64), speed: Option<f64>, indoor: bool) {
        let hours = (t - self.start).num_seconds() as f64 / 3600.0;
        let battery = (self.battery0 - self.drain_per_h * hours).clamp(3.0, 100.0).round();
        let (lat, lon, accuracy, speed) = if self.mock {
            // A mock-location app: exact coordinates, constant accuracy, no altitude.
            (p.0, p.1, 5.0, speed.map(f64::round))
        } else {
            let accuracy = if indoor && rng.random_bool(0.15) {
                rng.random_range(30.0..=80.0)
            } else if rng.random_bool(0.03) {
                rng.random_range(30.0..=60.0)
            } else {
                log_normal(rng, if indoor { 10.0 } else { 7.0 }, 0.45, 4.0, 25.0)
            };
            // Accuracy is the radius of 68% confidence: sigma per axis = accuracy / 1.515.
            let sd = accuracy / 1.515;
            let q = offset(p, gauss(rng, sd), gauss(rng, sd));
            let speed = speed.map(|s| (s * (1.0 + gauss(rng, 0.1))).max(0.0));
            (q.0, q.1, accuracy.round(), speed)
        };
        self.fixes.push(SimFix {
            t,
            lat: round7(lat),
            lon: round7(lon),
            accuracy_m: Some(accuracy as f32),
            speed_mps: speed.map(|s| ((s * 10.0).round() / 10.0) as f32),
            altitude_m: (!self.mock).then(|| (48.0 + gauss(rng, 3.0)).round() as f32),
            battery_pct: Some(battery as f32),
            mock: self.mock,
        });
    }

    /// Stays at `p` until `until`, a fix a minute.
    fn stay(&mut self, rng: &mut StdRng, p: (f64, f64), until: DateTime<Utc>, indoor: bool) {
        while self.next < until {
            let t = self.next;
            let drift = if self.mock { p } else { offset(p, gauss(rng, 2.0), gauss(rng, 2.0)) };
            let speed = rng.random_range(0.0..0.4);
            self.fix(rng, t, drift, Some(speed), indoor);
            self.next = t + TimeDelta::seconds(STAYING_EVERY_S);
        }
        self.next = self.next.max(until);
    }

    /// Moves along `path` at `speed` from `from`, a fix every 30 s; returns the arrival time.
    fn travel(&mut self, rng: &mut StdRng, path: &[(f64, f64)], speed: f64, from: DateTime<Utc>) -> DateTime<Utc> {
        let legs: Vec<f64> = path.windows(2).map(|w| dist_m(w[0], w[1])).collect();
        let total: f64 = legs.iter().sum();
        let end = from + TimeDelta::seconds((total / speed).ceil() as i64);
        if self.next < from {
            self.next = from;
        }
        while self.next < end {
            let t = self.next;
            let mut along = (t - from).num_seconds() as f64 * speed;
            let mut p = path.last().copied().unwrap_or((0.0, 0.0));
            for (k, &len) in legs.iter().enumerate() {
                if along <= len && len > 0.0 {
                    p = lerp(path[k], path[k + 1], along / len);
                    break;
                }
                along -= len;
            }
            self.fix(rng, t, p, Some(speed), false);
            self.next = t + TimeDelta::seconds(MOVING_EVERY_S);
        }
        end
    }
}

/// A path from `a` to `b` through a few waypoints off the straight line (streets are not straight).
fn jittered(rng: &mut StdRng, a: (f64, f64), b: (f64, f64)) -> Vec<(f64, f64)> {
    let len = dist_m(a, b);
    let (dn, de) = delta_m(a, b);
    let mut path = vec![a];
    if len > 150.0 {
        let n = ((len / 600.0) as usize).clamp(1, 4);
        let sd = (len * 0.08).min(120.0);
        for k in 1..=n {
            let f = k as f64 / (n + 1) as f64;
            let side = gauss(rng, sd);
            // Perpendicular to the direction of travel.
            path.push(offset(lerp(a, b, f), -de / len * side, dn / len * side));
        }
    }
    path.push(b);
    path
}

/// Whether a path from `a` through `o` to `b` turns by at most 60 degrees at `o`: passing there
/// at riding speed, no minute of it stays in one place (an out-and-back would look like a stop).
fn ahead(a: (f64, f64), o: (f64, f64), b: (f64, f64)) -> bool {
    let (inbound, outbound) = (delta_m(a, o), delta_m(o, b));
    let dot = inbound.0 * outbound.0 + inbound.1 * outbound.1;
    dot >= 0.5 * inbound.0.hypot(inbound.1) * outbound.0.hypot(outbound.1)
}

/// The day's route between its places: jittered paths, the mode of travel, and drive-bys.
struct Route<'a> {
    world: &'a World,
    team: &'a Team,
    rep: usize,
    stops: &'a [Stop],
    stopped: &'a [usize],
    /// The outlet of the day's unconfirmed claim, kept clear of drive-bys.
    claim: Option<usize>,
}

/// One leg: the path, the speed along it, and the outlet it rides through (a drive-by).
type Leg = (Vec<(f64, f64)>, f64, Option<usize>);

fn travel_s(legs: &[Leg]) -> f64 {
    legs.iter().map(|(p, v, _)| path_len(p) / v).sum()
}

fn path_len(path: &[(f64, f64)]) -> f64 {
    path.windows(2).map(|w| dist_m(w[0], w[1])).sum()
}

impl Route<'_> {
    fn pos(&self, p: Place) -> (f64, f64) {
        match p {
            Place::Home => self.team.homes[self.rep],
            Place::Stop(k) => self.stops[k].at,
            Place::Lunch(q) | Place::Break(q, _) => q,
        }
    }

    fn at(&self, o: usize) -> (f64, f64) {
        (self.world.outlets[o].lat, self.world.outlets[o].lon)
    }

    fn clear_of_stops(&self, o: usize, m: f64) -> bool {
        self.stops.iter().all(|s| dist_m(self.at(o), s.at) > m + self.world.outlets[o].radius_m)
    }

    /// The legs between consecutive `places`, `drive_bys` of them ridden through an outlet the rep
    /// does not stop at (the one with the smallest detour, clear of every place of the day).
    fn legs(&self, rng: &mut StdRng, places: &[Place], drive_bys: usize) -> Vec<Leg> {
        let count = places.len().saturating_sub(1);
        let mut order: Vec<usize> = (0..count).collect();
        for k in (1..order.len()).rev() {
            order.swap(k, rng.random_range(0..=k));
        }
        let mut through: Vec<Option<usize>> = vec![None; count];
        let mut wanted = drive_bys;
        for &leg in &order {
            if wanted == 0 {
                break;
            }
            let (a, b) = (self.pos(places[leg]), self.pos(places[leg + 1]));
            let base = dist_m(a, b);
            let pick = (0..self.world.outlets.len())
                .map(|o| (o, dist_m(a, self.at(o)) + dist_m(self.at(o), b) - base))
                .filter(|&(o, detour)| detour < 900.0 && ahead(a, self.at(o), b))
                .filter(|&(o, _)| {
                    // Clear of every place the rep stays at this day (home, lunch, breaks, stops).
                    let r = self.world.outlets[o].radius_m + 200.0;
                    places.iter().all(|&p| dist_m(self.pos(p), self.at(o)) > r)
                })
                .filter(|&(o, _)| self.world.outlets[o].active && !self.stopped.contains(&o) && self.claim != Some(o))
                .filter(|&(o, _)| !through.contains(&Some(o)) && self.clear_of_stops(o, 200.0))
                .min_by(|x, y| x.1.total_cmp(&y.1));
            if let Some((o, _)) = pick {
                through[leg] = Some(o);
                wanted -= 1;
            }
        }
        through
            .iter()
            .enumerate()
            .map(|(leg, &via)| {
                let (from, to) = (self.pos(places[leg]), self.pos(places[leg + 1]));
                let path = match via {
                    Some(outlet) => {
                        let mut path = jittered(rng, from, self.at(outlet));
                        path.extend(jittered(rng, self.at(outlet), to).into_iter().skip(1));
                        path
                    }
                    None => jittered(rng, from, to),
                };
                let speed = if via.is_none() && path_len(&path) < 500.0 && rng.random_bool(0.7) {
                    rng.random_range(1.1..=1.6)
                } else {
                    rng.random_range(3.5..=6.0)
                };
                (path, speed, via)
            })
            .collect()
    }
}

/// Whether stays at outlets `a` and `b` are far enough apart that no fix of one lands in the
/// other's radius plus the accuracy allowance (the derivation would merge the two visits).
fn separated(world: &World, a: usize, b: usize) -> bool {
    let (x, y) = (&world.outlets[a], &world.outlets[b]);
    dist_m((x.lat, x.lon), (y.lat, y.lon)) > x.radius_m.max(y.radius_m) + 90.0
}

/// Simulates one rep-day.
pub fn simulate_day(input: &DayInput<'_>) -> SimDay {
    let DayInput { world, team, rep, date, script, seed } = *input;
    let mut rng = StdRng::seed_from_u64(seed);
    let at = |o: usize| (world.outlets[o].lat, world.outlets[o].lon);
    let plan = &team.plans[rep];
    let week = week_of_cycle(plan.valid_from, date);
    let weekday = date.weekday().number_from_monday();
    let mut due: Vec<&super::SimPlanItem> =
        plan.items.iter().filter(|i| i.weekday == weekday && i.week_of_cycle.is_none_or(|w| w == week)).collect();
    due.sort_by_key(|i| i.seq);
    let mut truth = Vec::new();

    // The route: the due stops in plan order, except that two outlets too near each other for the
    // derivation to tell their stays apart are not made one after the other; less the skipped
    // tail (outlets near a stop the rep makes are not the ones skipped); with an unplanned stop.
    let apart = |a: usize, b: usize| separated(world, a, b);
    let mut order: Vec<usize> = Vec::with_capacity(due.len());
    let mut rest: Vec<usize> = due.iter().map(|i| i.outlet).collect();
    while !rest.is_empty() {
        let k = order.last().and_then(|&l| rest.iter().position(|&o| apart(l, o))).unwrap_or(0);
        order.push(rest.remove(k));
    }
    let want = if order.len() >= 2 { script.skip_last.min(order.len() - 1) } else { 0 };
    let mut skipped: Vec<usize> = Vec::new();
    for k in (1..order.len()).rev() {
        if skipped.len() == want {
            break;
        }
        let o = order[k];
        if order.iter().enumerate().all(|(j, &x)| j == k || skipped.contains(&j) || apart(o, x)) {
            skipped.push(k);
        }
    }
    for &k in skipped.iter().rev() {
        truth.push(Truth::Skipped { outlet: order[k] });
    }
    // Where the rep stands: a few metres from the outlet's point, on the side away from a
    // neighbouring outlet (the derivation gives a stay to the outlet with the smaller distances).
    let stand_at = |rng: &mut StdRng, o: usize| {
        let neighbour = (0..world.outlets.len())
            .filter(|&n| n != o)
            .map(|n| (n, dist_m(at(o), at(n))))
            .filter(|&(_, d)| d < 80.0)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match neighbour {
            Some((n, d)) if d > 0.5 => {
                let (north, east) = delta_m(at(n), at(o));
                let step = (d * 0.3).min(10.0) / d;
                offset(at(o), north * step + gauss(rng, 1.5), east * step + gauss(rng, 1.5))
            }
            _ => {
                let r = (world.outlets[o].radius_m / 4.0).min(12.0);
                offset(at(o), rng.random_range(-r..=r), rng.random_range(-r..=r))
            }
        }
    };
    let mut stops: Vec<Stop> = Vec::with_capacity(order.len());
    for (k, &o) in order.iter().enumerate() {
        if !skipped.contains(&k) {
            stops.push(Stop { outlet: o, planned: true, kind: Kind::Counted, at: stand_at(&mut rng, o) });
        }
    }
    let busy: Vec<usize> = due.iter().map(|i| i.outlet).collect();
    let clear_of_stops =
        |o: usize, stops: &[Stop], m: f64| stops.iter().all(|s| dist_m(at(o), s.at) > m + world.outlets[o].radius_m);
    if script.has(Event::Unplanned) {
        let best = team.outlets[rep]
            .iter()
            .copied()
            .filter(|&o| world.outlets[o].active && !busy.contains(&o))
            .filter(|&o| clear_of_stops(o, &stops, 150.0) && stops.iter().all(|s| apart(o, s.outlet)))
            .map(|o| {
                // The cheapest place to fit it in the route.
                let (k, cost) = (0..=stops.len())
                    .map(|k| {
                        let prev = if k == 0 { team.homes[rep] } else { stops[k - 1].at };
                        let next = stops.get(k).map_or(team.homes[rep], |s| s.at);
                        (k, dist_m(prev, at(o)) + dist_m(at(o), next) - dist_m(prev, next))
                    })
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap_or((0, 0.0));
                (o, k, cost)
            })
            .min_by(|a, b| a.2.total_cmp(&b.2));
        if let Some((o, k, _)) = best {
            let s = Stop { outlet: o, planned: false, kind: Kind::Counted, at: stand_at(&mut rng, o) };
            stops.insert(k, s);
        }
    }
    if script.has(Event::ShortStop) && !stops.is_empty() {
        let k = rng.random_range(0..stops.len());
        stops[k].kind = Kind::Short;
    }
    let stopped: Vec<usize> = stops.iter().map(|s| s.outlet).collect();

    // The unconfirmed claim: an outlet 300-600 m from one of the day's counted stops.
    let claim = script
        .has(Event::Claim)
        .then(|| {
            stops.iter().enumerate().filter(|(_, s)| s.kind == Kind::Counted).find_map(|(k, s)| {
                (0..world.outlets.len())
                    .filter(|&o| world.outlets[o].active && !stopped.contains(&o) && !busy.contains(&o))
                    .filter(|&o| (320.0..=580.0).contains(&dist_m(s.at, at(o))))
                    .find(|&o| clear_of_stops(o, &stops, 200.0))
                    .map(|o| (k, o))
            })
        })
        .flatten();

    // The places: home, the stops with lunch about half way, home; between two stops too near
    // each other that had to follow one another, a short break away from the outlets.
    let mut places = vec![Place::Home];
    let mut breaks: Vec<i64> = Vec::new();
    let lunch_after = stops.len().div_ceil(2);
    for (k, stop) in stops.iter().enumerate() {
        if k > 0 && k != lunch_after && !apart(stops[k - 1].outlet, stop.outlet) {
            places.push(Place::Break(clear_spot(world, stop.at, 400.0, &mut rng), breaks.len()));
            breaks.push(rng.random_range(8 * 60..=15 * 60));
        }
        places.push(Place::Stop(k));
        if k + 1 == lunch_after {
            places.push(Place::Lunch(clear_spot(world, stop.at, 500.0, &mut rng)));
        }
    }
    if stops.is_empty() {
        places.push(Place::Lunch(clear_spot(world, team.homes[rep], 800.0, &mut rng)));
    }
    places.push(Place::Home);
    let route = Route { world, team, rep, stops: &stops, stopped: &stopped, claim: claim.map(|c| c.1) };

    // Time budget: dwell times shrink toward the minimum when the day would run past 17:50; a
    // light day fills up with breaks away from the outlets (a cafe, paperwork, the branch office).
    let leave_s = rng.random_range((8 * 3600 + 40 * 60)..=(9 * 3600 + 10 * 60));
    let lunch_s = rng.random_range(30 * 60..=60 * 60);
    let mut dwell: Vec<i64> = stops
        .iter()
        .map(|s| match s.kind {
            Kind::Counted => log_normal(&mut rng, 720.0, 0.5, 300.0, 2400.0).round() as i64,
            Kind::Short => rng.random_range(75..=170),
        })
        .collect();
    for (d, s) in dwell.iter_mut().zip(&stops) {
        if s.kind == Kind::Counted {
            *d = (*d).max(MIN_COUNTED_DWELL_S);
        }
    }
    let floor: Vec<i64> =
        stops.iter().zip(&dwell).map(|(s, &d)| if s.kind == Kind::Counted { MIN_COUNTED_DWELL_S } else { d }).collect();
    let estimate = travel_s(&route.legs(&mut rng.clone(), &places, script.drive_bys));
    let available = (HOME_BY_S - leave_s - lunch_s - breaks.iter().sum::<i64>()) as f64 - estimate;
    let (sum, sum_min) = (dwell.iter().sum::<i64>() as f64, floor.iter().sum::<i64>() as f64);
    if sum > available && sum > sum_min {
        let f = ((available - sum_min) / (sum - sum_min)).clamp(0.0, 1.0);
        for (d, &lo) in dwell.iter_mut().zip(&floor) {
            *d = lo + ((*d - lo) as f64 * f).round() as i64;
        }
    }
    // Breaks: most of the slack (a few minutes of walking to each included), not past the skip.
    let slack = available - sum - rng.random_range(0.0..=1800.0);
    if slack > 1800.0 && !stops.is_empty() && skipped.is_empty() {
        let n = ((slack / 3600.0).ceil() as usize).clamp(1, 4);
        let each = (slack / n as f64 - 600.0).max(600.0) as i64;
        for _ in 0..n {
            let after = rng.random_range(0..stops.len());
            let i = places.iter().position(|p| *p == Place::Stop(after)).unwrap_or(0) + 1;
            let spot = clear_spot(world, stops[after].at, 400.0, &mut rng);
            places.insert(i, Place::Break(spot, breaks.len()));
            breaks.push(each);
        }
    }
    let legs = route.legs(&mut rng, &places, script.drive_bys);

    // The day as the phone records it.
    let leave = local(date, leave_s, world.utc_offset_s);
    let first_fix = leave - TimeDelta::seconds(rng.random_range(150..=360));
    let mut phone = Phone {
        fixes: Vec::new(),
        next: first_fix,
        start: first_fix,
        battery0: rng.random_range(80.0..=100.0),
        drain_per_h: rng.random_range(4.0..=8.0),
        mock: team.spoofer == Some(rep),
    };
    phone.stay(&mut rng, team.homes[rep], leave, true);
    let mut now = leave;
    let mut done: Vec<Done> = Vec::new();
    for (leg, (path, speed, via)) in legs.iter().enumerate() {
        let from = now;
        now = phone.travel(&mut rng, path, *speed, from);
        if let Some(o) = via {
            // When the rider is at the outlet's point.
            let upto: f64 = path
                .windows(2)
                .scan(false, |seen, w| {
                    let here = !*seen;
                    *seen = *seen || w[1] == at(*o);
                    Some(if here { dist_m(w[0], w[1]) } else { 0.0 })
                })
                .sum();
            truth.push(Truth::DriveBy { outlet: *o, at: from + TimeDelta::seconds((upto / speed).round() as i64) });
        }
        match places[leg + 1] {
            Place::Stop(k) => {
                let until = now + TimeDelta::seconds(dwell[k]);
                phone.stay(&mut rng, stops[k].at, until, true);
                done.push(Done { stop: stops[k], arrive: now, depart: until });
                let s = stops[k];
                truth.push(match s.kind {
                    Kind::Counted => Truth::Stop { outlet: s.outlet, arrive: now, depart: until, planned: s.planned },
                    Kind::Short => Truth::ShortStop { outlet: s.outlet, arrive: now, depart: until },
                });
                now = until;
            }
            Place::Break(q, i) => {
                let until = now + TimeDelta::seconds(breaks[i]);
                phone.stay(&mut rng, q, until, true);
                now = until;
            }
            Place::Lunch(q) => {
                let until = now + TimeDelta::seconds(lunch_s);
                phone.stay(&mut rng, q, until, true);
                now = until;
            }
            Place::Home => {
                let until = now + TimeDelta::seconds(rng.random_range(150..=360));
                phone.stay(&mut rng, team.homes[rep], until, true);
                now = until;
            }
        }
    }
    let fixes = phone.fixes;
    if team.spoofer == Some(rep)
        && let (Some(a), Some(b)) = (fixes.first(), fixes.last())
    {
        truth.push(Truth::Spoofed { from: a.t, to: b.t });
    }

    let login = &team.reps[rep].login;
    let stamp = date.format("%Y%m%d").to_string();
    let spoofer = team.spoofer == Some(rep);
    let (checkins, reviews) = app(
        &mut rng,
        world,
        &AppDay { rep, login, stamp: &stamp, date, script, done: &done, claim, spoofer },
        &mut truth,
    );
    let batches = uploads(&mut rng, &fixes, script);
    SimDay { rep, date, real: false, batches, checkins, reviews, truth }
}

/// What the reps' app and the supervisors do with a day's stops.
struct AppDay<'a> {
    rep: usize,
    login: &'a str,
    stamp: &'a str,
    date: NaiveDate,
    script: &'a Script,
    done: &'a [Done],
    /// `(index of the stop it is sent from, outlet claimed)`; `done` holds the route's stops in order.
    claim: Option<(usize, usize)>,
    /// The spoofer is not at the outlets: their check-ins carry no storefront photo.
    spoofer: bool,
}

/// The day's check-ins (with photos and answers) and reviews.
fn app(rng: &mut StdRng, world: &World, day: &AppDay<'_>, truth: &mut Vec<Truth>) -> (Vec<SimCheckin>, Vec<SimReview>) {
    let near = |rng: &mut StdRng, o: usize| {
        let r = (world.outlets[o].radius_m * 0.4).min(20.0);
        let p =
            offset((world.outlets[o].lat, world.outlets[o].lon), rng.random_range(-r..=r), rng.random_range(-r..=r));
        (round7(p.0), round7(p.1))
    };
    let picture_base =
        (day.rep as u64 + 1) * 1_000_000_000 + u64::from(day.date.num_days_from_ce().unsigned_abs()) * 100;
    let counted: Vec<usize> = (0..day.done.len()).filter(|&k| day.done[k].stop.kind == Kind::Counted).collect();
    // Stops that must carry a photo (the reused one) or answers (the problem).
    let mut reuse: Vec<usize> = Vec::new();
    if day.script.has(Event::PhotoReuse) {
        for &k in &counted {
            if reuse.len() < 2 && reuse.iter().all(|&j| day.done[j].stop.outlet != day.done[k].stop.outlet) {
                reuse.push(k);
            }
        }
        if reuse.len() < 2 {
            reuse.clear();
        }
    }
    let problem_at = day.script.has(Event::Problem).then(|| counted.get(counted.len() / 2).copied()).flatten();
    let mut checkins = Vec::new();
    let mut reused_picture = None;
    for (k, d) in day.done.iter().enumerate() {
        let o = d.stop.outlet;
        let forced = reuse.contains(&k) || problem_at == Some(k);
        if d.stop.kind != Kind::Counted || !(forced || rng.random_bool(0.3)) {
            continue;
        }
        let n = checkins.len() + 1;
        let client_id = format!("c-{}-{}-{n}", day.login, day.stamp);
        let checked_in_at = d.arrive + TimeDelta::seconds(rng.random_range(0..=120));
        let checked_out_at = d.depart - TimeDelta::seconds(rng.random_range(0..=120));
        let (lat, lon) = near(rng, o);
        let mut photos = Vec::new();
        if !day.spoofer && (reuse.contains(&k) || rng.random_bool(0.5)) {
            let fresh = picture_base + n as u64;
            let picture = if reuse.contains(&k) { *reused_picture.get_or_insert(fresh) } else { fresh };
            let span = (checked_out_at - checked_in_at).num_seconds().max(1);
            let (plat, plon) = near(rng, o);
            photos.push(SimPhoto {
                client_id: format!("p-{}-{}-{n}", day.login, day.stamp),
                picture,
                taken_at: checked_in_at + TimeDelta::seconds(rng.random_range(0..span)),
                lat: plat,
                lon: plon,
            });
        }
        let answers = (problem_at == Some(k) || rng.random_bool(0.33)).then(|| SimAnswers {
            client_id: format!("a-{}-{}-{n}", day.login, day.stamp),
            problem: problem_at == Some(k) || rng.random_bool(0.1),
        });
        checkins.push(SimCheckin {
            client_id,
            outlet: o,
            checked_in_at,
            lat,
            lon,
            accuracy_m: rng.random_range(5..=20) as f32,
            checked_out_at: Some(checked_out_at),
            photos,
            answers,
        });
    }
    if let (Some(picture), [a, b]) = (reused_picture, reuse.as_slice()) {
        truth.push(Truth::PhotoReused { picture, outlets: [day.done[*a].stop.outlet, day.done[*b].stop.outlet] });
    }
    if let Some((k, o)) = day.claim
        && let Some(d) = day.done.get(k)
    {
        let client_id = format!("c-{}-{}-{}", day.login, day.stamp, checkins.len() + 1);
        let t = d.arrive + TimeDelta::seconds(rng.random_range(120..=240));
        let p = offset(d.stop.at, gauss(rng, 3.0), gauss(rng, 3.0));
        checkins.push(SimCheckin {
            client_id: client_id.clone(),
            outlet: o,
            checked_in_at: t,
            lat: round7(p.0),
            lon: round7(p.1),
            accuracy_m: rng.random_range(5..=20) as f32,
            checked_out_at: Some(t + TimeDelta::seconds(rng.random_range(60..=150))),
            photos: Vec::new(),
            answers: None,
        });
        truth.push(Truth::UnconfirmedClaim { outlet: o, client_id });
    }

    let mut reviews = Vec::new();
    let english = rng.random_bool(0.5);
    let review = |d: &Done, decision, zh: &str, en: &str| SimReview {
        outlet: d.stop.outlet,
        around: d.arrive,
        decision,
        reason: if english { en.to_owned() } else { zh.to_owned() },
    };
    // Accepted: the short stop (or, on the spoofer's day, a suspect one); rejected: another of the
    // spoofer's; disputed: a counted stop nobody reviewed.
    let short = (0..day.done.len()).find(|&k| day.done[k].stop.kind == Kind::Short);
    let accept = day
        .script
        .has(Event::Accept)
        .then(|| short.or_else(|| day.script.has(Event::Reject).then(|| counted.first().copied()).flatten()))
        .flatten();
    let reject =
        day.script.has(Event::Reject).then(|| counted.iter().rev().copied().find(|&k| Some(k) != accept)).flatten();
    let dispute = day
        .script
        .has(Event::Dispute)
        .then(|| counted.iter().copied().find(|&k| Some(k) != accept && Some(k) != reject))
        .flatten();
    let decisions = [
        (accept, ReviewDecision::Accepted, "店长电话确认了这次拜访", "The store manager confirmed the visit by phone"),
        (
            reject,
            ReviewDecision::Rejected,
            "定位来自模拟位置软件，拜访不成立",
            "Mock locations: the rep was not at the outlet",
        ),
        (
            dispute,
            ReviewDecision::Disputed,
            "我在店里待了二十分钟，室内信号不好",
            "I was in the store the whole time; the phone lost GPS indoors",
        ),
    ];
    for (k, decision, zh, en) in decisions {
        if let Some(k) = k {
            reviews.push(review(&day.done[k], decision, zh, en));
        }
    }
    (checkins, reviews)
}

/// The phone's uploads of `fixes`: every 1-3 minutes the fixes since the last one; none during a
/// gap without signal (its fixes go in the first upload after it); now and then two swapped.
fn uploads(rng: &mut StdRng, fixes: &[SimFix], script: &Script) -> Vec<Batch> {
    let (Some(first), Some(last)) = (fixes.first(), fixes.last()) else { return Vec::new() };
    let span = (last.t - first.t).num_seconds();
    let gaps: Vec<(DateTime<Utc>, DateTime<Utc>)> = (0..script.gaps)
        .filter(|_| span > 2 * 3600)
        .map(|_| {
            let start = first.t + TimeDelta::seconds(rng.random_range(1800..span - 3600));
            (start, start + TimeDelta::seconds(rng.random_range(5 * 60..=25 * 60)))
        })
        .collect();
    let mut batches: Vec<Batch> = Vec::new();
    let mut upload = first.t + TimeDelta::seconds(rng.random_range(60..=180));
    let mut from = 0;
    loop {
        let in_gap = gaps.iter().any(|&(a, b)| upload >= a && upload < b);
        if !in_gap {
            let to = fixes.partition_point(|f| f.t <= upload);
            if to > from {
                batches.push(Batch {
                    sent_at: upload + TimeDelta::seconds(rng.random_range(1..=4)),
                    fixes: fixes[from..to].to_vec(),
                });
                from = to;
            }
        }
        if from >= fixes.len() {
            break;
        }
        upload += TimeDelta::seconds(rng.random_range(60..=180));
    }
    if script.out_of_order && batches.len() >= 3 {
        let i = rng.random_range(0..batches.len() - 2);
        batches.swap(i, i + 1);
        batches[i + 1].sent_at = batches[i].sent_at + TimeDelta::seconds(rng.random_range(2..=8));
    }
    batches
}
