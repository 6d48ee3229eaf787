//! Outlets and tier policies: creating and changing an outlet (its fields checked, its territory
//! given or found by point-in-polygon and within the caller's scope), its status changes and its
//! history, and the tier policies; each write audited.

use super::{Caller, Error};
use crate::db;
use crate::db::outlets::{LocationPeriod, Outlet, OutletFields, StatusChange};
use crate::domain::audit::AuditAction;
use crate::domain::crs::Crs;
use crate::domain::outlet::{MAX_TIERS, OutletStatus, TierPolicy, footprint_problem, validate_outlet};
use crate::domain::territory::multipolygon;
use crate::domain::validation::{FieldError, Lines, check_plain_text};
use serde_json::{Value, json};
use sqlx::PgPool;

/// The fields of an outlet a request gives. For a new outlet `code`, `name`, `channel_type`,
/// `tier`, `lat` and `lon` are required and the others take their default; for a change an
/// absent field (`None`) keeps its value and `Some(None)` clears `radius_m`, `territory_id`,
/// `address` or `footprint`. Channel type and status are the text given, checked here.
#[derive(Debug, Default)]
#[allow(clippy::option_option)] // A change tells an absent field (keep) from a cleared one.
pub struct Input {
    pub code: Option<String>,
    pub name: Option<String>,
    pub channel_type: Option<String>,
    pub tier: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub radius_m: Option<Option<f64>>,
    pub status: Option<String>,
    pub territory_id: Option<Option<i64>>,
    pub address: Option<Option<String>>,
    pub attributes: Option<Value>,
    pub footprint: Option<Option<Value>>,
    /// The coordinate system of `lat`, `lon` and `footprint` (converted to WGS-84 before anything
    /// else).
    pub crs: Crs,
}

impl Input {
    /// Converts the positions given from `crs` to WGS-84 (a point needs both lat and lon then).
    fn into_wgs84(mut self) -> Result<Self, Error> {
        let crs = self.crs;
        if crs == Crs::Wgs84 {
            return Ok(self);
        }
        match (self.lat, self.lon) {
            (Some(lat), Some(lon)) => {
                let (lat, lon) = crs.to_wgs84(lat, lon);
                (self.lat, self.lon) = (Some(lat), Some(lon));
            }
            (None, None) => {}
            (lat, _) => {
                let (missing, given) = if lat.is_some() { ("lon", "lat") } else { ("lat", "lon") };
                return Err(Error::Invalid(vec![FieldError::new(
                    missing,
                    format!("is required with {given} when crs is {crs} (both are converted together)"),
                )]));
            }
        }
        if let Some(Some(footprint)) = &mut self.footprint {
            crs.geometry_to_wgs84(footprint);
        }
        Ok(self)
    }
}

/// Outlet `id` of the caller's org, when within their territory scope (not found, or forbidden).
pub async fn get(db: &PgPool, caller: &Caller<'_>, id: i64) -> Result<Outlet, Error> {
    let outlet = db::outlets::get(db, caller.org_id, id).await?.ok_or_else(|| Error::not_found("outlet", id))?;
    reach(caller, outlet.territory_path.as_deref())?;
    Ok(outlet)
}

/// Where outlet `id` stood when (each location with its validity period) and its status changes,
/// oldest first; the outlet must be within the caller's scope.
pub async fn history(
    db: &PgPool,
    caller: &Caller<'_>,
    id: i64,
) -> Result<(Vec<LocationPeriod>, Vec<StatusChange>), Error> {
    get(db, caller, id).await?;
    let mut conn = db.acquire().await?;
    Ok(db::outlets::history(&mut conn, caller.org_id, id).await?)
}

/// Creates an outlet from `input` and returns it as stored. Its territory is the one given or
/// found by point-in-polygon, and must be within the caller's scope. Audited.
pub async fn create(db: &PgPool, caller: &Caller<'_>, input: Input) -> Result<Outlet, Error> {
    let input = input.into_wgs84()?;
    let mut errors = Vec::new();
    let code = required(input.code, "code", &mut errors);
    let name = required(input.name, "name", &mut errors);
    let channel_type = required(input.channel_type, "channel_type", &mut errors);
    let tier = required(input.tier, "tier", &mut errors);
    let lat = required(input.lat, "lat", &mut errors);
    let lon = required(input.lon, "lon", &mut errors);
    let (Some(code), Some(name), Some(channel_type), Some(tier), Some(lat), Some(lon)) =
        (code, name, channel_type, tier, lat, lon)
    else {
        return Err(Error::Invalid(errors));
    };
    let draft = Draft {
        code,
        name,
        channel_type,
        tier,
        lat,
        lon,
        radius_m: input.radius_m.flatten(),
        status: input.status.unwrap_or_else(|| OutletStatus::Active.as_str().to_owned()),
        territory_id: input.territory_id.flatten(),
        address: input.address.flatten(),
        attributes: input.attributes.unwrap_or_else(|| json!({})),
        footprint: input.footprint.flatten(),
    };
    let territory_given = draft.territory_id.is_some();
    let fields = finish(db, caller, draft, territory_given, true).await?;
    let id = db::outlets::create(db, caller.org_id, &fields).await?;
    caller.audit(db, AuditAction::OutletCreate, "outlet", id, json!({"code": fields.code})).await?;
    get(db, caller, id).await
}

/// Changes outlet `id` by `input` (absent fields keep their value) and returns it as stored. A
/// new lat/lon re-pins it (the old location stays in its history) and, unless a territory is
/// given, re-assigns its territory by point-in-polygon. Audited.
pub async fn update(db: &PgPool, caller: &Caller<'_>, id: i64, input: Input) -> Result<Outlet, Error> {
    let input = input.into_wgs84()?;
    let cur = get(db, caller, id).await?;
    let moved = input.lat.is_some() || input.lon.is_some();
    let footprint_changed = input.footprint.is_some();
    // An explicit territory wins; `null` or a move re-assigns by point-in-polygon.
    let territory_given = match input.territory_id {
        Some(t) => t.is_some(),
        None => !moved,
    };
    let draft = Draft {
        code: input.code.unwrap_or(cur.code),
        name: input.name.unwrap_or(cur.name),
        channel_type: input.channel_type.unwrap_or_else(|| cur.channel_type.to_string()),
        tier: input.tier.unwrap_or(cur.tier),
        lat: input.lat.unwrap_or(cur.lat),
        lon: input.lon.unwrap_or(cur.lon),
        radius_m: input.radius_m.unwrap_or(cur.radius_m.map(f64::from)),
        status: input.status.unwrap_or_else(|| cur.status.to_string()),
        territory_id: input.territory_id.unwrap_or(cur.territory_id),
        address: input.address.unwrap_or(cur.address),
        attributes: input.attributes.unwrap_or(cur.attributes),
        footprint: input.footprint.unwrap_or(cur.footprint),
    };
    let fields = finish(db, caller, draft, territory_given, footprint_changed).await?;
    db::outlets::update(db, caller.org_id, id, &fields, footprint_changed).await?;
    caller.audit(db, AuditAction::OutletUpdate, "outlet", id, json!({"moved": moved})).await?;
    get(db, caller, id).await
}

/// Sets the status of outlet `id` (closed: it leaves coverage from now on; suspended: not to be
/// visited for now; active again) and returns it as stored. Audited with the `reason` given.
pub async fn set_status(
    db: &PgPool,
    caller: &Caller<'_>,
    id: i64,
    status: OutletStatus,
    reason: Option<String>,
) -> Result<Outlet, Error> {
    let cur = get(db, caller, id).await?;
    let fields = OutletFields { status, ..OutletFields::from(cur) };
    db::outlets::update(db, caller.org_id, id, &fields, false).await?;
    caller.audit(db, AuditAction::outlet_status(status), "outlet", id, json!({ "reason": reason })).await?;
    get(db, caller, id).await
}

/// Creates or replaces the policy of `policy.tier` and returns it as stored. Audited.
pub async fn put_tier(db: &PgPool, caller: &Caller<'_>, policy: &TierPolicy) -> Result<TierPolicy, Error> {
    let tiers = db::tiers::list(db, caller.org_id).await?;
    if tiers.len() >= MAX_TIERS && !tiers.iter().any(|t| t.tier == policy.tier) {
        return Err(Error::field("tier", format!("an org holds at most {MAX_TIERS} tiers")));
    }
    let saved = db::tiers::upsert(db, caller.org_id, policy).await?;
    caller.audit(db, AuditAction::TierPolicyPut, "tier_policy", &saved.tier, json!(saved)).await?;
    Ok(saved)
}

/// Forbidden unless an object in the territory with this path is within the caller's scope.
fn reach(caller: &Caller<'_>, territory_path: Option<&[i64]>) -> Result<(), Error> {
    if caller.may_reach(territory_path) {
        Ok(())
    } else {
        Err(Error::Forbidden("this object is outside your territory".into()))
    }
}

/// The value of a required field, or `None` with the field named in `errors`.
fn required<T>(v: Option<T>, field: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    if v.is_none() {
        errors.push(FieldError::new(field, "is required"));
    }
    v
}

/// The state of an outlet a request asks for (a change's fields merged over the stored ones), not
/// yet checked: its channel type and status are the text given.
struct Draft {
    code: String,
    name: String,
    channel_type: String,
    tier: String,
    lat: f64,
    lon: f64,
    radius_m: Option<f64>,
    status: String,
    territory_id: Option<i64>,
    address: Option<String>,
    attributes: Value,
    footprint: Option<Value>,
}

/// Validates the merged state and resolves the territory (given, or by point-in-polygon), which
/// must be within the caller's scope.
async fn finish(
    db: &PgPool,
    caller: &Caller<'_>,
    f: Draft,
    territory_given: bool,
    footprint_given: bool,
) -> Result<OutletFields, Error> {
    let mut errors = validate_outlet(&f.code, &f.name, &f.channel_type, &f.status, f.lat, f.lon, f.radius_m);
    if let Some(address) = &f.address {
        check_plain_text("address", address, Lines::Many, &mut errors);
    }
    if !f.attributes.is_object() {
        errors.push(FieldError::new("attributes", "must be a JSON object"));
    }
    // A footprint given now is judged whole; a stored one must still fit a moved point.
    if let Some(geometry) = &f.footprint
        && errors.is_empty()
    {
        let topology = if footprint_given { super::territories::boundary_problem(db, geometry).await? } else { None };
        let problem = match topology {
            Some(reason) => Some(reason),
            None => multipolygon(geometry).and_then(|area| footprint_problem(f.lat, f.lon, &area)),
        };
        if let Some(reason) = problem {
            errors.push(FieldError::new("footprint", reason));
        }
    }
    // Both parse: `validate_outlet` found no error in them.
    let (Ok(channel_type), Ok(status), true) = (f.channel_type.parse(), f.status.parse(), errors.is_empty()) else {
        return Err(Error::Invalid(errors));
    };
    let mut fields = OutletFields {
        code: f.code,
        name: f.name,
        channel_type,
        tier: f.tier,
        lat: f.lat,
        lon: f.lon,
        radius_m: f.radius_m,
        status,
        territory_id: f.territory_id,
        address: f.address,
        attributes: f.attributes,
        footprint: f.footprint,
    };
    if !territory_given {
        fields.territory_id = db::territories::locate(db, caller.org_id, fields.lat, fields.lon).await?;
    }
    let path = match fields.territory_id {
        Some(id) => Some(
            db::territories::get(db, caller.org_id, id)
                .await?
                .ok_or_else(|| Error::field("territory_id", "no such territory in this org"))?
                .path,
        ),
        None => None,
    };
    reach(caller, path.as_deref())?;
    Ok(fields)
}
