//! The command line for proposals: `qbo-mcp proposals list [--status S] [--json]`,
//! `proposals approve ID [--note N]` and `proposals reject ID --note N`. Like the other
//! commands it talks to the database directly and acts as `console` (an admin who proposes
//! nothing, so it may approve anyone's proposal); approving sends the write from this process.

use std::sync::Arc;

use anyhow::anyhow;
use clap::Subcommand;

use crate::auth::Admin;
use crate::config::Config;
use crate::quickbooks::{QuickBooks, demo};

use super::api::parse_status;
use super::{Proposal, approve, reject, store};

#[derive(Debug, Subcommand)]
pub enum ProposalsCommand {
    /// List proposals, newest first.
    List {
        /// Only this status: pending, approved, rejected, executed, failed or stale.
        #[arg(long)]
        status: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending proposal: its write is sent to QuickBooks at once.
    Approve {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Reject a pending proposal; nothing is sent.
    Reject {
        id: String,
        /// Why (required): the proposer reads it.
        #[arg(long)]
        note: String,
    },
}

fn line(p: &Proposal) -> String {
    format!(
        "{:<36} {:<9} {:<18} {:<14} {:<12} {}",
        p.id,
        p.status.as_str(),
        p.company,
        p.tool,
        p.proposed_by,
        p.created_at
    )
}

pub async fn proposals(config: &Config, command: ProposalsCommand) -> anyhow::Result<()> {
    let (db, sealer) = crate::state::open_state(config).await?;
    let admin = Admin::console();
    let ended = match command {
        ProposalsCommand::List { status, json } => {
            let status = parse_status(status.as_deref()).map_err(|e| anyhow!(e.message))?;
            let all = store::list(&db, status, None).await?;
            if !json {
                println!(
                    "{:<36} {:<9} {:<18} {:<14} {:<12} CREATED",
                    "ID", "STATUS", "COMPANY", "TOOL", "PROPOSED BY"
                );
            }
            for p in &all {
                if json {
                    println!("{}", serde_json::to_string(p)?);
                } else {
                    println!("{}", line(p));
                }
            }
            if all.is_empty() {
                eprintln!("No proposals.");
            }
            return Ok(());
        }
        ProposalsCommand::Approve { id, note } => {
            let public_url = config.public_url_or_listen();
            let intuit = demo::setup(config, &public_url)?;
            let quickbooks = QuickBooks::from_config(
                config,
                db.clone(),
                Arc::new(sealer),
                intuit.app,
                &intuit.environment,
                &public_url,
            )?;
            approve(&db, &quickbooks, &admin, &id, note.as_deref())
                .await
                .map_err(|e| anyhow!(e.message))?
        }
        ProposalsCommand::Reject { id, note } => reject(&db, &admin, &id, &note)
            .await
            .map_err(|e| anyhow!(e.message))?,
    };
    println!("{}", serde_json::to_string(&ended)?);
    eprintln!("Proposal {} is {}.", ended.id, ended.status.as_str());
    Ok(())
}
