//! fieldvisit: turns reps' GPS pings into verified outlet visits, checks them against beat plans and
//! measures outlet coverage. See docs/domain.md for the domain and docs/architecture.md for the layout.

pub mod admin;
pub mod app;
pub mod config;
/// The pure domain lives in its own crate (no I/O dependency can reach it); re-exported here so
/// that `fieldvisit::domain::…` names it everywhere.
pub use fieldvisit_domain as domain;
pub mod db;
pub mod derive;
pub mod export;
pub mod http;
pub mod imaging;
pub mod index;
pub mod ingest;
pub mod retention;
