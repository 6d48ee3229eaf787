//! Users over their life: renamed, given another role or territory scope, deactivated. Audited;
//! a deactivated user's token (and a rep's phones) are refused from the commit on, since the token
//! lookup joins `users.active`.

use super::{Caller, Error};
use crate::db;
use crate::db::users::{User, UserChange};
use crate::domain::access::Role;
use crate::domain::audit::AuditAction;
use crate::domain::validation::{FieldError, NAME_MAX_CHARS, check_text};
use serde_json::json;
use sqlx::PgPool;

/// A change asked for: `None` keeps a field; `territory_id: Some(None)` makes the user org-wide.
#[derive(Debug, Default)]
pub struct UserEdit<'a> {
    pub name: Option<&'a str>,
    pub role: Option<&'a str>,
    #[allow(clippy::option_option)] // Tells "keep" from "org-wide".
    pub territory_id: Option<Option<i64>>,
    pub active: Option<bool>,
}

/// Applies `edit` to user `id` for an admin whose scope holds the user (and the new territory).
/// A rep stays a rep and no other user becomes one (a rep's pings, visits and plans are theirs);
/// no one changes their own role or scope or deactivates themself (no lock-out). Every refused
/// field is named.
pub async fn update(db: &PgPool, caller: &Caller<'_>, id: i64, edit: &UserEdit<'_>) -> Result<User, Error> {
    let user = db::users::get(db, caller.org_id, id).await?.ok_or_else(|| Error::not_found("user", id))?;
    if !caller.may_reach(user.territory_path.as_deref()) {
        return Err(Error::Forbidden("this user is outside your territory".into()));
    }
    let mut errors = Vec::new();
    let name = edit.name.map(str::trim);
    if let Some(name) = name {
        check_text("name", name, NAME_MAX_CHARS, &mut errors);
    }
    let role = match edit.role.map(str::parse::<Role>) {
        Some(Err(e)) => {
            errors.push(FieldError::new("role", e.to_string()));
            None
        }
        Some(Ok(role)) if (role == Role::Rep) != (user.role == Role::Rep) => {
            errors.push(FieldError::new("role", "a rep stays a rep and no other user becomes one: create a new user"));
            None
        }
        other => other.and_then(Result::ok),
    };
    let own = caller.user_id == Some(id);
    if own && role.is_some_and(|r| r != user.role) {
        errors.push(FieldError::new("role", "you cannot change your own role"));
    }
    if own && edit.active == Some(false) {
        errors.push(FieldError::new("active", "you cannot deactivate yourself"));
    }
    if own && edit.territory_id.is_some_and(|t| t != user.territory_id) {
        errors.push(FieldError::new("territory_id", "you cannot change your own territory scope"));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    if let Some(territory) = edit.territory_id {
        let path = match territory {
            None => None,
            Some(t) => Some(
                db::territories::get(db, caller.org_id, t)
                    .await?
                    .ok_or_else(|| {
                        Error::Invalid(vec![FieldError::new("territory_id", "no such territory in this org")])
                    })?
                    .path,
            ),
        };
        if !caller.may_reach(path.as_deref()) {
            return Err(Error::Forbidden("the new territory is outside your territory".into()));
        }
    }
    let change = UserChange { name, role, territory_id: edit.territory_id, active: edit.active };
    let mut tx = db.begin().await?;
    let updated =
        db::users::update(&mut *tx, caller.org_id, id, &change).await?.ok_or_else(|| Error::not_found("user", id))?;
    let mut detail = serde_json::Map::new();
    if let Some(name) = name {
        detail.insert("name".into(), json!(name));
    }
    if let Some(role) = role {
        detail.insert("role".into(), json!(role));
    }
    if let Some(territory) = edit.territory_id {
        detail.insert("territory_id".into(), json!(territory));
    }
    if let Some(active) = edit.active {
        detail.insert("active".into(), json!(active));
    }
    caller.audit(&mut *tx, AuditAction::UserUpdate, "user", id, serde_json::Value::Object(detail)).await?;
    tx.commit().await?;
    Ok(updated)
}
