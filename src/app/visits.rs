//! Derived visits: recomputing a period's visits (after a rule change, or to check a figure).

use super::{Caller, Error};
use crate::db;
use crate::domain::audit::AuditAction;
use crate::domain::plan::date_in_range;
use chrono::NaiveDate;
use serde_json::json;

/// Most days one recomputation covers.
const MAX_RECOMPUTE_DAYS: i64 = 366;

/// Marks every rep-day of the caller's org in `[from, to]` that has pings or visits for derivation
/// again, audited; returns how many were marked. The derivation workers recompute them in the
/// background (the caller wakes them).
pub async fn recompute(db: &sqlx::PgPool, caller: &Caller<'_>, from: NaiveDate, to: NaiveDate) -> Result<u64, Error> {
    if to < from {
        return Err(Error::field("to", "must not be before `from`"));
    }
    if !date_in_range(from) || !date_in_range(to) {
        return Err(Error::field("from", "dates must be from 2000-01-01 to 2100-12-31"));
    }
    if (to - from).num_days() >= MAX_RECOMPUTE_DAYS {
        return Err(Error::field("to", format!("a recomputation covers at most {MAX_RECOMPUTE_DAYS} days")));
    }
    let rep_days = db::visits::mark_period(db, caller.org_id, from, to, "recompute").await?;
    let detail = json!({"from": from, "to": to, "rep_days": rep_days});
    caller.audit(db, AuditAction::OrgRecomputeVisits, "org", caller.org_id, detail).await?;
    Ok(rep_days)
}
