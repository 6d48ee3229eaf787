//! Use cases: what the product does, callable from the HTTP API, the command line and background
//! jobs alike. A use case reads and writes through `db`, the outlet index and the visit ledgers
//! and applies the domain; it knows nothing of HTTP (no status codes, extractors or responses).

pub mod beats;
pub mod checkins;
pub mod checklists;
pub mod compliance;
pub mod coverage;
pub mod day_order;
pub mod devices;
pub mod exports;
pub mod ingest;
pub mod outlets;
pub mod photos;
pub mod plans;
pub mod reviews;
pub mod reviews_queue;
pub mod territories;
pub mod users;
pub mod visits;

use crate::db;
use crate::domain::access::{Role, Scope};
use crate::domain::audit::AuditAction;
use crate::domain::validation::FieldError;
use crate::index::{Ledgers, Registry};
use sqlx::PgPool;

/// What the read use cases answer from: the database, and this instance's in-memory outlet
/// indexes and visit ledgers (each kept coherent with the database).
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    pub db: &'a PgPool,
    pub index: &'a Registry,
    pub ledgers: &'a Ledgers,
}

/// Who a use case acts for: recorded in the audit log; their role and territory scope bound what
/// they may read and write. A device acts for its rep: the rep's role and scope, and only that
/// rep's own data.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub org_id: i64,
    pub user_id: Option<i64>,
    pub device_id: Option<i64>,
    pub request_id: Option<&'a str>,
    /// The request id the client sent (validated), kept apart from ours.
    pub client_request_id: Option<&'a str>,
    /// The user's role (`rep` for a device). `None`: the system itself (no scope).
    pub role: Option<Role>,
    /// The rep whose own data alone the caller sees (a rep, or a rep's device); `None` for
    /// everyone else, who see the reps within their scope.
    pub own_rep: Option<i64>,
    /// `None`: no territory is within reach.
    pub scope: Option<Scope>,
}

impl Caller<'_> {
    /// Whether an object in the territory with this path (root..node ids) is within the scope.
    pub fn may_reach(&self, territory_path: Option<&[i64]>) -> bool {
        self.scope.is_some_and(|s| s.contains(territory_path))
    }

    /// Whether the caller may see the data of rep `rep_id` (whose territory path is `rep_path`):
    /// a rep and their devices only their own, everyone else the reps within their scope.
    pub fn may_see_rep(&self, rep_id: i64, rep_path: Option<&[i64]>) -> bool {
        match self.own_rep {
            Some(own) => own == rep_id,
            None => self.may_reach(rep_path),
        }
    }

    /// Writes an audit-log entry of this caller (in the use case's transaction).
    pub async fn audit(
        &self,
        db: impl sqlx::PgExecutor<'_>,
        action: AuditAction,
        object_type: &str,
        object_id: impl ToString,
        detail: serde_json::Value,
    ) -> Result<(), sqlx::Error> {
        let entry = db::audit::NewEntry {
            actor_user_id: self.user_id,
            actor_device_id: self.device_id,
            action,
            object_type,
            object_id: Some(object_id.to_string()),
            request_id: self.request_id,
            detail,
        };
        db::audit::record_for_client(db, self.org_id, entry, self.client_request_id).await
    }
}

/// What a use case fails with; the HTTP layer maps each to its status (400, 422, or by the
/// database error: 409, 422, 503, 500), the command line prints it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not what the use case takes at all (not JSON, the wrong kind of document).
    #[error("{0}")]
    BadInput(String),
    /// The input is wrong: each offending field (and item) named.
    #[error("invalid input: {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// A value the database's check `constraint` would refuse, refused before writing (the same
    /// answer as the database's); `item` is the input item, if any.
    #[error("violates {constraint}")]
    Constraint { constraint: &'static str, item: Option<usize> },
    /// The object the use case was asked about does not exist (or is outside the caller's org).
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: String },
    /// The caller may not do this to this object (outside their territory scope, not their own).
    #[error("{0}")]
    Forbidden(String),
    /// The request is valid but the object's state refuses it now (a plan no longer in force, a
    /// decision already taken); `errors` names the fields involved, if any.
    #[error("{detail}")]
    Conflict { detail: String, errors: Vec<FieldError> },
    /// Something that cannot happen did (stored data unreadable): a 500, logged.
    #[error("{0}")]
    Internal(String),
    /// The database refused or failed; `item` is the input item it was writing, if any.
    #[error("{source}")]
    Db { source: sqlx::Error, item: Option<usize> },
}

impl From<sqlx::Error> for Error {
    fn from(source: sqlx::Error) -> Self {
        Error::Db { source, item: None }
    }
}

impl Error {
    /// `what` `id` does not exist.
    pub fn not_found(what: &'static str, id: i64) -> Error {
        Error::NotFound { what, id: id.to_string() }
    }

    /// A 422-kind refusal of one field.
    pub fn field(field: &str, reason: impl Into<String>) -> Error {
        Error::Invalid(vec![FieldError::new(field, reason)])
    }

    /// A database error met while writing input item `i`.
    pub fn at(source: sqlx::Error, i: usize) -> Error {
        Error::Db { source, item: Some(i) }
    }
}
