//! Reps' phones: registration, enrolment of the reps' app, and the device lifecycle
//! (deactivate, reactivate, rotate secrets, reassign to another rep).

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Page, Paged, Path, Query};
use super::people::audit;
use crate::admin::{self, DeviceCredentials};
use crate::app;
use crate::app::devices::{Enrolled, Enrolment, EnrolmentSettings, NewSecrets, Secret};
use crate::db;
use crate::db::devices::Device;
use crate::domain::access::Role;
use crate::domain::audit::AuditAction;
use crate::domain::validation::{NAME_MAX_CHARS, check_text, one_line_text};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_devices, create_device))
        .routes(routes!(get_device, change_device))
        .routes(routes!(rotate_secrets))
        .routes(routes!(create_enrolment))
        .routes(routes!(redeem_enrolment))
        // Device bodies are a few small fields; the unauthenticated redeem reads no more than this.
        .layer(DefaultBodyLimit::max(super::SMALL_BODY_BYTES))
}
/// Devices of reps in the caller's territory scope.
#[utoipa::path(get, path = "/devices", tag = "devices", params(Page), responses((status = 200, body = Paged<Device>), (status = 403, body = Problem)))]
async fn list_devices(
    State(state): State<AppState>,
    auth: Can<p::ReadDevices>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<Device>>, ApiError> {
    let limit = page.limit()?;
    let items = db::devices::list(&state.db, auth.org_id, auth.scope_root(), page.after(), limit).await?;
    Ok(Json(Paged::new(items, limit, |d| d.id)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewDevice {
    /// A rep of your scope (referential: not in the schema).
    rep_id: i64,
    #[schema(schema_with = one_line_text::<NAME_MAX_CHARS>)]
    name: String,
}

/// Registers a phone for a rep and returns all its credentials (shown once): API token,
/// the OsmAnd/Traccar device id, and OwnTracks user/password.
#[utoipa::path(post, path = "/devices", tag = "devices", request_body = NewDevice, responses(
    (status = 201, body = DeviceCredentials), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_device(
    State(state): State<AppState>,
    auth: Can<p::ManageDevices>,
    Json(input): Json<NewDevice>,
) -> Result<(StatusCode, Json<DeviceCredentials>), ApiError> {
    let mut errors = Vec::new();
    check_text("name", &input.name, NAME_MAX_CHARS, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let rep = db::users::get(&state.db, auth.org_id, input.rep_id)
        .await?
        .ok_or_else(|| ApiError::field("rep_id", "no such user in this org"))?;
    auth.check_territory(rep.territory_path.as_deref())?;
    if rep.role != Role::Rep {
        return Err(ApiError::field("rep_id", format!("user {} is a {}, not a rep", rep.id, rep.role)));
    }
    let creds = admin::create_device(&state.db, auth.org_id, rep.id, &input.name).await?;
    audit(&state.db, &auth, AuditAction::DeviceCreate, "device", creds.device_id, json!({"rep_id": rep.id})).await?;
    Ok((StatusCode::CREATED, Json(creds)))
}

/// One device (403 when its rep is outside the caller's territory scope).
#[utoipa::path(get, path = "/devices/{id}", tag = "devices", responses(
    (status = 200, body = Device), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_device(
    State(state): State<AppState>,
    auth: Can<p::ReadDevices>,
    Path(id): Path<i64>,
) -> Result<Json<Device>, ApiError> {
    Ok(Json(app::devices::visible(&state.db, &auth.caller(), id).await?))
}

/// A change of a device's life: `active` deactivates or reactivates it, `rep_id` reassigns it.
/// Exactly one of them is given (not `null`): the schema says so with `oneOf`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceChange {
    /// `false`: every credential of the device is refused from now on; `true`: accepted again.
    active: Option<bool>,
    /// Move the phone to this rep: the answer is the new device row that continues it (the old
    /// row keeps the history of the previous rep).
    rep_id: Option<i64>,
}

impl utoipa::ToSchema for DeviceChange {}

impl utoipa::PartialSchema for DeviceChange {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AllOfBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, SchemaType, Type,
        };
        let nullable = |t: Type| SchemaType::from_iter([t, Type::Null]);
        let fields = ObjectBuilder::new()
            .property(
                "active",
                ObjectBuilder::new().schema_type(nullable(Type::Boolean)).description(Some(
                    "`false`: every credential of the device is refused from now on; `true`: accepted again.",
                )),
            )
            .property(
                "rep_id",
                ObjectBuilder::new().schema_type(nullable(Type::Integer)).format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))).description(Some(
                    "Move the phone to this rep: the answer is the new device row that continues it (the old row keeps the history of the previous rep).",
                )),
            )
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)));
        let only = |field: &str, t: Type| {
            let format = (t == Type::Integer).then_some(SchemaFormat::KnownFormat(KnownFormat::Int64));
            ObjectBuilder::new().property(field, ObjectBuilder::new().schema_type(t).format(format)).required(field)
        };
        AllOfBuilder::new()
            .description(Some("A change of a device's life: exactly one of `active` and `rep_id`, not `null`."))
            .item(fields)
            .item(OneOfBuilder::new().item(only("active", Type::Boolean)).item(only("rep_id", Type::Integer)))
            .into()
    }
}

/// Deactivates, reactivates or reassigns a device (one change per request). A deactivated device's
/// token, OsmAnd id and OwnTracks password are refused at once by every protocol on every instance.
#[utoipa::path(patch, path = "/devices/{id}", tag = "devices", request_body = DeviceChange, responses(
    (status = 200, body = Device), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn change_device(
    State(state): State<AppState>,
    auth: Can<p::ManageDevices>,
    Path(id): Path<i64>,
    Json(change): Json<DeviceChange>,
) -> Result<Json<Device>, ApiError> {
    let caller = auth.caller();
    let device = match (change.active, change.rep_id) {
        (Some(active), None) => app::devices::set_active(&state.db, &caller, id, active).await?,
        (None, Some(rep_id)) => app::devices::reassign(&state.db, &caller, id, rep_id).await?,
        _ => return Err(ApiError::field("active", "give exactly one of `active` and `rep_id`")),
    };
    Ok(Json(device))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// The secrets to replace; all three when absent or empty.
    #[serde(default)]
    secrets: Vec<Secret>,
}

/// Replaces secrets of a device and returns the new ones (shown once). The old ones are refused
/// from now on. A new token signs the reps' app out (enrol it again).
#[utoipa::path(post, path = "/devices/{id}/credentials", tag = "devices", request_body = Rotate, responses(
    (status = 200, body = NewSecrets), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn rotate_secrets(
    State(state): State<AppState>,
    auth: Can<p::ManageDevices>,
    Path(id): Path<i64>,
    Json(req): Json<Rotate>,
) -> Result<Json<NewSecrets>, ApiError> {
    Ok(Json(app::devices::rotate(&state.db, &auth.caller(), id, &req.secrets).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewEnrolment {
    /// Also the tracker apps' settings (OwnTracks, Traccar Client) for all-day positions: their
    /// secrets are replaced by new ones shown here once. Default `true`.
    #[serde(default = "yes")]
    trackers: bool,
}

fn yes() -> bool {
    true
}

/// A one-time link (and its QR code) that opens the reps' app on the phone signed in as the
/// device, valid for `FV_ENROLMENT_TTL_H` hours; older unused links of the device are withdrawn.
/// With `trackers`, also the OwnTracks configuration link and the Traccar Client settings.
#[utoipa::path(post, path = "/devices/{id}/enrolments", tag = "devices", request_body = NewEnrolment, responses(
    (status = 201, body = Enrolment), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn create_enrolment(
    State(state): State<AppState>,
    auth: Can<p::ManageDevices>,
    Path(id): Path<i64>,
    Json(req): Json<NewEnrolment>,
) -> Result<(StatusCode, Json<Enrolment>), ApiError> {
    let settings = EnrolmentSettings {
        public_url: state.config.public_url(),
        ttl: chrono::Duration::hours(i64::from(state.config.enrolment_ttl_h)),
    };
    let enrolment = app::devices::enrol(&state.db, &auth.caller(), id, req.trackers, &settings).await?;
    Ok((StatusCode::CREATED, Json(enrolment)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Redeem {
    /// The code from the enrolment link (after `#enrol=`).
    code: String,
}

/// Used by the reps' app when opened from an enrolment link: exchanges the one-time code for the
/// device's token (no other authentication: the code is the credential, and works once).
#[utoipa::path(post, path = "/enrolments/redeem", tag = "devices", request_body = Redeem, security(()), responses(
    (status = 200, body = Enrolled), (status = 400, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn redeem_enrolment(State(state): State<AppState>, Json(req): Json<Redeem>) -> Result<Json<Enrolled>, ApiError> {
    if req.code.len() > 200 {
        return Err(ApiError::field("code", "not an enrolment code"));
    }
    app::devices::redeem(&state.db, &req.code).await?.map(Json).ok_or_else(|| {
        ApiError::NotFound("this enrolment link is unknown, used, withdrawn or expired: ask for a new one".into())
    })
}
