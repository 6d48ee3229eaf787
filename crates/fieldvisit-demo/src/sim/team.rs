//! The team: reps with Chinese names, their grid territories (split between two reps where the
//! team outnumbers the grids), their homes, and beat plans that meet each outlet's tier frequency
//! within a rep's capacity. Also the small geometry the simulator needs.

use super::{Params, SimPlan, SimPlanItem, SimRep, World};
use chrono::{Datelike, Days, NaiveDate, NaiveTime, Weekday};
use fieldvisit::domain::territory::TerritoryLevel;
use rand::Rng;
use rand::rngs::StdRng;
use std::collections::BTreeMap;

/// Metres per degree of latitude (mean Earth radius 6,371,008.8 m).
const M_PER_DEG: f64 = 111_194.93;

/// Planned stops a rep can work in a day.
pub const STOPS_PER_DAY: u32 = 12;
/// Working days in a 28-day cycle.
pub const DAYS_PER_CYCLE: u32 = 20;
/// The plans' cycle, weeks.
pub const CYCLE_WEEKS: u32 = 4;
/// Closest a rep's home (and lunch place) should be to any outlet, metres: no visit is derived there.
pub const CLEAR_OF_OUTLETS_M: f64 = 250.0;

const FAMILY: [&str; 24] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林",
    "罗", "郑", "梁", "谢", "宋",
];
const GIVEN: [&str; 24] = [
    "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
    "秀兰", "霞", "平", "刚", "桂英", "建华",
];

/// Distance between two `(lat, lon)` points, metres (equirectangular: the areas are small).
pub fn dist_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dn, de) = delta_m(a, b);
    dn.hypot(de)
}

/// `(north, east)` metres from `a` to `b`.
pub fn delta_m(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let k = f64::midpoint(a.0, b.0).to_radians().cos();
    ((b.0 - a.0) * M_PER_DEG, (b.1 - a.1) * M_PER_DEG * k)
}

/// The point `north` and `east` metres from `p`.
pub fn offset(p: (f64, f64), north: f64, east: f64) -> (f64, f64) {
    let k = p.0.to_radians().cos().max(1e-6);
    (p.0 + north / M_PER_DEG, p.1 + east / (M_PER_DEG * k))
}

/// The point a fraction `f` of the way from `a` to `b`.
pub fn lerp(a: (f64, f64), b: (f64, f64), f: f64) -> (f64, f64) {
    (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f)
}

/// Visits per 28 days the org requires of an outlet of `tier` (1 for an unknown tier).
pub fn required_visits(world: &World, tier: &str) -> u32 {
    world.tier_visits.iter().find(|(t, _)| t == tier).map_or(1, |&(_, n)| n.max(1))
}

/// Minutes a planned stop at an outlet of `tier` is expected to take (bigger outlets, longer).
pub fn expected_duration_s(tier: &str) -> u32 {
    match tier {
        "VIP" => 1200,
        "A" => 900,
        "B" => 600,
        _ => 480,
    }
}

/// The simulated working days: every Monday to Friday of the `weeks` weeks before the anchor.
pub fn working_days(params: &Params) -> Vec<NaiveDate> {
    let first = params.anchor - Days::new(u64::from(params.weeks) * 7);
    first.iter_days().take_while(|d| *d < params.anchor).filter(|d| d.weekday().number_from_monday() <= 5).collect()
}

/// The Monday on or before the first simulated day: the plans' `valid_from`.
pub fn plan_start(params: &Params) -> NaiveDate {
    let first = params.anchor - Days::new(u64::from(params.weeks) * 7);
    first.week(Weekday::Mon).first_day()
}

/// 1-based week of a plan's cycle on `date`.
pub fn week_of_cycle(valid_from: NaiveDate, date: NaiveDate) -> u32 {
    let days = (date - valid_from).num_days().max(0) as u32;
    (days / 7) % CYCLE_WEEKS + 1
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

/// The team with what the simulation of its days needs beside the reps and plans.
#[derive(Debug, Clone)]
pub struct Team {
    /// The reps, `rep1` first.
    pub reps: Vec<SimRep>,
    /// One beat plan per rep, same order.
    pub plans: Vec<SimPlan>,
    /// Each rep's home `(lat, lon)`, where the working day starts and ends.
    pub homes: Vec<(f64, f64)>,
    /// Each rep's outlets (indexes into the world's outlets), planned or not.
    pub outlets: Vec<Vec<usize>>,
    /// For each real day of the world, the rep who carries it (`None`: not used, too few reps).
    pub real_rep: Vec<Option<usize>>,
    /// The spoofer, when the team has one (`reps >= 3`).
    pub spoofer: Option<usize>,
}

/// A grid territory: its code, bbox and number of active outlets.
type Grid<'a> = (&'a str, (f64, f64, f64, f64), usize);

/// Builds the team: reps, territories, homes and beat plans.
pub fn build(world: &World, params: &Params, rng: &mut StdRng) -> Team {
    let n = params.reps;
    // Grids by active outlets, most first; rep i takes grid i mod g (so the busiest grids get two).
    let mut grids: Vec<Grid<'_>> = world
        .territories
        .iter()
        .filter(|t| t.level == TerritoryLevel::Grid)
        .map(|t| (t.code.as_str(), t.bbox, world.outlets.iter().filter(|o| o.active && o.territory == t.code).count()))
        .collect();
    grids.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
    let mut outlets: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut territory: Vec<String> = vec![String::new(); n];
    let mut centre: Vec<(f64, f64)> = vec![(0.0, 0.0); n];
    if !grids.is_empty() {
        let mut sharing: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for r in 0..n {
            sharing.entry(r % grids.len()).or_default().push(r);
        }
        for (g, reps) in sharing {
            let (code, bbox, _) = grids[g];
            let mut own: Vec<usize> = (0..world.outlets.len())
                .filter(|&i| world.outlets[i].active && world.outlets[i].territory == code)
                .collect();
            own.sort_by(|&a, &b| world.outlets[a].lon.total_cmp(&world.outlets[b].lon).then(a.cmp(&b)));
            let parts = reps.len();
            for (k, &r) in reps.iter().enumerate() {
                let (lo, hi) = (own.len() * k / parts, own.len() * (k + 1) / parts);
                outlets[r] = own[lo..hi].to_vec();
                code.clone_into(&mut territory[r]);
                let w = (bbox.2 - bbox.0) / parts as f64;
                centre[r] = (f64::midpoint(bbox.1, bbox.3), bbox.0 + w * (k as f64 + 0.5));
            }
        }
    }
    let spoofer = (n >= 3).then(|| n - 1);
    let homes: Vec<(f64, f64)> = (0..n).map(|r| home(world, &outlets[r], centre[r], rng)).collect();
    let reps: Vec<SimRep> = (0..n)
        .map(|r| SimRep {
            login: format!("rep{}", r + 1),
            name: format!("{}{}", FAMILY[(r * 7 + r / FAMILY.len()) % FAMILY.len()], GIVEN[(r * 5 + 3) % GIVEN.len()]),
            territory: territory[r].clone(),
            working_hours: (hm(9, 0), hm(18, 0)),
            spoofer: spoofer == Some(r),
        })
        .collect();
    let valid_from = plan_start(params);
    let plans: Vec<SimPlan> = (0..n)
        .map(|r| {
            let items = plan_items(world, &outlets[r], homes[r]);
            SimPlan {
                rep: r,
                name: format!("{} {} beat plan", reps[r].login, reps[r].territory),
                cycle_weeks: CYCLE_WEEKS,
                valid_from,
                items,
            }
        })
        .collect();
    let real_rep = assign_real_days(world, &reps, &outlets, spoofer);
    Team { reps, plans, homes, outlets, real_rep, spoofer }
}

/// Each real day goes to the rep (other than the spoofer, one day each) whose outlets lie nearest
/// to the recording, so the real track runs through the rep's own territory where it can.
fn assign_real_days(
    world: &World,
    reps: &[SimRep],
    outlets: &[Vec<usize>],
    spoofer: Option<usize>,
) -> Vec<Option<usize>> {
    let mut taken = vec![false; reps.len()];
    if let Some(s) = spoofer {
        taken[s] = true;
    }
    world
        .real_days
        .iter()
        .map(|day| {
            let sample: Vec<(f64, f64)> =
                day.fixes.iter().step_by(day.fixes.len() / 50 + 1).map(|f| (f.lat, f.lon)).collect();
            let score = |r: usize| {
                sample
                    .iter()
                    .filter(|&&p| {
                        outlets[r].iter().any(|&o| dist_m(p, (world.outlets[o].lat, world.outlets[o].lon)) < 1000.0)
                    })
                    .count()
            };
            let best = (0..reps.len()).filter(|&r| !taken[r]).max_by_key(|&r| (score(r), std::cmp::Reverse(r)));
            if let Some(r) = best {
                taken[r] = true;
            }
            best
        })
        .collect()
}

/// A home near `centre` (the middle of the rep's part of the grid), clear of every outlet.
fn home(world: &World, own: &[usize], centre: (f64, f64), rng: &mut StdRng) -> (f64, f64) {
    let anchor = if own.is_empty() {
        centre
    } else {
        let k = own.len() as f64;
        let lat = own.iter().map(|&o| world.outlets[o].lat).sum::<f64>() / k;
        let lon = own.iter().map(|&o| world.outlets[o].lon).sum::<f64>() / k;
        (lat, lon)
    };
    clear_spot(world, anchor, 1500.0, rng)
}

/// A point within `within` metres of `near` that is as clear of the outlets as 40 tries find
/// (the first at least [`CLEAR_OF_OUTLETS_M`] from all of them).
pub fn clear_spot(world: &World, near: (f64, f64), within: f64, rng: &mut StdRng) -> (f64, f64) {
    let mut best = (near, -1.0);
    for _ in 0..40 {
        let p = offset(near, rng.random_range(-within..=within), rng.random_range(-within..=within));
        // The nearest outlet, giving up as soon as one is nearer than the best spot's.
        let mut clear = f64::INFINITY;
        for o in &world.outlets {
            clear = clear.min(dist_m(p, (o.lat, o.lon)));
            if clear <= best.1 {
                break;
            }
        }
        if clear > best.1 {
            best = (p, clear);
        }
        if clear >= CLEAR_OF_OUTLETS_M {
            break;
        }
    }
    best.0
}

/// One visit slot of the cycle: a weekday (1-5), and a week (1-4) or every week.
type Slot = (u32, Option<u32>);

/// The plan's items: the outlets nearest home first until the capacity is used (the rest are left
/// as white space), each with its tier's visits per cycle, spread over the weekdays by direction
/// from home and balanced by load, each weekday's stops in nearest-neighbour order from home.
fn plan_items(world: &World, own: &[usize], home: (f64, f64)) -> Vec<SimPlanItem> {
    let at = |o: usize| (world.outlets[o].lat, world.outlets[o].lon);
    let mut by_distance: Vec<usize> = own.to_vec();
    by_distance.sort_by(|&a, &b| dist_m(home, at(a)).total_cmp(&dist_m(home, at(b))).then(a.cmp(&b)));
    let capacity = STOPS_PER_DAY * DAYS_PER_CYCLE;
    let mut used = 0;
    let mut kept = Vec::new();
    for o in by_distance {
        let need = required_visits(world, &world.outlets[o].tier).min(4 * 5);
        if used + need > capacity {
            continue;
        }
        used += need;
        kept.push(o);
    }
    // Direction from home decides the preferred weekday: five sectors of about equal workload.
    let angle = |o: usize| {
        let (n, e) = delta_m(home, at(o));
        n.atan2(e)
    };
    kept.sort_by(|&a, &b| angle(a).total_cmp(&angle(b)).then(a.cmp(&b)));
    let mut load = [[0u32; 4]; 5];
    let mut slots: Vec<(usize, Slot)> = Vec::new();
    let mut cumulative = 0;
    // Most demanding first, so the flexible ones fill the gaps.
    let mut order: Vec<(usize, u32)> = Vec::new();
    for &o in &kept {
        let need = required_visits(world, &world.outlets[o].tier).min(20);
        let preferred = (cumulative * 5 / used.max(1)).min(4);
        cumulative += need;
        order.push((o, preferred));
    }
    order.sort_by_key(|&(o, _)| std::cmp::Reverse(required_visits(world, &world.outlets[o].tier)));
    for (o, preferred) in order {
        let need = required_visits(world, &world.outlets[o].tier).min(20);
        // Every-week items first (4 visits each), then single weeks. Twice a week is one of the
        // evenly spaced pairs of weekdays (Mon-Thu, Mon-Fri, Tue-Fri); otherwise each weekday in
        // turn is the least loaded, the direction from home breaking near-ties.
        let weekly = |d: u32| load[d as usize].iter().sum::<u32>() + 6 * circular(d, preferred);
        let every: Vec<u32> = if need / 4 == 2 {
            let pairs = [(0, 3), (0, 4), (1, 4)];
            let (a, b) = pairs.into_iter().min_by_key(|&(a, b)| (weekly(a) + weekly(b), a, b)).unwrap_or((0, 3));
            vec![a, b]
        } else {
            let mut chosen: Vec<u32> = Vec::new();
            for _ in 0..need / 4 {
                let d = (0..5u32)
                    .filter(|d| !chosen.contains(d))
                    .min_by_key(|&d| (load[d as usize].iter().sum::<u32>() + 6 * circular(d, preferred), d))
                    .unwrap_or(0);
                chosen.push(d);
            }
            chosen
        };
        for &d in &every {
            for w in &mut load[d as usize] {
                *w += 1;
            }
            slots.push((o, (d + 1, None)));
        }
        let days_used = every;
        let single = need % 4;
        if let Some(step) = 4u32.checked_div(single) {
            // Weeks evenly apart (2 visits: weeks 1 and 3 or 2 and 4) on one weekday: the least
            // loaded choice, the preferred weekday breaking near-ties.
            let mut best: Option<(u32, u32, u32)> = None;
            for d in (0..5u32).filter(|d| !days_used.contains(d)) {
                for start in 0..step {
                    let load_there: u32 =
                        (0..single).map(|k| load[d as usize][((start + k * step) % 4) as usize]).sum::<u32>();
                    let cost = load_there * 4 + 3 * circular(d, preferred) * single;
                    if best.is_none_or(|(c, _, _)| cost < c) {
                        best = Some((cost, d, start));
                    }
                }
            }
            let (_, d, start) = best.unwrap_or((0, preferred, 0));
            for k in 0..single {
                let w = (start + k * step) % 4;
                load[d as usize][w as usize] += 1;
                slots.push((o, (d + 1, Some(w + 1))));
            }
        }
    }
    // Route order per weekday: nearest neighbour from home over all the weekday's outlets.
    let mut items = Vec::new();
    for weekday in 1..=5u32 {
        let mut day: Vec<(usize, Option<u32>)> =
            slots.iter().filter(|(_, (d, _))| *d == weekday).map(|&(o, (_, w))| (o, w)).collect();
        let mut here = home;
        let mut seq = 1;
        while !day.is_empty() {
            let next = (0..day.len())
                .min_by(|&a, &b| dist_m(here, at(day[a].0)).total_cmp(&dist_m(here, at(day[b].0))))
                .unwrap_or(0);
            let (o, week_of_cycle) = day.swap_remove(next);
            here = at(o);
            items.push(SimPlanItem {
                outlet: o,
                weekday,
                week_of_cycle,
                window: (hm(9, 0), hm(18, 0)),
                expected_duration_s: expected_duration_s(&world.outlets[o].tier),
                seq,
            });
            seq += 1;
        }
    }
    items
}

/// Distance between two weekdays (0-4) on the circle of the week's five days.
fn circular(a: u32, b: u32) -> u32 {
    let d = a.abs_diff(b);
    d.min(5 - d)
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::sim::{RealDay, SimFix, SimOutlet, SimTerritory};
    use chrono::{TimeZone, Utc};
    use rand::SeedableRng;

    /// The anchor of the tests' runs (a Monday): the simulated weeks end on Friday 4 December.
    pub fn anchor() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 7).expect("date")
    }

    /// A synthetic org: four grids of about 3 km, 400 outlets of tiers VIP/A/B/C (5/15/30/50), two
    /// fake real days on Wednesday 2 December.
    pub fn world() -> World {
        let mut rng = StdRng::seed_from_u64(7);
        let origin = (39.90, 116.30);
        let mut territories = vec![SimTerritory {
            code: "T".into(),
            level: TerritoryLevel::District,
            parent: None,
            bbox: (origin.1, origin.0, origin.1 + 0.07, origin.0 + 0.054),
        }];
        for g in 0..4 {
            let (r, c) = (f64::from(g / 2), f64::from(g % 2));
            territories.push(SimTerritory {
                code: format!("T-G{}", g + 1),
                level: TerritoryLevel::Grid,
                parent: Some("T".into()),
                bbox: (
                    origin.1 + 0.035 * c,
                    origin.0 + 0.027 * r,
                    origin.1 + 0.035 * (c + 1.0),
                    origin.0 + 0.027 * (r + 1.0),
                ),
            });
        }
        let mut outlets = Vec::new();
        for i in 0..400 {
            let g = &territories[1 + i % 4];
            let lat = rng.random_range(g.bbox.1..g.bbox.3);
            let lon = rng.random_range(g.bbox.0..g.bbox.2);
            let tier = match rng.random_range(0..100) {
                0..5 => "VIP",
                5..20 => "A",
                20..50 => "B",
                _ => "C",
            };
            outlets.push(SimOutlet {
                lat,
                lon,
                tier: tier.into(),
                active: i % 50 != 7,
                territory: g.code.clone(),
                radius_m: if i % 9 == 0 { 50.0 } else { 100.0 },
            });
        }
        let real = |k: u32| {
            let start = Utc.with_ymd_and_hms(2026, 12, 2, 1, 0, 0).single().expect("time");
            let fixes = (0..600)
                .map(|s| SimFix {
                    t: start + chrono::TimeDelta::seconds(i64::from(s) * 5),
                    lat: origin.0 + 0.01 + f64::from(s) * 0.00002,
                    lon: origin.1 + 0.01 * f64::from(k) + f64::from(s) * 0.00001,
                    accuracy_m: Some(10.0),
                    speed_mps: None,
                    altitude_m: None,
                    battery_pct: None,
                    mock: false,
                })
                .collect();
            RealDay { name: format!("real{k}"), fixes }
        };
        World {
            timezone: "Asia/Shanghai".into(),
            utc_offset_s: 8 * 3600,
            territories,
            outlets,
            tier_visits: vec![("A".into(), 4), ("B".into(), 2), ("C".into(), 1), ("VIP".into(), 8)],
            real_days: vec![real(1), real(2)],
        }
    }

    /// A run of `reps` reps over `weeks` weeks with the tests' seed.
    pub fn params(reps: usize, weeks: u32) -> Params {
        Params { seed: 42, anchor: anchor(), reps, weeks }
    }

    #[test]
    fn plan_items_meet_each_tier_per_cycle() {
        let world = world();
        let team = build(&world, &params(6, 2), &mut StdRng::seed_from_u64(1));
        assert_eq!(team.reps.len(), 6);
        let mut planned = 0;
        for plan in &team.plans {
            assert_eq!(plan.valid_from.weekday(), Weekday::Mon);
            let mut per_outlet: BTreeMap<usize, u32> = BTreeMap::new();
            for item in &plan.items {
                assert!((1..=5).contains(&item.weekday));
                *per_outlet.entry(item.outlet).or_default() += if item.week_of_cycle.is_some() { 1 } else { 4 };
            }
            for (&o, &n) in &per_outlet {
                assert_eq!(n, required_visits(&world, &world.outlets[o].tier), "outlet {o}");
                assert!(world.outlets[o].active);
                // Twice a week: three or four days apart.
                let days: Vec<u32> = plan.items.iter().filter(|i| i.outlet == o).map(|i| i.weekday).collect();
                if world.outlets[o].tier == "VIP" {
                    assert!(days.len() == 2 && (3..=4).contains(&days[0].abs_diff(days[1])), "{days:?}");
                }
            }
            let total: u32 = per_outlet.values().sum();
            assert!(total <= STOPS_PER_DAY * DAYS_PER_CYCLE);
            planned += per_outlet.len();
        }
        assert!(planned > 300, "{planned} outlets planned");
        // Two grids split between two reps each; the spoofer is the last rep; one rep per real day.
        assert_eq!(team.reps.iter().filter(|r| r.spoofer).count(), 1);
        assert!(team.reps[5].spoofer);
        assert_eq!(team.real_rep.iter().flatten().count(), 2);
        assert!(team.real_rep.iter().flatten().all(|&r| r != 5));
    }

    #[test]
    fn weeks_of_the_cycle_start_at_valid_from() {
        let p = params(3, 5);
        let days = working_days(&p);
        assert_eq!(days.len(), 25);
        let from = plan_start(&p);
        assert_eq!(from, days[0]);
        assert_eq!(week_of_cycle(from, days[0]), 1);
        assert_eq!(week_of_cycle(from, days[5]), 2);
        assert_eq!(week_of_cycle(from, days[20]), 1);
    }
}
