//! Browser sessions, in our own table so that any replica can check any session. The cookie
//! carries 256 random bits; the table only their SHA-256, the person's security stamp at the
//! time, and the idle and absolute expiry. Checking a session is one indexed query that also
//! compares the stamp and `is_active`, so a stamp change (`people::access`) ends it on the very
//! next request.

use crate::db::{Db, Tx};
use crate::error::AppError;
use crate::people::{Person, PersonRow, person_columns};
use crate::secret::{Secret, new_token, token_hash};
use crate::time::now;
use crate::{on_db, on_tx};

/// A session ends after this long without a request.
pub const IDLE_SECS: i64 = 12 * 3600;
/// A session ends this long after sign-in, however busy.
pub const ABSOLUTE_SECS: i64 = 7 * 24 * 3600;
/// `last_seen_at` is written at most this often, so a check is usually a pure read.
const TOUCH_EVERY_SECS: i64 = 300;

/// A live session found from its cookie.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie value: the session's key.
    pub id_hash: String,
    /// The security stamp the session was issued under (the person's current one).
    pub stamp: String,
    /// When the session started (Unix seconds): a first password may be set only in a fresh
    /// identity-provider session (`password::change_own`).
    pub created_at: i64,
    pub person: Person,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    person: PersonRow,
    stamp: String,
    session_created_at: i64,
    last_seen_at: i64,
}

/// Starts a session for the person (who must still carry `stamp`); the cookie value is
/// returned once.
pub async fn start(tx: &mut Tx, person_id: i64, stamp: &str) -> Result<Secret<String>, AppError> {
    let value = new_token("");
    let t = now();
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO sessions (id_hash, person_id, stamp, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(token_hash(value.expose()))
        .bind(person_id)
        .bind(stamp)
        .bind(t)
        .bind(t + ABSOLUTE_SECS)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(value)
}

/// The session a cookie value names, if it is live and its person active with the same stamp.
pub async fn find(db: &Db, cookie: &str) -> Result<Option<Session>, AppError> {
    let id_hash = token_hash(cookie);
    let t = now();
    let row: Option<SessionRow> = on_db!(db, pool => {
        sqlx::query_as(concat!(
            "SELECT ", person_columns!(), ", s.stamp, s.created_at AS session_created_at, s.last_seen_at FROM sessions s
             JOIN persons p ON p.id = s.person_id
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3
               AND s.stamp = p.security_stamp AND p.is_active"
        ))
        .bind(&id_hash)
        .bind(t)
        .bind(t - IDLE_SECS)
        .fetch_optional(pool)
        .await?
    });
    let Some(row) = row else { return Ok(None) };
    if row.last_seen_at < t - TOUCH_EVERY_SECS {
        on_db!(db, pool => {
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
                .bind(&id_hash)
                .bind(t)
                .execute(pool)
                .await?
                .rows_affected()
        });
    }
    Ok(Some(Session {
        id_hash,
        stamp: row.stamp,
        created_at: row.session_created_at,
        person: row.person.into_person()?,
    }))
}

/// Ends the session a cookie value names (sign-out, or rotation at sign-in).
pub async fn end(db: &Db, cookie: &str) -> Result<(), AppError> {
    on_db!(db, pool => {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(token_hash(cookie))
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// Removes expired sessions (housekeeping; expired ones are refused regardless).
pub async fn purge_expired(db: &Db) -> Result<u64, AppError> {
    let t = now();
    Ok(on_db!(db, pool => {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(t)
            .bind(t - IDLE_SECS)
            .execute(pool)
            .await?
            .rows_affected()
    }))
}
