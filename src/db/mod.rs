//! PostgreSQL repositories (sqlx), one file per aggregate. The only place that speaks SQL.

pub mod audit;
pub mod beats;
pub mod checkins;
pub mod checklists;
pub mod compliance;
pub mod devices;
pub mod enrolments;
pub mod exports;
pub mod import;
pub mod layers;
pub mod orgs;
pub mod outlets;
pub mod photos;
pub mod pings;
pub mod plans;
pub mod position_requests;
pub mod privacy;
pub mod replica;
pub mod reviews_queue;
pub mod territories;
pub mod tiers;
pub mod tokens;
pub mod users;
pub mod visit_ledger;
pub mod visits;

use crate::domain::names::UnknownName;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgTypeInfo, PgValueRef};
use sqlx::{ConnectOptions, PgExecutor, PgPool, Postgres, Transaction};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

/// Rows of a group of rep-days tagged with the 1-based index of their rep-day (`WITH ORDINALITY`
/// of the `unnest` of the group's arrays) as one list per rep-day, in the group's order and each
/// in row order; `n` rep-days (an index outside them is dropped).
pub(crate) fn per_rep_day<T>(n: usize, rows: impl IntoIterator<Item = (i32, T)>) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = std::iter::repeat_with(Vec::new).take(n).collect();
    for (k, row) in rows {
        if let Some(list) = usize::try_from(k - 1).ok().and_then(|i| out.get_mut(i)) {
            list.push(row);
        }
    }
    out
}

// Domain values named by a word (a role, a verdict, a status, an audit action, ...) are stored as
// that word, the one their JSON carries: written with the type's `as_str` and read with its
// `FromStr` (`fieldvisit_domain::names`), so each type's text lives in one place. A row struct
// reads such a column with `#[sqlx(try_from = "String")]` (a nullable one with
// `#[sqlx(try_from = "crate::db::NullableName")]`); text that names no value is a decode error, which the
// API answers with a 500. Nothing panics on it.

/// A nullable text column holding a domain value's name, for row structs: a field
/// `#[sqlx(try_from = "crate::db::NullableName")] review: Option<Review>` reads NULL as `None` and other
/// text as the type's `FromStr` does.
pub struct NullableName(Option<String>);

impl sqlx::Type<Postgres> for NullableName {
    fn type_info() -> PgTypeInfo {
        <String as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <String as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, Postgres> for NullableName {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        <Option<String> as sqlx::Decode<'r, Postgres>>::decode(value).map(NullableName)
    }
}

impl<T: FromStr<Err = UnknownName>> TryFrom<NullableName> for Option<T> {
    type Error = UnknownName;
    fn try_from(n: NullableName) -> Result<Self, UnknownName> {
        n.0.map(|text| text.parse()).transpose()
    }
}

/// The schema migrations compiled into the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Opens a connection pool (no statement timeout: the pool of the commands other than `serve`).
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    connect_as(url, max_connections, REQUEST_APPLICATION_NAME, Duration::from_secs(10)).await
}

/// Opens the pool of `fieldvisit serve`'s background work (exports, derivation, recomputation,
/// imports, retention, the outlet index and position relay): no statement timeout, since that work
/// may legitimately run long, and few connections (see [`request_pool`] for the other pool). Work
/// finding every connection busy waits up to a minute for one: it is not a client waiting.
pub async fn connect_background(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    connect_as(url, max_connections, BACKGROUND_APPLICATION_NAME, Duration::from_secs(60)).await
}

async fn connect_as(
    url: &str,
    max_connections: u32,
    application_name: &str,
    acquire_timeout: Duration,
) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?
        .application_name(application_name)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(2));
    PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(acquire_timeout)
        .connect_with(options)
        .await
}

/// Application name of the request pool's connections in `pg_stat_activity`.
pub const REQUEST_APPLICATION_NAME: &str = "fieldvisit";
/// Application name of the background pool's connections in `pg_stat_activity`.
pub const BACKGROUND_APPLICATION_NAME: &str = "fieldvisit-background";

/// `options` with PostgreSQL's `statement_timeout` set on each connection (0: none).
pub fn with_statement_timeout(options: PgConnectOptions, statement_timeout_ms: u64) -> PgConnectOptions {
    if statement_timeout_ms == 0 {
        return options;
    }
    options.options([("statement_timeout", statement_timeout_ms.to_string())])
}

/// The pool of the queries run for HTTP requests: the database and settings of `background`
/// (the pool of background work, which has no statement timeout), `max_connections` of its own,
/// and PostgreSQL's `statement_timeout` set to `statement_timeout_ms` on each connection (0: none),
/// so a query stuck on a lock or a plan gone wrong is cancelled and its request answered instead of
/// holding a connection. Connects lazily; closed when `background` is closed (needs a Tokio
/// runtime).
pub fn request_pool(background: &PgPool, max_connections: u32, statement_timeout_ms: u64) -> PgPool {
    let options = with_statement_timeout(
        (*background.connect_options()).clone().application_name(REQUEST_APPLICATION_NAME),
        statement_timeout_ms,
    );
    let requests = PgPoolOptions::new()
        .max_connections(max_connections.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options);
    let (closing, background) = (requests.clone(), background.clone());
    tokio::spawn(async move {
        background.close_event().await;
        closing.close().await;
    });
    requests
}

/// Whether `err` is PostgreSQL cancelling a statement that ran past its `statement_timeout` (or
/// waited past its `lock_timeout`): SQLSTATE 57014 `query_canceled` or 55P03 `lock_not_available`.
pub fn is_timeout(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("57014" | "55P03")),
        _ => false,
    }
}

/// Applies pending migrations; a no-op when the schema is current.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// A read-only transaction that sees one snapshot of the database throughout (an export and its
/// `verify` read one state).
pub async fn snapshot(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    Ok(tx)
}

/// Sends `payload` on the notification `channel` (delivered to listeners at commit).
pub async fn notify(db: impl PgExecutor<'_>, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(db).await?;
    Ok(())
}

/// Ready means: the database answers and every migration of this binary is applied.
pub async fn readiness(pool: &PgPool) -> Result<(), String> {
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await
        .map_err(|e| format!("database not reachable or not migrated: {e}"))?;
    let applied: HashSet<i64> = applied.into_iter().collect();
    let missing: Vec<String> = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| format!("{} {}", m.version, m.description))
        .collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("migrations not applied: {}", missing.join(", "))) }
}
