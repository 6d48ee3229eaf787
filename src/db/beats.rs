//! What beat generation reads beyond the territory's outlets and reps: the reps' declared homes
//! and the outlets' time windows (outlet attributes `window_start` / `window_end`).

use sqlx::PgExecutor;

/// The declared homes (lat, lon) of the given users that have one.
pub async fn homes(
    db: impl PgExecutor<'_>,
    org_id: i64,
    user_ids: &[i64],
) -> Result<Vec<(i64, f64, f64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, ST_Y(home), ST_X(home) FROM users WHERE org_id = $1 AND id = ANY($2) AND home IS NOT NULL",
    )
    .bind(org_id)
    .bind(user_ids)
    .fetch_all(db)
    .await
}

/// The `window_start` / `window_end` attributes (as stored, expected `HH:MM`) of the given
/// outlets that have either.
pub async fn outlet_windows(
    db: impl PgExecutor<'_>,
    org_id: i64,
    outlet_ids: &[i64],
) -> Result<Vec<(i64, Option<String>, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, attributes->>'window_start', attributes->>'window_end' FROM outlets
          WHERE org_id = $1 AND id = ANY($2) AND (attributes ? 'window_start' OR attributes ? 'window_end')",
    )
    .bind(org_id)
    .bind(outlet_ids)
    .fetch_all(db)
    .await
}
