//! Reps' phones over their life: enrolled with a one-time link, deactivated and reactivated,
//! their secrets rotated, moved to another rep. Every change is audited, and a credential that
//! stops being valid is refused at once by every protocol on every instance (the ping writer
//! checks the device's credential version in the statement that stores the pings).

use super::{Caller, Error};
use crate::db;
use crate::db::devices::{Device, Rotation};
use crate::domain::access::Role;
use crate::domain::audit::AuditAction;
use crate::domain::credentials::{hash_secret, new_device_secret, new_token};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;

/// The device `id`, if it exists and its rep is within the caller's scope.
pub async fn visible(db: &PgPool, caller: &Caller<'_>, id: i64) -> Result<Device, Error> {
    let device = db::devices::get(db, caller.org_id, id).await?.ok_or_else(|| Error::not_found("device", id))?;
    if !caller.may_reach(device.rep_territory_path.as_deref()) {
        return Err(Error::Forbidden("this device's rep is outside your territory".into()));
    }
    Ok(device)
}

/// Deactivates (`active = false`) or reactivates a device. Deactivation refuses its token, OsmAnd
/// id and OwnTracks password from the moment it commits and withdraws its unused enrolment links.
/// A device that was reassigned stays inactive (409): its phone acts as its successor.
pub async fn set_active(db: &PgPool, caller: &Caller<'_>, id: i64, active: bool) -> Result<Device, Error> {
    let device = visible(db, caller, id).await?;
    if device.active == active {
        return Ok(device);
    }
    let mut tx = db.begin().await?;
    if db::devices::set_active(&mut *tx, caller.org_id, id, active).await?.is_none() {
        return Err(reassigned(&device));
    }
    if !active {
        db::enrolments::withdraw(&mut *tx, caller.org_id, id).await?;
    }
    let action = if active { AuditAction::DeviceReactivate } else { AuditAction::DeviceDeactivate };
    caller.audit(&mut *tx, action, "device", id, json!({"rep_id": device.rep_id})).await?;
    tx.commit().await?;
    reread(db, caller, id).await
}

fn reassigned(device: &Device) -> Error {
    Error::Conflict {
        detail: format!(
            "device {} was reassigned to another rep (device {}): its phone acts as that device now",
            device.id,
            device.successor_id.unwrap_or_default()
        ),
        errors: Vec::new(),
    }
}

async fn reread(db: &PgPool, caller: &Caller<'_>, id: i64) -> Result<Device, Error> {
    db::devices::get(db, caller.org_id, id)
        .await?
        .ok_or_else(|| Error::Internal(format!("device {id} not found after its commit")))
}

/// Which secrets of a device to replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Secret {
    /// The bearer token of the native API and the reps' app (the app must be enrolled again).
    Token,
    /// The id Traccar Client / OsmAnd sends.
    OsmandId,
    /// The OwnTracks password (the user name stays).
    OwntracksPassword,
}

/// The new secrets, each shown once (only hashes are stored); absent ones were kept.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct NewSecrets {
    pub device_id: i64,
    pub token: Option<String>,
    pub osmand_id: Option<String>,
    pub owntracks_user: Option<String>,
    pub owntracks_password: Option<String>,
}

/// Replaces the `which` secrets of device `id` (all three when empty). The old ones are refused
/// from the commit on; unused enrolment links are withdrawn with a new token.
pub async fn rotate(db: &PgPool, caller: &Caller<'_>, id: i64, which: &[Secret]) -> Result<NewSecrets, Error> {
    let device = visible(db, caller, id).await?;
    let mut tx = db.begin().await?;
    let out = replace_secrets(&mut tx, caller, &device, which).await?;
    tx.commit().await?;
    Ok(out)
}

/// [`rotate`] within the caller's transaction: new secrets for `device`, stored hashed, the token
/// reissued (and unused enrolment links withdrawn) when it is among them; audited.
async fn replace_secrets(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    caller: &Caller<'_>,
    device: &Device,
    which: &[Secret],
) -> Result<NewSecrets, Error> {
    let id = device.id;
    let all = which.is_empty();
    let wants = |s: Secret| all || which.contains(&s);
    let mut out = NewSecrets { device_id: id, ..NewSecrets::default() };
    {
        let mut rng = rand::rng();
        out.token = wants(Secret::Token).then(|| new_token(&mut rng));
        out.osmand_id = wants(Secret::OsmandId).then(|| new_device_secret(&mut rng));
        out.owntracks_password = wants(Secret::OwntracksPassword).then(|| new_device_secret(&mut rng));
    }
    out.owntracks_user = out.owntracks_password.as_ref().and(device.owntracks_user.clone());
    let (osmand_hash, ot_hash) =
        (out.osmand_id.as_deref().map(hash_secret), out.owntracks_password.as_deref().map(hash_secret));
    let rotation = Rotation { osmand_id_hash: osmand_hash.as_deref(), owntracks_password_hash: ot_hash.as_deref() };
    if !db::devices::rotate(&mut **tx, caller.org_id, id, &rotation).await? {
        return Err(reassigned(device));
    }
    if let Some(token) = &out.token {
        db::tokens::issue_for_device(tx, caller.org_id, id, &hash_secret(token)).await?;
        db::enrolments::withdraw(&mut **tx, caller.org_id, id).await?;
    }
    let names: Vec<Secret> =
        [Secret::Token, Secret::OsmandId, Secret::OwntracksPassword].into_iter().filter(|s| wants(*s)).collect();
    caller.audit(&mut **tx, AuditAction::DeviceRotate, "device", id, json!({"secrets": names})).await?;
    Ok(out)
}

/// Moves the phone of device `id` to rep `rep_id` (in the caller's scope): a new device row for
/// that rep takes over its credentials and token, so the phone acts for the new rep from the
/// commit on; the pings, visits and evidence so far stay with the old rep. Returns the new row.
pub async fn reassign(db: &PgPool, caller: &Caller<'_>, id: i64, rep_id: i64) -> Result<Device, Error> {
    let device = visible(db, caller, id).await?;
    if device.successor_id.is_some() {
        return Err(reassigned(&device));
    }
    if device.rep_id == rep_id {
        return Ok(device);
    }
    let rep = db::users::get(db, caller.org_id, rep_id)
        .await?
        .ok_or_else(|| Error::field("rep_id", "no such user in this org"))?;
    if rep.role != Role::Rep || !rep.active {
        return Err(Error::field("rep_id", format!("user {} is not an active rep", rep.id)));
    }
    if !caller.may_reach(rep.territory_path.as_deref()) {
        return Err(Error::Forbidden("the new rep is outside your territory".into()));
    }
    let mut tx = db.begin().await?;
    let new_id = db::devices::reassign(&mut tx, caller.org_id, id, rep.id).await?.ok_or_else(|| reassigned(&device))?;
    db::enrolments::withdraw(&mut *tx, caller.org_id, id).await?;
    let detail = json!({"from_rep_id": device.rep_id, "to_rep_id": rep.id, "successor_id": new_id});
    caller.audit(&mut *tx, AuditAction::DeviceReassign, "device", id, detail).await?;
    tx.commit().await?;
    reread(db, caller, new_id).await
}

/// Where enrolment links and tracker settings point, and how long a link lives.
#[derive(Debug, Clone)]
pub struct EnrolmentSettings {
    /// The server's URL as phones reach it (no trailing slash).
    pub public_url: String,
    pub ttl: chrono::Duration,
}

/// A QR code: what it encodes and a PNG of it (a `data:` URL an `<img>` shows as is).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Qr {
    pub text: String,
    pub png: String,
}

/// What a manager hands a rep to set up a phone: the one-time link to the reps' app and, when
/// asked for, the tracker apps' settings (which carry new secrets, shown only here).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enrolment {
    pub device_id: i64,
    /// Opens the reps' app signed in as the device; works once, until `expires_at`.
    pub app: Qr,
    pub expires_at: DateTime<Utc>,
    /// OwnTracks (HTTP mode): a link that configures the app, with its user and password.
    pub owntracks: Option<Qr>,
    /// Traccar Client: the server URL and the device identifier to enter.
    pub traccar: Option<TraccarSettings>,
    /// Browsers cannot track in the background: what to tell the rep.
    pub note: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TraccarSettings {
    pub server_url: String,
    pub device_id: String,
    /// `server_url?id=device_id`, as text and QR code.
    pub qr: Qr,
}

/// Background tracking needs a tracker app; the reps' app sends positions only while open.
pub const BACKGROUND_NOTE: &str = "The reps' app sends positions only while it is open on screen: \
    browsers do not track in the background. For all-day positions, also set up OwnTracks or \
    Traccar Client with the settings below.";

/// Issues a one-time enrolment link for device `id` (withdrawing older unused ones). With
/// `trackers`, also new OsmAnd id and OwnTracks password (the old ones stop working) for the
/// tracker apps' settings: they are stored hashed, so setting a phone up means new ones.
pub async fn enrol(
    db: &PgPool,
    caller: &Caller<'_>,
    id: i64,
    trackers: bool,
    settings: &EnrolmentSettings,
) -> Result<Enrolment, Error> {
    let device = visible(db, caller, id).await?;
    if !device.active {
        return Err(Error::Conflict {
            detail: format!("device {id} is deactivated: reactivate it before enrolling a phone"),
            errors: Vec::new(),
        });
    }
    let code = new_token(&mut rand::rng());
    let expires_at = Utc::now() + settings.ttl;
    let mut tx = db.begin().await?;
    db::enrolments::withdraw(&mut *tx, caller.org_id, id).await?;
    db::enrolments::create(&mut *tx, caller.org_id, id, &hash_secret(&code), caller.user_id, expires_at).await?;
    caller.audit(&mut *tx, AuditAction::DeviceEnrolmentCreate, "device", id, json!({"trackers": trackers})).await?;
    // The tracker apps' secrets are stored hashed: showing them means new ones, in the same commit.
    let secrets = if trackers {
        Some(replace_secrets(&mut tx, caller, &device, &[Secret::OsmandId, Secret::OwntracksPassword]).await?)
    } else {
        None
    };
    tx.commit().await?;
    let (owntracks, traccar) = if let Some(secrets) = secrets {
        let user = secrets.owntracks_user.unwrap_or_default();
        let config =
            owntracks_config(&settings.public_url, &user, secrets.owntracks_password.as_deref().unwrap_or_default());
        let osmand_id = secrets.osmand_id.unwrap_or_default();
        let server_url = format!("{}/osmand", settings.public_url);
        let traccar_qr = qr(format!("{server_url}?id={osmand_id}"))?;
        let traccar = TraccarSettings { server_url, device_id: osmand_id, qr: traccar_qr };
        (Some(qr(owntracks_link(&config))?), Some(traccar))
    } else {
        (None, None)
    };
    let app = qr(format!("{}/app/#enrol={code}", settings.public_url))?;
    Ok(Enrolment { device_id: id, app, expires_at, owntracks, traccar, note: BACKGROUND_NOTE })
}

/// OwnTracks' remote configuration (`_type: configuration`) for HTTP mode against this server.
pub fn owntracks_config(public_url: &str, user: &str, password: &str) -> serde_json::Value {
    json!({
        "_type": "configuration",
        "mode": 3,
        "url": format!("{public_url}/owntracks"),
        "auth": true,
        "username": user,
        "password": password,
        "monitoring": 1,
    })
}

/// The link OwnTracks opens to import `config`: `owntracks:///config?inline=` + base64 of it.
pub fn owntracks_link(config: &serde_json::Value) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(config.to_string());
    format!("owntracks:///config?inline={}", b64.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D"))
}

/// A QR code of `text` as a PNG `data:` URL.
fn qr(text: String) -> Result<Qr, Error> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| Error::Internal(format!("QR code: {e}")))?;
    let image = code.render::<image::Luma<u8>>().min_dimensions(240, 240).build();
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(image)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::Internal(format!("QR code PNG: {e}")))?;
    let png = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png));
    Ok(Qr { text, png })
}

/// What the reps' app holds after enrolling: the device's token, who it acts for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enrolled {
    pub token: String,
    pub device_id: i64,
    pub rep_id: i64,
    pub rep_name: String,
    pub org_id: i64,
}

/// Uses up enrolment code `code`: issues the device a new token (its previous one stops) and
/// returns it. `None` when the code is unknown, used, withdrawn or expired, or its device inactive.
pub async fn redeem(db: &PgPool, code: &str) -> Result<Option<Enrolled>, Error> {
    let token = new_token(&mut rand::rng());
    let mut tx = db.begin().await?;
    let Some((org_id, device_id)) = db::enrolments::redeem(&mut *tx, &hash_secret(code.trim())).await? else {
        return Ok(None);
    };
    db::tokens::issue_for_device(&mut tx, org_id, device_id, &hash_secret(&token)).await?;
    let device = db::devices::get(&mut *tx, org_id, device_id)
        .await?
        .ok_or_else(|| Error::Internal(format!("device {device_id} of an enrolment not found")))?;
    let rep = db::users::get(&mut *tx, org_id, device.rep_id)
        .await?
        .ok_or_else(|| Error::Internal(format!("rep {} of device {device_id} not found", device.rep_id)))?;
    let caller = Caller {
        org_id,
        user_id: None,
        device_id: Some(device_id),
        request_id: None,
        client_request_id: None,
        role: Some(Role::Rep),
        own_rep: Some(rep.id),
        scope: None,
    };
    caller.audit(&mut *tx, AuditAction::DeviceEnrol, "device", device_id, json!({"rep_id": rep.id})).await?;
    tx.commit().await?;
    Ok(Some(Enrolled { token, device_id, rep_id: rep.id, rep_name: rep.name, org_id }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owntracks_link_carries_the_configuration_in_base64() {
        let config = owntracks_config("https://fv.example.com", "ot-1", "pw+/=");
        let link = owntracks_link(&config);
        let b64 = link.strip_prefix("owntracks:///config?inline=").expect("prefix");
        let b64 = b64.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
        let decoded = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
        let back: serde_json::Value = serde_json::from_slice(&decoded).expect("json");
        assert_eq!(back["_type"], "configuration");
        assert_eq!(back["mode"], 3);
        assert_eq!(back["url"], "https://fv.example.com/owntracks");
        assert_eq!(back["password"], "pw+/=");
    }
}
