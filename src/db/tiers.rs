//! Tier policies per org.

use crate::domain::outlet::TierPolicy;
use sqlx::{FromRow, PgExecutor};

#[derive(FromRow)]
struct Row {
    tier: String,
    required_visits: i32,
    cycle_days: i32,
    min_dwell_s: i32,
    default_radius_m: f32,
}

impl From<Row> for TierPolicy {
    fn from(r: Row) -> Self {
        TierPolicy {
            tier: r.tier,
            required_visits: r.required_visits,
            cycle_days: r.cycle_days,
            min_dwell_s: r.min_dwell_s,
            default_radius_m: r.default_radius_m,
        }
    }
}

pub async fn list(db: impl PgExecutor<'_>, org_id: i64) -> Result<Vec<TierPolicy>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT tier, required_visits, cycle_days, min_dwell_s, default_radius_m
           FROM tier_policies WHERE org_id = $1 ORDER BY tier",
    )
    .bind(org_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(TierPolicy::from).collect())
}

/// Creates or replaces the policy of one tier.
pub async fn upsert(db: impl PgExecutor<'_>, org_id: i64, p: &TierPolicy) -> Result<TierPolicy, sqlx::Error> {
    let row: Row = sqlx::query_as(
        "INSERT INTO tier_policies (org_id, tier, required_visits, cycle_days, min_dwell_s, default_radius_m)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (org_id, tier) DO UPDATE SET required_visits = EXCLUDED.required_visits,
             cycle_days = EXCLUDED.cycle_days, min_dwell_s = EXCLUDED.min_dwell_s,
             default_radius_m = EXCLUDED.default_radius_m
         RETURNING tier, required_visits, cycle_days, min_dwell_s, default_radius_m",
    )
    .bind(org_id)
    .bind(&p.tier)
    .bind(p.required_visits)
    .bind(p.cycle_days)
    .bind(p.min_dwell_s)
    .bind(p.default_radius_m)
    .fetch_one(db)
    .await?;
    Ok(row.into())
}
