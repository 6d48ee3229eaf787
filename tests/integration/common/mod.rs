//! Shared harness of the integration tests: a real HTTP server on a random port over the test's
//! own migrated `PostGIS` database (`#[sqlx::test]`), a small HTTP client, and a seeded world of two
//! orgs with territories, users of every role, devices, outlets, pings and audit entries.
//!
//! Seeding goes through the library; the behaviour under test always goes over HTTP.

#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use fieldvisit::config::Config;
use fieldvisit::db::outlets::OutletFields;
use fieldvisit::db::pings::Ping;
use fieldvisit::db::territories::NewTerritory;
use fieldvisit::domain::audit::AuditAction;
use fieldvisit::domain::outlet::{ChannelType, OutletStatus, TierPolicy};
use fieldvisit::{admin, db};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Body limit of the test server: small, so the 413 test is cheap.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Upper bound of any single HTTP call in the tests (no hangs).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The server configuration the tests run with.
pub fn test_config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_owned(),
        db_max_connections: 5,
        bind: Some("127.0.0.1:0".parse().expect("literal socket address")),
        body_limit_bytes: BODY_LIMIT,
        map_ui_dir: PathBuf::from("/nonexistent/fieldvisit-test-map-ui"),
        shutdown_grace_s: 5,
        derive_settle_s: 0,
        retention_interval_s: 0,
        photo_max_bytes: 2 * 1024 * 1024,
        ..Config::default()
    }
}

/// An HTTP client that never goes through a proxy and never waits forever.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(HTTP_TIMEOUT).build().expect("reqwest client")
}

/// A running server (in this test's runtime) and a client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub pool: PgPool,
    pub client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A response, read completely.
#[derive(Debug, Clone)]
pub struct Res {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub json: Value,
}

impl Res {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    /// `errors[].field` of a problem body.
    pub fn error_fields(&self) -> Vec<String> {
        self.json["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// `items[].id` of a paged list body (or of a plain array body).
    pub fn ids(&self) -> Vec<i64> {
        let items = self.json.get("items").unwrap_or(&self.json);
        items.as_array().map(|a| a.iter().filter_map(|i| i["id"].as_i64()).collect()).unwrap_or_default()
    }

    /// One line for assertion messages.
    pub fn describe(&self) -> String {
        let mut text = self.text.clone();
        if text.len() > 600 {
            text.truncate(600);
            text.push_str("...");
        }
        format!("HTTP {} [{}] {}", self.status, self.content_type(), text)
    }
}

impl TestApp {
    /// Starts the real router on 127.0.0.1 with a random port over `pool`.
    pub async fn spawn(pool: PgPool) -> TestApp {
        Self::spawn_with(pool, test_config("")).await
    }

    pub async fn spawn_with(pool: PgPool, config: Config) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        // Bound where the server would be: its default public URL (links, enrolment) is this address.
        let state = fieldvisit::http::AppState::new(pool.clone(), Config { bind: Some(addr), ..config });
        let server = tokio::spawn(async move {
            if let Err(e) = fieldvisit::http::serve(listener, state).await {
                eprintln!("test server stopped with an error: {e}");
            }
        });
        TestApp { addr, base: format!("http://{addr}"), pool, client: client(), server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request builder for `path`, with a bearer token when given.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, self.url(path));
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Sends a prepared request and reads the whole response.
    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Res {
        read(rb.send().await.expect("HTTP request to the test server failed")).await
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Res {
        let mut rb = self.request(method, path, token);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        self.send(rb).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Res {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Res {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Res {
        self.call(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Res {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Res {
        self.call(Method::DELETE, path, token, None).await
    }
}

/// Reads a reqwest response completely.
pub async fn read(res: reqwest::Response) -> Res {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.expect("read response body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Res { status, headers, text, json }
}

/// Asserts that `res` is an RFC 9457 problem with `status`: problem+json content type, the
/// members `type`, `title`, `status`, `detail`, `instance` and `request_id`, `instance` = `path` and the
/// `x-request-id` header equal to `request_id`.
pub fn assert_problem(res: &Res, status: u16, path: &str) {
    assert_eq!(res.status, status, "{path}: expected status {status}, got {}", res.describe());
    assert!(
        res.content_type().starts_with("application/problem+json"),
        "{path}: content-type must be application/problem+json, got {}",
        res.describe()
    );
    let p = &res.json;
    assert!(p.is_object(), "{path}: body is not a JSON object: {}", res.describe());
    for member in ["type", "title", "detail", "instance", "request_id"] {
        let v = p[member].as_str().unwrap_or_default();
        assert!(!v.trim().is_empty(), "{path}: problem member `{member}` missing or empty: {}", res.describe());
    }
    assert_eq!(p["status"].as_u64(), Some(u64::from(status)), "{path}: problem `status` member: {}", res.describe());
    assert_eq!(p["instance"].as_str(), Some(path), "{path}: problem `instance` member: {}", res.describe());
    let header = res.header("x-request-id");
    assert!(header.is_some_and(|h| !h.is_empty()), "{path}: no x-request-id header: {}", res.describe());
    assert_eq!(header, p["request_id"].as_str(), "{path}: x-request-id header != body.request_id");
}

/// A user of the seeded world and their bearer token.
#[derive(Debug, Clone)]
pub struct Who {
    pub id: i64,
    pub login: String,
    pub token: String,
    pub territory_id: Option<i64>,
}

/// A device of the seeded world and its bearer token.
#[derive(Debug, Clone)]
pub struct Dev {
    pub id: i64,
    pub rep_id: i64,
    pub token: String,
    /// The secret id the OsmAnd / Traccar Client app sends.
    pub osmand_id: String,
    pub owntracks_user: String,
    pub owntracks_password: String,
}

/// The day the seeded pings fall on.
pub const PING_DAY: &str = "2024-05-01";

/// Two orgs. Org A: territory tree `R` > `T1`, `T2`; admin (whole org), `admin_t1` (admin role scoped
/// to T1), manager/supervisor/auditor/rep/peer (another rep) scoped to T1, rep2 scoped to T2,
/// `revoked` (manager in T1 whose token was revoked), victims (reps in T1 and T2 whose tokens the
/// matrix reissues/revokes); devices for rep and rep2; outlets o1 in T1 and o2 in T2; tier `ZA` only
/// here. Org B: territory `TB`, `admin_b`, `rep_b`, `device_b`, outlet `ob`, tier `ZB`. Every org-B name and
/// code contains `bsecret`, so a leak is visible in any response body.
#[derive(Debug, Clone)]
pub struct World {
    pub org_a: i64,
    pub org_b: i64,
    pub root: i64,
    pub t1: i64,
    pub t2: i64,
    pub tb: i64,
    pub admin: Who,
    pub admin_t1: Who,
    pub manager: Who,
    pub supervisor: Who,
    pub auditor: Who,
    pub rep: Who,
    pub peer: Who,
    pub rep2: Who,
    pub revoked: Who,
    pub victim_t1: Who,
    pub victim_t2: Who,
    pub admin_b: Who,
    pub rep_b: Who,
    pub victim_b: Who,
    pub device: Dev,
    pub device2: Dev,
    pub device_b: Dev,
    pub o1: i64,
    pub o2: i64,
    pub ob: i64,
    /// Every user of org A with their territory.
    pub users_a: Vec<(i64, Option<i64>)>,
    /// Pings seeded per device on [`PING_DAY`].
    pub pings_per_device: usize,
}

/// The leak marker: present in every org-B name/code, absent from org A.
pub const ORG_B_MARKER: &str = "bsecret";

/// A `GeoJSON` square polygon `[lon0, lat0] .. [lon1, lat1]`.
pub fn square(lon0: f64, lat0: f64, lon1: f64, lat1: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]})
}

/// Points inside the seeded territories: (lat, lon).
pub const IN_T1: (f64, f64) = (39.95, 116.05);
pub const IN_T2: (f64, f64) = (39.95, 116.25);
pub const IN_TB: (f64, f64) = (31.25, 121.45);

async fn seed_territory(pool: &PgPool, org: i64, parent: Option<i64>, code: &str, level: &str, b: &Value) -> i64 {
    let boundary = b.to_string();
    db::territories::create(
        pool,
        org,
        &NewTerritory {
            parent_id: parent,
            code,
            name: code,
            level: level.parse().expect("a level"),
            boundary_geojson: Some(&boundary),
        },
    )
    .await
    .expect("seed territory")
    .id
}

async fn seed_user(pool: &PgPool, org: i64, login: &str, role: &str, territory_id: Option<i64>) -> Who {
    let issued = admin::create_user(pool, org, login, login, role.parse().expect("a role"), territory_id)
        .await
        .expect("seed user");
    Who { id: issued.user.id, login: login.to_owned(), token: issued.token, territory_id }
}

async fn seed_device(pool: &PgPool, org: i64, rep: &Who, name: &str) -> Dev {
    let c = admin::create_device(pool, org, rep.id, name).await.expect("seed device");
    Dev {
        id: c.device_id,
        rep_id: rep.id,
        token: c.token,
        osmand_id: c.osmand_id,
        owntracks_user: c.owntracks_user,
        owntracks_password: c.owntracks_password,
    }
}

pub fn outlet_fields(code: &str, tier: &str, (lat, lon): (f64, f64), territory_id: Option<i64>) -> OutletFields {
    OutletFields {
        code: code.to_owned(),
        name: format!("{code} name"),
        channel_type: ChannelType::BusinessHall,
        tier: tier.to_owned(),
        lat,
        lon,
        radius_m: Some(50.0),
        status: OutletStatus::Active,
        territory_id,
        address: None,
        attributes: json!({}),
        footprint: None,
    }
}

async fn seed_outlet(pool: &PgPool, org: i64, code: &str, at: (f64, f64), territory_id: i64) -> i64 {
    db::outlets::create(pool, org, &outlet_fields(code, "A", at, Some(territory_id))).await.expect("seed outlet")
}

pub fn ping_time(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 8, minute, 0).single().expect("valid time")
}

async fn seed_pings(pool: &PgPool, org: i64, dev: &Dev, (lat, lon): (f64, f64), n: usize) {
    let rows: Vec<Ping> = (0..n)
        .map(|i| Ping {
            device_id: dev.id,
            fix_time: ping_time(i as u32),
            lat,
            lon: lon + i as f64 * 1e-4,
            accuracy_m: Some(8.0),
            speed_mps: Some(0.5),
            heading_deg: None,
            altitude_m: None,
            battery_pct: Some(80.0),
            mock: false,
            source: "native".to_owned(),
        })
        .collect();
    let mut conn = pool.acquire().await.expect("connection");
    db::pings::insert(&mut conn, org, &rows).await.expect("seed pings");
}

async fn seed_tier(pool: &PgPool, org: i64, name: &str) {
    let p = TierPolicy {
        tier: name.to_owned(),
        required_visits: 1,
        cycle_days: 28,
        min_dwell_s: 60,
        default_radius_m: 80.0,
    };
    db::tiers::upsert(pool, org, &p).await.expect("seed tier");
}

/// An audit entry of `org` whose object id is `marker`.
async fn seed_audit(pool: &PgPool, org: i64, marker: &str) {
    db::audit::record(
        pool,
        org,
        db::audit::NewEntry {
            actor_user_id: None,
            actor_device_id: None,
            action: AuditAction::DemoLoad,
            object_type: "seed",
            object_id: Some(marker.to_owned()),
            request_id: None,
            detail: json!({}),
        },
    )
    .await
    .expect("seed audit entry");
}

impl World {
    pub async fn seed(pool: &PgPool) -> World {
        let org_a = admin::create_org(pool, "org-a", "Org A", "Asia/Shanghai").await.expect("org A").id;
        let org_b = admin::create_org(pool, "org-b", "Org bsecret", "Asia/Shanghai").await.expect("org B").id;

        let root = seed_territory(pool, org_a, None, "R", "city", &square(115.9, 39.8, 116.4, 40.1)).await;
        let t1 = seed_territory(pool, org_a, Some(root), "T1", "district", &square(116.0, 39.9, 116.1, 40.0)).await;
        let t2 = seed_territory(pool, org_a, Some(root), "T2", "district", &square(116.2, 39.9, 116.3, 40.0)).await;
        let tb = seed_territory(pool, org_b, None, "bsecret-terr", "city", &square(121.4, 31.2, 121.5, 31.3)).await;

        let admin = seed_user(pool, org_a, "admin", "admin", None).await;
        let admin_t1 = seed_user(pool, org_a, "admin-t1", "admin", Some(t1)).await;
        let manager = seed_user(pool, org_a, "manager", "manager", Some(t1)).await;
        let supervisor = seed_user(pool, org_a, "supervisor", "supervisor", Some(t1)).await;
        let auditor = seed_user(pool, org_a, "auditor", "auditor", Some(t1)).await;
        let rep = seed_user(pool, org_a, "rep", "rep", Some(t1)).await;
        let peer = seed_user(pool, org_a, "peer", "rep", Some(t1)).await;
        let rep2 = seed_user(pool, org_a, "rep2", "rep", Some(t2)).await;
        let revoked = seed_user(pool, org_a, "revoked", "manager", Some(t1)).await;
        db::tokens::revoke_for_user(pool, org_a, revoked.id).await.expect("revoke");
        let victim_t1 = seed_user(pool, org_a, "victim-t1", "rep", Some(t1)).await;
        let victim_t2 = seed_user(pool, org_a, "victim-t2", "rep", Some(t2)).await;

        let admin_b = seed_user(pool, org_b, "bsecret-admin", "admin", None).await;
        let rep_b = seed_user(pool, org_b, "bsecret-rep", "rep", Some(tb)).await;
        let victim_b = seed_user(pool, org_b, "bsecret-victim", "rep", Some(tb)).await;

        let device = seed_device(pool, org_a, &rep, "rep phone").await;
        let device2 = seed_device(pool, org_a, &rep2, "rep2 phone").await;
        let device_b = seed_device(pool, org_b, &rep_b, "bsecret phone").await;

        seed_tier(pool, org_a, "ZA").await;
        seed_tier(pool, org_b, "ZB").await;

        let o1 = seed_outlet(pool, org_a, "O1", IN_T1, t1).await;
        let o2 = seed_outlet(pool, org_a, "O2", IN_T2, t2).await;
        let ob = seed_outlet(pool, org_b, "bsecret-outlet", IN_TB, tb).await;

        let pings_per_device = 3;
        seed_pings(pool, org_a, &device, IN_T1, pings_per_device).await;
        seed_pings(pool, org_a, &device2, IN_T2, pings_per_device).await;
        seed_pings(pool, org_b, &device_b, IN_TB, pings_per_device).await;

        seed_audit(pool, org_a, "seed.org-a").await;
        seed_audit(pool, org_b, "seed.bsecret").await;

        let users_a =
            [&admin, &admin_t1, &manager, &supervisor, &auditor, &rep, &peer, &rep2, &revoked, &victim_t1, &victim_t2]
                .iter()
                .map(|w| (w.id, w.territory_id))
                .collect();

        World {
            org_a,
            org_b,
            root,
            t1,
            t2,
            tb,
            admin,
            admin_t1,
            manager,
            supervisor,
            auditor,
            rep,
            peer,
            rep2,
            revoked,
            victim_t1,
            victim_t2,
            admin_b,
            rep_b,
            victim_b,
            device,
            device2,
            device_b,
            o1,
            o2,
            ob,
            users_a,
            pings_per_device,
        }
    }
}

/// Row counts of every table a request could write to.
pub async fn row_counts(pool: &PgPool) -> Vec<(&'static str, i64)> {
    let mut out = Vec::new();
    for table in [
        "orgs",
        "territories",
        "users",
        "devices",
        "api_tokens",
        "tier_policies",
        "outlets",
        "outlet_locations",
        "outlet_status_changes",
        "audit_log",
    ] {
        let n: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(pool).await.expect("count rows");
        out.push((table, n));
    }
    // Token revocations change rows without adding any.
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL")
        .fetch_one(pool)
        .await
        .expect("count live tokens");
    out.push(("api_tokens (live)", live));
    out
}

/// `DATABASE_URL` of the test run with the database name replaced by `db` (for starting the real binary).
pub fn url_for_database(base: &str, db: &str) -> String {
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let query = base[path_start..].find('?').map_or("", |i| &base[path_start + i..]);
    format!("{}/{db}{query}", &base[..path_start])
}

/// The last 40 lines of a server log, for failure messages.
pub fn log_tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// `n` more devices of the world's rep in org A.
pub async fn seed_extra_devices(pool: &PgPool, w: &World, n: usize) -> Vec<Dev> {
    let rep = w.rep.clone();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(seed_device(pool, w.org_a, &rep, &format!("rep extra phone {i}")).await);
    }
    out
}

/// The Beijing demo token of `login` from the lines `fieldvisit-demo` prints.
pub fn demo_token(lines: &[String], login: &str) -> String {
    lines
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.len() == 4 && w[0] == fieldvisit_demo::BEIJING_SLUG && w[2] == login)
        .map_or_else(|| panic!("no demo token for {login}"), |w| w[3].to_owned())
}

/// 10:00 local time `days` days ago in the org's time zone, and that local day.
pub async fn ten_oclock(pool: &PgPool, org_id: i64, days: i32) -> (DateTime<Utc>, chrono::NaiveDate) {
    sqlx::query_as(
        "SELECT ((date_trunc('day', now() AT TIME ZONE timezone) - make_interval(days => $2) + interval '10 hours') AT TIME ZONE timezone),
                (date_trunc('day', now() AT TIME ZONE timezone) - make_interval(days => $2))::date
           FROM orgs WHERE id = $1",
    )
    .bind(org_id)
    .bind(days)
    .fetch_one(pool)
    .await
    .expect("local ten o'clock")
}

/// What a real reader sees in an export's workbook (openpyxl) and zipped CSVs (Python's zipfile
/// and csv): `{"xlsx": {sheet: [rows]}, "csv": {file: [rows]}}` (`tests/support/read_export.py`).
pub fn read_export(xlsx: &[u8], zip: &[u8]) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let (x, z) = (dir.path().join("audit.xlsx"), dir.path().join("audit-csv.zip"));
    std::fs::write(&x, xlsx).expect("write xlsx");
    std::fs::write(&z, zip).expect("write zip");
    let out = std::process::Command::new("python3")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/read_export.py"))
        .arg(&x)
        .arg(&z)
        .output()
        .expect("python3 runs (make test installs openpyxl)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("reader prints JSON")
}

/// Runs the browser test `map-ui/tests/{script}` (node, playwright-core, Debian's chromium) with
/// `envs`, killed after `limit`; asserts it exited 0 with `checks` lines `ok ...` (one per check)
/// and returns its output. The browser tests share this: each prints `ok`/`FAIL` per check.
pub async fn run_browser_test(script: &str, envs: &[(&str, String)], limit: Duration, checks: usize) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let run = tokio::process::Command::new("node")
        .arg(format!("tests/{script}"))
        .current_dir(root.join("map-ui"))
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("FV_SCREENSHOTS", root.join("target/map-ui-screenshots"))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(limit, run)
        .await
        .unwrap_or_else(|_| panic!("{script} ends within {limit:?}"))
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ok ")).count(), checks, "{stdout}");
    stdout
}
