//! `fieldvisit` command line: serve | migrate | demo | admin | import.

use clap::{Parser, Subcommand};
use fieldvisit::config::Config;
use fieldvisit::{admin, db, demo, http};
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
    /// Load the deterministic demo orgs (Beijing from GeoLife, Limerick bus 304) and print their tokens.
    Demo(demo::DemoArgs),
    /// Bootstrap a deployment without SQL: orgs, users, devices, tokens.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Bulk import from files (see README, "Importing outlets").
    #[command(subcommand)]
    Import(ImportCommand),
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
        #[arg(long, default_value = "atomic")]
        mode: String,
        /// `csv` or `geojson` (default: from the file name, else from the content).
        #[arg(long)]
        format: Option<String>,
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
        /// admin, supervisor, auditor, manager or rep
        #[arg(long)]
        role: String,
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

fn init_tracing(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.config.log_format);
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
    if config.database_url.is_empty() {
        return Err("DATABASE_URL is not set (flag --database-url or env DATABASE_URL)".into());
    }
    let pool = db::connect(&config.database_url, config.db_max_connections).await?;
    match cli.command {
        Command::Migrate => {
            db::migrate(&pool).await?;
            println!("migrations applied");
        }
        Command::Serve => {
            if let Err(e) = db::readiness(&pool).await {
                tracing::warn!(%e, "database not ready; /readyz will answer 503 until `fieldvisit migrate` runs");
            }
            let listener = tokio::net::TcpListener::bind(config.bind).await?;
            tracing::info!(addr = %config.bind, "serving");
            println!("fieldvisit serving on http://{} (API docs: http://{}/docs/)", config.bind, config.bind);
            let state = http::AppState::new(pool.clone(), config);
            if let Err(e) = state.index.load_all().await {
                tracing::warn!(%e, "outlet index not built at start; orgs are loaded on first use");
            }
            http::serve(listener, state).await?;
            // A statement still stuck after the grace period (e.g. on a lock) must not hold the exit.
            if tokio::time::timeout(std::time::Duration::from_secs(5), pool.close()).await.is_err() {
                tracing::warn!("database connections still busy at exit; closing them");
            }
        }
        Command::Demo(args) => {
            for line in demo::load(&pool, &args).await? {
                println!("{line}");
            }
        }
        Command::Admin(cmd) => run_admin(&pool, cmd).await?,
        Command::Import(cmd) => run_import(&pool, cmd).await?,
    }
    Ok(())
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
            role.parse::<fieldvisit::domain::access::Role>()?;
            let territory_id = match territory {
                Some(code) => Some(
                    db::territories::by_code(pool, org, &code)
                        .await?
                        .ok_or_else(|| format!("no territory `{code}`"))?
                        .id,
                ),
                None => None,
            };
            let issued = admin::create_user(pool, org, &login, &name, &role, territory_id).await?;
            println!("user {} ({}) id {} token {}", issued.user.login, issued.user.role, issued.user.id, issued.token);
        }
        AdminCommand::CreateDevice { org, rep, name } => {
            let org = org_id(pool, &org).await?;
            let rep = user(pool, org, &rep).await?;
            if rep.role != "rep" {
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
    use fieldvisit::domain::import::{Format, Mode};
    let ImportCommand::Outlets { file, org, mode, format } = cmd;
    let org_id = org_id(pool, &org).await?;
    let mode: Mode = mode.parse()?;
    let bytes = std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let format = match format {
        Some(f) => f.parse()?,
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
