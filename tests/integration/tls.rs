//! HTTPS served by the server itself: a self-signed certificate made at test time (rcgen) for
//! `localhost` and 127.0.0.1, the real router over TLS (HTTP/2 and HTTP/1.1 by ALPN), plain HTTP
//! refused on the TLS port, the plain-HTTP redirect listener (308 to `FV_PUBLIC_URL`, whatever
//! the Host header says), and the start refused when the TLS settings are half set or unreadable.

use crate::common::{self, HTTP_TIMEOUT, TestApp, assert_problem, test_config};
use base64::Engine as _;
use rcgen::PublicKeyData as _;
use sha2::{Digest as _, Sha256};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
struct SelfSigned {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    cert_pem: String,
}

impl SelfSigned {
    fn new() -> SelfSigned {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("self-signed certificate");
        SelfSigned::from(&made)
    }

    /// `made` written as PEM files.
    fn from(made: &rcgen::CertifiedKey<rcgen::KeyPair>) -> SelfSigned {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let cert_pem = made.cert.pem();
        std::fs::write(&cert, &cert_pem).expect("write cert");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
        SelfSigned { _dir: dir, cert, key, cert_pem }
    }

    /// A client that trusts only this certificate and reaches `localhost` at `addr`.
    fn client(&self, addr: SocketAddr) -> reqwest::ClientBuilder {
        let root = reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).expect("PEM certificate");
        reqwest::Client::builder()
            .no_proxy()
            .timeout(HTTP_TIMEOUT)
            .add_root_certificate(root)
            .resolve("localhost", addr)
            .redirect(reqwest::redirect::Policy::none())
    }
}

/// The test server over TLS with `cert`; `base` is `https://localhost:PORT` and its client trusts
/// the certificate.
async fn spawn_tls(pool: PgPool, cert: &SelfSigned, config: fieldvisit::config::Config) -> TestApp {
    let config =
        fieldvisit::config::Config { tls_cert: Some(cert.cert.clone()), tls_key: Some(cert.key.clone()), ..config };
    let mut app = TestApp::spawn_with(pool, config).await;
    app.base = format!("https://localhost:{}", app.addr.port());
    app.client = cert.client(app.addr).build().expect("TLS client");
    app
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn https_serves_the_api_and_the_map_landing(pool: PgPool) {
    let cert = SelfSigned::new();
    // The test client is a trusted proxy here, so links follow the host it names.
    let trusted = vec!["127.0.0.1/32".parse().expect("net")];
    let app = spawn_tls(pool, &cert, fieldvisit::config::Config { trusted_proxies: trusted, ..test_config("") }).await;

    let health = app.get("/healthz", None).await;
    assert_eq!(health.status, 200, "{}", health.describe());
    let me = app.get("/api/v1/me", None).await;
    assert_problem(&me, 401, "/api/v1/me");
    let landing = app.get("/", None).await;
    assert_eq!(landing.status, 200, "{}", landing.describe());
    assert!(landing.content_type().starts_with("text/html"), "{}", landing.describe());

    // ALPN: HTTP/2 for a client that offers it, HTTP/1.1 for one that does not.
    let res = app.client.get(app.url("/healthz")).send().await.expect("h2 request");
    assert_eq!((res.status().as_u16(), res.version()), (200, reqwest::Version::HTTP_2));
    let h1 = cert.client(app.addr).http1_only().build().expect("client");
    let res = h1.get(app.url("/healthz")).send().await.expect("http/1.1 request");
    assert_eq!((res.status().as_u16(), res.version()), (200, reqwest::Version::HTTP_11));

    // Over TLS every response says HSTS, besides the headers of every listener.
    assert!(health.header("strict-transport-security").is_some_and(|v| v.starts_with("max-age=")), "{health:?}");
    crate::connections::assert_security_headers(&health, "TLS");

    // Absolute links point back over HTTPS to the host the (trusted) client named, on either
    // protocol (HTTP/2 names it in `:authority`, not in a Host header).
    let expected = format!("https://localhost:{}/ogc", app.addr.port());
    for client in [&app.client, &h1] {
        let res = client.get(app.url("/ogc")).send().await.expect("OGC landing");
        let version = res.version();
        let body: serde_json::Value = res.json().await.expect("JSON");
        assert_eq!(body["links"][0]["href"], expected.as_str(), "{version:?}: {body}");
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_tls_port_refuses_plain_http_and_failed_handshakes_do_not_stop_it(pool: PgPool) {
    let cert = SelfSigned::new();
    let app = spawn_tls(pool, &cert, test_config("")).await;

    let plain = common::client().get(format!("http://{}/healthz", app.addr)).send().await;
    assert!(plain.is_err(), "plain HTTP on the TLS port was answered: {plain:?}");
    // A client that does not trust the certificate fails its handshake.
    let untrusting = reqwest::Client::builder().no_proxy().timeout(HTTP_TIMEOUT).resolve("localhost", app.addr);
    let res = untrusting.build().expect("client").get(app.url("/healthz")).send().await;
    assert!(res.is_err(), "an untrusted certificate was accepted: {res:?}");

    for _ in 0..3 {
        let health = app.get("/healthz", None).await;
        assert_eq!(health.status, 200, "{}", health.describe());
    }
}

#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_redirect_listener_sends_every_request_to_the_public_https_url(pool: PgPool) {
    let cert = SelfSigned::new();
    let redirect: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
    let config = fieldvisit::config::Config {
        tls_redirect_bind: Some(redirect),
        public_url: Some("https://fv.example.test:8443".to_owned()),
        ..test_config("")
    };
    let app = spawn_tls(pool, &cert, config).await;
    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let url = format!("http://{redirect}/some/path?q=1");
    let mut answered = None;
    for _ in 0..50 {
        // The listener is bound when `serve` starts, a moment after the spawn.
        match plain.get(&url).header("host", "evil.example").send().await {
            Ok(res) => {
                answered = Some(res);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let res = answered.expect("the redirect listener answers");
    assert_eq!(res.status().as_u16(), 308);
    assert_eq!(res.headers()["location"], "https://fv.example.test:8443/some/path?q=1");

    let res = plain.post(format!("http://{redirect}/api/v1/pings")).body("[]").send().await.expect("answered");
    assert_eq!(res.status().as_u16(), 308, "every method is redirected (308 keeps it)");
    assert_eq!(res.headers()["location"], "https://fv.example.test:8443/api/v1/pings");
    // The TLS port serves meanwhile.
    assert_eq!(app.get("/healthz", None).await.status, 200);
}

/// `fieldvisit serve` with no database and only the given settings from the environment.
fn serve_with(env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fieldvisit"));
    for (key, _) in std::env::vars() {
        if key.starts_with("FV_") || key == "BIND" || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    let out = cmd.arg("serve").envs(env.iter().copied()).output().expect("fieldvisit runs");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_certificate_without_its_key_or_a_bad_file_stops_the_start() {
    let cert = SelfSigned::new();
    let (cert_path, key_path) = (cert.cert.to_string_lossy(), cert.key.to_string_lossy());
    for env in [[("FV_TLS_CERT", &*cert_path)], [("FV_TLS_KEY", &*key_path)]] {
        let (ok, err) = serve_with(&env);
        assert!(!ok, "{env:?} started");
        assert!(err.contains("FV_TLS_CERT") && err.contains("FV_TLS_KEY"), "{env:?}: {err}");
    }

    // Both set, but the certificate file holds no certificate: the start fails naming it.
    let (ok, err) = serve_with(&[("FV_TLS_CERT", &*key_path), ("FV_TLS_KEY", &*key_path)]);
    assert!(!ok);
    assert!(err.contains("FV_TLS_CERT") && err.contains(&*key_path), "{err}");

    // The redirect listener needs an https:// FV_PUBLIC_URL to redirect to.
    let (ok, err) = serve_with(&[("FV_TLS_REDIRECT_BIND", "127.0.0.1:9"), ("FV_PUBLIC_URL", "http://fv.example")]);
    assert!(!ok);
    assert!(err.contains("FV_TLS_REDIRECT_BIND") && err.contains("FV_PUBLIC_URL"), "{err}");
}

/// `map-ui/tests/app-https.mjs`: Chromium as a phone opens the reps' app from its enrolment link
/// over HTTPS served here, trusting the certificate by its key, and gets a secure context (the
/// service worker and geolocation work). Needs `map-ui/dist` and `/usr/bin/chromium` (`make test`
/// provides both).
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn the_reps_app_loads_over_https_as_a_secure_origin(pool: PgPool) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dist = root.join("map-ui/dist");
    assert!(dist.join("app/index.html").is_file(), "map-ui is not built: run scripts/map-ui.sh (make test does)");
    let w = common::World::seed(&pool).await;
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("self-signed certificate");
    let spki =
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(made.signing_key.subject_public_key_info()));
    let cert = SelfSigned::from(&made);
    let config = fieldvisit::config::Config { map_ui_dir: dist, ..test_config("unused") };
    let app = spawn_tls(pool, &cert, config).await;
    let res = app
        .post(
            &format!("/api/v1/devices/{}/enrolments", w.device.id),
            Some(&w.admin.token),
            &serde_json::json!({"trackers": false}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.describe());
    let code = res.json["app"]["text"].as_str().and_then(|l| l.split_once("#enrol=")).expect("an enrolment link").1;

    common::run_browser_test(
        "app-https.mjs",
        &[
            ("FV_BASE_URL", app.base.clone()),
            ("FV_ENROL_URL", format!("{}/app/#enrol={code}", app.base)),
            ("FV_SPKI", spki),
            ("FV_REP_NAME", w.rep.login.clone()),
        ],
        std::time::Duration::from_secs(120),
        3,
    )
    .await;
}

/// Issue 25 item 2 over TLS: a client that never completes its handshake, or completes it and
/// then sends half its headers, a stalled body or nothing more, is closed.
#[sqlx::test(migrator = "fieldvisit::db::MIGRATOR")]
async fn stalled_tls_connections_are_closed(pool: PgPool) {
    use crate::connections::stalled_bodies_get_408;
    use crate::connections::{half_headers_are_cut, idle_keep_alive_is_closed, read_until_closed, short_limits};
    let cert = SelfSigned::new();
    let config = fieldvisit::config::Config { tls_handshake_timeout_s: 1, ..short_limits() };
    let app = spawn_tls(pool, &cert, config).await;

    // TCP connected, no ClientHello.
    let mut silent = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    read_until_closed(&mut silent).await;

    let root = rustls_root(&cert);
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(root));
    let tls = || async {
        let tcp = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
        connector.connect(name, tcp).await.expect("TLS handshake")
    };
    half_headers_are_cut(tls().await).await;
    stalled_bodies_get_408(tls().await, "/api/v1/enrolments/redeem").await;
    idle_keep_alive_is_closed(tls().await).await;
    assert_eq!(app.get("/healthz", None).await.status, 200);
}

/// A rustls client trusting only `cert`, speaking HTTP/1.1.
fn rustls_root(cert: &SelfSigned) -> tokio_rustls::rustls::ClientConfig {
    use rustls_pki_types::pem::PemObject as _;
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    let der = rustls_pki_types::CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).expect("PEM");
    roots.add(der).expect("root");
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}
