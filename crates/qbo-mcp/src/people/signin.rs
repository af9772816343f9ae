//! Password sign-in. Failed attempts are counted per name and per address in the database (so
//! every replica shares the budget); over budget → `429 rate_limited` with `Retry-After`, before
//! any password is hashed. Unknown names, people without a password and deactivated people are
//! verified against a dummy hash and get the same answer as a wrong password
//! (`401 invalid_credentials`), in the same time. Success starts a new session (the caller
//! ends the previous one: the id rotates).

use std::net::IpAddr;

use crate::db::Db;
use crate::error::AppError;
use crate::people::{Person, password, session};
use crate::secret::Secret;
use crate::time::now;
use crate::{on_db, on_tx};

/// Failed attempts allowed per name in a window.
pub const MAX_PER_NAME: i64 = 10;
/// Failed attempts allowed per address in a window (higher: an office shares one address).
pub const MAX_PER_ADDRESS: i64 = 50;
/// The window, in seconds.
pub const WINDOW_SECS: i64 = 15 * 60;

fn buckets(username: &str, ip: Option<IpAddr>) -> (String, Option<String>) {
    (
        format!("name:{username}"),
        ip.map(|ip| format!("addr:{ip}")),
    )
}

/// `Err(429)` when either bucket is over budget.
async fn check_budget(db: &Db, name: &str, addr: Option<&str>) -> Result<(), AppError> {
    let t = now();
    let rows: Vec<(String, i64, i64)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT bucket, window_start, failures FROM signin_failures
             WHERE (bucket = $1 OR bucket = $2) AND window_start > $3",
        )
        .bind(name)
        .bind(addr.unwrap_or(""))
        .bind(t - WINDOW_SECS)
        .fetch_all(pool)
        .await?
    });
    let wait = rows
        .iter()
        .filter(|(bucket, _, failures)| {
            let max = if bucket.starts_with("addr:") {
                MAX_PER_ADDRESS
            } else {
                MAX_PER_NAME
            };
            *failures >= max
        })
        .map(|(_, start, _)| start + WINDOW_SECS - t)
        .max();
    match wait {
        Some(secs) => Err(AppError::too_many_requests(secs.max(1) as u64)),
        None => Ok(()),
    }
}

async fn count_failure(db: &Db, bucket: &str) -> Result<(), AppError> {
    let t = now();
    on_db!(db, pool => {
        sqlx::query(
            "INSERT INTO signin_failures (bucket, window_start, failures) VALUES ($1, $2, 1)
             ON CONFLICT (bucket) DO UPDATE SET
               failures = CASE WHEN signin_failures.window_start <= $3 THEN 1 ELSE signin_failures.failures + 1 END,
               window_start = CASE WHEN signin_failures.window_start <= $3 THEN $2 ELSE signin_failures.window_start END",
        )
        .bind(bucket)
        .bind(t)
        .bind(t - WINDOW_SECS)
        .execute(pool)
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
    let (name_bucket, addr_bucket) = buckets(&username, ip);
    check_budget(db, &name_bucket, addr_bucket.as_deref()).await?;
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
    let ok = password::verify(password_text, stored).await? && id.is_some();
    let Some(id) = id.filter(|_| ok) else {
        count_failure(db, &name_bucket).await?;
        if let Some(addr) = &addr_bucket {
            count_failure(db, addr).await?;
        }
        return Err(invalid());
    };
    let mut tx = db.begin_write().await?;
    let stamp: Option<String> = on_tx!(&mut tx, conn => {
        sqlx::query_scalar("UPDATE persons SET last_login_at = $2 WHERE id = $1 AND is_active RETURNING security_stamp")
            .bind(id)
            .bind(now())
            .fetch_optional(&mut *conn)
            .await?
    });
    let stamp = stamp.ok_or_else(invalid)?;
    on_tx!(&mut tx, conn => {
        sqlx::query("DELETE FROM signin_failures WHERE bucket = $1")
            .bind(&name_bucket)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    let cookie = session::start(&mut tx, id, &stamp).await?;
    let person = super::admin::person_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok((person, cookie))
}
