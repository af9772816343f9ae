//! Intuit's token rules: authorization codes, access tokens, refresh tokens that keep their
//! value inside the rotation interval and change after it (the old value dying at once or
//! after a grace), the rolling refresh lifetime, revocation, and the connection of one app
//! to one company owned by one admin ("Change Admin" moves it and kills the old tokens).
//! Pure bookkeeping on explicit times, so every rule is testable without waiting.

use crate::config::SimConfig;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rand::distr::Alphanumeric;
use std::collections::HashMap;

/// How long an authorization code may wait before its exchange (Intuit: 5 minutes).
const CODE_LIFETIME_S: i64 = 300;

/// Who an authorization or token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub client_id: String,
    pub realm_id: String,
    pub email: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
struct Code {
    principal: Principal,
    redirect_uri: String,
    issued_at: DateTime<Utc>,
    used: bool,
    generation: u64,
}

#[derive(Debug, Clone)]
struct Connection {
    email: String,
    generation: u64,
}

#[derive(Debug, Clone)]
struct RefreshToken {
    principal: Principal,
    generation: u64,
    value_issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    superseded: Option<(DateTime<Utc>, String)>,
    /// When the code exchange started this chain of refresh tokens (the hard maximum
    /// lifetime counts from here).
    chain_started_at: DateTime<Utc>,
}

/// The expiry of a refresh token issued or extended now: rolling, but never past the hard
/// maximum of its chain.
fn refresh_expiry(
    config: &SimConfig,
    chain_started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let rolling = now + Duration::seconds(config.refresh_token_lifetime_s as i64);
    rolling.min(hard_expiry(config, chain_started_at))
}

/// When a chain of refresh tokens started at `chain_started_at` dies, however it is used.
fn hard_expiry(config: &SimConfig, chain_started_at: DateTime<Utc>) -> DateTime<Utc> {
    chain_started_at + Duration::seconds(config.refresh_token_max_lifetime_s as i64)
}

/// A live access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub principal: Principal,
    pub expires_at: DateTime<Utc>,
    generation: u64,
}

/// What the token endpoint answers on success.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    /// Seconds the refresh token answered stays valid (its remaining validity).
    pub refresh_expires_in: i64,
    /// Seconds until the hard maximum of the token's chain, whatever refreshing does.
    pub refresh_hard_expires_in: i64,
    pub principal: Principal,
    /// The refresh answered a new refresh token value.
    pub rotated: bool,
}

/// Why a grant was refused (always `invalid_grant` on the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantError {
    InvalidGrant(&'static str),
}

/// What approving an authorization did to the app's connection with the company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// No connection existed, or the same admin approved again.
    Connected,
    /// The connection moved from this admin to the approving one ("Change Admin").
    AdminChanged { previous: String },
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessError {
    Unknown,
    Expired,
    Revoked,
}

/// All codes, tokens and connections.
#[derive(Debug, Default)]
pub struct Grants {
    codes: HashMap<String, Code>,
    connections: HashMap<(String, String), Connection>,
    refresh: HashMap<String, RefreshToken>,
    access: HashMap<String, AccessToken>,
}

fn random_token(prefix: &str, len: usize) -> String {
    let body: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
}

impl Grants {
    /// Records a user's approval and mints the authorization code for the redirect.
    pub fn approve(
        &mut self,
        principal: Principal,
        redirect_uri: &str,
        change_admin: bool,
        now: DateTime<Utc>,
    ) -> (String, Approval) {
        let key = (principal.client_id.clone(), principal.realm_id.clone());
        let approval = match self.connections.get_mut(&key) {
            Some(connection)
                if !connection.email.eq_ignore_ascii_case(&principal.email) && change_admin =>
            {
                let previous = std::mem::replace(&mut connection.email, principal.email.clone());
                connection.generation += 1;
                Approval::AdminChanged { previous }
            }
            Some(_) => Approval::Connected,
            None => {
                self.connections.insert(
                    key.clone(),
                    Connection {
                        email: principal.email.clone(),
                        generation: 1,
                    },
                );
                Approval::Connected
            }
        };
        let generation = self.connections.get(&key).map_or(1, |c| c.generation);
        let code = random_token("AB11", 40);
        self.codes.insert(
            code.clone(),
            Code {
                principal,
                redirect_uri: redirect_uri.to_owned(),
                issued_at: now,
                used: false,
                generation,
            },
        );
        (code, approval)
    }

    fn generation_is_current(&self, principal: &Principal, generation: u64) -> bool {
        self.connections
            .get(&(principal.client_id.clone(), principal.realm_id.clone()))
            .is_some_and(|c| c.generation == generation)
    }

    fn mint(
        &mut self,
        principal: Principal,
        generation: u64,
        config: &SimConfig,
        now: DateTime<Utc>,
    ) -> String {
        let access = random_token("eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.", 64);
        let expires_at = now + Duration::seconds(config.access_token_lifetime_s as i64);
        self.access.insert(
            access.clone(),
            AccessToken {
                principal,
                expires_at,
                generation,
            },
        );
        access
    }

    /// `grant_type=authorization_code`.
    pub fn exchange_code(
        &mut self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
        config: &SimConfig,
        now: DateTime<Utc>,
    ) -> Result<Issued, GrantError> {
        let Some(found) = self.codes.get_mut(code) else {
            return Err(GrantError::InvalidGrant("unknown authorization code"));
        };
        if found.used {
            return Err(GrantError::InvalidGrant("authorization code already used"));
        }
        if found.principal.client_id != client_id {
            return Err(GrantError::InvalidGrant(
                "authorization code issued to another client",
            ));
        }
        if found.redirect_uri != redirect_uri {
            return Err(GrantError::InvalidGrant(
                "redirect_uri does not match the authorization request",
            ));
        }
        if now - found.issued_at > Duration::seconds(CODE_LIFETIME_S) {
            return Err(GrantError::InvalidGrant("authorization code expired"));
        }
        found.used = true;
        let (principal, generation) = (found.principal.clone(), found.generation);
        if !self.generation_is_current(&principal, generation) {
            return Err(GrantError::InvalidGrant(
                "the connection moved to another admin",
            ));
        }
        let refresh = random_token("RT1-", 48);
        let expires_at = refresh_expiry(config, now, now);
        self.refresh.insert(
            refresh.clone(),
            RefreshToken {
                principal: principal.clone(),
                generation,
                value_issued_at: now,
                expires_at,
                superseded: None,
                chain_started_at: now,
            },
        );
        let access = self.mint(principal.clone(), generation, config, now);
        Ok(Issued {
            access_token: access,
            refresh_token: refresh,
            expires_in: config.access_token_lifetime_s as i64,
            refresh_expires_in: (expires_at - now).num_seconds(),
            refresh_hard_expires_in: (hard_expiry(config, now) - now).num_seconds(),
            principal,
            rotated: false,
        })
    }

    /// `grant_type=refresh_token`.
    pub fn refresh(
        &mut self,
        client_id: &str,
        token: &str,
        config: &SimConfig,
        now: DateTime<Utc>,
    ) -> Result<Issued, GrantError> {
        let Some(record) = self.refresh.get(token).cloned() else {
            return Err(GrantError::InvalidGrant("unknown refresh token"));
        };
        if record.principal.client_id != client_id {
            return Err(GrantError::InvalidGrant(
                "refresh token issued to another client",
            ));
        }
        if !self.generation_is_current(&record.principal, record.generation) {
            return Err(GrantError::InvalidGrant(
                "the connection was revoked or moved to another admin",
            ));
        }
        if now >= record.expires_at {
            return Err(GrantError::InvalidGrant("refresh token expired"));
        }
        // A rotated value stays usable only during the grace; it then answers as the
        // current value would (what Intuit's older documentation described).
        let (current_value, current) = match &record.superseded {
            Some((at, successor)) => {
                if now - *at >= Duration::seconds(config.refresh_grace_s as i64) {
                    return Err(GrantError::InvalidGrant("refresh token was rotated"));
                }
                let successor = successor.clone();
                match self.refresh.get(&successor).cloned() {
                    Some(next) => (successor, next),
                    None => return Err(GrantError::InvalidGrant("refresh token was rotated")),
                }
            }
            None => (token.to_owned(), record),
        };
        let expires_at = refresh_expiry(config, current.chain_started_at, now);
        let rotate =
            now - current.value_issued_at >= Duration::seconds(config.rotation_interval_s as i64);
        let value = if rotate {
            let next = random_token("RT1-", 48);
            self.refresh.insert(
                next.clone(),
                RefreshToken {
                    principal: current.principal.clone(),
                    generation: current.generation,
                    value_issued_at: now,
                    expires_at,
                    superseded: None,
                    chain_started_at: current.chain_started_at,
                },
            );
            if let Some(old) = self.refresh.get_mut(&current_value) {
                old.superseded = Some((now, next.clone()));
            }
            next
        } else {
            // The same value answered again keeps its expiry: Intuit's answer then counts
            // down (the rolling 100 days restart with each new value).
            current_value
        };
        let expires_at = if rotate {
            expires_at
        } else {
            current.expires_at
        };
        let access = self.mint(current.principal.clone(), current.generation, config, now);
        Ok(Issued {
            access_token: access,
            refresh_token: value,
            expires_in: config.access_token_lifetime_s as i64,
            refresh_expires_in: (expires_at - now).num_seconds(),
            refresh_hard_expires_in: (hard_expiry(config, current.chain_started_at) - now)
                .num_seconds(),
            principal: current.principal,
            rotated: rotate,
        })
    }

    /// The company an authorization code, refresh token or access token was issued for,
    /// spent or not (for counting refused requests per company).
    pub fn realm_of(&self, secret: &str) -> Option<String> {
        let principal = self
            .codes
            .get(secret)
            .map(|c| &c.principal)
            .or_else(|| self.refresh.get(secret).map(|r| &r.principal))
            .or_else(|| self.access.get(secret).map(|a| &a.principal))?;
        Some(principal.realm_id.clone())
    }

    /// Checks a bearer token for an API call.
    pub fn access(&self, token: &str, now: DateTime<Utc>) -> Result<&AccessToken, AccessError> {
        let found = self.access.get(token).ok_or(AccessError::Unknown)?;
        if !self.generation_is_current(&found.principal, found.generation) {
            return Err(AccessError::Revoked);
        }
        if now >= found.expires_at {
            return Err(AccessError::Expired);
        }
        Ok(found)
    }

    /// Revokes the connection a token belongs to (Intuit disconnects the app); `None` when the
    /// token is unknown or belongs to another client.
    pub fn revoke(&mut self, client_id: &str, token: &str) -> Option<Principal> {
        let principal = self
            .refresh
            .get(token)
            .map(|r| r.principal.clone())
            .or_else(|| self.access.get(token).map(|a| a.principal.clone()))?;
        if principal.client_id != client_id {
            return None;
        }
        let key = (principal.client_id.clone(), principal.realm_id.clone());
        self.connections.remove(&key);
        self.refresh.retain(|_, r| {
            (
                r.principal.client_id.as_str(),
                r.principal.realm_id.as_str(),
            ) != (key.0.as_str(), key.1.as_str())
        });
        self.access.retain(|_, a| {
            (
                a.principal.client_id.as_str(),
                a.principal.realm_id.as_str(),
            ) != (key.0.as_str(), key.1.as_str())
        });
        Some(principal)
    }

    /// Makes every access token expired (`POST /_sim/expire-access-tokens`); returns how many.
    pub fn expire_access_tokens(&mut self, now: DateTime<Utc>) -> usize {
        let mut count = 0;
        for token in self.access.values_mut() {
            if token.expires_at > now {
                token.expires_at = now;
                count += 1;
            }
        }
        count
    }

    /// The admin who owns an app's connection to a company.
    pub fn connected_admin(&self, client_id: &str, realm_id: &str) -> Option<&str> {
        self.connections
            .get(&(client_id.to_owned(), realm_id.to_owned()))
            .map(|c| c.email.as_str())
    }

    /// Number of (app, company) connections.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(email: &str) -> Principal {
        Principal {
            client_id: "app".into(),
            realm_id: "1".into(),
            email: email.into(),
            scopes: vec!["com.intuit.quickbooks.accounting".into()],
        }
    }

    fn connected(grants: &mut Grants, config: &SimConfig, now: DateTime<Utc>) -> Issued {
        let (code, _) = grants.approve(who("a@x"), "http://cb", true, now);
        grants
            .exchange_code("app", &code, "http://cb", config, now)
            .expect("exchange")
    }

    #[test]
    fn codes_are_single_use_and_bound_to_client_and_redirect() {
        let mut grants = Grants::default();
        let config = SimConfig::default();
        let now = Utc::now();
        let (code, _) = grants.approve(who("a@x"), "http://cb", true, now);
        assert!(
            grants
                .exchange_code("other", &code, "http://cb", &config, now)
                .is_err()
        );
        assert!(
            grants
                .exchange_code("app", &code, "http://elsewhere", &config, now)
                .is_err()
        );
        assert!(
            grants
                .exchange_code("app", &code, "http://cb", &config, now)
                .is_ok()
        );
        assert!(
            grants
                .exchange_code("app", &code, "http://cb", &config, now)
                .is_err()
        );
        let (late, _) = grants.approve(who("a@x"), "http://cb", true, now);
        assert!(
            grants
                .exchange_code(
                    "app",
                    &late,
                    "http://cb",
                    &config,
                    now + Duration::seconds(301)
                )
                .is_err()
        );
    }

    #[test]
    fn refresh_keeps_value_inside_rotation_interval_then_rotates_without_grace() {
        let mut grants = Grants::default();
        let config = SimConfig::default();
        let t0 = Utc::now();
        let first = connected(&mut grants, &config, t0);
        let same = grants
            .refresh(
                "app",
                &first.refresh_token,
                &config,
                t0 + Duration::hours(2),
            )
            .expect("refresh");
        assert_eq!(same.refresh_token, first.refresh_token);
        assert!(!same.rotated);
        let rotated = grants
            .refresh(
                "app",
                &first.refresh_token,
                &config,
                t0 + Duration::hours(25),
            )
            .expect("rotate");
        assert_ne!(rotated.refresh_token, first.refresh_token);
        assert!(rotated.rotated);
        assert!(
            grants
                .refresh(
                    "app",
                    &first.refresh_token,
                    &config,
                    t0 + Duration::hours(25)
                )
                .is_err()
        );
        assert!(
            grants
                .refresh(
                    "app",
                    &rotated.refresh_token,
                    &config,
                    t0 + Duration::hours(26)
                )
                .is_ok()
        );
    }

    #[test]
    fn grace_lets_the_previous_value_answer_the_successor() {
        let mut grants = Grants::default();
        let config = SimConfig {
            rotation_interval_s: 0,
            refresh_grace_s: 60,
            ..SimConfig::default()
        };
        let t0 = Utc::now();
        let first = connected(&mut grants, &config, t0);
        let second = grants
            .refresh("app", &first.refresh_token, &config, t0)
            .expect("rotate");
        let again = grants
            .refresh(
                "app",
                &first.refresh_token,
                &config,
                t0 + Duration::seconds(30),
            )
            .expect("grace");
        assert_ne!(again.refresh_token, first.refresh_token);
        assert_ne!(
            again.refresh_token, second.refresh_token,
            "interval 0 rotates the successor too"
        );
        assert!(
            grants
                .refresh(
                    "app",
                    &first.refresh_token,
                    &config,
                    t0 + Duration::seconds(61)
                )
                .is_err()
        );
    }

    #[test]
    fn refresh_lifetime_rolls_with_each_new_value_and_counts_down_otherwise() {
        let mut grants = Grants::default();
        let config = SimConfig {
            refresh_token_lifetime_s: 100,
            rotation_interval_s: 50,
            ..SimConfig::default()
        };
        let t0 = Utc::now();
        let first = connected(&mut grants, &config, t0);
        let same = grants
            .refresh(
                "app",
                &first.refresh_token,
                &config,
                t0 + Duration::seconds(30),
            )
            .expect("within life");
        assert_eq!(same.refresh_token, first.refresh_token);
        assert_eq!(same.refresh_expires_in, 70, "the same value counts down");
        let rotated = grants
            .refresh(
                "app",
                &first.refresh_token,
                &config,
                t0 + Duration::seconds(90),
            )
            .expect("within life");
        assert_ne!(rotated.refresh_token, first.refresh_token);
        assert_eq!(
            rotated.refresh_expires_in, 100,
            "a new value rolls the lifetime"
        );
        let again = grants
            .refresh(
                "app",
                &rotated.refresh_token,
                &config,
                t0 + Duration::seconds(180),
            )
            .expect("rolled");
        assert!(
            grants
                .refresh(
                    "app",
                    &again.refresh_token,
                    &config,
                    t0 + Duration::seconds(281)
                )
                .is_err()
        );
    }

    #[test]
    fn the_chain_dies_at_the_hard_maximum_however_often_it_refreshes() {
        let mut grants = Grants::default();
        let config = SimConfig {
            refresh_token_lifetime_s: 100,
            refresh_token_max_lifetime_s: 250,
            rotation_interval_s: 50,
            ..SimConfig::default()
        };
        let t0 = Utc::now();
        let mut current = connected(&mut grants, &config, t0).refresh_token;
        for step in 1..=4 {
            let issued = grants
                .refresh("app", &current, &config, t0 + Duration::seconds(step * 60))
                .expect("alive");
            assert!(issued.refresh_expires_in <= 250 - step * 60);
            current = issued.refresh_token;
        }
        assert!(
            grants
                .refresh("app", &current, &config, t0 + Duration::seconds(251))
                .is_err()
        );
    }

    #[test]
    fn change_admin_moves_the_connection_and_kills_old_tokens() {
        let mut grants = Grants::default();
        let config = SimConfig::default();
        let now = Utc::now();
        let first = connected(&mut grants, &config, now);
        assert!(grants.access(&first.access_token, now).is_ok());
        let (code, approval) = grants.approve(who("b@x"), "http://cb", true, now);
        assert_eq!(
            approval,
            Approval::AdminChanged {
                previous: "a@x".into()
            }
        );
        assert_eq!(
            grants.access(&first.access_token, now).err(),
            Some(AccessError::Revoked)
        );
        assert!(
            grants
                .refresh("app", &first.refresh_token, &config, now)
                .is_err()
        );
        let second = grants
            .exchange_code("app", &code, "http://cb", &config, now)
            .expect("new admin");
        assert_eq!(second.principal.email, "b@x");
        assert_eq!(grants.connected_admin("app", "1"), Some("b@x"));
        let (_, again) = grants.approve(who("b@x"), "http://cb", true, now);
        assert_eq!(again, Approval::Connected);
    }

    #[test]
    fn revoke_and_expiry_end_access() {
        let mut grants = Grants::default();
        let config = SimConfig::default();
        let now = Utc::now();
        let first = connected(&mut grants, &config, now);
        assert_eq!(grants.expire_access_tokens(now), 1);
        assert_eq!(
            grants.access(&first.access_token, now).err(),
            Some(AccessError::Expired)
        );
        assert!(grants.revoke("other-app", &first.refresh_token).is_none());
        assert!(grants.revoke("app", &first.refresh_token).is_some());
        assert!(
            grants
                .refresh("app", &first.refresh_token, &config, now)
                .is_err()
        );
        assert_eq!(grants.connection_count(), 0);
    }
}
