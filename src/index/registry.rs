//! The outlet indexes of every org, loaded from PostgreSQL and kept coherent with it through
//! LISTEN/NOTIFY, so that several server instances over one database answer alike.
//!
//! # What is indexed
//! Every outlet of the org, whatever its status: `active` is true only for status `active`. Closed
//! and suspended outlets stay in the index because a visit must still be judged against an outlet
//! that has closed since; queries that want open outlets filter on `active`.
//!
//! # Coherence
//! Migration `0002_outlet_notify.sql` makes every committed change to `outlets` notify [`CHANNEL`]
//! with the org and the changed outlet ids (or "reload the org" for bulk statements). Notifications
//! are delivered at commit, so the index only ever sees committed data. The listener task re-reads
//! the changed rows (a row that is gone is removed) and patches the loaded indexes; an org that is not
//! loaded is not touched (it is read fresh on first use).
//!
//! After a lost connection the listener reconnects, LISTENs again, and only then rebuilds every loaded
//! org from the database (a *resync*): whatever was committed while it was away is in that snapshot,
//! and whatever is committed after it is notified. The first connection does the same for orgs loaded
//! before it was listening.
//!
//! An org being loaded while notifications arrive keeps them aside and applies them to its fresh
//! snapshot before the index is published, so no change can fall between the snapshot and LISTEN.
//!
//! Readers take the read lock only for the duration of a query; the listener takes the write lock
//! only to apply prepared changes or to swap in a rebuilt index.

use super::outlets::{IndexedOutlet, OutletIndex};
use crate::db;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntGauge};
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};

/// The notification channel the outlet triggers send on.
pub const CHANNEL: &str = "fieldvisit_outlets";

/// `application_name` of the listener's own connection (so operators and tests can find it).
pub const LISTENER_APPLICATION_NAME: &str = "fieldvisit-index-listener";

/// One org's index, shared by readers and the listener.
pub type SharedIndex = Arc<RwLock<OutletIndex>>;

/// Read access to an index; a poisoned lock is still readable (writers never leave it half-done).
pub fn read(index: &RwLock<OutletIndex>) -> RwLockReadGuard<'_, OutletIndex> {
    index.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(index: &RwLock<OutletIndex>) -> RwLockWriteGuard<'_, OutletIndex> {
    index.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Changes to apply to one org: outlets to re-read, or the whole org.
#[derive(Debug, Default)]
struct Pending {
    reload: bool,
    ids: BTreeSet<i64>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.reload && self.ids.is_empty()
    }

    fn merge(&mut self, other: Pending) {
        self.reload |= other.reload;
        if self.reload {
            self.ids.clear();
        } else {
            self.ids.extend(other.ids);
        }
    }
}

enum SlotState {
    /// Not loaded (or the last load failed).
    Empty,
    /// A load is running; changes notified meanwhile wait here.
    Loading(Pending),
    Ready(SharedIndex),
}

struct Slot {
    state: Mutex<SlotState>,
    /// Serialises loads of this org.
    load: tokio::sync::Mutex<()>,
}

impl Slot {
    fn ready(&self) -> Option<SharedIndex> {
        match &*lock(&self.state) {
            SlotState::Ready(ix) => Some(ix.clone()),
            _ => None,
        }
    }
}

/// Figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub orgs_loaded: usize,
    pub outlets_indexed: usize,
    /// Full rebuilds after a lost listener connection.
    pub resyncs: u64,
    /// Notifications received.
    pub notifications: u64,
    /// Whether the listener is connected and listening.
    pub listening: bool,
}

/// The per-org outlet indexes of one server process.
pub struct Registry {
    pool: PgPool,
    orgs: Mutex<HashMap<i64, Arc<Slot>>>,
    listener_started: AtomicBool,
    listening: AtomicBool,
    listening_changed: Notify,
    resyncs: AtomicU64,
    notifications: AtomicU64,
    /// Dropped with the registry, which stops the listener.
    stop: watch::Sender<()>,
}

impl Registry {
    pub fn new(pool: PgPool) -> Arc<Registry> {
        Arc::new(Registry {
            pool,
            orgs: Mutex::new(HashMap::new()),
            listener_started: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            listening_changed: Notify::new(),
            resyncs: AtomicU64::new(0),
            notifications: AtomicU64::new(0),
            stop: watch::channel(()).0,
        })
    }

    fn slot(&self, org_id: i64) -> Arc<Slot> {
        lock(&self.orgs)
            .entry(org_id)
            .or_insert_with(|| {
                Arc::new(Slot { state: Mutex::new(SlotState::Empty), load: tokio::sync::Mutex::new(()) })
            })
            .clone()
    }

    fn slots(&self) -> Vec<(i64, Arc<Slot>)> {
        lock(&self.orgs).iter().map(|(id, s)| (*id, s.clone())).collect()
    }

    /// The index of an org, read from the database on first use.
    pub async fn org(&self, org_id: i64) -> Result<SharedIndex, sqlx::Error> {
        let slot = self.slot(org_id);
        if let Some(ix) = slot.ready() {
            return Ok(ix);
        }
        let _loading = slot.load.lock().await;
        if let Some(ix) = slot.ready() {
            return Ok(ix);
        }
        *lock(&slot.state) = SlotState::Loading(Pending::default());
        let loaded = self.load(org_id, &slot).await;
        if loaded.is_err() {
            *lock(&slot.state) = SlotState::Empty;
        }
        loaded
    }

    /// Reads the org, applies what was notified meanwhile, and publishes the index.
    async fn load(&self, org_id: i64, slot: &Slot) -> Result<SharedIndex, sqlx::Error> {
        let mut index = self.build(org_id).await?;
        loop {
            let pending = {
                let mut state = lock(&slot.state);
                let pending = match &mut *state {
                    SlotState::Loading(p) => std::mem::take(p),
                    _ => Pending::default(),
                };
                if pending.is_empty() {
                    let shared = Arc::new(RwLock::new(index));
                    *state = SlotState::Ready(shared.clone());
                    return Ok(shared);
                }
                *state = SlotState::Loading(Pending::default());
                pending
            };
            if pending.reload {
                index = self.build(org_id).await?;
            } else {
                let ids: Vec<i64> = pending.ids.into_iter().collect();
                let rows = self.read(org_id, &ids).await?;
                patch(&mut index, &ids, &rows);
            }
        }
    }

    /// A fresh index of the org from the database (built off the async threads when large).
    async fn build(&self, org_id: i64) -> Result<OutletIndex, sqlx::Error> {
        let outlets: Vec<IndexedOutlet> =
            db::outlets::index_rows(&self.pool, org_id).await?.into_iter().map(IndexedOutlet::from).collect();
        if outlets.len() < 20_000 {
            return Ok(OutletIndex::build(outlets));
        }
        match tokio::task::spawn_blocking(move || OutletIndex::build(outlets)).await {
            Ok(index) => Ok(index),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// The current state of the given outlets of the org; ids that no longer exist are absent.
    async fn read(&self, org_id: i64, ids: &[i64]) -> Result<HashMap<i64, IndexedOutlet>, sqlx::Error> {
        let rows = db::outlets::index_rows_by_id(&self.pool, org_id, ids).await?;
        Ok(rows.into_iter().map(|r| (r.id, IndexedOutlet::from(r))).collect())
    }

    /// Builds the index of every org. Starts the listener first and waits (up to 10 s) until it
    /// listens, so the snapshots need no second read.
    pub async fn load_all(self: &Arc<Self>) -> Result<(), sqlx::Error> {
        self.spawn_listener();
        self.wait_listening(Duration::from_secs(10)).await;
        for org_id in db::orgs::ids(&self.pool).await? {
            self.org(org_id).await?;
        }
        Ok(())
    }

    /// Waits until the listener listens (and has resynchronised), at most `limit`; returns whether it does.
    pub async fn wait_listening(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.listening_changed.notified();
            if self.listening.load(Ordering::Acquire) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.listening.load(Ordering::Acquire);
            }
        }
    }

    fn set_listening(&self, on: bool) {
        self.listening.store(on, Ordering::Release);
        self.listening_changed.notify_waiters();
    }

    pub fn stats(&self) -> Stats {
        let mut stats = Stats {
            resyncs: self.resyncs.load(Ordering::Relaxed),
            notifications: self.notifications.load(Ordering::Relaxed),
            listening: self.listening.load(Ordering::Acquire),
            ..Stats::default()
        };
        for (_, slot) in self.slots() {
            if let Some(ix) = slot.ready() {
                stats.orgs_loaded += 1;
                stats.outlets_indexed += read(&ix).len();
            }
        }
        stats
    }

    /// Starts the listener (once; later calls do nothing). It runs until the registry is dropped
    /// or its database pool is closed. Needs a Tokio runtime.
    pub fn spawn_listener(self: &Arc<Self>) {
        if self.listener_started.swap(true, Ordering::AcqRel) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() {
            self.listener_started.store(false, Ordering::Release);
            tracing::warn!("outlet index listener not started: no Tokio runtime");
            return;
        }
        let options = (*self.pool.connect_options()).clone().application_name(LISTENER_APPLICATION_NAME);
        // A pool of one connection that only serves the listener (and its reconnections).
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(receive(listen_pool, self.pool.clone(), tx, self.stop.subscribe()));
        tokio::spawn(apply_events(Arc::downgrade(self), rx));
    }

    /// Applies notified changes of one org to its index (or to its load in progress).
    async fn apply(&self, org_id: i64, pending: Pending) -> Result<(), sqlx::Error> {
        let Some(slot) = lock(&self.orgs).get(&org_id).cloned() else { return Ok(()) };
        let index = {
            let mut state = lock(&slot.state);
            match &mut *state {
                SlotState::Empty => return Ok(()),
                SlotState::Loading(p) => {
                    p.merge(pending);
                    return Ok(());
                }
                SlotState::Ready(ix) => ix.clone(),
            }
        };
        if pending.reload {
            let fresh = self.build(org_id).await?;
            replace(&index, fresh);
        } else {
            let ids: Vec<i64> = pending.ids.into_iter().collect();
            let rows = self.read(org_id, &ids).await?;
            patch(&mut write(&index), &ids, &rows);
        }
        Ok(())
    }

    /// Rebuilds every loaded org from the database; loads in progress start over.
    async fn resync(&self) -> Result<(), sqlx::Error> {
        for (org_id, slot) in self.slots() {
            let index = {
                let mut state = lock(&slot.state);
                match &mut *state {
                    SlotState::Empty => None,
                    SlotState::Loading(p) => {
                        p.merge(Pending { reload: true, ids: BTreeSet::new() });
                        None
                    }
                    SlotState::Ready(ix) => Some(ix.clone()),
                }
            };
            if let Some(index) = index {
                let fresh = self.build(org_id).await?;
                replace(&index, fresh);
            }
        }
        Ok(())
    }
}

/// Swaps in a rebuilt index; the old one is freed outside the lock.
fn replace(index: &RwLock<OutletIndex>, fresh: OutletIndex) {
    let old = std::mem::replace(&mut *write(index), fresh);
    drop(old);
}

/// Re-reads `ids`: present rows are upserted, missing ones removed.
fn patch(index: &mut OutletIndex, ids: &[i64], rows: &HashMap<i64, IndexedOutlet>) {
    for id in ids {
        match rows.get(id) {
            Some(o) => index.upsert(o.clone()),
            None => {
                index.remove(*id);
            }
        }
    }
}

/// What the receiving task tells the applying task, in order.
#[derive(Debug)]
enum Event {
    /// LISTEN is in place (again): rebuild what is loaded. `after_loss` is false for the first connection.
    Listening { after_loss: bool },
    /// The connection is gone; notifications may be missed until the next `Listening`.
    Lost,
    /// A notification: changes of one org.
    Change { org_id: i64, pending: Pending },
    /// Rebuild every loaded org (a TRUNCATE, or a payload we do not understand).
    ReloadAll,
}

/// Notification payload, as sent by migration 0002.
#[derive(serde::Deserialize)]
struct Payload {
    org_id: Option<i64>,
    #[serde(default)]
    ids: Vec<i64>,
    #[serde(default)]
    reload: bool,
    #[serde(default)]
    reload_all: bool,
}

fn parse(payload: &str) -> Event {
    match serde_json::from_str::<Payload>(payload) {
        Ok(Payload { org_id: Some(org_id), ids, reload, reload_all: false }) => {
            Event::Change { org_id, pending: Pending { reload, ids: ids.into_iter().collect() } }
        }
        Ok(p) if p.reload_all => Event::ReloadAll,
        _ => {
            tracing::warn!(payload, "unreadable outlet notification; rebuilding every loaded org");
            Event::ReloadAll
        }
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Owns the LISTEN connection: forwards notifications, and reports losses and reconnections.
async fn receive(listen_pool: PgPool, pool: PgPool, tx: mpsc::UnboundedSender<Event>, mut stop: watch::Receiver<()>) {
    let mut closed: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(pool.close_event());
    let mut after_loss = false;
    let mut backoff = FIRST_BACKOFF;
    'connect: loop {
        let connect = async {
            let mut listener = PgListener::connect_with(&listen_pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let connected = tokio::select! {
            r = connect => r,
            _ = stop.changed() => break,
            () = &mut closed => break,
        };
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "outlet index listener cannot connect");
                after_loss = true;
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {},
                    _ = stop.changed() => break,
                    () = &mut closed => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        if after_loss {
            tracing::info!("outlet index listener reconnected; resynchronising");
        }
        if tx.send(Event::Listening { after_loss }).is_err() {
            break;
        }
        loop {
            let received = tokio::select! {
                r = listener.try_recv() => r,
                _ = stop.changed() => break 'connect,
                () = &mut closed => break 'connect,
            };
            let event = match received {
                Ok(Some(n)) => parse(n.payload()),
                // Lost, and already reconnected and listening again (eager reconnect).
                Ok(None) => {
                    tracing::warn!("outlet index listener lost its connection; resynchronising");
                    if tx.send(Event::Lost).is_err() {
                        break 'connect;
                    }
                    Event::Listening { after_loss: true }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "outlet index listener failed; reconnecting");
                    after_loss = true;
                    drop(listener);
                    if tx.send(Event::Lost).is_err() {
                        break 'connect;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(FIRST_BACKOFF) => {},
                        _ = stop.changed() => break 'connect,
                        () = &mut closed => break 'connect,
                    }
                    continue 'connect;
                }
            };
            if tx.send(event).is_err() {
                break 'connect;
            }
        }
    }
    listen_pool.close().await;
}

/// Applies events in order, batching whatever has queued up. A failed resync or patch is retried as
/// a full resync until it succeeds.
async fn apply_events(registry: Weak<Registry>, mut rx: mpsc::UnboundedReceiver<Event>) {
    const MAX_BATCH: usize = 10_000;
    let mut resync_due = false;
    let mut resync_counts = false;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let first = if resync_due {
            match tokio::time::timeout(backoff, rx.recv()).await {
                Ok(Some(e)) => Some(e),
                Ok(None) => return,
                Err(_) => None,
            }
        } else {
            match rx.recv().await {
                Some(e) => Some(e),
                None => return,
            }
        };
        let mut events: Vec<Event> = first.into_iter().collect();
        while events.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(e) => events.push(e),
                Err(_) => break,
            }
        }
        let Some(registry) = registry.upgrade() else { return };
        let mut changes: HashMap<i64, Pending> = HashMap::new();
        let mut now_listening = None;
        for event in events {
            match event {
                Event::Listening { after_loss } => {
                    resync_due = true;
                    resync_counts |= after_loss;
                    now_listening = Some(true);
                }
                Event::Lost => {
                    registry.set_listening(false);
                    now_listening = Some(false);
                }
                Event::ReloadAll => resync_due = true,
                Event::Change { org_id, pending } => {
                    registry.notifications.fetch_add(1, Ordering::Relaxed);
                    changes.entry(org_id).or_default().merge(pending);
                }
            }
        }
        if resync_due {
            // The snapshot is taken after every queued notification was received, so it covers them.
            match registry.resync().await {
                Ok(()) => {
                    resync_due = false;
                    backoff = FIRST_BACKOFF;
                    if resync_counts {
                        registry.resyncs.fetch_add(1, Ordering::Relaxed);
                        resync_counts = false;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "outlet index resync failed; retrying");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        } else {
            for (org_id, pending) in changes {
                if let Err(e) = registry.apply(org_id, pending).await {
                    tracing::warn!(error = %e, org_id, "outlet index update failed; resynchronising");
                    resync_due = true;
                }
            }
        }
        if now_listening == Some(true) && !resync_due {
            registry.set_listening(true);
        }
    }
}

/// Exposes [`Registry::stats`] in a Prometheus registry (read at every scrape):
/// `index_orgs_loaded`, `index_outlets` (gauges), `index_listening` (1 or 0),
/// `index_resyncs_total`, `index_notifications_total` (counters).
pub fn register_metrics(metrics: &prometheus::Registry, index: &Arc<Registry>) -> prometheus::Result<()> {
    let collector = IndexCollector {
        index: Arc::downgrade(index),
        orgs: IntGauge::new("index_orgs_loaded", "Orgs whose outlet index is loaded")?,
        outlets: IntGauge::new("index_outlets", "Outlets in the loaded indexes (every status)")?,
        listening: IntGauge::new("index_listening", "1 while the index listener is connected and listening")?,
        resyncs: IntCounter::new("index_resyncs_total", "Full index rebuilds after a lost listener connection")?,
        notifications: IntCounter::new("index_notifications_total", "Outlet change notifications received")?,
    };
    metrics.register(Box::new(collector))
}

struct IndexCollector {
    index: Weak<Registry>,
    orgs: IntGauge,
    outlets: IntGauge,
    listening: IntGauge,
    resyncs: IntCounter,
    notifications: IntCounter,
}

fn count_up_to(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

impl Collector for IndexCollector {
    fn desc(&self) -> Vec<&Desc> {
        [self.orgs.desc(), self.outlets.desc(), self.listening.desc(), self.resyncs.desc(), self.notifications.desc()]
            .into_iter()
            .flatten()
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        if let Some(index) = self.index.upgrade() {
            let s = index.stats();
            self.orgs.set(s.orgs_loaded as i64);
            self.outlets.set(s.outlets_indexed as i64);
            self.listening.set(i64::from(s.listening));
            count_up_to(&self.resyncs, s.resyncs);
            count_up_to(&self.notifications, s.notifications);
        }
        [
            self.orgs.collect(),
            self.outlets.collect(),
            self.listening.collect(),
            self.resyncs.collect(),
            self.notifications.collect(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_into_changes() {
        match parse(r#"{"org_id": 3, "ids": [5, 7, 5]}"#) {
            Event::Change { org_id, pending } => {
                assert_eq!(org_id, 3);
                assert!(!pending.reload);
                assert_eq!(pending.ids.into_iter().collect::<Vec<_>>(), vec![5, 7]);
            }
            e => panic!("{e:?}"),
        }
        match parse(r#"{"org_id": 3, "reload": true}"#) {
            Event::Change { org_id: 3, pending } => assert!(pending.reload),
            e => panic!("{e:?}"),
        }
        assert!(matches!(parse(r#"{"reload_all": true}"#), Event::ReloadAll));
        assert!(matches!(parse("garbage"), Event::ReloadAll));
    }

    #[test]
    fn a_reload_absorbs_ids() {
        let mut p = Pending { reload: false, ids: [1, 2].into_iter().collect() };
        p.merge(Pending { reload: false, ids: [3].into_iter().collect() });
        assert_eq!(p.ids.len(), 3);
        p.merge(Pending { reload: true, ids: BTreeSet::new() });
        assert!(p.reload && p.ids.is_empty());
        p.merge(Pending { reload: false, ids: [9].into_iter().collect() });
        assert!(p.reload && p.ids.is_empty());
        assert!(!p.is_empty());
    }
}
