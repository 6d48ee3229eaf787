//! In-memory outlet index (packed k-d tree on the unit sphere, rstar R-trees for recent changes and
//! footprints, h3o cell map), kept coherent across instances through PostgreSQL LISTEN/NOTIFY, and
//! the ledger of counted visits per outlet, kept coherent through a change log.

pub mod idmap;
mod knn;
pub mod ledger;
pub mod outlets;
pub mod registry;

pub use ledger::Ledgers;
pub use registry::{Registry, register_metrics};
