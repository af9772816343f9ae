//! The command line for company connections and their key: `qbo-mcp company list`,
//! `company disconnect REALM` and `rotate-key`. Like the people commands it talks to the
//! database directly and acts as `console` in the audit log. A new key goes to stdout alone (or
//! into the key file); explanations go to stderr.

use std::io::{Read as _, Write as _};
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use clap::Subcommand;
use serde_json::json;

use crate::config::Config;
use crate::keys::{self, Sealer, SecretKey};
use crate::quickbooks::{QuickBooks, Status, demo, store};

#[derive(Debug, Subcommand)]
pub enum CompanyCommand {
    /// List the companies with their connection status.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a company's connection at Intuit and delete its tokens.
    Disconnect {
        /// The company's realm id.
        realm: String,
    },
}

/// Options of `qbo-mcp rotate-key`.
#[derive(Debug, clap::Args)]
pub struct RotateKeyArgs {
    /// Read the new key (32 bytes, base64) from stdin instead of generating one.
    #[arg(long)]
    new_key_stdin: bool,
}

fn when(t: Option<i64>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| "-".to_owned())
}

pub async fn company(config: &Config, command: CompanyCommand) -> anyhow::Result<()> {
    let (db, sealer) = crate::state::open_state(config).await?;
    match command {
        CompanyCommand::List { json } => {
            let companies = store::list(&db).await?;
            if json {
                for c in &companies {
                    println!("{}", serde_json::to_string(c)?);
                }
            } else {
                println!(
                    "{:<20} {:<16} {:<16} {:<26} NAME",
                    "REALM", "STATUS", "CONNECTED BY", "LAST REFRESH"
                );
                for c in &companies {
                    println!(
                        "{:<20} {:<16} {:<16} {:<26} {}",
                        c.realm_id,
                        c.status.as_str(),
                        c.connected_by.as_deref().unwrap_or("-"),
                        when(c.last_refresh_at),
                        c.name
                    );
                }
            }
            if companies.is_empty() {
                eprintln!("No company has been connected yet.");
            }
        }
        CompanyCommand::Disconnect { realm } => {
            let realm =
                crate::people::grants::parse_realm(&realm).map_err(|e| anyhow!(e.message))?;
            match store::get(&db, &realm).await? {
                None => return Err(anyhow!("There is no company {realm}.")),
                Some(c) if c.status == Status::Disconnected => {
                    eprintln!("{} ({realm}) is already disconnected.", c.name);
                    return Ok(());
                }
                Some(_) => {}
            }
            let public_url = config.public_url_or_listen();
            let intuit = demo::setup(config, &public_url)?;
            let quickbooks = QuickBooks::from_config(
                config,
                db,
                Arc::new(sealer),
                intuit.app,
                &intuit.environment,
                &public_url,
            )?;
            let revoked = quickbooks
                .disconnect(&realm, "console")
                .await
                .map_err(|e| anyhow!("Cannot disconnect {realm}: {e}."))?;
            if revoked {
                eprintln!(
                    "Disconnected {realm}: Intuit revoked the connection and its tokens are deleted."
                );
            } else {
                eprintln!(
                    "Disconnected {realm}: its tokens are deleted, but Intuit did not confirm the revocation. Remove the app under the company's Apps settings in QuickBooks to be sure."
                );
            }
        }
    }
    Ok(())
}

/// `qbo-mcp rotate-key`: re-seals every stored token under a new key in one transaction (all
/// or nothing) and makes the new key the only one the database accepts. Run it with every
/// replica stopped; replicas still running on the old key refuse to refresh until restarted.
pub async fn rotate_key(config: &Config, args: RotateKeyArgs) -> anyhow::Result<()> {
    let (db, old_sealer) = crate::state::open_state(config).await?;
    let old = SecretKey::load_or_create(config.secret_key.as_ref(), &config.data_dir)?;
    let new = if args.new_key_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("Cannot read the new key from stdin")?;
        SecretKey::from_base64(&text)
            .ok_or_else(|| anyhow!("The new key on stdin is not 32 bytes of base64."))?
    } else {
        SecretKey::generate()
    };
    if new.id() == old_sealer.key_id() {
        return Err(anyhow!(
            "The new key is the key in use; give a different one."
        ));
    }
    let key_file = config.data_dir.join("secret.key");
    let pending_file = config.data_dir.join("secret.key.new");
    // The new key is kept safe *before* the database depends on it.
    let from_file = config.secret_key.is_none();
    if from_file {
        new.write_file(&pending_file, false)
            .with_context(|| format!("Cannot write the new key to {}", pending_file.display()))?;
    } else if !args.new_key_stdin {
        println!("{}", new.to_base64().expose());
        std::io::stdout().flush()?;
    }

    let sealer = Sealer::new(&new).with_older(&old);
    let mut tx = db.begin_write().await?;
    let resealed = store::reseal_all(&mut tx, &sealer)
        .await
        .map_err(|e| anyhow!("Cannot re-seal the stored tokens: {e}. Nothing was changed."))?;
    keys::record_rotation(&mut tx, &sealer).await?;
    if let Err(e) = tx.commit().await {
        if from_file {
            let _ = std::fs::remove_file(&pending_file);
        }
        return Err(anyhow!(
            "The rotation did not happen ({e}); the old key stays in use{}.",
            if from_file {
                ""
            } else {
                " and the printed key is not needed"
            }
        ));
    }
    crate::audit::record_now(
        &db,
        &crate::audit::NewEntry::new(Some("console"), "key.rotate", crate::audit::Outcome::Ok)
            .details(
                json!({ "old_key_id": old.id(), "new_key_id": new.id(), "companies": resealed }),
            ),
    )
    .await
    .map_err(|e| {
        anyhow!(
            "The key was rotated, but the audit entry failed: {}",
            e.message
        )
    })?;

    if from_file {
        std::fs::rename(&pending_file, &key_file).with_context(|| {
            format!(
                "The database now uses the new key, kept in {}; move it to {} before starting the server",
                pending_file.display(),
                key_file.display()
            )
        })?;
        eprintln!(
            "Rotated the secret key ({} → {}): {resealed} companies' tokens re-sealed; {} holds the new key. Start the server again.",
            old.id(),
            new.id(),
            key_file.display()
        );
    } else {
        eprintln!(
            "Rotated the secret key ({} → {}): {resealed} companies' tokens re-sealed. Set QBO_MCP_SECRET_KEY to the new key{} on every replica, then start them.",
            old.id(),
            new.id(),
            if args.new_key_stdin {
                ""
            } else {
                " printed above"
            }
        );
    }
    Ok(())
}
