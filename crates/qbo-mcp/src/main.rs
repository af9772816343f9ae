//! The `qbo-mcp` command line: parses arguments, loads the configuration, and hands over to
//! the library. Errors go to stderr as a sentence a person can act on, with a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use qbo_mcp::config::Config;
use qbo_mcp::{companies, db, ops, people, proposals, server, telemetry};

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
    Migrate {
        /// List the pending migrations without applying them; exit 3 when there are any.
        #[arg(long)]
        check: bool,
    },
    /// Copy the SQLite database to FILE (mode 0600) while servers keep serving.
    Backup {
        /// Where to write the backup; must not exist yet.
        file: PathBuf,
    },
    /// Replace the SQLite database with the backup FILE, after checking it (stop every server
    /// first; the replaced database is kept beside it).
    Restore {
        /// A file made by `qbo-mcp backup`.
        file: PathBuf,
    },
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
    /// Read the audit log, or prune it (`audit prune --before DATE`).
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        #[command(subcommand)]
        command: Option<ops::cli::AuditCommand>,
        #[command(flatten)]
        read: people::cli::AuditArgs,
    },
    /// Writes waiting for approval: list, approve or reject them.
    Proposals {
        #[command(subcommand)]
        command: proposals::cli::ProposalsCommand,
    },
}

/// Exit code for a configuration the program cannot start with.
const EXIT_CONFIG: u8 = 2;
/// Exit code of `migrate --check` when migrations are pending.
const EXIT_PENDING: u8 = 3;

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
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    let done = match command {
        Command::Serve => server::serve(config, telemetry::init_metrics()).await,
        Command::Migrate { check: true } => return migrate_check(&config).await,
        Command::Migrate { check: false } => {
            let db = db::Db::connect(config.database_url.expose()).await?;
            let before = db::status(&db).await?;
            db::migrate(&db).await?;
            eprintln!(
                "Applied {} migration(s); the database schema is up to date.",
                before.pending.len()
            );
            Ok(())
        }
        Command::Backup { file } => ops::backup::backup(&config, &file).await,
        Command::Restore { file } => ops::backup::restore(&config, &file).await,
        Command::User { command } => people::cli::user(&config, command).await,
        Command::Token { command } => people::cli::token(&config, command).await,
        Command::Allowlist { command } => people::cli::allowlist(&config, command).await,
        Command::Company { command } => companies::cli::company(&config, command).await,
        Command::RotateKey(args) => companies::cli::rotate_key(&config, args).await,
        Command::Audit {
            command: Some(command),
            ..
        } => ops::cli::audit(&config, command).await,
        Command::Audit {
            command: None,
            read,
        } => people::cli::audit_log(&config, read).await,
        Command::Proposals { command } => proposals::cli::proposals(&config, command).await,
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// `migrate --check`: the pending migrations on stdout, one per line, changing nothing.
async fn migrate_check(config: &Config) -> anyhow::Result<ExitCode> {
    let url = config.database_url.expose();
    // A SQLite file that does not exist yet is not created by a check.
    let status = match db::sqlite_path(url) {
        Some(path) if !path.exists() => db::Status {
            pending: db::Status::all_known(db::Backend::Sqlite),
            ..Default::default()
        },
        _ => {
            let db = db::Db::connect(url).await?;
            let status = db::status(&db).await?;
            status.refuse_newer(db.backend())?;
            db.close().await;
            status
        }
    };
    for m in &status.pending {
        println!("{:04} {}", m.version, m.description);
    }
    if status.pending.is_empty() {
        eprintln!("No migrations are pending; the database schema is up to date.");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} migration(s) are pending; `qbo-mcp migrate` (or starting the server) applies them.",
            status.pending.len()
        );
        Ok(ExitCode::from(EXIT_PENDING))
    }
}
