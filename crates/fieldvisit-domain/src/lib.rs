//! Pure domain logic: no I/O, no async. Everything here is deterministic and unit-testable.

#[macro_use]
pub mod names;

pub mod access;
pub mod assessment;
pub mod audit;
pub mod checkin;
pub mod checklist;
pub mod compliance;
pub mod coverage;
pub mod credentials;
pub mod crs;
pub mod export;
pub mod geo;
pub mod import;
pub mod layers;
pub mod outlet;
pub mod photo;
pub mod ping;
pub mod ping_filter;
pub mod plan;
pub mod privacy;
pub mod protocols;
pub mod territory;
pub mod tiles;
pub mod track;
pub mod validation;
pub mod visit;
