//! Passwords: the length rules, and Argon2id hashing and verification off the async threads
//! with bounded parallelism (a sign-in storm must not starve other requests). Unknown names
//! are verified against a dummy hash so that they take as long as known ones. Passwords only
//! ever travel in a [`Secret`]; nothing here logs them.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;

use crate::error::AppError;
use crate::secret::Secret;

/// docs/people.md ("Signing in"): at least 12 characters, at most 1024 bytes.
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

/// A first password may be set through a browser session only this long after the
/// identity-provider sign-in that started it.
pub const FIRST_PASSWORD_SECS: i64 = 10 * 60;

pub use super::Proof;

fn link_required() -> AppError {
    AppError::forbidden(
        "You have no password yet. Set one with the invitation or password link an admin sent you, or right after signing in through your identity provider (within 10 minutes).",
    )
    .with_code("password_link_required")
}

/// A person changes their own password.
///
/// - With a password already: `current` must be right. Every check is one attempt against the
///   sign-in budget (`429 rate_limited` beyond it), counted before hashing.
/// - Without one (a pending invitation, or identity-provider only): only a browser session
///   started by an identity-provider sign-in within [`FIRST_PASSWORD_SECS`] may set the first
///   password (else `403 password_link_required`); a bearer token never can.
///
/// The forced-change flag clears, the person's security stamp changes (every session, personal
/// access token and assistant grant of theirs ends) and their unused invitation and reset
/// links are void. The browser session that asked is re-issued under the new stamp: its new
/// cookie value is returned. Errors: `401 wrong_password`, `409 password_changed`, the length
/// rules.
pub async fn change_own(
    db: &crate::db::Db,
    person_id: i64,
    proof: Proof,
    current: Option<&Secret<String>>,
    new: &Secret<String>,
    ip: Option<std::net::IpAddr>,
) -> Result<Option<Secret<String>>, AppError> {
    use crate::people::{access, admin, signin};
    use crate::{on_db, on_tx};
    validate(new)?;
    let (username, stored): (String, Option<String>) = on_db!(db, pool => {
        sqlx::query_as("SELECT username, password_hash FROM persons WHERE id = $1")
            .bind(person_id)
            .fetch_one(pool)
            .await?
    });
    let attempt = match &stored {
        Some(stored) => {
            let attempt = signin::take_attempt(db, &username, ip).await?;
            let given = current.cloned().unwrap_or_default();
            if !verify(&given, Some(stored.clone())).await? {
                return Err(AppError::unauthorized("The current password is not right.")
                    .with_code("wrong_password"));
            }
            Some(attempt)
        }
        None => {
            let Proof::Session { created_at, .. } = proof else {
                return Err(link_required());
            };
            let linked: i64 = on_db!(db, pool => {
                sqlx::query_scalar("SELECT COUNT(*) FROM identities WHERE person_id = $1")
                    .bind(person_id)
                    .fetch_one(pool)
                    .await?
            });
            // Only an identity-provider sign-in starts a session for a person without a
            // password; the session must be that recent one.
            if linked == 0 || created_at < crate::time::now() - FIRST_PASSWORD_SECS {
                return Err(link_required());
            }
            None
        }
    };
    let hash = hash(new).await?;
    let mut tx = db.begin_locked(admin::LOCK).await?;
    // Only over the password that was checked: a concurrent change or reset wins.
    let updated = on_tx!(&mut tx, conn => {
        sqlx::query(
            "UPDATE persons SET password_hash = $2, force_password_change = FALSE
             WHERE id = $1 AND is_active AND COALESCE(password_hash, '') = $3",
        )
        .bind(person_id)
        .bind(&hash)
        .bind(stored.as_deref().unwrap_or(""))
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if updated == 0 {
        return Err(AppError::conflict(
            "password_changed",
            "Your password was changed or reset meanwhile. Sign in again and retry.",
        ));
    }
    if let Some(attempt) = &attempt {
        signin::succeeded(&mut tx, attempt).await?;
    }
    access::void_links(&mut tx, person_id).await?;
    let stamp = access::renew(&mut tx, person_id).await?;
    let cookie = match proof {
        Proof::Session { .. } => {
            Some(crate::people::session::start(&mut tx, person_id, &stamp).await?)
        }
        Proof::Token => None,
    };
    crate::audit::record(
        &mut tx,
        &crate::audit::NewEntry::new(
            Some(&username),
            "user.change_password",
            crate::audit::Outcome::Ok,
        )
        .target(username.clone())
        .details(serde_json::json!({"first_password": stored.is_none()})),
    )
    .await?;
    tx.commit().await?;
    Ok(cookie)
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
