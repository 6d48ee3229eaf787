//! The monthly assessment bulletin: reps and territories ranked by a figure, with the change from
//! the month before.

use crate::validation::FieldError;
use chrono::{Datelike, Months, NaiveDate};
use serde::Serialize;

/// One figure of one rep or territory: this month, last month, the change in percentage points
/// and the rank (1 = best; equal figures share a rank; no figure, no rank).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Standing {
    pub value: Option<f64>,
    pub previous: Option<f64>,
    pub change_pp: Option<f64>,
    pub rank: Option<usize>,
}

/// Standings of `current[i]` against `previous[i]`, ranked highest first (competition ranking:
/// 1, 2, 2, 4).
pub fn standings(current: &[Option<f64>], previous: &[Option<f64>]) -> Vec<Standing> {
    current
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let previous = previous.get(i).copied().flatten();
            let rank = value.map(|v| 1 + current.iter().flatten().filter(|other| **other > v).count());
            Standing { value: *value, previous, change_pp: value.zip(previous).map(|(v, p)| v - p), rank }
        })
        .collect()
}

/// The first and last day of the month starting on `first`.
pub fn month_days(first: NaiveDate) -> (NaiveDate, NaiveDate) {
    let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
    (first, next.pred_opt().unwrap_or(first))
}

/// The first day of the month before the one starting on `first`.
pub fn previous_month(first: NaiveDate) -> NaiveDate {
    first.checked_sub_months(Months::new(1)).unwrap_or(first)
}

/// The first day of the month holding `day`.
pub fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// Parses `YYYY-MM` (2000-01 to 2100-12) to the month's first day.
pub fn parse_month(s: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
        .ok()
        .filter(|d| (2000..=2100).contains(&d.year()) && s.len() == 7)
        .ok_or_else(|| FieldError::new("month", "must be a month YYYY-MM from 2000-01 to 2100-12"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_figures_share_a_rank_and_missing_ones_have_none() {
        let s = standings(&[Some(50.0), Some(80.0), None, Some(80.0)], &[Some(60.0), None, Some(10.0), Some(70.0)]);
        let ranks: Vec<Option<usize>> = s.iter().map(|x| x.rank).collect();
        assert_eq!(ranks, vec![Some(3), Some(1), None, Some(1)]);
        assert_eq!(s[0].change_pp, Some(-10.0));
        assert_eq!(s[1].change_pp, None);
        assert_eq!(s[3].change_pp, Some(10.0));
    }

    #[test]
    fn months() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert_eq!(month_days(d("2024-02-01")), (d("2024-02-01"), d("2024-02-29")));
        assert_eq!(previous_month(d("2026-01-01")), d("2025-12-01"));
        assert_eq!(month_of(d("2026-11-17")), d("2026-11-01"));
        assert_eq!(parse_month("2026-11"), Ok(d("2026-11-01")));
        assert!(parse_month("2026-13").is_err());
        assert!(parse_month("2026-1").is_err());
    }
}
