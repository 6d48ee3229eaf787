//! `fieldvisit-demo`: loads the demo orgs into the database and prints one line per demo user and
//! device with its token (random, printed once: a later run prints `(kept)` for a live one).

use clap::Parser;
use fieldvisit_demo::DemoArgs;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "fieldvisit-demo",
    version,
    about = "Load the demo orgs (Beijing from GeoLife, Limerick bus 304) and print their random tokens once"
)]
struct Cli {
    /// PostgreSQL (with PostGIS) connection URL; the schema must be migrated (`fieldvisit migrate`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = "")]
    database_url: String,
    #[command(flatten)]
    demo: DemoArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match run(&cli).await {
        Ok(lines) => {
            for line in &lines {
                println!("{line}");
            }
            if lines.iter().any(|l| l.ends_with(fieldvisit_demo::KEPT)) {
                eprintln!(
                    "note: {} tokens were printed when the demo was first loaded; only their hashes are stored. \
                     `fieldvisit admin issue-token --org ORG --login LOGIN` makes a new one.",
                    fieldvisit_demo::KEPT
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> Result<Vec<String>, fieldvisit_demo::Error> {
    if cli.database_url.is_empty() {
        return Err("DATABASE_URL is not set (flag --database-url or env DATABASE_URL)".into());
    }
    // One org at a time; the team's phones (8 at once), the ingest writers and the derivation
    // workers each hold a connection while they work.
    let pool = fieldvisit::db::connect(&cli.database_url, 12).await?;
    fieldvisit_demo::load(&pool, &cli.demo).await
}
