//! Password sign-in, and the budget of password attempts. Every attempt to check a password
//! (a sign-in, or the `current_password` of a password change) is counted per name and per
//! client address in the database *before* the password is hashed, in one transaction that
//! also checks the budget ([`take_attempt`]): the counting upsert locks the bucket's row, so
//! concurrent attempts on any number of replicas are counted one after another and at most the
//! budget is ever checked. Over budget → `429 rate_limited` with `Retry-After`, and nothing is
//! hashed. A success clears the name's count and gives the address its attempt back
//! ([`succeeded`]), so a storm of good sign-ins from one office is never throttled.
//!
//! Unknown names, people without a password and deactivated people are verified against a
//! dummy hash and get the same answer as a wrong password (`401 invalid_credentials`), in the
//! same time. Success starts a new session (the caller ends the previous one: the id rotates).
//! The client address comes from `web::client_ip` (the peer, or the nearest address a
//! `QBO_MCP_TRUSTED_PROXIES` proxy reports), never from a header alone.

use std::net::IpAddr;

use crate::db::{Db, Tx};
use crate::error::AppError;
use crate::people::{Person, password, session};
use crate::secret::Secret;
use crate::time::now;
use crate::{on_db, on_tx};

/// Password attempts allowed per name in a window.
pub const MAX_PER_NAME: i64 = 10;
/// Password attempts allowed per address in a window (higher: an office shares one address).
pub const MAX_PER_ADDRESS: i64 = 50;
/// The window, in seconds.
pub const WINDOW_SECS: i64 = 15 * 60;

/// One counted password attempt: the buckets it was counted in.
#[derive(Debug)]
pub(crate) struct Attempt {
    name: String,
    addr: Option<String>,
}

/// Counts one password attempt for `username` from `ip` against both budgets, or refuses it
/// (`429 rate_limited`, counting nothing) when either budget is spent. Call it before hashing.
pub(crate) async fn take_attempt(
    db: &Db,
    username: &str,
    ip: Option<IpAddr>,
) -> Result<Attempt, AppError> {
    let attempt = Attempt {
        name: format!("name:{username}"),
        addr: ip.map(|ip| format!("addr:{ip}")),
    };
    let t = now();
    let mut tx = db.begin_write().await?;
    let mut wait: Option<i64> = None;
    let buckets = std::iter::once((&attempt.name, MAX_PER_NAME))
        .chain(attempt.addr.iter().map(|a| (a, MAX_PER_ADDRESS)));
    // Always the name first, then the address: one lock order, so no deadlock.
    for (bucket, max) in buckets {
        let (window_start, attempts): (i64, i64) = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "INSERT INTO signin_failures (bucket, window_start, failures) VALUES ($1, $2, 1)
                 ON CONFLICT (bucket) DO UPDATE SET
                   failures = CASE WHEN signin_failures.window_start <= $3 THEN 1 ELSE signin_failures.failures + 1 END,
                   window_start = CASE WHEN signin_failures.window_start <= $3 THEN $2 ELSE signin_failures.window_start END
                 RETURNING window_start, failures",
            )
            .bind(bucket)
            .bind(t)
            .bind(t - WINDOW_SECS)
            .fetch_one(&mut *conn)
            .await?
        });
        if attempts > max {
            let secs = window_start + WINDOW_SECS - t;
            wait = Some(wait.unwrap_or(0).max(secs));
        }
    }
    match wait {
        Some(secs) => {
            // A refused attempt is not counted: it checked nothing.
            tx.rollback().await?;
            metrics::counter!("signin_limited_total").increment(1);
            Err(AppError::too_many_requests(secs.max(1) as u64))
        }
        None => {
            tx.commit().await?;
            Ok(attempt)
        }
    }
}

/// The password was right: the name's count is cleared and the address gets its attempt back.
pub(crate) async fn succeeded(tx: &mut Tx, attempt: &Attempt) -> Result<(), AppError> {
    on_tx!(tx, conn => {
        sqlx::query("DELETE FROM signin_failures WHERE bucket = $1")
            .bind(&attempt.name)
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE signin_failures SET failures = failures - 1 WHERE bucket = $1 AND failures > 0")
            .bind(attempt.addr.as_deref().unwrap_or(""))
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    Ok(())
}

fn invalid() -> AppError {
    AppError::unauthorized("Unknown username or wrong password.").with_code("invalid_credentials")
}

#[derive(sqlx::FromRow)]
struct Candidate {
    id: i64,
    password_hash: Option<String>,
    is_active: bool,
}

/// Checks a name and password. On success: a new session (cookie value) for the person.
pub async fn with_password(
    db: &Db,
    username: &str,
    password_text: &Secret<String>,
    ip: Option<IpAddr>,
) -> Result<(Person, Secret<String>), AppError> {
    let username = username.trim().to_ascii_lowercase();
    if username.is_empty() || username.len() > 64 {
        return Err(invalid());
    }
    let attempt = take_attempt(db, &username, ip).await?;
    let candidate: Option<Candidate> = on_db!(db, pool => {
        sqlx::query_as("SELECT id, password_hash, is_active FROM persons WHERE username = $1")
            .bind(&username)
            .fetch_optional(pool)
            .await?
    });
    let (id, stored) = match candidate {
        Some(c) if c.is_active => (Some(c.id), c.password_hash),
        _ => (None, None),
    };
    let ok = password::verify(password_text, stored.clone()).await? && id.is_some();
    let (Some(id), Some(checked_hash)) = (id.filter(|_| ok), stored) else {
        // The attempt stays counted.
        return Err(invalid());
    };
    let mut tx = db.begin_write().await?;
    let stamp: Option<String> = on_tx!(&mut tx, conn => {
        // Only if the password checked is still the person's (not changed or reset meanwhile).
        sqlx::query_scalar(
            "UPDATE persons SET last_login_at = $2 WHERE id = $1 AND is_active AND password_hash = $3
             RETURNING security_stamp",
        )
            .bind(id)
            .bind(now())
            .bind(&checked_hash)
            .fetch_optional(&mut *conn)
            .await?
    });
    let stamp = stamp.ok_or_else(invalid)?;
    succeeded(&mut tx, &attempt).await?;
    let cookie = session::start(&mut tx, id, &stamp).await?;
    let person = super::admin::person_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok((person, cookie))
}
