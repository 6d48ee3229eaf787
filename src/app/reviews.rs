//! Reviews of a visit: a reviewer's accept or reject, a rep's dispute of their own visit. The
//! visit's evidence is never changed; the latest accept or reject decides whether it counts.

use super::{Caller, Error};
use crate::db;
use crate::db::visits::{VisitKey, VisitReview};
use crate::domain::access::{self, DecisionRefusal, Role};
use crate::domain::audit::AuditAction;
use crate::domain::compliance::ReviewDecision;
use serde_json::json;

/// Most characters of a review's reason.
const MAX_REASON_CHARS: usize = 2_000;

/// Records `caller`'s review of visit `visit_id`: `decision` (`accepted`, `rejected` or
/// `disputed`, as asked) with `reason`, if the caller (a user of `role`) sees the visit's rep and
/// may take that decision ([`access::may_decide`]); audited. Returns the review.
pub async fn review(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    role: Role,
    visit_id: i64,
    decision: &str,
    reason: &str,
) -> Result<VisitReview, Error> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::field(
            "reason",
            format!("must be a non-blank text of at most {MAX_REASON_CHARS} characters"),
        ));
    }
    let visit =
        db::visits::key(db, caller.org_id, visit_id).await?.ok_or_else(|| Error::not_found("visit", visit_id))?;
    if !sees_rep(caller, role, &visit) {
        return Err(Error::Forbidden("this rep's data is outside your scope".into()));
    }
    let reviewer_id = caller.user_id.ok_or_else(|| Error::Forbidden("reviews need a user token".into()))?;
    let decision = decision_of(role, decision, reviewer_id == visit.rep_id)?;
    let review = db::visits::add_review(db, caller.org_id, &visit, reviewer_id, decision, reason).await?;
    let detail = json!({"decision": decision, "reason": reason, "review_id": review.id});
    caller.audit(db, AuditAction::VisitReview, "visit", visit.id, detail).await?;
    Ok(review)
}

/// Whether the caller, a user of `role`, sees the data of the visit's rep: a rep only their own,
/// anyone else the reps within their territory scope (as `Principal::check_rep` in the HTTP layer).
fn sees_rep(caller: &Caller<'_>, role: Role, visit: &VisitKey) -> bool {
    match role {
        Role::Rep => caller.user_id == Some(visit.rep_id),
        _ => caller.may_reach(visit.rep_territory_path.as_deref()),
    }
}

/// The decision asked for (`text`), if a user of `role` may take it (`own_visit`: they are the
/// visit's rep).
fn decision_of(role: Role, text: &str, own_visit: bool) -> Result<ReviewDecision, Error> {
    let unknown = || Error::field("decision", "must be `accepted`, `rejected` or `disputed`");
    let decision = text.parse::<ReviewDecision>().map_err(|_| unknown())?;
    match access::may_decide(role, decision, own_visit) {
        Ok(()) => Ok(decision),
        Err(DecisionRefusal::NotAReviewer) => Err(Error::Forbidden(format!("role `{role}` may not review visits"))),
        Err(DecisionRefusal::NotTheirVisit) => Err(Error::Forbidden("only the rep disputes their own visit".into())),
        Err(DecisionRefusal::NotAsked) => Err(unknown()),
    }
}
