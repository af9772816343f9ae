//! The `qbo-mcp` command line: parses arguments, loads the configuration, and hands over to
//! the library. Errors go to stderr as a sentence a person can act on, with a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use qbo_mcp::config::Config;
use qbo_mcp::{companies, db, people, proposals, server, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "qbo-mcp",
    version,
    about = "A team gateway from MCP assistants to QuickBooks Online"
)]
struct Cli {
    /// TOML configuration file; QBO_MCP_* variables override it.
    #[arg(long, global = true, value_name = "FILE", env = "QBO_MCP_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (demo mode when no Intuit app is configured).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Break-glass administration of people (works with the server stopped or running).
    User {
        #[command(subcommand)]
        command: people::cli::UserCommand,
    },
    /// Personal access tokens for scripts and clients without OAuth.
    Token {
        #[command(subcommand)]
        command: people::cli::TokenCommand,
    },
    /// The sign-in allowlist for the identity provider.
    Allowlist {
        #[command(subcommand)]
        command: people::cli::AllowlistCommand,
    },
    /// Company connections: list them, or disconnect one.
    Company {
        #[command(subcommand)]
        command: companies::cli::CompanyCommand,
    },
    /// Re-encrypt every stored QuickBooks token under a new secret key (stop every replica
    /// first).
    RotateKey(companies::cli::RotateKeyArgs),
    /// Read the audit log.
    Audit(people::cli::AuditArgs),
    /// Writes waiting for approval: list, approve or reject them.
    Proposals {
        #[command(subcommand)]
        command: proposals::cli::ProposalsCommand,
    },
}

/// Exit code for a configuration the program cannot start with.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            for problem in &e.0 {
                eprintln!("error: {problem}");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}.");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => server::serve(config, telemetry::init_metrics()).await,
        Command::Migrate => {
            let db = db::Db::connect(config.database_url.expose()).await?;
            db::migrate(&db).await?;
            eprintln!("The database schema is up to date.");
            Ok(())
        }
        Command::User { command } => people::cli::user(&config, command).await,
        Command::Token { command } => people::cli::token(&config, command).await,
        Command::Allowlist { command } => people::cli::allowlist(&config, command).await,
        Command::Company { command } => companies::cli::company(&config, command).await,
        Command::RotateKey(args) => companies::cli::rotate_key(&config, args).await,
        Command::Audit(args) => people::cli::audit_log(&config, args).await,
        Command::Proposals { command } => proposals::cli::proposals(&config, command).await,
    }
}
