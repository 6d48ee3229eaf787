//! Photo evidence: uploads for a visit, a check-in or an outlet (`multipart/form-data`), their
//! findings, the photos of a visit and an outlet's photos over time, and the image files.

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Page, Paged, Path, Query};
use crate::app;
use crate::app::photos::{Subject, Upload};
use crate::db;
use crate::db::photos::Photo;
use crate::domain::photo::Capture;
use crate::imaging::{self, HeicDecoder, ImagingError};
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(visit_photos, upload_visit_photo))
        .routes(routes!(upload_checkin_photo))
        .routes(routes!(outlet_photos, upload_outlet_photo))
        .routes(routes!(get_photo))
        .routes(routes!(photo_file))
}

/// Photos decoded at once in this process.
static DECODING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// What an upload's form carried.
struct Form {
    bytes: Vec<u8>,
    note: Option<String>,
    capture: Option<Capture>,
}

/// The fields of the app's capture claim a check-in photo's form may carry.
const CAPTURE_FIELDS: [&str; 4] = ["captured_at", "lat", "lon", "accuracy_m"];

/// The capture claim's fields as read from a form, each parsed (422 naming it otherwise).
#[derive(Default)]
struct Claim {
    at: Option<chrono::DateTime<chrono::Utc>>,
    lat: Option<f64>,
    lon: Option<f64>,
    accuracy_m: Option<f32>,
}

impl Claim {
    /// Reads capture field `name` (one of [`CAPTURE_FIELDS`]); a blank value is none.
    async fn read(&mut self, name: &str, mut field: Field<'_>, max: usize) -> Result<(), ApiError> {
        // A time or a number: refused past 64 bytes, before the rest of the field is read.
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| unreadable(&e, max))? {
            if bytes.len() + chunk.len() > 64 {
                return Err(ApiError::field(name, "must be at most 64 characters"));
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(bytes).map_err(|_| ApiError::field(name, "must be UTF-8 text"))?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        let number = || text.parse::<f64>().map_err(|_| ApiError::field(name, "must be a number"));
        match name {
            "captured_at" => {
                let at = chrono::DateTime::parse_from_rfc3339(text)
                    .map_err(|_| ApiError::field(name, "must be an RFC 3339 time, e.g. 2026-03-02T10:05:00+08:00"))?;
                self.at = Some(at.to_utc());
            }
            "lat" => self.lat = Some(number()?),
            "lon" => self.lon = Some(number()?),
            _ => self.accuracy_m = Some(number()? as f32),
        }
        Ok(())
    }
}

/// Longest note accepted with a photo, characters.
const MAX_NOTE_CHARS: usize = 2000;

/// The form of a photo upload, as the OpenAPI document describes it (the handlers read it field
/// by field: [`read_form`]). That `photo` is a JPEG, PNG or HEIC picture is a rule of the
/// description.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes the form in the OpenAPI document only")]
struct PhotoForm {
    /// The image.
    #[schema(value_type = String, format = Binary)]
    photo: Vec<u8>,
    /// Optional text; blank is none.
    #[schema(schema_with = crate::domain::validation::optional_plain_text_up_to::<MAX_NOTE_CHARS>)]
    note: Option<String>,
}

/// [`PhotoForm`] with the app's capture claim of a check-in photo.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes the form in the OpenAPI document only")]
struct CheckinPhotoForm {
    /// The image.
    #[schema(value_type = String, format = Binary)]
    photo: Vec<u8>,
    /// Optional text; blank is none.
    #[schema(schema_with = crate::domain::validation::optional_plain_text_up_to::<MAX_NOTE_CHARS>)]
    note: Option<String>,
    /// When the app took it (RFC 3339).
    captured_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Where (with `lon`: both or neither, a rule of the description).
    #[schema(minimum = -90, maximum = 90)]
    lat: Option<f64>,
    #[schema(minimum = -180, maximum = 180)]
    lon: Option<f64>,
    /// Metres.
    #[schema(exclusive_minimum = 0)]
    accuracy_m: Option<f32>,
}

/// Reads the `photo` file field (at most `max` bytes) and the optional `note` of a form; with
/// `with_capture`, also the app's capture claim (`captured_at`, `lat`, `lon`, `accuracy_m`).
async fn read_form(
    form: Result<Multipart, MultipartRejection>,
    max: usize,
    with_capture: bool,
) -> Result<Form, ApiError> {
    let mut form = form.map_err(|e| {
        ApiError::UnsupportedMediaType(format!(
            "send multipart/form-data with the image in a `photo` field (and optionally a `note`): {e}"
        ))
    })?;
    let (mut bytes, mut note, mut claim) = (None, None, Claim::default());
    while let Some(field) = form.next_field().await.map_err(|e| unreadable(&e, max))? {
        match field.name() {
            Some("photo") => bytes = Some(read_photo(field, max).await?),
            Some("note") => note = read_note(field, max).await?,
            Some(name) if with_capture && CAPTURE_FIELDS.contains(&name) => {
                let name = name.to_owned();
                claim.read(&name, field, max).await?;
            }
            other => {
                let name = other.unwrap_or("").chars().take(40).collect::<String>();
                let expected = if with_capture {
                    "send `photo` (the image) and optionally `note`, `captured_at`, `lat`, `lon`, `accuracy_m`"
                } else {
                    "send `photo` (the image) and optionally `note`"
                };
                return Err(ApiError::field(&name, format!("unknown form field: {expected}")));
            }
        }
    }
    let bytes = bytes.ok_or_else(|| ApiError::field("photo", "missing: the image goes in a `photo` file field"))?;
    if bytes.is_empty() {
        return Err(ApiError::field("photo", "is empty"));
    }
    let capture = Capture::new(claim.at, claim.lat, claim.lon, claim.accuracy_m).map_err(ApiError::invalid)?;
    Ok(Form { bytes, note, capture })
}

/// A form that cannot be read: 413 past `max` bytes, else 400.
fn unreadable(e: &MultipartError, max: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("a photo may have at most {max} bytes"))
    } else {
        ApiError::BadRequest { detail: format!("unreadable multipart/form-data: {e}"), errors: Vec::new() }
    }
}

/// The image of the `photo` field, refused (413) as soon as it passes `max` bytes.
async fn read_photo(mut field: Field<'_>, max: usize) -> Result<Vec<u8>, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| unreadable(&e, max))? {
        if buf.len() + chunk.len() > max {
            return Err(ApiError::PayloadTooLarge(format!("a photo may have at most {max} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// The `note` field's text, at most [`MAX_NOTE_CHARS`]; a blank note is none.
async fn read_note(field: Field<'_>, max: usize) -> Result<Option<String>, ApiError> {
    let text = field.text().await.map_err(|e| unreadable(&e, max))?;
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::field("note", format!("must be at most {MAX_NOTE_CHARS} characters")));
    }
    if let Some(c) = crate::domain::validation::control_character(&text, crate::domain::validation::Lines::Many) {
        return Err(ApiError::field("note", crate::domain::validation::control_character_reason(c)));
    }
    Ok(Some(text).filter(|t| !t.trim().is_empty()))
}

/// The upload of `form`: its picture read (EXIF, size, thumbnail, perceptual hash) off the async
/// workers; 415 when it is no JPEG, PNG or HEIC image, 422 when it cannot be decoded. With
/// `with_capture`, the form may carry the app's capture claim.
async fn read_upload(
    state: &AppState,
    form: Result<Multipart, MultipartRejection>,
    with_capture: bool,
) -> Result<Upload, ApiError> {
    decode(state, read_form(form, state.config.photo_max_bytes, with_capture).await?).await
}

/// The upload of a form as read: its picture decoded (see [`read_upload`]).
async fn decode(state: &AppState, form: Form) -> Result<Upload, ApiError> {
    let Form { bytes, note, capture } = form;
    // Decoding may take hundreds of MB for a large picture: a few at a time.
    let slot = DECODING.acquire().await.map_err(|e| ApiError::Internal(format!("decoding slots: {e}")))?;
    let c = &state.config;
    let heic = HeicDecoder::new(&c.heic_decoder)
        .map(|d| d.limited(c.heic_decoder_max_bytes, c.heic_decoder_cpu_s, c.heic_decoder_timeout_s));
    let max_pixels = c.photo_max_pixels;
    let (read, bytes) = tokio::task::spawn_blocking(move || (imaging::read(&bytes, heic.as_ref(), max_pixels), bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("reading a photo: {e}")))?;
    drop(slot);
    let read = read.map_err(|e| match e {
        ImagingError::NotAnImage => ApiError::UnsupportedMediaType(format!(
            "field `photo`: {e} (its content was read, not its name or declared type)"
        )),
        ImagingError::Undecodable(..) | ImagingError::TooLarge { .. } => ApiError::field("photo", e.to_string()),
    })?;
    Ok(Upload { bytes, read, note, capture })
}

fn created(photo: Photo) -> Response {
    let location = format!("/api/v1/photos/{}", photo.id);
    let mut res = (StatusCode::CREATED, Json(photo)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// Adds a photo to a visit: `multipart/form-data` with the image in `photo` (JPEG, PNG or HEIC,
/// told by its content; at most `FV_PHOTO_MAX_BYTES`) and an optional `note`. Its EXIF time and
/// position are compared with the visit and its outlet, and its perceptual hash with the org's
/// photos (the same picture for another visit or outlet is reuse); the findings come back and
/// feed the visit's risk and verdict when it is judged again (at once, in the background). The
/// visit's rep (or their device) only.
#[utoipa::path(post, path = "/visits/{id}/photos", tag = "photos",
    request_body(content = PhotoForm, content_type = "multipart/form-data", description = "`photo`: the image; `note`: optional text"),
    responses((status = 201, body = Photo), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn upload_visit_photo(
    State(state): State<AppState>,
    auth: Can<p::SubmitEvidence>,
    Path(visit_id): Path<i64>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let visit = db::visits::key(&state.db, auth.org_id, visit_id)
        .await?
        .ok_or_else(|| ApiError::not_found("visit", visit_id))?;
    if !auth.is_rep_or_their_device(visit.rep_id) {
        auth.check_rep(visit.rep_id, visit.rep_territory_path.as_deref())?;
        return Err(ApiError::Forbidden("only the visit's rep (or their device) adds photos to it".into()));
    }
    let upload = read_upload(&state, form, false).await?;
    let photo = app::photos::store(&state.db, &auth.caller(), Subject::Visit(&visit), upload).await?;
    state.deriver.wake();
    Ok(created(photo))
}

/// Adds a photo taken at a check-in of the calling device (or of the calling rep), before any
/// visit is derived, keyed by the app's own id of the photo: 201 when new, 200 with the stored
/// photo for a retry of the same picture (nothing is stored twice, also after a lost answer; a
/// retry is answered from the stored row, not decoded again), 409 for another picture under that
/// id. The form is as for a visit's photo, plus the app's capture
/// claim: `captured_at` (RFC 3339), `lat` and `lon` (both or neither), `accuracy_m`. Its time (EXIF, else the claim) is judged against the check-in's time,
/// its position (EXIF, else the claim) against the outlet; `findings.time_source` and
/// `position_source` say which was used. Derivation links it to the visit it finds there.
#[utoipa::path(put, path = "/checkins/{client_id}/photos/{photo_client_id}", tag = "photos",
    params(("client_id" = String, Path, description = "The app's id of the check-in"),
        ("photo_client_id" = String, Path, description = "The app's id of the photo (8-100 of A-Za-z0-9_.:-)")),
    request_body(content = CheckinPhotoForm, content_type = "multipart/form-data",
        description = "`photo`: the image; optional `note`, `captured_at`, `lat`, `lon`, `accuracy_m`"),
    responses((status = 200, body = Photo, description = "A retry: the photo stored before"),
        (status = 201, body = Photo, description = "Stored"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn upload_checkin_photo(
    State(state): State<AppState>,
    auth: Can<p::SubmitEvidence>,
    Path((client_id, photo_client_id)): Path<(String, String)>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let caller = auth.caller();
    let checkin = app::checkins::own(&state.db, &caller, &client_id, &photo_client_id, "photo_client_id").await?;
    let form = read_form(form, state.config.photo_max_bytes, true).await?;
    let stored = app::photos::stored_at_checkin(&state.db, &caller, &checkin, &photo_client_id, &form.bytes).await?;
    if let Some(photo) = stored {
        return Ok((StatusCode::OK, Json(photo)).into_response());
    }
    let upload = decode(&state, form).await?;
    let (photo, new) = app::photos::store_at_checkin(&state.db, &caller, &checkin, &photo_client_id, upload).await?;
    if !new {
        return Ok((StatusCode::OK, Json(photo)).into_response());
    }
    state.deriver.wake();
    Ok(created(photo))
}

/// Adds a photo of an outlet outside any visit (a storefront, a display): as for a visit's photo,
/// its EXIF position is compared with the outlet and its picture with the org's photos. Users
/// whose territory holds the outlet.
#[utoipa::path(post, path = "/outlets/{id}/photos", tag = "photos",
    request_body(content = PhotoForm, content_type = "multipart/form-data", description = "`photo`: the image; `note`: optional text"),
    responses((status = 201, body = Photo), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn upload_outlet_photo(
    State(state): State<AppState>,
    auth: Can<p::SubmitEvidence>,
    Path(outlet_id): Path<i64>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let outlet = db::outlets::get(&state.db, auth.org_id, outlet_id)
        .await?
        .ok_or_else(|| ApiError::not_found("outlet", outlet_id))?;
    auth.check_territory(outlet.territory_path.as_deref())?;
    let upload = read_upload(&state, form, false).await?;
    let photo = app::photos::store(&state.db, &auth.caller(), Subject::Outlet(outlet.id), upload).await?;
    state.deriver.wake();
    Ok(created(photo))
}

/// The photos taken for a visit, in upload order (they follow the visit across recomputations).
#[utoipa::path(get, path = "/visits/{id}/photos", tag = "photos", responses(
    (status = 200, body = [Photo]), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn visit_photos(
    State(state): State<AppState>,
    auth: Can<p::ReadVisits>,
    Path(visit_id): Path<i64>,
) -> Result<Json<Vec<Photo>>, ApiError> {
    let visit = db::visits::key(&state.db, auth.org_id, visit_id)
        .await?
        .ok_or_else(|| ApiError::not_found("visit", visit_id))?;
    auth.check_rep(visit.rep_id, visit.rep_territory_path.as_deref())?;
    Ok(Json(db::photos::of_visit(&state.db, auth.org_id, visit.id).await?))
}

/// An outlet's photos over time, oldest first by when they were taken (else uploaded): the
/// outlet's look-around. Paged by `after` (a photo id) and `limit`. A rep sees the outlet's own
/// photos and their own visits'.
#[utoipa::path(get, path = "/outlets/{id}/photos", tag = "photos", params(Page), responses(
    (status = 200, body = Paged<Photo>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn outlet_photos(
    State(state): State<AppState>,
    auth: Can<p::ReadOutlets>,
    Path(outlet_id): Path<i64>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<Photo>>, ApiError> {
    let outlet = db::outlets::get(&state.db, auth.org_id, outlet_id)
        .await?
        .ok_or_else(|| ApiError::not_found("outlet", outlet_id))?;
    auth.check_territory(outlet.territory_path.as_deref())?;
    let limit = page.limit()?;
    // A rep sees the outlet's own photos and those of their visits, not their colleagues'.
    let only_rep = auth.own_rep();
    let items = db::photos::of_outlet(&state.db, auth.org_id, outlet.id, only_rep, page.after(), limit).await?;
    Ok(Json(Paged::new(items, limit, |p| p.id)))
}

/// The photo, when the caller may see it: a visit's photo as its visit, an outlet's as the outlet.
async fn visible_photo(state: &AppState, auth: &Principal, id: i64) -> Result<Photo, ApiError> {
    let photo = db::photos::get(&state.db, auth.org_id, id).await?.ok_or_else(|| ApiError::not_found("photo", id))?;
    if let Some(rep_id) = photo.rep_id {
        let rep =
            db::users::get(&state.db, auth.org_id, rep_id).await?.ok_or_else(|| ApiError::not_found("rep", rep_id))?;
        auth.check_rep(rep.id, rep.territory_path.as_deref())?;
    } else {
        let outlet = db::outlets::get(&state.db, auth.org_id, photo.outlet_id)
            .await?
            .ok_or_else(|| ApiError::not_found("outlet", photo.outlet_id))?;
        auth.check_territory(outlet.territory_path.as_deref())?;
    }
    Ok(photo)
}

/// One photo's record and findings.
#[utoipa::path(get, path = "/photos/{id}", tag = "photos", responses(
    (status = 200, body = Photo), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_photo(
    State(state): State<AppState>,
    auth: Can<p::ReadVisits>,
    Path(id): Path<i64>,
) -> Result<Json<Photo>, ApiError> {
    Ok(Json(visible_photo(&state, &auth, id).await?))
}

/// The image: `original` (as uploaded) or `thumbnail` (JPEG, at most 320 px; JPEG and PNG only).
#[utoipa::path(get, path = "/photos/{id}/{kind}", tag = "photos", responses(
    (status = 200, description = "The image", content_type = "image/*"), (status = 403, body = Problem),
    (status = 404, body = Problem)))]
async fn photo_file(
    State(state): State<AppState>,
    auth: Can<p::ReadVisits>,
    Path((id, kind)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    let photo = visible_photo(&state, &auth, id).await?;
    let content_type = match kind.as_str() {
        "original" => photo.content_type.clone(),
        "thumbnail" => "image/jpeg".to_owned(),
        _ => return Err(ApiError::NotFound(format!("photo {id} has no `{kind}`: use original or thumbnail"))),
    };
    let data = db::photos::blob(&state.db, auth.org_id, id, &kind)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("photo {id} has no {kind}")))?;
    let mut res = (StatusCode::OK, data).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400, immutable"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    Ok(res)
}
