//! Faults during ingestion: the server killed with SIGKILL under sustained load loses no ping it
//! acknowledged, and a database that goes away gets 503 + Retry-After, with every ping stored
//! exactly once after it comes back and the client retries.

use crate::common;

use chrono::{Duration as ChronoDuration, Utc};
use common::{TestApp, World};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream, UnixStream};

/// Kills the child on drop (a failing test leaves no server behind).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn database_url(pool: &PgPool) -> (String, String) {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL is set for the tests");
    let dbname: String = sqlx::query_scalar("SELECT current_database()").fetch_one(pool).await.expect("db name");
    (common::url_for_database(&base, &dbname), dbname)
}

/// Fix times that no two senders share: sender `s`, sequence `i`, within the last day.
fn fix_time(s: usize, i: usize) -> i64 {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| (Utc::now() - ChronoDuration::hours(20)).timestamp());
    base - (s * 100_000 + i) as i64
}

/// The real server binary on a free port over the test's database, once it answers `/readyz`:
/// the process, its base URL and its log file.
async fn start_server(url: &str, dbname: &str) -> (Running, String, std::path::PathBuf) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let log = std::env::temp_dir().join(format!("fieldvisit-faults-{dbname}.log"));
    let log_file = std::fs::File::create(&log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_fieldvisit"))
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("FV_MAP_UI_DIR", "/nonexistent/fieldvisit-test-map-ui")
        .env("FV_DB_MAX_CONNECTIONS", "4")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .spawn()
        .expect("start the fieldvisit binary");
    let mut server = Running(child);
    let client = common::client();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{base}/readyz")).send().await.map(|r| r.status().as_u16()).ok() != Some(200) {
        assert!(server.0.try_wait().expect("poll").is_none(), "server exited; log:\n{}", common::log_tail(&log));
        assert!(Instant::now() < deadline, "not ready within 60 s; log:\n{}", common::log_tail(&log));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (server, base, log)
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn sigkill_during_sustained_ingest_loses_no_acknowledged_ping(pool: PgPool) {
    let w = World::seed(&pool).await;
    let (url, dbname) = database_url(&pool).await;
    let (mut server, base, log) = start_server(&url, &dbname).await;
    let client = common::client();

    // Four senders post 25-ping batches as fast as they are answered; each remembers what was
    // acknowledged with 2xx.
    let acked: Arc<Mutex<BTreeSet<i64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for s in 0..4 {
        let (client, base, token, acked, stop) =
            (client.clone(), base.clone(), w.device.token.clone(), acked.clone(), stop.clone());
        senders.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let times: Vec<i64> = (i..i + 25).map(|i| fix_time(s, i)).collect();
                i += 25;
                let batch: Vec<Value> = times
                    .iter()
                    .map(|t| json!({"fix_time": t, "lat": 39.9 + (*t % 1000) as f64 * 1e-5, "lon": 116.4}))
                    .collect();
                let res = client
                    .post(format!("{base}/api/v1/pings"))
                    .bearer_auth(&token)
                    .json(&batch)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().is_success() => acked.lock().expect("acked").extend(times),
                    Ok(_) => {}
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    // Kill it mid-stream, once a good number of batches went through.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().expect("acked").len() < 2_000 {
        assert!(Instant::now() < deadline, "too few acknowledgements; log:\n{}", common::log_tail(&log));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = server.0.id();
    let killed = Command::new("kill").arg("-KILL").arg(pid.to_string()).status().expect("run kill");
    assert!(killed.success());
    let _ = server.0.wait();
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.await.expect("sender task");
    }

    let acked = acked.lock().expect("acked").clone();
    let stored: BTreeSet<i64> = sqlx::query_scalar::<_, f64>(
        "SELECT extract(epoch FROM fix_time)::float8 FROM pings WHERE device_id = $1 AND source = 'native'",
    )
    .bind(w.device.id)
    .fetch_all(&pool)
    .await
    .expect("stored")
    .into_iter()
    .map(|t| t as i64)
    .collect();
    let lost: Vec<&i64> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged pings are not in the database", lost.len(), acked.len());
    let _ = std::fs::remove_file(&log);
}

/// SIGTERM while a request waits for its commit (the day's partition is locked by the test): the
/// server keeps running until that commit goes through, answers the request 2xx, then exits 0 with
/// the ping stored. Graceful shutdown flushes what is queued; nothing acknowledged is lost.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn sigterm_flushes_the_queue_before_exiting(pool: PgPool) {
    let w = World::seed(&pool).await;
    let (url, dbname) = database_url(&pool).await;
    let (mut server, base, log) = start_server(&url, &dbname).await;
    let fix = Utc::now() - ChronoDuration::minutes(5);
    let part: String = sqlx::query_scalar("SELECT ensure_ping_partition($1::date)")
        .bind(fix.date_naive())
        .fetch_one(&pool)
        .await
        .expect("partition");
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM pings WHERE device_id = $1")
        .bind(w.device.id)
        .fetch_one(&pool)
        .await
        .expect("count");
    let mut blocker = pool.begin().await.expect("begin");
    sqlx::query(&format!("LOCK TABLE {part} IN ACCESS EXCLUSIVE MODE")).execute(&mut *blocker).await.expect("lock");

    let request = tokio::spawn({
        let (url, token) = (format!("{base}/api/v1/pings"), w.device.token.clone());
        let batch = json!([{"fix_time": fix.to_rfc3339(), "lat": 39.91, "lon": 116.41}]);
        async move {
            let res = common::client().post(url).bearer_auth(token).json(&batch).send().await.expect("answered");
            (res.status().as_u16(), res.text().await.unwrap_or_default())
        }
    });
    // The writer's insert waits for the lock.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM pg_locks WHERE relation = '{part}'::regclass AND NOT granted"
        ))
        .fetch_one(&pool)
        .await
        .expect("locks");
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the insert never waited; log:\n{}", common::log_tail(&log));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let terminated = Command::new("kill").arg("-TERM").arg(server.0.id().to_string()).status().expect("run kill");
    assert!(terminated.success());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(server.0.try_wait().expect("poll").is_none(), "exited with a request unanswered");
    assert!(!request.is_finished(), "answered before its commit");

    blocker.rollback().await.expect("release the partition");
    let (status, body) = tokio::time::timeout(Duration::from_secs(20), request).await.expect("answer").expect("task");
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = server.0.try_wait().expect("poll") {
            break exit;
        }
        assert!(Instant::now() < deadline, "still running after the last answer; log:\n{}", common::log_tail(&log));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}; log:\n{}", common::log_tail(&log));
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM pings WHERE device_id = $1")
        .bind(w.device.id)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(after, before + 1);
    let _ = std::fs::remove_file(&log);
}

/// A TCP proxy in front of the test database that can be switched off (every connection dropped,
/// new ones refused) and on again: the database "goes down" for the server without disturbing
/// the other tests that share the cluster.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    generation: Arc<std::sync::atomic::AtomicU64>,
}

enum Upstream {
    Unix(String),
    Tcp(String),
}

impl Upstream {
    /// Where `DATABASE_URL` points: a unix socket directory (`?host=/dir`) or host:port.
    fn from_url(url: &str) -> Upstream {
        let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
        let authority = after_scheme.split(['/', '?']).next().unwrap_or_default();
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let port = hostport.rsplit_once(':').map_or("5432", |(_, p)| p).to_owned();
        let socket_dir = url.split_once('?').and_then(|(_, q)| {
            q.split('&').find_map(|kv| kv.strip_prefix("host=")).filter(|h| h.starts_with('/')).map(str::to_owned)
        });
        match socket_dir {
            Some(dir) => Upstream::Unix(format!("{dir}/.s.PGSQL.{port}")),
            None => {
                Upstream::Tcp(if hostport.contains(':') { hostport.to_owned() } else { format!("{hostport}:5432") })
            }
        }
    }
}

impl Proxy {
    async fn start(upstream: Upstream) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy listener");
        let port = listener.local_addr().expect("proxy addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let upstream = Arc::new(upstream);
        let (up2, gen2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (up, generation, upstream) = (up2.clone(), gen2.clone(), upstream.clone());
                let born = generation.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let pump = async {
                        match upstream.as_ref() {
                            Upstream::Unix(path) => {
                                let mut server = UnixStream::connect(path).await?;
                                tokio::io::copy_bidirectional(&mut client, &mut server).await.map(|_| ())
                            }
                            Upstream::Tcp(addr) => {
                                let mut server = TcpStream::connect(addr).await?;
                                tokio::io::copy_bidirectional(&mut client, &mut server).await.map(|_| ())
                            }
                        }
                    };
                    // Cut the connection as soon as the proxy goes down.
                    let cut = async {
                        while up.load(Ordering::SeqCst) && generation.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = pump => {},
                        () = cut => {},
                    }
                });
            }
        });
        Proxy { port, up, generation }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// `url` with its host replaced by this proxy.
    fn url(&self, url: &str, dbname: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let userinfo = authority.rsplit_once('@').map(|(u, _)| format!("{u}@")).unwrap_or_default();
        format!("{scheme}://{userinfo}127.0.0.1:{}/{dbname}?sslmode=disable", self.port)
    }
}

async fn post(app: &TestApp, token: &str, batch: &Value) -> common::Res {
    app.post("/api/v1/pings", Some(token), batch).await
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn database_down_gives_503_and_a_retry_stores_each_ping_once(pool: PgPool) {
    let w = World::seed(&pool).await;
    sqlx::query("DELETE FROM pings WHERE device_id = $1").bind(w.device.id).execute(&pool).await.expect("clear");
    let (url, dbname) = database_url(&pool).await;
    let proxy = Proxy::start(Upstream::from_url(&url)).await;
    let through_proxy = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&proxy.url(&url, &dbname))
        .await
        .expect("pool through the proxy");
    let app = TestApp::spawn(through_proxy).await;
    let batch = |from: usize| -> Value {
        json!(
            (from..from + 50)
                .map(|i| json!({"fix_time": fix_time(0, i), "lat": 39.9, "lon": 116.4}))
                .collect::<Vec<_>>()
        )
    };
    let res = post(&app, &w.device.token, &batch(0)).await;
    assert_eq!((res.status, res.json["stored"].clone()), (200, json!(50)), "{}", res.describe());

    proxy.down();
    // Let the proxy cut the open connections (it looks every 20 ms).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let res = post(&app, &w.device.token, &batch(50)).await;
    common::assert_problem(&res, 503, "/api/v1/pings");
    let retry_after: u64 = res.header("retry-after").and_then(|v| v.parse().ok()).expect("Retry-After seconds");
    assert!(retry_after >= 1, "{}", res.describe());
    let osmand = app
        .send(app.client.get(app.url(&format!(
            "/osmand?id={}&lat=39.9&lon=116.4&timestamp={}",
            w.device.osmand_id,
            fix_time(1, 0)
        ))))
        .await;
    assert_eq!(osmand.status, 503, "{}", osmand.describe());
    assert!(osmand.header("retry-after").is_some(), "{}", osmand.describe());

    // The database is back; the phone retries the refused batch (and, being a phone, the first one).
    proxy.up();
    let deadline = Instant::now() + Duration::from_secs(30);
    let res = loop {
        let res = post(&app, &w.device.token, &batch(50)).await;
        if res.status == 200 || Instant::now() > deadline {
            break res;
        }
        assert_eq!(res.status, 503, "{}", res.describe());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The refused request may have committed before its connection was cut (the proxy notices its
    // switch within 20 ms): then the retry finds its pings there. Either way each is stored once.
    let (stored, duplicates) = (res.json["stored"].as_u64(), res.json["duplicates"].as_u64());
    assert_eq!(res.status, 200, "{}", res.describe());
    assert_eq!(stored.zip(duplicates).map(|(s, d)| s + d), Some(50), "{}", res.describe());
    let again = post(&app, &w.device.token, &batch(0)).await;
    assert_eq!((again.status, again.json["duplicates"].clone()), (200, json!(50)), "{}", again.describe());

    let (rows, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT fix_time) FROM pings WHERE device_id = $1 AND source = 'native'",
    )
    .bind(w.device.id)
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!((rows, distinct), (100, 100));
}
