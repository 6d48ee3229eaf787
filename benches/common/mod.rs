//! Helpers shared by the benches: scratch-database URLs and the psql binary.

#![allow(dead_code)]

use std::path::PathBuf;

/// `DATABASE_URL` with the database name replaced by `db`.
pub fn url_for_database(base: &str, db: &str) -> String {
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let query = base[path_start..].find('?').map_or("", |i| &base[path_start + i..]);
    format!("{}/{db}{query}", &base[..path_start])
}

/// `PSQL`, else `psql` on the PATH, else the Debian PostgreSQL 15 client.
pub fn psql() -> PathBuf {
    if let Ok(p) = std::env::var("PSQL") {
        return p.into();
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("psql")).find(|p| p.is_file()));
    on_path.unwrap_or_else(|| "/usr/lib/postgresql/15/bin/psql".into())
}
