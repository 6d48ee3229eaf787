//! A rep's checklist answers for a visit, or at a check-in before any visit is derived: checked
//! item by item against the checklist, the problems found, the outlet attributes the answers keep
//! up to date (with history), audited. A check-in's answers are stored once per client id of the
//! app; the same client id for other answers is a conflict.

use super::{Caller, Error};
use crate::db;
use crate::db::checkins::Checkin;
use crate::db::checklists::{NewOutcome, Outcome};
use crate::db::visits::VisitKey;
use crate::domain::audit::AuditAction;
use crate::domain::checklist;
use crate::domain::validation::FieldError;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

/// Answers checked against their checklist version: what is stored.
struct Checked {
    checklist_id: i64,
    answers: Value,
    problems: Vec<String>,
    /// The outlet attributes the answers set (attribute -> value).
    attributes: Vec<(String, Value)>,
}

/// What the answers are given for: a visit, or a check-in (no visit yet; derivation links them by
/// rep, day, outlet and check-in time).
struct Anchor<'a> {
    visit_id: Option<i64>,
    rep_id: i64,
    rep_day: NaiveDate,
    arrival: DateTime<Utc>,
    outlet_id: i64,
    /// The check-in and the app's id of the answers.
    checkin: Option<(i64, &'a str)>,
}

/// Checks `answers` against checklist version `checklist_id`: every wrong one is named
/// (`answers.<key>`); the one definition both the visit and the check-in route use.
async fn check(db: &sqlx::PgPool, org_id: i64, checklist_id: i64, answers: &Value) -> Result<Checked, Error> {
    let list = db::checklists::get(db, org_id, checklist_id).await?.ok_or_else(|| {
        Error::Invalid(vec![FieldError::new("checklist_id", format!("checklist {checklist_id} does not exist"))])
    })?;
    let items: Vec<checklist::Item> = serde_json::from_value(list.items.clone())
        .map_err(|e| Error::Internal(format!("checklist {} as stored: {e}", list.id)))?;
    let answers = checklist::check_answers(&items, answers).map_err(Error::Invalid)?;
    let problems = checklist::problems(&items, &answers);
    let attributes = checklist::outlet_attributes(&items, &answers);
    Ok(Checked { checklist_id: list.id, answers: Value::Object(answers), problems, attributes })
}

/// Stores `caller`'s answers to checklist `checklist_id` for `visit` (whose rep the caller is or
/// carries the device of: the handler has checked) and returns the stored outcome. Nothing is
/// stored when an answer is wrong: each is named.
pub async fn submit_outcome(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    visit: &VisitKey,
    checklist_id: i64,
    answers: &Value,
) -> Result<Outcome, Error> {
    let checked = check(db, caller.org_id, checklist_id, answers).await?;
    let anchor = Anchor {
        visit_id: Some(visit.id),
        rep_id: visit.rep_id,
        rep_day: visit.rep_day,
        arrival: visit.arrival,
        outlet_id: visit.outlet_id,
        checkin: None,
    };
    Ok(save(db, caller, &anchor, &checked).await?.0)
}

/// Stores `caller`'s answers to checklist `checklist_id` given at `checkin` (the caller's own:
/// see `checkins::own`) with the app's id `client_id`, checked as [`submit_outcome`] checks them,
/// anchored to the check-in (its rep, local day, outlet and time) for derivation to link to its
/// visit. A retry with the same client id, checklist version and answers, also one racing the
/// first, stores nothing and returns the stored outcome; another checklist version or other
/// answers under that client id are a conflict naming `answers_client_id`. Returns the outcome
/// and whether it is new.
pub async fn submit_at_checkin(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    checkin: &Checkin,
    client_id: &str,
    checklist_id: i64,
    answers: &Value,
) -> Result<(Outcome, bool), Error> {
    let checked = check(db, caller.org_id, checklist_id, answers).await?;
    let anchor = Anchor {
        visit_id: None,
        rep_id: checkin.rep_id,
        rep_day: db::plans::local_date(db, caller.org_id, checkin.checked_in_at).await?,
        arrival: checkin.checked_in_at,
        outlet_id: checkin.outlet_id,
        checkin: Some((checkin.id, client_id)),
    };
    save(db, caller, &anchor, &checked).await
}

/// Stores checked answers for `anchor` with the outlet attributes they set and the audit row, in
/// one transaction; a check-in's answers already stored under their client id are returned
/// instead (`false`: nothing written), or a conflict when they are not the same answers.
async fn save(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    anchor: &Anchor<'_>,
    checked: &Checked,
) -> Result<(Outcome, bool), Error> {
    let org_id = caller.org_id;
    let carried = Value::Object(checked.attributes.iter().cloned().collect());
    let new = NewOutcome {
        checklist_id: checked.checklist_id,
        visit_id: anchor.visit_id,
        rep_id: anchor.rep_id,
        rep_day: anchor.rep_day,
        visit_arrival: anchor.arrival,
        outlet_id: anchor.outlet_id,
        answers: &checked.answers,
        problems: &checked.problems,
        submitted_by: caller.user_id,
        submitted_by_device: caller.device_id,
        outlet_attributes: &carried,
        checkin: anchor.checkin,
    };
    let mut tx = db.begin().await?;
    let Some((id, linked)) = db::checklists::insert_outcome(&mut *tx, org_id, &new).await? else {
        // A retry of a check-in's answers: the stored ones answer, nothing new is written.
        tx.rollback().await?;
        let (checkin_id, client_id) = anchor.checkin.ok_or_else(|| Error::Internal("outcome not stored".into()))?;
        let stored = db::checklists::outcome_of_checkin(db, org_id, checkin_id, client_id).await?;
        let stored = stored.ok_or_else(|| Error::Internal("check-in answers lost after a conflict".into()))?;
        if !db::checklists::same_answers(db, org_id, stored.id, checked.checklist_id, &checked.answers).await? {
            return Err(Error::Conflict {
                detail: format!(
                    "client id `{client_id}` is already outcome {} of this check-in (checklist {}), other answers",
                    stored.id, stored.checklist_id
                ),
                errors: vec![FieldError::new("answers_client_id", "already used for other answers at this check-in")],
            });
        }
        return Ok((stored, false));
    };
    if linked.is_none() {
        // No visit (yet): the visit was recomputed away meanwhile, or the answers hang on a
        // check-in; the next derivation links them to it.
        db::photos::mark_rep_day(&mut *tx, org_id, anchor.rep_id, anchor.rep_day).await?;
    }
    let changed =
        db::checklists::set_outlet_attributes(&mut tx, org_id, anchor.outlet_id, id, &checked.attributes).await?;
    let mut detail = json!({"visit_id": anchor.visit_id, "checklist_id": checked.checklist_id,
                            "problems": checked.problems, "outlet_attributes_changed": changed});
    if let Some((checkin_id, client_id)) = anchor.checkin {
        detail["checkin_id"] = json!(checkin_id);
        detail["client_id"] = json!(client_id);
    }
    caller.audit(&mut *tx, AuditAction::OutcomeSubmit, "visit_outcome", id, detail).await?;
    tx.commit().await?;
    let stored = db::checklists::outcome(db, org_id, id).await?;
    Ok((stored.ok_or_else(|| Error::Internal(format!("outcome {id} not found after its commit")))?, true))
}
