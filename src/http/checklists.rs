//! Visit checklists (org configuration, versioned), a rep's answers for a visit or at a
//! check-in, and the outlet attributes those answers keep up to date.

use super::AppState;
use super::auth::{Can, Principal, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Page, Paged, Path, Query};
use crate::app;
use crate::db;
use crate::db::checklists::{AttributeChange, Checklist, Outcome};
use crate::domain::audit::AuditAction;
use crate::domain::checklist;
use crate::domain::validation::FieldError;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_checklists, create_checklist))
        .routes(routes!(get_checklist))
        .routes(routes!(visit_outcomes, submit_outcome))
        .routes(routes!(outlet_outcomes))
        .routes(routes!(outlet_attribute_changes))
        // A checklist and a visit's outcome carry at most as much as a check-in's answers.
        .layer(DefaultBodyLimit::max(ANSWERS_BODY_BYTES))
        .merge(
            OpenApiRouter::new().routes(routes!(put_checkin_answers)).layer(DefaultBodyLimit::max(ANSWERS_BODY_BYTES)),
        )
}

/// Body limit of a check-in's answers: a checklist has at most 100 items and a text answer 1,000
/// characters by default (up to 4 bytes each in UTF-8), so a full one fits; far below the
/// server-wide limit meant for uploads.
const ANSWERS_BODY_BYTES: usize = 512 * 1024;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewChecklist {
    #[schema(schema_with = crate::domain::validation::one_line_text::<{ crate::domain::validation::NAME_MAX_CHARS }>)]
    name: String,
    /// The questions (module documentation of `domain::checklist`): 1 to 100, keys distinct,
    /// `min <= max`, `expect_in` among the choices (rules of the description).
    #[schema(value_type = Vec<checklist::Item>, min_items = 1, max_items = 100)]
    items: Value,
}

/// Adds a checklist, or a new version of the one with this name (answers stay tied to the version
/// they answered). Every invalid item is named (`items[i].field`). Admins; audited.
#[utoipa::path(post, path = "/checklists", tag = "checklists", request_body = NewChecklist, responses(
    (status = 201, body = Checklist), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_checklist(
    State(state): State<AppState>,
    auth: Can<p::ManageSettings>,
    Json(input): Json<NewChecklist>,
) -> Result<(StatusCode, Json<Checklist>), ApiError> {
    let name = input.name.trim();
    let mut errors = Vec::new();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be a non-blank text of at most 200 characters"));
    }
    crate::domain::validation::check_plain_text("name", name, crate::domain::validation::Lines::One, &mut errors);
    let items = match checklist::parse_items(&input.items) {
        Ok(items) => Some(items),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    let Some(items) = items.filter(|_| errors.is_empty()) else { return Err(ApiError::invalid(errors)) };
    let items = serde_json::to_value(&items).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut tx = state.db.begin().await?;
    let created = db::checklists::create(&mut *tx, auth.org_id, name, &items, auth.user_id()).await?;
    let detail = json!({"name": created.name, "version": created.version});
    super::people::audit(&mut *tx, &auth, AuditAction::ChecklistCreate, "checklist", created.id, detail).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// The latest version of each checklist of the org (what a rep's app shows).
#[utoipa::path(get, path = "/checklists", tag = "checklists", responses((status = 200, body = [Checklist])))]
async fn list_checklists(
    State(state): State<AppState>,
    auth: Can<p::SubmitEvidence>,
) -> Result<Json<Vec<Checklist>>, ApiError> {
    Ok(Json(db::checklists::latest(&state.db, auth.org_id).await?))
}

/// One checklist version.
#[utoipa::path(get, path = "/checklists/{id}", tag = "checklists", responses(
    (status = 200, body = Checklist), (status = 404, body = Problem)))]
async fn get_checklist(
    State(state): State<AppState>,
    auth: Can<p::SubmitEvidence>,
    Path(id): Path<i64>,
) -> Result<Json<Checklist>, ApiError> {
    Ok(Json(
        db::checklists::get(&state.db, auth.org_id, id).await?.ok_or_else(|| ApiError::not_found("checklist", id))?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct OutcomeRequest {
    /// The checklist version answered.
    checklist_id: i64,
    /// Answers by item key.
    #[schema(value_type = Object)]
    answers: Value,
}

/// Records a rep's answers to a checklist version for a visit. Each answer is checked against its
/// item (type, range, choices; required items present; no answers to items the version lacks):
/// every wrong one is named (`answers.<key>`), and nothing is stored then. Answers outside what
/// the checklist expects are listed as `problems`; answers of items with an `outlet_attribute`
/// update the outlet's attributes (each change kept in its history). The visit's rep (or their
/// device) only.
#[utoipa::path(post, path = "/visits/{id}/outcomes", tag = "checklists", request_body = OutcomeRequest, responses(
    (status = 201, body = Outcome), (status = 403, body = Problem), (status = 404, body = Problem),
    (status = 422, body = Problem)))]
async fn submit_outcome(
    State(state): State<AppState>,
    auth: Can<p::SubmitEvidence>,
    Path(visit_id): Path<i64>,
    Json(req): Json<OutcomeRequest>,
) -> Result<(StatusCode, Json<Outcome>), ApiError> {
    let visit = db::visits::key(&state.db, auth.org_id, visit_id)
        .await?
        .ok_or_else(|| ApiError::not_found("visit", visit_id))?;
    if !auth.is_rep_or_their_device(visit.rep_id) {
        auth.check_rep(visit.rep_id, visit.rep_territory_path.as_deref())?;
        return Err(ApiError::Forbidden("only the visit's rep (or their device) answers its checklist".into()));
    }
    let outcome =
        app::checklists::submit_outcome(&state.db, &auth.caller(), &visit, req.checklist_id, &req.answers).await?;
    Ok((StatusCode::CREATED, Json(outcome)))
}

/// Records a rep's answers to a checklist version given at a check-in of the calling device (or
/// of the calling rep), before any visit is derived, keyed by the app's own id of the answers:
/// 201 when new, 200 with the stored outcome for a retry of the same answers (nothing is stored
/// twice, also after a lost answer), 409 for another checklist version or other answers under
/// that id. Checked as a visit's answers are (every wrong one named `answers.<key>`, nothing
/// stored then); problems and outlet attributes as for a visit. Derivation links them to the
/// visit it finds at the check-in.
#[utoipa::path(put, path = "/checkins/{client_id}/answers/{answers_client_id}", tag = "checklists",
    params(("client_id" = String, Path, description = "The app's id of the check-in"),
        ("answers_client_id" = String, Path, description = "The app's id of the answers (8-100 of A-Za-z0-9_.:-)")),
    request_body = OutcomeRequest,
    responses((status = 200, body = Outcome, description = "A retry: the answers stored before"),
        (status = 201, body = Outcome, description = "Stored"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
async fn put_checkin_answers(
    State(state): State<AppState>,
    auth: Can<p::SubmitEvidence>,
    Path((client_id, answers_client_id)): Path<(String, String)>,
    Json(req): Json<OutcomeRequest>,
) -> Result<(StatusCode, Json<Outcome>), ApiError> {
    let caller = auth.caller();
    let checkin = app::checkins::own(&state.db, &caller, &client_id, &answers_client_id, "answers_client_id").await?;
    let (outcome, new) = app::checklists::submit_at_checkin(
        &state.db,
        &caller,
        &checkin,
        &answers_client_id,
        req.checklist_id,
        &req.answers,
    )
    .await?;
    if new {
        state.deriver.wake();
    }
    Ok((if new { StatusCode::CREATED } else { StatusCode::OK }, Json(outcome)))
}

/// The checklist answers of a visit, in submission order.
#[utoipa::path(get, path = "/visits/{id}/outcomes", tag = "checklists", responses(
    (status = 200, body = [Outcome]), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn visit_outcomes(
    State(state): State<AppState>,
    auth: Can<p::ReadVisits>,
    Path(visit_id): Path<i64>,
) -> Result<Json<Vec<Outcome>>, ApiError> {
    let visit = db::visits::key(&state.db, auth.org_id, visit_id)
        .await?
        .ok_or_else(|| ApiError::not_found("visit", visit_id))?;
    auth.check_rep(visit.rep_id, visit.rep_territory_path.as_deref())?;
    Ok(Json(db::checklists::of_visit(&state.db, auth.org_id, visit.id).await?))
}

/// The outlet, when within the caller's territory.
async fn visible_outlet(state: &AppState, auth: &Principal, id: i64) -> Result<db::outlets::Outlet, ApiError> {
    let outlet =
        db::outlets::get(&state.db, auth.org_id, id).await?.ok_or_else(|| ApiError::not_found("outlet", id))?;
    auth.check_territory(outlet.territory_path.as_deref())?;
    Ok(outlet)
}

/// The checklist answers given at an outlet, oldest first (paged by `after`, an outcome id); a
/// rep sees those of their own visits.
#[utoipa::path(get, path = "/outlets/{id}/outcomes", tag = "checklists", params(Page), responses(
    (status = 200, body = Paged<Outcome>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn outlet_outcomes(
    State(state): State<AppState>,
    auth: Can<p::ReadOutlets>,
    Path(id): Path<i64>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<Outcome>>, ApiError> {
    let outlet = visible_outlet(&state, &auth, id).await?;
    let limit = page.limit()?;
    // A rep sees the answers of their own visits, not their colleagues'.
    let only_rep = auth.own_rep();
    let items = db::checklists::of_outlet(&state.db, auth.org_id, outlet.id, only_rep, page.after(), limit).await?;
    Ok(Json(Paged::new(items, limit, |o| o.id)))
}

/// The history of an outlet's attributes set from checklist answers, oldest first.
#[utoipa::path(get, path = "/outlets/{id}/attribute-changes", tag = "checklists", params(Page), responses(
    (status = 200, body = Paged<AttributeChange>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn outlet_attribute_changes(
    State(state): State<AppState>,
    auth: Can<p::ReadOutlets>,
    Path(id): Path<i64>,
    Query(page): Query<Page>,
) -> Result<Json<Paged<AttributeChange>>, ApiError> {
    let outlet = visible_outlet(&state, &auth, id).await?;
    let limit = page.limit()?;
    let items = db::checklists::attribute_changes(&state.db, auth.org_id, outlet.id, page.after(), limit).await?;
    Ok(Json(Paged::new(items, limit, |c| c.id)))
}
