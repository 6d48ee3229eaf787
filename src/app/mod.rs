//! Use cases: what the product does, callable from the HTTP API, the command line and background
//! jobs alike. A use case reads and writes through `db`, the outlet index and the visit ledgers
//! and applies the domain; it knows nothing of HTTP (no status codes, extractors or responses).

pub mod coverage;

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
