//! Schema migrations, one folder per backend (`migrations/sqlite`, `migrations/postgres`),
//! embedded in the binary. They only ever add; the schema-parity test keeps the folders in step.
//!
//! Before applying anything, the applied versions are compared with the ones this build knows:
//! a database migrated by a newer qbo-mcp is refused with a sentence that says so, never
//! half-understood (docs/operations.md, "Upgrades").

use anyhow::anyhow;
use sqlx::migrate::{MigrateError, Migrator};

use super::{Backend, Db};
use crate::on_db;

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The table sqlx records applied migrations in.
const TABLE: &str = "_sqlx_migrations";

fn migrator(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    }
}

/// A migration this build knows: its version (the file's number) and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub version: i64,
    pub description: String,
}

/// Where a database's schema stands against this build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Versions recorded as applied, ascending.
    pub applied: Vec<i64>,
    /// Migrations this build would apply, ascending.
    pub pending: Vec<Known>,
    /// Applied versions this build does not know: a newer qbo-mcp migrated the database.
    pub unknown: Vec<i64>,
}

impl Status {
    /// The newest migration this build knows.
    pub fn latest_known(backend: Backend) -> i64 {
        migrator(backend)
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0)
    }

    /// Every migration this build knows, ascending: all pending on an empty database.
    pub fn all_known(backend: Backend) -> Vec<Known> {
        migrator(backend)
            .iter()
            .map(|m| Known {
                version: m.version,
                description: m.description.to_string(),
            })
            .collect()
    }

    /// `Err` with the sentence to show when a newer qbo-mcp migrated this database.
    pub fn refuse_newer(&self, backend: Backend) -> anyhow::Result<()> {
        if self.unknown.is_empty() {
            return Ok(());
        }
        Err(anyhow!(
            "The database was migrated by a newer qbo-mcp: it has schema version {} (migrations {} unknown to this build), and this build knows up to {}. Run the newer qbo-mcp, or restore a backup made before the upgrade (docs/operations.md, \"Upgrades\").",
            self.applied.last().copied().unwrap_or_default(),
            self.unknown
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            Self::latest_known(backend)
        ))
    }
}

/// Compares the database's applied migrations with this build's, changing nothing.
pub async fn status(db: &Db) -> anyhow::Result<Status> {
    let applied = applied_versions(db)
        .await
        .map_err(|e| anyhow!("Cannot read the applied database migrations: {e}."))?;
    let known = migrator(db.backend());
    let pending = Status::all_known(db.backend())
        .into_iter()
        .filter(|m| !applied.contains(&m.version))
        .collect();
    let unknown = applied
        .iter()
        .copied()
        .filter(|v| !known.version_exists(*v))
        .collect();
    Ok(Status {
        applied,
        pending,
        unknown,
    })
}

async fn applied_versions(db: &Db) -> Result<Vec<i64>, sqlx::Error> {
    let exists: bool = match db {
        Db::Sqlite(pool) => {
            sqlx::query_scalar(
                "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = $1",
            )
            .bind(TABLE)
            .fetch_one(pool)
            .await?
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(TABLE)
                .fetch_one(pool)
                .await?
        }
    };
    if !exists {
        return Ok(Vec::new());
    }
    on_db!(db, pool => {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
    })
}

/// Applies every pending migration, after refusing a database a newer qbo-mcp migrated. Safe
/// to run from several replicas at once on PostgreSQL (sqlx holds an advisory lock while
/// migrating).
pub async fn migrate(db: &Db) -> anyhow::Result<()> {
    status(db).await?.refuse_newer(db.backend())?;
    let result = on_db!(db, pool => migrator(db.backend()).run(&**pool).await);
    result.map_err(explain)
}

/// The sentence for a failed migration run.
fn explain(e: MigrateError) -> anyhow::Error {
    match e {
        MigrateError::VersionMismatch(version) => anyhow!(
            "Migration {version} was applied to this database from a different text than this build's (a development build, or an edited migration file). Run the build that migrated it, or restore a backup made by a released build."
        ),
        e => anyhow!("Cannot apply the database migrations: {e}."),
    }
}

/// Applies the migrations up to and including `version`, no further: how the upgrade tests
/// build a database as an older release left it.
pub async fn migrate_to(db: &Db, version: i64) -> anyhow::Result<()> {
    status(db).await?.refuse_newer(db.backend())?;
    let result = on_db!(db, pool => migrator(db.backend()).run_to(version, &**pool).await);
    result.map_err(explain)
}
