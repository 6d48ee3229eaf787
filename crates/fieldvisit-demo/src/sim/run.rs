//! The whole run: the team, the events placed on its days, every simulated rep-day, and the real
//! recorded days in place of their reps' simulated ones.

use super::day::{DayInput, simulate_day};
use super::{Batch, Params, RealDay, SimDay, Simulation, World, events, team};
use chrono::{Datelike, NaiveDate, TimeDelta};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Uploads of a real day are cut every this many seconds.
const REAL_BATCH_S: i64 = 120;

/// Simulates the district team over `params.weeks` weeks before `params.anchor` (see the module
/// documentation of [`super`]); the same inputs give the same output.
pub fn simulate(world: &World, params: &Params) -> Simulation {
    let mut rng = StdRng::seed_from_u64(params.seed);
    let team = team::build(world, params, &mut rng);
    let real: Vec<(usize, NaiveDate, &RealDay)> = world
        .real_days
        .iter()
        .zip(&team.real_rep)
        .filter_map(|(day, rep)| {
            let first = day.fixes.iter().map(|f| f.t).min()?;
            Some(((*rep)?, (first + TimeDelta::seconds(i64::from(world.utc_offset_s))).date_naive(), day))
        })
        .collect();
    let simulated: Vec<(usize, NaiveDate)> = team::working_days(params)
        .into_iter()
        .flat_map(|date| (0..params.reps).map(move |rep| (rep, date)))
        .filter(|&(rep, date)| !real.iter().any(|&(r, d, _)| r == rep && d == date))
        .collect();
    let scripts = events::schedule(&team, &simulated, &mut rng);
    let mut days: Vec<SimDay> = simulated
        .iter()
        .zip(&scripts)
        .map(|(&(rep, date), script)| {
            let seed = day_seed(params.seed, rep, date);
            simulate_day(&DayInput { world, team: &team, rep, date, script, seed })
        })
        .collect();
    days.extend(real.into_iter().map(|(rep, date, day)| real_day(rep, date, day)));
    days.sort_by_key(|d| (d.date, d.rep));
    Simulation { reps: team.reps, plans: team.plans, days }
}

/// A rep-day's own seed, so each day is drawn independently of the others (splitmix64).
fn day_seed(seed: u64, rep: usize, date: NaiveDate) -> u64 {
    let mut z = seed ^ ((rep as u64) << 32) ^ u64::from(date.num_days_from_ce().unsigned_abs());
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A real recorded day: its fixes as recorded, uploaded every two minutes; no truth.
fn real_day(rep: usize, date: NaiveDate, day: &RealDay) -> SimDay {
    let mut fixes = day.fixes.clone();
    fixes.sort_by_key(|f| f.t);
    let mut batches: Vec<Batch> = Vec::new();
    if let Some(first) = fixes.first().map(|f| f.t) {
        for f in fixes {
            let window = (f.t - first).num_seconds() / REAL_BATCH_S;
            let sent_at = first + TimeDelta::seconds((window + 1) * REAL_BATCH_S);
            match batches.last_mut() {
                Some(b) if b.sent_at == sent_at => b.fixes.push(f),
                _ => batches.push(Batch { sent_at, fixes: vec![f] }),
            }
        }
    }
    SimDay { rep, date, real: true, batches, checkins: Vec::new(), reviews: Vec::new(), truth: Vec::new() }
}

/// The pipeline's own pure derivation over a simulated day, for the tests that hold the simulator to
/// its truth: visits with outlet indexes as ids.
#[cfg(test)]
pub(crate) mod check {
    use super::super::team::dist_m;
    use super::super::{SimDay, Truth, World};
    use fieldvisit::domain::geo::Footprint;
    use fieldvisit::domain::visit::{CandidateOutlet, Verdict, Visit, VisitFix, VisitRules, derive};
    use std::collections::BTreeMap;

    /// The day's visits as the derivation worker finds them (received time = the batch's), with
    /// the outlets' footprints where known (`footprints` by outlet index, or empty).
    pub fn visits(world: &World, footprints: &[Option<Footprint>], day: &SimDay) -> Vec<Visit> {
        let fixes: Vec<VisitFix> = day
            .batches
            .iter()
            .flat_map(|b| {
                b.fixes.iter().map(|f| VisitFix {
                    fix_time: f.t,
                    received_at: b.sent_at,
                    lat: f.lat,
                    lon: f.lon,
                    accuracy_m: f.accuracy_m,
                    mock: f.mock,
                    flags: 0,
                })
            })
            .collect();
        // Candidates: the outlets within 400 m of some fix (cells of about 550 m).
        let cell = |lat: f64, lon: f64| ((lat / 0.005).floor() as i64, (lon / 0.005).floor() as i64);
        let mut cells: BTreeMap<(i64, i64), Vec<usize>> = BTreeMap::new();
        for (i, o) in world.outlets.iter().enumerate() {
            cells.entry(cell(o.lat, o.lon)).or_default().push(i);
        }
        let mut near: Vec<usize> = Vec::new();
        for f in &fixes {
            let (r, c) = cell(f.lat, f.lon);
            for dr in -1..=1 {
                for dc in -1..=1 {
                    for &o in cells.get(&(r + dr, c + dc)).into_iter().flatten() {
                        let out = &world.outlets[o];
                        if !near.contains(&o) && dist_m((f.lat, f.lon), (out.lat, out.lon)) < 400.0 {
                            near.push(o);
                        }
                    }
                }
            }
        }
        let candidates: Vec<CandidateOutlet> = near
            .iter()
            .map(|&o| CandidateOutlet {
                id: o as i64,
                lat: world.outlets[o].lat,
                lon: world.outlets[o].lon,
                footprint: footprints.get(o).cloned().flatten(),
                radius_m: world.outlets[o].radius_m,
                min_dwell_s: 300,
                valid_from: None,
                valid_to: None,
            })
            .collect();
        derive(&fixes, &candidates, &VisitRules::default())
    }

    /// How the derivation fared against the truth, summed over days.
    #[derive(Debug, Default)]
    pub struct Score {
        pub stops: usize,
        pub stops_found: usize,
        pub stops_verified: usize,
        pub shorts: usize,
        pub shorts_short: usize,
        pub skipped_visited: usize,
        pub drive_bys: usize,
        pub drive_bys_visited: usize,
        pub spoofer_visits: usize,
        pub spoofer_not_suspect: usize,
        pub honest_suspect: usize,
        pub extra: usize,
    }

    /// Adds one day's comparison to `score`.
    pub fn score(world: &World, footprints: &[Option<Footprint>], day: &SimDay, spoofer: bool, score: &mut Score) {
        let found = visits(world, footprints, day);
        let overlaps = |o: usize, a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>| {
            found.iter().find(|v| v.outlet_id == o as i64 && v.arrival <= b && v.departure >= a)
        };
        let mut explained = 0;
        for t in &day.truth {
            match t {
                Truth::Stop { outlet, arrive, depart, .. } => {
                    score.stops += 1;
                    if let Some(v) = overlaps(*outlet, *arrive, *depart) {
                        score.stops_found += 1;
                        explained += 1;
                        if v.verdict == Verdict::Verified {
                            score.stops_verified += 1;
                        }
                    }
                }
                Truth::ShortStop { outlet, arrive, depart } => {
                    score.shorts += 1;
                    if let Some(v) = overlaps(*outlet, *arrive, *depart) {
                        explained += 1;
                        if v.verdict == Verdict::Short || v.verdict == Verdict::Suspect {
                            score.shorts_short += 1;
                        }
                    }
                }
                Truth::Skipped { outlet } => {
                    score.skipped_visited += usize::from(found.iter().any(|v| v.outlet_id == *outlet as i64));
                }
                Truth::DriveBy { outlet, .. } => {
                    score.drive_bys += 1;
                    score.drive_bys_visited += usize::from(found.iter().any(|v| v.outlet_id == *outlet as i64));
                }
                _ => {}
            }
        }
        for v in &found {
            if spoofer {
                score.spoofer_visits += 1;
                score.spoofer_not_suspect += usize::from(v.verdict != Verdict::Suspect);
            } else {
                score.honest_suspect += usize::from(v.verdict == Verdict::Suspect);
            }
        }
        score.extra += found.len().saturating_sub(explained);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::team::tests::{params, world};
    use super::super::team::{dist_m, week_of_cycle};
    use super::super::{ReviewDecision, SimFix, Truth};
    use super::*;
    use sha2::{Digest, Sha256};
    use std::collections::{BTreeMap, BTreeSet};

    fn digest(s: &Simulation) -> String {
        hex::encode(Sha256::digest(format!("{s:?}").as_bytes()))
    }

    fn fixes(day: &SimDay) -> Vec<SimFix> {
        let mut all: Vec<SimFix> = day.batches.iter().flat_map(|b| b.fixes.iter().copied()).collect();
        all.sort_by_key(|f| f.t);
        all
    }

    /// Every kind of event a run must hold.
    pub(super) const KINDS: [&str; 13] = [
        "stop",
        "short",
        "skipped",
        "drive-by",
        "spoofed",
        "photo-reused",
        "claim",
        "problem",
        "accepted",
        "rejected",
        "disputed",
        "out-of-order",
        "real",
    ];

    pub(super) fn kinds(days: &[SimDay]) -> BTreeSet<&'static str> {
        let mut k: BTreeSet<&'static str> = BTreeSet::new();
        for d in days {
            for t in &d.truth {
                k.insert(match t {
                    Truth::Stop { .. } => "stop",
                    Truth::ShortStop { .. } => "short",
                    Truth::Skipped { .. } => "skipped",
                    Truth::DriveBy { .. } => "drive-by",
                    Truth::Spoofed { .. } => "spoofed",
                    Truth::PhotoReused { .. } => "photo-reused",
                    Truth::UnconfirmedClaim { .. } => "claim",
                });
            }
            for c in &d.checkins {
                if c.answers.as_ref().is_some_and(|a| a.problem) {
                    k.insert("problem");
                }
            }
            for r in &d.reviews {
                k.insert(match r.decision {
                    ReviewDecision::Accepted => "accepted",
                    ReviewDecision::Rejected => "rejected",
                    ReviewDecision::Disputed => "disputed",
                });
            }
            if d.batches.windows(2).any(|w| w[1].fixes.first().map(|f| f.t) < w[0].fixes.last().map(|f| f.t)) {
                k.insert("out-of-order");
            }
            if d.real {
                k.insert("real");
            }
        }
        k
    }

    #[test]
    fn the_pipelines_derivation_finds_the_truth() {
        let w = world();
        let sim = simulate(&w, &params(4, 1));
        let mut score = check::Score::default();
        for day in sim.days.iter().filter(|d| !d.real) {
            check::score(&w, &[], day, sim.reps[day.rep].spoofer, &mut score);
        }
        assert!(score.stops_found * 100 >= score.stops * 95, "{score:?}");
        assert_eq!(score.skipped_visited, 0, "{score:?}");
        assert_eq!(score.drive_bys_visited, 0, "{score:?}");
        assert_eq!(score.spoofer_not_suspect, 0, "{score:?}");
        assert_eq!(score.honest_suspect, 0, "{score:?}");
        assert!(score.spoofer_visits > 0 && score.shorts > 0, "{score:?}");
    }

    #[test]
    fn real_days_replace_their_reps_simulated_days() {
        let w = world();
        let sim = simulate(&w, &params(4, 1));
        let real: Vec<&SimDay> = sim.days.iter().filter(|d| d.real).collect();
        assert_eq!(real.len(), 2);
        for day in real {
            assert_eq!(day.date, NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"));
            assert!(!sim.reps[day.rep].spoofer);
            assert_eq!(sim.days.iter().filter(|d| d.rep == day.rep && d.date == day.date).count(), 1);
            assert!(day.truth.is_empty() && day.checkins.is_empty() && day.reviews.is_empty());
            assert_eq!(day.batches.iter().map(|b| b.fixes.len()).sum::<usize>(), 600);
            for b in &day.batches {
                let (first, last) = (b.fixes[0].t, b.fixes[b.fixes.len() - 1].t);
                assert!(last - first < TimeDelta::seconds(120) && b.sent_at >= last);
            }
        }
    }

    #[test]
    fn same_inputs_give_the_same_simulation() {
        let w = world();
        let a = simulate(&w, &params(4, 1));
        let b = simulate(&w, &params(4, 1));
        assert_eq!(digest(&a), digest(&b));
        let c = simulate(&w, &Params { seed: 43, ..params(4, 1) });
        assert_ne!(digest(&a), digest(&c));
    }

    #[test]
    fn every_kind_of_event_is_present_in_a_small_run() {
        let w = world();
        for reps in 3..=4 {
            let sim = simulate(&w, &params(reps, 1));
            let found = kinds(&sim.days);
            for kind in KINDS {
                assert!(found.contains(kind), "{reps} reps: no {kind} in {found:?}");
            }
            assert_eq!(sim.days.len(), reps * 5);
            assert!(sim.days.windows(2).all(|p| (p[0].date, p[0].rep) < (p[1].date, p[1].rep)));
            assert_eq!(sim.reps.iter().filter(|r| r.spoofer).count(), 1);
        }
    }

    #[test]
    fn each_due_plan_item_is_stopped_at_or_skipped() {
        let w = world();
        let sim = simulate(&w, &params(4, 2));
        for day in sim.days.iter().filter(|d| !d.real) {
            let plan = &sim.plans[day.rep];
            let week = week_of_cycle(plan.valid_from, day.date);
            let mut due: Vec<usize> = plan
                .items
                .iter()
                .filter(|i| {
                    i.weekday == day.date.weekday().number_from_monday() && i.week_of_cycle.is_none_or(|x| x == week)
                })
                .map(|i| i.outlet)
                .collect();
            due.sort_unstable();
            let mut got: Vec<usize> = day
                .truth
                .iter()
                .filter_map(|t| match t {
                    Truth::Stop { outlet, planned: true, .. } | Truth::Skipped { outlet } => Some(*outlet),
                    Truth::ShortStop { outlet, .. } if due.contains(outlet) => Some(*outlet),
                    _ => None,
                })
                .collect();
            got.sort_unstable();
            assert_eq!(due, got, "{} rep {}", day.date, day.rep);
            assert!(!due.is_empty());
            for t in &day.truth {
                if let Truth::Stop { outlet, planned: false, .. } = t {
                    assert!(!due.contains(outlet));
                }
            }
        }
    }

    #[test]
    fn fixes_keep_working_hours_and_time_order() {
        let w = world();
        let sim = simulate(&w, &params(4, 1));
        for day in sim.days.iter().filter(|d| !d.real) {
            let all = fixes(day);
            assert!(all.len() > 100, "{} fixes", all.len());
            assert!(all.windows(2).all(|p| p[0].t < p[1].t), "one fix per time");
            let local = |f: &SimFix| (f.t + TimeDelta::seconds(i64::from(w.utc_offset_s))).time();
            let (from, to) = sim.reps[day.rep].working_hours;
            for f in &all {
                let t = local(f);
                assert!(t >= from - TimeDelta::minutes(30) && t <= to + TimeDelta::minutes(30), "{t}");
                assert!(f.accuracy_m.is_some_and(|a| (3.0..=80.0).contains(&a)));
            }
            for b in &day.batches {
                assert!(b.fixes.windows(2).all(|p| p[0].t < p[1].t));
                assert!(b.fixes.last().is_some_and(|f| f.t <= b.sent_at));
            }
            assert!(day.batches.windows(2).all(|p| p[0].sent_at <= p[1].sent_at));
        }
    }

    #[test]
    fn only_the_spoofer_reports_mock_fixes() {
        let w = world();
        let sim = simulate(&w, &params(4, 1));
        for day in &sim.days {
            let spoofer = sim.reps[day.rep].spoofer;
            assert!(fixes(day).iter().all(|f| f.mock == spoofer), "rep {}", day.rep);
            assert_eq!(day.truth.iter().any(|t| matches!(t, Truth::Spoofed { .. })), spoofer);
        }
    }

    #[test]
    fn drive_bys_pass_through_without_a_stop() {
        let w = world();
        let sim = simulate(&w, &params(4, 2));
        let mut per_rep: BTreeMap<usize, usize> = BTreeMap::new();
        for day in &sim.days {
            let all = fixes(day);
            let stopped: Vec<usize> = day
                .truth
                .iter()
                .filter_map(|t| match t {
                    Truth::Stop { outlet, .. } | Truth::ShortStop { outlet, .. } => Some(*outlet),
                    _ => None,
                })
                .collect();
            for t in &day.truth {
                if let Truth::DriveBy { outlet, at } = t {
                    *per_rep.entry(day.rep).or_default() += 1;
                    assert!(!stopped.contains(outlet));
                    let o = &w.outlets[*outlet];
                    let near = all
                        .iter()
                        .filter(|f| (f.t - *at).num_seconds().abs() <= 45)
                        .map(|f| dist_m((f.lat, f.lon), (o.lat, o.lon)))
                        .fold(f64::INFINITY, f64::min);
                    assert!(near <= o.radius_m + 50.0, "nearest fix {near} m");
                    let fast = all.iter().filter(|f| (f.t - *at).num_seconds().abs() <= 45);
                    assert!(fast.clone().all(|f| f.speed_mps.is_some_and(|s| s > 2.0)));
                }
            }
        }
        assert!(per_rep.values().all(|&n| n >= 3), "{per_rep:?}");
    }

    #[test]
    fn counted_stops_stay_within_the_outlets_radius() {
        let w = world();
        let sim = simulate(&w, &params(4, 1));
        let mut stops = 0;
        for day in sim.days.iter().filter(|d| !d.real) {
            let all = fixes(day);
            for t in &day.truth {
                if let Truth::Stop { outlet, arrive, depart, .. } = t {
                    stops += 1;
                    assert!((*depart - *arrive).num_seconds() >= 330);
                    let o = &w.outlets[*outlet];
                    let during: Vec<&SimFix> = all.iter().filter(|f| f.t >= *arrive && f.t <= *depart).collect();
                    let at = during
                        .iter()
                        .filter(|f| {
                            let acc = f64::from(f.accuracy_m.unwrap_or(0.0)).min(50.0);
                            dist_m((f.lat, f.lon), (o.lat, o.lon)) <= o.radius_m + acc
                        })
                        .count();
                    assert!(during.len() >= 5 && at * 10 >= during.len() * 8, "{at} of {}", during.len());
                }
                if let Truth::ShortStop { arrive, depart, .. } = t {
                    assert!((60..=180).contains(&(*depart - *arrive).num_seconds()));
                }
            }
        }
        assert!(stops > 50);
    }

    #[test]
    fn check_ins_photos_and_the_claim() {
        let w = world();
        let sim = simulate(&w, &params(4, 2));
        let mut ids: BTreeSet<String> = BTreeSet::new();
        let mut pictures: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
        for day in &sim.days {
            for c in &day.checkins {
                assert!(ids.insert(c.client_id.clone()), "{} twice", c.client_id);
                assert!(c.checked_out_at.is_some_and(|t| t > c.checked_in_at));
                for p in &c.photos {
                    pictures.entry(p.picture).or_default().insert(c.outlet);
                }
            }
            for t in &day.truth {
                match t {
                    Truth::UnconfirmedClaim { outlet, client_id } => {
                        let claim = day.checkins.iter().find(|c| &c.client_id == client_id).expect("its check-in");
                        let claimed = &w.outlets[*outlet];
                        let away = dist_m((claim.lat, claim.lon), (claimed.lat, claimed.lon));
                        assert!((300.0..=600.0).contains(&away), "{away} m");
                        assert!(!day.truth.iter().any(|s| matches!(s, Truth::Stop { outlet: x, .. } if x == outlet)));
                    }
                    Truth::PhotoReused { picture, outlets } => {
                        assert_ne!(outlets[0], outlets[1]);
                        assert_eq!(pictures.get(picture).map(BTreeSet::len), Some(2));
                    }
                    _ => {}
                }
            }
        }
        let reused = pictures.values().filter(|o| o.len() > 1).count();
        assert!(reused >= 1);
        let checkins: usize = sim.days.iter().map(|d| d.checkins.len()).sum();
        let stops: usize = sim.days.iter().flat_map(|d| &d.truth).filter(|t| matches!(t, Truth::Stop { .. })).count();
        assert!(checkins * 10 >= stops * 2 && checkins * 10 <= stops * 5, "{checkins} check-ins, {stops} stops");
    }
}

/// The full demo run over the Beijing org the loader builds (run by hand: `--run-ignored only`),
/// printing its size.
#[cfg(test)]
mod full {
    use super::super::{Truth, World};
    use super::*;
    use fieldvisit::domain::geo::Footprint;
    use std::collections::BTreeMap;

    /// The business halls' premises of the Beijing org, by outlet index.
    fn footprints(anchor: NaiveDate) -> Vec<Option<Footprint>> {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let spec = crate::beijing(&dir, anchor).expect("builds");
        spec.outlets
            .iter()
            .map(|o| {
                let ring = o.fields.footprint.as_ref()?["coordinates"][0].as_array()?.clone();
                let coords: Vec<(f64, f64)> =
                    ring.iter().filter_map(|c| Some((c[0].as_f64()?, c[1].as_f64()?))).collect();
                let polygon = geo::Polygon::new(geo::LineString::from(coords), vec![]);
                Footprint::new(geo::MultiPolygon::new(vec![polygon]))
            })
            .collect()
    }

    /// The Beijing demo org as the loader builds it, as the simulator's world.
    fn beijing(anchor: NaiveDate) -> World {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        crate::team::beijing_world(&dir, anchor).expect("builds")
    }

    #[test]
    fn small_runs_over_beijing_hold_every_kind_of_event() {
        let anchor = NaiveDate::from_ymd_opt(2026, 12, 8).expect("date");
        let world = beijing(anchor);
        for reps in 3..=4 {
            let sim = simulate(&world, &Params { reps, weeks: 1, ..Params::full(anchor) });
            let found = tests::kinds(&sim.days);
            for kind in tests::KINDS {
                assert!(found.contains(kind), "{reps} reps: no {kind} in {found:?}");
            }
        }
    }

    #[test]
    #[ignore = "the full run: a size report, run by hand"]
    fn full_run_size() {
        let anchor = NaiveDate::from_ymd_opt(2026, 12, 8).expect("date");
        let world = beijing(anchor);
        let started = std::time::Instant::now();
        let sim = simulate(&world, &Params::full(anchor));
        println!("simulated in {:?}", started.elapsed());
        let fixes: usize = sim.days.iter().flat_map(|d| &d.batches).map(|b| b.fixes.len()).sum();
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for t in sim.days.iter().flat_map(|d| &d.truth) {
            let name = format!("{t:?}");
            *kinds.entry(name.split([' ', '{']).next().unwrap_or("").to_owned()).or_default() += 1;
        }
        let planned: std::collections::BTreeSet<usize> =
            sim.plans.iter().flat_map(|p| p.items.iter().map(|i| i.outlet)).collect();
        let mut late = 0;
        let mut ends: Vec<i64> = Vec::new();
        for d in sim.days.iter().filter(|d| !d.real) {
            let last = d.batches.iter().flat_map(|b| &b.fixes).map(|f| f.t).max().expect("fixes");
            let end = (last + TimeDelta::hours(8)).time().signed_duration_since(chrono::NaiveTime::MIN).num_minutes();
            ends.push(end);
            if end > 18 * 60 + 30 {
                late += 1;
            }
        }
        ends.sort_unstable();
        println!(
            "days {} fixes {fixes} checkins {} reviews {} planned outlets {} active {} late days {late} end p10 {} p50 {} p90 {}",
            sim.days.len(),
            sim.days.iter().map(|d| d.checkins.len()).sum::<usize>(),
            sim.days.iter().map(|d| d.reviews.len()).sum::<usize>(),
            planned.len(),
            world.outlets.iter().filter(|o| o.active).count(),
            ends[ends.len() / 10],
            ends[ends.len() / 2],
            ends[ends.len() * 9 / 10],
        );
        println!("truth {kinds:?}");
        let halls = footprints(anchor);
        let mut score = check::Score::default();
        for day in sim.days.iter().filter(|d| !d.real) {
            check::score(&world, &halls, day, sim.reps[day.rep].spoofer, &mut score);
        }
        println!("derivation {score:?}");
        let mut stops_per_day: Vec<usize> = sim
            .days
            .iter()
            .filter(|d| !d.real)
            .map(|d| d.truth.iter().filter(|t| matches!(t, Truth::Stop { .. } | Truth::ShortStop { .. })).count())
            .collect();
        stops_per_day.sort_unstable();
        let mut drive_bys: BTreeMap<(usize, i64), usize> = BTreeMap::new();
        for d in &sim.days {
            let week = ((anchor - d.date).num_days() - 1) / 7; // 7-day windows back from the anchor
            *drive_bys.entry((d.rep, week)).or_default() +=
                d.truth.iter().filter(|t| matches!(t, Truth::DriveBy { .. })).count();
        }
        println!(
            "stops per day min {} p10 {} p50 {} p90 {} max {}; drive-bys per rep and 7 days min {} max {}",
            stops_per_day[0],
            stops_per_day[stops_per_day.len() / 10],
            stops_per_day[stops_per_day.len() / 2],
            stops_per_day[stops_per_day.len() * 9 / 10],
            stops_per_day[stops_per_day.len() - 1],
            drive_bys.values().min().unwrap_or(&0),
            drive_bys.values().max().unwrap_or(&0),
        );
        println!("real days {:?}", sim.days.iter().filter(|d| d.real).map(|d| (d.rep, d.date)).collect::<Vec<_>>());
        assert!(sim.days.iter().flat_map(|d| &d.truth).any(|t| matches!(t, Truth::Spoofed { .. })));
    }
}
