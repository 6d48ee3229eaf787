//! Helpers shared by the benches: scratch-database URLs and the psql binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

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

/// The release server binary running as its own process; killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `fieldvisit serve` on `127.0.0.1:port` against `url` with `envs` besides, logging to
/// `fieldvisit-bench-{name}.log` in the temp directory.
pub fn start_server(url: &str, port: u16, name: &str, envs: &[(&str, &str)]) -> Server {
    let log = std::env::temp_dir().join(format!("fieldvisit-bench-{name}.log"));
    let log_file = std::fs::File::create(&log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_fieldvisit"))
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("FV_MAP_UI_DIR", "/nonexistent")
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .spawn()
        .expect("start the server binary");
    Server(child)
}
