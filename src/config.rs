//! Runtime configuration: every setting is a flag with an environment variable and a default.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Settings shared by every command. `fieldvisit --help` lists them with their env vars.
#[derive(clap::Args, Debug, Clone)]
pub struct Config {
    /// PostgreSQL (with PostGIS) connection URL.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true, default_value = "")]
    pub database_url: String,

    /// Maximum database connections of this process.
    #[arg(long, env = "FV_DB_MAX_CONNECTIONS", global = true, default_value_t = 16)]
    pub db_max_connections: u32,

    /// Address the HTTP server listens on.
    #[arg(long, env = "BIND", global = true, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Largest accepted request body, bytes (uploads and batches above it get 413).
    #[arg(long, env = "FV_BODY_LIMIT_BYTES", global = true, default_value_t = 32 * 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Folder with the built map UI served at `/`.
    #[arg(long, env = "FV_MAP_UI_DIR", global = true, default_value = "map-ui/dist")]
    pub map_ui_dir: PathBuf,

    /// Basemap style URL the map UI loads, for deployments with a tile server (default: offline basemap).
    #[arg(long, env = "FV_BASEMAP_STYLE_URL", global = true)]
    pub basemap_style_url: Option<String>,

    /// Log format: `text` or `json`. Levels come from `RUST_LOG` (default `info`).
    #[arg(long, env = "FV_LOG_FORMAT", global = true, default_value = "text")]
    pub log_format: String,

    /// Seconds to let in-flight requests finish after SIGTERM/Ctrl-C.
    #[arg(long, env = "FV_SHUTDOWN_GRACE_S", global = true, default_value_t = 20)]
    pub shutdown_grace_s: u64,
}
