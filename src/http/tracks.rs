//! A rep's raw pings (the track).

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Path, Query};
use crate::db;
use crate::db::pings::Ping;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(rep_pings))
}

/// Most pings one request returns.
const MAX_PINGS: i64 = 50_000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TrackQuery {
    /// A UTC day (YYYY-MM-DD); default today. Ignored when `from` and `to` are given.
    date: Option<NaiveDate>,
    /// Start of the period (RFC 3339), inclusive.
    from: Option<DateTime<Utc>>,
    /// End of the period (RFC 3339), exclusive.
    to: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Track {
    rep_id: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    pings: Vec<Ping>,
    /// True when the period held more than the returned pings.
    truncated: bool,
}

/// The pings of a rep's devices in a period, in fix-time order. Reps see only their own.
#[utoipa::path(get, path = "/reps/{id}/pings", tag = "tracks", params(TrackQuery), responses(
    (status = 200, body = Track), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn rep_pings(
    State(state): State<AppState>,
    auth: Can<p::ReadTracks>,
    Path(rep_id): Path<i64>,
    Query(q): Query<TrackQuery>,
) -> Result<Json<Track>, ApiError> {
    let rep =
        db::users::get(&state.db, auth.org_id, rep_id).await?.ok_or_else(|| ApiError::not_found("rep", rep_id))?;
    auth.check_rep(rep.id, rep.territory_path.as_deref())?;
    let (from, to) = match (q.from, q.to) {
        (Some(f), Some(t)) if t > f => (f, t),
        (Some(_), Some(_)) => return Err(ApiError::field("to", "must be after `from`")),
        (None, None) => {
            let day = q.date.unwrap_or_else(|| Utc::now().date_naive());
            let start =
                day.and_hms_opt(0, 0, 0).map(|d| d.and_utc()).ok_or_else(|| ApiError::field("date", "invalid date"))?;
            (start, start + chrono::Duration::days(1))
        }
        _ => return Err(ApiError::bad_request("give both `from` and `to`, or `date`")),
    };
    if to - from > chrono::Duration::days(31) {
        return Err(ApiError::field("to", "a track covers at most 31 days"));
    }
    let devices = db::devices::ids_of_rep(&state.db, auth.org_id, rep.id).await?;
    let mut pings = db::pings::for_devices(&state.db, auth.org_id, &devices, from, to, MAX_PINGS + 1).await?;
    let truncated = pings.len() as i64 > MAX_PINGS;
    pings.truncate(MAX_PINGS as usize);
    Ok(Json(Track { rep_id: rep.id, from, to, pings, truncated }))
}
