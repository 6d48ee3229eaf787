//! Beat plans: creating, revising and ending a rep's plan (with its planned visits), a rep's plan
//! of a day, and a proposed day made of the outlets due.

use super::{Caller, Error};
use crate::db;
use crate::db::compliance::SubtreeOutlet;
use crate::db::plans::{DayPlanEntry, Plan};
use crate::db::users::User;
use crate::domain::access::Role;
use crate::domain::audit::AuditAction;
use crate::domain::outlet::OutletStatus;
use crate::domain::plan::{self, ItemInput, PlanInput};
use crate::domain::validation::FieldError;
use chrono::{Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;

/// Recurring items are materialised this far ahead when a plan is created or revised (later days
/// as they are read: the phone's plan, compliance).
const HORIZON_DAYS: i64 = 56;

/// The rep `rep_id` of the org: a user with role rep, else a refusal of `rep_id`.
pub async fn rep(db: &PgPool, org_id: i64, rep_id: i64) -> Result<User, Error> {
    match db::users::get(db, org_id, rep_id).await? {
        Some(r) if r.role == Role::Rep => Ok(r),
        Some(_) => Err(Error::field("rep_id", "is not a rep")),
        None => Err(Error::field("rep_id", "no such rep in this org")),
    }
}

/// Refuses `errors` and each item whose outlet is not one of the org's, all named at once.
async fn check_items(db: &PgPool, org_id: i64, items: &[ItemInput], mut errors: Vec<FieldError>) -> Result<(), Error> {
    let outlet_ids: Vec<i64> = items.iter().map(|i| i.outlet_id).collect();
    let unknown = db::plans::unknown_outlets(db, org_id, &outlet_ids).await?;
    for (i, item) in items.iter().enumerate() {
        if unknown.contains(&item.outlet_id) {
            errors.push(FieldError::new(format!("items[{i}].outlet_id"), "no such outlet in this org").at(i));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(Error::Invalid(errors)) }
}

/// Item `i` of a plan as stored (its route position defaults to its place in the list).
fn new_item(i: usize, item: &ItemInput, planned_from: Option<NaiveDate>) -> db::plans::NewPlanItem {
    db::plans::NewPlanItem {
        outlet_id: item.outlet_id,
        weekday: item.weekday,
        week_of_cycle: item.week_of_cycle,
        visit_date: item.visit_date,
        window_start: item.window_start,
        window_end: item.window_end,
        expected_duration_s: item.expected_duration_s,
        seq: item.seq.unwrap_or(i32::try_from(i).unwrap_or(i32::MAX).saturating_add(1)),
        planned_from,
    }
}

/// Creates the plan `input` of a rep within the caller's territory scope. Every problem of the
/// plan and its items is named before the rep is looked at. The plan, its items and the planned
/// visits of its dated items are written in one transaction with the audit entry; then the
/// recurring items are materialised from the plan's first day (at most a year back) to
/// [`HORIZON_DAYS`] ahead.
pub async fn create(db: &PgPool, caller: &Caller<'_>, input: &PlanInput) -> Result<Plan, Error> {
    let org_id = caller.org_id;
    check_items(db, org_id, &input.items, plan::problems(input)).await?;
    let rep = rep(db, org_id, input.rep_id).await?;
    if !caller.may_reach(rep.territory_path.as_deref()) {
        return Err(Error::Forbidden("this rep's data is outside your scope".into()));
    }
    let mut tx = db.begin().await?;
    let new = db::plans::NewPlan {
        rep_id: rep.id,
        name: input.name.trim(),
        cycle_weeks: input.cycle_weeks.unwrap_or(1),
        valid_from: input.valid_from,
        valid_to: input.valid_to,
    };
    let plan_id = db::plans::create(&mut *tx, org_id, &new).await?;
    for (i, item) in input.items.iter().enumerate() {
        db::plans::add_item(&mut *tx, org_id, plan_id, &new_item(i, item, None)).await?;
    }
    db::plans::materialize_dated(&mut *tx, org_id, plan_id).await?;
    let detail = json!({"rep_id": rep.id, "items": input.items.len()});
    caller.audit(&mut *tx, AuditAction::PlanCreate, "plan", plan_id, detail).await?;
    tx.commit().await?;
    let today = db::plans::local_date(db, org_id, Utc::now()).await?;
    // From the first valid day (a plan may start in the past; at most a year back), to the horizon.
    let from = input.valid_from.max(today - Duration::days(366));
    let to = today.max(input.valid_from) + Duration::days(HORIZON_DAYS);
    db::plans::materialize_recurring(db, org_id, rep.id, from, to).await?;
    db::plans::get(db, org_id, plan_id).await?.ok_or_else(|| Error::not_found("plan", plan_id))
}

/// A plan's new content from a day on.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRevisionInput {
    #[schema(schema_with = crate::domain::validation::one_line_text::<{ plan::MAX_NAME_CHARS }>)]
    pub name: String,
    /// The plan's cycle length in weeks, if given: a revision keeps the cycle (and its week 1, the
    /// week of the plan's first day); to change it, end the plan and create another.
    #[schema(minimum = 1, maximum = 12)]
    pub cycle_weeks: Option<i16>,
    /// Last day (inclusive); absent = open-ended.
    pub valid_to: Option<NaiveDate>,
    /// The items in force from the revision's first day (they replace all the current ones).
    #[schema(max_items = 2000)]
    pub items: Vec<ItemInput>,
}

/// The first day of a change to a plan (`from`, default tomorrow), refused in the past: the past
/// is kept.
fn change_from(from: Option<NaiveDate>, today: NaiveDate) -> Result<NaiveDate, Error> {
    let from = from.unwrap_or(today + Duration::days(1));
    if from < today || !plan::date_in_range(from) {
        return Err(Error::field("from", "must be today or a later day (up to 2100-12-31): the past is kept"));
    }
    Ok(from)
}

/// Plan `plan_id` is not in force on `from`.
fn plan_ended(plan_id: i64, from: NaiveDate) -> Error {
    Error::Conflict {
        detail: format!("plan {plan_id} is not in force on {from} (ended or cancelled): create a new plan"),
        errors: Vec::new(),
    }
}

/// Whether plan `current` may be revised from `from`: still in force then, its cycle kept.
fn check_revision(current: &Plan, from: NaiveDate, cycle_weeks: Option<i16>) -> Result<(), Error> {
    if !current.active || current.valid_to.is_some_and(|t| t < from) {
        return Err(plan_ended(current.id, from));
    }
    if cycle_weeks.is_some_and(|c| c != current.cycle_weeks) {
        return Err(Error::field(
            "cycle_weeks",
            format!(
                "a revision keeps the plan's cycle of {} weeks: end the plan and create another",
                current.cycle_weeks
            ),
        ));
    }
    Ok(())
}

/// Writes a revision of plan `plan_id` from the day `from` in one transaction: the plan's new
/// name and end, the items from then on, the dated planned visits; audited. `false` when the plan
/// is no longer in force then (ended or cancelled meanwhile).
async fn store_revision(
    db: &PgPool,
    caller: &Caller<'_>,
    plan_id: i64,
    from: NaiveDate,
    whole: &PlanInput,
) -> Result<bool, Error> {
    let org_id = caller.org_id;
    let mut tx = db.begin().await?;
    let revision = db::plans::PlanRevision { name: whole.name.trim(), valid_to: whole.valid_to };
    if !db::plans::revise(&mut tx, org_id, plan_id, from, &revision).await? {
        return Ok(false);
    }
    for (i, item) in whole.items.iter().enumerate() {
        db::plans::add_item(&mut *tx, org_id, plan_id, &new_item(i, item, Some(from))).await?;
    }
    db::plans::materialize_dated(&mut *tx, org_id, plan_id).await?;
    let detail = json!({"from": from, "items": whole.items.len()});
    caller.audit(&mut *tx, AuditAction::PlanRevise, "plan", plan_id, detail).await?;
    tx.commit().await?;
    Ok(true)
}

/// Revises plan `current` (read by the caller, who may see its rep) from the day `from` on
/// (default tomorrow, never in the past): its name, last day and items become `input`'s, its cycle
/// stays. The items in force until then are retired from that day; earlier days keep their
/// planned visits. Every problem is named; a plan no longer in force then is a conflict. The
/// recurring items are materialised from `from` to [`HORIZON_DAYS`] ahead.
pub async fn revise(
    db: &PgPool,
    caller: &Caller<'_>,
    current: &Plan,
    from: Option<NaiveDate>,
    input: PlanRevisionInput,
) -> Result<Plan, Error> {
    let org_id = caller.org_id;
    let today = db::plans::local_date(db, org_id, Utc::now()).await?;
    let from = change_from(from, today)?;
    check_revision(current, from, input.cycle_weeks)?;
    let whole = PlanInput {
        rep_id: current.rep_id,
        name: input.name,
        cycle_weeks: Some(current.cycle_weeks),
        valid_from: current.valid_from,
        valid_to: input.valid_to,
        items: input.items,
    };
    check_items(db, org_id, &whole.items, plan::revision_problems(&whole, from)).await?;
    if !store_revision(db, caller, current.id, from, &whole).await? {
        return Err(plan_ended(current.id, from));
    }
    let to = from.max(today) + Duration::days(HORIZON_DAYS);
    db::plans::materialize_recurring(db, org_id, current.rep_id, from, to).await?;
    db::plans::get(db, org_id, current.id).await?.ok_or_else(|| Error::not_found("plan", current.id))
}

/// Ends plan `plan_id` before the day `from` (default tomorrow, never in the past): its last day
/// becomes the day before (a plan not started by then is cancelled) and its planned visits from
/// then on are removed; earlier days keep theirs. Audited.
pub async fn end(db: &PgPool, caller: &Caller<'_>, plan_id: i64, from: Option<NaiveDate>) -> Result<(), Error> {
    let today = db::plans::local_date(db, caller.org_id, Utc::now()).await?;
    let from = change_from(from, today)?;
    db::plans::end(db, caller.org_id, plan_id, from).await?;
    caller.audit(db, AuditAction::PlanEnd, "plan", plan_id, json!({"from": from})).await?;
    Ok(())
}

/// The day `date` of a request (default the org's today), refused outside the dates plans name.
pub async fn day_or_today(db: &PgPool, org_id: i64, date: Option<NaiveDate>) -> Result<NaiveDate, Error> {
    match date {
        Some(d) if !plan::date_in_range(d) => Err(Error::field("date", "must be a date from 2000-01-01 to 2100-12-31")),
        Some(d) => Ok(d),
        None => Ok(db::plans::local_date(db, org_id, Utc::now()).await?),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DayPlan {
    pub rep_id: i64,
    pub date: NaiveDate,
    /// The planned visits in route order, with their outlets and windows.
    pub visits: Vec<DayPlanEntry>,
}

/// The plan of rep `rep_id` for the day `date` (default today): its recurring items materialised
/// for the day, then its planned visits in route order with their outlets.
pub async fn day_plan(
    db: &PgPool,
    caller: &Caller<'_>,
    rep_id: i64,
    date: Option<NaiveDate>,
) -> Result<DayPlan, Error> {
    let date = day_or_today(db, caller.org_id, date).await?;
    db::plans::materialize_recurring(db, caller.org_id, rep_id, date, date).await?;
    let visits = db::plans::day_plan(db, caller.org_id, rep_id, date).await?;
    Ok(DayPlan { rep_id, date, visits })
}

/// The active outlets of territory `root`'s subtree (the org without one) on `date`, and each as
/// a due candidate: its tier's interval, its last valid visit before `date` (as far back as the
/// longest interval asks, at least 28 days), whether its last checklist answers found a problem.
pub async fn due_candidates(
    db: &PgPool,
    org_id: i64,
    root: Option<i64>,
    date: NaiveDate,
) -> Result<(Vec<SubtreeOutlet>, Vec<plan::DueCandidate>), Error> {
    let outlets = db::compliance::subtree_outlets(db, org_id, root, date).await?;
    // Active now (a proposal plans ahead: an outlet registered today is proposed, one closed is not).
    let active: Vec<_> = outlets.into_iter().filter(|o| o.status == OutletStatus::Active).collect();
    let lookback = active.iter().map(|o| i64::from(o.outlet.cycle_days)).max().unwrap_or(28).max(28);
    let visits =
        db::compliance::subtree_visits(db, org_id, root, date - Duration::days(lookback), date - Duration::days(1))
            .await?;
    let ids: Vec<i64> = active.iter().map(|o| o.outlet.id).collect();
    // Sorted by id.
    let with_problem = db::checklists::outlets_with_problems(db, org_id, &ids).await?;
    let candidates = plan::due_candidates(active.iter().map(|o| (&o.outlet, o.lat, o.lon)), &visits, &with_problem);
    Ok((active, candidates))
}

/// What a plan proposal is asked for: the day, the most outlets, where the route starts.
#[derive(Debug, Clone, Copy)]
pub struct ProposalAsk {
    /// The day to plan (default today), checked by [`propose`].
    date: Option<NaiveDate>,
    max_outlets: usize,
    start: Option<(f64, f64)>,
}

impl ProposalAsk {
    /// The ask for the day `date`, at most `max_outlets` (1-60, default 12), starting at
    /// `start_lat`/`start_lon` if given (both or neither).
    pub fn new(
        date: Option<NaiveDate>,
        max_outlets: Option<usize>,
        start_lat: Option<f64>,
        start_lon: Option<f64>,
    ) -> Result<Self, Error> {
        let max_outlets = max_outlets.unwrap_or(12);
        if !(1..=60).contains(&max_outlets) {
            return Err(Error::field("max_outlets", "must be from 1 to 60"));
        }
        let start = match (start_lat, start_lon) {
            (Some(lat), Some(lon)) if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) => {
                Some((lat, lon))
            }
            (Some(_), Some(_)) => return Err(Error::field("start_lat", "start_lat/start_lon must be a position")),
            (None, None) => None,
            _ => return Err(Error::field("start_lat", "give both start_lat and start_lon, or neither")),
        };
        Ok(ProposalAsk { date, max_outlets, start })
    }
}

/// Where a proposed route starts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RouteStart {
    /// `null` when withheld: a rep's declared home is shown to the rep and admins only, and a
    /// last position near it not to others when the org blurs homes; the route then starts at
    /// its most urgent outlet instead.
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// `given`, `last_position` or `home`.
    pub source: String,
}

/// A proposed stop with the outlet's code and name.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProposalStop {
    pub code: String,
    pub name: String,
    pub tier: String,
    #[serde(flatten)]
    pub stop: plan::ProposedStop,
}

/// A dated item of the proposal, ready for `POST /plans`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProposedItem {
    pub outlet_id: i64,
    pub visit_date: NaiveDate,
    pub seq: i32,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanProposal {
    pub rep_id: i64,
    pub date: NaiveDate,
    /// `None` when neither a start was given nor the rep has a position or home: the route then
    /// starts at the most overdue outlet.
    pub start: Option<RouteStart>,
    /// Outlets due in the rep's territory (active on the day).
    pub due_outlets: usize,
    pub stops: Vec<ProposalStop>,
    /// Sum of the legs, great-circle metres.
    pub route_m: f64,
    /// The stops as dated plan items (`{"rep_id", "name", "valid_from", "valid_to", "items"}` of
    /// `POST /plans`).
    pub items: Vec<ProposedItem>,
}

/// The proposal as answered: each stop with its outlet's code, name and tier, the route's length
/// and the plan items that would make it.
fn proposal(
    rep_id: i64,
    date: NaiveDate,
    start: Option<RouteStart>,
    due_outlets: usize,
    stops: Vec<plan::ProposedStop>,
    active: &[SubtreeOutlet],
) -> PlanProposal {
    let by_id: std::collections::HashMap<i64, &SubtreeOutlet> = active.iter().map(|o| (o.outlet.id, o)).collect();
    let route_m = stops.iter().map(|s| s.leg_m).sum();
    let items = stops.iter().map(|s| ProposedItem { outlet_id: s.outlet_id, visit_date: date, seq: s.seq }).collect();
    let stops = stops
        .into_iter()
        .filter_map(|stop| {
            let o = by_id.get(&stop.outlet_id)?;
            Some(ProposalStop { code: o.code.clone(), name: o.name.clone(), tier: o.outlet.tier.clone(), stop })
        })
        .collect();
    PlanProposal { rep_id, date, start, due_outlets, stops, route_m, items }
}

/// A proposed day for `rep` (whom the caller may see; a user who is not a rep is not found): the
/// outlets of the rep's territory due by their tier's policy or with a problem found, the most
/// urgent first, at most `ask`'s most, routed nearest-neighbour from the start (given, else the
/// rep's last position, else their home). A start the caller may not see (`hidden(lat, lon,
/// source)`, asked of the rep's own positions only) is withheld and not routed from either: the
/// order and the first leg would tell where it is. Nothing is stored.
pub async fn propose(
    db: &PgPool,
    caller: &Caller<'_>,
    rep: &User,
    ask: &ProposalAsk,
    hidden: impl Fn(f64, f64, &str) -> bool,
) -> Result<PlanProposal, Error> {
    if rep.role != Role::Rep {
        return Err(Error::not_found("rep", rep.id));
    }
    let org_id = caller.org_id;
    let date = day_or_today(db, org_id, ask.date).await?;
    let (active, candidates) = due_candidates(db, org_id, rep.territory_id, date).await?;
    let start = match ask.start {
        Some((lat, lon)) => Some((lat, lon, "given".to_owned())),
        None => db::compliance::rep_start(db, org_id, rep.id, date).await?,
    };
    let due_outlets = plan::due_count(&candidates, date);
    let withheld = start.as_ref().is_some_and(|(lat, lon, source)| source != "given" && hidden(*lat, *lon, source));
    let route_from = start.as_ref().filter(|_| !withheld).map(|s| (s.0, s.1));
    let stops = plan::propose(&candidates, date, route_from, ask.max_outlets);
    let start = start.map(|(lat, lon, source)| {
        if withheld {
            RouteStart { lat: None, lon: None, source }
        } else {
            RouteStart { lat: Some(lat), lon: Some(lon), source }
        }
    });
    Ok(proposal(rep.id, date, start, due_outlets, stops, &active))
}
