//! Multi-week beat proposals: the outlets of a rep's (or a team's) territory, their tiers'
//! frequencies and time windows, handed to the `fieldvisit-beats` solver; the answer is plan
//! items `POST /plans` takes, each with why it landed on its day. Nothing is stored.

use super::{Caller, Error};
use crate::db;
use crate::db::compliance::SubtreeOutlet;
use crate::domain::access::Role;
use crate::domain::compliance::required_in;
use crate::domain::outlet::OutletStatus;
use crate::domain::plan;
use crate::domain::validation::FieldError;
use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Timelike, Utc, Weekday};
use fieldvisit_beats as beats;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;

/// Most outlets one proposal may plan (the solver's time grows with them).
pub const MAX_OUTLETS: usize = 10_000;
/// Longest solver time a caller may ask for, seconds.
pub const MAX_SOLVE_SECONDS: i64 = 60;
/// Solver time when the caller does not say, seconds.
pub const DEFAULT_SOLVE_SECONDS: i64 = 10;
/// Added to a tier's minimum dwell for a visit's expected duration: arriving, greeting, leaving.
pub const VISIT_MARGIN_S: i32 = 600;

/// What to propose: for one rep (`rep_id`) or a team (`territory_id`: the active reps of its
/// subtree), over a cycle.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BeatAsk {
    /// The rep whose beat to propose (the outlets of the rep's territory); or give `territory_id`.
    pub rep_id: Option<i64>,
    /// The team's territory: its subtree's outlets, spread over the active reps of its subtree.
    pub territory_id: Option<i64>,
    /// Cycle length in weeks, 1-12 (default 4).
    #[schema(minimum = 1, maximum = 12)]
    pub cycle_weeks: Option<i64>,
    /// First day of the cycle; week 1 is the week (Monday to Sunday) holding it. Default: next
    /// Monday (org-local).
    pub valid_from: Option<NaiveDate>,
    /// Start of the working day, `HH:MM`; default the org's working hours (`/settings`
    /// `pings.working_hours`: the earliest start), else 09:00.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub day_start: Option<String>,
    /// End of the working day, `HH:MM`; default the org's working hours (the latest end), else 18:00.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub day_end: Option<String>,
    /// Most seconds the solver may run, 1-60 (default 10).
    #[schema(minimum = 1, maximum = 60)]
    pub max_seconds: Option<i64>,
}

/// The item as `POST /plans` takes it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanItem {
    pub outlet_id: i64,
    /// ISO weekday, 1 (Monday) .. 7.
    pub weekday: i16,
    pub week_of_cycle: i16,
    /// The visit's window (`HH:MM`): the outlet's, else the working hours.
    pub window_start: String,
    pub window_end: String,
    /// Position in the day's route, from 1.
    pub seq: i32,
    pub expected_duration_s: i32,
}

/// One proposed visit: a recurring `POST /plans` item, and when and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BeatItem {
    #[serde(flatten)]
    pub item: PlanItem,
    /// The day of the first cycle this visit falls on.
    pub day: NaiveDate,
    /// Planned start of the visit (`HH:MM`).
    pub arrival: String,
    /// Why the visit landed on its day (tier frequency, its part of the cycle, stops near it).
    pub why: String,
}

/// A ready `POST /plans` body: post it to accept the rep's proposal.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProposedPlan {
    pub rep_id: i64,
    pub name: String,
    pub cycle_weeks: i16,
    pub valid_from: NaiveDate,
    pub items: Vec<PlanItem>,
}

/// The proposal for one rep.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RepBeat {
    pub rep_id: i64,
    pub name: String,
    /// By day, then route order.
    pub items: Vec<BeatItem>,
    /// The same items without `day`, `arrival` and `why`, as a `POST /plans` body.
    pub plan: ProposedPlan,
    /// Visits required of the outlets given to this rep, and how many were placed.
    pub required_visits: u32,
    pub placed_visits: u32,
    /// Travel of the rep's days, metres (start to last stop; straight line × 1.3).
    pub travel_m: f64,
    /// Travel of the baseline for the same outlets (round-robin days, nearest-neighbour order).
    pub baseline_travel_m: f64,
}

/// Visits of an outlet that could not be placed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UnplacedVisits {
    pub outlet_id: i64,
    pub visits: u32,
    pub reason: String,
}

/// A multi-week beat proposal; nothing is stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BeatProposal {
    pub cycle_weeks: i16,
    pub valid_from: NaiveDate,
    pub day_start: String,
    pub day_end: String,
    pub reps: Vec<RepBeat>,
    /// Visits the outlets' tiers require in the cycle, and how many were placed.
    pub required_visits: u32,
    pub placed_visits: u32,
    pub unplaced: Vec<UnplacedVisits>,
    pub travel_m: f64,
    pub baseline_travel_m: f64,
    /// Time the solver took, milliseconds.
    pub solve_ms: u64,
}

/// The ask, checked: every problem named by field.
#[derive(Debug, Clone)]
pub struct CheckedAsk {
    pub subject: Subject,
    pub cycle_weeks: u8,
    pub valid_from: Option<NaiveDate>,
    pub hours: (Option<u32>, Option<u32>),
    pub max_seconds: u32,
}

/// Whose beat: one rep or a team's territory.
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    Rep(i64),
    Territory(i64),
}

/// Seconds after midnight of an `HH:MM` text.
pub(crate) fn parse_hhmm(s: &str) -> Option<u32> {
    let t = NaiveTime::parse_from_str(s, "%H:%M").ok()?;
    Some(t.num_seconds_from_midnight())
}

/// An optional `HH:MM` field as seconds after midnight; a bad one is named in `errors`.
pub(crate) fn hhmm_field(errors: &mut Vec<FieldError>, field: impl Into<String>, v: Option<&str>) -> Option<u32> {
    let parsed = parse_hhmm(v?);
    if parsed.is_none() {
        errors.push(FieldError::new(field, "must be a time HH:MM"));
    }
    parsed
}

/// Checks an ask (pure): exactly one of `rep_id` / `territory_id`, the ranges, `HH:MM` hours with
/// the end after the start.
pub fn check(ask: &BeatAsk) -> Result<CheckedAsk, Error> {
    let mut errors = Vec::new();
    let subject = match (ask.rep_id, ask.territory_id) {
        (Some(r), None) => Some(Subject::Rep(r)),
        (None, Some(t)) => Some(Subject::Territory(t)),
        _ => {
            errors.push(FieldError::new("rep_id", "give either rep_id (one rep) or territory_id (a team)"));
            None
        }
    };
    let cycle = ask.cycle_weeks.unwrap_or(4);
    if !(1..=12).contains(&cycle) {
        errors.push(FieldError::new("cycle_weeks", "must be between 1 and 12"));
    }
    if ask.valid_from.is_some_and(|d| !plan::date_in_range(d)) {
        errors.push(FieldError::new("valid_from", "must be a date from 2000-01-01 to 2100-12-31"));
    }
    let start = hhmm_field(&mut errors, "day_start", ask.day_start.as_deref());
    let end = hhmm_field(&mut errors, "day_end", ask.day_end.as_deref());
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        errors.push(FieldError::new("day_end", "must be after day_start"));
    }
    let secs = ask.max_seconds.unwrap_or(DEFAULT_SOLVE_SECONDS);
    if !(1..=MAX_SOLVE_SECONDS).contains(&secs) {
        errors.push(FieldError::new("max_seconds", format!("must be between 1 and {MAX_SOLVE_SECONDS}")));
    }
    match subject {
        Some(subject) if errors.is_empty() => Ok(CheckedAsk {
            subject,
            cycle_weeks: cycle as u8,
            valid_from: ask.valid_from,
            hours: (start, end),
            max_seconds: secs as u32,
        }),
        _ => Err(Error::Invalid(errors)),
    }
}

/// The working weekdays and the day's hours (earliest start, latest end, seconds) of the org's
/// `pings.working_hours` (`{"mon": [["09:00", "18:00"]], ...}`); `None` when it has none.
pub fn org_hours(pings: &Value) -> Option<(Vec<Weekday>, u32, u32)> {
    let hours = pings.get("working_hours")?.as_object()?;
    let keys = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let days = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
    let (mut weekdays, mut lo, mut hi) = (Vec::new(), u32::MAX, 0);
    for (key, day) in keys.iter().zip(days) {
        let spans: Vec<(u32, u32)> = hours
            .get(*key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|span| {
                let s = parse_hhmm(span.get(0)?.as_str()?)?;
                let e = span.get(1)?.as_str()?;
                let e = if e == "24:00" { 86_400 } else { parse_hhmm(e)? };
                Some((s, e))
            })
            .collect();
        if !spans.is_empty() {
            weekdays.push(day);
            lo = lo.min(spans.iter().map(|s| s.0).min().unwrap_or(lo));
            hi = hi.max(spans.iter().map(|s| s.1).max().unwrap_or(hi));
        }
    }
    (!weekdays.is_empty() && hi > lo).then_some((weekdays, lo, hi))
}

/// An outlet's visits in a cycle of `cycle_weeks`: its tier's required visits pro rata, rounded up.
pub fn visits_in_cycle(required_visits: i32, cycle_days: i32, cycle_weeks: u8) -> u32 {
    let v = required_in(required_visits, cycle_days, i64::from(cycle_weeks) * 7);
    (v - 1e-9).ceil().max(0.0) as u32
}

/// An outlet's window from its attributes (`HH:MM` each; a missing side is the day's edge; an
/// unreadable or empty one is ignored).
pub fn attribute_window(start: Option<&str>, end: Option<&str>) -> Option<(u32, u32)> {
    let s = match start {
        Some(s) => Some(parse_hhmm(s)?),
        None => None,
    };
    let e = match end {
        Some(e) => Some(parse_hhmm(e)?),
        None => None,
    };
    let (s, e) = (s.unwrap_or(0), e.unwrap_or(86_399));
    (e > s).then_some((s, e))
}

/// The mean position of outlets (the territory's centroid as its outlets give it).
pub(crate) fn centroid(outlets: &[&SubtreeOutlet]) -> Option<beats::Point> {
    if outlets.is_empty() {
        return None;
    }
    let n = outlets.len() as f64;
    let (lat, lon) = outlets.iter().fold((0.0, 0.0), |(a, b), o| (a + o.lat, b + o.lon));
    Some(beats::Point { lat: lat / n, lon: lon / n })
}

/// A rep of the proposal: id, name, and the child of the team's root it lies under (for its
/// start point when its home is not used).
struct TeamRep {
    id: i64,
    name: String,
    child_id: Option<i64>,
}

/// Everything the solver needs, read from the database; the solve itself is [`solve`].
pub struct Prepared {
    request: beats::Request,
    names: HashMap<i64, String>,
    hours: (u32, u32),
}

/// Reads what a proposal needs: the rep (or the team's reps, in the caller's scope), the active
/// outlets of the territory, tier policies, windows, working hours. 422 past [`MAX_OUTLETS`].
pub async fn prepare(db: &PgPool, caller: &Caller<'_>, ask: &CheckedAsk) -> Result<Prepared, Error> {
    let org_id = caller.org_id;
    let (root, team): (Option<i64>, Vec<TeamRep>) = match ask.subject {
        Subject::Rep(id) => {
            let rep = scoped_rep(db, caller, id).await?;
            (rep.territory_id, vec![TeamRep { id: rep.id, name: rep.name, child_id: None }])
        }
        Subject::Territory(id) => {
            let t = db::territories::get(db, org_id, id).await?.ok_or_else(|| Error::not_found("territory", id))?;
            if !caller.may_reach(Some(&t.path)) {
                return Err(Error::Forbidden("this territory is outside your territory".into()));
            }
            let reps = db::compliance::subtree_reps(db, org_id, id).await?;
            if reps.is_empty() {
                return Err(Error::field("territory_id", "the territory's subtree has no active rep"));
            }
            (Some(id), reps.into_iter().map(|r| TeamRep { id: r.id, name: r.name, child_id: r.child_id }).collect())
        }
    };
    let today = db::plans::local_date(db, org_id, Utc::now()).await?;
    let valid_from = ask.valid_from.unwrap_or_else(|| {
        // Next Monday (a week from today when today is one).
        today + Duration::days(7 - i64::from(today.weekday().num_days_from_monday()))
    });
    let outlets: Vec<SubtreeOutlet> = db::compliance::subtree_outlets(db, org_id, root, valid_from)
        .await?
        .into_iter()
        .filter(|o| o.status == OutletStatus::Active)
        .collect();
    if outlets.len() > MAX_OUTLETS {
        return Err(Error::field(
            if root.is_some() && matches!(ask.subject, Subject::Territory(_)) { "territory_id" } else { "rep_id" },
            format!("the territory has {} active outlets; a proposal plans at most {MAX_OUTLETS}", outlets.len()),
        ));
    }
    let (weekdays, day_start, day_end) = working_hours(db, org_id, ask.hours).await?;
    let ids: Vec<i64> = outlets.iter().map(|o| o.outlet.id).collect();
    let windows: HashMap<i64, (Option<String>, Option<String>)> =
        db::beats::outlet_windows(db, org_id, &ids).await?.into_iter().map(|(id, s, e)| (id, (s, e))).collect();
    let homes = homes(db, caller, &team.iter().map(|r| r.id).collect::<Vec<_>>()).await?;
    let all: Vec<&SubtreeOutlet> = outlets.iter().collect();
    let fallback = centroid(&all).unwrap_or(beats::Point { lat: 0.0, lon: 0.0 });
    let reps = team
        .iter()
        .map(|r| {
            let own: Vec<&SubtreeOutlet> =
                outlets.iter().filter(|o| r.child_id.is_some() && o.child_id == r.child_id).collect();
            let start = homes.get(&r.id).copied().or_else(|| centroid(&own)).unwrap_or(fallback);
            beats::Rep { id: r.id, start, day_start_s: day_start, day_end_s: day_end, weekdays: weekdays.clone() }
        })
        .collect();
    let request = beats::Request {
        reps,
        outlets: outlets
            .iter()
            .map(|o| {
                let w = windows.get(&o.outlet.id);
                beats::Outlet {
                    id: o.outlet.id,
                    label: o.code.clone(),
                    point: beats::Point { lat: o.lat, lon: o.lon },
                    tier: o.outlet.tier.clone(),
                    visits: visits_in_cycle(o.outlet.required_visits, o.outlet.cycle_days, ask.cycle_weeks),
                    window: w.and_then(|(s, e)| attribute_window(s.as_deref(), e.as_deref())),
                    duration_s: (o.outlet.min_dwell_s + VISIT_MARGIN_S).clamp(60, 86_400) as u32,
                    fixed_rep: None,
                }
            })
            .collect(),
        cycle_weeks: ask.cycle_weeks,
        first_day: valid_from,
        max_seconds: ask.max_seconds,
    };
    Ok(Prepared { request, names: team.into_iter().map(|r| (r.id, r.name)).collect(), hours: (day_start, day_end) })
}

/// An active rep the caller may plan for: 404 when there is none, 403 outside the caller's scope.
pub(crate) async fn scoped_rep(db: &PgPool, caller: &Caller<'_>, id: i64) -> Result<db::users::User, Error> {
    let rep = db::users::get(db, caller.org_id, id).await?.ok_or_else(|| Error::not_found("rep", id))?;
    if rep.role != Role::Rep || !rep.active {
        return Err(Error::not_found("rep", id));
    }
    if !caller.may_see_rep(rep.id, rep.territory_path.as_deref()) {
        return Err(Error::Forbidden("this rep is outside your territory".into()));
    }
    Ok(rep)
}

/// The working weekdays and the day's start and end (seconds): the ask's hours, else the org's
/// working hours, else Monday-Friday 09:00-18:00. 422 on `day_end` when the day would be empty.
pub(crate) async fn working_hours(
    db: &PgPool,
    org_id: i64,
    asked: (Option<u32>, Option<u32>),
) -> Result<(Vec<Weekday>, u32, u32), Error> {
    let (pings, _) = db::orgs::ping_settings(db, org_id).await?;
    let org = org_hours(&pings);
    let weekdays = org
        .as_ref()
        .map_or_else(|| vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri], |h| h.0.clone());
    let day_start = asked.0.or(org.as_ref().map(|h| h.1)).unwrap_or(9 * 3600);
    let day_end = asked.1.or(org.as_ref().map(|h| h.2)).unwrap_or(18 * 3600);
    if day_end <= day_start {
        return Err(Error::field("day_end", "must be after day_start (the org's working hours start later)"));
    }
    Ok((weekdays, day_start, day_end))
}

/// The reps' homes, for admins only: a manager may not learn where a rep lives, so the day
/// starts at the centroid of the rep's outlets for them (as `/plan-proposal` withholds it).
pub(crate) async fn homes(
    db: &PgPool,
    caller: &Caller<'_>,
    rep_ids: &[i64],
) -> Result<HashMap<i64, beats::Point>, Error> {
    if caller.role != Some(Role::Admin) {
        return Ok(HashMap::new());
    }
    Ok(db::beats::homes(db, caller.org_id, rep_ids)
        .await?
        .into_iter()
        .map(|(id, lat, lon)| (id, beats::Point { lat, lon }))
        .collect())
}

/// Solves a prepared proposal (CPU-bound: run it on a blocking thread) and shapes the answer.
pub fn solve(p: &Prepared) -> BeatProposal {
    let out = beats::generate(&p.request, &beats::StraightLine::default());
    let cycle_weeks = i16::from(p.request.cycle_weeks);
    let valid_from = p.request.first_day;
    let reps = out
        .reps
        .iter()
        .map(|b| {
            let items: Vec<BeatItem> = b
                .stops
                .iter()
                .map(|s| BeatItem {
                    item: PlanItem {
                        outlet_id: s.outlet_id,
                        weekday: s.day.weekday().number_from_monday() as i16,
                        week_of_cycle: i16::from(s.week_of_cycle),
                        window_start: beats::hhmm(s.window.0),
                        window_end: beats::hhmm(s.window.1),
                        seq: s.seq as i32,
                        expected_duration_s: s.duration_s as i32,
                    },
                    day: s.day,
                    arrival: beats::hhmm(s.arrival_s),
                    why: s.why.clone(),
                })
                .collect();
            let name = p.names.get(&b.rep_id).cloned().unwrap_or_default();
            let plan = ProposedPlan {
                rep_id: b.rep_id,
                name: format!("{cycle_weeks}-week beat from {valid_from}"),
                cycle_weeks,
                valid_from,
                items: items.iter().map(|i| i.item.clone()).collect(),
            };
            RepBeat {
                rep_id: b.rep_id,
                name,
                placed_visits: items.len() as u32,
                items,
                plan,
                required_visits: b.required_visits,
                travel_m: b.travel_m.round(),
                baseline_travel_m: b.baseline_travel_m.round(),
            }
        })
        .collect();
    BeatProposal {
        cycle_weeks,
        valid_from,
        day_start: beats::hhmm(p.hours.0),
        day_end: beats::hhmm(p.hours.1),
        reps,
        required_visits: out.required_visits,
        placed_visits: out.placed_visits,
        unplaced: out
            .unplaced
            .into_iter()
            .map(|u| UnplacedVisits { outlet_id: u.outlet_id, visits: u.visits, reason: u.reason })
            .collect(),
        travel_m: out.travel_m.round(),
        baseline_travel_m: out.baseline_travel_m.round(),
        solve_ms: out.solve_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn visits_in_a_cycle_follow_the_tier_pro_rata() {
        assert_eq!(visits_in_cycle(4, 28, 4), 4);
        assert_eq!(visits_in_cycle(1, 28, 4), 1);
        assert_eq!(visits_in_cycle(4, 28, 1), 1);
        assert_eq!(visits_in_cycle(1, 28, 6), 2);
        assert_eq!(visits_in_cycle(8, 28, 12), 24);
    }

    #[test]
    fn org_hours_read_the_weekdays_and_the_widest_span() {
        let pings =
            json!({"working_hours": {"mon": [["08:30", "12:00"], ["13:00", "17:30"]], "sat": [["10:00", "14:00"]]}});
        assert_eq!(org_hours(&pings), Some((vec![Weekday::Mon, Weekday::Sat], 8 * 3600 + 1800, 17 * 3600 + 1800)));
        assert_eq!(org_hours(&json!({})), None);
    }

    #[test]
    fn windows_from_attributes() {
        assert_eq!(attribute_window(Some("10:00"), Some("12:00")), Some((36_000, 43_200)));
        assert_eq!(attribute_window(Some("10:00"), None), Some((36_000, 86_399)));
        assert_eq!(attribute_window(Some("noon"), Some("12:00")), None);
        assert_eq!(attribute_window(Some("12:00"), Some("10:00")), None);
    }

    #[test]
    fn an_ask_names_each_bad_field() {
        let ask = BeatAsk {
            rep_id: Some(1),
            territory_id: Some(2),
            cycle_weeks: Some(13),
            valid_from: None,
            day_start: Some("9am".into()),
            day_end: None,
            max_seconds: Some(61),
        };
        let Err(Error::Invalid(errors)) = check(&ask) else { panic!("invalid") };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["rep_id", "cycle_weeks", "day_start", "max_seconds"]);
    }
}
