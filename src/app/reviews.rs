//! Reviews of a visit: a reviewer's accept or reject, a rep's dispute of their own visit. The
//! visit's evidence is never changed; the latest accept or reject decides whether it counts.

use super::{Caller, Error};
use crate::db;
use crate::db::visits::VisitReview;
use crate::domain::access::{self, DecisionRefusal, Role};
use crate::domain::audit::AuditAction;
use crate::domain::compliance::ReviewDecision;
use serde_json::json;

/// Most characters of a review's reason.
pub const MAX_REASON_CHARS: usize = 2_000;

/// Records `caller`'s review of visit `visit_id`: `decision` (`accepted`, `rejected` or
/// `disputed`, as asked) with `reason`, if the caller sees the visit's rep and may take that
/// decision ([`access::may_decide`]); audited. A rep's device disputes for its rep. Returns the
/// review.
pub async fn review(
    db: &sqlx::PgPool,
    caller: &Caller<'_>,
    visit_id: i64,
    decision: &str,
    reason: &str,
) -> Result<VisitReview, Error> {
    let reason = check_reason(reason)?;
    let visit =
        db::visits::key(db, caller.org_id, visit_id).await?.ok_or_else(|| Error::not_found("visit", visit_id))?;
    if !caller.may_see_rep(visit.rep_id, visit.rep_territory_path.as_deref()) {
        return Err(Error::Forbidden("this rep's data is outside your scope".into()));
    }
    let role = caller.role.ok_or_else(|| Error::Forbidden("reviews need a user or device token".into()))?;
    // The reviewer is the user, or the rep a device acts for.
    let reviewer_id =
        caller.user_id.or(caller.own_rep).ok_or_else(|| Error::Forbidden("reviews need a user token".into()))?;
    let decision = decision_of(role, decision, reviewer_id == visit.rep_id)?;
    let review = db::visits::add_review(db, caller.org_id, (&visit).into(), reviewer_id, decision, reason).await?;
    let detail = json!({"decision": decision, "reason": reason, "review_id": review.id});
    caller.audit(db, AuditAction::VisitReview, "visit", visit.id, detail).await?;
    Ok(review)
}

/// The reason of a review, trimmed: a non-blank text of at most [`MAX_REASON_CHARS`] characters
/// without control characters other than line breaks and tabs; else a 422 naming `reason`.
pub fn check_reason(reason: &str) -> Result<&str, Error> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::field(
            "reason",
            format!("must be a non-blank text of at most {MAX_REASON_CHARS} characters"),
        ));
    }
    if let Some(c) = crate::domain::validation::control_character(reason, crate::domain::validation::Lines::Many) {
        return Err(Error::field("reason", crate::domain::validation::control_character_reason(c)));
    }
    Ok(reason)
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
