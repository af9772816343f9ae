//! The `companies` table: one shared connection per QuickBooks company, its status, who
//! connected it, and Intuit's tokens sealed with the row's realm as associated data. Only this
//! module reads or writes those columns; everything else asks for a `Company` or for tokens.

use serde::Serialize;

use crate::db::{Db, Tx};
use crate::keys::Sealer;
use crate::secret::Secret;
use crate::{on_db, on_tx};

use super::intuit::TokenSet;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Tokens are stored and believed good.
    Connected,
    /// Intuit refused the refresh token (or the connecting admin lost admin rights): an admin
    /// must reconnect.
    NeedsReconnect,
    /// An admin disconnected it; tokens are gone.
    Disconnected,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Connected => "connected",
            Status::NeedsReconnect => "needs_reconnect",
            Status::Disconnected => "disconnected",
        }
    }

    fn parse(s: &str) -> Status {
        match s {
            "connected" => Status::Connected,
            "needs_reconnect" => Status::NeedsReconnect,
            _ => Status::Disconnected,
        }
    }
}

/// A company connection as people and admins see it (no tokens).
#[derive(Debug, Clone, Serialize)]
pub struct Company {
    pub realm_id: String,
    pub name: String,
    pub status: Status,
    pub status_detail: Option<String>,
    /// Username of the admin who connected it.
    pub connected_by: Option<String>,
    #[serde(skip)]
    pub connected_by_person_id: Option<i64>,
    /// The Intuit identity that authorized the app.
    pub intuit_user_email: Option<String>,
    pub connected_at: Option<i64>,
    pub access_expires_at: Option<i64>,
    pub refresh_expires_at: Option<i64>,
    pub last_refresh_at: Option<i64>,
    /// Rises with every stored refresh, reconnect or disconnect (for the token cache).
    #[serde(skip)]
    pub token_generation: i64,
}

impl Company {
    /// Whether `wanted` names this company: its realm id, or its name in any ASCII case.
    pub fn answers_to(&self, wanted: &str) -> bool {
        self.realm_id == wanted || self.name.eq_ignore_ascii_case(wanted)
    }
}

#[derive(sqlx::FromRow)]
struct CompanyRow {
    realm_id: String,
    name: String,
    status: String,
    status_detail: Option<String>,
    connected_by_username: Option<String>,
    connected_by_person_id: Option<i64>,
    intuit_user_email: Option<String>,
    connected_at: Option<i64>,
    access_expires_at: Option<i64>,
    refresh_expires_at: Option<i64>,
    last_refresh_at: Option<i64>,
    token_generation: i64,
}

impl From<CompanyRow> for Company {
    fn from(r: CompanyRow) -> Self {
        Company {
            realm_id: r.realm_id,
            name: r.name,
            status: Status::parse(&r.status),
            status_detail: r.status_detail,
            connected_by: r.connected_by_username,
            connected_by_person_id: r.connected_by_person_id,
            intuit_user_email: r.intuit_user_email,
            connected_at: r.connected_at,
            access_expires_at: r.access_expires_at,
            refresh_expires_at: r.refresh_expires_at,
            last_refresh_at: r.last_refresh_at,
            token_generation: r.token_generation,
        }
    }
}

const COMPANY_COLUMNS: &str = "realm_id, name, status, status_detail, connected_by_username, connected_by_person_id, intuit_user_email, connected_at, access_expires_at, refresh_expires_at, last_refresh_at, token_generation";

/// Intuit's tokens for one company, opened.
#[derive(Debug, Clone)]
pub struct StoredTokens {
    pub status: Status,
    pub access_token: Secret<String>,
    pub access_expires_at: i64,
    pub refresh_token: Secret<String>,
    /// Rises with every stored refresh or reconnect.
    pub generation: i64,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    status: String,
    access_token: Option<String>,
    access_expires_at: Option<i64>,
    refresh_token: Option<String>,
    token_generation: i64,
}

/// Why tokens could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenReadError {
    #[error("no such company")]
    Unknown,
    #[error("the company has no tokens")]
    NoTokens(Status),
    #[error("stored tokens do not open with this server's key: {0}")]
    Sealing(#[from] crate::keys::UnsealError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn associated(realm_id: &str, which: &str) -> Vec<u8> {
    format!("company:{realm_id}:{which}").into_bytes()
}

pub async fn list(db: &Db) -> Result<Vec<Company>, sqlx::Error> {
    let sql = format!("SELECT {COMPANY_COLUMNS} FROM companies ORDER BY name, realm_id");
    let rows: Vec<CompanyRow> = on_db!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?
    });
    Ok(rows.into_iter().map(Company::from).collect())
}

pub async fn get(db: &Db, realm_id: &str) -> Result<Option<Company>, sqlx::Error> {
    let sql = format!("SELECT {COMPANY_COLUMNS} FROM companies WHERE realm_id = $1");
    let row: Option<CompanyRow> = on_db!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(realm_id).fetch_optional(pool).await?
    });
    Ok(row.map(Company::from))
}

/// The companies `wanted` may name, in the list's order: the one whose realm id it is, and
/// those whose name it is in any ASCII case. One query on the primary key and the
/// `lower(name)` index (migration 0401) instead of reading every company; SQL's `lower` may
/// fold more than ASCII, so callers keep only `Company::answers_to` matches.
pub async fn named(db: &Db, wanted: &str) -> Result<Vec<Company>, sqlx::Error> {
    let sql = format!(
        "SELECT {COMPANY_COLUMNS} FROM companies WHERE realm_id = $1 OR lower(name) = lower($1) ORDER BY name, realm_id"
    );
    let rows: Vec<CompanyRow> = on_db!(db, pool => {
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(wanted).fetch_all(pool).await?
    });
    Ok(rows
        .into_iter()
        .map(Company::from)
        .filter(|c| c.answers_to(wanted))
        .collect())
}

fn open_tokens(
    sealer: &Sealer,
    realm_id: &str,
    row: Option<TokenRow>,
) -> Result<StoredTokens, TokenReadError> {
    let row = row.ok_or(TokenReadError::Unknown)?;
    let status = Status::parse(&row.status);
    let (Some(access), Some(expires), Some(refresh)) =
        (row.access_token, row.access_expires_at, row.refresh_token)
    else {
        return Err(TokenReadError::NoTokens(status));
    };
    let open = |sealed: &str, which: &str| -> Result<Secret<String>, TokenReadError> {
        let plain = sealer.open(sealed, &associated(realm_id, which))?;
        Ok(Secret::new(
            String::from_utf8_lossy(plain.expose()).into_owned(),
        ))
    };
    Ok(StoredTokens {
        status,
        access_token: open(&access, "access_token")?,
        access_expires_at: expires,
        refresh_token: open(&refresh, "refresh_token")?,
        generation: row.token_generation,
    })
}

const TOKEN_SELECT: &str = "SELECT status, access_token, access_expires_at, refresh_token, token_generation FROM companies WHERE realm_id = $1";

/// The stored tokens, read outside any transaction.
pub async fn tokens(
    db: &Db,
    sealer: &Sealer,
    realm_id: &str,
) -> Result<StoredTokens, TokenReadError> {
    let row: Option<TokenRow> = on_db!(db, pool => {
        sqlx::query_as(TOKEN_SELECT).bind(realm_id).fetch_optional(pool).await?
    });
    open_tokens(sealer, realm_id, row)
}

/// The stored tokens, read inside `tx` (under the refresh lock).
pub async fn tokens_in(
    tx: &mut Tx,
    sealer: &Sealer,
    realm_id: &str,
) -> Result<StoredTokens, TokenReadError> {
    let row: Option<TokenRow> = on_tx!(tx, conn => {
        sqlx::query_as(TOKEN_SELECT).bind(realm_id).fetch_optional(&mut *conn).await?
    });
    open_tokens(sealer, realm_id, row)
}

/// Stores refreshed tokens and bumps the generation. Runs inside the refresh lock; the caller
/// commits at once.
pub async fn store_refreshed(
    tx: &mut Tx,
    sealer: &Sealer,
    realm_id: &str,
    tokens: &TokenSet,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let access = sealer.seal(
        tokens.access_token.expose().as_bytes(),
        &associated(realm_id, "access_token"),
    );
    let refresh = sealer.seal(
        tokens.refresh_token.expose().as_bytes(),
        &associated(realm_id, "refresh_token"),
    );
    on_tx!(tx, conn => {
        sqlx::query_scalar(
            "UPDATE companies SET access_token = $2, access_expires_at = $3, refresh_token = $4,
                 refresh_expires_at = $5, token_generation = token_generation + 1,
                 last_refresh_at = $6, status = 'connected', status_detail = NULL, updated_at = $6
             WHERE realm_id = $1 RETURNING token_generation",
        )
        .bind(realm_id)
        .bind(&access)
        .bind(now + tokens.expires_in)
        .bind(&refresh)
        .bind(now + tokens.refresh_expires_in)
        .bind(now)
        .fetch_one(&mut *conn)
        .await
    })
}

/// Who connected a company, for the record.
#[derive(Debug, Clone)]
pub struct Connector {
    pub person_id: i64,
    pub username: String,
    pub intuit_user_sub: Option<String>,
    pub intuit_user_email: Option<String>,
}

/// Creates or replaces a company's connection with fresh tokens from a code exchange.
pub async fn store_connection(
    tx: &mut Tx,
    sealer: &Sealer,
    realm_id: &str,
    name: &str,
    by: &Connector,
    tokens: &TokenSet,
    now: i64,
) -> Result<(), sqlx::Error> {
    let access = sealer.seal(
        tokens.access_token.expose().as_bytes(),
        &associated(realm_id, "access_token"),
    );
    let refresh = sealer.seal(
        tokens.refresh_token.expose().as_bytes(),
        &associated(realm_id, "refresh_token"),
    );
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO companies (realm_id, name, status, status_detail, connected_by_person_id,
                 connected_by_username, intuit_user_sub, intuit_user_email, connected_at,
                 access_token, access_expires_at, refresh_token, refresh_expires_at,
                 token_generation, last_refresh_at, updated_at)
             VALUES ($1, $2, 'connected', NULL, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, NULL, $7)
             ON CONFLICT (realm_id) DO UPDATE SET name = $2, status = 'connected',
                 status_detail = NULL, connected_by_person_id = $3, connected_by_username = $4,
                 intuit_user_sub = $5, intuit_user_email = $6, connected_at = $7,
                 access_token = $8, access_expires_at = $9, refresh_token = $10,
                 refresh_expires_at = $11, token_generation = companies.token_generation + 1,
                 updated_at = $7",
        )
        .bind(realm_id)
        .bind(name)
        .bind(by.person_id)
        .bind(&by.username)
        .bind(&by.intuit_user_sub)
        .bind(&by.intuit_user_email)
        .bind(now)
        .bind(&access)
        .bind(now + tokens.expires_in)
        .bind(&refresh)
        .bind(now + tokens.refresh_expires_in)
        .execute(&mut *conn)
        .await?;
    });
    Ok(())
}

/// Marks a connection unusable until an admin reconnects — unless it changed since
/// `generation` (someone reconnected or refreshed meanwhile). Returns whether it was marked.
pub async fn mark_needs_reconnect(
    tx: &mut Tx,
    realm_id: &str,
    generation: i64,
    detail: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let n = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE companies SET status = 'needs_reconnect', status_detail = $3, updated_at = $4
             WHERE realm_id = $1 AND token_generation = $2 AND status = 'connected'",
        )
        .bind(realm_id)
        .bind(generation)
        .bind(detail)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(n > 0)
}

/// Forgets a company's tokens (after revoking them at Intuit) and marks it disconnected.
pub async fn disconnect(tx: &mut Tx, realm_id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let n = on_tx!(tx, conn => {
        sqlx::query(
            "UPDATE companies SET status = 'disconnected', status_detail = NULL,
                 access_token = NULL, access_expires_at = NULL, refresh_token = NULL,
                 refresh_expires_at = NULL, token_generation = token_generation + 1,
                 updated_at = $2
             WHERE realm_id = $1",
        )
        .bind(realm_id)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(n > 0)
}

/// Re-seals every company's tokens under `sealer`'s current key (which must also open the
/// older key's values), taking each company's refresh lock in `tx`. Returns how many
/// companies had tokens.
pub async fn reseal_all(tx: &mut Tx, sealer: &Sealer) -> Result<usize, TokenReadError> {
    let realms: Vec<String> = on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT realm_id FROM companies ORDER BY realm_id")
            .fetch_all(&mut *conn)
            .await?
    });
    let mut resealed = 0;
    for realm_id in realms {
        tx.lock(&super::tokens::lock_key(&realm_id)).await?;
        if reseal(tx, sealer, &realm_id).await? {
            resealed += 1;
        }
    }
    Ok(resealed)
}

/// Re-seals one company's tokens under the current key (inside the refresh lock).
async fn reseal(tx: &mut Tx, sealer: &Sealer, realm_id: &str) -> Result<bool, TokenReadError> {
    let t = match tokens_in(tx, sealer, realm_id).await {
        Ok(t) => t,
        Err(TokenReadError::NoTokens(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let access = sealer.seal(
        t.access_token.expose().as_bytes(),
        &associated(realm_id, "access_token"),
    );
    let refresh = sealer.seal(
        t.refresh_token.expose().as_bytes(),
        &associated(realm_id, "refresh_token"),
    );
    on_tx!(tx, conn => {
        sqlx::query("UPDATE companies SET access_token = $2, refresh_token = $3 WHERE realm_id = $1")
            .bind(realm_id)
            .bind(&access)
            .bind(&refresh)
            .execute(&mut *conn)
            .await?;
    });
    Ok(true)
}
