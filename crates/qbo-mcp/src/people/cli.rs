//! The break-glass command line for people: `qbo-mcp user …`, `token create`, `allowlist …`
//! and `audit`. It talks to the database directly (so it works with the server stopped or
//! running, and when every admin is locked out) through the same functions as the API, acting
//! as the console admin; every change is audited under `console`. Secrets (links, tokens) go
//! to stdout alone; explanations go to stderr.

use std::io::Read as _;

use anyhow::anyhow;
use clap::Subcommand;

use crate::audit;
use crate::auth::Admin;
use crate::config::Config;
use crate::db::Db;
use crate::error::AppError;
use crate::people::{self, admin, allowlist, parse_role, tokens};
use crate::secret::Secret;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a person, with a password from stdin or a one-time invitation link.
    Add {
        name: String,
        /// viewer, bookkeeper or admin.
        #[arg(long)]
        role: String,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from stdin (one line).
        #[arg(long, conflicts_with = "invite")]
        password_stdin: bool,
        /// Print a one-time link to set a password instead.
        #[arg(long)]
        invite: bool,
    },
    /// List everyone.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change someone's role.
    SetRole { name: String, role: String },
    /// Deactivate someone: their sessions and tokens stop working at once.
    Deactivate { name: String },
    /// Activate someone again (old sessions and tokens stay ended).
    Activate { name: String },
    /// Print a one-time link to set a new password (or read a temporary one from stdin); ends all their sessions, tokens and assistant grants.
    ResetPassword {
        name: String,
        /// Read the new password from stdin; they must change it at their next sign-in.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a personal access token and print it once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AllowlistCommand {
    /// Allow an email address or @domain to sign in through the identity provider.
    Add {
        entry: String,
        /// The role of a person created at their first sign-in.
        #[arg(long)]
        role: String,
    },
    /// Remove an entry.
    Remove { entry: String },
    /// List the entries.
    List,
}

/// Filters for `qbo-mcp audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only this person's entries.
    #[arg(long)]
    user: Option<String>,
    /// From this time on (RFC 3339, a date like 2026-11-23, or Unix seconds).
    #[arg(long)]
    since: Option<String>,
    /// At most this many entries, newest first.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// An `AppError` as the one sentence the console shows.
fn sentence(e: AppError) -> anyhow::Error {
    match e.source {
        Some(cause) if e.status.is_server_error() => anyhow!("{} ({cause:#})", e.message),
        _ => anyhow!("{}", e.message),
    }
}

fn read_password() -> anyhow::Result<Secret<String>> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| anyhow!("Cannot read the password from stdin: {e}."))?;
    let line = text.lines().next().unwrap_or_default().to_owned();
    Ok(Secret::new(line))
}

async fn open(config: &Config) -> anyhow::Result<Db> {
    Ok(crate::state::open_state(config).await?.0)
}

pub async fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    let db = open(config).await?;
    let console = Admin::console();
    match command {
        UserCommand::Add {
            name,
            role,
            email,
            password_stdin,
            invite,
        } => {
            if !password_stdin && !invite {
                return Err(anyhow!(
                    "Give --password-stdin (and the password on stdin) or --invite."
                ));
            }
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let created = admin::create(
                &db,
                &console,
                admin::NewPerson {
                    username: name,
                    role: parse_role(&role).map_err(sentence)?,
                    email,
                    password,
                    invite,
                },
                &config.public_url_or_listen(),
            )
            .await
            .map_err(sentence)?;
            match created.invite_url {
                Some(link) => {
                    eprintln!(
                        "Created {} ({}). Send them this one-time link (valid 7 days):",
                        created.person.username, created.person.role
                    );
                    println!("{}", link.expose());
                }
                None => eprintln!(
                    "Created {} ({}).",
                    created.person.username, created.person.role
                ),
            }
        }
        UserCommand::List { json } => {
            let list = people::list(&db).await.map_err(sentence)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!("{:<24} {:<11} {:<12} EMAIL", "USERNAME", "ROLE", "STATUS");
                for p in list {
                    let status = if p.is_active { "active" } else { "deactivated" };
                    println!(
                        "{:<24} {:<11} {:<12} {}",
                        p.username,
                        p.role.as_str(),
                        status,
                        p.email.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        UserCommand::SetRole { name, role } => {
            let role = parse_role(&role).map_err(sentence)?;
            let p = admin::update(
                &db,
                &console,
                &name,
                admin::Changes {
                    role: Some(role),
                    ..Default::default()
                },
            )
            .await
            .map_err(sentence)?;
            eprintln!("{} is now {}.", p.username, p.role);
        }
        UserCommand::Deactivate { name } => {
            let p = admin::update(
                &db,
                &console,
                &name,
                admin::Changes {
                    is_active: Some(false),
                    ..Default::default()
                },
            )
            .await
            .map_err(sentence)?;
            eprintln!(
                "{} is deactivated; their sessions and tokens have ended.",
                p.username
            );
        }
        UserCommand::Activate { name } => {
            let p = admin::update(
                &db,
                &console,
                &name,
                admin::Changes {
                    is_active: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(sentence)?;
            eprintln!("{} is active again; they need to sign in anew.", p.username);
        }
        UserCommand::ResetPassword {
            name,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let link = admin::reset_password(
                &db,
                &console,
                &name,
                password,
                &config.public_url_or_listen(),
            )
            .await
            .map_err(sentence)?;
            match link {
                Some(link) => {
                    eprintln!(
                        "Their sessions have ended. Send them this one-time link (valid 24 hours):"
                    );
                    println!("{}", link.expose());
                }
                None => eprintln!(
                    "Password set; their sessions have ended and they must change it at their next sign-in."
                ),
            }
        }
    }
    Ok(())
}

pub async fn token(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    let db = open(config).await?;
    match command {
        TokenCommand::Create { user, name } => {
            let person = people::find(&db, &user)
                .await
                .map_err(sentence)?
                .ok_or_else(|| anyhow!("There is no person named `{user}`."))?;
            let mut tx = db.begin_write().await?;
            let (id, token) = tokens::create(&mut tx, person.id, &name)
                .await
                .map_err(sentence)?;
            audit::record(
                &mut tx,
                &audit::NewEntry::new(Some("console"), "token.create", audit::Outcome::Ok)
                    .target(person.username.clone())
                    .details(serde_json::json!({"id": id, "name": name})),
            )
            .await
            .map_err(sentence)?;
            tx.commit().await?;
            eprintln!(
                "Token {id} for {} created. It is shown only this once:",
                person.username
            );
            println!("{}", token.expose());
        }
    }
    Ok(())
}

pub async fn allowlist(config: &Config, command: AllowlistCommand) -> anyhow::Result<()> {
    let db = open(config).await?;
    let console = Admin::console();
    match command {
        AllowlistCommand::Add { entry, role } => {
            let role = parse_role(&role).map_err(sentence)?;
            let e = allowlist::add(&db, &console, &entry, role)
                .await
                .map_err(sentence)?;
            eprintln!("{} may sign in (first sign-in as {}).", e.entry, e.role);
        }
        AllowlistCommand::Remove { entry } => {
            allowlist::remove(&db, &console, &entry)
                .await
                .map_err(sentence)?;
            eprintln!("Removed {entry}.");
        }
        AllowlistCommand::List => {
            for e in allowlist::list(&db).await.map_err(sentence)? {
                println!("{:<40} {}", e.entry, e.role.as_str());
            }
        }
    }
    Ok(())
}

pub async fn audit_log(config: &Config, args: AuditArgs) -> anyhow::Result<()> {
    let db = open(config).await?;
    let since = match &args.since {
        Some(t) => Some(audit::parse_time(t).ok_or_else(|| {
            anyhow!(
                "--since `{t}` is not an RFC 3339 time, a date like 2026-11-23, or Unix seconds."
            )
        })?),
        None => None,
    };
    if !(1..=100_000).contains(&args.limit) {
        return Err(anyhow!("--limit must be between 1 and 100000."));
    }
    let filter = audit::Filter {
        username: args.user.map(|u| u.trim().to_ascii_lowercase()),
        since,
        limit: args.limit,
        ..Default::default()
    };
    let entries = audit::read(&db, &filter).await.map_err(sentence)?;
    for e in entries {
        if args.json {
            println!("{}", serde_json::to_string(&e)?);
        } else {
            println!(
                "{}  {:<16} {:<24} {:<16} {:<8} {}",
                e.at,
                e.username.as_deref().unwrap_or("-"),
                e.action,
                e.target.as_deref().or(e.tool.as_deref()).unwrap_or("-"),
                e.outcome,
                e.company.as_deref().unwrap_or("")
            );
        }
    }
    Ok(())
}
