//! Durable, batched ping writes. Handlers hand judged pings to [`Ingest::write`] and wait; writer
//! tasks take everything queued (up to a batch size) into one transaction and answer each waiting
//! request only after that commit, so a 2xx always means "in the database". A full queue or a
//! database that does not answer gives [`WriteError`], which handlers turn into 503 + Retry-After.

use crate::db::pings::{self, NewPing, Written};
use crate::domain::ping::{Fix, Source};
use crate::domain::ping_filter::DropReason;
use chrono::{DateTime, NaiveDate, Utc};
use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

mod relay;

/// Queue and batch sizes of the writer.
#[derive(Debug, Clone, Copy)]
pub struct IngestConfig {
    /// Most pings waiting for a writer; beyond it requests get 503.
    pub queue_pings: usize,
    /// Most bytes of pings waiting for a writer (see [`queued_bytes`]); beyond it requests get 503.
    pub queue_bytes: usize,
    /// Most pings in one transaction.
    pub batch_pings: usize,
    /// Writer tasks (transactions in flight at once).
    pub writers: usize,
    /// Longest a request waits for its commit before it is answered 503.
    pub commit_timeout: Duration,
    /// How long an OsmAnd device resolved from its id is kept (0: not kept).
    pub osmand_cache: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            queue_pings: 200_000,
            queue_bytes: 256 * 1024 * 1024,
            batch_pings: 10_000,
            writers: 2,
            commit_timeout: Duration::from_secs(30),
            osmand_cache: Duration::from_secs(2),
        }
    }
}

/// Why pings were not written; nothing of the request is acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("the ingest queue is full")]
    QueueFull,
    #[error("the database did not take the pings: {0}")]
    Database(String),
    /// The device was deactivated, or its credential rotated or moved to another device row,
    /// after the request's credential was checked: nothing was stored.
    #[error("this device is deactivated or its credential was replaced; nothing was stored")]
    CredentialRefused,
}

impl WriteError {
    /// Seconds a client should wait before retrying.
    pub fn retry_after_s(&self) -> u64 {
        match self {
            WriteError::QueueFull => 1,
            WriteError::Database(_) => 5,
            WriteError::CredentialRefused => 0,
        }
    }
}

/// Devices resolved from phone-protocol credentials, kept for a moment: a phone posting once a
/// second would otherwise cost a database round trip per ping. A deactivation or rotation still
/// takes effect at once: the writer stores a ping only while its device is active at the
/// credential version the entry holds, and a refused entry is forgotten.
/// An entry lives `ttl`: a change of the org's ping settings or a position request reaches a
/// cached device after at most that long.
pub struct SenderCache {
    entries: Mutex<HashMap<String, (Instant, crate::db::devices::Sender)>>,
    ttl: Duration,
}

impl SenderCache {
    const MAX_ENTRIES: usize = 100_000;

    pub fn new(ttl: Duration) -> Self {
        SenderCache { entries: Mutex::default(), ttl }
    }

    pub fn get(&self, key: &str) -> Option<crate::db::devices::Sender> {
        let entries = self.entries.lock().ok()?;
        entries.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, s)| s.clone())
    }

    /// Drops the entry of `key` (its credential was refused).
    pub fn forget(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    pub fn put(&self, key: String, sender: crate::db::devices::Sender) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= Self::MAX_ENTRIES {
                entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            }
            entries.insert(key, (Instant::now(), sender));
        }
    }
}

/// The latest fix of a device (by fix time) among the pings this process committed or loaded.
#[derive(Debug, Clone)]
pub struct LastFix {
    pub org_id: i64,
    pub device_id: i64,
    pub fix: Fix,
    pub received_at: DateTime<Utc>,
}

/// Estimated memory a queued ping holds: the row itself, its client id and its attributes (each
/// JSON value, key and text, plus the map's per-entry overhead). Bounds the queue in bytes, so that
/// pings with large attributes cannot fill memory below the ping count bound.
pub fn queued_bytes(ping: &NewPing) -> usize {
    size_of::<NewPing>()
        + ping.fix.client_ping_id.as_ref().map_or(0, String::capacity)
        + map_bytes(&ping.fix.attributes)
}

/// Per-entry overhead of a JSON object (tree node share and pointers), an estimate.
const ENTRY_OVERHEAD: usize = 32;

fn map_bytes(map: &serde_json::Map<String, serde_json::Value>) -> usize {
    map.iter().map(|(k, v)| size_of::<String>() + k.capacity() + value_bytes(v) + ENTRY_OVERHEAD).sum()
}

fn value_bytes(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    size_of::<Value>()
        + match value {
            Value::String(s) => s.capacity(),
            Value::Array(items) => items.iter().map(value_bytes).sum(),
            Value::Object(map) => map_bytes(map),
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        }
}

struct Job {
    pings: Vec<NewPing>,
    /// [`queued_bytes`] of the pings.
    bytes: usize,
    reply: oneshot::Sender<Result<Vec<Written>, WriteError>>,
}

/// Counters of what happened to incoming pings, exported at `/metrics`.
struct IngestMetrics {
    received: IntCounterVec,
    stored: IntCounterVec,
    duplicates: IntCounterVec,
    dropped: IntCounterVec,
    refused: IntCounterVec,
    queued: IntGauge,
    queued_bytes: IntGauge,
    batch_size: Histogram,
    commit_seconds: Histogram,
}

impl IngestMetrics {
    fn new(registry: &prometheus::Registry) -> prometheus::Result<Self> {
        let by_source = |name: &str, help: &str| IntCounterVec::new(Opts::new(name, help), &["source"]);
        let m = IngestMetrics {
            received: by_source("pings_received_total", "Pings decoded from requests, by protocol")?,
            stored: by_source("pings_stored_total", "Pings committed to the database, by protocol")?,
            duplicates: by_source("pings_duplicate_total", "Pings already stored (same device and fix time)")?,
            dropped: IntCounterVec::new(
                Opts::new("pings_dropped_total", "Pings not stored, by protocol and reason"),
                &["source", "reason"],
            )?,
            refused: IntCounterVec::new(
                Opts::new("pings_refused_total", "Pings answered 503 (queue full or database unavailable)"),
                &["reason"],
            )?,
            queued: IntGauge::new("ingest_queue_pings", "Pings waiting for a writer")?,
            queued_bytes: IntGauge::new("ingest_queue_bytes", "Estimated bytes of the pings waiting for a writer")?,
            batch_size: Histogram::with_opts(
                HistogramOpts::new("ingest_batch_pings", "Pings per committed transaction")
                    .buckets(vec![1.0, 10.0, 100.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0, 20_000.0]),
            )?,
            commit_seconds: Histogram::with_opts(
                HistogramOpts::new("ingest_commit_seconds", "Time to write and commit one batch")
                    .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            )?,
        };
        for c in [
            Box::new(m.received.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.stored.clone()),
            Box::new(m.duplicates.clone()),
            Box::new(m.dropped.clone()),
            Box::new(m.refused.clone()),
            Box::new(m.queued.clone()),
            Box::new(m.queued_bytes.clone()),
            Box::new(m.batch_size.clone()),
            Box::new(m.commit_seconds.clone()),
        ] {
            registry.register(c)?;
        }
        Ok(m)
    }
}

/// How far back the last known positions are read at start (one index probe per device and day).
pub const LAST_FIX_LOOKBACK_DAYS: i64 = 7;

/// Called after each committed batch (its rep-days are marked dirty): wakes the visit derivation.
pub type AfterCommit = Arc<dyn Fn() + Send + Sync>;

/// The ingest pipeline of one server process.
pub struct Ingest {
    tx: mpsc::UnboundedSender<Job>,
    queued: AtomicUsize,
    /// [`queued_bytes`] of the queued pings.
    queued_bytes: AtomicUsize,
    config: IngestConfig,
    metrics: IngestMetrics,
    last: RwLock<HashMap<(i64, i64), LastFix>>,
    /// Every committed fix that is its device's newest, for live streams.
    live: tokio::sync::broadcast::Sender<LastFix>,
    /// OsmAnd devices by their id.
    pub osmand_senders: SenderCache,
    /// New newest fixes, for the other instances.
    relay: mpsc::UnboundedSender<LastFix>,
}

impl Ingest {
    /// Starts the writer tasks (on the current tokio runtime, writing through `db`, the request
    /// pool: they write for waiting requests) and the position relay (on `background`, the pool
    /// without a statement timeout) and registers the ingest metrics.
    pub fn start(
        db: &PgPool,
        background: &PgPool,
        config: IngestConfig,
        registry: &prometheus::Registry,
        after_commit: &AfterCommit,
    ) -> prometheus::Result<Arc<Self>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (relay, relayed) = mpsc::unbounded_channel();
        // This process among the server instances: tells its own notifications from the others'.
        let instance = rand::random::<u64>();
        let ingest = Arc::new(Ingest {
            tx,
            queued: AtomicUsize::new(0),
            queued_bytes: AtomicUsize::new(0),
            config,
            metrics: IngestMetrics::new(registry)?,
            last: RwLock::default(),
            live: tokio::sync::broadcast::channel(4096).0,
            osmand_senders: SenderCache::new(config.osmand_cache),
            relay,
        });
        // Last known positions survive a restart: the listener reads them once it listens (so no
        // fix committed by another instance falls between the two), then keeps up with the others.
        tokio::spawn(relay::publish(background.clone(), instance, relayed));
        tokio::spawn(relay::listen(background.clone(), instance, Arc::downgrade(&ingest)));
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let partitions = Arc::new(Mutex::new(HashSet::new()));
        for _ in 0..config.writers.max(1) {
            let writer = Writer {
                db: db.clone(),
                rx: rx.clone(),
                ingest: Arc::downgrade(&ingest),
                partitions: partitions.clone(),
                after_commit: after_commit.clone(),
            };
            tokio::spawn(writer.run());
        }
        Ok(ingest)
    }

    /// Queues pings and waits for the commit that holds them. Per ping: stored, already there, or
    /// refused (its device's credential changed meanwhile).
    pub async fn write(&self, pings: Vec<NewPing>) -> Result<Vec<Written>, WriteError> {
        if pings.is_empty() {
            return Ok(Vec::new());
        }
        let n = pings.len();
        let bytes: usize = pings.iter().map(queued_bytes).sum();
        let source = pings[0].source;
        let over_pings = self.queued.fetch_add(n, Ordering::SeqCst) + n > self.config.queue_pings;
        let over_bytes = self.queued_bytes.fetch_add(bytes, Ordering::SeqCst) + bytes > self.config.queue_bytes;
        if over_pings || over_bytes {
            self.dequeued(n, bytes);
            self.metrics.refused.with_label_values(&["queue_full"]).inc_by(n as u64);
            return Err(WriteError::QueueFull);
        }
        self.metrics.queued.set(self.queued.load(Ordering::SeqCst) as i64);
        self.metrics.queued_bytes.set(self.queued_bytes.load(Ordering::SeqCst) as i64);
        let (reply, answer) = oneshot::channel();
        let summary: Vec<(i64, i64, Fix, Source)> =
            pings.iter().map(|p| (p.org_id, p.device_id, p.fix.clone(), p.source)).collect();
        if self.tx.send(Job { pings, bytes, reply }).is_err() {
            self.dequeued(n, bytes);
            return Err(WriteError::Database("the writer has stopped".into()));
        }
        let result = match tokio::time::timeout(self.config.commit_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(WriteError::Database("the writer has stopped".into())),
            // The batch may still commit later; the client retries and the retry counts as duplicate.
            Err(_) => Err(WriteError::Database("no commit within the timeout".into())),
        };
        match &result {
            Ok(written) => {
                let count = |w: Written| written.iter().filter(|x| **x == w).count() as u64;
                self.metrics.stored.with_label_values(&[source.as_str()]).inc_by(count(Written::Stored));
                self.metrics.duplicates.with_label_values(&[source.as_str()]).inc_by(count(Written::Duplicate));
                self.metrics.refused.with_label_values(&["credential"]).inc_by(count(Written::Refused));
                let kept = summary.into_iter().zip(written).filter(|(_, w)| **w != Written::Refused).map(|(s, _)| s);
                self.remember(kept.collect());
            }
            Err(e) => {
                let reason = if matches!(e, WriteError::QueueFull) { "queue_full" } else { "database" };
                self.metrics.refused.with_label_values(&[reason]).inc_by(n as u64);
            }
        }
        result
    }

    /// Takes `n` pings of `bytes` off the queue's counts (written, failed or refused).
    fn dequeued(&self, n: usize, bytes: usize) {
        self.queued.fetch_sub(n, Ordering::SeqCst);
        self.queued_bytes.fetch_sub(bytes, Ordering::SeqCst);
        self.metrics.queued.set(self.queued.load(Ordering::SeqCst) as i64);
        self.metrics.queued_bytes.set(self.queued_bytes.load(Ordering::SeqCst) as i64);
    }

    /// Counts pings decoded from a request (before the filters).
    pub fn count_received(&self, source: Source, n: usize) {
        self.metrics.received.with_label_values(&[source.as_str()]).inc_by(n as u64);
    }

    /// Counts a ping the filters (or the decoder) dropped.
    pub fn count_drop(&self, source: Source, reason: DropReason) {
        self.metrics.dropped.with_label_values(&[source.as_str(), reason.as_str()]).inc();
    }

    /// The device's latest committed fix known to this process.
    pub fn last_fix(&self, org_id: i64, device_id: i64) -> Option<LastFix> {
        self.last.read().ok()?.get(&(org_id, device_id)).cloned()
    }

    /// Latest fixes of all devices of an org known to this process.
    pub fn last_fixes(&self, org_id: i64) -> Vec<LastFix> {
        self.last.read().map(|m| m.values().filter(|l| l.org_id == org_id).cloned().collect()).unwrap_or_default()
    }

    /// Committed fixes that became their device's newest known position, as they happen (a slow
    /// receiver misses some: `RecvError::Lagged`).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<LastFix> {
        self.live.subscribe()
    }

    /// Reads the newest stored fix of every device (of the last [`LAST_FIX_LOOKBACK_DAYS`]) and
    /// keeps those newer than what this process knows.
    async fn reload_latest(&self, db: &PgPool) {
        let since = Utc::now() - chrono::Duration::days(LAST_FIX_LOOKBACK_DAYS);
        match pings::latest_per_device(db, since).await {
            Ok(rows) => {
                tracing::info!(devices = rows.len(), "last known positions loaded");
                self.load_latest(rows);
            }
            Err(e) => tracing::warn!(error = %e, "last known positions not loaded"),
        }
    }

    /// Fixes another instance committed: newer ones become last known and go to live streams.
    fn take_relayed(&self, fixes: impl Iterator<Item = LastFix>) {
        let Ok(mut last) = self.last.write() else { return };
        for entry in fixes {
            let key = (entry.org_id, entry.device_id);
            if last.get(&key).is_none_or(|l| l.fix.fix_time < entry.fix.fix_time) {
                let _ = self.live.send(entry.clone());
                last.insert(key, entry);
            }
        }
    }

    /// Takes stored positions as last known ones where they are newer than what this process has.
    fn load_latest(&self, rows: Vec<pings::LatestPing>) {
        let Ok(mut last) = self.last.write() else { return };
        for r in rows {
            if last.get(&(r.org_id, r.device_id)).is_none_or(|l| l.fix.fix_time < r.fix_time) {
                let mut fix = Fix::at(r.fix_time, r.lat, r.lon);
                fix.accuracy_m = r.accuracy_m;
                fix.speed_mps = r.speed_mps;
                fix.heading_deg = r.heading_deg;
                fix.altitude_m = r.altitude_m;
                fix.battery_pct = r.battery_pct;
                fix.mock = r.mock;
                let entry = LastFix { org_id: r.org_id, device_id: r.device_id, fix, received_at: r.received_at };
                last.insert((r.org_id, r.device_id), entry);
            }
        }
    }

    fn remember(&self, pings: Vec<(i64, i64, Fix, Source)>) {
        let now = Utc::now();
        let mut newest: HashMap<(i64, i64), Fix> = HashMap::new();
        for (org_id, device_id, fix, _) in pings {
            if newest.get(&(org_id, device_id)).is_none_or(|f| f.fix_time < fix.fix_time) {
                newest.insert((org_id, device_id), fix);
            }
        }
        let Ok(mut last) = self.last.write() else { return };
        for ((org_id, device_id), fix) in newest {
            if last.get(&(org_id, device_id)).is_none_or(|l| l.fix.fix_time < fix.fix_time) {
                let entry = LastFix { org_id, device_id, fix, received_at: now };
                // No receiver is not an error; neither is a stopped relay.
                let _ = self.live.send(entry.clone());
                let _ = self.relay.send(entry.clone());
                last.insert((org_id, device_id), entry);
            }
        }
    }
}

struct Writer {
    db: PgPool,
    rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>,
    ingest: std::sync::Weak<Ingest>,
    /// Days whose ping partition is known to exist.
    partitions: Arc<Mutex<HashSet<NaiveDate>>>,
    after_commit: AfterCommit,
}

impl Writer {
    async fn run(self) {
        loop {
            // Take what is queued, up to one batch, while holding the receiver; another writer
            // commits meanwhile (group commit with up to `writers` transactions in flight).
            let mut jobs = Vec::new();
            {
                let mut rx = self.rx.lock().await;
                let Some(first) = rx.recv().await else { return };
                let Some(ingest) = self.ingest.upgrade() else { return };
                let limit = ingest.config.batch_pings;
                let mut n = first.pings.len();
                jobs.push(first);
                while n < limit {
                    match rx.try_recv() {
                        Ok(job) => {
                            n += job.pings.len();
                            jobs.push(job);
                        }
                        Err(_) => break,
                    }
                }
            }
            let Some(ingest) = self.ingest.upgrade() else { return };
            let n: usize = jobs.iter().map(|j| j.pings.len()).sum();
            let bytes: usize = jobs.iter().map(|j| j.bytes).sum();
            let started = Instant::now();
            let result = self.commit(&jobs).await;
            ingest.dequeued(n, bytes);
            match result {
                Ok(mut stored) => {
                    (self.after_commit)();
                    ingest.metrics.batch_size.observe(n as f64);
                    ingest.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
                    for job in jobs.into_iter().rev() {
                        let tail = stored.split_off(stored.len() - job.pings.len());
                        let _ = job.reply.send(Ok(tail));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, pings = n, "ping batch not committed");
                    for job in jobs {
                        let _ = job.reply.send(Err(WriteError::Database(e.to_string())));
                    }
                }
            }
        }
    }

    async fn commit(&self, jobs: &[Job]) -> Result<Vec<Written>, sqlx::Error> {
        let batch: Vec<NewPing> = jobs.iter().flat_map(|j| j.pings.iter().cloned()).collect();
        let mut conn = self.db.acquire().await?;
        let days: HashSet<NaiveDate> = batch.iter().map(|p| p.fix.fix_time.date_naive()).collect();
        let missing: Vec<NaiveDate> = {
            let known = self.partitions.lock().map_err(|_| sqlx::Error::PoolClosed)?;
            days.into_iter().filter(|d| !known.contains(d)).collect()
        };
        if !missing.is_empty() {
            pings::ensure_partitions(&mut conn, missing.iter().map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc()))
                .await?;
            if let Ok(mut known) = self.partitions.lock() {
                known.extend(missing);
            }
        }
        // One statement: it commits (pings and dirty rep-days together) before it answers.
        pings::insert_batch(&mut conn, &batch).await
    }
}
