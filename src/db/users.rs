//! Users of an org: role and territory scope.

use crate::domain::access::Role;
use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub login: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// Root of the territory subtree this user sees; `null` = whole org.
    pub territory_id: Option<i64>,
    pub active: bool,
    /// Path (root..node territory ids) of the user's territory, for scope checks.
    #[serde(skip)]
    pub territory_path: Option<Vec<i64>>,
}

const SELECT: &str = "SELECT u.id, u.login, u.name, u.role, u.territory_id, u.active, t.path AS territory_path
                        FROM users u LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id";

pub async fn create(
    db: impl PgExecutor<'_>,
    org_id: i64,
    login: &str,
    name: &str,
    role: Role,
    territory_id: Option<i64>,
) -> Result<User, sqlx::Error> {
    sqlx::query_as(
        "WITH u AS (INSERT INTO users (org_id, login, name, role, territory_id) VALUES ($1, $2, $3, $4, $5)
                    RETURNING org_id, id, login, name, role, territory_id, active)
         SELECT u.id, u.login, u.name, u.role, u.territory_id, u.active, t.path AS territory_path
           FROM u LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id",
    )
    .bind(org_id)
    .bind(login)
    .bind(name)
    .bind(role.as_str())
    .bind(territory_id)
    .fetch_one(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, org_id: i64, id: i64) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE u.org_id = $1 AND u.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The fields of a user to change (`None` keeps a field; `territory_id: Some(None)` makes the
/// user org-wide).
#[derive(Debug, Default)]
pub struct UserChange<'a> {
    pub name: Option<&'a str>,
    pub role: Option<Role>,
    #[allow(clippy::option_option)] // Tells "keep" from "org-wide".
    pub territory_id: Option<Option<i64>>,
    pub active: Option<bool>,
}

/// Changes a user's name, role, territory scope or active flag; `None` when there is no such user.
/// An inactive user's tokens (and their devices') are refused at once: the token lookup joins
/// `users.active`.
pub async fn update(
    db: impl PgExecutor<'_>,
    org_id: i64,
    id: i64,
    change: &UserChange<'_>,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(
        "WITH u AS (
            UPDATE users SET name = COALESCE($3, name), role = COALESCE($4, role),
                   territory_id = CASE WHEN $5 THEN $6 ELSE territory_id END,
                   active = COALESCE($7, active)
             WHERE org_id = $1 AND id = $2
         RETURNING org_id, id, login, name, role, territory_id, active)
         SELECT u.id, u.login, u.name, u.role, u.territory_id, u.active, t.path AS territory_path
           FROM u LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id",
    )
    .bind(org_id)
    .bind(id)
    .bind(change.name)
    .bind(change.role.map(|r| r.to_string()))
    .bind(change.territory_id.is_some())
    .bind(change.territory_id.flatten())
    .bind(change.active)
    .fetch_optional(db)
    .await
}

pub async fn by_login(db: impl PgExecutor<'_>, org_id: i64, login: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE u.org_id = $1 AND u.login = $2"))
        .bind(org_id)
        .bind(login)
        .fetch_optional(db)
        .await
}

/// Users whose territory lies in the subtree `scope_root` (all users when `None`), by id.
pub async fn list(
    db: impl PgExecutor<'_>,
    org_id: i64,
    scope_root: Option<i64>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE u.org_id = $1 AND ($2::bigint IS NULL OR t.path @> ARRAY[$2::bigint])
           AND u.id > $3 ORDER BY u.id LIMIT $4"
    ))
    .bind(org_id)
    .bind(scope_root)
    .bind(after_id)
    .bind(limit)
    .fetch_all(db)
    .await
}
