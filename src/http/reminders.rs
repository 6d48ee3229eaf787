//! Reminders: the outlets that need a visit (due or overdue by their tier's policy, never
//! visited, or with a problem found by their last checklist answers), for a rep and for a
//! manager's territory; the plan proposal ranks them the same way.

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query, int_range};
use crate::db;
use crate::domain::access::Role;
use crate::domain::plan::{self, Reminder};
use axum::extract::State;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rep_reminders)).routes(routes!(territory_reminders))
}

/// Farthest look-ahead of `horizon_days`.
const MAX_HORIZON_DAYS: i64 = 31;
/// Most outlets a reminder list returns.
const MAX_REMINDERS: usize = 5000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ReminderQuery {
    /// The day (org-local, YYYY-MM-DD); default today.
    date: Option<NaiveDate>,
    /// Also list outlets reaching their interval this many days after `date` (0-31, default 0).
    #[param(schema_with = int_range::<0, MAX_HORIZON_DAYS>)]
    horizon_days: Option<i64>,
    /// Most outlets listed, most urgent first (1-5000, default 500).
    #[param(schema_with = int_range::<1, { MAX_REMINDERS as i64 }>)]
    limit: Option<usize>,
    /// Only the outlets of this territory's subtree (within the caller's scope); default the
    /// caller's territory.
    territory_id: Option<i64>,
}

/// A reminder with the outlet's code, name and tier.
#[derive(Serialize, utoipa::ToSchema)]
struct OutletReminder {
    code: String,
    name: String,
    tier: String,
    lat: f64,
    lon: f64,
    #[serde(flatten)]
    reminder: Reminder,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Reminders {
    date: NaiveDate,
    /// The territory whose outlets are listed (`null`: the whole org).
    territory_id: Option<i64>,
    /// How many outlets need a visit (the list may be cut at `limit`).
    total: usize,
    outlets: Vec<OutletReminder>,
}

async fn reminders(
    state: &AppState,
    auth: &Principal,
    root: Option<i64>,
    q: &ReminderQuery,
) -> Result<Reminders, ApiError> {
    let horizon = q.horizon_days.unwrap_or(0);
    if !(0..=MAX_HORIZON_DAYS).contains(&horizon) {
        return Err(ApiError::field("horizon_days", "must be from 0 to 31"));
    }
    let limit = q.limit.unwrap_or(500);
    if !(1..=MAX_REMINDERS).contains(&limit) {
        return Err(ApiError::field("limit", "must be from 1 to 5000"));
    }
    let date = super::plans::day_or_today(state, auth, q.date).await?;
    let (outlets, candidates) = super::plans::due_candidates(state, auth.org_id, root, date).await?;
    let by_id: std::collections::HashMap<i64, &db::compliance::SubtreeOutlet> =
        outlets.iter().map(|o| (o.outlet.id, o)).collect();
    let all = plan::reminders(&candidates, date, horizon);
    let total = all.len();
    let outlets = all
        .into_iter()
        .take(limit)
        .filter_map(|reminder| {
            let o = by_id.get(&reminder.outlet_id)?;
            Some(OutletReminder {
                code: o.code.clone(),
                name: o.name.clone(),
                tier: o.outlet.tier.clone(),
                lat: o.lat,
                lon: o.lon,
                reminder,
            })
        })
        .collect();
    Ok(Reminders { date, territory_id: root, total, outlets })
}

/// The outlets of a rep's territory that need a visit, most urgent first: a problem found by
/// their last checklist answers, never visited, overdue (past their tier's interval: cycle days /
/// required visits, counting valid visits by any rep), or due (reaching it within `horizon_days`).
/// Reps their own; managers, supervisors, auditors and admins the reps of their territories.
#[utoipa::path(get, path = "/reps/{id}/reminders", tag = "plans", params(ReminderQuery), responses(
    (status = 200, body = Reminders), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn rep_reminders(
    State(state): State<AppState>,
    auth: Can<p::ReadPlans>,
    Path(rep_id): Path<i64>,
    Query(q): Query<ReminderQuery>,
) -> Result<Json<Reminders>, ApiError> {
    if q.territory_id.is_some() {
        return Err(ApiError::field("territory_id", "a rep's reminders are of the rep's territory"));
    }
    let rep = super::tracks::visible_rep(&state, &auth, rep_id).await?;
    if rep.role != Role::Rep {
        return Err(ApiError::not_found("rep", rep_id));
    }
    Ok(Json(reminders(&state, &auth, rep.territory_id, &q).await?))
}

/// The outlets of a territory that need a visit (as for a rep), for a manager: `territory_id`
/// within the caller's scope, default the caller's territory (the org for org-wide users).
#[utoipa::path(get, path = "/reminders", tag = "plans", params(ReminderQuery), responses(
    (status = 200, body = Reminders), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn territory_reminders(
    State(state): State<AppState>,
    auth: Can<p::ReadTeamCompliance>,
    Query(q): Query<ReminderQuery>,
) -> Result<Json<Reminders>, ApiError> {
    let root = match q.territory_id {
        Some(id) => Some(super::compliance::visible_territory(&state, &auth, id).await?.id),
        None => auth.scope_root(),
    };
    Ok(Json(reminders(&state, &auth, root, &q).await?))
}
