//! Org bootstrap operations shared by the `admin` CLI, the HTTP admin endpoints and the demo loader:
//! they create orgs, users and devices and hand out their secrets exactly once.

use crate::db;
use crate::domain::access::Role;
use crate::domain::credentials::{hash_secret, new_device_secret, new_token};
use crate::domain::outlet::default_tier_policies;
use serde::Serialize;
use sqlx::PgPool;

/// A user together with the only copy of their new token.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedUser {
    pub user: db::users::User,
    /// Bearer token; shown once, only its hash is stored.
    pub token: String,
}

/// A device with the only copy of each of its credentials.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceCredentials {
    pub device_id: i64,
    pub rep_id: i64,
    /// Bearer token for the native API.
    pub token: String,
    /// The device identifier to configure in Traccar Client / OsmAnd.
    pub osmand_id: String,
    /// OwnTracks HTTP basic-auth user name and password.
    pub owntracks_user: String,
    pub owntracks_password: String,
}

/// Creates an org with the default tier policies.
pub async fn create_org(pool: &PgPool, slug: &str, name: &str, timezone: &str) -> Result<db::orgs::Org, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let org = db::orgs::create(&mut *tx, slug, name, timezone).await?;
    for p in default_tier_policies() {
        db::tiers::upsert(&mut *tx, org.id, &p).await?;
    }
    tx.commit().await?;
    Ok(org)
}

/// Creates a user and issues their first token.
pub async fn create_user(
    pool: &PgPool,
    org_id: i64,
    login: &str,
    name: &str,
    role: Role,
    territory_id: Option<i64>,
) -> Result<IssuedUser, sqlx::Error> {
    let token = new_token(&mut rand::rng());
    let mut tx = pool.begin().await?;
    let user = db::users::create(&mut *tx, org_id, login, name, role, territory_id).await?;
    db::tokens::issue_for_user(&mut tx, org_id, user.id, &hash_secret(&token)).await?;
    tx.commit().await?;
    Ok(IssuedUser { user, token })
}

/// Replaces a user's token with a new one (the old one stops working at once).
pub async fn reissue_user_token(pool: &PgPool, org_id: i64, user_id: i64) -> Result<String, sqlx::Error> {
    let token = new_token(&mut rand::rng());
    let mut tx = pool.begin().await?;
    db::tokens::issue_for_user(&mut tx, org_id, user_id, &hash_secret(&token)).await?;
    tx.commit().await?;
    Ok(token)
}

/// A device's credentials, freshly drawn at random (only their hashes are stored).
pub struct NewSecrets {
    /// Bearer token for the native API.
    pub token: String,
    /// The id to configure in Traccar Client / OsmAnd.
    pub osmand_id: String,
    /// OwnTracks HTTP basic-auth user name (`ot-` + 12 random hex digits) and password.
    pub owntracks_user: String,
    /// See `owntracks_user`.
    pub owntracks_password: String,
}

/// Draws every credential of a new device at random (the API, the demo loader).
pub fn new_device_secrets() -> NewSecrets {
    // ThreadRng is not Send: it lives only within this function, never across an await.
    let mut rng = rand::rng();
    let owntracks_user = format!("ot-{}", &new_device_secret(&mut rng)[..12]);
    NewSecrets {
        token: new_token(&mut rng),
        osmand_id: new_device_secret(&mut rng),
        owntracks_user,
        owntracks_password: new_device_secret(&mut rng),
    }
}

/// Stores a new device of rep `rep_id` with the hashes of `secrets` (never the secrets); returns
/// its id. Its bearer token is issued apart (`db::tokens::issue_for_device`).
pub async fn register_device(
    db: impl sqlx::PgExecutor<'_>,
    org_id: i64,
    rep_id: i64,
    name: &str,
    secrets: &NewSecrets,
) -> Result<i64, sqlx::Error> {
    let new = db::devices::NewDevice {
        rep_id,
        name,
        osmand_id_hash: &hash_secret(&secrets.osmand_id),
        owntracks_user: &secrets.owntracks_user,
        owntracks_password_hash: &hash_secret(&secrets.owntracks_password),
    };
    db::devices::create(db, org_id, &new).await
}

/// Registers a device for a rep and issues all its credentials. The caller checks the rep's role.
pub async fn create_device(
    pool: &PgPool,
    org_id: i64,
    rep_id: i64,
    name: &str,
) -> Result<DeviceCredentials, sqlx::Error> {
    let secrets = new_device_secrets();
    let mut tx = pool.begin().await?;
    let device_id = register_device(&mut *tx, org_id, rep_id, name, &secrets).await?;
    let NewSecrets { token, osmand_id, owntracks_user, owntracks_password } = secrets;
    db::tokens::issue_for_device(&mut tx, org_id, device_id, &hash_secret(&token)).await?;
    tx.commit().await?;
    Ok(DeviceCredentials { device_id, rep_id, token, osmand_id, owntracks_user, owntracks_password })
}
