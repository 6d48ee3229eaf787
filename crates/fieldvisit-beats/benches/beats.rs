//! Beat generation (issue 27): one rep with 250 outlets and a team of 20 reps with 5,000 outlets,
//! tiers A/B/C at 4/2/1 visits per 4 weeks (20% / 30% / 50% of the outlets), a time window
//! (10:00-12:00 or 14:00-16:00) on 20% of them, 15-minute visits, 4 weeks of 8-hour days
//! (09:00-17:00, Monday to Friday). Outlets are synthetic and seeded: clusters around Beijing
//! (the one rep's in a ~6 km district, the team's over ~40 km).
//!
//! Prints the share of required visits placed, the travel of the solver's plan against the
//! baseline (visits dealt round-robin over the days by outlet id, each day ordered by
//! `/plan-proposal`'s nearest-neighbour route; the team's baseline keeps the same outlet-to-rep
//! assignment) and the solve time.
//!
//! The solver's caps (8 s for the rep, 50 s for the team) leave room under the goals (10 s, 60 s)
//! for building the problem and the team's split; it stops sooner after 3,000 generations.
//!
//! `cargo bench -p fieldvisit-beats --bench beats`

use chrono::{NaiveDate, Weekday};
use fieldvisit_beats::{Outlet, Point, Rep, Request, StraightLine, generate, working_days};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BEIJING: Point = Point { lat: 39.9042, lon: 116.4074 };

fn rep(id: i64, start: Point) -> Rep {
    Rep {
        id,
        start,
        day_start_s: 9 * 3600,
        day_end_s: 17 * 3600,
        weekdays: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
    }
}

/// `n` outlets in `clusters` Gaussian clusters whose centres lie within `spread_km` of `centre`.
fn outlets(rng: &mut StdRng, n: usize, centre: Point, spread_km: f64, clusters: usize) -> Vec<Outlet> {
    let km_lat = 1.0 / 111.0;
    let km_lon = 1.0 / 85.3;
    let centres: Vec<Point> = (0..clusters)
        .map(|_| Point {
            lat: centre.lat + rng.random_range(-spread_km..spread_km) * km_lat,
            lon: centre.lon + rng.random_range(-spread_km..spread_km) * km_lon,
        })
        .collect();
    (0..n)
        .map(|k| {
            let c = centres[k % clusters];
            // A sum of uniforms: roughly normal, ~0.8 km across.
            let dx: f64 = (0..3).map(|_| rng.random_range(-0.5..0.5)).sum::<f64>() * 0.8;
            let dy: f64 = (0..3).map(|_| rng.random_range(-0.5..0.5)).sum::<f64>() * 0.8;
            let u: f64 = rng.random();
            let (tier, visits) = if u < 0.2 {
                ("A", 4)
            } else if u < 0.5 {
                ("B", 2)
            } else {
                ("C", 1)
            };
            let window = (rng.random::<f64>() < 0.2)
                .then(|| if rng.random::<bool>() { (10 * 3600, 12 * 3600) } else { (14 * 3600, 16 * 3600) });
            Outlet {
                id: k as i64 + 1,
                label: format!("BJ{:05}", k + 1),
                point: Point { lat: c.lat + dy * km_lat, lon: c.lon + dx * km_lon },
                tier: tier.to_owned(),
                visits,
                window,
                duration_s: 900,
                fixed_rep: None,
            }
        })
        .collect()
}

fn row(name: &str, req: &Request) {
    let p = generate(req, &StraightLine::default());
    let placed = f64::from(p.placed_visits) / f64::from(p.required_visits.max(1));
    let gain = 1.0 - p.travel_m / p.baseline_travel_m.max(1.0);
    let loads: Vec<usize> = p.reps.iter().map(|b| b.stops.len()).collect();
    // A figure counts only for a plan that keeps its rules: every stop within the working hours
    // (09:00-17:00) and its window, and no two visits of an outlet on one day.
    let mut seen = std::collections::HashSet::new();
    for s in p.reps.iter().flat_map(|b| &b.stops) {
        assert!(
            s.arrival_s >= s.window.0.max(9 * 3600) && s.arrival_s + s.duration_s <= s.window.1.min(17 * 3600),
            "stop of outlet {} on {} at {} s is outside its window or the day",
            s.outlet_id,
            s.day,
            s.arrival_s
        );
        assert!(seen.insert((s.outlet_id, s.day)), "outlet {} twice on {}", s.outlet_id, s.day);
    }
    // How full the days are: the placed visits and their legs against the working hours (a plan
    // that places every visit needs the unplaced visits' time, and their legs, on top).
    let tm = StraightLine::default();
    let busy_s: f64 =
        p.reps.iter().flat_map(|b| &b.stops).map(|s| f64::from(s.duration_s) + s.leg_m / tm.speed_mps).sum();
    let hours_s: f64 = req
        .reps
        .iter()
        .map(|r| {
            let days = working_days(req.first_day, req.cycle_weeks, &r.weekdays).len() as f64;
            days * f64::from(r.day_end_s - r.day_start_s)
        })
        .sum();
    println!(
        "| {name} | {}/{} visits placed ({:.1}%) | travel {:.1} km vs baseline {:.1} km ({:.1}% shorter) | solve {:.2} s | visits per rep {}-{} | visits and travel fill {:.1}% of the working hours |",
        p.placed_visits,
        p.required_visits,
        placed * 100.0,
        p.travel_m / 1000.0,
        p.baseline_travel_m / 1000.0,
        gain * 100.0,
        p.solve_ms as f64 / 1000.0,
        loads.iter().min().copied().unwrap_or(0),
        loads.iter().max().copied().unwrap_or(0),
        busy_s / hours_s * 100.0,
    );
    let mut reasons: Vec<&str> = p.unplaced.iter().map(|u| u.reason.as_str()).collect();
    reasons.sort_unstable();
    reasons.dedup();
    for r in reasons {
        println!("|   unplaced: {r} |");
    }
}

fn main() {
    let first_day = NaiveDate::from_ymd_opt(2026, 12, 7).expect("a Monday");
    let mut rng = StdRng::seed_from_u64(27);
    let one = Request {
        reps: vec![rep(1, BEIJING)],
        outlets: outlets(&mut rng, 250, BEIJING, 3.0, 12),
        cycle_weeks: 4,
        first_day,
        max_seconds: 8,
    };
    row("one rep, 250 outlets, 4 weeks (solver cap 8 s)", &one);
    let reps: Vec<Rep> = (0..20)
        .map(|k| {
            rep(
                k + 1,
                Point {
                    lat: BEIJING.lat + rng.random_range(-18.0..18.0) / 111.0,
                    lon: BEIJING.lon + rng.random_range(-18.0..18.0) / 85.3,
                },
            )
        })
        .collect();
    let team = Request {
        reps,
        outlets: outlets(&mut rng, 5000, BEIJING, 20.0, 200),
        cycle_weeks: 4,
        first_day,
        max_seconds: 50,
    };
    row("team of 20 reps, 5,000 outlets, 4 weeks (solver cap 50 s)", &team);
}
