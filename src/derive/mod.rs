//! The visit derivation worker: claims dirty rep-days (`db::visits`), derives their visits from the
//! stored fixes with `domain::visit`, and replaces the rep-day's visits. Every server instance runs
//! one; the claim protocol and a per-rep-day advisory lock keep them from double-counting, and the
//! result is the same whichever instance (and whenever) computes it.

use crate::db::visits::{self, DirtyDay};
use crate::domain::checkin;
use crate::domain::visit::{self, TrackBox, VisitRules};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};
use sqlx::PgPool;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Newly recorded outlets whose rep-days are marked per round (one pass over a week of pings per
/// recording day among them).
const ADDITIONS_BATCH: i64 = 10_000;
/// Rep-days claimed per round.
const CLAIM_BATCH: i64 = 48;
/// Claimed rep-days of one org derived as one group: a constant number of statements for the
/// group (its reads, one candidate query, one write transaction) instead of some twenty per
/// rep-day.
const GROUP_SIZE: usize = 16;
/// Groups derived at once by one instance: while one waits for the database (its reads, its
/// write), another derives on the CPU. Each takes up to two background connections for its
/// reads, so `FV_DB_BACKGROUND_CONNECTIONS` of 6 lets all three read at once.
const DERIVE_AT_ONCE: usize = 3;
/// A claim older than this belongs to a worker that died; another may take it over.
pub const STALE_CLAIM_S: i64 = 300;
/// How often the worker looks for work when nobody wakes it (marks from other instances).
const POLL_EVERY: Duration = Duration::from_secs(2);

/// Derives a group of claimed rep-days of one org and says, per rep-day, whether it was written
/// (`false`: new fixes arrived meanwhile): [`derive_days`] in the server; tests pass their own to
/// exercise the worker's supervision (a step that panics).
pub type DeriveStep =
    Arc<dyn Fn(PgPool, Vec<DirtyDay>) -> BoxFuture<'static, Result<Vec<bool>, sqlx::Error>> + Send + Sync>;

/// Handle of the running worker.
pub struct Deriver {
    wake: Notify,
    derived: IntCounterVec,
    /// Rep-day derivations that panicked (caught; the worker goes on).
    panics: IntCounter,
    /// Times the worker task itself was restarted after a panic outside a rep-day.
    restarts: IntCounter,
    /// Dirty rep-days of every org, claimed or not, at the worker's last round.
    pending: IntGauge,
    step: DeriveStep,
}

impl Deriver {
    /// Starts the worker on the current Tokio runtime (unless `enabled` is false: then only the
    /// handle exists) and registers its metrics.
    pub fn start(
        db: &PgPool,
        registry: &prometheus::Registry,
        enabled: bool,
        settle_s: u32,
    ) -> prometheus::Result<Arc<Self>> {
        let step: DeriveStep =
            Arc::new(|db, days| Box::pin(async move { derive_days(&db, &days, &VisitRules::default()).await }));
        Self::start_with(db, registry, enabled, settle_s, step)
    }

    /// [`Deriver::start`] with the step that derives a group of rep-days given (tests).
    pub fn start_with(
        db: &PgPool,
        registry: &prometheus::Registry,
        enabled: bool,
        settle_s: u32,
        step: DeriveStep,
    ) -> prometheus::Result<Arc<Self>> {
        let derived = IntCounterVec::new(
            Opts::new("rep_days_derived_total", "Rep-days whose visits were derived, by outcome"),
            &["outcome"],
        )?;
        let panics = IntCounter::new(
            "derive_panics_total",
            "Rep-day derivations that panicked (caught; the rep-day waits for the stale-claim takeover)",
        )?;
        let restarts =
            IntCounter::new("derive_worker_restarts_total", "Restarts of the derivation worker after a panic")?;
        registry.register(Box::new(derived.clone()))?;
        registry.register(Box::new(panics.clone()))?;
        let pending = IntGauge::new(
            "derive_pending_rep_days",
            "Dirty rep-days of every org (claimed or not) at this instance's worker's last round",
        )?;
        registry.register(Box::new(restarts.clone()))?;
        registry.register(Box::new(pending.clone()))?;
        let deriver = Arc::new(Deriver { wake: Notify::new(), derived, panics, restarts, pending, step });
        if enabled {
            tokio::spawn(supervise(db.clone(), Arc::downgrade(&deriver), settle_s));
        }
        Ok(deriver)
    }

    /// Tells the worker that rep-days were marked dirty (it also polls).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Runs the worker and restarts it (after [`POLL_EVERY`]) whenever it panics, counting each restart;
/// it ends when the worker ends (the pool closed, the handle dropped).
async fn supervise(db: PgPool, deriver: std::sync::Weak<Deriver>, settle_s: u32) {
    loop {
        let worker = tokio::spawn(run(db.clone(), deriver.clone(), settle_s));
        match worker.await {
            Err(e) if e.is_panic() => {
                let Some(me) = deriver.upgrade() else { return };
                me.restarts.inc();
                tracing::error!(panic = %panic_text(e.into_panic().as_ref()), "derivation worker panicked; restarting");
            }
            _ => return,
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

async fn run(db: PgPool, deriver: std::sync::Weak<Deriver>, settle_s: u32) {
    let rules = VisitRules::default();
    match visits::mark_rule_change(&db, visit::RULE_VERSION).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(rep_days = n, rule_version = visit::RULE_VERSION, "visit rules changed: rep-days marked");
        }
        Err(e) => tracing::warn!(error = %e, "rep-days of a rule change not marked; they are derived when next dirty"),
    }
    loop {
        if db.is_closed() {
            return;
        }
        match visits::mark_outlet_additions(&db, ADDITIONS_BATCH, rules.accuracy_cap_m).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rep_days = n, "newly recorded outlets: rep-days marked"),
            Err(e) => tracing::warn!(error = %e, "rep-days of newly recorded outlets not marked; retried"),
        }
        // Only a live worker claims: one whose handle is gone would stop with its claims unworked,
        // and they would wait for the stale-claim takeover.
        let Some(me) = deriver.upgrade() else { return };
        if let Ok(n) = visits::dirty_count(&db).await {
            me.pending.set(n);
        }
        let claimed = visits::claim_dirty(&db, CLAIM_BATCH, settle_s, STALE_CLAIM_S).await;
        match claimed {
            Ok(days) if !days.is_empty() => {
                let (me, db) = (&me, &db);
                futures_util::stream::iter(groups(days))
                    .for_each_concurrent(DERIVE_AT_ONCE, |group| me.derive_group(db, group))
                    .await;
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                if db.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "dirty rep-days not claimed");
            }
        }
        // A wake-up before this wait is kept by `Notify` (one permit), so none is lost.
        let _ = tokio::time::timeout(POLL_EVERY, me.wake.notified()).await;
    }
}

/// The claimed rep-days as groups of at most [`GROUP_SIZE`] of one org each, in claim order.
fn groups(mut days: Vec<DirtyDay>) -> Vec<Vec<DirtyDay>> {
    // Stable: each org's rep-days stay in claim order (rep by rep, day by day).
    days.sort_by_key(|d| d.org_id);
    days.chunk_by(|a, b| a.org_id == b.org_id)
        .flat_map(|org| org.chunks(GROUP_SIZE))
        .map(<[DirtyDay]>::to_vec)
        .collect()
}

impl Deriver {
    /// Derives a group of claimed rep-days and counts each one's outcome. When the group fails or
    /// panics, its rep-days are derived again one at a time, so that a rep-day whose derivation
    /// fails holds back only itself.
    async fn derive_group(&self, db: &PgPool, group: Vec<DirtyDay>) {
        if group.len() > 1 {
            let (org_id, n) = (group[0].org_id, group.len());
            match AssertUnwindSafe((self.step)(db.clone(), group.clone())).catch_unwind().await {
                Ok(Ok(done)) => {
                    for written in done {
                        self.derived.with_label_values(&[if written { "done" } else { "changed_meanwhile" }]).inc();
                    }
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, org_id, rep_days = n, "group of rep-days not derived; one at a time now");
                }
                Err(payload) => {
                    tracing::error!(panic = %panic_text(payload.as_ref()), org_id, rep_days = n,
                        "derivation of a group of rep-days panicked; one at a time now");
                }
            }
        }
        for day in group {
            let outcome = self.derive_one(db, day).await;
            self.derived.with_label_values(&[outcome]).inc();
        }
    }

    /// Derives one claimed rep-day (a group of one) and names the outcome. A panic is caught and
    /// counted: the rep-day keeps its claim, so it is tried again only when the claim goes stale
    /// ([`STALE_CLAIM_S`]), never in a hot loop, and the other rep-days go on.
    async fn derive_one(&self, db: &PgPool, day: DirtyDay) -> &'static str {
        let (org_id, rep_id, local_day) = (day.org_id, day.rep_id, day.day);
        match AssertUnwindSafe(async { (self.step)(db.clone(), vec![day]).await }).catch_unwind().await {
            Ok(Ok(done)) if done.first() == Some(&true) => "done",
            Ok(Ok(_)) => "changed_meanwhile",
            Ok(Err(e)) => {
                tracing::warn!(error = %e, org_id, rep_id, day = %local_day, "visits not derived; the rep-day stays dirty");
                "error"
            }
            Err(payload) => {
                self.panics.inc();
                tracing::error!(panic = %panic_text(payload.as_ref()), org_id, rep_id, day = %local_day,
                    "visit derivation panicked; the rep-day is tried again when its claim goes stale");
                "panic"
            }
        }
    }
}

/// Derives one claimed rep-day ([`derive_days`] of a group of one); `false` when new fixes
/// arrived meanwhile (it stays dirty).
pub async fn derive_day(db: &PgPool, day: &DirtyDay, rules: &VisitRules) -> Result<bool, sqlx::Error> {
    let done = derive_days(db, std::slice::from_ref(day), rules).await?;
    Ok(done.first().copied().unwrap_or(false))
}

/// Derives claimed rep-days (of any orgs; one group per org) and says, per rep-day, whether it was
/// written: `false` when new fixes arrived meanwhile (it stays dirty). The same visits as deriving
/// each alone, with a constant number of statements per org: the day bounds, the fixes of every
/// rep-day, the candidate outlets near them (probed with the boxes of the fixes read, not by
/// reading the pings again), the photos and the check-in claims, then one write transaction.
pub async fn derive_days(db: &PgPool, days: &[DirtyDay], rules: &VisitRules) -> Result<Vec<bool>, sqlx::Error> {
    let mut orgs: Vec<i64> = days.iter().map(|d| d.org_id).collect();
    orgs.sort_unstable();
    orgs.dedup();
    let mut done = vec![false; days.len()];
    for org_id in orgs {
        let at: Vec<usize> = (0..days.len()).filter(|&i| days[i].org_id == org_id).collect();
        let group: Vec<DirtyDay> = at.iter().map(|&i| days[i].clone()).collect();
        for (i, written) in at.into_iter().zip(derive_org_days(db, org_id, &group, rules).await?) {
            done[i] = written;
        }
    }
    Ok(done)
}

async fn derive_org_days(
    db: &PgPool,
    org_id: i64,
    days: &[DirtyDay],
    rules: &VisitRules,
) -> Result<Vec<bool>, sqlx::Error> {
    let reps: Vec<i64> = days.iter().map(|d| d.rep_id).collect();
    let dates: Vec<NaiveDate> = days.iter().map(|d| d.day).collect();
    let (bounds, photos) = tokio::try_join!(
        visits::days_bounds(db, org_id, &dates),
        crate::db::photos::of_rep_days(db, org_id, &reps, &dates),
    )?;
    if bounds.len() != days.len() {
        return Err(sqlx::Error::RowNotFound);
    }
    let (from, to): (Vec<DateTime<Utc>>, Vec<DateTime<Utc>>) = bounds.into_iter().unzip();
    // The fixes and the check-in claims side by side (on two connections); the candidate outlets
    // are probed with the boxes of the fixes read.
    let (fixes, claims) = tokio::try_join!(
        visits::group_fixes(db, org_id, &reps, &from, &to),
        crate::db::checkins::accepted_claims_of(db, org_id, &reps, &from, &to),
    )?;
    let boxes: Vec<Vec<TrackBox>> = fixes.iter().map(|f| visit::track_boxes(f, visits::PROBE_CELL_DEG)).collect();
    let boxes: Vec<&[TrackBox]> = boxes.iter().map(Vec::as_slice).collect();
    let outlets = visits::group_candidates(db, org_id, &boxes, rules.accuracy_cap_m, &from, &to).await?;
    let derived: Vec<Vec<visit::Visit>> = fixes
        .iter()
        .zip(&outlets)
        .zip(photos.iter().zip(&claims))
        .map(|((fixes, outlets), (photos, claims))| derive_one_day(fixes, outlets, photos, claims, rules))
        .collect();
    let derived: Vec<&[visit::Visit]> = derived.iter().map(Vec::as_slice).collect();
    let mut conn = db.acquire().await?;
    visits::replace_days(&mut conn, days, &derived).await
}

/// The visits of one rep-day from what was read for it (pure).
fn derive_one_day(
    fixes: &[visit::VisitFix],
    outlets: &[visit::CandidateOutlet],
    photos: &[visit::VisitPhoto],
    claims: &[crate::db::checkins::Checkin],
    rules: &VisitRules,
) -> Vec<visit::Visit> {
    let mut derived = visit::derive(fixes, outlets, rules);
    if !photos.is_empty() {
        visit::apply_photos(&mut derived, photos, outlets, rules, &crate::domain::photo::PhotoRules::default());
    }
    if !claims.is_empty() {
        let claims: Vec<checkin::AcceptedClaim> = claims.iter().map(crate::db::checkins::Checkin::claim).collect();
        let claimed = checkin::claimed_visits(&claims, &derived);
        derived.extend(claimed);
        derived.sort_by_key(|v| (v.arrival, v.outlet_id));
    }
    derived
}
