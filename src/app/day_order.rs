//! Ordering one day of a plan by the solver: the plan editor sends a day's stops and gets them
//! back in the route the beat generator would drive (same model: the rep's start, each stop's
//! window within the working hours, least travel), with the stops that do not fit named.

use super::beats::{VISIT_MARGIN_S, attribute_window, centroid, hhmm_field, homes, scoped_rep, working_hours};
use super::{Caller, Error};
use crate::db;
use crate::db::compliance::SubtreeOutlet;
use crate::domain::validation::FieldError;
use chrono::Utc;
use fieldvisit_beats as beats;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};

/// Most stops of one day.
pub const MAX_DAY_STOPS: usize = 200;
/// Solver time when the caller does not say, seconds.
const DEFAULT_DAY_SECONDS: i64 = 2;
/// Longest solver time a caller may ask for one day, seconds.
const MAX_DAY_SECONDS: i64 = 10;

/// A day's stops to order.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayOrderAsk {
    /// The rep whose day it is (the day starts at their start point; the stops must be outlets of
    /// their territory).
    pub rep_id: i64,
    /// The stops, in the order the editor has them (1 to 200, each outlet once).
    pub stops: Vec<DayStopAsk>,
    /// Start of the working day, `HH:MM`; default the org's working hours, else 09:00.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub day_start: Option<String>,
    /// End of the working day, `HH:MM`; default the org's working hours, else 18:00.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub day_end: Option<String>,
    /// Most seconds the solver may run, 1-10 (default 2).
    #[schema(minimum = 1, maximum = 10)]
    pub max_seconds: Option<i64>,
}

/// One stop as the editor has it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayStopAsk {
    pub outlet_id: i64,
    /// The visit's window, `HH:MM`; default the outlet's own window, else the working hours.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub window_start: Option<String>,
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub window_end: Option<String>,
    /// Expected duration of the visit, seconds (60-86,400); default the tier's minimum dwell and
    /// a margin, as beat proposals use.
    pub expected_duration_s: Option<i32>,
}

/// A stop in the solver's order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderedStop {
    pub outlet_id: i64,
    /// Position in the day's route, from 1.
    pub seq: i32,
    /// Planned start of the visit, `HH:MM`.
    pub arrival: String,
    /// Metres from the previous stop (or the start): straight line × 1.3.
    pub leg_m: f64,
}

/// A stop that fits nowhere in the day.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UnplacedStop {
    pub outlet_id: i64,
    pub reason: String,
}

/// The day in the solver's order; nothing is stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DayOrder {
    /// The stops that fit, in route order.
    pub stops: Vec<OrderedStop>,
    /// The stops that do not fit the day (in the order given), with the reason.
    pub unplaced: Vec<UnplacedStop>,
    /// Travel of the new order and of the order given, metres.
    pub travel_m: f64,
    pub given_travel_m: f64,
}

/// An ask checked: the hours and each stop's window and duration parsed.
#[derive(Debug, Clone)]
pub struct CheckedDay {
    pub rep_id: i64,
    pub stops: Vec<CheckedStop>,
    pub hours: (Option<u32>, Option<u32>),
    pub max_seconds: u32,
}

#[derive(Debug, Clone)]
pub struct CheckedStop {
    pub outlet_id: i64,
    pub window: Option<(u32, u32)>,
    pub duration_s: Option<u32>,
}

/// Checks an ask (pure): every problem named by field, stops by index.
pub fn check(ask: &DayOrderAsk) -> Result<CheckedDay, Error> {
    let mut errors = Vec::new();
    if ask.stops.is_empty() || ask.stops.len() > MAX_DAY_STOPS {
        errors.push(FieldError::new("stops", format!("must hold 1 to {MAX_DAY_STOPS} stops")));
    }
    let start = hhmm_field(&mut errors, "day_start", ask.day_start.as_deref());
    let end = hhmm_field(&mut errors, "day_end", ask.day_end.as_deref());
    let mut stops = Vec::with_capacity(ask.stops.len());
    let mut seen = HashSet::new();
    let mut stop_errors = Vec::new();
    for (i, s) in ask.stops.iter().enumerate() {
        let ws = hhmm_field(&mut errors, format!("stops[{i}].window_start"), s.window_start.as_deref());
        let we = hhmm_field(&mut errors, format!("stops[{i}].window_end"), s.window_end.as_deref());
        let window = match (ws, we) {
            (Some(a), Some(b)) if b > a => Some((a, b)),
            (Some(_), Some(_)) => {
                stop_errors.push(FieldError::new(format!("stops[{i}].window_end"), "must be after window_start").at(i));
                None
            }
            _ => None,
        };
        if !seen.insert(s.outlet_id) {
            stop_errors.push(FieldError::new(format!("stops[{i}].outlet_id"), "is already a stop of this day").at(i));
        }
        let duration_s = match s.expected_duration_s {
            Some(d) if !(60..=86_400).contains(&d) => {
                stop_errors.push(
                    FieldError::new(format!("stops[{i}].expected_duration_s"), "must be between 60 and 86400 seconds")
                        .at(i),
                );
                None
            }
            d => d.map(|d| d as u32),
        };
        stops.push(CheckedStop { outlet_id: s.outlet_id, window, duration_s });
    }
    errors.extend(stop_errors);
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        errors.push(FieldError::new("day_end", "must be after day_start"));
    }
    let secs = ask.max_seconds.unwrap_or(DEFAULT_DAY_SECONDS);
    if !(1..=MAX_DAY_SECONDS).contains(&secs) {
        errors.push(FieldError::new("max_seconds", format!("must be between 1 and {MAX_DAY_SECONDS}")));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    Ok(CheckedDay { rep_id: ask.rep_id, stops, hours: (start, end), max_seconds: secs as u32 })
}

/// What the solver needs for one day: the rep and the stops as solver outlets.
pub struct PreparedDay {
    rep: beats::Rep,
    stops: Vec<beats::Outlet>,
    max_seconds: u32,
}

/// Reads the rep (in the caller's scope), the stops' places (outlets of the rep's territory: a
/// stop elsewhere is a 422 on its `outlet_id`), windows, durations and the working hours.
pub async fn prepare(db: &PgPool, caller: &Caller<'_>, ask: &CheckedDay) -> Result<PreparedDay, Error> {
    let org_id = caller.org_id;
    let rep = scoped_rep(db, caller, ask.rep_id).await?;
    let today = db::plans::local_date(db, org_id, Utc::now()).await?;
    let outlets: Vec<SubtreeOutlet> = db::compliance::subtree_outlets(db, org_id, rep.territory_id, today).await?;
    let by_id: HashMap<i64, &SubtreeOutlet> = outlets.iter().map(|o| (o.outlet.id, o)).collect();
    let mut errors = Vec::new();
    for (i, s) in ask.stops.iter().enumerate() {
        if !by_id.contains_key(&s.outlet_id) {
            errors.push(
                FieldError::new(format!("stops[{i}].outlet_id"), "is not an outlet of the rep's territory").at(i),
            );
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let (weekdays, day_start_s, day_end_s) = working_hours(db, org_id, ask.hours).await?;
    let ids: Vec<i64> = ask.stops.iter().map(|s| s.outlet_id).collect();
    let windows: HashMap<i64, Option<(u32, u32)>> = db::beats::outlet_windows(db, org_id, &ids)
        .await?
        .into_iter()
        .map(|(id, s, e)| (id, attribute_window(s.as_deref(), e.as_deref())))
        .collect();
    let all: Vec<&SubtreeOutlet> = outlets.iter().collect();
    let start = homes(db, caller, &[rep.id])
        .await?
        .get(&rep.id)
        .copied()
        .or_else(|| centroid(&all))
        .unwrap_or(beats::Point { lat: 0.0, lon: 0.0 });
    let stops = ask
        .stops
        .iter()
        .filter_map(|s| {
            let o = by_id.get(&s.outlet_id)?;
            Some(beats::Outlet {
                id: o.outlet.id,
                label: o.code.clone(),
                point: beats::Point { lat: o.lat, lon: o.lon },
                tier: o.outlet.tier.clone(),
                visits: 1,
                window: s.window.or_else(|| windows.get(&o.outlet.id).copied().flatten()),
                duration_s: s.duration_s.unwrap_or((o.outlet.min_dwell_s + VISIT_MARGIN_S).clamp(60, 86_400) as u32),
                fixed_rep: None,
            })
        })
        .collect();
    Ok(PreparedDay {
        rep: beats::Rep { id: rep.id, start, day_start_s, day_end_s, weekdays },
        stops,
        max_seconds: ask.max_seconds,
    })
}

/// Orders the day (CPU-bound for up to `max_seconds`: run it on a blocking thread).
pub fn solve(p: &PreparedDay) -> DayOrder {
    let out = beats::order_day(&p.rep, &p.stops, &beats::StraightLine::default(), p.max_seconds as usize);
    DayOrder {
        stops: out
            .stops
            .into_iter()
            .map(|s| OrderedStop {
                outlet_id: s.outlet_id,
                seq: s.seq as i32,
                arrival: beats::hhmm(s.arrival_s),
                leg_m: s.leg_m.round(),
            })
            .collect(),
        unplaced: out.unplaced.into_iter().map(|(outlet_id, reason)| UnplacedStop { outlet_id, reason }).collect(),
        travel_m: out.travel_m.round(),
        given_travel_m: out.given_travel_m.round(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(outlet_id: i64) -> DayStopAsk {
        DayStopAsk { outlet_id, window_start: None, window_end: None, expected_duration_s: None }
    }

    #[test]
    fn every_bad_field_is_named_by_its_stop() {
        let mut bad = stop(2);
        bad.window_start = Some("11:00".into());
        bad.window_end = Some("10:00".into());
        bad.expected_duration_s = Some(10);
        let ask = DayOrderAsk {
            rep_id: 1,
            stops: vec![stop(1), bad, stop(1)],
            day_start: Some("25:00".into()),
            day_end: None,
            max_seconds: Some(11),
        };
        let Err(Error::Invalid(errors)) = check(&ask) else { panic!("accepted") };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "day_start",
                "stops[1].window_end",
                "stops[1].expected_duration_s",
                "stops[2].outlet_id",
                "max_seconds"
            ]
        );
        let empty = DayOrderAsk { rep_id: 1, stops: vec![], day_start: None, day_end: None, max_seconds: None };
        assert!(matches!(check(&empty), Err(Error::Invalid(e)) if e[0].field == "stops"));
    }
}
