//! Raw-ping retention: a scheduled pass deletes each org's pings older than its retention period
//! (`settings.pings.retention_days`, default 400 days, the same age beyond which ingestion refuses
//! fixes). Visits and every figure derived from the pings are kept: the days whose pings are gone
//! are retired from re-derivation. Whole local days go: the day holding the cutoff keeps its pings
//! until the next day. Each pass that removed something is in the audit log. The distance
//! travelled of each removed rep-day is kept first (`kept_day_distances`), so the compliance
//! figures of retired days do not change; their tracks are gone with the pings.

use crate::db;
use crate::domain::audit::AuditAction;
use crate::domain::compliance::{self, ComplianceRules};
use crate::domain::ping_filter::FilterPolicy;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;

/// What one pass did in one org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgPass {
    pub org_id: i64,
    pub cutoff: DateTime<Utc>,
    pub removed: db::privacy::Removed,
}

/// One retention pass over every org, as of `now`. Orgs whose ping settings do not parse are
/// skipped (nothing is deleted on a policy nobody can read).
pub async fn run_once(db: &PgPool, now: DateTime<Utc>) -> Result<Vec<OrgPass>, sqlx::Error> {
    let mut passes = Vec::new();
    for org in db::privacy::orgs(db).await? {
        let policy = match FilterPolicy::from_settings(&org.settings) {
            Ok(p) => p,
            Err(errors) => {
                tracing::warn!(org_id = org.id, ?errors, "invalid ping settings: retention skipped for this org");
                continue;
            }
        };
        let cutoff = now - policy.retention;
        let mut tx = db.begin().await?;
        let day = db::privacy::lock_cutoff_day(&mut tx, org.id, cutoff).await?;
        let kept = keep_distances(&mut tx, org.id, day).await?;
        let removed = db::privacy::remove_pings_before(&mut tx, org.id, day).await?;
        if removed.pings > 0 || removed.dirty_rep_days > 0 {
            db::audit::record(
                &mut *tx,
                org.id,
                db::audit::NewEntry {
                    actor_user_id: None,
                    actor_device_id: None,
                    action: AuditAction::PingsRetention,
                    object_type: "pings",
                    object_id: None,
                    request_id: None,
                    detail: json!({
                        "pings_removed": removed.pings,
                        "fix_time_before": removed.before,
                        "retention_days": policy.retention.num_days(),
                        "dirty_rep_days_dropped": removed.dirty_rep_days,
                        "visits_final_before": removed.kept_from,
                        "day_distances_kept": kept,
                    }),
                },
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(org_id = org.id, pings = removed.pings, before = %removed.before, "retention pass");
        passes.push(OrgPass { org_id: org.id, cutoff, removed });
    }
    Ok(passes)
}

/// Keeps the distance travelled of every rep-day whose fixes are about to be removed (the
/// compliance figure, computed as the compliance API does); returns how many were kept.
async fn keep_distances(
    tx: &mut PgConnection,
    org_id: i64,
    (kept_from, day_start): (NaiveDate, DateTime<Utc>),
) -> Result<usize, sqlx::Error> {
    let rules = ComplianceRules::default();
    let days = db::privacy::unkept_rep_days(&mut *tx, org_id, day_start).await?;
    for &(rep_id, day) in &days {
        debug_assert!(day < kept_from);
        let fixes: Vec<_> =
            db::visits::day_fixes(&mut *tx, org_id, rep_id, day, day).await?.into_iter().map(|(_, f)| f).collect();
        let distance = compliance::distance_m(&fixes, &rules);
        let count = i32::try_from(fixes.len()).unwrap_or(i32::MAX);
        db::privacy::keep_distance(&mut *tx, org_id, rep_id, day, distance, count).await?;
    }
    Ok(days.len())
}

/// Runs a pass every `interval` (the first one interval after start); a failed pass is logged
/// and retried at the next tick.
pub fn start(db: PgPool, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = run_once(&db, Utc::now()).await {
                tracing::error!(error = %e, "retention pass failed");
            }
        }
    })
}
