//! Bearer tokens. Only hashes are stored; issuing a new token revokes the previous one.

use crate::domain::access::Role;
use sqlx::{FromRow, PgExecutor, Postgres, Transaction};

/// Who a live token belongs to.
#[derive(Debug, Clone, FromRow)]
pub struct TokenOwner {
    pub org_id: i64,
    pub user_id: Option<i64>,
    #[sqlx(try_from = "crate::db::NullableName")]
    pub role: Option<Role>,
    pub territory_id: Option<i64>,
    pub device_id: Option<i64>,
    pub device_rep_id: Option<i64>,
    /// The territory of the device's rep (a device acts for its rep, in the rep's scope).
    pub device_rep_territory_id: Option<i64>,
}

/// Finds the live owner of a token hash (an active user, or an active device of an active rep).
pub async fn owner(db: impl PgExecutor<'_>, token_hash: &[u8]) -> Result<Option<TokenOwner>, sqlx::Error> {
    sqlx::query_as(
        "SELECT k.org_id, u.id AS user_id, u.role, u.territory_id, d.id AS device_id, r.id AS device_rep_id,
                r.territory_id AS device_rep_territory_id
           FROM api_tokens k
           LEFT JOIN users u ON u.org_id = k.org_id AND u.id = k.user_id AND u.active
           LEFT JOIN devices d ON d.org_id = k.org_id AND d.id = k.device_id AND d.active
           LEFT JOIN users r ON r.org_id = d.org_id AND r.id = d.rep_id AND r.active
          WHERE k.token_hash = $1 AND k.revoked_at IS NULL AND (u.id IS NOT NULL OR r.id IS NOT NULL)",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

/// Revokes the user's live token (if any) and stores the hash of a new one.
pub async fn issue_for_user(
    tx: &mut Transaction<'_, Postgres>,
    org_id: i64,
    user_id: i64,
    token_hash: &[u8],
) -> Result<(), sqlx::Error> {
    revoke_for_user(&mut **tx, org_id, user_id).await?;
    sqlx::query("INSERT INTO api_tokens (org_id, user_id, token_hash) VALUES ($1, $2, $3)")
        .bind(org_id)
        .bind(user_id)
        .bind(token_hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Revokes the device's live token (if any) and stores the hash of a new one.
pub async fn issue_for_device(
    tx: &mut Transaction<'_, Postgres>,
    org_id: i64,
    device_id: i64,
    token_hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE org_id = $1 AND device_id = $2 AND revoked_at IS NULL")
        .bind(org_id)
        .bind(device_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("INSERT INTO api_tokens (org_id, device_id, token_hash) VALUES ($1, $2, $3)")
        .bind(org_id)
        .bind(device_id)
        .bind(token_hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Revokes the user's live token; returns whether there was one.
pub async fn revoke_for_user(db: impl PgExecutor<'_>, org_id: i64, user_id: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(org_id)
    .bind(user_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// What tokens a user or device was ever issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issued {
    /// One that is not revoked.
    Live,
    /// Only revoked ones.
    Revoked,
    /// None at all.
    Never,
}

/// Whether the user holds a live token, only revoked ones, or none.
pub async fn issued_for_user(db: impl PgExecutor<'_>, org_id: i64, user_id: i64) -> Result<Issued, sqlx::Error> {
    issued(db, org_id, Some(user_id), None).await
}

/// Whether the device holds a live token, only revoked ones, or none.
pub async fn issued_for_device(db: impl PgExecutor<'_>, org_id: i64, device_id: i64) -> Result<Issued, sqlx::Error> {
    issued(db, org_id, None, Some(device_id)).await
}

async fn issued(
    db: impl PgExecutor<'_>,
    org_id: i64,
    user_id: Option<i64>,
    device_id: Option<i64>,
) -> Result<Issued, sqlx::Error> {
    let (any, live): (bool, bool) = sqlx::query_as(
        "SELECT count(*) > 0, coalesce(bool_or(revoked_at IS NULL), false) FROM api_tokens
          WHERE org_id = $1 AND (user_id = $2 OR device_id = $3)",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(device_id)
    .fetch_one(db)
    .await?;
    Ok(match (any, live) {
        (_, true) => Issued::Live,
        (true, false) => Issued::Revoked,
        (false, false) => Issued::Never,
    })
}
