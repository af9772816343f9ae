//! Connecting a company: an admin starts Intuit's authorization code flow; Intuit sends the
//! admin's browser back to `/quickbooks/callback` with a code and the company's realm id.
//!
//! The `state` is single-use, bound to the admin who started it, and expires after ten
//! minutes; only its hash is stored. While one admin's flow is pending, another admin pressing
//! "Connect" is told who is connecting instead of starting a second Intuit flow: two flows at
//! once are how a connection ends up moved ("Change Admin") or duplicated.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use crate::audit::{self, NewEntry, Outcome};
use crate::on_tx;
use crate::secret::Secret;

use super::intuit::IntuitTokenError;
use super::store::{self, Connector};
use super::{QboError, QuickBooks, Status};
use crate::time::now;

/// How long an admin has to finish Intuit's consent.
pub const FLOW_LIFETIME_S: i64 = 600;
const CONNECT_LOCK: &str = "quickbooks-connect";

/// Why a connection could not be started or finished.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "{username} started connecting a company {seconds_ago} seconds ago; wait for them to finish (or for their link to expire in {expires_in} seconds)"
    )]
    InProgress {
        username: String,
        seconds_ago: i64,
        expires_in: i64,
    },
    #[error("there is no company {realm_id} to reconnect")]
    UnknownCompany { realm_id: String },
    #[error(
        "this connection link has expired or was already used; start again from the Companies page"
    )]
    InvalidState,
    #[error("this connection was started by another admin; start your own from the Companies page")]
    WrongPerson,
    #[error("the QuickBooks admin declined to connect the company")]
    Declined,
    #[error("QuickBooks did not say which company was connected")]
    MissingRealm,
    #[error("QuickBooks refused the connection: {0}")]
    Intuit(String),
    #[error(transparent)]
    Qbo(#[from] QboError),
}

impl From<sqlx::Error> for ConnectError {
    fn from(e: sqlx::Error) -> Self {
        ConnectError::Qbo(e.into())
    }
}

/// Who starts or finishes a flow. Only the admin-checked layer makes one.
#[derive(Debug, Clone)]
pub struct AdminRef {
    pub person_id: i64,
    pub username: String,
}

fn hash_state(state: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(state.as_bytes()))
}

/// What Intuit's redirect carried.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    #[serde(rename = "realmId")]
    pub realm_id: Option<String>,
    pub error: Option<String>,
}

/// A finished connection.
#[derive(Debug, Clone)]
pub struct Connected {
    pub realm_id: String,
    pub name: String,
    /// It replaced an existing connection of the same company.
    pub replaced: bool,
}

impl QuickBooks {
    /// Starts a flow for `admin`; `reconnect` names a company whose connection is replaced.
    /// Returns Intuit's authorize URL.
    pub async fn start_connect(
        &self,
        admin: &AdminRef,
        reconnect: Option<&str>,
    ) -> Result<Url, ConnectError> {
        let now = now();
        if let Some(realm_id) = reconnect
            && store::get(&self.db, realm_id).await?.is_none()
        {
            return Err(ConnectError::UnknownCompany {
                realm_id: realm_id.to_owned(),
            });
        }
        let state: String = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let mut tx = self.db.begin_locked(CONNECT_LOCK).await?;
        let pending: Option<(i64, String, i64, i64)> = on_tx!(&mut tx, conn => {
            sqlx::query("DELETE FROM connect_flows WHERE expires_at < $1 OR consumed_at IS NOT NULL")
                .bind(now)
                .execute(&mut *conn)
                .await?;
            sqlx::query_as(
                "SELECT person_id, username, created_at, expires_at FROM connect_flows
                 WHERE person_id <> $1 ORDER BY created_at LIMIT 1",
            )
            .bind(admin.person_id)
            .fetch_optional(&mut *conn)
            .await?
        });
        if let Some((_, username, created_at, expires_at)) = pending {
            tx.rollback().await?;
            return Err(ConnectError::InProgress {
                username,
                seconds_ago: now - created_at,
                expires_in: expires_at - now,
            });
        }
        on_tx!(&mut tx, conn => {
            // An admin's newer flow supersedes their older one.
            sqlx::query("DELETE FROM connect_flows WHERE person_id = $1")
                .bind(admin.person_id)
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "INSERT INTO connect_flows (state_hash, person_id, username, reconnect_realm_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(hash_state(&state))
            .bind(admin.person_id)
            .bind(&admin.username)
            .bind(reconnect)
            .bind(now)
            .bind(now + FLOW_LIFETIME_S)
            .execute(&mut *conn)
            .await?;
        });
        tx.commit().await?;
        Ok(self.oauth.authorize_url(&state, &self.redirect_uri))
    }

    /// Finishes a flow from Intuit's redirect, as `admin` (the person whose browser came back).
    pub async fn finish_connect(
        &self,
        admin: &AdminRef,
        callback: Callback,
    ) -> Result<Connected, ConnectError> {
        let state = callback.state.ok_or(ConnectError::InvalidState)?;
        let now = now();
        // Consume the state first, so a replayed callback can never run twice.
        let mut tx = self.db.begin_locked(CONNECT_LOCK).await?;
        let flow: Option<(i64, Option<String>)> = on_tx!(&mut tx, conn => {
            sqlx::query_as(
                "UPDATE connect_flows SET consumed_at = $2
                 WHERE state_hash = $1 AND consumed_at IS NULL AND expires_at >= $2
                 RETURNING person_id, reconnect_realm_id",
            )
            .bind(hash_state(&state))
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
        });
        let Some((person_id, reconnect)) = flow else {
            tx.rollback().await?;
            return Err(ConnectError::InvalidState);
        };
        if person_id != admin.person_id {
            // Leave the flow to its owner.
            tx.rollback().await?;
            return Err(ConnectError::WrongPerson);
        }
        self.ensure_current_key(&mut tx).await?;
        tx.commit().await?;

        if callback.error.is_some() {
            return Err(ConnectError::Declined);
        }
        let code = callback.code.ok_or(ConnectError::InvalidState)?;
        let realm_id = callback
            .realm_id
            .filter(|r| !r.is_empty() && r.len() <= 32 && r.chars().all(|c| c.is_ascii_digit()))
            .ok_or(ConnectError::MissingRealm)?;

        let tokens = self
            .oauth
            .exchange_code(&code, &self.redirect_uri)
            .await
            .map_err(|e| match e {
                IntuitTokenError::Unavailable(d) => {
                    ConnectError::Qbo(QboError::Unavailable { detail: d })
                }
                other => ConnectError::Intuit(other.to_string()),
            })?;
        let user = self.oauth.userinfo(&tokens.access_token).await.ok();
        let name = self
            .company_name(&realm_id, &tokens.access_token)
            .await
            .unwrap_or_else(|| format!("Company {realm_id}"));

        let existing = store::get(&self.db, &realm_id).await?;
        let replaced = existing
            .as_ref()
            .is_some_and(|c| c.status == Status::Connected);
        if replaced && reconnect.as_deref() != Some(realm_id.as_str()) {
            // Intuit has already issued new tokens (and may have moved the connection to this
            // admin), so the old ones may be dead: keeping the newest is the only safe choice.
            tracing::warn!(
                realm_id,
                "a connected company was connected again without reconnect"
            );
        }
        let connector = Connector {
            person_id: admin.person_id,
            username: admin.username.clone(),
            intuit_user_sub: user.as_ref().map(|u| u.sub.clone()),
            intuit_user_email: user.and_then(|u| u.email),
        };
        // Under the refresh lock, so no refresh of the old tokens interleaves.
        let mut tx = self
            .db
            .begin_locked(&super::tokens::lock_key(&realm_id))
            .await?;
        store::store_connection(
            &mut tx,
            &self.sealer,
            &realm_id,
            &name,
            &connector,
            &tokens,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Connected {
            realm_id,
            name,
            replaced,
        })
    }

    /// The company's name from CompanyInfo, read with the fresh token (not yet stored).
    async fn company_name(&self, realm_id: &str, access: &Secret<String>) -> Option<String> {
        let url = format!(
            "{}/v3/company/{realm_id}/companyinfo/{realm_id}",
            self.oauth.endpoints.api_base.as_str().trim_end_matches('/')
        );
        let response = self
            .http
            .get(url)
            .bearer_auth(access.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .query(&[("minorversion", super::api::MINOR_VERSION)])
            .send()
            .await
            .ok()?;
        let body: Value = response.json().await.ok()?;
        body.pointer("/CompanyInfo/CompanyName")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// Revokes the company's tokens at Intuit and forgets them, audited under `by` (an admin's
    /// username, or `console`). Returns whether Intuit confirmed the revocation (the tokens
    /// are deleted either way).
    pub async fn disconnect(&self, realm_id: &str, by: &str) -> Result<bool, QboError> {
        let mut tx = self
            .db
            .begin_locked(&super::tokens::lock_key(realm_id))
            .await?;
        let tokens = store::tokens_in(&mut tx, &self.sealer, realm_id).await;
        tx.rollback().await?;
        let revoked = match tokens {
            Ok(t) => self.oauth.revoke(&t.refresh_token).await.is_ok(),
            Err(store::TokenReadError::Unknown) => {
                return Err(QboError::UnknownCompany {
                    company: realm_id.to_owned(),
                });
            }
            Err(_) => false,
        };
        let mut tx = self.db.begin_write().await?;
        store::disconnect(&mut tx, realm_id, now()).await?;
        audit::record(
            &mut tx,
            &NewEntry::new(Some(by), "company.disconnect", Outcome::Ok)
                .company(realm_id)
                .details(serde_json::json!({ "revoked_at_intuit": revoked })),
        )
        .await
        .map_err(super::audit_error)?;
        tx.commit().await?;
        Ok(revoked)
    }
}
