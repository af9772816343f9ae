//! Storage: one handle over SQLite or PostgreSQL, chosen by the database URL.
//!
//! Features write one SQL text where the dialects agree (`$1` placeholders work on both) and run
//! it through [`on_db!`] or [`on_tx!`], which expand the same body once per backend. Backend
//! specific code lives only here: connecting, migrations, the cross-replica lock, and the
//! lock that tells `restore` a server is using a SQLite file.

mod in_use;
mod lock;
mod migrate;
mod pool;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::secret::redact_url;

pub use in_use::InUse;
pub use lock::lock_id;
pub use migrate::{Known, Status, migrate, migrate_to, status};
pub use pool::Pool;

/// Connections sqlx's pool keeps, and connections a [`Pool`] keeps beside it for single
/// statements, per backend (the PostgreSQL total, 16, is what one replica may hold).
const POSTGRES_CONNECTIONS: (u32, usize) = (8, 8);
const SQLITE_CONNECTIONS: (u32, usize) = (8, 4);

/// Which database engine a handle talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A pool of connections to the one database all replicas share.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(Pool<Sqlite>),
    Postgres(Pool<Postgres>),
}

/// An open transaction on either backend. Dropping it rolls back.
#[derive(Debug)]
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$pool` bound to the backend's pool (`&Pool<Sqlite>` or `&Pool<Postgres>`,
/// an executor that also dereferences to sqlx's pool).
/// The body is compiled once per backend, so the same query code serves both. Both arms must
/// yield one type: end an `execute` with `.rows_affected()` (or `;`), and decode rows into
/// plain types or `#[derive(sqlx::FromRow)]` structs.
#[macro_export]
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$conn` bound to the transaction's connection
/// (`&mut SqliteConnection` or `&mut PgConnection`); use `&mut *$conn` as the executor.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::db::Tx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}

impl Db {
    /// Connects (creating the SQLite file and its directory when needed). Errors are one
    /// sentence naming the URL with any password removed.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("sqlite:") {
            connect_sqlite(url)
                .await
                .map(|pool| Db::Sqlite(Pool::new(pool, SQLITE_CONNECTIONS.1)))
        } else if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let unreachable = |e: sqlx::Error| {
                let e = match e.as_database_error() {
                    Some(db) => db.message().to_owned(),
                    None => e.to_string(),
                };
                anyhow!(
                    "Cannot connect to the database at {}: {e}. Check QBO_MCP_DATABASE_URL and that the database server is running.",
                    redact_url(url)
                )
            };
            let options = PgConnectOptions::from_str(url).map_err(|e| {
                anyhow!("`{}` is not a usable PostgreSQL URL: {e}.", redact_url(url))
            })?;
            // One direct connection first: a pool would only report "timed out", hiding why.
            PgConnection::connect_with(&options)
                .await
                .map_err(unreachable)?
                .close()
                .await
                .map_err(unreachable)?;
            let pool = PgPoolOptions::new()
                .max_connections(POSTGRES_CONNECTIONS.0)
                // sqlx checks a connection when it goes back to its pool (single statements
                // avoid that: `Pool`); a second check when it is taken out would add another
                // round trip (docs/benchmarks.md, "Tool calls").
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(unreachable)?;
            Ok(Db::Postgres(Pool::new(pool, POSTGRES_CONNECTIONS.1)))
        } else {
            Err(anyhow!(
                "QBO_MCP_DATABASE_URL must start with sqlite:// or postgres://."
            ))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    /// A transaction for reads, or writes that need no serialisation.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a read-then-write never fails half-way with "database is locked".
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    pub async fn close(&self) {
        on_db!(self, pool => pool.close().await)
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.rollback().await,
            Tx::Postgres(t) => t.rollback().await,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }
}

/// The file a `sqlite:` URL names, or `None` for an in-memory database or a PostgreSQL URL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(PathBuf::from(path))
    }
}

/// Creates the database file readable only by its owner, if it does not exist yet: it holds
/// password hashes and sealed QuickBooks tokens. SQLite gives its `-wal` and `-shm` files the
/// same permissions. An existing file keeps the permissions its owner chose.
fn create_private(path: &std::path::Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(anyhow!(
            "Cannot create the SQLite database {}: {e}. Check QBO_MCP_DATABASE_URL and that the directory is writable.",
            path.display()
        )),
    }
}

async fn connect_sqlite(url: &str) -> anyhow::Result<sqlx::SqlitePool> {
    if let Some(path) = sqlite_path(url)
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "Cannot create the directory {} for the SQLite database",
                dir.display()
            )
        })?;
    }
    if let Some(path) = sqlite_path(url) {
        create_private(&path)?;
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| anyhow!("`{}` is not a usable SQLite URL: {e}.", redact_url(url)))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a commit survives power loss, not only a crash. Tokens from Intuit are
        // committed once and cannot be fetched again, so durability wins over speed here.
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30));
    SqlitePoolOptions::new()
        .max_connections(SQLITE_CONNECTIONS.0)
        // As for PostgreSQL: checked when returned, not again when taken.
        .test_before_acquire(false)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(|e| {
            anyhow!(
                "Cannot open the SQLite database at {}: {e}. Check QBO_MCP_DATABASE_URL and that the directory is writable.",
                redact_url(url)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://./qbo-mcp-data/qbo-mcp.db"),
            Some(PathBuf::from("./qbo-mcp-data/qbo-mcp.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
