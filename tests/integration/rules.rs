//! Rules that the database must apply as well as the domain, checked against their one Rust
//! definition: when a migration or a SQL file and the domain part, these tests fail.
//!
//! - "valid visit" (a visit counts for compliance and coverage): `DayVisit::is_valid` in the
//!   domain; in SQL the generated column `visits.counted` (migration 0016), read back from the
//!   database's own catalogue so that the live definition is what is checked.
//! - The same-visit slack and the visit thresholds reach SQL as bind parameters (no copy to check).
//! - Outlet statuses are computed in Rust from SQL rows on both paths; the memory path and the
//!   database path are compared in `coverage::statuses_from_memory_equal_the_database_and_follow_changes`.

use chrono::{TimeZone, Utc};
use fieldvisit::domain::compliance::{DayVisit, Review};
use fieldvisit::domain::visit::Verdict;
use sqlx::PgPool;

/// Every verdict a visit can have.
const VERDICTS: [Verdict; 4] = [Verdict::Verified, Verdict::Short, Verdict::Unverified, Verdict::Suspect];

/// Every latest review a visit can have (none, accepted, rejected), as stored in `visits.review`.
const REVIEWS: [Option<Review>; 3] = [None, Some(Review::Accepted), Some(Review::Rejected)];

fn review_text(r: Option<Review>) -> Option<&'static str> {
    r.map(Review::as_str)
}

/// The Rust definition of a valid visit, for a visit with this verdict and latest review.
fn rust_counts(verdict: Verdict, review: Option<Review>) -> bool {
    let at = Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().expect("time");
    DayVisit { id: 1, outlet_id: 1, arrival: at, departure: at, dwell_s: 600, verdict, review }.is_valid()
}

/// Where a SQL boolean expression over the columns `verdict` and `review` (both text) and the Rust
/// rule disagree: each case as `(verdict, review, sql, rust)`. Every combination is evaluated
/// by PostgreSQL itself.
async fn divergences(pool: &PgPool, expr: &str) -> Vec<(Verdict, Option<Review>, Option<bool>, bool)> {
    let sql = format!("SELECT ({expr}) FROM (SELECT $1::text AS verdict, $2::text AS review) AS visits");
    let mut out = Vec::new();
    for verdict in VERDICTS {
        for review in REVIEWS {
            let in_sql: Option<bool> = sqlx::query_scalar(&sql)
                .bind(verdict.as_str())
                .bind(review_text(review))
                .fetch_one(pool)
                .await
                .expect("the expression evaluates");
            let in_rust = rust_counts(verdict, review);
            if in_sql != Some(in_rust) {
                out.push((verdict, review, in_sql, in_rust));
            }
        }
    }
    out
}

/// The expression of the generated column `visits.counted` as the database holds it.
async fn counted_definition(pool: &PgPool) -> String {
    sqlx::query_scalar(
        "SELECT pg_get_expr(d.adbin, d.adrelid)
           FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
          WHERE d.adrelid = 'visits'::regclass AND a.attname = 'counted' AND a.attgenerated = 's'",
    )
    .fetch_one(pool)
    .await
    .expect("visits.counted is a stored generated column")
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_counted_column_is_the_domains_valid_visit(pool: PgPool) {
    let definition = counted_definition(&pool).await;
    let found = divergences(&pool, &definition).await;
    assert!(found.is_empty(), "visits.counted = {definition} disagrees with DayVisit::is_valid on {found:?}");
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_checker_finds_a_definition_that_parts_from_the_domain(pool: PgPool) {
    // Forgets that a rejected review makes a verified visit not count.
    let forgets_rejection = "CASE review WHEN 'accepted' THEN true ELSE verdict = 'verified' END";
    let found = divergences(&pool, forgets_rejection).await;
    assert_eq!(found, vec![(Verdict::Verified, Some(Review::Rejected), Some(true), false)]);
    // Counts `short` visits too.
    let counts_short = "CASE review WHEN 'accepted' THEN true WHEN 'rejected' THEN false \
                        ELSE verdict IN ('verified', 'short') END";
    assert_eq!(divergences(&pool, counts_short).await, vec![(Verdict::Short, None, Some(true), false)]);
    // NULL for an unreviewed visit is a divergence too (NULL is not false in a WHERE).
    let null_default = "CASE review WHEN 'accepted' THEN true WHEN 'rejected' THEN false END";
    assert_eq!(divergences(&pool, null_default).await.len(), VERDICTS.len());
}
