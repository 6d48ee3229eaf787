//! The integration tests, one binary: each module drives the real HTTP server over its own freshly
//! migrated PostGIS database (`#[sqlx::test]`), a real browser or the real CLI. One binary links the
//! crate once instead of once per file (the suite builds faster on two cores).

mod access_matrix;
mod architecture;
mod checkin_evidence;
mod checkins;
mod checklists;
mod common;
mod compliance;
mod connections;
mod constraints;
mod coverage;
mod decoders;
mod demo;
mod derive_worker;
mod devices;
mod docs;
mod exports;
mod faults;
mod fuzz;
mod gdal;
mod geolife_stays;
mod import;
mod index;
mod ingest;
mod layers;
mod limits;
mod map_ui;
mod migrations;
mod ogc;
mod openapi_truth;
mod ops;
mod outlets;
mod overflow;
mod photos;
mod plans;
mod privacy;
mod problems;
mod real_tracks;
mod reps_app;
mod rules;
mod statement_timeout;
mod tiles;
mod tls;
mod tracks;
mod visits;
