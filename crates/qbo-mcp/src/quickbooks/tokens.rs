//! Intuit access tokens for a company, refreshed exactly once at a time across every replica.
//!
//! A caller reads the stored token without a lock; if it expires within five minutes (or
//! QuickBooks just answered 401), it takes the company's refresh lock, re-reads, and refreshes
//! only if nobody else did meanwhile (the token generation moved). Intuit's answer is written
//! and committed in the transaction that holds the lock before anyone uses it: nothing but the
//! commit stands between Intuit rotating the refresh token and the new one being durable.
//! `invalid_grant` → re-read and retry once → the connection is marked `needs_reconnect`.
//!
//! Opened access tokens are kept in memory ([`Cache`]) until five minutes before they expire,
//! so a call neither reads nor decrypts them. An entry is replaced by this process's own
//! refreshes, dropped when this process marks the company `needs_reconnect`, and checked
//! against the company rows every tool call reads anyway ([`Cache::check`]): a generation
//! that moved (another replica refreshed, an admin reconnected or disconnected) drops it. A
//! token another replica replaced meanwhile at worst earns one 401, which refreshes from the
//! database (taking the newer token there, not refreshing again).

use crate::db::Tx;
use crate::keys;
use crate::secret::Secret;

use super::intuit::IntuitTokenError;
use super::store::{self, Status, TokenReadError};
use super::{FaultPoint, QboError, QuickBooks};
use crate::time::now;

/// Refresh this long before the access token expires.
pub const REFRESH_AHEAD_S: i64 = 300;

/// An access token and the generation it belongs to (to ask for a forced refresh after a 401).
#[derive(Debug, Clone)]
pub struct Access {
    pub token: Secret<String>,
    pub generation: i64,
}

/// Opened access tokens by realm id, with when each expires (Unix seconds).
#[derive(Debug, Default)]
pub struct Cache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (Access, i64)>>,
}

impl Cache {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut std::collections::HashMap<String, (Access, i64)>) -> T,
    ) -> T {
        f(&mut self.entries.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A cached token that is still good for more than [`REFRESH_AHEAD_S`].
    fn get(&self, realm_id: &str) -> Option<Access> {
        self.with(|all| {
            let (access, expires_at) = all.get(realm_id)?;
            (expires_at - now() > REFRESH_AHEAD_S).then(|| access.clone())
        })
    }

    fn put(&self, realm_id: &str, access: &Access, expires_at: i64) {
        self.with(|all| {
            // Never step back to an older generation a slower caller read.
            if all
                .get(realm_id)
                .is_some_and(|(held, _)| held.generation > access.generation)
            {
                return;
            }
            all.insert(realm_id.to_owned(), (access.clone(), expires_at));
        });
    }

    pub fn forget(&self, realm_id: &str) {
        self.with(|all| all.remove(realm_id));
    }

    /// Drops entries the company rows contradict: another generation, or not connected.
    /// With `all_companies`, also those of companies that are gone.
    pub fn check(&self, companies: &[store::Company], all_companies: bool) {
        self.with(|all| {
            if all.is_empty() {
                return;
            }
            if all_companies {
                all.retain(|realm, _| companies.iter().any(|c| &c.realm_id == realm));
            }
            for c in companies {
                if let Some((held, _)) = all.get(&c.realm_id)
                    && (held.generation != c.token_generation || c.status != Status::Connected)
                {
                    all.remove(&c.realm_id);
                }
            }
        });
    }
}

/// The cross-replica lock held while a company's tokens change (refresh, connect, rotation).
pub fn lock_key(realm_id: &str) -> String {
    format!("quickbooks-refresh:{realm_id}")
}

impl QuickBooks {
    /// A usable access token for the company, refreshing it if needed.
    pub async fn access(&self, realm_id: &str) -> Result<Access, QboError> {
        if let Some(access) = self.access_cache.get(realm_id) {
            return Ok(access);
        }
        let stored = self.read_tokens(realm_id).await?;
        if stored.access_expires_at - now() > REFRESH_AHEAD_S {
            let access = Access {
                token: stored.access_token,
                generation: stored.generation,
            };
            self.access_cache
                .put(realm_id, &access, stored.access_expires_at);
            return Ok(access);
        }
        self.refresh(realm_id, stored.generation).await
    }

    async fn read_tokens(&self, realm_id: &str) -> Result<store::StoredTokens, QboError> {
        let stored = store::tokens(&self.db, &self.sealer, realm_id)
            .await
            .map_err(|e| token_error(realm_id, e))?;
        usable(realm_id, stored)
    }

    /// Refreshes unless another caller already replaced generation `seen` with a token that is
    /// still good. Used on expiry and after a 401 from QuickBooks.
    pub async fn refresh(&self, realm_id: &str, seen: i64) -> Result<Access, QboError> {
        // The token that earned a 401 (or is about to expire) is not handed out again.
        self.access_cache.forget(realm_id);
        self.refresh_uncached(realm_id, seen).await
    }

    async fn refresh_uncached(&self, realm_id: &str, seen: i64) -> Result<Access, QboError> {
        match self.refresh_once(realm_id, seen).await? {
            Refreshed::Done(access) => Ok(access),
            Refreshed::InvalidGrant { tried } => {
                // Re-read the stored token and retry once: another process (or an admin's
                // reconnect) may have stored a newer one.
                // Passing the generation we tried makes `refresh_once` take a newer stored
                // token if there is one, and otherwise refresh again.
                self.read_tokens(realm_id).await?;
                match self.refresh_once(realm_id, tried).await? {
                    Refreshed::Done(access) => Ok(access),
                    Refreshed::InvalidGrant { tried } => {
                        self.needs_reconnect(
                            realm_id,
                            tried,
                            "invalid_grant",
                            "QuickBooks refused the stored refresh token (invalid_grant). An admin must reconnect the company.",
                        )
                        .await?;
                        Err(QboError::NeedsReconnect {
                            realm_id: realm_id.to_owned(),
                        })
                    }
                }
            }
        }
    }

    async fn refresh_once(&self, realm_id: &str, seen: i64) -> Result<Refreshed, QboError> {
        let mut tx = self.db.begin_locked(&lock_key(realm_id)).await?;
        let stored = store::tokens_in(&mut tx, &self.sealer, realm_id)
            .await
            .map_err(|e| token_error(realm_id, e))?;
        let stored = usable(realm_id, stored)?;
        if stored.generation != seen && stored.access_expires_at - now() > REFRESH_AHEAD_S {
            // Someone refreshed while we waited for the lock: use theirs.
            tx.rollback().await?;
            let access = Access {
                token: stored.access_token,
                generation: stored.generation,
            };
            self.access_cache
                .put(realm_id, &access, stored.access_expires_at);
            return Ok(Refreshed::Done(access));
        }
        self.ensure_current_key(&mut tx).await?;
        self.fault(FaultPoint::RefreshBeforeIntuit);
        let started = std::time::Instant::now();
        let answer = self.oauth.refresh(&stored.refresh_token).await;
        metrics::histogram!("quickbooks_refresh_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        match answer {
            Ok(tokens) => {
                self.fault(FaultPoint::RefreshAfterIntuit);
                let generation =
                    store::store_refreshed(&mut tx, &self.sealer, realm_id, &tokens, now()).await?;
                tx.commit().await?;
                self.fault(FaultPoint::RefreshAfterCommit);
                metrics::counter!("quickbooks_refreshes_total", "outcome" => "ok").increment(1);
                tracing::info!(realm_id, generation, "refreshed QuickBooks tokens");
                let access = Access {
                    token: tokens.access_token,
                    generation,
                };
                self.access_cache
                    .put(realm_id, &access, now() + tokens.expires_in);
                Ok(Refreshed::Done(access))
            }
            Err(IntuitTokenError::InvalidGrant(_)) => {
                tx.rollback().await?;
                metrics::counter!("quickbooks_refreshes_total", "outcome" => "invalid_grant")
                    .increment(1);
                Ok(Refreshed::InvalidGrant {
                    tried: stored.generation,
                })
            }
            Err(IntuitTokenError::Unavailable(detail)) => {
                tx.rollback().await?;
                metrics::counter!("quickbooks_refreshes_total", "outcome" => "unavailable")
                    .increment(1);
                self.refresh_failed(realm_id, "unavailable", &detail).await;
                Err(QboError::Unavailable { detail })
            }
            Err(e @ IntuitTokenError::Refused { .. }) => {
                tx.rollback().await?;
                metrics::counter!("quickbooks_refreshes_total", "outcome" => "refused")
                    .increment(1);
                self.refresh_failed(realm_id, "refused", &e.to_string())
                    .await;
                Err(QboError::Internal(anyhow::anyhow!(
                    "Intuit refused the refresh request; check the Intuit app's client id and secret"
                )))
            }
        }
    }
}

impl QuickBooks {
    /// Refuses to go on (rolling nothing forward) when `rotate-key` retired this replica's
    /// key: tokens it sealed now could not be opened by the restarted replicas.
    pub(super) async fn ensure_current_key(&self, tx: &mut Tx) -> Result<(), QboError> {
        if keys::is_current(tx, self.sealer.key_id()).await? {
            return Ok(());
        }
        tracing::error!(
            key_id = self.sealer.key_id(),
            "the secret key was rotated: restart this server with the new key"
        );
        Err(QboError::Internal(anyhow::anyhow!(
            "the secret key was rotated (qbo-mcp rotate-key); this server must be restarted with the new key"
        )))
    }
}

enum Refreshed {
    Done(Access),
    InvalidGrant { tried: i64 },
}

fn usable(realm_id: &str, stored: store::StoredTokens) -> Result<store::StoredTokens, QboError> {
    match stored.status {
        Status::Connected => Ok(stored),
        Status::NeedsReconnect => Err(QboError::NeedsReconnect {
            realm_id: realm_id.to_owned(),
        }),
        Status::Disconnected => Err(QboError::NotConnected {
            realm_id: realm_id.to_owned(),
        }),
    }
}

fn token_error(realm_id: &str, e: TokenReadError) -> QboError {
    match e {
        TokenReadError::Unknown => QboError::UnknownCompany {
            company: realm_id.to_owned(),
        },
        TokenReadError::NoTokens(Status::NeedsReconnect) => QboError::NeedsReconnect {
            realm_id: realm_id.to_owned(),
        },
        TokenReadError::NoTokens(_) => QboError::NotConnected {
            realm_id: realm_id.to_owned(),
        },
        TokenReadError::Sealing(e) => QboError::Internal(anyhow::anyhow!(
            "stored QuickBooks tokens for {realm_id} do not open: {e}"
        )),
        TokenReadError::Db(e) => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn company(realm_id: &str, status: Status, generation: i64) -> store::Company {
        store::Company {
            realm_id: realm_id.to_owned(),
            name: realm_id.to_owned(),
            status,
            status_detail: None,
            connected_by: None,
            connected_by_person_id: None,
            intuit_user_email: None,
            connected_at: None,
            access_expires_at: None,
            refresh_expires_at: None,
            last_refresh_at: None,
            token_generation: generation,
        }
    }

    fn access(generation: i64) -> Access {
        Access {
            token: Secret::new(format!("token-{generation}")),
            generation,
        }
    }

    /// Cached tokens are served until near expiry, never replaced by an older generation, and
    /// dropped when the company rows show another generation, another status, or no company.
    #[test]
    fn the_cache_follows_the_company_rows() {
        let cache = Cache::default();
        cache.put("1", &access(2), now() + 3_600);
        assert_eq!(cache.get("1").map(|a| a.generation), Some(2));
        cache.put("1", &access(1), now() + 3_600);
        assert_eq!(cache.get("1").map(|a| a.generation), Some(2));
        cache.check(&[company("1", Status::Connected, 2)], true);
        assert!(cache.get("1").is_some());
        cache.check(&[company("1", Status::Connected, 3)], true);
        assert!(cache.get("1").is_none());

        cache.put("1", &access(3), now() + 3_600);
        cache.check(&[company("1", Status::NeedsReconnect, 3)], false);
        assert!(cache.get("1").is_none());

        cache.put("1", &access(3), now() + 3_600);
        cache.check(&[company("2", Status::Connected, 1)], true);
        assert!(cache.get("1").is_none());

        // Within five minutes of expiry it is not handed out.
        cache.put("1", &access(4), now() + REFRESH_AHEAD_S - 1);
        assert!(cache.get("1").is_none());
    }
}
