//! Runtime configuration: every setting is a flag with an environment variable and a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Settings shared by every command. `fieldvisit --help` lists them with their env vars.
#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    /// PostgreSQL (with PostGIS) connection URL.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true, default_value = "")]
    pub database_url: String,

    /// A read-only PostgreSQL URL (a streaming standby, or haproxy's read port in front of the
    /// standbys) that serves layers, tiles, coverage, compliance and the assessment bulletin of
    /// `fieldvisit serve`; unset: everything reads the primary. Reads go back to the primary
    /// while the standby lags more than `FV_READ_MAX_STALENESS_MS` or cannot be reached.
    #[arg(long, env = "FV_READ_DATABASE_URL", global = true, hide_env_values = true, value_parser = parse_database_url)]
    pub read_database_url: Option<String>,

    /// Most milliseconds a read served by `FV_READ_DATABASE_URL` may lag the primary.
    #[arg(long, env = "FV_READ_MAX_STALENESS_MS", global = true, default_value_t = 5_000)]
    pub read_max_staleness_ms: u64,

    /// Maximum database connections of the request pool of `fieldvisit serve` (the other commands:
    /// of their one pool). Background work has its own pool (`FV_DB_BACKGROUND_CONNECTIONS`).
    #[arg(long, env = "FV_DB_MAX_CONNECTIONS", global = true, default_value_t = 16)]
    pub db_max_connections: u32,

    /// Address the HTTP server listens on [default: 127.0.0.1:8080].
    #[arg(long, env = "FV_BIND", global = true)]
    pub bind: Option<SocketAddr>,

    /// The listen address under its old name `BIND` (deprecated: read only when `FV_BIND` and
    /// `--bind` are absent, with a warning at start).
    #[arg(long = "legacy-bind", env = "BIND", global = true, hide = true)]
    pub legacy_bind: Option<SocketAddr>,

    /// The server's address as phones reach it, e.g. `https://fv.example.com`: enrolment links,
    /// their QR codes and the tracker apps' settings are built from it, never from a request's
    /// Host header [default: http:// and the listen address].
    #[arg(long, env = "FV_PUBLIC_URL", global = true, value_parser = parse_public_url)]
    pub public_url: Option<String>,

    /// How long a device's enrolment link stays valid, hours.
    #[arg(long, env = "FV_ENROLMENT_TTL_H", global = true, default_value_t = 24,
          value_parser = clap::value_parser!(u32).range(1..=720))]
    pub enrolment_ttl_h: u32,

    /// Largest accepted request body, bytes (uploads and batches above it get 413).
    #[arg(long, env = "FV_BODY_LIMIT_BYTES", global = true, default_value_t = 32 * 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Folder with the built map UI served at `/`.
    #[arg(long, env = "FV_MAP_UI_DIR", global = true, default_value = "map-ui/dist")]
    pub map_ui_dir: PathBuf,

    /// Basemap style URL the map UI loads, for deployments with a tile server (default: offline basemap).
    #[arg(long, env = "FV_BASEMAP_STYLE_URL", global = true)]
    pub basemap_style_url: Option<String>,

    /// A street basemap of the deployment's region as one `PMTiles` file (Protomaps basemap schema;
    /// see docs/operations.md), served at `/basemap/streets.pmtiles` with range requests and drawn
    /// with the map UI's bundled style: no tile server needed. Below `FV_BASEMAP_STYLE_URL`.
    #[arg(long, env = "FV_BASEMAP_PMTILES", global = true)]
    pub basemap_pmtiles: Option<PathBuf>,

    /// A raster tile URL template (`{z}`, `{x}`, `{y}`), e.g. Tianditu's, drawn when neither
    /// `FV_BASEMAP_STYLE_URL` nor `FV_BASEMAP_PMTILES` is set; its host is allowed by the map's
    /// Content-Security-Policy.
    #[arg(long, env = "FV_BASEMAP_XYZ", global = true)]
    pub basemap_xyz: Option<String>,

    /// Attribution shown under the `FV_BASEMAP_XYZ` tiles (their provider's terms usually ask for it).
    #[arg(long, env = "FV_BASEMAP_ATTRIBUTION", global = true)]
    pub basemap_attribution: Option<String>,

    /// Log format. Levels come from `RUST_LOG` (default `info,sqlx=warn`).
    #[arg(long, env = "FV_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Most pings waiting to be written; beyond it ingest answers 503 + Retry-After.
    #[arg(long, env = "FV_INGEST_QUEUE_PINGS", global = true, default_value_t = 200_000)]
    pub ingest_queue_pings: usize,

    /// Most pings written in one transaction (group commit).
    #[arg(long, env = "FV_INGEST_BATCH_PINGS", global = true, default_value_t = 10_000)]
    pub ingest_batch_pings: usize,

    /// Ping writer tasks (transactions in flight at once).
    #[arg(long, env = "FV_INGEST_WRITERS", global = true, default_value_t = 2)]
    pub ingest_writers: usize,

    /// Seconds an OsmAnd device stays resolved from its id (saves a database round trip per ping;
    /// a change of the org's ping settings or a position request reaches the phone after at most
    /// this long; deactivation and rotation take effect at once regardless). 0 = not kept.
    #[arg(long, env = "FV_OSMAND_CACHE_S", global = true, default_value_t = 2)]
    pub osmand_cache_s: u64,

    /// Proxies (addresses or CIDR networks, comma-separated) whose `X-Forwarded-For`, `-Proto`
    /// and `-Host` are believed; from any other peer they are ignored and the peer is the client
    /// (rate limits key on it) [default: none].
    #[arg(long, env = "FV_TRUSTED_PROXIES", global = true, value_delimiter = ',',
          value_parser = crate::http::client::parse_trusted_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Bearer token `GET /metrics` asks for (unset: open; then keep /metrics off the public network).
    #[arg(long, env = "FV_METRICS_TOKEN", global = true, hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Also serve the OsmAnd / Traccar Client protocol at `/` on this address (Traccar uses port 5055).
    #[arg(long, env = "FV_OSMAND_BIND", global = true)]
    pub osmand_bind: Option<SocketAddr>,

    /// Serve HTTPS: the server's certificate chain, PEM (leaf first). Goes with `FV_TLS_KEY`.
    #[arg(long, env = "FV_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,

    /// Serve HTTPS: the private key of `FV_TLS_CERT`, PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "FV_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,

    /// Also listen on this address for plain HTTP and answer every request with a 308 redirect
    /// to the same path and query under `FV_PUBLIC_URL` (which must be https://), never under
    /// the request's Host header.
    #[arg(long, env = "FV_TLS_REDIRECT_BIND", global = true)]
    pub tls_redirect_bind: Option<SocketAddr>,

    /// Seconds to let in-flight requests finish after SIGTERM/Ctrl-C.
    #[arg(long, env = "FV_SHUTDOWN_GRACE_S", global = true, default_value_t = 20)]
    pub shutdown_grace_s: u64,

    /// Run the visit derivation worker in this instance (`false`: ingestion and reads only; some
    /// other instance derives).
    #[arg(long, env = "FV_DERIVE_VISITS", global = true, default_value_t = true, action = clap::ArgAction::Set)]
    pub derive_visits: bool,

    /// Seconds a rep-day's first new ping waits before the rep-day is derived, so that a phone
    /// posting every few seconds costs one derivation per this period, not one per request.
    #[arg(long, env = "FV_DERIVE_SETTLE_S", global = true, default_value_t = 30)]
    pub derive_settle_s: u32,

    /// Local days of counted visits each instance keeps in memory per org, for outlet statuses on
    /// maps and tiles without a visit read per outlet; periods reaching further back (and 0) are
    /// read from the database. About 8 bytes per counted visit.
    #[arg(long, env = "FV_VISIT_LEDGER_DAYS", global = true, default_value_t = 400)]
    pub visit_ledger_days: u32,

    /// Seconds between raw-ping retention passes (each org's `settings.pings.retention_days`);
    /// 0 = no passes in this instance (run `fieldvisit retention` from cron instead).
    #[arg(long, env = "FV_RETENTION_INTERVAL_S", global = true, default_value_t = 3600)]
    pub retention_interval_s: u64,

    /// Largest accepted photo upload, bytes (larger ones get 413).
    #[arg(long, env = "FV_PHOTO_MAX_BYTES", global = true, default_value_t = 15 * 1024 * 1024)]
    pub photo_max_bytes: usize,

    /// Program that decodes HEIC photos for their thumbnail and perceptual hash, called as
    /// `PROGRAM --quiet in.heic out.png` (libheif's `heif-convert`, Debian `libheif-examples`);
    /// `none` = keep HEIC photos without them.
    #[arg(long, env = "FV_HEIC_DECODER", global = true, default_value = "heif-convert")]
    pub heic_decoder: String,

    /// Font for the PDF summary's text outside Latin-1 (Chinese names): an OpenType/TrueType file
    /// or collection, of which only the glyphs used are embedded. Missing: such text prints as `?`
    /// (logged once). Debian `fonts-noto-cjk` by default (`scripts/server-tools.sh` installs it).
    #[arg(long, env = "FV_PDF_FONT", global = true, default_value = crate::export::pdf::DEFAULT_FONT)]
    pub pdf_font: PathBuf,

    // Issue 25, items 1 and 6 (ingest): the ingest queue bounded in bytes.
    /// Most bytes of pings waiting to be written (each ping's estimated memory, its attributes
    /// included); beyond it ingest answers 503 + Retry-After, as beyond `FV_INGEST_QUEUE_PINGS`.
    #[arg(long, env = "FV_INGEST_QUEUE_BYTES", global = true, default_value_t = 256 * 1024 * 1024)]
    pub ingest_queue_bytes: usize,

    // Issue 25, item 5: the photo pixel budget and the HEIC decoder child's limits.
    /// Most pixels (width x height) a photo may have, read from its header before it is decoded:
    /// a larger one is refused with 422 (JPEG, PNG and every image a HEIC file declares).
    #[arg(long, env = "FV_PHOTO_MAX_PIXELS", global = true, default_value_t = crate::imaging::DEFAULT_MAX_PIXELS)]
    pub photo_max_pixels: u64,

    /// Address space the HEIC decoder child may use, bytes (`prlimit --as`; 0 = unlimited).
    #[arg(long, env = "FV_HEIC_DECODER_MAX_BYTES", global = true, default_value_t = 2 << 30)]
    pub heic_decoder_max_bytes: u64,

    /// CPU seconds the HEIC decoder child may use (`prlimit --cpu`; 0 = unlimited).
    #[arg(long, env = "FV_HEIC_DECODER_CPU_S", global = true, default_value_t = 20)]
    pub heic_decoder_cpu_s: u64,

    /// Wall-clock seconds after which the HEIC decoder child is killed.
    #[arg(long, env = "FV_HEIC_DECODER_TIMEOUT_S", global = true, default_value_t = 30)]
    pub heic_decoder_timeout_s: u64,

    // Issue 25 item 6: rate and concurrency limits (docs/operations.md, "Rate and concurrency limits").
    /// Requests per minute each credential (bearer token, OsmAnd id, OwnTracks user and password)
    /// may sustain on this instance; over it, 429 with `Retry-After`. 0 = no limit.
    #[arg(long, env = "FV_RATE_CREDENTIAL_PER_MIN", global = true, default_value_t = 1200)]
    pub rate_credential_per_min: u32,

    /// Requests a credential may send at once before `FV_RATE_CREDENTIAL_PER_MIN` applies: a phone
    /// flushing the outbox of a day offline (about 6,000 fixes at one per 5 s over 8 hours).
    #[arg(long, env = "FV_RATE_CREDENTIAL_BURST", global = true, default_value_t = 6000)]
    pub rate_credential_burst: u32,

    /// Failed authentications per minute (401, unknown OsmAnd id or enrolment code, unknown path
    /// without a credential) one client address may cause on this instance; past it they are
    /// answered 429 with `Retry-After`. Valid credentials from the address are never refused by
    /// it (carrier NAT). 0 = no limit.
    #[arg(long, env = "FV_RATE_UNAUTHENTICATED_PER_MIN", global = true, default_value_t = 120)]
    pub rate_unauthenticated_per_min: u32,

    /// Failed authentications one client address may cause at once before
    /// `FV_RATE_UNAUTHENTICATED_PER_MIN` applies.
    #[arg(long, env = "FV_RATE_UNAUTHENTICATED_BURST", global = true, default_value_t = 1200)]
    pub rate_unauthenticated_burst: u32,

    /// How long a refusal for an address past `FV_RATE_UNAUTHENTICATED_PER_MIN` is held before it
    /// is answered (its body unread): a client that retries at once slows to one attempt per hold
    /// per connection, which bounds what a flood of failing requests costs the instance. At most
    /// 1,024 refusals are held at once; others are answered at once. 0 = answer at once.
    #[arg(long, env = "FV_RATE_UNAUTHENTICATED_HOLD_MS", global = true, default_value_t = 1000)]
    pub rate_unauthenticated_hold_ms: u64,

    /// Open `/live` streams per user (or device) on this instance; one more gets 429. 0 = no limit.
    #[arg(long, env = "FV_LIVE_STREAMS_PER_USER", global = true, default_value_t = 4)]
    pub live_streams_per_user: u32,

    /// Exports queued or running at once per user; one more gets 409. 0 = no limit.
    #[arg(long, env = "FV_EXPORTS_PER_USER", global = true, default_value_t = 2)]
    pub exports_per_user: u32,

    /// Exports queued or running at once per org; one more gets 409. 0 = no limit.
    #[arg(long, env = "FV_EXPORTS_PER_ORG", global = true, default_value_t = 8)]
    pub exports_per_org: u32,

    // Issue 25, item 2: connection and request timeouts of every listener.
    /// Seconds a TLS client may take to complete its handshake before the connection is closed.
    #[arg(long, env = "FV_TLS_HANDSHAKE_TIMEOUT_S", global = true, default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub tls_handshake_timeout_s: u64,

    /// Seconds a client may take to send a request's headers (HTTP/1.1); the connection is closed
    /// without an answer when it does not. The timer also runs while a kept-alive connection waits
    /// for its next request, so it bounds idle HTTP/1.1 connections too.
    #[arg(long, env = "FV_HEADER_READ_TIMEOUT_S", global = true, default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_s: u64,

    /// Seconds a request body may go without a byte arriving; then the request is answered 408
    /// and the connection closed.
    #[arg(long, env = "FV_BODY_IDLE_TIMEOUT_S", global = true, default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub body_idle_timeout_s: u64,

    /// Seconds from a request's headers to its answer's headers; beyond it the answer is 503.
    /// Uploads (imports, photos, GPX, export verification) and visit recomputation have no such
    /// deadline (their bodies still have `FV_BODY_IDLE_TIMEOUT_S`); streamed answers (live
    /// positions, downloads) are not cut once their headers are sent.
    #[arg(long, env = "FV_REQUEST_TIMEOUT_S", global = true, default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_s: u64,

    /// Seconds a connection may stay open without a new request (HTTP/1.1 and HTTP/2); then it is
    /// closed once its requests in flight are answered.
    #[arg(long, env = "FV_KEEP_ALIVE_IDLE_S", global = true, default_value_t = 75,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_alive_idle_s: u64,

    /// Most requests in flight at once on one HTTP/2 connection.
    #[arg(long, env = "FV_HTTP2_MAX_STREAMS", global = true, default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_streams: u32,

    // Issue 25, item 13: statement timeout of request queries, and the pool of background work.
    /// Milliseconds a database statement run for an HTTP request may take (PostgreSQL
    /// `statement_timeout` on the request pool's connections); a request whose query is cancelled
    /// is answered 503 + `Retry-After`. 0 = no limit. Background work (exports, derivation,
    /// recomputation, imports, retention, listeners) runs on its own pool without it.
    #[arg(long, env = "FV_STATEMENT_TIMEOUT_MS", global = true, default_value_t = 10_000)]
    pub statement_timeout_ms: u64,

    /// Connections of the background pool (exports, visit derivation and recomputation, imports,
    /// retention, the outlet index and position relay), kept apart from the request pool
    /// of `fieldvisit serve` (`FV_DB_MAX_CONNECTIONS`).
    #[arg(long, env = "FV_DB_BACKGROUND_CONNECTIONS", global = true, default_value_t = 6,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub db_background_connections: u32,
}

/// How log lines are written to stderr.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Where the server listens when neither `FV_BIND`, `--bind` nor the deprecated `BIND` says.
pub const DEFAULT_BIND: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);

impl Default for Config {
    /// The defaults `fieldvisit --help` shows (environment ignored), with no database URL: what
    /// tests start from. Read from the flag definitions above, so each default is written once.
    fn default() -> Self {
        use clap::{Args, FromArgMatches};
        let command = Config::augment_args(clap::Command::new("fieldvisit")).mut_args(|arg| arg.env(None));
        let matches = command.try_get_matches_from(["fieldvisit"]).expect("the defaults parse");
        Config::from_arg_matches(&matches).expect("the defaults are valid")
    }
}

/// A PostgreSQL connection URL sqlx can use (checked at start, not at the first read).
fn parse_database_url(text: &str) -> Result<String, String> {
    text.parse::<sqlx::postgres::PgConnectOptions>().map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    Ok(text.to_owned())
}

/// An http(s) URL with a host and no query or fragment, without its trailing slash.
fn parse_public_url(text: &str) -> Result<String, String> {
    let t = text.trim().trim_end_matches('/');
    let rest = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))
        .ok_or_else(|| format!("`{text}` must start with https:// or http://"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ']) {
        return Err(format!("`{text}` must be a URL with a host and no query, fragment or spaces"));
    }
    Ok(t.to_owned())
}

impl Config {
    /// The URL phones reach this server at (see `public_url`); by default the listen address,
    /// https:// when this server serves TLS.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("{}://{}", self.scheme(), self.listen_addr()))
    }

    /// `https` when this server serves TLS itself, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() { "https" } else { "http" }
    }

    /// The certificate chain and key files to serve TLS with (`None`: plain HTTP). Refuses one
    /// without the other, naming both settings.
    pub fn tls_files(&self) -> Result<Option<(&Path, &Path)>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            (Some(_), None) => Err("FV_TLS_CERT (--tls-cert) is set without FV_TLS_KEY (--tls-key): \
                                    set both to serve HTTPS, or neither"
                .to_owned()),
            (None, Some(_)) => Err("FV_TLS_KEY (--tls-key) is set without FV_TLS_CERT (--tls-cert): \
                                    set both to serve HTTPS, or neither"
                .to_owned()),
        }
    }

    /// Where the plain-HTTP redirect listener sends requests: `FV_PUBLIC_URL`, which must then be
    /// an https:// URL (a redirect to http:// would loop or downgrade). `None` without the listener.
    pub fn redirect_target(&self) -> Result<Option<String>, String> {
        let Some(addr) = self.tls_redirect_bind else { return Ok(None) };
        match &self.public_url {
            Some(url) if url.starts_with("https://") => Ok(Some(url.clone())),
            Some(url) => Err(format!(
                "FV_TLS_REDIRECT_BIND ({addr}) redirects to FV_PUBLIC_URL, which must start with https:// (it is {url})"
            )),
            None => Err(format!(
                "FV_TLS_REDIRECT_BIND ({addr}) redirects to FV_PUBLIC_URL, which is not set: set it to the https:// \
                 URL browsers and phones reach this server at"
            )),
        }
    }

    /// Every check of the serving settings that clap cannot express (`fieldvisit serve` runs it
    /// before anything else, so a bad combination stops the start with one clear message).
    pub fn check_serving(&self) -> Result<(), String> {
        self.tls_files()?;
        self.redirect_target()?;
        Ok(())
    }

    /// The address to listen on: `--bind`/`FV_BIND`, else the deprecated `BIND`, else 127.0.0.1:8080.
    pub fn listen_addr(&self) -> SocketAddr {
        self.bind.or(self.legacy_bind).unwrap_or(DEFAULT_BIND)
    }

    /// A warning to log at start when a deprecated setting is in use.
    pub fn deprecation_warning(&self) -> Option<&'static str> {
        (self.bind.is_none() && self.legacy_bind.is_some())
            .then_some("BIND is deprecated and will be removed; set FV_BIND (or --bind) instead")
    }

    /// The ingest writer's settings.
    pub fn ingest(&self) -> crate::ingest::IngestConfig {
        crate::ingest::IngestConfig {
            queue_pings: self.ingest_queue_pings.max(1),
            queue_bytes: self.ingest_queue_bytes.max(1),
            batch_pings: self.ingest_batch_pings.max(1),
            writers: self.ingest_writers.max(1),
            osmand_cache: std::time::Duration::from_secs(self.osmand_cache_s),
            ..crate::ingest::IngestConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_those_of_the_flags() {
        let c = Config::default();
        assert_eq!(c.listen_addr(), DEFAULT_BIND);
        assert_eq!(c.db_max_connections, 16);
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.derive_visits);
        assert_eq!(c.heic_decoder, "heif-convert");
        assert_eq!(c.pdf_font, Path::new(crate::export::pdf::DEFAULT_FONT));
        assert!(c.deprecation_warning().is_none());
    }

    #[test]
    fn the_old_bind_is_read_only_when_the_new_one_is_absent() {
        let old: SocketAddr = "0.0.0.0:9000".parse().expect("address");
        let new: SocketAddr = "127.0.0.1:9001".parse().expect("address");
        let c = Config { legacy_bind: Some(old), ..Config::default() };
        assert_eq!(c.listen_addr(), old);
        assert!(c.deprecation_warning().is_some());
        let c = Config { bind: Some(new), legacy_bind: Some(old), ..Config::default() };
        assert_eq!(c.listen_addr(), new);
        assert!(c.deprecation_warning().is_none());
    }

    #[test]
    fn tls_takes_both_files_or_neither() {
        let c = Config::default();
        assert_eq!(c.tls_files(), Ok(None));
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
        let both = Config { tls_cert: Some("c.pem".into()), tls_key: Some("k.pem".into()), ..Config::default() };
        assert!(both.tls_files().is_ok_and(|f| f.is_some()));
        assert_eq!(both.public_url(), "https://127.0.0.1:8080");
        for one in [
            Config { tls_cert: Some("c.pem".into()), ..Config::default() },
            Config { tls_key: Some("k.pem".into()), ..Config::default() },
        ] {
            let err = one.check_serving().expect_err("one file alone is refused");
            assert!(err.contains("FV_TLS_CERT") && err.contains("FV_TLS_KEY"), "{err}");
        }
    }

    #[test]
    fn the_redirect_needs_an_https_public_url() {
        let addr = Some("127.0.0.1:8081".parse().expect("address"));
        let c = Config { tls_redirect_bind: addr, ..Config::default() };
        assert!(c.redirect_target().is_err_and(|e| e.contains("FV_PUBLIC_URL")));
        let c = Config { public_url: Some("http://fv.example".into()), ..c };
        assert!(c.redirect_target().is_err_and(|e| e.contains("https://")));
        let c = Config { public_url: Some("https://fv.example".into()), ..c };
        assert_eq!(c.redirect_target(), Ok(Some("https://fv.example".to_owned())));
    }
}
