//! Passwords: the length rules, and Argon2id hashing and verification off the async threads
//! with bounded parallelism (a sign-in storm must not starve other requests). Unknown names
//! are verified against a dummy hash so that they take as long as known ones. Passwords only
//! ever travel in a [`Secret`]; nothing here logs them.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;

use crate::error::AppError;
use crate::secret::Secret;

/// SPEC §4: at least 12 characters, at most 1024 bytes.
pub const MIN_CHARS: usize = 12;
pub const MAX_BYTES: usize = 1024;

/// Checks the length rules; the error names the rule.
pub fn validate(password: &Secret<String>) -> Result<(), AppError> {
    let p = password.expose();
    if p.len() > MAX_BYTES {
        return Err(AppError::invalid(
            "password_too_long",
            format!("A password may be at most {MAX_BYTES} bytes long."),
        ));
    }
    if p.chars().count() < MIN_CHARS {
        return Err(AppError::invalid(
            "password_too_short",
            format!("A password needs at least {MIN_CHARS} characters."),
        ));
    }
    Ok(())
}

/// At most this many hashes run at once (one per core): the rest wait their turn instead of
/// occupying every blocking thread and every core.
fn permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        Semaphore::new(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )
    })
}

/// Runs a CPU-heavy closure on the blocking pool, within the parallelism bound.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let _permit = permits()
        .acquire()
        .await
        .map_err(|e| AppError::internal(anyhow::anyhow!("password semaphore closed: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::internal(anyhow::anyhow!("password task failed: {e}")))
}

/// Argon2id PHC string of a password (validated first).
pub async fn hash(password: &Secret<String>) -> Result<String, AppError> {
    validate(password)?;
    let password = password.clone();
    bounded(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|h| h.to_string())
    })
    .await?
    .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 hash: {e}")))
}

/// A hash of a random password, so that verifying an unknown name costs the same.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random: [u8; 16] = rand::random();
        Argon2::default()
            .hash_password(&random)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Whether `password` matches `stored`. With `stored = None` (unknown name, no password) it
/// verifies against a dummy hash and answers false, taking the same time.
pub async fn verify(password: &Secret<String>, stored: Option<String>) -> Result<bool, AppError> {
    if password.expose().len() > MAX_BYTES {
        // Never hash unbounded input; the answer is the same as for a wrong password.
        return Ok(false);
    }
    let password = password.clone();
    bounded(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let ok = Argon2::default()
            .verify_password(password.expose().as_bytes(), stored.as_str())
            .is_ok();
        known && ok
    })
    .await
}

/// A person changes their own password: the current one is required when they have one. The
/// forced-change flag clears, and every other session of theirs ends (`keep` is the session
/// making the change, if any). Errors: `401 wrong_password`, the length rules.
pub async fn change_own(
    db: &crate::db::Db,
    person_id: i64,
    keep: Option<&str>,
    current: Option<&Secret<String>>,
    new: &Secret<String>,
) -> Result<(), AppError> {
    use crate::{on_db, on_tx};
    validate(new)?;
    let stored: Option<String> = on_db!(db, pool => {
        sqlx::query_scalar("SELECT password_hash FROM persons WHERE id = $1")
            .bind(person_id)
            .fetch_one(pool)
            .await?
    });
    if let Some(stored) = stored {
        let given = current.cloned().unwrap_or_default();
        if !verify(&given, Some(stored)).await? {
            return Err(AppError::unauthorized("The current password is not right.")
                .with_code("wrong_password"));
        }
    }
    let hash = hash(new).await?;
    let mut tx = db.begin_write().await?;
    let username: String = on_tx!(&mut tx, conn => {
        sqlx::query_scalar("UPDATE persons SET password_hash = $2, force_password_change = FALSE WHERE id = $1 RETURNING username")
            .bind(person_id)
            .bind(&hash)
            .fetch_one(&mut *conn)
            .await?
    });
    crate::people::session::end_all_but(&mut tx, person_id, keep).await?;
    crate::audit::record(
        &mut tx,
        &crate::audit::NewEntry::new(
            Some(&username),
            "user.change_password",
            crate::audit::Outcome::Ok,
        )
        .target(username.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let pw = Secret::new("correct horse battery".to_owned());
        let h = hash(&pw).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&pw, Some(h.clone())).await.unwrap());
        assert!(
            !verify(&Secret::new("wrong password!!".into()), Some(h))
                .await
                .unwrap()
        );
        assert!(!verify(&pw, None).await.unwrap());
    }

    #[test]
    fn lengths() {
        assert_eq!(
            validate(&Secret::new("short".into())).unwrap_err().code,
            "password_too_short"
        );
        assert_eq!(
            validate(&Secret::new("x".repeat(1025))).unwrap_err().code,
            "password_too_long"
        );
        // Twelve characters, more bytes: counts characters.
        assert!(validate(&Secret::new("éééééééééééé".into())).is_ok());
    }
}
