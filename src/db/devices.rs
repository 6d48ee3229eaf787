//! Devices: reps' phones and their credentials (hashes only).

use serde::Serialize;
use sqlx::{FromRow, PgExecutor};

#[derive(Debug, Clone, Serialize, FromRow, utoipa::ToSchema)]
pub struct Device {
    pub id: i64,
    pub rep_id: i64,
    pub name: String,
    /// OwnTracks basic-auth user name.
    pub owntracks_user: String,
    pub active: bool,
    /// Territory path of the device's rep, for scope checks.
    #[serde(skip)]
    pub rep_territory_path: Option<Vec<i64>>,
}

const SELECT: &str = "SELECT d.id, d.rep_id, d.name, d.owntracks_user, d.active, t.path AS rep_territory_path
                        FROM devices d JOIN users u ON u.org_id = d.org_id AND u.id = d.rep_id
                        LEFT JOIN territories t ON t.org_id = u.org_id AND t.id = u.territory_id";

pub struct NewDevice<'a> {
    pub rep_id: i64,
    pub name: &'a str,
    pub osmand_id: &'a str,
    pub owntracks_user: &'a str,
    pub owntracks_password_hash: &'a [u8],
}

pub async fn create(db: impl PgExecutor<'_>, org_id: i64, d: &NewDevice<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO devices (org_id, rep_id, name, osmand_id, owntracks_user, owntracks_password_hash)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(org_id)
    .bind(d.rep_id)
    .bind(d.name)
    .bind(d.osmand_id)
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
    /// The org's settings (ping filter policy under `pings`).
    pub org_settings: serde_json::Value,
    /// OwnTracks password hash (SHA-256), for basic auth.
    #[sqlx(default)]
    pub owntracks_password_hash: Vec<u8>,
    /// A position request was delivered to the device and waits for its next fix.
    pub awaiting_position: bool,
    /// The rep's own working hours (same shape as `settings.pings.working_hours`), if set.
    pub rep_working_hours: Option<serde_json::Value>,
}

const SENDER: &str = "SELECT d.org_id, d.id, d.rep_id, d.active, o.settings AS org_settings, d.owntracks_password_hash,
                             EXISTS (SELECT 1 FROM position_requests r
                                      WHERE r.org_id = d.org_id AND r.device_id = d.id
                                        AND r.answered_at IS NULL AND r.delivered_at IS NOT NULL) AS awaiting_position,
                             u.working_hours AS rep_working_hours
                        FROM devices d JOIN orgs o ON o.id = d.org_id
                        JOIN users u ON u.org_id = d.org_id AND u.id = d.rep_id";

/// The device whose OsmAnd / Traccar Client id is `key` (the long random secret).
pub async fn sender_by_osmand_id(db: impl PgExecutor<'_>, key: &str) -> Result<Option<Sender>, sqlx::Error> {
    sqlx::query_as(&format!("{SENDER} WHERE d.osmand_id = $1")).bind(key).fetch_optional(db).await
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
