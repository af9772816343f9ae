//! Ending a person's access at once, on every replica: the security stamp. Sessions, personal
//! access tokens and OAuth grants carry the stamp they were issued under, and every check of
//! one compares it with the person's current stamp in the query that loads the person
//! ([`super::load_current`], `join_current_person!`). [`renew`] changes the stamp, so all of
//! them stop working on the next request wherever it lands. It runs on every password change
//! or reset, deactivation, a role change that lowers access, and "Sign out everywhere".
//!
//! The session and token rows are deleted in the same transaction, so the person's lists show
//! only what still works; their OAuth grants need no change: the stamp ended them, and the
//! assistants list shows only grants under the person's current stamp.

use serde_json::json;

use crate::audit::{self, NewEntry, Outcome};
use crate::db::{Db, Tx};
use crate::error::AppError;
use crate::on_tx;
use crate::people::{Person, new_stamp, session};
use crate::secret::Secret;
use crate::time::now;

/// Gives the person a new security stamp and deletes their sessions and personal access
/// tokens. Returns the new stamp (for a session the caller re-issues).
pub(crate) async fn renew(tx: &mut Tx, person_id: i64) -> Result<String, AppError> {
    let stamp = new_stamp();
    on_tx!(tx, conn => {
        sqlx::query("UPDATE persons SET security_stamp = $2 WHERE id = $1")
            .bind(person_id)
            .bind(&stamp)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE person_id = $1")
            .bind(person_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM personal_tokens WHERE person_id = $1")
            .bind(person_id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    Ok(stamp)
}

/// Voids every unused invitation and reset link of the person: once a password is set by any
/// path, an older link must not set another one.
pub(crate) async fn void_links(tx: &mut Tx, person_id: i64) -> Result<u64, AppError> {
    Ok(on_tx!(tx, conn => {
        sqlx::query("UPDATE invitations SET used_at = $2 WHERE person_id = $1 AND used_at IS NULL")
            .bind(person_id)
            .bind(now())
            .execute(&mut *conn)
            .await?
            .rows_affected()
    }))
}

/// "Sign out everywhere": ends every session, personal access token and assistant grant of
/// the person. With `keep_browser`, the browser that asked gets a new session (the cookie
/// value is returned), so it stays signed in.
pub async fn sign_out_everywhere(
    db: &Db,
    person: &Person,
    keep_browser: bool,
) -> Result<Option<Secret<String>>, AppError> {
    let mut tx = db.begin_write().await?;
    let stamp = renew(&mut tx, person.id).await?;
    let cookie = if keep_browser {
        Some(session::start(&mut tx, person.id, &stamp).await?)
    } else {
        None
    };
    audit::record(
        &mut tx,
        &NewEntry::new(
            Some(&person.username),
            "user.sign_out_everywhere",
            Outcome::Ok,
        )
        .target(person.username.clone())
        .details(json!({"kept_this_browser": keep_browser})),
    )
    .await?;
    tx.commit().await?;
    Ok(cookie)
}
