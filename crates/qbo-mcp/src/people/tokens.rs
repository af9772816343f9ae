//! Personal access tokens (`qbo_pat_…`): for scripts and clients without OAuth. Shown once at
//! creation, stored as SHA-256 with the person's security stamp, checked with one indexed
//! query that also compares the stamp and `is_active`.

use serde::Serialize;

use crate::db::{Db, Tx};
use crate::error::AppError;
use crate::people::{Person, PersonRow, person_columns};
use crate::secret::{Secret, new_token, token_hash};
use crate::time::{now, time_text};
use crate::{on_db, on_tx};

/// Every personal access token starts with this.
pub const PREFIX: &str = "qbo_pat_";

/// A token as listed (never the secret itself).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    #[serde(serialize_with = "ser_time")]
    pub created_at: i64,
    #[serde(serialize_with = "ser_time_opt")]
    pub last_used_at: Option<i64>,
}

fn ser_time<S: serde::Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time_text(*t))
}

fn ser_time_opt<S: serde::Serializer>(t: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&time_text(*t)),
        None => s.serialize_none(),
    }
}

/// Validates a token's label: 1–100 printable characters.
pub fn parse_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::invalid(
            "invalid_token_name",
            "A token name is 1 to 100 printable characters, e.g. \"laptop script\".",
        ));
    }
    Ok(name.to_owned())
}

/// Creates a token for an active person; the secret is returned once.
pub async fn create(
    tx: &mut Tx,
    person_id: i64,
    name: &str,
) -> Result<(i64, Secret<String>), AppError> {
    let name = parse_name(name)?;
    let token = new_token(PREFIX);
    let id: Option<i64> = on_tx!(tx, conn => {
        sqlx::query_scalar(
            "INSERT INTO personal_tokens (person_id, name, token_hash, stamp, created_at)
             SELECT id, $2, $3, security_stamp, $4 FROM persons WHERE id = $1 AND is_active
             RETURNING id",
        )
        .bind(person_id)
        .bind(&name)
        .bind(token_hash(token.expose()))
        .bind(now())
        .fetch_optional(&mut *conn)
        .await?
    });
    let id = id
        .ok_or_else(|| AppError::conflict("inactive", "A deactivated person cannot get tokens."))?;
    Ok((id, token))
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    #[sqlx(flatten)]
    person: PersonRow,
    token_id: i64,
    last_used_at: Option<i64>,
}

/// The person a token belongs to, if it is valid: one indexed query.
pub async fn find(db: &Db, token: &str) -> Result<Option<(i64, Person)>, AppError> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let hash = token_hash(token);
    let row: Option<TokenRow> = on_db!(db, pool => {
        sqlx::query_as(concat!(
            "SELECT ", person_columns!(), ", t.id AS token_id, t.last_used_at FROM personal_tokens t
             JOIN persons p ON p.id = t.person_id
             WHERE t.token_hash = $1 AND t.stamp = p.security_stamp AND p.is_active"
        ))
        .bind(&hash)
        .fetch_optional(pool)
        .await?
    });
    let Some(row) = row else { return Ok(None) };
    let t = now();
    // Last use is informational: written at most once a minute to keep checks reads.
    if row.last_used_at.is_none_or(|last| last < t - 60) {
        on_db!(db, pool => {
            sqlx::query("UPDATE personal_tokens SET last_used_at = $2 WHERE id = $1")
                .bind(row.token_id)
                .bind(t)
                .execute(pool)
                .await?
                .rows_affected()
        });
    }
    Ok(Some((row.token_id, row.person.into_person()?)))
}

/// A person's tokens, newest first.
pub async fn list(db: &Db, person_id: i64) -> Result<Vec<TokenInfo>, AppError> {
    Ok(on_db!(db, pool => {
        sqlx::query_as(
            "SELECT id, name, created_at, last_used_at FROM personal_tokens
             WHERE person_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(person_id)
        .fetch_all(pool)
        .await?
    }))
}

/// Revokes one of a person's tokens; false when there is no such token of theirs.
pub async fn revoke(tx: &mut Tx, person_id: i64, id: i64) -> Result<bool, AppError> {
    let n = on_tx!(tx, conn => {
        sqlx::query("DELETE FROM personal_tokens WHERE id = $1 AND person_id = $2")
            .bind(id)
            .bind(person_id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    Ok(n > 0)
}
