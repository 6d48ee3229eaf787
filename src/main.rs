//! `fieldvisit` command line: serve | migrate | admin | import | export | retention | verify. The demo
//! loader is its own binary, `fieldvisit-demo` (crates/fieldvisit-demo).

use clap::{Parser, Subcommand};
use fieldvisit::config::{Config, LogFormat};
use fieldvisit::domain::access::Role;
use fieldvisit::domain::audit::AuditAction;
use fieldvisit::domain::crs::Crs;
use fieldvisit::domain::export::ExportFormat;
use fieldvisit::domain::import::{Format, Mode};
use fieldvisit::{admin, db, http};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc malloc: the ingest path allocates many small short-lived buffers per
/// request, and glibc's malloc/free/consolidate took ~18% of the server's CPU under OsmAnd load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "fieldvisit",
    version,
    about = "Field sales visits server: pings in, verified visits and coverage out"
)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the docs and the map UI.
    Serve,
    /// Apply pending database migrations (a no-op when current).
    Migrate,
    /// Bootstrap a deployment without SQL: orgs, users, devices, tokens.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Bulk import from files (see docs/api.md, "Importing outlets").
    #[command(subcommand)]
    Import(ImportCommand),
    /// Export an audit (XLSX, zipped CSV, GeoJSON and its manifest) of a territory's team or a rep
    /// into a folder; the manifest is stored for `verify` and the export is in the audit log.
    Export(ExportArgs),
    /// Run one raw-ping retention pass now (the server runs one every `FV_RETENTION_INTERVAL_S`).
    Retention,
    /// Check a file against the stored export manifests and whether the data behind the export
    /// changed since; prints the finding as JSON. Exit 0 only if the file matches and the data is
    /// unchanged.
    Verify {
        /// The exported file.
        file: std::path::PathBuf,
        /// Slug of the org.
        #[arg(long)]
        org: String,
        /// The export to check against (default: found by the file's content).
        #[arg(long)]
        export: Option<i64>,
    },
}

#[derive(clap::Args)]
struct ExportArgs {
    /// Slug of the org.
    #[arg(long)]
    org: String,
    /// Code of the territory whose team to export.
    #[arg(long, conflicts_with = "rep", required_unless_present = "rep")]
    territory: Option<String>,
    /// Login of the rep to export.
    #[arg(long)]
    rep: Option<String>,
    /// First local day (YYYY-MM-DD).
    #[arg(long)]
    from: chrono::NaiveDate,
    /// Last local day (inclusive).
    #[arg(long)]
    to: chrono::NaiveDate,
    /// Formats, comma separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = ExportFormat::ALL)]
    format: Vec<ExportFormat>,
    /// Folder the files and manifest.json are written to (created if missing).
    #[arg(long)]
    out: std::path::PathBuf,
    /// Login of the user the export is made for (recorded as its generator); default: the CLI.
    #[arg(long = "as")]
    as_login: Option<String>,
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Upsert outlets by code from a CSV or GeoJSON file; prints the counts and every rejected row.
    Outlets {
        /// The CSV or GeoJSON file.
        file: std::path::PathBuf,
        /// Slug of the org the outlets belong to.
        #[arg(long)]
        org: String,
        /// `atomic`: any bad row and nothing is written (exit 1). `partial`: write the good rows.
        #[arg(long, value_enum, default_value_t = Mode::Atomic)]
        mode: Mode,
        /// Default: from the file name, else from the content.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Coordinate system of the file's positions: `wgs84`, or `gcj02` (AMap/Gaode, Tencent) or
        /// `bd09` (Baidu), converted to WGS-84 on the way in.
        #[arg(long, value_enum, default_value_t = Crs::Wgs84)]
        crs: Crs,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an org with the default tier policies.
    CreateOrg {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "UTC")]
        timezone: String,
    },
    /// Create a user and print their token (shown once).
    CreateUser {
        #[arg(long)]
        org: String,
        #[arg(long)]
        login: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: Role,
        /// Code of the territory the user's scope starts at (omit for the whole org).
        #[arg(long)]
        territory: Option<String>,
    },
    /// Register a device for a rep and print its credentials (shown once).
    CreateDevice {
        #[arg(long)]
        org: String,
        /// Login of the rep who carries the device.
        #[arg(long)]
        rep: String,
        #[arg(long)]
        name: String,
    },
    /// Issue a new token for a user (the old one stops working) and print it.
    IssueToken {
        #[arg(long)]
        org: String,
        #[arg(long)]
        login: String,
    },
    /// Revoke a user's token.
    RevokeToken {
        #[arg(long)]
        org: String,
        #[arg(long)]
        login: String,
    },
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.config.log_format);
    if let Some(warning) = cli.config.deprecation_warning() {
        tracing::warn!("{warning}");
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

async fn run(cli: Cli) -> Result<(), AnyError> {
    let config = cli.config;
    fieldvisit::export::pdf::set_font_path(config.pdf_font.clone());
    if matches!(cli.command, Command::Serve) {
        // Before the database: a half-set or unreadable TLS setting stops the start at once (the
        // files are read again by `http::serve`; reading them here is what makes the check real).
        config.check_serving()?;
        http::server::tls_acceptor(&config)?;
    }
    if config.database_url.is_empty() {
        return Err("DATABASE_URL is not set (flag --database-url or env DATABASE_URL)".into());
    }
    // `serve` opens this pool for its background work (no statement timeout) and makes its request
    // pool from it (`http::AppState::new`); the other commands use this one pool.
    let pool = if matches!(cli.command, Command::Serve) {
        db::connect_background(&config.database_url, config.db_background_connections).await?
    } else {
        db::connect(&config.database_url, config.db_max_connections).await?
    };
    match cli.command {
        Command::Migrate => {
            db::migrate(&pool).await?;
            println!("migrations applied");
        }
        Command::Serve => {
            if let Err(e) = db::readiness(&pool).await {
                tracing::warn!(%e, "database not ready; /readyz will answer 503 until `fieldvisit migrate` runs");
            }
            let addr = config.listen_addr();
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let scheme = config.scheme();
            tracing::info!(%addr, url = %format!("{scheme}://{addr}"), "serving");
            println!("fieldvisit serving on {scheme}://{addr} (API docs: {scheme}://{addr}/docs/)");
            fieldvisit::export::sweep_interrupted(pool.clone());
            if config.retention_interval_s > 0 {
                fieldvisit::retention::start(pool.clone(), std::time::Duration::from_secs(config.retention_interval_s));
            }
            let state = http::AppState::new(pool.clone(), config);
            if let Err(e) = state.index.load_all().await {
                tracing::warn!(%e, "outlet index not built at start; orgs are loaded on first use");
            }
            let requests = state.db.clone();
            http::serve(listener, state).await?;
            // A statement still stuck after the grace period (e.g. on a lock) must not hold the exit.
            let closed = async { tokio::join!(requests.close(), pool.close()) };
            if tokio::time::timeout(std::time::Duration::from_secs(5), closed).await.is_err() {
                tracing::warn!("database connections still busy at exit; closing them");
            }
        }
        Command::Admin(cmd) => run_admin(&pool, cmd).await?,
        Command::Import(cmd) => run_import(&pool, cmd).await?,
        Command::Export(args) => run_export(&pool, args).await?,
        Command::Retention => {
            for p in fieldvisit::retention::run_once(&pool, chrono::Utc::now()).await? {
                println!(
                    "org {}: {} pings before {} removed; visits before {} are final",
                    p.org_id, p.removed.pings, p.removed.before, p.removed.kept_from
                );
            }
        }
        Command::Verify { file, org, export } => {
            if !run_verify(&pool, &file, &org, export).await? {
                return Err("the file does not match the export, or the data changed since".into());
            }
        }
    }
    Ok(())
}

async fn run_export(pool: &sqlx::PgPool, args: ExportArgs) -> Result<(), AnyError> {
    use fieldvisit::domain::export::{ExportParams, ExportScope, Generator};
    let org = org_id(pool, &args.org).await?;
    let scope = match (&args.territory, &args.rep) {
        (Some(code), _) => ExportScope::Territory {
            id: db::territories::by_code(pool, org, code).await?.ok_or_else(|| format!("no territory `{code}`"))?.id,
        },
        (None, Some(login)) => ExportScope::Rep { id: user(pool, org, login).await?.id },
        (None, None) => return Err("give --territory or --rep".into()),
    };
    let params = ExportParams { scope, from: args.from, to: args.to, formats: args.format };
    let problems = params.problems();
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.field, p.reason)).collect();
        return Err(lines.join("; ").into());
    }
    let generator = match &args.as_login {
        Some(login) => {
            let u = user(pool, org, login).await?;
            Generator { user_id: Some(u.id), login: u.login }
        }
        None => Generator { user_id: None, login: "cli".to_owned() },
    };
    let id = db::exports::create(pool, org, generator.user_id, &params).await?;
    let manifest = fieldvisit::export::run_queued(pool.clone(), org, id, generator).await?;
    std::fs::create_dir_all(&args.out)?;
    for f in &manifest.files {
        let mut out = std::io::BufWriter::new(std::fs::File::create(args.out.join(&f.name))?);
        let mut seq = 0;
        while let Some(chunk) = db::exports::chunk(pool, org, id, &f.name, seq).await? {
            std::io::Write::write_all(&mut out, &chunk)?;
            seq += 1;
        }
        std::io::Write::flush(&mut out)?;
        println!("{}  {} ({} bytes)", f.sha256, args.out.join(&f.name).display(), f.bytes);
    }
    std::fs::write(args.out.join("manifest.json"), serde_json::to_vec_pretty(&manifest)?)?;
    println!(
        "export {id}: {} visits, {} planned visits, {} reviews; data sha256 {}",
        manifest.data.visits, manifest.data.planned_visits, manifest.data.reviews, manifest.data.sha256
    );
    Ok(())
}

/// Prints the verification of `file`; true when it matches and the data is unchanged.
async fn run_verify(
    pool: &sqlx::PgPool,
    file: &std::path::Path,
    org: &str,
    export: Option<i64>,
) -> Result<bool, AnyError> {
    use sha2::Digest;
    let org = org_id(pool, org).await?;
    let mut hasher = sha2::Sha256::new();
    let bytes = std::io::copy(&mut std::fs::File::open(file)?, &mut hasher)?;
    let sha256 = hex::encode(hasher.finalize());
    let export = match export {
        Some(id) => Some(db::exports::get(pool, org, id).await?.ok_or_else(|| format!("no export {id}"))?),
        None => db::exports::with_file(pool, org, &sha256).await?.into_iter().next(),
    };
    let v = match export {
        Some(e) => fieldvisit::export::verify(pool, org, &e, Some((sha256, bytes))).await?,
        None => fieldvisit::export::Verification::unknown(Some((sha256, bytes))),
    };
    if let Some(id) = v.export_id {
        let entry = db::audit::NewEntry {
            actor_user_id: None,
            actor_device_id: None,
            action: AuditAction::ExportVerify,
            object_type: "export",
            object_id: Some(id.to_string()),
            request_id: None,
            detail: serde_json::json!({"file": v.file, "data_changed": v.data_changed, "via": "cli"}),
        };
        db::audit::record(pool, org, entry).await?;
    }
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(v.file_matches && v.data_changed == Some(false))
}

async fn org_id(pool: &sqlx::PgPool, slug: &str) -> Result<i64, AnyError> {
    Ok(db::orgs::by_slug(pool, slug).await?.ok_or_else(|| format!("no org with slug `{slug}`"))?.id)
}

async fn user(pool: &sqlx::PgPool, org: i64, login: &str) -> Result<db::users::User, AnyError> {
    Ok(db::users::by_login(pool, org, login).await?.ok_or_else(|| format!("no user `{login}` in this org"))?)
}

async fn run_admin(pool: &sqlx::PgPool, cmd: AdminCommand) -> Result<(), AnyError> {
    match cmd {
        AdminCommand::CreateOrg { slug, name, timezone } => {
            let org = admin::create_org(pool, &slug, &name, &timezone).await?;
            println!("org {} created (id {})", org.slug, org.id);
        }
        AdminCommand::CreateUser { org, login, name, role, territory } => {
            let org = org_id(pool, &org).await?;
            let territory_id = match territory {
                Some(code) => Some(
                    db::territories::by_code(pool, org, &code)
                        .await?
                        .ok_or_else(|| format!("no territory `{code}`"))?
                        .id,
                ),
                None => None,
            };
            let issued = admin::create_user(pool, org, &login, &name, role, territory_id).await?;
            println!("user {} ({}) id {} token {}", issued.user.login, issued.user.role, issued.user.id, issued.token);
        }
        AdminCommand::CreateDevice { org, rep, name } => {
            let org = org_id(pool, &org).await?;
            let rep = user(pool, org, &rep).await?;
            if rep.role != Role::Rep {
                return Err(format!("`{}` is a {}, not a rep", rep.login, rep.role).into());
            }
            let c = admin::create_device(pool, org, rep.id, &name).await?;
            println!(
                "device {} for {}: token {} osmand_id {} owntracks_user {} owntracks_password {}",
                c.device_id, rep.login, c.token, c.osmand_id, c.owntracks_user, c.owntracks_password
            );
        }
        AdminCommand::IssueToken { org, login } => {
            let org = org_id(pool, &org).await?;
            let u = user(pool, org, &login).await?;
            println!("{}", admin::reissue_user_token(pool, org, u.id).await?);
        }
        AdminCommand::RevokeToken { org, login } => {
            let org = org_id(pool, &org).await?;
            let u = user(pool, org, &login).await?;
            let had = db::tokens::revoke_for_user(pool, org, u.id).await?;
            println!("{}", if had { "token revoked" } else { "no live token" });
        }
    }
    Ok(())
}

async fn run_import(pool: &sqlx::PgPool, cmd: ImportCommand) -> Result<(), AnyError> {
    use fieldvisit::db::import::{ImportError, ImportRequest, import_bytes};
    let ImportCommand::Outlets { file, org, mode, format, crs } = cmd;
    let org_id = org_id(pool, &org).await?;
    let bytes = std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let format = match format {
        Some(f) => f,
        None => Format::from_file_name(&file.to_string_lossy()).unwrap_or_else(|| Format::sniff(&bytes)),
    };
    let req = ImportRequest {
        org_id,
        scope: fieldvisit::domain::access::Scope::Org,
        mode,
        format,
        actor_user_id: None,
        request_id: None,
        source: "cli",
        crs,
        dry_run: false,
    };
    let unit = if format == Format::Csv { "line" } else { "feature" };
    let print_errors = |errors: &[fieldvisit::domain::validation::FieldError]| {
        for e in errors {
            match e.index {
                Some(i) => eprintln!("{unit} {i}: {}: {}", e.field, e.reason),
                None => eprintln!("{}: {}", e.field, e.reason),
            }
        }
    };
    match import_bytes(pool, &req, &bytes).await {
        Ok(r) => {
            print_errors(&r.errors);
            println!(
                "imported {} ({format}, {mode}): rows {}, inserted {}, updated {}, unchanged {}, rejected {}",
                file.display(),
                r.rows,
                r.inserted,
                r.updated,
                r.unchanged,
                r.rejected
            );
            Ok(())
        }
        Err(ImportError::File(errors)) => {
            print_errors(&errors);
            Err(format!("{} cannot be imported as {format}", file.display()).into())
        }
        Err(ImportError::Rejected(r)) => {
            print_errors(&r.errors);
            Err(format!(
                "{} of {} rows are invalid; nothing was written (--mode partial writes the good rows)",
                r.rejected, r.rows
            )
            .into())
        }
        Err(ImportError::Db(e)) => Err(e.into()),
    }
}
