//! Codes, grants and tokens in storage. A grant is what one authorization produced (person,
//! client, scope); its access and refresh tokens hang off it, and revoking it kills them all.
//!
//! Refresh tokens rotate: presenting one issues a successor and starts the token's reuse
//! window (`QBO_MCP_REFRESH_REUSE_WINDOW_SECS`, 30 s by default). Inside the window, and only
//! while none of its successors has been used, the token may be presented again:
//!
//! - by a request that was already in flight when the first rotation committed (the same
//!   client racing itself): another successor is issued beside the first; whichever is used
//!   first wins and the other is forgotten;
//! - after the first answer was sent (a retry of a lost answer, or a thief's replay): another
//!   successor is issued and the earlier ones are *forked off* — the family now has two
//!   branches, and only the newest may continue.
//!
//! Everything else is reuse — someone else holds a copy — and revokes the whole grant, with
//! every token issued to anyone on any branch: a superseded token after its window or after
//! its successor was used, and a forked-off successor (the real client's, after a replay was
//! served). A replayed authorization code likewise revokes the grant its first exchange
//! produced. Every check here is an indexed lookup by token hash or by grant.

use sha2::{Digest, Sha256};

use super::{ACCESS_TOKEN_PREFIX, ACCESS_TOKEN_TTL, CODE_PREFIX, CODE_TTL, OAuthError};
use super::{REFRESH_TOKEN_PREFIX, REFRESH_TOKEN_TTL};
use crate::db::{Db, Tx};
use crate::error::AppError;
use crate::people::{Person, PersonRow, join_current_person, person_columns};
use crate::secret::{new_token, token_hash};
use crate::time::now;
use crate::{on_db, on_tx};

/// What an authorization code is issued for.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub client_id: String,
    pub person_id: i64,
    pub person_stamp: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub resource: String,
}

/// A token response's contents.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub person_id: i64,
    pub person_stamp: String,
}

/// The grant behind a valid access token: who (the person, checked current), through which
/// client.
#[derive(Debug, Clone)]
pub struct AccessGrant {
    pub grant_id: i64,
    pub person: Person,
    pub client_id: String,
    pub client_name: String,
    pub scope: String,
}

#[derive(sqlx::FromRow)]
struct AccessRow {
    #[sqlx(flatten)]
    person: PersonRow,
    grant_id: i64,
    client_id: String,
    client_name: String,
    scope: String,
    last_used_at: i64,
}

/// A grant as the assistants page lists it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct GrantSummary {
    pub id: i64,
    pub person_id: i64,
    pub client_id: String,
    pub client_name: String,
    pub scope: String,
    pub created_at: i64,
    pub last_used_at: i64,
}

/// Stores a new authorization code and returns it (the only time it exists in clear).
pub async fn issue_code(db: &Db, new: &NewCode) -> Result<String, sqlx::Error> {
    let code = new_token(CODE_PREFIX).into_inner();
    let hash = token_hash(&code);
    let at = now();
    on_db!(db, pool => {
        // Codes long expired are kept a day for replay detection, then forgotten.
        sqlx::query("DELETE FROM oauth_codes WHERE expires_at < $1")
            .bind(at - 86400)
            .execute(pool)
            .await?;
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, client_id, person_id, person_stamp, redirect_uri, code_challenge, scope, resource, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&hash)
        .bind(&new.client_id)
        .bind(new.person_id)
        .bind(&new.person_stamp)
        .bind(&new.redirect_uri)
        .bind(&new.code_challenge)
        .bind(&new.scope)
        .bind(&new.resource)
        .bind(at)
        .bind(at + CODE_TTL.as_secs() as i64)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok(code)
}

#[derive(sqlx::FromRow)]
struct CodeRow {
    client_id: String,
    person_id: i64,
    person_stamp: String,
    redirect_uri: String,
    code_challenge: String,
    scope: String,
    resource: String,
    expires_at: i64,
    used_at: Option<i64>,
    grant_id: Option<i64>,
}

/// What the token request presents with a code.
#[derive(Debug)]
pub struct CodeExchange<'a> {
    pub code: &'a str,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_verifier: &'a str,
    /// Already normalised and checked.
    pub resource: &'a str,
}

/// The S256 PKCE transform (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Exchanges an authorization code for tokens, once.
pub async fn exchange_code(db: &Db, req: &CodeExchange<'_>) -> Result<IssuedTokens, OAuthError> {
    let hash = token_hash(req.code);
    let mut tx = db.begin_locked(&format!("oauth-code:{hash}")).await?;
    let row: Option<CodeRow> = on_tx!(&mut tx, conn => {
        sqlx::query_as(
            "SELECT client_id, person_id, person_stamp, redirect_uri, code_challenge, scope, resource, expires_at, used_at, grant_id
             FROM oauth_codes WHERE code_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&mut *conn)
        .await
    })?;
    let Some(code) = row else {
        return Err(OAuthError::invalid_grant(
            "The authorization code is unknown or expired.",
        ));
    };
    if code.used_at.is_some() {
        if let Some(grant_id) = code.grant_id {
            revoke_in(&mut tx, grant_id).await?;
            tracing::warn!(grant_id, client_id = %code.client_id, "authorization code replayed; its grant is revoked");
        }
        tx.commit().await?;
        return Err(OAuthError::invalid_grant(
            "The authorization code was already used; the tokens it produced are revoked.",
        ));
    }
    if code.expires_at <= now() {
        return Err(OAuthError::invalid_grant(
            "The authorization code is unknown or expired.",
        ));
    }
    if code.client_id != req.client_id {
        return Err(OAuthError::invalid_grant(
            "The authorization code was issued to another client.",
        ));
    }
    if code.redirect_uri != req.redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the one in the authorization request.",
        ));
    }
    if !verifier_well_formed(req.code_verifier) {
        return Err(OAuthError::invalid_grant(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636).",
        ));
    }
    if pkce_challenge(req.code_verifier) != code.code_challenge {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge (PKCE).",
        ));
    }
    if code.resource != req.resource {
        return Err(OAuthError::invalid_target(
            "The resource differs from the one in the authorization request.",
        ));
    }
    let at = now();
    let grant_id: i64 = on_tx!(&mut tx, conn => {
        sqlx::query_scalar(
            "INSERT INTO oauth_grants (client_id, person_id, person_stamp, scope, resource, created_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(&code.client_id)
        .bind(code.person_id)
        .bind(&code.person_stamp)
        .bind(&code.scope)
        .bind(&code.resource)
        .bind(at)
        .fetch_one(&mut *conn)
        .await
    })?;
    on_tx!(&mut tx, conn => {
        sqlx::query("UPDATE oauth_codes SET used_at = $1, grant_id = $2 WHERE code_hash = $3")
            .bind(at)
            .bind(grant_id)
            .bind(&hash)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    let (access_token, refresh_token) = insert_pair(&mut tx, grant_id, None).await?;
    tx.commit().await?;
    Ok(IssuedTokens {
        access_token,
        refresh_token,
        expires_in: ACCESS_TOKEN_TTL.as_secs(),
        scope: code.scope,
        person_id: code.person_id,
        person_stamp: code.person_stamp,
    })
}

fn verifier_well_formed(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Inserts a new access token and a refresh token (child of `parent`), returning both.
async fn insert_pair(
    tx: &mut Tx,
    grant_id: i64,
    parent: Option<&str>,
) -> Result<(String, String), sqlx::Error> {
    let access = new_token(ACCESS_TOKEN_PREFIX).into_inner();
    let refresh = new_token(REFRESH_TOKEN_PREFIX).into_inner();
    let (access_hash, refresh_hash) = (token_hash(&access), token_hash(&refresh));
    let at = now();
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO oauth_tokens (token_hash, grant_id, kind, parent_hash, created_at, expires_at)
             VALUES ($1, $2, 'access', NULL, $3, $4), ($5, $2, 'refresh', $6, $3, $7)",
        )
        .bind(&access_hash)
        .bind(grant_id)
        .bind(at)
        .bind(at + ACCESS_TOKEN_TTL.as_secs() as i64)
        .bind(&refresh_hash)
        .bind(parent)
        .bind(at + REFRESH_TOKEN_TTL.as_secs() as i64)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected())
    })?;
    Ok((access, refresh))
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    grant_id: i64,
    kind: String,
    parent_hash: Option<String>,
    expires_at: i64,
    rotated_at: Option<i64>,
    forked_at: Option<i64>,
    client_id: String,
    revoked_at: Option<i64>,
    person_id: i64,
    person_stamp: String,
    scope: String,
}

const REFRESH_SELECT: &str = "SELECT t.grant_id, t.kind, t.parent_hash, t.expires_at, t.rotated_at, t.forked_at, g.client_id, g.revoked_at, g.person_id, g.person_stamp, g.scope
     FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id WHERE t.token_hash = $1";

/// What presenting a refresh token amounts to, given its row (see the module comment).
#[derive(Debug, PartialEq, Eq)]
enum Presentation {
    /// Never rotated: issue its first successor.
    First,
    /// Rotated moments ago by a request still in flight when this one arrived: the same
    /// client racing itself. Another successor is issued beside the first.
    Concurrent,
    /// Rotated earlier, still inside the window, no successor used: a retry of a lost answer,
    /// or a replay. Another successor is issued; the earlier ones are forked off.
    Retry,
    /// Anything else: another holder exists. The grant is revoked.
    Reuse(&'static str),
}

/// Classifies a presentation at `at`. `rotated_before_lock`: whether the token was already
/// rotated when this request first read it (before waiting for the grant's lock).
fn classify(
    row: &RefreshRow,
    successor_used: bool,
    rotated_before_lock: bool,
    at: i64,
    window_secs: i64,
) -> Presentation {
    if row.forked_at.is_some() {
        return Presentation::Reuse(
            "its predecessor was presented again after it was issued, so another party holds a copy",
        );
    }
    let Some(rotated_at) = row.rotated_at else {
        return Presentation::First;
    };
    if successor_used {
        return Presentation::Reuse("it was already rotated and its successor used");
    }
    if at >= rotated_at.saturating_add(window_secs) {
        return Presentation::Reuse("it was rotated longer ago than the reuse window");
    }
    if rotated_before_lock {
        Presentation::Retry
    } else {
        Presentation::Concurrent
    }
}

/// Rotates a refresh token (see the module comment for the reuse window and the reuse rule).
/// `client_id`, when the request names one, must be the grant's client.
pub async fn refresh(
    db: &Db,
    refresh_token: &str,
    client_id: Option<&str>,
    window_secs: u64,
) -> Result<IssuedTokens, OAuthError> {
    let unknown = || OAuthError::invalid_grant("The refresh token is unknown, expired or revoked.");
    let hash = token_hash(refresh_token);
    // Read before the lock: whether the token was already rotated then tells a request that
    // raced another (it was not) from one that came after the answer was sent (it was).
    let before: Option<(i64, Option<i64>)> = on_db!(db, pool => {
        sqlx::query_as("SELECT grant_id, rotated_at FROM oauth_tokens WHERE token_hash = $1")
            .bind(&hash)
            .fetch_optional(pool)
            .await
    })?;
    let Some((grant_id, rotated_before_lock)) = before else {
        return Err(unknown());
    };
    let mut tx = db.begin_locked(&format!("oauth-grant:{grant_id}")).await?;
    let row: Option<RefreshRow> = on_tx!(&mut tx, conn => {
        sqlx::query_as(REFRESH_SELECT).bind(&hash).fetch_optional(&mut *conn).await
    })?;
    let Some(row) = row.filter(|r| r.kind == "refresh" && r.revoked_at.is_none()) else {
        return Err(unknown());
    };
    let successor_used: bool = on_tx!(&mut tx, conn => {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM oauth_tokens WHERE grant_id = $1 AND parent_hash = $2 AND kind = 'refresh' AND rotated_at IS NOT NULL)",
        )
        .bind(row.grant_id)
        .bind(&hash)
        .fetch_one(&mut *conn)
        .await
    })?;
    let at = now();
    let window = i64::try_from(window_secs).unwrap_or(i64::MAX);
    let presentation = classify(
        &row,
        successor_used,
        rotated_before_lock.is_some(),
        at,
        window,
    );
    if let Presentation::Reuse(why) = presentation {
        revoke_in(&mut tx, row.grant_id).await?;
        tx.commit().await?;
        tracing::warn!(grant_id = row.grant_id, client_id = %row.client_id, reason = why, "refresh token reused; the grant is revoked");
        return Err(OAuthError::invalid_grant(format!(
            "The refresh token was presented after {why}; the whole grant is revoked. Authorize again."
        )));
    }
    if row.expires_at <= at {
        return Err(unknown());
    }
    if client_id.is_some_and(|c| c != row.client_id) {
        return Err(OAuthError::invalid_grant(
            "The refresh token was issued to another client.",
        ));
    }
    on_tx!(&mut tx, conn => {
        match presentation {
            Presentation::First => {
                sqlx::query("UPDATE oauth_tokens SET rotated_at = $1 WHERE token_hash = $2")
                    .bind(at)
                    .bind(&hash)
                    .execute(&mut *conn)
                    .await?;
                // Siblings issued beside this one by a concurrent refresh were not kept by
                // the client that uses this one: forgotten, harmlessly.
                if let Some(parent) = &row.parent_hash {
                    sqlx::query(
                        "DELETE FROM oauth_tokens WHERE grant_id = $1 AND parent_hash = $2 AND kind = 'refresh' AND token_hash <> $3 AND rotated_at IS NULL AND forked_at IS NULL",
                    )
                    .bind(row.grant_id)
                    .bind(parent)
                    .bind(&hash)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            Presentation::Retry => {
                // Whoever holds the successors issued so far is not the one asking now (or
                // lost them): presenting one of them later means two holders, and revokes.
                sqlx::query(
                    "UPDATE oauth_tokens SET forked_at = $1 WHERE grant_id = $2 AND parent_hash = $3 AND kind = 'refresh' AND forked_at IS NULL",
                )
                .bind(at)
                .bind(row.grant_id)
                .bind(&hash)
                .execute(&mut *conn)
                .await?;
            }
            Presentation::Concurrent | Presentation::Reuse(_) => {}
        }
        sqlx::query("DELETE FROM oauth_tokens WHERE grant_id = $1 AND expires_at < $2")
            .bind(row.grant_id)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE oauth_grants SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(row.grant_id)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    let (access_token, refresh_token) = insert_pair(&mut tx, row.grant_id, Some(&hash)).await?;
    tx.commit().await?;
    Ok(IssuedTokens {
        access_token,
        refresh_token,
        expires_in: ACCESS_TOKEN_TTL.as_secs(),
        scope: row.scope,
        person_id: row.person_id,
        person_stamp: row.person_stamp,
    })
}

/// The grant behind a live access token and its person, or `None`: one indexed query — the
/// token by its hash (primary key), joined by primary key to its grant, client and person, the
/// person only while active and carrying the grant's stamp (so a deactivation or revocation
/// takes effect on the very next request; nothing is cached). Refreshes `last_used_at` at most
/// every five minutes so that reading stays a read.
pub async fn verify_access_token(db: &Db, token: &str) -> Result<Option<AccessGrant>, AppError> {
    if !token.starts_with(ACCESS_TOKEN_PREFIX) {
        return Ok(None);
    }
    let at = now();
    let row: Option<AccessRow> = on_db!(db, pool => {
        sqlx::query_as(concat!(
            "SELECT ", person_columns!(), ", g.id AS grant_id, g.client_id, c.client_name, g.scope, g.last_used_at
             FROM oauth_tokens t
             JOIN oauth_grants g ON g.id = t.grant_id
             JOIN oauth_clients c ON c.client_id = g.client_id",
            join_current_person!("g.person_id", "g.person_stamp"),
            " WHERE t.token_hash = $1 AND t.kind = 'access' AND t.expires_at > $2 AND g.revoked_at IS NULL"
        ))
        .bind(token_hash(token))
        .bind(at)
        .fetch_optional(pool)
        .await?
    });
    let Some(row) = row else { return Ok(None) };
    if row.last_used_at < at - 300 {
        on_db!(db, pool => {
            sqlx::query("UPDATE oauth_grants SET last_used_at = $1 WHERE id = $2")
                .bind(at)
                .bind(row.grant_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
    }
    Ok(Some(AccessGrant {
        grant_id: row.grant_id,
        person: row.person.into_person()?,
        client_id: row.client_id,
        client_name: row.client_name,
        scope: row.scope,
    }))
}

async fn revoke_in(tx: &mut Tx, grant_id: i64) -> Result<(), sqlx::Error> {
    let at = now();
    on_tx!(tx, conn => {
        sqlx::query("UPDATE oauth_grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(at)
            .bind(grant_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM oauth_tokens WHERE grant_id = $1")
            .bind(grant_id)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// RFC 7009: revokes the grant behind an access or refresh token. Unknown tokens are ignored
/// (the endpoint answers 200 either way). `client_id`, when given, must own the token.
pub async fn revoke_token(
    db: &Db,
    token: &str,
    client_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    let found: Option<(i64, String)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT g.id, g.client_id FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id WHERE t.token_hash = $1",
        )
        .bind(token_hash(token))
        .fetch_optional(pool)
        .await
    })?;
    let Some((grant_id, owner)) = found else {
        return Ok(());
    };
    if client_id.is_some_and(|c| c != owner) {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    revoke_in(&mut tx, grant_id).await?;
    tx.commit().await
}

/// Live grants, newest first (a grant issued under a stamp the person no longer carries ended
/// with that stamp, so it is not listed): one person's (`Some(id)`) or everyone's (`None`).
pub async fn list_grants(
    db: &Db,
    person_id: Option<i64>,
) -> Result<Vec<GrantSummary>, sqlx::Error> {
    on_db!(db, pool => {
        sqlx::query_as(
            "SELECT g.id, g.person_id, g.client_id, c.client_name, g.scope, g.created_at, g.last_used_at
             FROM oauth_grants g JOIN oauth_clients c ON c.client_id = g.client_id
             JOIN persons p ON p.id = g.person_id AND p.security_stamp = g.person_stamp
             WHERE g.revoked_at IS NULL AND ($1 IS NULL OR g.person_id = $1)
             ORDER BY g.created_at DESC, g.id DESC",
        )
        .bind(person_id)
        .fetch_all(pool)
        .await
    })
}

/// Revokes one grant; with `person_id`, only if it is that person's. `false`: no such grant.
pub async fn revoke_grant_of(
    db: &Db,
    grant_id: i64,
    person_id: Option<i64>,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let owner: Option<i64> = on_tx!(&mut tx, conn => {
        sqlx::query_scalar("SELECT person_id FROM oauth_grants WHERE id = $1 AND revoked_at IS NULL")
            .bind(grant_id)
            .fetch_optional(&mut *conn)
            .await
    })?;
    match owner {
        Some(owner) if person_id.is_none_or(|p| p == owner) => {
            revoke_in(&mut tx, grant_id).await?;
            tx.commit().await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Revokes every grant of a person (for people's "sign out everywhere"; deactivation needs
/// no call, the stamp check refuses the tokens already).
pub async fn revoke_grants_of_person(db: &Db, person_id: i64) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let ids: Vec<i64> = on_tx!(&mut tx, conn => {
        sqlx::query_scalar("SELECT id FROM oauth_grants WHERE person_id = $1 AND revoked_at IS NULL")
            .bind(person_id)
            .fetch_all(&mut *conn)
            .await
    })?;
    for id in &ids {
        revoke_in(&mut tx, *id).await?;
    }
    tx.commit().await?;
    Ok(ids.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256() {
        // Computed independently (Python: base64url(sha256(verifier)) without padding).
        let verifier = "qbo-mcp-test-verifier-0123456789-abcdefghijk";
        assert_eq!(
            pkce_challenge(verifier),
            "NcN4imzGSsHZXNidEMLIM1NIIJeMqUX24HP8z8USUVI"
        );
        assert!(verifier_well_formed(verifier));
        assert!(!verifier_well_formed("short"));
        assert!(!verifier_well_formed(&"a".repeat(129)));
        assert!(!verifier_well_formed(&format!("{}!", "a".repeat(50))));
    }
}
