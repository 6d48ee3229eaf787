//! In-memory outlet index (rstar R-tree + h3o cell map), kept coherent across instances through
//! PostgreSQL LISTEN/NOTIFY.

mod knn;
pub mod outlets;
pub mod registry;
pub mod source;

pub use registry::{Registry, register_metrics};
