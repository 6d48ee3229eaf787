use super::*;

fn monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 7).expect("date")
}

fn weekdays() -> Vec<Weekday> {
    vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri]
}

fn rep(id: i64, lat: f64, lon: f64) -> Rep {
    Rep { id, start: Point { lat, lon }, day_start_s: 9 * 3600, day_end_s: 17 * 3600, weekdays: weekdays() }
}

/// `n` outlets on a grid ~300 m apart east of (lat, lon), tiers A/B/C in turn (4/2/1 visits).
fn outlets(first_id: i64, n: usize, lat: f64, lon: f64) -> Vec<Outlet> {
    (0..n)
        .map(|k| {
            let (tier, visits) = [("A", 4), ("B", 2), ("C", 1)][k % 3];
            Outlet {
                id: first_id + k as i64,
                label: format!("O{}", first_id + k as i64),
                point: Point { lat: lat + (k / 6) as f64 * 0.0027, lon: lon + (k % 6) as f64 * 0.0035 },
                tier: tier.to_owned(),
                visits,
                window: (k % 5 == 0).then_some((10 * 3600, 12 * 3600)),
                duration_s: 900,
                fixed_rep: None,
            }
        })
        .collect()
}

#[test]
fn working_days_cover_the_cycle_from_the_first_day() {
    assert_eq!(working_days(monday(), 4, &weekdays()).len(), 20);
    // A Wednesday start skips Monday and Tuesday of week 1.
    let wed = monday() + Days::days(2);
    let days = working_days(wed, 1, &weekdays());
    assert_eq!(days.first(), Some(&wed));
    assert_eq!(days.len(), 3);
    assert_eq!(week_of_cycle(wed, monday() + Days::days(7)), 2);
}

#[test]
fn allowed_days_are_disjoint_blocks_covering_the_cycle() {
    for k in 1..=7 {
        let blocks: Vec<_> = (0..k).map(|i| allowed_days(i, k, 20)).collect();
        assert_eq!(blocks[0].start, 0);
        assert_eq!(blocks[k as usize - 1].end, 20);
        for w in blocks.windows(2) {
            assert_eq!(w[0].end, w[1].start);
            assert!(!w[0].is_empty());
        }
    }
}

#[test]
fn straight_line_applies_detour_and_speed() {
    let t = StraightLine::default();
    let a = Point { lat: 39.9, lon: 116.4 };
    let b = Point { lat: 39.91, lon: 116.4 };
    let d = haversine_m(a.lat, a.lon, b.lat, b.lon);
    assert!((t.distance_m(a, b) - 1.3 * d).abs() < 1e-6);
    assert!((t.duration_s(a, b) - 1.3 * d / (15_000.0 / 3_600.0)).abs() < 1e-6);
}

#[test]
fn one_rep_gets_every_visit_spread_within_windows_and_hours() {
    let req = Request {
        reps: vec![rep(1, 39.9, 116.4)],
        outlets: outlets(100, 30, 39.9, 116.4),
        cycle_weeks: 4,
        first_day: monday(),
        max_seconds: 2,
    };
    let p = generate(&req, &StraightLine::default());
    assert_eq!(p.required_visits, 70);
    assert_eq!(p.placed_visits, 70, "{:?}", p.unplaced);
    assert!(p.unplaced.is_empty());
    let stops = &p.reps[0].stops;
    for s in stops {
        assert!(s.arrival_s >= s.window.0 && s.arrival_s + s.duration_s <= s.window.1, "{s:?}");
        assert!(s.arrival_s >= 9 * 3600 && s.arrival_s + s.duration_s <= 17 * 3600);
        assert!((1..=4).contains(&s.week_of_cycle));
        assert!(s.why.contains("tier "), "{}", s.why);
    }
    // The visits of an outlet are on different days, tier A's one per week.
    for o in &req.outlets {
        let mut days: Vec<_> = stops.iter().filter(|s| s.outlet_id == o.id).map(|s| s.day).collect();
        days.sort();
        days.dedup();
        assert_eq!(days.len() as u32, o.visits);
        if o.visits == 4 {
            let weeks: Vec<u8> = days.iter().map(|d| week_of_cycle(monday(), *d)).collect();
            assert_eq!(weeks, vec![1, 2, 3, 4]);
        }
    }
    assert!(p.travel_m > 0.0 && p.baseline_travel_m > 0.0);
}

#[test]
fn a_window_outside_the_hours_is_unplaced_with_a_reason() {
    let mut o = outlets(1, 1, 39.9, 116.4);
    o[0].window = Some((19 * 3600, 20 * 3600));
    let req =
        Request { reps: vec![rep(1, 39.9, 116.4)], outlets: o, cycle_weeks: 1, first_day: monday(), max_seconds: 1 };
    let p = generate(&req, &StraightLine::default());
    assert_eq!(p.placed_visits, 0);
    assert_eq!(p.unplaced.len(), 1);
    assert!(p.unplaced[0].reason.contains("time window"));
}

#[test]
fn a_team_keeps_each_outlet_with_one_rep_and_balances_load() {
    let mut all = outlets(1, 60, 39.9, 116.4);
    all.extend(outlets(1000, 60, 39.95, 116.5));
    all[5].fixed_rep = Some(2);
    let req = Request {
        reps: vec![rep(1, 39.9, 116.4), rep(2, 39.95, 116.5)],
        outlets: all,
        cycle_weeks: 2,
        first_day: monday(),
        max_seconds: 2,
    };
    let owner = assign(&req, &StraightLine::default());
    assert_eq!(owner[5], 1, "a fixed outlet stays with its rep");
    let p = generate(&req, &StraightLine::default());
    let mut reps_of: HashMap<i64, Vec<i64>> = HashMap::new();
    for b in &p.reps {
        for s in &b.stops {
            reps_of.entry(s.outlet_id).or_default().push(b.rep_id);
        }
    }
    for (_, mut r) in reps_of {
        r.dedup();
        assert_eq!(r.len(), 1);
    }
    let loads: Vec<u32> = p.reps.iter().map(|b| b.required_visits).collect();
    let (lo, hi) = (loads.iter().min().copied().unwrap_or(0), loads.iter().max().copied().unwrap_or(0));
    assert!(f64::from(hi - lo) <= 0.1 * f64::from(hi), "{loads:?}");
}

#[test]
fn a_rep_who_lives_far_from_the_outlets_gets_fewer_visits() {
    // Two equal groups ~17 km apart; rep 1 starts among the first, rep 2 ~10 km from the second:
    // ~50 minutes of every working day go on rep 2's way out, so rep 2 must get less work.
    let mut all = outlets(1, 60, 39.9, 116.4);
    all.extend(outlets(1000, 60, 39.9, 116.6));
    let req = Request {
        reps: vec![rep(1, 39.9, 116.4), rep(2, 39.99, 116.6)],
        outlets: all,
        cycle_weeks: 2,
        first_day: monday(),
        max_seconds: 2,
    };
    let owner = assign(&req, &StraightLine::default());
    let visits_of =
        |r: usize| -> u32 { req.outlets.iter().zip(&owner).filter(|(_, o)| **o == r).map(|(o, _)| o.visits).sum() };
    let (near, far) = (visits_of(0), visits_of(1));
    assert_eq!(near + far, req.outlets.iter().map(|o| o.visits).sum::<u32>());
    assert!(f64::from(far) < 0.9 * f64::from(near), "near {near}, far {far}");
    // The far rep still keeps the outlets of its own group: only some move.
    assert!(owner[60..].iter().filter(|&&o| o == 1).count() >= 40, "{:?}", &owner[60..]);
}

#[test]
fn a_day_is_ordered_shorter_than_a_zigzag_and_keeps_windows() {
    let r = rep(1, 39.9, 116.4);
    // Eight outlets on a line eastwards, given in a zigzag order; the one with a morning window
    // is the farthest.
    let mut stops: Vec<Outlet> = outlets(100, 8, 39.9, 116.4)
        .into_iter()
        .map(|mut o| {
            o.point = Point { lat: 39.9, lon: 116.4 + (o.id - 99) as f64 * 0.004 };
            o.window = None;
            o
        })
        .collect();
    stops[7].window = Some((9 * 3600, 10 * 3600));
    let zigzag: Vec<Outlet> = [7, 0, 6, 1, 5, 2, 4, 3].iter().map(|&k| stops[k].clone()).collect();
    let day = order_day(&r, &zigzag, &StraightLine::default(), 1);
    assert!(day.unplaced.is_empty(), "{:?}", day.unplaced);
    assert_eq!(day.stops.len(), 8);
    assert!(day.travel_m < day.given_travel_m, "{} vs {}", day.travel_m, day.given_travel_m);
    let seqs: Vec<u32> = day.stops.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
    let far = day.stops.iter().find(|s| s.outlet_id == 107).expect("the windowed stop is placed");
    assert!((9 * 3600..=10 * 3600 - 900).contains(&far.arrival_s), "arrives {}", far.arrival_s);
    let legs: f64 = day.stops.iter().map(|s| s.leg_m).sum();
    assert!((legs - day.travel_m).abs() < 1e-6);
}

#[test]
fn a_day_names_the_stops_that_cannot_fit() {
    let r = rep(1, 39.9, 116.4);
    let mut stops = outlets(200, 3, 39.9, 116.4);
    for o in &mut stops {
        o.window = None;
        o.duration_s = 3 * 3600;
    }
    // 9 hours of visits in an 8-hour day: one is left out; a window outside the hours is named.
    stops[0].window = Some((18 * 3600, 20 * 3600));
    stops[0].duration_s = 900;
    let day = order_day(&r, &stops, &StraightLine::default(), 1);
    assert_eq!(day.stops.len(), 2);
    assert_eq!(day.unplaced.len(), 1);
    assert_eq!(day.unplaced[0].0, 200);
    assert!(day.unplaced[0].1.contains("time window"), "{}", day.unplaced[0].1);
}

/// Four stops on the corners of a ~340 × 445 m square, the rep starting on the first (the
/// plan-editor workflow's lasso): `[start corner, its west, south-west, south]`.
fn square_from_a_stop() -> (Rep, Vec<Outlet>) {
    let r = rep(1, 40.2, 116.3);
    let corners = [(40.2, 116.3), (40.2, 116.296), (40.196, 116.296), (40.196, 116.3)];
    let mut stops = outlets(300, 4, 40.2, 116.3);
    for (o, (lat, lon)) in stops.iter_mut().zip(corners) {
        o.point = Point { lat, lon };
        o.window = None;
    }
    (r, stops)
}

#[test]
fn a_day_ends_at_its_last_stop_so_the_order_is_never_longer_than_the_one_given() {
    let (r, stops) = square_from_a_stop();
    // The start corner, then across the diagonal, along the side and across again: a round trip
    // would cost the same as the shortest path, which goes round the square from the start.
    let given: Vec<Outlet> = [0, 2, 1, 3].iter().map(|&k| stops[k].clone()).collect();
    let day = order_day(&r, &given, &StraightLine::default(), 1);
    assert!(day.unplaced.is_empty(), "{:?}", day.unplaced);
    let order: Vec<i64> = day.stops.iter().map(|s| s.outlet_id).collect();
    assert_eq!(order[0], 300, "the stop at the start comes first: {order:?}");
    assert!(day.travel_m < day.given_travel_m, "{} vs {}", day.travel_m, day.given_travel_m);
    let t = StraightLine::default();
    let side = |a: usize, b: usize| t.distance_m(stops[a].point, stops[b].point);
    // Round the square from the start, first along its shorter side: 0-1-2-3 or 0-3-2-1.
    let shortest = side(0, 1).min(side(0, 3)) + side(1, 2) + side(2, 3);
    assert!((day.travel_m - shortest.round()).abs() <= 2.0, "{} vs the shortest {shortest}", day.travel_m);
    // Given the shortest order, the answer is no longer.
    let best: Vec<Outlet> = order.iter().map(|id| stops[(*id - 300) as usize].clone()).collect();
    let again = order_day(&r, &best, &StraightLine::default(), 1);
    assert!(again.travel_m <= again.given_travel_m, "{} vs {}", again.travel_m, again.given_travel_m);
}

#[test]
fn a_given_order_is_timed_from_the_start_waiting_for_windows() {
    let (r, mut stops) = square_from_a_stop();
    stops[1].window = Some((11 * 3600, 12 * 3600));
    let t = StraightLine::default();
    let at = arrivals_in_order(&r, &stops, &t).expect("fits the day");
    assert_eq!(at[0], 9 * 3600, "the first stop is at the start");
    assert_eq!(at[1], 11 * 3600, "waits for the window to open");
    let leg = t.duration_s(stops[1].point, stops[2].point).round() as u32;
    assert_eq!(at[2], 11 * 3600 + 900 + leg);
    // A window that closes before the rep can get there: no timing.
    stops[3].window = Some((9 * 3600, 9 * 3600 + 1800));
    assert_eq!(arrivals_in_order(&r, &stops, &t), None);
}

#[test]
fn more_visits_than_the_days_hold_are_left_unplaced_not_run_past_the_day() {
    // 200 one-visit outlets of 15 minutes in one week of five 8-hour days: at most 160 fit.
    let mut many = outlets(1, 200, 39.9, 116.4);
    for o in &mut many {
        o.visits = 1;
        o.window = None;
    }
    let req =
        Request { reps: vec![rep(1, 39.9, 116.4)], outlets: many, cycle_weeks: 1, first_day: monday(), max_seconds: 2 };
    let p = generate(&req, &StraightLine::default());
    assert!(p.placed_visits < 160, "placed {}", p.placed_visits);
    assert_eq!(p.placed_visits + p.unplaced.iter().map(|u| u.visits).sum::<u32>(), 200);
    let stops = &p.reps[0].stops;
    assert!(
        stops.iter().all(|s| s.arrival_s >= 9 * 3600 && s.arrival_s + s.duration_s <= 17 * 3600),
        "a stop outside its day"
    );
    let mut per_day: HashMap<NaiveDate, u32> = HashMap::new();
    for s in stops {
        *per_day.entry(s.day).or_default() += 1;
    }
    assert!(per_day.values().all(|&n| n <= 32), "{per_day:?}");
}

#[test]
fn repair_places_again_a_visit_left_out_within_its_part_of_the_cycle() {
    // 12 tier-A outlets (4 visits in 4 weeks: one a week) that fit easily. One placed visit of the
    // second week is taken out as if the solver had left it: the repair routes that week again
    // and places it, on a day of that week, and leaves the other weeks' stops as they were.
    let mut a = outlets(1, 12, 39.9, 116.4);
    for o in &mut a {
        o.tier = "A".to_owned();
        o.visits = 4;
        o.window = None;
    }
    let r = rep(1, 39.9, 116.4);
    let days = working_days(monday(), 4, &r.weekdays);
    let refs: Vec<&Outlet> = a.iter().collect();
    let visits: Vec<Visit> = (0..a.len())
        .flat_map(|k| (0..4).map(move |i| Visit { outlet: k, nth: i, of: 4, days: allowed_days(i, 4, 20) }))
        .collect();
    let (mut placed, unassigned) = route(&r, &refs, &visits, &days, &StraightLine::default(), 1.0).expect("routed");
    assert!(unassigned.is_empty() && placed.len() == 48);
    let taken = placed.iter().position(|(_, j)| visits[*j].days == (5..10)).expect("a visit of week 2");
    let (_, left_out) = placed.remove(taken);
    let others: Vec<(NaiveDate, i64, u32)> = placed
        .iter()
        .filter(|(s, _)| !(days[5]..=days[9]).contains(&s.day))
        .map(|(s, _)| (s.day, s.outlet_id, s.seq))
        .collect();
    let (again, still) = repair(&r, &refs, &visits, &days, &StraightLine::default(), (placed, vec![left_out]), 1.0);
    assert!(still.is_empty(), "still unassigned: {still:?}");
    assert_eq!(again.len(), 48);
    let back = again.iter().find(|(_, j)| *j == left_out).expect("placed again");
    assert!((days[5]..=days[9]).contains(&back.0.day), "on {} outside week 2", back.0.day);
    let kept: Vec<(NaiveDate, i64, u32)> = again
        .iter()
        .filter(|(s, _)| !(days[5]..=days[9]).contains(&s.day))
        .map(|(s, _)| (s.day, s.outlet_id, s.seq))
        .collect();
    assert_eq!(kept, others, "the other weeks are kept");
}
