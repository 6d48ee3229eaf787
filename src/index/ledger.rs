//! The counted (valid) visits of every outlet of an org, in memory, so that outlet statuses for a
//! map viewport or a tile need no visit read per outlet.
//!
//! # Coherence
//! Migration `0016_visit_counted.sql` logs, for every statement on `visits`, the outlets it touched
//! with the writing transaction's id. Before each use a ledger reads the log rows with a
//! transaction id at or above its *cursor*, the xmin of the snapshot of its previous read, and
//! re-reads those outlets' counted visits. Every transaction below that xmin had ended when the
//! previous read was taken, so whatever it wrote was read then; everything else is read now. A
//! read therefore sees every visit committed before it started, on any server instance, whatever
//! the commit order; a change may be read twice, which is harmless.
//!
//! Log rows older than [`LOG_RETENTION_HOURS`] are pruned; a ledger that has not read for half of
//! that reloads whole.

use super::idmap::IdMap;
use crate::db::visit_ledger;
use chrono::{Datelike, NaiveDate};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Hours the change log is kept.
pub const LOG_RETENTION_HOURS: i64 = 24;

/// A ledger idle for longer than this reloads whole (the log may have been pruned meanwhile).
const RELOAD_AFTER: Duration = Duration::from_secs(LOG_RETENTION_HOURS as u64 * 3600 / 2);

/// How often one server prunes the log.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// One counted visit: its local day (days from the common era) and its dwell in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Counted {
    pub day: i32,
    pub dwell_s: i32,
}

/// One outlet's counted visits in the ledger, by day.
#[derive(Debug, Clone, Copy)]
pub struct Visits<'a>(&'a [Counted]);

impl<'a> Visits<'a> {
    /// The local day of the last one in `[from, to]`.
    pub fn last_in(self, from: NaiveDate, to: NaiveDate) -> Option<NaiveDate> {
        let (lo, hi) = (day_number(from), day_number(to));
        let end = self.0.partition_point(|c| c.day <= hi);
        self.0[..end].last().filter(|c| c.day >= lo).and_then(|c| NaiveDate::from_num_days_from_ce_opt(c.day))
    }

    /// Those in `[from, to]`.
    pub fn within(self, from: NaiveDate, to: NaiveDate) -> &'a [Counted] {
        let (lo, hi) = (day_number(from), day_number(to));
        let start = self.0.partition_point(|c| c.day < lo);
        let end = self.0.partition_point(|c| c.day <= hi);
        &self.0[start..end.max(start)]
    }
}

/// The counted visits of one org's outlets on the local days from `horizon` on.
#[derive(Debug)]
pub struct Ledger {
    by_outlet: IdMap<Vec<Counted>>,
    /// The first local day held; visits before it are not in the ledger.
    pub horizon: NaiveDate,
    cursor: i64,
    synced_at: Instant,
}

fn day_number(d: NaiveDate) -> i32 {
    d.num_days_from_ce()
}

impl Ledger {
    /// Whether the ledger holds every counted visit of `[from, to]`.
    pub fn covers(&self, from: NaiveDate) -> bool {
        from >= self.horizon
    }

    /// The outlet's counted visits, by day.
    pub fn of(&self, outlet_id: i64) -> Visits<'_> {
        Visits(self.by_outlet.get(&outlet_id).map_or(&[], Vec::as_slice))
    }

    fn replace(&mut self, outlet_ids: &[i64], rows: Vec<(i64, NaiveDate, i32)>) {
        for id in outlet_ids {
            self.by_outlet.remove(id);
        }
        self.insert(rows);
    }

    fn insert(&mut self, mut rows: Vec<(i64, NaiveDate, i32)>) {
        // By outlet and day: each outlet's visits allocated at once, the outlets in id order, so
        // that a pass over the outlets in id order reads the ledger's memory in order too.
        rows.sort_unstable();
        for run in rows.chunk_by(|a, b| a.0 == b.0) {
            let visits = self.by_outlet.entry(run[0].0).or_default();
            let held = visits.len();
            visits.reserve_exact(run.len());
            visits.extend(run.iter().map(|(_, day, dwell_s)| Counted { day: day_number(*day), dwell_s: *dwell_s }));
            if held > 0 {
                visits.sort_unstable();
            }
        }
    }
}

/// The ledgers of the orgs of one server process, each loaded on first use.
pub struct Ledgers {
    /// Catching up with the changes since a ledger's last read (for a request).
    pool: PgPool,
    /// Whole loads and pruning the log, which grow with an org's visits: the pool without a
    /// statement timeout.
    load_pool: PgPool,
    days: u32,
    orgs: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<Option<Ledger>>>>>,
    pruned_at: Mutex<Option<Instant>>,
}

impl Ledgers {
    /// Ledgers holding the last `days` local days (0: no ledger; callers read the database),
    /// catching up through `pool` and loading whole (and pruning the log) through `load_pool`.
    pub fn new(pool: PgPool, load_pool: PgPool, days: u32) -> Arc<Ledgers> {
        Arc::new(Ledgers { pool, load_pool, days, orgs: Mutex::new(HashMap::new()), pruned_at: Mutex::new(None) })
    }

    /// Runs `f` on the org's ledger brought up to date with the database, or returns `None`
    /// when ledgers are off.
    pub async fn with<R>(&self, org_id: i64, f: impl FnOnce(&Ledger) -> R) -> Result<Option<R>, sqlx::Error> {
        if self.days == 0 {
            return Ok(None);
        }
        self.prune().await?;
        let slot = self
            .orgs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(org_id)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(None)))
            .clone();
        let mut guard = slot.lock().await;
        match guard.as_mut() {
            Some(ledger) if ledger.synced_at.elapsed() < RELOAD_AFTER => self.sync(org_id, ledger).await?,
            _ => *guard = Some(self.load(org_id).await?),
        }
        Ok(guard.as_ref().map(f))
    }

    async fn load(&self, org_id: i64) -> Result<Ledger, sqlx::Error> {
        let cursor = visit_ledger::snapshot_xmin(&self.load_pool).await?;
        // `FV_VISIT_LEDGER_DAYS` is any u32: no fix (so no visit) is older than 1970, and a horizon
        // before it keeps everything without leaving the dates PostgreSQL holds.
        let today = chrono::Utc::now().date_naive();
        let first = chrono::DateTime::UNIX_EPOCH.date_naive();
        let horizon = today.checked_sub_days(chrono::Days::new(u64::from(self.days))).map_or(first, |h| h.max(first));
        let rows = visit_ledger::counted(&self.load_pool, org_id, horizon).await?;
        let mut ledger = Ledger { by_outlet: IdMap::default(), horizon, cursor, synced_at: Instant::now() };
        ledger.insert(rows);
        Ok(ledger)
    }

    async fn sync(&self, org_id: i64, ledger: &mut Ledger) -> Result<(), sqlx::Error> {
        let (cursor, changed) = visit_ledger::changed_since(&self.pool, org_id, ledger.cursor).await?;
        if !changed.is_empty() {
            let rows = visit_ledger::counted_of(&self.pool, org_id, &changed, ledger.horizon).await?;
            ledger.replace(&changed, rows);
        }
        ledger.cursor = cursor;
        ledger.synced_at = Instant::now();
        Ok(())
    }

    /// Deletes log rows past their retention, at most every [`PRUNE_EVERY`] per process.
    async fn prune(&self) -> Result<(), sqlx::Error> {
        {
            let mut at = self.pruned_at.lock().unwrap_or_else(PoisonError::into_inner);
            if at.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
                return Ok(());
            }
            *at = Some(Instant::now());
        }
        visit_ledger::prune(&self.load_pool, LOG_RETENTION_HOURS as i32).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 5, day).expect("valid date")
    }

    fn ledger(rows: Vec<(i64, NaiveDate, i32)>) -> Ledger {
        let mut l = Ledger { by_outlet: IdMap::default(), horizon: d(1), cursor: 0, synced_at: Instant::now() };
        l.insert(rows);
        l
    }

    #[test]
    fn last_and_period_visits_respect_the_bounds() {
        let l = ledger(vec![(1, d(10), 600), (1, d(3), 300), (1, d(20), 60), (2, d(5), 10)]);
        assert_eq!(l.of(1).last_in(d(1), d(19)), Some(d(10)));
        assert_eq!(l.of(1).last_in(d(1), d(20)), Some(d(20)));
        assert_eq!(l.of(1).last_in(d(11), d(19)), None);
        assert_eq!(l.of(1).last_in(d(1), d(2)), None);
        assert_eq!(l.of(3).last_in(d(1), d(30)), None);
        let days: Vec<i32> = l.of(1).within(d(3), d(10)).iter().map(|c| c.dwell_s).collect();
        assert_eq!(days, vec![300, 600]);
        assert!(l.of(1).within(d(11), d(19)).is_empty());
    }

    #[test]
    fn a_replaced_outlet_keeps_only_its_new_visits() {
        let mut l = ledger(vec![(1, d(10), 600), (2, d(5), 10)]);
        l.replace(&[1, 3], vec![(3, d(7), 70)]);
        assert!(l.of(1).within(d(1), d(31)).is_empty());
        assert_eq!(l.of(3).last_in(d(1), d(31)), Some(d(7)));
        assert_eq!(l.of(2).last_in(d(1), d(31)), Some(d(5)));
    }
}
