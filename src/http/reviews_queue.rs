//! The review queue of supervisors, auditors and admins: what waits for a decision in their
//! scope, oldest first, and one decision applied to many items (`app::reviews_queue`).

use super::AppState;
use super::auth::{Can, p};
use super::error::{ApiError, Problem};
use super::extract::{Json, Query};
use super::visits::days;
use crate::app;
use crate::app::reviews_queue::{BulkOutcome, Cursor, QueueFilter, QueuePage, Selection};
use crate::db;
use axum::extract::{DefaultBodyLimit, State};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Body limit of a bulk decision: 500 items of a kind and an id, and a reason of 2,000
/// characters, with room to spare.
const BULK_BODY_BYTES: usize = 40 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(review_queue))
        .routes(routes!(bulk_decision))
        .layer(DefaultBodyLimit::max(BULK_BODY_BYTES))
}

/// The queue's filter, as the query string and a bulk decision's `filter` write it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct FilterInput {
    /// Kinds, comma-separated: `suspect`, `unverified`, `disputed`, `claim`; default all.
    #[schema(pattern = "^[a-z, ]*$")]
    kind: Option<String>,
    /// Items of this rep only.
    rep_id: Option<i64>,
    /// Items of the reps of this territory's subtree only.
    territory_id: Option<i64>,
    /// First org-local day (YYYY-MM-DD); default 27 days before `to`.
    from: Option<NaiveDate>,
    /// Last org-local day, inclusive; default today; at most 93 days after `from`.
    to: Option<NaiveDate>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct QueueQuery {
    /// Kinds, comma-separated: `suspect`, `unverified`, `disputed`, `claim`; default all.
    #[param(pattern = "^[a-z, ]*$")]
    kind: Option<String>,
    /// Items of this rep only.
    rep_id: Option<i64>,
    /// Items of the reps of this territory's subtree only.
    territory_id: Option<i64>,
    /// First org-local day (YYYY-MM-DD); default 27 days before `to`.
    from: Option<NaiveDate>,
    /// Last org-local day, inclusive; default today; at most 93 days after `from`.
    to: Option<NaiveDate>,
    /// Items per page, 1 to 200; default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<usize>,
    /// The `next` of the previous page.
    after: Option<String>,
}

impl FilterInput {
    /// The filter with its period resolved against the org's today; 422 naming a bad field.
    async fn resolve(&self, state: &AppState, org_id: i64, prefix: &str) -> Result<QueueFilter, ApiError> {
        let today = db::plans::local_date(&state.db, org_id, chrono::Utc::now()).await?;
        let to = self.to.unwrap_or(today);
        let from = self.from.unwrap_or_else(|| to.checked_sub_days(chrono::Days::new(27)).unwrap_or(to));
        let (from, to) = days(Some(from), Some(to), today)?;
        let kinds = app::reviews_queue::parse_kinds(self.kind.as_deref(), &format!("{prefix}kind"))?;
        Ok(QueueFilter { kinds, rep_id: self.rep_id, territory_id: self.territory_id, from, to })
    }
}

/// The review queue of the caller's scope, oldest first: visits judged `suspect` or `unverified`
/// that nobody reviewed, visits their rep disputes with no decision since (`disputed`), and
/// check-ins no visit confirms that nobody decided (`claim`), each with its rep, outlet, time,
/// verdict, risk score, dispute reason and the links of its evidence and decision. Paged by the
/// `next` cursor. Supervisors, auditors and admins (who review visits).
#[utoipa::path(get, path = "/reviews/queue", tag = "visits", params(QueueQuery), responses(
    (status = 200, body = QueuePage), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn review_queue(
    State(state): State<AppState>,
    auth: Can<p::ReviewVisits>,
    Query(q): Query<QueueQuery>,
) -> Result<Json<QueuePage>, ApiError> {
    let filter = FilterInput { kind: q.kind, rep_id: q.rep_id, territory_id: q.territory_id, from: q.from, to: q.to };
    let filter = filter.resolve(&state, auth.org_id, "").await?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=app::reviews_queue::MAX_PAGE).contains(&limit) {
        return Err(ApiError::field("limit", "must be from 1 to 200"));
    }
    let after = q.after.as_deref().map(|a| Cursor::parse(a, "after")).transpose()?;
    Ok(Json(app::reviews_queue::queue(&state.db, &auth.caller(), &filter, limit, after, "").await?))
}

/// An item of a bulk decision.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BulkItem {
    /// `suspect`, `unverified`, `disputed` (a visit's id) or `claim` (a check-in's id).
    #[schema(pattern = "^(suspect|unverified|disputed|claim)$")]
    kind: String,
    #[schema(minimum = 1)]
    id: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BulkRequest {
    /// `accepted` or `rejected`.
    #[schema(pattern = "^(accepted|rejected)$")]
    decision: String,
    /// Why (required), recorded with every decision.
    #[schema(schema_with = crate::domain::validation::multi_line_text::<{ app::reviews::MAX_REASON_CHARS }>)]
    reason: String,
    /// The items (1 to 500); or else `filter`.
    #[schema(max_items = 500)]
    items: Option<Vec<BulkItem>>,
    /// The queue's filter: its first 500 items, oldest first; or else `items`.
    filter: Option<FilterInput>,
}

/// One decision (`accepted` or `rejected`, with a reason) on many items of the review queue: the
/// listed `items` (at most 500), or the first 500 the `filter` matches (`remaining` says how many
/// more it matches). Each item is decided as its single decision would be (`POST
/// /visits/{id}/reviews`, `POST /checkins/{id}/decision`: the same audit, history and
/// re-derivation), in its own transaction; the answer lists what was decided and what was
/// refused, with the reason.
#[utoipa::path(post, path = "/reviews/bulk", tag = "visits", request_body = BulkRequest, responses(
    (status = 200, body = BulkOutcome), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn bulk_decision(
    State(state): State<AppState>,
    auth: Can<p::ReviewVisits>,
    Json(req): Json<BulkRequest>,
) -> Result<Json<BulkOutcome>, ApiError> {
    let selection = match (req.items, req.filter) {
        (Some(items), None) => Selection::Items(
            items
                .into_iter()
                .enumerate()
                .map(|(i, it)| {
                    app::reviews_queue::QueueKind::parse(&it.kind).map(|k| (k, it.id)).ok_or_else(|| {
                        ApiError::invalid(vec![
                            crate::domain::validation::FieldError::new(
                                "items.kind",
                                "must be `suspect`, `unverified`, `disputed` or `claim`",
                            )
                            .at(i),
                        ])
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        (None, Some(f)) => Selection::Filter(f.resolve(&state, auth.org_id, "filter.").await?),
        _ => return Err(ApiError::field("items", "give either `items` or `filter`")),
    };
    let outcome = app::reviews_queue::decide(&state.db, &auth.caller(), &req.decision, &req.reason, &selection).await?;
    state.deriver.wake();
    Ok(Json(outcome))
}
