//! A rep's personal settings (declared home, own working hours) and the home blurring every read
//! of someone else's fixes goes through.

use super::AppState;
use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::{Json, Path};
use crate::db;
use crate::db::privacy::RepPrivacy;
use crate::domain::access::Action;
use crate::domain::audit::AuditAction;
use crate::domain::ping_filter::{FilterPolicy, WorkingHours};
use crate::domain::privacy::{self, BlurFix, HomeBlurPolicy, HomeZone};
use crate::domain::validation::{FieldError, check_lat_lon};
use axum::extract::{DefaultBodyLimit, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_privacy, put_privacy)).layer(DefaultBodyLimit::max(super::SMALL_BODY_BYTES))
}

/// The reps (of those asked about) whose fixes near home the caller may not see, with their home
/// zones and the local-day starts of the period read.
#[derive(Debug, Default)]
pub(super) struct HomeBlur {
    zones: HashMap<i64, HomeZone>,
    day_starts: Vec<DateTime<Utc>>,
}

impl HomeBlur {
    /// The blurring for the caller reading fixes of `reps` in `[from, to)`: none for the rep's own
    /// fixes, none when the org does not blur homes (`pings.blur_home`) or the rep declared no home.
    pub(super) async fn for_reader(
        state: &AppState,
        auth: &Principal,
        reps: impl IntoIterator<Item = i64>,
        period: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<Self, ApiError> {
        // A device reads for its rep: the rep's own fixes are not blurred for it.
        let own = auth.own_rep().or(auth.user_id()).unwrap_or_default();
        let mut others: Vec<i64> = reps.into_iter().filter(|r| *r != own).collect();
        others.sort_unstable();
        others.dedup();
        if others.is_empty() {
            return Ok(HomeBlur::default());
        }
        let (settings, _) = db::orgs::ping_settings(&state.db, auth.org_id).await?;
        let policy = HomeBlurPolicy::from_stored(&settings);
        if !policy.enabled {
            return Ok(HomeBlur::default());
        }
        let zones: HashMap<i64, HomeZone> = db::privacy::rep_privacy(&state.db, auth.org_id, &others)
            .await?
            .into_iter()
            .filter_map(|r| {
                let home = r.home_lat.zip(r.home_lon);
                policy.zone(home, r.home_radius_m.map(f64::from)).map(|z| (r.rep_id, z))
            })
            .collect();
        let day_starts = match period {
            Some((from, to)) if !zones.is_empty() => db::privacy::day_starts(&state.db, auth.org_id, from, to).await?,
            _ => Vec::new(),
        };
        Ok(HomeBlur { zones, day_starts })
    }

    /// Which of `rep`'s fixes `(time, lat, lon)` to withhold (by index).
    pub(super) fn withheld(&self, rep: i64, fixes: &[BlurFix]) -> Vec<bool> {
        match self.zones.get(&rep) {
            Some(zone) => privacy::withheld(fixes, zone, &self.day_starts),
            None => vec![false; fixes.len()],
        }
    }

    /// Removes the withheld fixes of `rep` from `items`; returns how many were removed.
    pub(super) fn retain<T>(&self, rep: i64, items: &mut Vec<T>, fix: impl Fn(&T) -> BlurFix) -> usize {
        self.retain_by_rep(items, |_| rep, fix)
    }

    /// Removes the withheld fixes from `items` of several reps (each rep's items together);
    /// returns how many were removed.
    pub(super) fn retain_by_rep<T>(
        &self,
        items: &mut Vec<T>,
        rep: impl Fn(&T) -> i64,
        fix: impl Fn(&T) -> BlurFix,
    ) -> usize {
        if self.zones.is_empty() {
            return 0;
        }
        let mut hide = Vec::with_capacity(items.len());
        for run in items.chunk_by(|a, b| rep(a) == rep(b)) {
            let fixes: Vec<_> = run.iter().map(&fix).collect();
            hide.extend(self.withheld(rep(&run[0]), &fixes));
        }
        let mut hide = hide.into_iter();
        let before = items.len();
        items.retain(|_| !hide.next().unwrap_or(false));
        before - items.len()
    }

    /// Whether a live position of `rep` is withheld: any position in the home zone may be the
    /// day's first or last, so all are.
    pub(super) fn hides_live(&self, rep: i64, lat: f64, lon: f64) -> bool {
        self.zones.get(&rep).is_some_and(|z| z.contains(lat, lon))
    }
}

/// A rep's declared home and own working hours. Personal data: only the rep and admins see it.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Privacy {
    /// Where the rep lives; when the org blurs homes (`pings.blur_home`), the first and last fixes
    /// of each day within `home_radius_m` of it are withheld from everyone but the rep. `null`: none declared.
    home: Option<Home>,
    /// Radius of the home zone in metres (50-5000); `null`: the org's `pings.home_radius_m`
    /// (default 300).
    #[schema(schema_with = home_radius_schema)]
    home_radius_m: Option<f64>,
    /// The rep's own weekly working hours (same shape as `pings.working_hours`), replacing the
    /// org's; `null`: the org's.
    #[schema(schema_with = working_hours_schema)]
    working_hours: Option<Value>,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Home {
    #[schema(minimum = -90, maximum = 90)]
    lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    lon: f64,
}

fn working_hours_schema() -> utoipa::openapi::schema::Object {
    crate::domain::ping_filter::working_hours_schema(true)
}

/// `home_radius_m`: [`privacy::HOME_RADIUS_RANGE_M`] or `null`.
fn home_radius_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let (min, max) = privacy::HOME_RADIUS_RANGE_M;
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
        .minimum(Some(min))
        .maximum(Some(max))
        .description(Some("Radius of the home zone in metres; `null`: the org's `pings.home_radius_m` (default 300)."))
        .build()
}

/// The user, when the caller is that user or an admin whose scope holds them.
async fn own_or_admin(state: &AppState, auth: &Principal, id: i64) -> Result<db::users::User, ApiError> {
    let user = db::users::get(&state.db, auth.org_id, id).await?.ok_or_else(|| ApiError::not_found("user", id))?;
    if auth.user_id() != Some(id) {
        auth.require(Action::ManageUsers)?;
        auth.check_territory(user.territory_path.as_deref())?;
    }
    Ok(user)
}

/// A user's declared home and own working hours. The user themselves and admins.
#[utoipa::path(get, path = "/users/{id}/privacy", tag = "users", responses(
    (status = 200, body = Privacy), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_privacy(
    State(state): State<AppState>,
    auth: Principal,
    Path(id): Path<i64>,
) -> Result<Json<Privacy>, ApiError> {
    let user = own_or_admin(&state, &auth, id).await?;
    let row = db::privacy::rep_privacy(&state.db, auth.org_id, &[user.id])
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("user", id))?;
    Ok(Json(Privacy {
        home: row.home_lat.zip(row.home_lon).map(|(lat, lon)| Home { lat, lon }),
        home_radius_m: row.home_radius_m.map(f64::from),
        working_hours: row.working_hours,
    }))
}

/// What is wrong with a privacy declaration: the home's position, its radius, the working hours
/// (read in the org's time zone offset).
async fn problems(state: &AppState, org_id: i64, input: &Privacy) -> Result<Vec<FieldError>, ApiError> {
    let mut errors = Vec::new();
    if let Some(h) = &input.home {
        let mut home_errors = Vec::new();
        check_lat_lon(h.lat, h.lon, &mut home_errors);
        errors.extend(home_errors.into_iter().map(|mut e| {
            e.field = format!("home.{}", e.field);
            e
        }));
    }
    if let Some(r) = input.home_radius_m {
        privacy::check_home_radius(r, &mut errors);
    }
    if let Some(hours) = input.working_hours.as_ref().filter(|v| !v.is_null()) {
        let (settings, _) = db::orgs::ping_settings(&state.db, org_id).await?;
        let offset = FilterPolicy::from_settings(&json!({"pings": settings})).unwrap_or_default().utc_offset_minutes;
        if let Err(e) = WorkingHours::parse(hours, offset) {
            errors.extend(e);
        }
    }
    Ok(errors)
}

/// Replaces a user's declared home and own working hours (every field; `null` clears one).
/// The user themselves and admins; audited without the home's position.
#[utoipa::path(put, path = "/users/{id}/privacy", tag = "users", request_body = Privacy, responses(
    (status = 200, body = Privacy), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn put_privacy(
    State(state): State<AppState>,
    auth: Principal,
    Path(id): Path<i64>,
    Json(input): Json<Privacy>,
) -> Result<Json<Privacy>, ApiError> {
    let user = own_or_admin(&state, &auth, id).await?;
    let errors = problems(&state, auth.org_id, &input).await?;
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let row = RepPrivacy {
        rep_id: user.id,
        home_lat: input.home.as_ref().map(|h| h.lat),
        home_lon: input.home.as_ref().map(|h| h.lon),
        home_radius_m: input.home_radius_m.map(|r| r as f32),
        working_hours: input.working_hours.clone().filter(|v| !v.is_null()),
    };
    let mut tx = state.db.begin().await?;
    db::privacy::set_rep_privacy(&mut *tx, auth.org_id, &row).await?;
    let detail = json!({
        "home_declared": input.home.is_some(),
        "home_radius_m": input.home_radius_m,
        "working_hours": row.working_hours,
    });
    super::people::audit(&mut *tx, &auth, AuditAction::UserSetPrivacy, "user", user.id, detail).await?;
    tx.commit().await?;
    Ok(Json(input))
}
