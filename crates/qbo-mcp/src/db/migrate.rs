//! Schema migrations, one folder per backend (`migrations/sqlite`, `migrations/postgres`),
//! embedded in the binary. They only ever add; the schema-parity test keeps the folders in step.

use anyhow::anyhow;

use super::Db;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Applies every pending migration. Safe to run from several replicas at once on PostgreSQL
/// (sqlx holds an advisory lock while migrating).
pub async fn migrate(db: &Db) -> anyhow::Result<()> {
    let result = match db {
        Db::Sqlite(pool) => SQLITE.run(pool).await,
        Db::Postgres(pool) => POSTGRES.run(pool).await,
    };
    result.map_err(|e| anyhow!("Cannot apply the database migrations: {e}."))
}
