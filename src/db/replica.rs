//! The read pool (`FV_READ_DATABASE_URL`): a streaming standby, or haproxy's read port in front
//! of the standbys, that serves the heavy reads (layers, tiles, coverage, compliance, the
//! bulletin) so they do not load the primary.
//!
//! Its staleness is measured, not assumed: every [`SAMPLE_EVERY`] the primary's WAL position is
//! sampled, and the read pool's replay position is compared with the samples; the staleness is
//! the age of the newest sample the standby has replayed. While it exceeds the bound (or the
//! standby cannot be reached) [`Reads::pool`] answers the primary, so a read is never staler
//! than the bound plus one sampling interval. Writes, and reads that must see the caller's own
//! fresh write, always use the primary.

use prometheus::{IntCounter, IntGauge, Registry};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the primary's and the standby's WAL positions are compared.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Samples kept: a standby further behind than this window counts as lagging by the window.
const WINDOW: usize = 240;

/// Where reads go, and how stale the standby is.
pub struct Reads {
    primary: PgPool,
    standby: Option<PgPool>,
    max_staleness_ms: u64,
    /// The state the pool is chosen by, as `/metrics` shows it: the standby's staleness in ms at
    /// the last sample (-1 when unknown or unreachable), and 1 when the read pool's server was in
    /// recovery (a standby; haproxy falls back to the primary when no standby is up).
    staleness_gauge: IntGauge,
    on_standby_gauge: IntGauge,
    fallbacks: IntCounter,
}

impl Reads {
    /// Reads from `primary` only (no `FV_READ_DATABASE_URL`).
    pub fn primary_only(primary: PgPool, registry: &Registry) -> prometheus::Result<Arc<Self>> {
        Self::new(primary, None, 0, registry)
    }

    /// Reads from a pool on `url` (lazy: the server starts while the standby is down), at most
    /// `max_connections`, within `max_staleness_ms`; samples its staleness until `primary` closes.
    pub fn start(
        primary: PgPool,
        url: &str,
        max_connections: u32,
        statement_timeout_ms: u64,
        max_staleness_ms: u64,
        registry: &Registry,
    ) -> Result<Arc<Self>, Box<dyn std::error::Error + Send + Sync>> {
        let options = super::with_statement_timeout(
            url.parse::<sqlx::postgres::PgConnectOptions>()?.application_name("fieldvisit reads"),
            statement_timeout_ms,
        );
        let standby = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        let reads = Self::new(primary, Some(standby), max_staleness_ms, registry)?;
        tokio::spawn(sample(Arc::downgrade(&reads)));
        Ok(reads)
    }

    fn new(
        primary: PgPool,
        standby: Option<PgPool>,
        max_staleness_ms: u64,
        registry: &Registry,
    ) -> prometheus::Result<Arc<Self>> {
        let staleness_gauge = IntGauge::new(
            "read_pool_staleness_ms",
            "How far the read pool (FV_READ_DATABASE_URL) lags the primary, ms; -1 when unknown or unreachable",
        )?;
        let fallbacks = IntCounter::new(
            "read_pool_fallbacks_total",
            "Reads sent to the primary because the read pool lagged past FV_READ_MAX_STALENESS_MS or was unreachable",
        )?;
        let on_standby_gauge = IntGauge::new(
            "read_pool_on_standby",
            "1 when the read pool's server was in recovery (a standby) at the last sample, else 0",
        )?;
        registry.register(Box::new(staleness_gauge.clone()))?;
        registry.register(Box::new(on_standby_gauge.clone()))?;
        registry.register(Box::new(fallbacks.clone()))?;
        staleness_gauge.set(if standby.is_some() { -1 } else { 0 });
        Ok(Arc::new(Self { primary, standby, max_staleness_ms, staleness_gauge, on_standby_gauge, fallbacks }))
    }

    /// The pool a read that may lag should use: the read pool while it is within the bound, else
    /// the primary.
    pub fn pool(&self) -> &PgPool {
        match &self.standby {
            Some(standby) if self.within_bound() => standby,
            Some(_) => {
                self.fallbacks.inc();
                &self.primary
            }
            None => &self.primary,
        }
    }

    /// Where reads go now and how stale they may be: (`"standby"`, staleness ms) when the read pool
    /// serves them from a server in recovery, else (`"primary"`, 0).
    pub fn source(&self) -> (&'static str, u64) {
        if self.standby.is_some() && self.within_bound() && self.on_standby_gauge.get() == 1 {
            ("standby", u64::try_from(self.staleness_gauge.get()).unwrap_or(0))
        } else {
            ("primary", 0)
        }
    }

    /// Whether the last sample found the standby within the staleness bound.
    fn within_bound(&self) -> bool {
        u64::try_from(self.staleness_gauge.get()).is_ok_and(|s| s <= self.max_staleness_ms)
    }

    fn record(&self, staleness_ms: Option<u64>, on_standby: bool) {
        self.on_standby_gauge.set(i64::from(on_standby));
        self.staleness_gauge.set(staleness_ms.map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX)));
    }
}

/// A WAL position as a number (`pg_lsn` text `X/Y`).
pub fn lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// The staleness, ms, of a standby that has replayed `replayed`, given the primary's positions
/// sampled at instants (oldest first): the age of the newest sample at or below `replayed`;
/// `None` when even the oldest is ahead of it.
pub fn staleness_ms(samples: &VecDeque<(Instant, u64)>, replayed: u64, now: Instant) -> Option<u64> {
    samples
        .iter()
        .rev()
        .find(|(_, at)| *at <= replayed)
        .map(|(when, _)| u64::try_from(now.saturating_duration_since(*when).as_millis()).unwrap_or(u64::MAX))
}

/// Samples the primary's WAL position and the read pool's replay position until the server's
/// state goes away or the primary pool closes.
async fn sample(reads: std::sync::Weak<Reads>) {
    let mut samples: VecDeque<(Instant, u64)> = VecDeque::with_capacity(WINDOW + 1);
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(r) = reads.upgrade() else { return };
        if r.primary.is_closed() {
            return;
        }
        let Some(standby) = r.standby.clone() else { return };
        let now = Instant::now();
        let Ok(text) = sqlx::query_scalar::<_, String>("SELECT pg_current_wal_lsn()::text").fetch_one(&r.primary).await
        else {
            // The primary is away (a failover): the standby's staleness is unknown meanwhile.
            r.record(None, false);
            continue;
        };
        if let Some(at) = lsn(&text) {
            samples.push_back((now, at));
            if samples.len() > WINDOW {
                samples.pop_front();
            }
        }
        let replayed: Result<(bool, Option<String>), sqlx::Error> = sqlx::query_as(
            "SELECT pg_is_in_recovery(), (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
             ELSE pg_current_wal_lsn() END)::text",
        )
        .fetch_one(&standby)
        .await;
        match replayed {
            Ok((false, _)) => r.record(Some(0), false),
            Ok((true, Some(text))) => {
                let staleness = lsn(&text).and_then(|at| staleness_ms(&samples, at, Instant::now()));
                r.record(staleness, true);
            }
            _ => r.record(None, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_leave_a_lagging_or_unreachable_standby_for_the_primary() {
        let lazy = |db: &str| {
            PgPoolOptions::new().connect_lazy(&format!("postgres://u@127.0.0.1:1/{db}")).expect("a lazy pool")
        };
        let registry = Registry::new();
        let reads = Reads::new(lazy("primary"), Some(lazy("standby")), 5_000, &registry).expect("metrics");
        let on = |r: &Reads| r.pool().connect_options().get_database().map(str::to_owned);
        // Unknown until sampled: the primary.
        assert_eq!(on(&reads).as_deref(), Some("primary"));
        reads.record(Some(120), true);
        assert_eq!(on(&reads).as_deref(), Some("standby"));
        assert_eq!(reads.source(), ("standby", 120));
        reads.record(Some(5_001), true);
        assert_eq!(on(&reads).as_deref(), Some("primary"));
        assert_eq!(reads.source(), ("primary", 0));
        reads.record(None, false);
        assert_eq!(on(&reads).as_deref(), Some("primary"));
        // A read pool that points at a primary (haproxy's fallback) is used, and says so.
        reads.record(Some(0), false);
        assert_eq!(on(&reads).as_deref(), Some("standby"));
        assert_eq!(reads.source(), ("primary", 0));
        assert_eq!(reads.fallbacks.get(), 3);
    }

    #[test]
    fn lsn_text_reads_as_a_number() {
        assert_eq!(lsn("0/3000060"), Some(0x300_0060));
        assert_eq!(lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert_eq!(lsn("nonsense"), None);
    }

    #[test]
    fn staleness_is_the_age_of_the_newest_sample_replayed() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let samples: VecDeque<(Instant, u64)> = [(t0, 100), (t0 + ms(250), 200), (t0 + ms(500), 300)].into();
        let now = t0 + ms(600);
        // Caught up with the latest sample: as old as that sample.
        assert_eq!(staleness_ms(&samples, 300, now), Some(100));
        // Between two samples: the older one counts.
        assert_eq!(staleness_ms(&samples, 250, now), Some(350));
        // Behind every sample: unknown (past the window).
        assert_eq!(staleness_ms(&samples, 50, now), None);
    }
}
