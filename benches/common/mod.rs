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

/// The migrated scratch database `name` next to `base` and its URL; seeded with
/// `benches/sql/{seed}` (printing `what` first) unless `count_sql` already answers `expected`.
pub async fn scratch_database(
    base: &str,
    name: &str,
    count_sql: &str,
    expected: i64,
    seed: &str,
    what: &str,
) -> (sqlx::PgPool, String) {
    use fieldvisit::db;
    let admin_pool = db::connect(base, 2).await.expect("connect to DATABASE_URL");
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(&admin_pool)
        .await
        .expect("pg_database");
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin_pool).await.expect("create database");
    }
    admin_pool.close().await;
    let url = url_for_database(base, name);
    let pool = db::connect(&url, 4).await.expect("connect to the scratch database");
    db::migrate(&pool).await.expect("migrate");
    let n: i64 = sqlx::query_scalar(count_sql).fetch_one(&pool).await.expect("count");
    if n != expected {
        assert_eq!(n, 0, "{name} holds a partial data set: drop it and run again");
        println!("seeding {name} ({what})");
        let seed = format!("{}/benches/sql/{seed}", env!("CARGO_MANIFEST_DIR"));
        let ok = Command::new(psql())
            .arg(&url)
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-f", &seed])
            .status()
            .expect("run psql")
            .success();
        assert!(ok, "seeding failed");
        sqlx::query("VACUUM ANALYZE").execute(&pool).await.expect("vacuum");
    }
    (pool, url)
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
