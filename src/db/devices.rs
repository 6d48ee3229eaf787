//! Devices: reps' phones and their credentials (hashes only).

use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Device {
    pub id: i64,
    pub rep_id: i64,
    pub name: String,
    /// OwnTracks basic-auth user name (none once the device was reassigned).
    pub owntracks_user: Option<String>,
    pub active: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was last deactivated (kept after a reactivation).
    pub deactivated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The device row the phone moved to when it was reassigned to another rep.
    pub successor_id: Option<i64>,
    /// The device row this one continues (the phone's previous rep).
    pub predecessor_id: Option<i64>,
    /// Territory path of the device's rep, for scope checks.
    #[serde(skip)]
    pub rep_territory_path: Option<Vec<i64>>,
}

const SELECT: &str = "SELECT d.id, d.rep_id, d.name, d.owntracks_user, d.active, d.created_at, d.deactivated_at,
                             d.successor_id, p.id AS predecessor_id, t.path AS rep_territory_path
                        FROM devices d JOIN users u ON u.org_id = d.org_id AND u.id = d.rep_id
                        LEFT JOIN devices p ON p.org_id = d.org_id AND p.successor_id = d.id
                        LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id";

/// A new device row; secrets as SHA-256 hashes.
pub struct NewDevice<'a> {
    pub rep_id: i64,
    pub name: &'a str,
    pub osmand_id_hash: &'a [u8],
    pub owntracks_user: &'a str,
    pub owntracks_password_hash: &'a [u8],
}

pub async fn create(db: impl PgExecutor<'_>, org_id: i64, d: &NewDevice<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO devices (org_id, rep_id, name, osmand_id_hash, owntracks_user, owntracks_password_hash)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(org_id)
    .bind(d.rep_id)
    .bind(d.name)
    .bind(d.osmand_id_hash)
    .bind(d.owntracks_user)
    .bind(d.owntracks_password_hash)
    .fetch_one(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, org_id: i64, id: i64) -> Result<Option<Device>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE d.org_id = $1 AND d.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Devices whose rep lies in the subtree `scope_root` (all when `None`).
pub async fn list(
    db: impl PgExecutor<'_>,
    org_id: i64,
    scope_root: Option<i64>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<Device>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE d.org_id = $1 AND ($2::bigint IS NULL OR t.path @> ARRAY[$2::bigint])
           AND d.id > $3 ORDER BY d.id LIMIT $4"
    ))
    .bind(org_id)
    .bind(scope_root)
    .bind(after_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Ids of the devices of a rep.
pub async fn ids_of_rep(db: impl PgExecutor<'_>, org_id: i64, rep_id: i64) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM devices WHERE org_id = $1 AND rep_id = $2 ORDER BY id")
        .bind(org_id)
        .bind(rep_id)
        .fetch_all(db)
        .await
}

/// A device as the ingest endpoints identify it, with what judging its pings needs.
#[derive(Debug, Clone, FromRow)]
pub struct Sender {
    pub org_id: i64,
    pub id: i64,
    pub rep_id: i64,
    pub active: bool,
    /// The version of the device's credentials this was resolved at: the ping writer stores the
    /// pings only while it is still the device's (see migration 0026).
    pub credential_version: i32,
    /// The org's settings (ping filter policy under `pings`).
    pub org_settings: serde_json::Value,
    /// OwnTracks password hash (SHA-256), for basic auth.
    pub owntracks_password_hash: Option<Vec<u8>>,
    /// A position request was delivered to the device and waits for its next fix.
    pub awaiting_position: bool,
    /// The rep's own working hours (same shape as `settings.pings.working_hours`), if set.
    pub rep_working_hours: Option<serde_json::Value>,
}

const SENDER: &str = "SELECT d.org_id, d.id, d.rep_id, d.active, d.credential_version, o.settings AS org_settings, d.owntracks_password_hash,
                             EXISTS (SELECT 1 FROM position_requests r
                                      WHERE r.org_id = d.org_id AND r.device_id = d.id
                                        AND r.answered_at IS NULL AND r.delivered_at IS NOT NULL) AS awaiting_position,
                             u.working_hours AS rep_working_hours
                        FROM devices d JOIN orgs o ON o.id = d.org_id
                        JOIN users u ON u.org_id = d.org_id AND u.id = d.rep_id";

/// The device whose OsmAnd / Traccar Client id hashes to `key_hash` (the id is a long random
/// secret, stored hashed).
pub async fn sender_by_osmand_id(db: impl PgExecutor<'_>, key_hash: &[u8]) -> Result<Option<Sender>, sqlx::Error> {
    sqlx::query_as(&format!("{SENDER} WHERE d.osmand_id_hash = $1")).bind(key_hash).fetch_optional(db).await
}

/// The device whose OwnTracks basic-auth user is `user`.
pub async fn sender_by_owntracks_user(db: impl PgExecutor<'_>, user: &str) -> Result<Option<Sender>, sqlx::Error> {
    sqlx::query_as(&format!("{SENDER} WHERE d.owntracks_user = $1")).bind(user).fetch_optional(db).await
}

/// The device with this id (a native client authenticated by its token).
pub async fn sender(db: impl PgExecutor<'_>, org_id: i64, id: i64) -> Result<Option<Sender>, sqlx::Error> {
    sqlx::query_as(&format!("{SENDER} WHERE d.org_id = $1 AND d.id = $2"))
        .bind(org_id)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Deactivates or reactivates a device; a deactivation bumps its credential version (in-flight
/// and cached credentials stop at once). `None` when there is no such device, or when a device
/// that was reassigned (it has a successor) is to be reactivated.
pub async fn set_active(
    db: impl PgExecutor<'_>,
    org_id: i64,
    id: i64,
    active: bool,
) -> Result<Option<()>, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE devices
            SET active = $3,
                credential_version = credential_version + (NOT $3)::int,
                deactivated_at = CASE WHEN $3 THEN deactivated_at ELSE now() END
          WHERE org_id = $1 AND id = $2 AND ($3 = false OR successor_id IS NULL)",
    )
    .bind(org_id)
    .bind(id)
    .bind(active)
    .execute(db)
    .await?
    .rows_affected();
    Ok((n == 1).then_some(()))
}

/// New phone-protocol secrets of a device (hashes); `None` keeps the current one.
#[derive(Default)]
pub struct Rotation<'a> {
    pub osmand_id_hash: Option<&'a [u8]>,
    pub owntracks_password_hash: Option<&'a [u8]>,
}

/// Replaces the given secrets and bumps the credential version. `false` when the device does not
/// exist or was reassigned (it holds no credentials).
pub async fn rotate(db: impl PgExecutor<'_>, org_id: i64, id: i64, r: &Rotation<'_>) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE devices
            SET osmand_id_hash = coalesce($3, osmand_id_hash),
                owntracks_password_hash = coalesce($4, owntracks_password_hash),
                credential_version = credential_version + 1
          WHERE org_id = $1 AND id = $2 AND successor_id IS NULL",
    )
    .bind(org_id)
    .bind(id)
    .bind(r.osmand_id_hash)
    .bind(r.owntracks_password_hash)
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Moves the phone of device `id` to rep `rep_id`: a new device row for that rep takes over its
/// credentials and its live token (so the phone now acts for the new rep); the old row keeps its
/// pings, visits and evidence with the old rep, holds no credential and points at the new one.
/// Returns the new row's id; `None` when the device does not exist or was already reassigned.
pub async fn reassign(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    org_id: i64,
    id: i64,
    rep_id: i64,
) -> Result<Option<i64>, sqlx::Error> {
    type Held = (String, Option<Vec<u8>>, Option<String>, Option<Vec<u8>>, bool);
    let held: Option<Held> = sqlx::query_as(
        "UPDATE devices n
            SET active = false, osmand_id_hash = NULL, owntracks_user = NULL, owntracks_password_hash = NULL,
                credential_version = n.credential_version + 1, deactivated_at = now()
           FROM (SELECT org_id, id, name, osmand_id_hash, owntracks_user, owntracks_password_hash, active
                   FROM devices WHERE org_id = $1 AND id = $2 AND successor_id IS NULL FOR UPDATE) o
          WHERE n.org_id = o.org_id AND n.id = o.id
      RETURNING o.name, o.osmand_id_hash, o.owntracks_user, o.owntracks_password_hash, o.active",
    )
    .bind(org_id)
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((name, osmand, ot_user, ot_password, active)) = held else { return Ok(None) };
    let new_id: i64 = sqlx::query_scalar(
        "INSERT INTO devices (org_id, rep_id, name, osmand_id_hash, owntracks_user, owntracks_password_hash, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(org_id)
    .bind(rep_id)
    .bind(name)
    .bind(osmand)
    .bind(ot_user)
    .bind(ot_password)
    .bind(active)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("UPDATE devices SET successor_id = $3 WHERE org_id = $1 AND id = $2")
        .bind(org_id)
        .bind(id)
        .bind(new_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE api_tokens SET device_id = $3 WHERE org_id = $1 AND device_id = $2 AND revoked_at IS NULL")
        .bind(org_id)
        .bind(id)
        .bind(new_id)
        .execute(&mut **tx)
        .await?;
    Ok(Some(new_id))
}
