//! Helpers shared by the benches: scratch-database URLs and the psql binary.

#![allow(dead_code)]

use fieldvisit::{admin, db};
use sqlx::PgPool;
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
) -> (PgPool, String) {
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

/// One keep-alive HTTP/1.1 connection that sends GETs and reads `Content-Length` answers.
pub struct Http1 {
    stream: tokio::net::TcpStream,
    request: Vec<u8>,
    pending: Vec<u8>,
}

impl Http1 {
    pub async fn connect(addr: std::net::SocketAddr) -> std::io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Http1 { stream, request: Vec::with_capacity(256), pending: Vec::with_capacity(1024) })
    }

    /// Sends `GET path` and returns the answer's status once its whole body is read.
    pub async fn get(&mut self, path: &str) -> std::io::Result<u16> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        self.request.clear();
        self.request.extend_from_slice(b"GET ");
        self.request.extend_from_slice(path.as_bytes());
        self.request.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        self.stream.write_all(&self.request).await?;
        loop {
            if let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.pending[..end]).map_err(|_| invalid("head not UTF-8"))?;
                let status = head.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| invalid("status line"))?;
                let mut length = 0;
                for line in head.lines().skip(1) {
                    let (name, value) = line.split_once(':').ok_or_else(|| invalid("header line"))?;
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().map_err(|_| invalid("content-length"))?;
                    } else if name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err(invalid("chunked answers are not read by this client"));
                    }
                }
                let total = end + 4 + length;
                while self.pending.len() < total {
                    if self.stream.read_buf(&mut self.pending).await? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                }
                self.pending.drain(..total);
                return Ok(status);
            }
            if self.stream.read_buf(&mut self.pending).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// A rep's phone of the scratch org.
pub struct Device {
    pub id: i64,
    pub token: String,
    pub osmand_id: String,
}

/// A fresh scratch database `scratch_db` next to `base`, migrated, with one org and `devices` reps
/// each with a phone: its pool, URL, org id and the devices.
pub async fn scratch_org(base: &str, scratch_db: &str, devices: usize) -> (PgPool, String, i64, Vec<Device>) {
    let admin_pool = db::connect(base, 2).await.expect("connect to DATABASE_URL");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {scratch_db} WITH (FORCE)"))
        .execute(&admin_pool)
        .await
        .expect("drop the scratch database");
    sqlx::query(&format!("CREATE DATABASE {scratch_db}")).execute(&admin_pool).await.expect("create scratch database");
    admin_pool.close().await;
    let url = url_for_database(base, scratch_db);
    let pool = db::connect(&url, 4).await.expect("connect to the scratch database");
    db::migrate(&pool).await.expect("migrate");
    let org = admin::create_org(&pool, "bench", "Bench Telecom", "UTC").await.expect("org").id;
    let count = devices;
    let mut devices = Vec::with_capacity(count);
    for d in 0..count {
        let rep = admin::create_user(
            &pool,
            org,
            &format!("rep{d}"),
            &format!("Rep {d}"),
            fieldvisit::domain::access::Role::Rep,
            None,
        )
        .await
        .expect("rep");
        let c = admin::create_device(&pool, org, rep.user.id, &format!("phone {d}")).await.expect("device");
        devices.push(Device { id: c.device_id, token: c.token, osmand_id: c.osmand_id });
    }
    (pool, url, org, devices)
}

/// OsmAnd GETs, one ping per request, on `connections` keep-alive connections for `run`, each
/// device (`ids`, shared round robin) with unique fix times from `base_ms`: the latency (µs) of
/// every acknowledged ping, and the seconds the load took.
pub async fn osmand_load(
    addr: std::net::SocketAddr,
    ids: &std::sync::Arc<Vec<String>>,
    connections: usize,
    run: std::time::Duration,
    base_ms: i64,
) -> (Vec<u32>, f64) {
    use std::fmt::Write as _;
    use std::time::Instant;
    let stop_at = Instant::now() + run;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..connections {
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::new();
            let mut conn = Http1::connect(addr).await.expect("connect");
            let mut seq = 0i64;
            let mut path = String::with_capacity(256);
            while Instant::now() < stop_at {
                // Unique per device: tasks sharing a device differ in the last digits.
                let t = base_ms + seq * 1_000 + task as i64;
                seq += 1;
                path.clear();
                let _ = write!(
                    path,
                    "/osmand?id={}&timestamp={t}&lat={:.6}&lon=116.4&speed=1.5&accuracy=8",
                    ids[task % ids.len()],
                    39.9 + (seq % 100) as f64 * 1e-5
                );
                let sent = Instant::now();
                match conn.get(&path).await {
                    Ok(status) if (200..300).contains(&status) => {
                        latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                    }
                    Ok(_) => {}
                    // The server closed the connection: open another one.
                    Err(_) => conn = Http1::connect(addr).await.expect("reconnect"),
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("task"));
    }
    (latencies, started.elapsed().as_secs_f64())
}
