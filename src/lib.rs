//! fieldvisit: turns reps' GPS pings into verified outlet visits, checks them against beat plans and
//! measures outlet coverage. See DESIGN.md for the domain and README.md for the layout.

pub mod admin;
pub mod config;
pub mod db;
pub mod demo;
pub mod derive;
pub mod domain;
pub mod export;
pub mod http;
pub mod imaging;
pub mod index;
pub mod ingest;
pub mod retention;
