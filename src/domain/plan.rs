//! Beat plans: validation of a plan and its items, and the calendar of recurring items.
//!
//! A recurring item names an ISO weekday (1 = Monday) and optionally a week of the plan's cycle
//! (`1..=cycle_weeks`; none = every week). Week 1 of the cycle is the week (Monday to Sunday) that
//! holds the plan's `valid_from`; the cycle repeats every `cycle_weeks` weeks from there.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime};
use serde::Deserialize;

use crate::domain::validation::FieldError;

/// Most items in one plan.
pub const MAX_ITEMS: usize = 2_000;
/// Longest name.
const MAX_NAME_CHARS: usize = 200;

/// One item of a plan as a client sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    pub outlet_id: i64,
    /// ISO weekday 1 (Monday) .. 7 (Sunday): a recurring item.
    pub weekday: Option<i16>,
    /// Week of the cycle, `1..=cycle_weeks`; absent = every week (recurring items only).
    pub week_of_cycle: Option<i16>,
    /// The day of a dated item (instead of `weekday`).
    pub visit_date: Option<NaiveDate>,
    /// Org-local time window of the visit (`HH:MM` or `HH:MM:SS`).
    pub window_start: Option<NaiveTime>,
    pub window_end: Option<NaiveTime>,
    /// Expected duration of the visit, seconds.
    pub expected_duration_s: Option<i32>,
    /// Position in the day's route; default: the item's position in the list.
    pub seq: Option<i32>,
}

/// A plan as a client sends it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    pub rep_id: i64,
    pub name: String,
    /// Length of the recurrence cycle in weeks, 1..=12 (default 1).
    pub cycle_weeks: Option<i16>,
    pub valid_from: NaiveDate,
    /// Last day (inclusive); absent = open-ended.
    pub valid_to: Option<NaiveDate>,
    pub items: Vec<ItemInput>,
}

/// Dates a plan (or a request about plans and visits) may name: 2000-01-01 to 2100-12-31.
pub fn date_in_range(d: NaiveDate) -> bool {
    (NaiveDate::from_ymd_opt(2000, 1, 1)..=NaiveDate::from_ymd_opt(2100, 12, 31)).contains(&Some(d))
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
