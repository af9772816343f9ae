//! `qbo-mcp backup FILE` and `qbo-mcp restore FILE` for a SQLite database
//! (docs/operations.md, "Backup and restore"). A backup is SQLite's `VACUUM INTO`: one read
//! transaction, so it is a consistent copy of everything committed before it began, taken while
//! servers keep serving, written with mode 0600 and synced before it gets its name. A restore
//! checks the file first (integrity, a qbo-mcp schema no newer than this build, the configured
//! key), refuses while a server uses the database, and keeps the database it replaces aside.
//! PostgreSQL has its own tools (`pg_dump`, `pg_restore`); these commands say so.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use anyhow::{Context as _, anyhow};
use sqlx::ConnectOptions as _;
use sqlx::sqlite::SqliteConnectOptions;

use crate::config::Config;
use crate::db::{self, Db, InUse, Status};
use crate::keys::SecretKey;

/// The SQLite file the configuration names; PostgreSQL and in-memory databases are refused.
fn sqlite_file(config: &Config, command: &str) -> anyhow::Result<PathBuf> {
    let url = config.database_url.expose();
    db::sqlite_path(url).ok_or_else(|| {
        anyhow!(
            "`qbo-mcp {command}` works on a SQLite database file; QBO_MCP_DATABASE_URL names {}. For PostgreSQL use pg_dump and pg_restore as docs/operations.md shows.",
            if url.to_ascii_lowercase().starts_with("sqlite") {
                "an in-memory database"
            } else {
                "a PostgreSQL database"
            }
        )
    })
}

/// `path` with `suffix` added to its file name (`qbo-mcp.db` → `qbo-mcp.db-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates an empty file readable only by its owner; fails if it exists.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

/// Flushes `path` and its directory entry to disk.
fn sync(path: &Path) -> std::io::Result<()> {
    OpenOptions::new().read(true).open(path)?.sync_all()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `qbo-mcp backup FILE`: a consistent copy of the live database, while servers keep serving.
pub async fn backup(config: &Config, file: &Path) -> anyhow::Result<()> {
    let source = sqlite_file(config, "backup")?;
    if !source.exists() {
        return Err(anyhow!(
            "There is no database at {} to back up. Check QBO_MCP_DATABASE_URL and QBO_MCP_DATA_DIR.",
            source.display()
        ));
    }
    if file.exists() {
        return Err(anyhow!(
            "{} already exists; a backup never overwrites a file. Choose a new name or remove it first.",
            file.display()
        ));
    }
    // Written under a temporary name and renamed when complete, so FILE is never half a backup.
    let partial = with_suffix(file, ".partial");
    create_private(&partial).map_err(|e| {
        anyhow!(
            "Cannot create {}: {e}. Check that the directory exists and is writable.",
            partial.display()
        )
    })?;
    let result = async {
        let db = Db::connect(config.database_url.expose()).await?;
        let status = db::status(&db).await;
        let Db::Sqlite(pool) = &db else {
            return Err(anyhow!("`qbo-mcp backup` works on SQLite only."));
        };
        let copied = sqlx::query("VACUUM INTO $1")
            .bind(partial.to_string_lossy().into_owned())
            .execute(pool)
            .await;
        db.close().await;
        copied.map_err(|e| anyhow!("SQLite could not copy the database: {e}."))?;
        sync(&partial).context("Cannot sync the backup to disk")?;
        std::fs::rename(&partial, file).context("Cannot give the backup its name")?;
        sync(file).context("Cannot sync the backup's directory")?;
        status
    }
    .await;
    let status = match result {
        Ok(status) => status,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or_default();
    eprintln!(
        "Backed up {} to {} ({size} bytes, schema version {}).",
        source.display(),
        file.display(),
        status.applied.last().copied().unwrap_or_default()
    );
    eprintln!(
        "The backup does not hold the secret key that seals the QuickBooks tokens in it: keep a copy of {} (or QBO_MCP_SECRET_KEY) too, stored apart from the backup.",
        config.data_dir.join("secret.key").display()
    );
    Ok(())
}

/// `qbo-mcp restore FILE`: checks FILE, then puts it in place of the configured database, with
/// every server stopped. The database it replaces is kept beside it.
pub async fn restore(config: &Config, file: &Path) -> anyhow::Result<()> {
    let target = sqlite_file(config, "restore")?;
    if !file.is_file() {
        return Err(anyhow!("There is no backup file at {}.", file.display()));
    }
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow!("Cannot create the data directory {}: {e}.", dir.display()))?;
    let _lock = InUse::exclusive(&target)?;

    // The copy is checked, not the original: what is checked is what gets installed.
    let incoming = with_suffix(&target, ".restoring");
    let _ = std::fs::remove_file(&incoming);
    {
        let mut to = create_private(&incoming)
            .map_err(|e| anyhow!("Cannot create {}: {e}.", incoming.display()))?;
        let mut from = std::fs::File::open(file)
            .map_err(|e| anyhow!("Cannot read {}: {e}.", file.display()))?;
        std::io::copy(&mut from, &mut to)
            .map_err(|e| anyhow!("Cannot copy {}: {e}.", file.display()))?;
    }
    let status = match check_backup(config, file, &incoming).await {
        Ok(status) => status,
        Err(e) => {
            remove_with_companions(&incoming);
            return Err(e);
        }
    };
    sync(&incoming).context("Cannot sync the restored database to disk")?;

    let aside = if target.exists() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let aside = with_suffix(&target, &format!(".replaced-{stamp}"));
        // The write-ahead log moves with its database, so the kept copy is whole.
        for suffix in ["-wal", "-shm"] {
            let from = with_suffix(&target, suffix);
            if from.exists() {
                std::fs::rename(&from, with_suffix(&aside, suffix))
                    .map_err(|e| anyhow!("Cannot move {} aside: {e}.", from.display()))?;
            }
        }
        std::fs::rename(&target, &aside)
            .map_err(|e| anyhow!("Cannot move {} aside: {e}.", target.display()))?;
        Some(aside)
    } else {
        None
    };
    std::fs::rename(&incoming, &target).map_err(|e| {
        anyhow!(
            "Cannot put the backup in place at {}: {e}.",
            target.display()
        )
    })?;
    sync(&target).context("Cannot sync the data directory")?;

    eprintln!(
        "Restored {} into {} (schema version {}).",
        file.display(),
        target.display(),
        status.applied.last().copied().unwrap_or_default()
    );
    if !status.pending.is_empty() {
        eprintln!(
            "The next `qbo-mcp serve` (or `qbo-mcp migrate`) applies {} newer migration(s) to it.",
            status.pending.len()
        );
    }
    if let Some(aside) = aside {
        eprintln!("The database it replaced is kept at {}.", aside.display());
    }
    Ok(())
}

fn remove_with_companions(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(with_suffix(path, suffix));
    }
}

/// Checks the copy at `incoming` of the backup `file`: a SQLite database that passes
/// `PRAGMA integrity_check`, migrated by qbo-mcp to a version this build knows, sealed with the
/// configured secret key (when one is configured).
async fn check_backup(config: &Config, file: &Path, incoming: &Path) -> anyhow::Result<Status> {
    let not_a_backup = |why: String| {
        anyhow!(
            "{} is not a qbo-mcp backup this build can restore: {why}. Nothing was changed.",
            file.display()
        )
    };
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(|e| anyhow!("{e}"))?
        .filename(incoming)
        .create_if_missing(false);
    let mut conn = options
        .connect()
        .await
        .map_err(|e| not_a_backup(format!("SQLite cannot open it ({e})")))?;
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .map_err(|e| not_a_backup(format!("SQLite cannot read it ({e})")))?;
    if problems.iter().any(|p| p != "ok") {
        return Err(not_a_backup(format!(
            "SQLite's integrity check failed ({})",
            problems
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    let key_ids: Vec<String> = sqlx::query_scalar("SELECT key_id FROM secret_key_check")
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
    drop(conn);

    let db = Db::connect(&format!("sqlite://{}", incoming.display())).await?;
    let status = db::status(&db).await;
    db.close().await;
    let status = status?;
    if status.applied.is_empty() {
        return Err(not_a_backup(
            "it has no qbo-mcp schema version (no applied migrations)".to_owned(),
        ));
    }
    status
        .refuse_newer(db::Backend::Sqlite)
        .map_err(|e| anyhow!("{} cannot be restored by this build. {e}", file.display()))?;

    match configured_key(config)? {
        Some(key) if !key_ids.is_empty() && !key_ids.iter().any(|id| id == key.id()) => {
            return Err(anyhow!(
                "{} was sealed with the secret key id {}, but the configured key has id {}. Set QBO_MCP_SECRET_KEY (or put secret.key in {}) to the key the backed-up server used, then restore again. Nothing was changed.",
                file.display(),
                key_ids.join(", "),
                key.id(),
                config.data_dir.display()
            ));
        }
        Some(_) => {}
        None => eprintln!(
            "No secret key is configured yet: before starting the server, put the key the backed-up server used in {} or QBO_MCP_SECRET_KEY, or its QuickBooks connections cannot be opened.",
            config.data_dir.join("secret.key").display()
        ),
    }
    Ok(status)
}

/// The configured secret key, without generating one when there is none.
fn configured_key(config: &Config) -> anyhow::Result<Option<SecretKey>> {
    if config.secret_key.is_none() && !config.data_dir.join("secret.key").exists() {
        return Ok(None);
    }
    SecretKey::load_or_create(config.secret_key.as_ref(), &config.data_dir).map(Some)
}
