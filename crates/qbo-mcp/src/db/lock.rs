//! The cross-replica lock: work done under it is serialised across every process that shares
//! the database. PostgreSQL: a transaction-scoped advisory lock (`pg_advisory_xact_lock`) on a
//! hash of the key. SQLite: an immediate transaction, which holds the database's write lock.
//! Either way the lock ends with the transaction, so a crashed holder cannot keep it.

use std::future::Future;
use std::pin::Pin;

use sha2::{Digest, Sha256};

use super::{Db, Tx};

/// The advisory-lock number for a key: stable across processes and versions.
pub fn lock_id(key: &str) -> i64 {
    let digest = Sha256::digest(format!("qbo-mcp lock:{key}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

impl Tx {
    /// Also takes the lock named `key`, held until this transaction ends. On SQLite a write
    /// transaction (`Db::begin_write`) already excludes every other writer, so this is a no-op.
    pub async fn lock(&mut self, key: &str) -> Result<(), sqlx::Error> {
        if let Tx::Postgres(tx) = self {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock_id(key))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

impl Db {
    /// Begins a transaction that holds the lock named `key` until it commits or rolls back.
    pub async fn begin_locked(&self, key: &str) -> Result<Tx, sqlx::Error> {
        match self {
            Db::Sqlite(_) => self.begin_write().await,
            Db::Postgres(pool) => {
                let mut tx = Tx::Postgres(pool.begin().await?);
                tx.lock(key).await?;
                Ok(tx)
            }
        }
    }

    /// Runs `work` inside a transaction holding the lock named `key`, committing when it
    /// returns `Ok` and rolling back when it returns `Err`.
    pub async fn with_lock<T, E, F>(&self, key: &str, work: F) -> Result<T, E>
    where
        E: From<sqlx::Error>,
        F: for<'t> FnOnce(&'t mut Tx) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>,
    {
        let mut tx = self.begin_locked(key).await?;
        match work(&mut tx).await {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(e) => {
                // Rolling back explicitly returns the connection sooner; dropping would too.
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_are_stable_and_distinct() {
        assert_eq!(lock_id("company:1"), lock_id("company:1"));
        assert_ne!(lock_id("company:1"), lock_id("company:2"));
    }
}
