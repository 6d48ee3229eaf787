//! Beat plans: validation of a plan and its items, and the calendar of recurring items.
//!
//! A recurring item names an ISO weekday (1 = Monday) and optionally a week of the plan's cycle
//! (`1..=cycle_weeks`; none = every week). Week 1 of the cycle is the week (Monday to Sunday) that
//! holds the plan's `valid_from`; the cycle repeats every `cycle_weeks` weeks from there.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;

use crate::validation::FieldError;

/// Most items in one plan.
pub const MAX_ITEMS: usize = 2_000;
/// Longest name.
pub const MAX_NAME_CHARS: usize = 200;
/// A proposed route starts from the rep's last fix only when it is at most this many days before
/// the day; else from the rep's declared home.
pub const START_FIX_MAX_AGE_DAYS: i32 = 30;

/// One item of a plan as a client sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    pub outlet_id: i64,
    /// ISO weekday 1 (Monday) .. 7 (Sunday): a recurring item.
    #[schema(minimum = 1, maximum = 7)]
    pub weekday: Option<i16>,
    /// Week of the cycle, `1..=cycle_weeks`; absent = every week (recurring items only).
    #[schema(minimum = 1, maximum = 12)]
    pub week_of_cycle: Option<i16>,
    /// The day of a dated item (instead of `weekday`).
    pub visit_date: Option<NaiveDate>,
    /// Org-local time window of the visit (`HH:MM` or `HH:MM:SS`).
    #[schema(value_type = Option<String>, pattern = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?$")]
    pub window_start: Option<NaiveTime>,
    /// After `window_start` (a rule of the operation's description).
    #[schema(value_type = Option<String>, pattern = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?$")]
    pub window_end: Option<NaiveTime>,
    /// Expected duration of the visit, seconds (1-86400).
    #[schema(minimum = 1, maximum = 86400)]
    pub expected_duration_s: Option<i32>,
    /// Position in the day's route; default: the item's position in the list.
    pub seq: Option<i32>,
}

/// A plan as a client sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    pub rep_id: i64,
    #[schema(schema_with = crate::validation::one_line_text::<MAX_NAME_CHARS>)]
    pub name: String,
    /// Length of the recurrence cycle in weeks, 1..=12 (default 1).
    #[schema(minimum = 1, maximum = 12)]
    pub cycle_weeks: Option<i16>,
    pub valid_from: NaiveDate,
    /// Last day (inclusive); absent = open-ended.
    pub valid_to: Option<NaiveDate>,
    #[schema(max_items = 2000)]
    pub items: Vec<ItemInput>,
}

/// Dates a plan (or a request about plans and visits) may name: 2000-01-01 to 2100-12-31.
pub fn date_in_range(d: NaiveDate) -> bool {
    (NaiveDate::from_ymd_opt(2000, 1, 1)..=NaiveDate::from_ymd_opt(2100, 12, 31)).contains(&Some(d))
}

/// Instants a request may name (a check-in, a check-out): on a UTC day [`date_in_range`] allows,
/// so adding a visit's slack or moving to a local time cannot overflow.
pub fn instant_in_range(t: DateTime<Utc>) -> bool {
    date_in_range(t.date_naive())
}

/// The exclusive end of a period of instants (a track's `to`): up to the end of the last day
/// [`date_in_range`] allows, 2101-01-01T00:00:00Z.
pub fn period_end_in_range(t: DateTime<Utc>) -> bool {
    t.checked_sub_signed(Duration::nanoseconds(1)).is_some_and(instant_in_range)
}

/// Every problem of a plan revised from day `from` on: those of [`problems`], and dated items and
/// the last day must not lie before `from` (the past is kept).
pub fn revision_problems(p: &PlanInput, from: NaiveDate) -> Vec<FieldError> {
    let mut errors = problems(p);
    if p.valid_to.is_some_and(|t| t < from) {
        errors.push(FieldError::new("valid_to", "must not be before the revision's first day (from)"));
    }
    for (i, item) in p.items.iter().enumerate() {
        if item.visit_date.is_some_and(|d| d < from) {
            errors.push(
                FieldError::new(format!("items[{i}].visit_date"), "must not be before the revision's first day (from)")
                    .at(i),
            );
        }
    }
    errors
}

/// Every problem of a plan, items named by index (`items[3].weekday`).
pub fn problems(p: &PlanInput) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, date) in [("valid_from", Some(p.valid_from)), ("valid_to", p.valid_to)] {
        if date.is_some_and(|d| !date_in_range(d)) {
            errors.push(FieldError::new(field, "must be a date from 2000-01-01 to 2100-12-31"));
        }
    }
    let name = p.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        errors
            .push(FieldError::new("name", format!("must be a non-blank text of at most {MAX_NAME_CHARS} characters")));
    }
    super::validation::check_plain_text("name", name, super::validation::Lines::One, &mut errors);
    let cycle = p.cycle_weeks.unwrap_or(1);
    if !(1..=12).contains(&cycle) {
        errors.push(FieldError::new("cycle_weeks", "must be between 1 and 12"));
    }
    if p.valid_to.is_some_and(|t| t < p.valid_from) {
        errors.push(FieldError::new("valid_to", "must not be before valid_from"));
    }
    if p.items.len() > MAX_ITEMS {
        errors.push(FieldError::new("items", format!("at most {MAX_ITEMS} items")));
    }
    for (i, item) in p.items.iter().enumerate() {
        let field = |f: &str| format!("items[{i}].{f}");
        let mut push = |e: FieldError| errors.push(e.at(i));
        match (item.weekday, item.visit_date) {
            (Some(_), Some(_)) | (None, None) => {
                push(FieldError::new(field("weekday"), "give either weekday (recurring) or visit_date (dated)"));
            }
            (Some(d), None) if !(1..=7).contains(&d) => {
                push(FieldError::new(field("weekday"), "must be 1 (Monday) to 7 (Sunday)"));
            }
            (None, Some(d)) if d < p.valid_from || p.valid_to.is_some_and(|t| d > t) => {
                push(FieldError::new(field("visit_date"), "must be within the plan's validity"));
            }
            _ => {}
        }
        if let Some(w) = item.week_of_cycle {
            if item.weekday.is_none() {
                push(FieldError::new(field("week_of_cycle"), "only for recurring items"));
            } else if !(1..=cycle).contains(&w) {
                push(FieldError::new(field("week_of_cycle"), format!("must be between 1 and cycle_weeks ({cycle})")));
            }
        }
        if let (Some(s), Some(e)) = (item.window_start, item.window_end)
            && e <= s
        {
            push(FieldError::new(field("window_end"), "must be after window_start"));
        }
        if item.expected_duration_s.is_some_and(|d| !(1..=86_400).contains(&d)) {
            push(FieldError::new(field("expected_duration_s"), "must be between 1 and 86400 seconds"));
        }
    }
    errors
}

/// The days in `[from, to]` (and within the plan's validity) a recurring item falls on.
pub fn recurring_days(
    valid_from: NaiveDate,
    valid_to: Option<NaiveDate>,
    cycle_weeks: i16,
    weekday: i16,
    week_of_cycle: Option<i16>,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<NaiveDate> {
    let start = from.max(valid_from);
    let end = valid_to.map_or(to, |t| t.min(to));
    let cycle_start = valid_from - Duration::days(i64::from(valid_from.weekday().num_days_from_monday()));
    let cycle = i64::from(cycle_weeks.max(1));
    let mut out = Vec::new();
    let mut day = start;
    while day <= end {
        if day.weekday().number_from_monday() == u32::try_from(weekday).unwrap_or(0) {
            let week = (day - cycle_start).num_days().div_euclid(7).rem_euclid(cycle) + 1;
            if week_of_cycle.is_none_or(|w| i64::from(w) == week) {
                out.push(day);
            }
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn recurring_items_follow_the_cycle_from_the_week_of_valid_from() {
        // 2026-11-04 is a Wednesday; week 1 is Mon 2026-11-02 .. Sun 11-08.
        let every_monday = recurring_days(d("2026-11-04"), None, 1, 1, None, d("2026-11-01"), d("2026-11-30"));
        assert_eq!(every_monday, vec![d("2026-11-09"), d("2026-11-16"), d("2026-11-23"), d("2026-11-30")]);
        let second_friday_of_two =
            recurring_days(d("2026-11-04"), Some(d("2026-12-31")), 2, 5, Some(2), d("2026-11-01"), d("2026-12-31"));
        assert_eq!(second_friday_of_two, vec![d("2026-11-13"), d("2026-11-27"), d("2026-12-11"), d("2026-12-25")]);
        let ends = recurring_days(d("2026-11-04"), Some(d("2026-11-20")), 1, 4, None, d("2026-11-01"), d("2026-11-30"));
        assert_eq!(ends, vec![d("2026-11-05"), d("2026-11-12"), d("2026-11-19")]);
    }

    #[test]
    fn every_problem_is_named_by_item() {
        let item = |weekday, visit_date| ItemInput {
            outlet_id: 1,
            weekday,
            week_of_cycle: None,
            visit_date,
            window_start: None,
            window_end: None,
            expected_duration_s: None,
            seq: None,
        };
        let mut bad_window = item(Some(1), None);
        bad_window.window_start = NaiveTime::from_hms_opt(12, 0, 0);
        bad_window.window_end = NaiveTime::from_hms_opt(9, 0, 0);
        let mut bad_week = item(Some(2), None);
        bad_week.week_of_cycle = Some(3);
        let plan = PlanInput {
            rep_id: 1,
            name: " ".into(),
            cycle_weeks: Some(2),
            valid_from: d("2026-11-01"),
            valid_to: Some(d("2026-11-30")),
            items: vec![
                item(Some(1), None),
                item(None, None),
                item(Some(8), None),
                item(None, Some(d("2026-12-05"))),
                bad_window,
                bad_week,
            ],
        };
        let fields: Vec<String> = problems(&plan).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            vec![
                "name",
                "items[1].weekday",
                "items[2].weekday",
                "items[3].visit_date",
                "items[4].window_end",
                "items[5].week_of_cycle"
            ]
        );
    }
}

/// An outlet that a plan proposal may include: active on the day, with its tier's visit interval
/// and its last valid visit.
#[derive(Debug, Clone, PartialEq)]
pub struct DueCandidate {
    pub outlet_id: i64,
    pub lat: f64,
    pub lon: f64,
    /// Days between visits the tier asks for: cycle days / required visits per cycle.
    pub interval_days: f64,
    /// Local day of the outlet's last valid visit before the proposed day (by any rep).
    pub last_valid: Option<NaiveDate>,
    /// The outlet's last checklist answers found a problem (a display not OK, stock too low...).
    pub problem: bool,
}

/// The candidates of a proposal: each outlet (with its position) and its tier's interval, the
/// local day of its last valid visit among `visits`, and whether it is in `with_problem` (sorted
/// outlet ids whose last checklist answers found a problem).
pub fn due_candidates<'a>(
    outlets: impl IntoIterator<Item = (&'a crate::compliance::ScopeOutlet, f64, f64)>,
    visits: &[crate::compliance::OutletVisit],
    with_problem: &[i64],
) -> Vec<DueCandidate> {
    let mut last_valid: std::collections::HashMap<i64, NaiveDate> = std::collections::HashMap::new();
    for v in visits.iter().filter(|v| v.visit.is_valid()) {
        last_valid.entry(v.outlet_id).and_modify(|d| *d = (*d).max(v.rep_day)).or_insert(v.rep_day);
    }
    outlets
        .into_iter()
        .map(|(o, lat, lon)| DueCandidate {
            outlet_id: o.id,
            lat,
            lon,
            interval_days: f64::from(o.cycle_days) / f64::from(o.required_visits.max(1)),
            last_valid: last_valid.get(&o.id).copied(),
            problem: with_problem.binary_search(&o.id).is_ok(),
        })
        .collect()
}

/// One stop of a proposed day, in route order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ProposedStop {
    /// 1-based position in the route.
    pub seq: i32,
    pub outlet_id: i64,
    pub lat: f64,
    pub lon: f64,
    pub interval_days: f64,
    pub last_valid_visit: Option<NaiveDate>,
    /// Days since the last valid visit; `None` = never visited.
    pub days_since: Option<i64>,
    /// days since / interval (>= 1 is due); `None` = never visited (most due).
    pub overdue_ratio: Option<f64>,
    /// Great-circle metres from the previous stop (or the start).
    pub leg_m: f64,
    /// Proposed (first) because its last checklist answers found a problem.
    pub problem: bool,
}

/// Days since the last valid visit / the tier's interval on `date` (`None` = never visited).
fn overdue_ratio(c: &DueCandidate, date: NaiveDate) -> Option<f64> {
    c.last_valid.map(|d| (date - d).num_days() as f64 / c.interval_days.max(1e-9))
}

/// The candidates due on `date` (by interval, or for a problem found), with their overdue ratio
/// (`None` = never validly visited).
fn due(candidates: &[DueCandidate], date: NaiveDate) -> Vec<(&DueCandidate, Option<f64>)> {
    candidates
        .iter()
        .filter(|c| c.last_valid.is_none_or(|d| d < date))
        .map(|c| (c, overdue_ratio(c, date)))
        .filter(|(c, r)| c.problem || r.is_none_or(|r| r >= 1.0))
        .collect()
}

/// Most urgent first: a problem found, then never visited, then the highest overdue ratio, then
/// the smallest outlet id.
fn urgency(a: (&DueCandidate, Option<f64>), b: (&DueCandidate, Option<f64>)) -> std::cmp::Ordering {
    b.0.problem.cmp(&a.0.problem).then_with(|| match (a.1, b.1) {
        (None, None) => a.0.outlet_id.cmp(&b.0.outlet_id),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => y.total_cmp(&x).then(a.0.outlet_id.cmp(&b.0.outlet_id)),
    })
}

/// Why an outlet needs a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReminderReason {
    /// Its last checklist answers found a problem.
    Problem,
    /// No valid visit in the look-back.
    NeverVisited,
    /// Past its tier's interval.
    Overdue,
    /// Reaches its tier's interval within the horizon.
    Due,
}

/// An outlet that needs a visit, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Reminder {
    pub outlet_id: i64,
    pub reasons: Vec<ReminderReason>,
    pub interval_days: f64,
    pub last_valid_visit: Option<NaiveDate>,
    pub days_since: Option<i64>,
    pub overdue_ratio: Option<f64>,
    /// The day it reaches its interval (`None` = never visited: now).
    pub due_on: Option<NaiveDate>,
}

/// The outlets that need a visit on `date` or within `horizon_days` after: a problem found,
/// never visited, past their tier's interval (overdue) or reaching it within the horizon (due);
/// most urgent first (as [`propose`] ranks them).
pub fn reminders(candidates: &[DueCandidate], date: NaiveDate, horizon_days: i64) -> Vec<Reminder> {
    let mut out: Vec<(&DueCandidate, Option<f64>)> = candidates
        .iter()
        .map(|c| (c, overdue_ratio(c, date)))
        .filter(|(c, r)| {
            let within = |r: f64| r * c.interval_days + horizon_days as f64 >= c.interval_days;
            c.problem || r.is_none_or(within)
        })
        .collect();
    out.sort_by(|a, b| urgency(*a, *b));
    out.dedup_by_key(|(c, _)| c.outlet_id);
    out.into_iter()
        .map(|(c, r)| {
            let mut reasons = Vec::new();
            if c.problem {
                reasons.push(ReminderReason::Problem);
            }
            match r {
                None => reasons.push(ReminderReason::NeverVisited),
                Some(r) if r > 1.0 => reasons.push(ReminderReason::Overdue),
                Some(r) if r * c.interval_days + horizon_days as f64 >= c.interval_days => {
                    reasons.push(ReminderReason::Due);
                }
                Some(_) => {}
            }
            Reminder {
                outlet_id: c.outlet_id,
                reasons,
                interval_days: c.interval_days,
                last_valid_visit: c.last_valid,
                days_since: c.last_valid.map(|d| (date - d).num_days()),
                overdue_ratio: r,
                due_on: c.last_valid.map(|d| d + Duration::days(c.interval_days.ceil() as i64)),
            }
        })
        .collect()
}

/// How many of the candidates are due on `date` (as [`propose`] judges it).
pub fn due_count(candidates: &[DueCandidate], date: NaiveDate) -> usize {
    due(candidates, date).len()
}

/// A proposal for one rep-day: outlets due by their tier's policy or whose last checklist
/// answers found a problem, the most urgent first (a problem found, then never visited, then days
/// since the last valid visit / the tier's interval, highest first; then outlet id), at most `max` of them, ordered as a nearest-neighbour route from `start`
/// (else from the most overdue outlet). An outlet is due when it was never validly visited or
/// its last valid visit is at least one interval before `date`.
pub fn propose(
    candidates: &[DueCandidate],
    date: NaiveDate,
    start: Option<(f64, f64)>,
    max: usize,
) -> Vec<ProposedStop> {
    let mut due = due(candidates, date);
    due.sort_by(|a, b| urgency(*a, *b));
    due.dedup_by_key(|(c, _)| c.outlet_id);
    due.truncate(max);
    let mut left = due;
    let mut at = start.or_else(|| left.first().map(|(c, _)| (c.lat, c.lon)));
    let mut out = Vec::with_capacity(left.len());
    while let Some(here) = at {
        let Some((k, leg)) = left
            .iter()
            .enumerate()
            .map(|(k, (c, _))| (k, crate::geo::haversine_m(here.0, here.1, c.lat, c.lon)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(left[a.0].0.outlet_id.cmp(&left[b.0].0.outlet_id)))
        else {
            break;
        };
        let (c, r) = left.remove(k);
        out.push(ProposedStop {
            seq: out.len() as i32 + 1,
            outlet_id: c.outlet_id,
            lat: c.lat,
            lon: c.lon,
            interval_days: c.interval_days,
            last_valid_visit: c.last_valid,
            days_since: c.last_valid.map(|d| (date - d).num_days()),
            overdue_ratio: r,
            leg_m: leg,
            problem: c.problem,
        });
        at = Some((c.lat, c.lon));
    }
    out
}

#[cfg(test)]
mod proposal_tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).expect("date")
    }

    /// An outlet `east_m` metres east of (39.9, 116.4).
    fn outlet(id: i64, east_m: f64, interval_days: f64, last_valid: Option<NaiveDate>) -> DueCandidate {
        DueCandidate {
            outlet_id: id,
            lat: 39.9,
            lon: 116.4 + east_m / 85_300.0,
            interval_days,
            last_valid,
            problem: false,
        }
    }

    #[test]
    fn due_outlets_most_overdue_first_then_routed_nearest_neighbour() {
        let date = day(30);
        let c = [
            outlet(1, 3000.0, 7.0, Some(day(27))), // 3 of 7 days: not due
            outlet(2, 1000.0, 7.0, Some(day(16))), // 14 / 7 = 2
            outlet(3, 2000.0, 7.0, None),          // never
            outlet(4, 500.0, 28.0, Some(day(1))),  // 29 / 28
            outlet(5, 4000.0, 7.0, Some(day(23))), // exactly one interval: due, ratio 1
        ];
        let route = propose(&c, date, Some((39.9, 116.4)), 10);
        let ids: Vec<i64> = route.iter().map(|s| s.outlet_id).collect();
        assert_eq!(ids, [4, 2, 3, 5], "nearest first from the start, outlet 1 not due");
        assert_eq!(route[1].overdue_ratio, Some(2.0));
        assert_eq!(route[2].overdue_ratio, None);
        assert!((route[0].leg_m - 500.0).abs() < 5.0 && (route[1].leg_m - 500.0).abs() < 5.0, "{route:?}");
        // Only the three most overdue (never visited, 2, 29/28), routed from outlet 3 without a start.
        let top: Vec<i64> = propose(&c, date, None, 3).iter().map(|s| s.outlet_id).collect();
        assert_eq!(top, [3, 2, 4]);
        assert!(propose(&[], date, None, 3).is_empty());
        assert_eq!(due_count(&c, date), 4);
        // A problem found at outlet 1 (visited 3 days ago) puts it first.
        let mut with_problem = c.clone();
        with_problem[0].problem = true;
        let top: Vec<i64> = propose(&with_problem, date, None, 2).iter().map(|s| s.outlet_id).collect();
        assert_eq!(top, [1, 3]);
    }

    #[test]
    fn reminders_say_why_an_outlet_needs_a_visit() {
        let date = day(30);
        let mut c = vec![
            outlet(1, 0.0, 7.0, Some(day(27))), // 3 of 7 days: not yet
            outlet(2, 0.0, 7.0, Some(day(16))), // overdue
            outlet(3, 0.0, 7.0, None),          // never visited
            outlet(4, 0.0, 7.0, Some(day(25))), // due in 2 days
            outlet(5, 0.0, 7.0, Some(day(23))), // exactly one interval: due today
        ];
        c[0].problem = true;
        let r = reminders(&c, date, 0);
        let got: Vec<(i64, Vec<ReminderReason>)> = r.iter().map(|r| (r.outlet_id, r.reasons.clone())).collect();
        let (problem, never, overdue, due) =
            (ReminderReason::Problem, ReminderReason::NeverVisited, ReminderReason::Overdue, ReminderReason::Due);
        assert_eq!(got, [(1, vec![problem]), (3, vec![never]), (2, vec![overdue]), (5, vec![due])]);
        assert_eq!(r[2].due_on, Some(day(23)));
        let ahead: Vec<i64> = reminders(&c, date, 2).iter().map(|r| r.outlet_id).collect();
        assert_eq!(ahead, [1, 3, 2, 5, 4], "outlet 4 reaches its interval within two days");
    }
}

#[cfg(test)]
mod range_tests {
    use super::*;
    use chrono::{FixedOffset, TimeZone as _};
    use proptest::prelude::*;

    /// Any instant chrono holds, as seconds from the epoch.
    fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
        (DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(), 0u32..1_000_000_000)
            .prop_filter_map("an instant", |(s, ns)| DateTime::from_timestamp(s, ns))
    }

    #[test]
    fn the_ends_of_the_range_are_exact() {
        let at = |y, mo, d, h, mi, s| Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().expect("instant");
        assert!(instant_in_range(at(2000, 1, 1, 0, 0, 0)) && instant_in_range(at(2100, 12, 31, 23, 59, 59)));
        assert!(!instant_in_range(at(1999, 12, 31, 23, 59, 59)) && !instant_in_range(at(2101, 1, 1, 0, 0, 0)));
        assert!(period_end_in_range(at(2101, 1, 1, 0, 0, 0)) && !period_end_in_range(at(2101, 1, 1, 0, 0, 1)));
        assert!(!period_end_in_range(at(2000, 1, 1, 0, 0, 0)) && period_end_in_range(at(2000, 1, 1, 0, 0, 1)));
        assert!(!instant_in_range(DateTime::<Utc>::MAX_UTC) && !period_end_in_range(DateTime::<Utc>::MIN_UTC));
    }

    proptest! {
        /// What the checks let through leaves room for the arithmetic done on it: a visit's slack,
        /// a day either way, any time zone's local time. Nothing panics at chrono's ends.
        #[test]
        fn an_instant_in_range_has_room_for_slack_days_and_time_zones(t in any_instant()) {
            let end_ok = period_end_in_range(t);
            if instant_in_range(t) || end_ok {
                let slack = Duration::seconds(crate::visit::SAME_VISIT_SLACK_S);
                prop_assert!(t.checked_add_signed(slack).is_some() && t.checked_sub_signed(slack).is_some());
                prop_assert!(t.checked_add_signed(Duration::days(1)).is_some());
                prop_assert!(t.checked_sub_signed(Duration::days(1)).is_some());
                for hours in [-14, 14] {
                    let zone = FixedOffset::east_opt(hours * 3600).expect("offset");
                    prop_assert!(t.naive_utc().checked_add_offset(zone).is_some());
                }
            }
            prop_assert_eq!(end_ok, t.checked_sub_signed(Duration::nanoseconds(1)).is_some_and(instant_in_range));
        }
    }
}
