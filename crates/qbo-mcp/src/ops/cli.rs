//! The operator's commands that are not backup or restore: `qbo-mcp audit prune`.

use anyhow::anyhow;
use clap::Subcommand;

use crate::audit;
use crate::config::Config;
use crate::error::AppError;
use crate::state::open_state;

/// `qbo-mcp audit …` commands beyond reading the log.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Remove audit entries older than DATE (default: older than the retention,
    /// QBO_MCP_AUDIT_RETENTION_DAYS); entries younger than the retention are never removed.
    Prune {
        /// RFC 3339, a date like 2025-01-01, or Unix seconds.
        #[arg(long, value_name = "DATE")]
        before: Option<String>,
    },
}

pub async fn audit(config: &Config, command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Prune { before } => {
            let before = match before {
                Some(t) => Some(audit::parse_time(&t).ok_or_else(|| {
                    anyhow!(
                        "--before `{t}` is not an RFC 3339 time, a date like 2025-01-01, or Unix seconds."
                    )
                })?),
                None => None,
            };
            let (db, _) = open_state(config).await?;
            let pruned =
                audit::retention::prune(&db, "console", before, config.audit_retention_days)
                    .await
                    .map_err(|e: AppError| match e.source {
                        Some(cause) => anyhow!("{} ({cause:#})", e.message),
                        None => anyhow!("{}", e.message),
                    })?;
            eprintln!(
                "Removed {} audit entries older than {}.",
                pruned.removed,
                crate::time::time_text(pruned.before)
            );
            Ok(())
        }
    }
}
