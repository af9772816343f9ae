//! The `qbo-sim` command line: reads the options, starts the simulator, prints the one
//! ready line on stdout (`qbo-sim listening on http://…`) and serves until interrupted.
//! Logs go to stderr.

use clap::Parser;
use qbo_sim::{AutoConsent, SimConfig, Simulator};
use std::io::Write;
use std::net::SocketAddr;

/// A faithful QuickBooks Online simulator: Intuit OAuth/OIDC and the Accounting API on one
/// base URL, with demo companies, Intuit's token rules, throttling and faults on demand.
#[derive(Debug, Parser)]
#[command(name = "qbo-sim", version)]
struct Options {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9111")]
    listen: SocketAddr,
    /// Approve every authorization at once as this QuickBooks user (EMAIL or EMAIL:REALM).
    #[arg(long, value_name = "EMAIL[:REALM]")]
    auto_consent: Option<String>,
    /// Seed of the demo data.
    #[arg(long)]
    seed: Option<u64>,
    /// How many demo companies (default 2: Craig's and Harbor's); the ones after those two are
    /// generated, each with its own admin `owner@…` and seeded books.
    #[arg(long, value_name = "N")]
    companies: Option<usize>,
    /// Configuration file (TOML, or JSON when it ends in .json) with any /_sim/config keys.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QBO_SIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Options::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("qbo-sim: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> anyhow::Result<()> {
    let mut config = match &options.config {
        Some(path) => SimConfig::from_file(path)?,
        None => SimConfig::default(),
    };
    if let Some(seed) = options.seed {
        config.seed = seed;
    }
    if let Some(companies) = options.companies {
        config.companies = companies;
    }
    config.check()?;
    if let Some(auto) = &options.auto_consent {
        config.auto_consent =
            Some(AutoConsent::parse(auto).map_err(|e| anyhow::anyhow!("--auto-consent: {e}"))?);
    }
    let simulator = Simulator::start(config, options.listen).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "qbo-sim listening on {}", simulator.base_url())?;
        stdout.flush()?;
    }
    tracing::info!(url = %simulator.base_url(), "ready");
    tokio::signal::ctrl_c().await?;
    tracing::info!("stopping");
    simulator.shutdown().await;
    Ok(())
}
