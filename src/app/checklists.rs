//! A rep's checklist answers for a visit: checked item by item against the checklist, the
//! problems found, the outlet attributes the answers keep up to date (with history), audited.

use super::{Caller, Error};
use crate::db;
use crate::db::checklists::{NewOutcome, Outcome};
use crate::db::visits::VisitKey;
use crate::domain::audit::AuditAction;
use crate::domain::checklist;
use crate::domain::validation::FieldError;
use serde_json::{Value, json};

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
    let org_id = caller.org_id;
    let list = db::checklists::get(db, org_id, checklist_id).await?.ok_or_else(|| {
        Error::Invalid(vec![FieldError::new("checklist_id", format!("checklist {checklist_id} does not exist"))])
    })?;
    let items: Vec<checklist::Item> = serde_json::from_value(list.items.clone())
        .map_err(|e| Error::Internal(format!("checklist {} as stored: {e}", list.id)))?;
    let answers = checklist::check_answers(&items, answers).map_err(Error::Invalid)?;
    let problems = checklist::problems(&items, &answers);
    let attributes = checklist::outlet_attributes(&items, &answers);
    let answers = Value::Object(answers);
    let carried = Value::Object(attributes.iter().cloned().collect());
    let new = NewOutcome {
        checklist_id: list.id,
        visit_id: visit.id,
        rep_id: visit.rep_id,
        rep_day: visit.rep_day,
        visit_arrival: visit.arrival,
        outlet_id: visit.outlet_id,
        answers: &answers,
        problems: &problems,
        submitted_by: caller.user_id,
        submitted_by_device: caller.device_id,
        outlet_attributes: &carried,
    };
    let mut tx = db.begin().await?;
    let (id, linked) = db::checklists::insert_outcome(&mut *tx, org_id, &new).await?;
    if linked.is_none() {
        // The visit was recomputed away meanwhile: the next derivation links the answers to it.
        db::photos::mark_rep_day(&mut *tx, org_id, visit.rep_id, visit.rep_day).await?;
    }
    let changed = db::checklists::set_outlet_attributes(&mut tx, org_id, visit.outlet_id, id, &attributes).await?;
    let detail = json!({"visit_id": visit.id, "checklist_id": list.id, "problems": problems,
                        "outlet_attributes_changed": changed});
    caller.audit(&mut *tx, AuditAction::OutcomeSubmit, "visit_outcome", id, detail).await?;
    tx.commit().await?;
    db::checklists::outcome(db, org_id, id)
        .await?
        .ok_or_else(|| Error::Internal(format!("outcome {id} not found after its commit")))
}
