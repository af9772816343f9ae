//! Whether a server is using a SQLite database: every `qbo-mcp serve` holds a shared lock on
//! the file `DB.lock` beside it for as long as it runs, and `qbo-mcp restore` takes that lock
//! exclusively before it replaces the database, so it refuses while any server runs and no
//! server starts half-way through a restore. The operating system drops the lock when the
//! process ends, however it ends. PostgreSQL needs none of this (`pg_restore` is the tool there).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use anyhow::anyhow;

/// A held lock on `DB.lock`; dropping it releases the lock.
#[derive(Debug)]
pub struct InUse {
    _file: File,
}

impl InUse {
    /// The lock file for the SQLite database at `db`.
    pub fn lock_path(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// For a server: a shared lock, so several servers may use one file. Refused while a
    /// restore holds it.
    pub fn serving(db: &Path) -> anyhow::Result<InUse> {
        let (file, path) = open(db)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(InUse { _file: file }),
            Err(TryLockError::WouldBlock) => Err(anyhow!(
                "A `qbo-mcp restore` is replacing the database {} right now; start the server again when it has finished.",
                db.display()
            )),
            Err(TryLockError::Error(e)) => Err(anyhow!(
                "Cannot lock {}: {e}. Check that the data directory is writable.",
                path.display()
            )),
        }
    }

    /// For a restore: the lock no server holds. Refused while any server uses the database.
    pub fn exclusive(db: &Path) -> anyhow::Result<InUse> {
        let (file, path) = open(db)?;
        match file.try_lock() {
            Ok(()) => Ok(InUse { _file: file }),
            Err(TryLockError::WouldBlock) => Err(anyhow!(
                "A qbo-mcp server is using the database {} (it holds {}); stop every `qbo-mcp serve` using it first, then run the restore again.",
                db.display(),
                path.display()
            )),
            Err(TryLockError::Error(e)) => Err(anyhow!(
                "Cannot lock {}: {e}. Check that the data directory is writable.",
                path.display()
            )),
        }
    }
}

fn open(db: &Path) -> anyhow::Result<(File, PathBuf)> {
    let path = InUse::lock_path(db);
    // On a first run the data directory does not exist yet.
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow!(
                "Cannot create the directory {} for the database: {e}.",
                dir.display()
            )
        })?;
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options.open(&path).map_err(|e| {
        anyhow!(
            "Cannot open the lock file {}: {e}. Check that the data directory exists and is writable.",
            path.display()
        )
    })?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_share_and_a_restore_excludes_them() {
        let dir = tempfile::tempdir().unwrap();
        // The data directory is made on a first run.
        let db = dir.path().join("data/qbo-mcp.db");
        let a = InUse::serving(&db).unwrap();
        let b = InUse::serving(&db).unwrap();
        let refused = InUse::exclusive(&db).unwrap_err().to_string();
        assert!(
            refused.contains("server is using the database"),
            "{refused}"
        );
        drop((a, b));
        let restore = InUse::exclusive(&db).unwrap();
        let refused = InUse::serving(&db).unwrap_err().to_string();
        assert!(refused.contains("restore"), "{refused}");
        drop(restore);
        InUse::serving(&db).unwrap();
    }
}
