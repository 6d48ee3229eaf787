//! The org's ping settings: filters, working hours (fixes outside them are discarded at
//! ingestion when `working_hours_only` is on) and raw-ping retention (`retention_days`: older
//! fixes are refused at ingestion and deleted by the retention pass), and home blurring
//! (`blur_home`, `home_radius_m`: see `privacy`).

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::Json;
use crate::db;
use crate::domain::audit::AuditAction;
use crate::domain::ping_filter::{FilterPolicy, SETTING_KEYS};
use crate::domain::privacy::{self, HomeBlurPolicy};
use crate::domain::validation::FieldError;
use axum::extract::{DefaultBodyLimit, State};
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_ping_settings, put_ping_settings))
        .layer(DefaultBodyLimit::max(super::SMALL_BODY_BYTES))
}

/// The settings as stored and as they apply.
#[derive(Serialize, utoipa::ToSchema)]
struct PingSettings {
    /// The `pings` object as stored (keys left out take their defaults).
    #[schema(value_type = Object)]
    settings: Value,
    /// Raw pings are kept this many days (refused at ingestion and deleted beyond it).
    retention_days: i64,
    /// Fixes outside working hours are discarded at ingestion.
    working_hours_only: bool,
    /// The first and last fixes of a day near a rep's declared home are withheld from everyone
    /// but the rep.
    blur_home: bool,
    /// Radius of the home zone for reps who declared none of their own.
    home_radius_m: f64,
    /// Local days before this one have no raw pings left (a retention pass removed them): their
    /// visits are final.
    pings_kept_from: Option<NaiveDate>,
}

fn effective(
    settings: Value,
    policy: &FilterPolicy,
    blur: &HomeBlurPolicy,
    pings_kept_from: Option<NaiveDate>,
) -> PingSettings {
    PingSettings {
        settings,
        retention_days: policy.retention.num_days(),
        working_hours_only: policy.working_hours_only,
        blur_home: blur.enabled,
        home_radius_m: blur.radius_m,
        pings_kept_from,
    }
}

/// The org's ping settings. Admins.
#[utoipa::path(get, path = "/settings/pings", tag = "ops", responses(
    (status = 200, body = PingSettings), (status = 403, body = Problem)))]
async fn get_ping_settings(
    State(state): State<AppState>,
    auth: Can<p::ManageSettings>,
) -> Result<Json<PingSettings>, ApiError> {
    let (settings, kept_from) = db::orgs::ping_settings(&state.db, auth.org_id).await?;
    let policy = FilterPolicy::from_settings(&json!({"pings": settings})).unwrap_or_default();
    let blur = HomeBlurPolicy::from_settings(&settings).unwrap_or_default();
    Ok(Json(effective(settings, &policy, &blur, kept_from)))
}

/// The keys of a settings change that name no ping or privacy setting.
/// The body of `PUT /settings/pings`, as the OpenAPI document describes it: the keys of the ping
/// filter ([`FilterPolicy::from_settings`]) and of home blurring, each optional.
struct PingSettingsChange;

impl utoipa::ToSchema for PingSettingsChange {}

impl utoipa::PartialSchema for PingSettingsChange {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        let (min, max) = privacy::HOME_RADIUS_RANGE_M;
        let nullable = |t: Type| SchemaType::from_iter([t, Type::Null]);
        crate::domain::ping_filter::settings_change_schema()
            .property("blur_home", ObjectBuilder::new().schema_type(nullable(Type::Boolean)))
            .property(
                "home_radius_m",
                ObjectBuilder::new().schema_type(nullable(Type::Number)).minimum(Some(min)).maximum(Some(max)),
            )
            .build()
            .into()
    }
}

fn unknown_keys(given: &serde_json::Map<String, Value>) -> Vec<FieldError> {
    given
        .keys()
        .filter(|k| !SETTING_KEYS.contains(&k.as_str()) && !privacy::SETTING_KEYS.contains(&k.as_str()))
        .map(|k| {
            let known: Vec<&str> = SETTING_KEYS.iter().chain(&privacy::SETTING_KEYS).copied().collect();
            FieldError::new(format!("pings.{k}"), format!("is not a ping setting (known: {})", known.join(", ")))
        })
        .collect()
}

/// The stored settings with the keys given replacing theirs (null removes one: back to its
/// default; the others stay), judged as a whole: the settings, the ping filter and the home
/// blurring they make.
fn merged(
    before: &Value,
    given: &serde_json::Map<String, Value>,
) -> Result<(Value, FilterPolicy, HomeBlurPolicy), ApiError> {
    let mut after = before.as_object().cloned().unwrap_or_default();
    for (k, v) in given {
        if v.is_null() {
            after.remove(k);
        } else {
            after.insert(k.clone(), v.clone());
        }
    }
    let after = Value::Object(after);
    let policy = FilterPolicy::from_settings(&json!({"pings": after}));
    let blur = HomeBlurPolicy::from_settings(&after);
    match (policy, blur) {
        (Ok(p), Ok(b)) => Ok((after, p, b)),
        (p, b) => {
            let mut errors = p.err().unwrap_or_default();
            errors.extend(b.err().unwrap_or_default());
            Err(ApiError::invalid(errors))
        }
    }
}

/// Changes the org's ping settings (the keys given; `null` resets one to its default): `retention_days` (1-36600, default 400),
/// `working_hours_only` with `working_hours` and `utc_offset_minutes`, `max_future_s`,
/// `max_speed_mps`, `osmand_speed_unit`, `blur_home` (bool) and `home_radius_m` (50-5000, default 300). Every invalid or unknown key is named (422); nothing is
/// stored then.
/// Admins; audited.
#[utoipa::path(put, path = "/settings/pings", tag = "ops", request_body = PingSettingsChange, responses(
    (status = 200, body = PingSettings), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn put_ping_settings(
    State(state): State<AppState>,
    auth: Can<p::ManageSettings>,
    Json(body): Json<Value>,
) -> Result<Json<PingSettings>, ApiError> {
    let Some(given) = body.as_object() else {
        return Err(ApiError::field("pings", "must be a JSON object"));
    };
    let unknown = unknown_keys(given);
    if !unknown.is_empty() {
        return Err(ApiError::invalid(unknown));
    }
    let mut tx = state.db.begin().await?;
    let (before, kept_from) = db::orgs::ping_settings(&mut *tx, auth.org_id).await?;
    let (after, policy, blur) = merged(&before, given)?;
    db::orgs::set_ping_settings(&mut *tx, auth.org_id, &after).await?;
    let detail = json!({"before": before, "after": after});
    super::people::audit(&mut *tx, &auth, AuditAction::OrgSetPingSettings, "org", auth.org_id, detail).await?;
    tx.commit().await?;
    Ok(Json(effective(after, &policy, &blur, kept_from)))
}
