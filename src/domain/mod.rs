//! Pure domain logic: no I/O, no async. Everything here is deterministic and unit-testable.

pub mod access;
pub mod credentials;
pub mod outlet;
pub mod validation;
