//! Check-ins from the reps' app: stored idempotently by the app's client id, judged at once by
//! the visit rule for "at the outlet", and later confirmed by a derived visit or left unconfirmed
//! (a claim for a supervisor).

use super::{Caller, Error};
use crate::db;
use crate::db::checkins::{Checkin, CheckinOutcome, CheckinPhoto, NewCheckin, VisitSpan};
use crate::domain::access::{self, Action};
use crate::domain::audit::AuditAction;
use crate::domain::compliance::ReviewDecision;
use crate::domain::validation::FieldError;
use crate::domain::visit::VisitRules;
use crate::domain::{checkin, plan};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A check-in as the app sends it (`PUT /checkins/{client_id}`): the check-in fix, and the
/// check-out once the rep leaves (sent again with the same client id).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckinInput {
    pub outlet_id: i64,
    pub checked_in_at: DateTime<Utc>,
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lon: f64,
    #[schema(exclusive_minimum = 0)]
    pub accuracy_m: Option<f32>,
    pub checked_out_at: Option<DateTime<Utc>>,
    #[schema(minimum = -90, maximum = 90)]
    pub out_lat: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    pub out_lon: Option<f64>,
    #[schema(exclusive_minimum = 0)]
    pub out_accuracy_m: Option<f32>,
}

/// Where a check-in stands against the derived visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckinStatus {
    /// A derived visit at the outlet overlaps it.
    Confirmed,
    /// The rep's positions are not all derived yet.
    Pending,
    /// Derived, and no visit confirms it: a claim a supervisor accepts or rejects.
    Unconfirmed,
    /// A claim a supervisor rejected.
    Rejected,
}

/// A check-in with the server's judgement, its standing and the evidence taken at it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckinView {
    #[serde(flatten)]
    pub checkin: Checkin,
    pub status: CheckinStatus,
    /// The visit that confirms it.
    pub visit_id: Option<i64>,
    /// Photos taken at the check-in (`PUT /checkins/{client_id}/photos/{photo_client_id}`).
    pub photos: Vec<CheckinPhoto>,
    /// Checklist answers given at it (`PUT /checkins/{client_id}/answers/{answers_client_id}`).
    pub outcomes: Vec<CheckinOutcome>,
    /// Derivation is done and some of its evidence is linked to no visit: kept, and flagged
    /// (typically an unconfirmed or rejected claim).
    pub evidence_unlinked: bool,
}

/// Most a check-in's time may be ahead of the server's clock.
const MAX_AHEAD: Duration = Duration::minutes(5);

fn check(client_id: &str, c: &CheckinInput) -> Result<(), Error> {
    let mut errors = Vec::new();
    if !checkin::valid_client_id(client_id) {
        errors.push(FieldError::new("client_id", "must be 8-100 letters, digits or _ . : -"));
    }
    let position = |lat: f64, lon: f64, acc: Option<f32>, prefix: &str, errors: &mut Vec<FieldError>| {
        if !(-90.0..=90.0).contains(&lat) {
            errors.push(FieldError::new(format!("{prefix}lat"), "must be a latitude from -90 to 90"));
        }
        if !(-180.0..=180.0).contains(&lon) {
            errors.push(FieldError::new(format!("{prefix}lon"), "must be a longitude from -180 to 180"));
        }
        if acc.is_some_and(|a| !(a > 0.0 && a.is_finite())) {
            errors.push(FieldError::new(format!("{prefix}accuracy_m"), "must be greater than 0"));
        }
    };
    position(c.lat, c.lon, c.accuracy_m, "", &mut errors);
    let when = |field: &str, t: DateTime<Utc>, errors: &mut Vec<FieldError>| {
        if !plan::instant_in_range(t) {
            errors.push(FieldError::new(field, "must be a time from 2000-01-01 to 2100-12-31 (UTC)"));
        } else if t > Utc::now() + MAX_AHEAD {
            errors.push(FieldError::new(field, "is ahead of the server's clock"));
        }
    };
    when("checked_in_at", c.checked_in_at, &mut errors);
    match (c.checked_out_at, c.out_lat, c.out_lon) {
        (None, None, None) => {}
        (Some(out), Some(lat), Some(lon)) => {
            position(lat, lon, c.out_accuracy_m, "out_", &mut errors);
            when("checked_out_at", out, &mut errors);
            if out < c.checked_in_at {
                errors.push(FieldError::new("checked_out_at", "is before the check-in"));
            }
        }
        _ => errors.push(FieldError::new("checked_out_at", "a check-out needs checked_out_at, out_lat and out_lon")),
    }
    if errors.is_empty() { Ok(()) } else { Err(Error::Invalid(errors)) }
}

/// Stores the check-in `client_id` of the calling device (the rep's phone), judged against the
/// outlet where it stood then. A retry with the same client id returns the stored check-in (and
/// adds a check-out it did not have); the same client id for another outlet or time is a 409.
/// Returns the check-in and whether it is new.
pub async fn put(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    client_id: &str,
    input: &CheckinInput,
) -> Result<(CheckinView, bool), Error> {
    let (Some(device_id), Some(rep_id)) = (caller.device_id, caller.own_rep) else {
        return Err(Error::Forbidden("check-ins come from a rep's device (the reps' app)".into()));
    };
    check(client_id, input)?;
    let site = db::visits::outlet_site(db, caller.org_id, input.outlet_id, input.checked_in_at)
        .await?
        .ok_or_else(|| Error::field("outlet_id", format!("outlet {} does not exist", input.outlet_id)))?;
    let judged = checkin::judge(&site, input.lat, input.lon, input.accuracy_m, &VisitRules::default());
    let new = NewCheckin {
        device_id,
        rep_id,
        outlet_id: input.outlet_id,
        client_id,
        checked_in_at: input.checked_in_at,
        lat: input.lat,
        lon: input.lon,
        accuracy_m: input.accuracy_m,
        distance_m: judged.distance_m,
        allowance_m: judged.allowance_m,
        at_outlet: judged.at_outlet,
        checkout: input
            .checked_out_at
            .zip(input.out_lat.zip(input.out_lon))
            .map(|(t, (lat, lon))| (t, lat, lon, input.out_accuracy_m)),
    };
    let (stored, created) = db::checkins::put(db, caller.org_id, &new).await?;
    let same = stored.outlet_id == input.outlet_id && stored.checked_in_at == input.checked_in_at.trunc_subsecs(6);
    if !same {
        return Err(Error::Conflict {
            detail: format!(
                "client id `{client_id}` is already a check-in at outlet {} at {}",
                stored.outlet_id, stored.checked_in_at
            ),
            errors: vec![FieldError::new("client_id", "already used for another check-in")],
        });
    }
    let mut views = standing(db, caller.org_id, rep_id, vec![stored]).await?;
    let view = views.pop().ok_or_else(|| Error::Internal("check-in lost after its write".into()))?;
    Ok((view, created))
}

/// The check-ins of rep `rep_id` (whom the caller may see: the handler checked) on the org's
/// local days `from..=to`.
pub async fn of_rep(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    rep_id: i64,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<CheckinView>, Error> {
    let checkins = db::checkins::of_rep(db, caller.org_id, rep_id, from, to).await?;
    standing(db, caller.org_id, rep_id, checkins).await
}

/// The open visit claims within the caller's scope on the org's local days `from..=to`: check-ins
/// no derived visit confirms and no supervisor has decided, oldest first (the supervisor's list).
/// A caller with no territory within reach gets none.
pub async fn open_claims(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<CheckinView>, Error> {
    let root = match caller.scope {
        None => return Ok(Vec::new()),
        Some(scope) => scope.root(),
    };
    let mut by_rep: std::collections::BTreeMap<i64, Vec<Checkin>> = std::collections::BTreeMap::new();
    for c in db::checkins::undecided_in(db, caller.org_id, root, from, to).await? {
        by_rep.entry(c.rep_id).or_default().push(c);
    }
    let mut claims = Vec::new();
    for (rep_id, checkins) in by_rep {
        let views = standing(db, caller.org_id, rep_id, checkins).await?;
        claims.extend(views.into_iter().filter(|v| v.status == CheckinStatus::Unconfirmed));
    }
    claims.sort_by_key(|v| (v.checkin.checked_in_at, v.checkin.id));
    Ok(claims)
}

/// The check-in `client_id` the caller made, which evidence with the app's id `evidence_id`
/// (named `field` in errors) is to hang on: a rep's device finds its own check-ins, a rep's user
/// token those of any device of the rep; 404 when there is none (another rep's check-in is not
/// found), 403 for other roles, 422 for a malformed evidence id.
pub async fn own(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    client_id: &str,
    evidence_id: &str,
    field: &str,
) -> Result<Checkin, Error> {
    let Some(rep_id) = caller.own_rep else {
        return Err(Error::Forbidden("evidence of a check-in comes from its rep (the reps' app)".into()));
    };
    if !checkin::valid_client_id(evidence_id) {
        return Err(Error::field(field, "must be 8-100 letters, digits or _ . : -"));
    }
    let found = if checkin::valid_client_id(client_id) {
        db::checkins::by_client_id(db, caller.org_id, caller.device_id, rep_id, client_id).await?
    } else {
        None
    };
    found.ok_or_else(|| Error::NotFound { what: "check-in", id: client_id.chars().take(100).collect() })
}

/// Each check-in with the visit that confirms it, or pending / unconfirmed, and its evidence
/// (one query per table for them all).
async fn standing(
    db: &sqlx::PgPool,
    org_id: i64,
    rep_id: i64,
    checkins: Vec<Checkin>,
) -> Result<Vec<CheckinView>, Error> {
    let (Some(first), Some(last)) = (
        checkins.iter().map(|c| c.checked_in_at).min(),
        checkins.iter().map(|c| c.checked_out_at.unwrap_or(c.checked_in_at).max(c.checked_in_at)).max(),
    ) else {
        return Ok(Vec::new());
    };
    let slack = Duration::seconds(crate::domain::visit::SAME_VISIT_SLACK_S);
    // Stored times lie within 2000..=2100 (checked on the way in); checked all the same.
    let (from, to) = (first.checked_sub_signed(slack).unwrap_or(first), last.checked_add_signed(slack).unwrap_or(last));
    let visits = db::checkins::visit_spans(db, org_id, rep_id, from, to).await?;
    let pending = db::checkins::derivation_pending(db, org_id, rep_id).await?;
    let ids: Vec<i64> = checkins.iter().map(|c| c.id).collect();
    let mut photos: HashMap<i64, Vec<CheckinPhoto>> = HashMap::new();
    for p in db::checkins::photos_of(db, org_id, &ids).await? {
        photos.entry(p.checkin_id).or_default().push(p);
    }
    let mut outcomes: HashMap<i64, Vec<CheckinOutcome>> = HashMap::new();
    for o in db::checkins::outcomes_of(db, org_id, &ids).await? {
        outcomes.entry(o.checkin_id).or_default().push(o);
    }
    Ok(checkins
        .into_iter()
        .map(|c| {
            let mut v = view(c, &visits, pending);
            v.photos = photos.remove(&v.checkin.id).unwrap_or_default();
            v.outcomes = outcomes.remove(&v.checkin.id).unwrap_or_default();
            let unlinked =
                v.photos.iter().any(|p| p.visit_id.is_none()) || v.outcomes.iter().any(|o| o.visit_id.is_none());
            v.evidence_unlinked = unlinked && v.status != CheckinStatus::Pending;
            v
        })
        .collect())
}

fn view(checkin: Checkin, visits: &[VisitSpan], pending: bool) -> CheckinView {
    let confirming = visits.iter().find(|v| {
        v.outlet_id == checkin.outlet_id
            && checkin::confirms(checkin.checked_in_at, checkin.checked_out_at, v.arrival, v.departure)
    });
    let status = match (confirming, pending, checkin.claim_decision) {
        (_, _, Some(ReviewDecision::Rejected)) => CheckinStatus::Rejected,
        (Some(_), _, _) => CheckinStatus::Confirmed,
        (None, true, _) => CheckinStatus::Pending,
        (None, false, _) => CheckinStatus::Unconfirmed,
    };
    CheckinView {
        visit_id: confirming.map(|v| v.id),
        status,
        checkin,
        photos: Vec::new(),
        outcomes: Vec::new(),
        evidence_unlinked: false,
    }
}

/// Most characters of a claim decision's reason: a review's ([`super::reviews::check_reason`]).
pub const MAX_REASON_CHARS: usize = super::reviews::MAX_REASON_CHARS;

/// A reviewer's decision on unconfirmed check-in `id` (a claim): `accepted` writes an accepted
/// visit review at the check-in's outlet and time and queues the rep-day, so derivation adds a
/// visit for it that counts; `rejected` keeps it out. Only an unconfirmed, undecided check-in of
/// a rep in the caller's scope; audited. Returns the check-in as it now stands.
pub async fn decide_claim(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    id: i64,
    decision: &str,
    reason: &str,
) -> Result<CheckinView, Error> {
    let reason = super::reviews::check_reason(reason)?;
    let Ok(decision @ (ReviewDecision::Accepted | ReviewDecision::Rejected)) = decision.parse::<ReviewDecision>()
    else {
        return Err(Error::field("decision", "must be `accepted` or `rejected`"));
    };
    let (Some(reviewer_id), Some(role)) = (caller.user_id, caller.role) else {
        return Err(Error::Forbidden("claims are decided by reviewers' user tokens".into()));
    };
    if !access::allows(role, Action::ReviewVisits) {
        return Err(Error::Forbidden(format!("role `{role}` may not review visits")));
    }
    let (found, rep_path) =
        db::checkins::get(db, caller.org_id, id).await?.ok_or_else(|| Error::not_found("check-in", id))?;
    if !caller.may_see_rep(found.rep_id, rep_path.as_deref()) {
        return Err(Error::Forbidden("this rep's data is outside your scope".into()));
    }
    let rep_id = found.rep_id;
    let current = standing(db, caller.org_id, rep_id, vec![found])
        .await?
        .pop()
        .ok_or_else(|| Error::Internal("check-in lost".into()))?;
    if current.status != CheckinStatus::Unconfirmed || current.checkin.claim_decision.is_some() {
        return Err(Error::Conflict {
            detail: format!("check-in {id} is {:?}, not an undecided unconfirmed claim", current.status).to_lowercase(),
            errors: Vec::new(),
        });
    }
    let c = &current.checkin;
    let rep_day = db::plans::local_date(db, caller.org_id, c.checked_in_at).await?;
    let mut tx = db.begin().await?;
    if !db::checkins::decide_claim(&mut *tx, caller.org_id, id, decision, reviewer_id, reason).await? {
        return Err(Error::Conflict { detail: format!("check-in {id} was decided meanwhile"), errors: Vec::new() });
    }
    if decision == ReviewDecision::Accepted {
        let reviewed =
            db::visits::Reviewed { visit_id: None, rep_id, outlet_id: c.outlet_id, arrival: c.checked_in_at };
        db::visits::add_review(&mut *tx, caller.org_id, reviewed, reviewer_id, decision, reason).await?;
        db::photos::mark_rep_day(&mut *tx, caller.org_id, rep_id, rep_day).await?;
    }
    let detail =
        serde_json::json!({"decision": decision, "reason": reason, "rep_id": rep_id, "outlet_id": c.outlet_id});
    caller.audit(&mut *tx, AuditAction::CheckinReview, "checkin", id, detail).await?;
    tx.commit().await?;
    let (after, _) =
        db::checkins::get(db, caller.org_id, id).await?.ok_or_else(|| Error::Internal("check-in lost".into()))?;
    standing(db, caller.org_id, rep_id, vec![after]).await?.pop().ok_or_else(|| Error::Internal("check-in lost".into()))
}
