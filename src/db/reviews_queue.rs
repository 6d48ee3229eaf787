//! What the review queue reads: the visits waiting for a reviewer (suspect or unverified and not
//! reviewed, or disputed by their rep and not answered since), and the names of the reps and
//! outlets of the check-in claims beside them. The claims themselves are `checkins`' open claims.

use crate::domain::visit::Verdict;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{FromRow, PgExecutor};

/// Which visits of the queue to read.
#[derive(Debug, Clone)]
pub struct VisitFilter<'a> {
    /// Reps within this territory's subtree only (the caller's scope); `None`: the whole org.
    pub scope_root: Option<i64>,
    /// `suspect`, `unverified`, `disputed`: the kinds wanted.
    pub kinds: &'a [&'a str],
    pub rep_id: Option<i64>,
    /// Reps within this territory's subtree only (the queue's own filter).
    pub territory_id: Option<i64>,
    /// Rep-days `from..=to`.
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// A visit waiting for a reviewer.
#[derive(Debug, Clone, FromRow)]
pub struct QueuedVisit {
    pub id: i64,
    pub rep_id: i64,
    pub rep_name: String,
    pub outlet_id: i64,
    pub outlet_code: String,
    pub outlet_name: String,
    pub rep_day: NaiveDate,
    /// The arrival.
    pub at: DateTime<Utc>,
    #[sqlx(try_from = "String")]
    pub verdict: Verdict,
    pub risk_score: f32,
    /// The rep's standing dispute, when there is one.
    pub dispute_reason: Option<String>,
    /// `suspect`, `unverified` or `disputed`.
    pub kind: String,
    /// Every visit the filter matches (before the cursor too).
    pub total: i64,
}

/// Up to `limit` queued visits matching `f` after `after` (arrival, id), oldest first
/// (`sql/reviews_queue.sql`).
pub async fn visits(
    db: impl PgExecutor<'_>,
    org_id: i64,
    f: &VisitFilter<'_>,
    after: (DateTime<Utc>, i64),
    limit: i64,
) -> Result<Vec<QueuedVisit>, sqlx::Error> {
    sqlx::query_as(include_str!("sql/reviews_queue.sql"))
        .bind(org_id)
        .bind(f.scope_root)
        .bind(f.kinds)
        .bind(f.rep_id)
        .bind(f.territory_id)
        .bind(f.from)
        .bind(f.to)
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// A rep as a queue item names them, with their territory path (for the territory filter).
#[derive(Debug, Clone, FromRow)]
pub struct RepName {
    pub id: i64,
    pub name: String,
    pub territory_path: Option<Vec<i64>>,
}

/// The reps `ids` of the org.
pub async fn reps(db: impl PgExecutor<'_>, org_id: i64, ids: &[i64]) -> Result<Vec<RepName>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.id, u.name, t.path AS territory_path
           FROM users u LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id
          WHERE u.org_id = $1 AND u.id = ANY($2)",
    )
    .bind(org_id)
    .bind(ids)
    .fetch_all(db)
    .await
}

/// An outlet as a queue item names it.
#[derive(Debug, Clone, FromRow)]
pub struct OutletName {
    pub id: i64,
    pub code: String,
    pub name: String,
}

/// The outlets `ids` of the org.
pub async fn outlets(db: impl PgExecutor<'_>, org_id: i64, ids: &[i64]) -> Result<Vec<OutletName>, sqlx::Error> {
    sqlx::query_as("SELECT id, code, name FROM outlets WHERE org_id = $1 AND id = ANY($2)")
        .bind(org_id)
        .bind(ids)
        .fetch_all(db)
        .await
}

/// The org-local day of each of `times`, in order.
pub async fn local_days(
    db: impl PgExecutor<'_>,
    org_id: i64,
    times: &[DateTime<Utc>],
) -> Result<Vec<NaiveDate>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT (x.at AT TIME ZONE o.timezone)::date FROM orgs o, UNNEST($2::timestamptz[]) WITH ORDINALITY x(at, n)
          WHERE o.id = $1 ORDER BY x.n",
    )
    .bind(org_id)
    .bind(times)
    .fetch_all(db)
    .await
}
