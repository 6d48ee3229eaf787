//! The one error type of the HTTP layer, rendered as RFC 9457 `application/problem+json`.

use crate::domain::validation::FieldError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details body.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem (see README, "Errors").
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The request id (also in the `x-request-id` header and the logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Each offending field (and batch item), when the problem is about the input: the first
    /// [`MAX_PROBLEM_ERRORS`] (and at most [`MAX_PROBLEM_ERRORS_BYTES`] of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// How many more field errors there were than `errors` lists; absent when it lists them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors_omitted: Option<usize>,
}

/// Most field errors one problem lists.
pub const MAX_PROBLEM_ERRORS: usize = 1_000;
/// Most bytes of field errors one problem lists (about: names, reasons and JSON punctuation), so
/// that a problem stays well under what the problem middleware reads back.
pub const MAX_PROBLEM_ERRORS_BYTES: usize = 512 * 1024;

/// Keeps the first field errors a problem may list (see [`MAX_PROBLEM_ERRORS`] and
/// [`MAX_PROBLEM_ERRORS_BYTES`]) and answers how many it dropped.
pub fn cap_errors(errors: &mut Vec<FieldError>) -> usize {
    let mut size = 0;
    let keep = errors
        .iter()
        .take(MAX_PROBLEM_ERRORS)
        .position(|e| {
            size += e.field.len() + e.reason.len() + 48;
            size > MAX_PROBLEM_ERRORS_BYTES
        })
        .unwrap_or_else(|| errors.len().min(MAX_PROBLEM_ERRORS));
    let dropped = errors.len() - keep;
    errors.truncate(keep);
    dropped
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("/problems/{}", slug(status)),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            instance: None,
            request_id: None,
            errors: Vec::new(),
            errors_omitted: None,
        }
    }

    /// This problem listing `errors`, capped (see [`cap_errors`]) with the number left out.
    #[must_use]
    pub fn with_errors(mut self, mut errors: Vec<FieldError>) -> Self {
        let dropped = cap_errors(&mut errors);
        self.errors = errors;
        self.errors_omitted = (dropped > 0).then_some(dropped);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res
    }
}

fn slug(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad-request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not-found",
        405 => "method-not-allowed",
        409 => "conflict",
        413 => "payload-too-large",
        415 => "unsupported-media-type",
        422 => "validation",
        429 => "too-many-requests",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{detail}")]
    BadRequest { detail: String, errors: Vec<FieldError> },
    #[error("{detail}")]
    Unprocessable { detail: String, errors: Vec<FieldError> },
    #[error("{detail}")]
    Conflict { detail: String, errors: Vec<FieldError> },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: the request may succeed unchanged later (queue full, database down).
    #[error("{detail}")]
    RetryLater { detail: String, after_s: u64 },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("{what} {id} does not exist"))
    }

    /// A 422 listing each invalid field.
    pub fn invalid(errors: Vec<FieldError>) -> Self {
        let items = crate::domain::validation::items_named(&errors);
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.reason),
            many if items > 0 => format!("{items} items are invalid ({} field errors)", many.len()),
            many => format!("{} fields are invalid", many.len()),
        };
        ApiError::Unprocessable { detail, errors }
    }

    /// A 422 about one field.
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        Self::invalid(vec![FieldError::new(field, reason)])
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::BadRequest { detail: detail.into(), errors: Vec::new() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) | ApiError::RetryLater { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let problem = Problem::new(status, self.to_string());
        let retry_after = match &self {
            ApiError::RetryLater { after_s, .. } => Some(*after_s),
            ApiError::Unavailable(_) => Some(5),
            _ => None,
        };
        let problem = match self {
            ApiError::BadRequest { errors, .. }
            | ApiError::Unprocessable { errors, .. }
            | ApiError::Conflict { errors, .. } => problem.with_errors(errors),
            _ => problem,
        };
        let mut res = problem.into_response();
        if status == StatusCode::UNAUTHORIZED && !res.headers().contains_key(header::WWW_AUTHENTICATE) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

/// Named constraints of the schema and the input field each one guards.
const CONSTRAINT_FIELDS: &[(&str, &str, &str)] = &[
    ("orgs_slug_key", "slug", "an org with this slug already exists"),
    ("orgs_slug_format", "slug", "must be 2-63 lowercase letters, digits or dashes"),
    ("territories_code_key", "code", "a territory with this code already exists in this org"),
    ("territories_parent_fkey", "parent_id", "no such territory in this org"),
    ("territories_no_cycle", "parent_id", "a territory cannot be moved below itself"),
    ("territories_level_known", "level", "unknown level (country, province, city, district, county, grid, region)"),
    ("territories_boundary_valid", "boundary", "the boundary is not a valid polygon"),
    ("users_login_key", "login", "this login is already taken in this org"),
    ("users_login_format", "login", "must be 1-128 letters, digits or . _ @ + -"),
    ("users_role_known", "role", "unknown role (admin, supervisor, auditor, manager, rep)"),
    ("users_territory_fkey", "territory_id", "no such territory in this org"),
    ("devices_rep_fkey", "rep_id", "no such rep in this org"),
    ("outlets_code_key", "code", "an outlet with this code already exists in this org"),
    ("outlets_channel_type_known", "channel_type", "unknown channel type"),
    ("outlets_tier_fkey", "tier", "not a tier of this org's tier policies"),
    ("outlets_location_range", "lat", "latitude/longitude out of range"),
    ("outlets_radius_range", "radius_m", "must be greater than 0 and at most 5000 m"),
    ("outlets_status_known", "status", "unknown status (active, closed, suspended)"),
    ("outlets_territory_fkey", "territory_id", "no such territory in this org"),
    ("tier_policies_required_visits_positive", "required_visits", "must be greater than 0"),
    ("tier_policies_cycle_days_range", "cycle_days", "must be between 1 and 366"),
    ("tier_policies_min_dwell_range", "min_dwell_s", "must be between 0 and 86400"),
    ("tier_policies_radius_range", "default_radius_m", "must be greater than 0 and at most 5000 m"),
    ("tier_policies_tier_format", "tier", "must be 1-16 letters, digits or _ + -"),
];

impl ApiError {
    /// The 422 a violation of the named CHECK constraint answers with, for a value the handler
    /// refuses before the database sees it (as the database would have).
    pub fn check_violation(constraint: &str) -> Self {
        let (field, reason) = CONSTRAINT_FIELDS
            .iter()
            .find(|(c, _, _)| *c == constraint)
            .map_or((constraint, "invalid value"), |(_, f, r)| (*f, *r));
        ApiError::field(field, reason)
    }

    /// The error about item `i` of a batch: the index on each field error (422 and 409).
    #[must_use]
    pub fn at(self, i: usize) -> Self {
        match self {
            ApiError::Unprocessable { detail, errors } => {
                ApiError::Unprocessable { detail, errors: errors.into_iter().map(|f| f.at(i)).collect() }
            }
            ApiError::Conflict { detail, errors } => {
                ApiError::Conflict { detail, errors: errors.into_iter().map(|f| f.at(i)).collect() }
            }
            other => other,
        }
    }
}

/// The detail of the 503 answering a request whose query the database cancelled for taking too
/// long (`FV_STATEMENT_TIMEOUT_MS`, or a lock waited for past `lock_timeout`).
pub const DB_TOOK_TOO_LONG: &str = "the database took too long to answer; retry shortly";

/// Statements of requests the database cancelled for taking too long (SQLSTATE 57014 or 55P03),
/// in every app of this process: `fieldvisit_db_statement_timeouts_total`.
pub static DB_TIMEOUTS: std::sync::LazyLock<prometheus::IntCounter> = std::sync::LazyLock::new(|| {
    prometheus::IntCounter::new(
        "db_statement_timeouts_total",
        "Request queries the database cancelled for taking too long (statement or lock timeout)",
    )
    .expect("valid metric")
});

/// The answer to a violated integrity constraint (SQLSTATE `code`, 23xxx): 409 for a duplicate,
/// else 422, naming the field a constraint of [`CONSTRAINT_FIELDS`] guards. Any other constraint
/// gets a fixed text: its name (a table's) and the database's message stay in the log.
fn integrity_error(code: &str, constraint: &str, message: &str) -> ApiError {
    let duplicate = code == "23505";
    let (detail, errors) = if let Some((_, field, reason)) = CONSTRAINT_FIELDS.iter().find(|(c, _, _)| *c == constraint)
    {
        (format!("{field}: {reason}"), vec![FieldError::new(*field, *reason)])
    } else {
        tracing::warn!(code, constraint, message, "unmapped database constraint");
        let detail = if duplicate { "a stored record already holds this value" } else { "a value is not allowed here" };
        (detail.to_owned(), Vec::new())
    };
    if duplicate { ApiError::Conflict { detail, errors } } else { ApiError::Unprocessable { detail, errors } }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => ApiError::NotFound("not found".into()),
            sqlx::Error::PoolTimedOut => {
                ApiError::RetryLater { detail: "the database is busy; retry shortly".into(), after_s: 2 }
            }
            sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::RetryLater { detail: "the database is unavailable; retry shortly".into(), after_s: 5 }
            }
            sqlx::Error::Database(db) if crate::db::is_timeout(&err) => {
                // The client may retry unchanged (the phones do on 503 + Retry-After); the
                // database's text ("canceling statement due to ...") goes to the log only.
                DB_TIMEOUTS.inc();
                tracing::warn!(code = db.code().as_deref(), message = db.message(), "database statement timed out");
                ApiError::RetryLater { detail: DB_TOOK_TOO_LONG.into(), after_s: 5 }
            }
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                // The database's own text never reaches the client (it names tables and values).
                match code.as_ref() {
                    "23505" | "23503" | "23514" | "23502" => {
                        integrity_error(&code, db.constraint().unwrap_or_default(), db.message())
                    }
                    // Shutting down, cannot connect now, connection exceptions, or a standby
                    // (read-only, 25006) where the primary was a moment ago: during a failover
                    // the write is refused, never half-done, and succeeds on the new primary.
                    c if c.starts_with("57") || c.starts_with("08") || c == "25006" => {
                        ApiError::RetryLater { detail: "the database is unavailable; retry shortly".into(), after_s: 5 }
                    }
                    c if c.starts_with("22") => {
                        tracing::warn!(code = c, message = db.message(), "value refused by the database");
                        ApiError::Unprocessable {
                            detail: "a value is out of the range the data can hold".into(),
                            errors: Vec::new(),
                        }
                    }
                    _ => ApiError::Internal(err.to_string()),
                }
            }
            _ => ApiError::Internal(err.to_string()),
        }
    }
}

impl From<crate::app::Error> for ApiError {
    fn from(err: crate::app::Error) -> Self {
        use crate::app::Error;
        let (e, item) = match err {
            Error::BadInput(detail) => (ApiError::bad_request(detail), None),
            Error::Invalid(errors) => (ApiError::invalid(errors), None),
            Error::Constraint { constraint, item } => (ApiError::check_violation(constraint), item),
            Error::NotFound { what, id } => (ApiError::not_found(what, id), None),
            Error::Forbidden(detail) => (ApiError::Forbidden(detail), None),
            Error::Conflict { detail, errors } => (ApiError::Conflict { detail, errors }, None),
            Error::Internal(detail) => (ApiError::Internal(detail), None),
            Error::Db { source, item } => (ApiError::from(source), item),
        };
        // The fields named belong to input item `i`.
        match item {
            Some(i) => e.at(i),
            None => e,
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let detail = r.body_text();
        match r {
            JsonRejection::JsonDataError(_) => ApiError::Unprocessable { detail, errors: Vec::new() },
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::UnsupportedMediaType("expected a request with `content-type: application/json`".into())
            }
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge("the request body is larger than the configured limit".into())
            }
            _ => ApiError::bad_request(detail),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::bad_request(format!("invalid query string: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::bad_request(format!("invalid path parameter: {}", r.body_text()))
    }
}
