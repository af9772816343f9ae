//! People: persons and their roles, passwords, sign-in, browser sessions, personal access
//! tokens, invitations, the identity-provider allowlist and company grants (docs/people.md).
//!
//! What other features call:
//! - [`Role`] (`Viewer < Bookkeeper < Admin`, `as_str`/`FromStr` with the lower-case names)
//!   and [`Person`], whose `Serialize` form is the person object of the JSON API everywhere.
//! - [`load_current`]: the per-request check behind every session and token. Sessions, tokens
//!   and OAuth grants store the person's security stamp when issued; this loads the person by
//!   id in one indexed query and answers `None` when the stamp changed (see [`access`]: a
//!   password change or reset, deactivation, a lower role, "Sign out everywhere") or the
//!   person is inactive. Never cache its answer beyond one request.
//! - [`grants`]: which companies a person may use.
//!
//! Every change that could break an invariant (the last active admin, no self-deactivation)
//! runs in [`admin`] inside a transaction holding the `people` lock, so any interleaving of
//! requests on any number of replicas keeps the invariants. This module never renders HTML
//! itself except in `pages`, and never reads another feature's tables.

pub mod access;
pub mod admin;
pub mod allowlist;
pub mod api;
pub mod cli;
pub mod grants;
pub mod invites;
pub mod oidc;
pub mod pages;
pub mod password;
pub mod session;
pub mod signin;
pub mod tokens;

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::db::{Db, Tx};
use crate::error::AppError;
use crate::time::time_text;
use crate::{on_db, on_tx};

/// A person's role, global across companies. Ordered by what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Bookkeeper,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Bookkeeper, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Bookkeeper => "bookkeeper",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a role name that is not one of `viewer`, `bookkeeper`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRole(pub String);

impl fmt::Display for UnknownRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a role; use viewer, bookkeeper or admin",
            self.0
        )
    }
}

impl std::error::Error for UnknownRole {}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "bookkeeper" => Ok(Role::Bookkeeper),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a role from user input, as a 422 `invalid_role` when unknown.
pub fn parse_role(s: &str) -> Result<Role, AppError> {
    s.trim()
        .to_ascii_lowercase()
        .parse()
        .map_err(|e: UnknownRole| AppError::invalid("invalid_role", format!("{e}.")))
}

/// A person as every feature sees them. The JSON form is the API's person object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub role: Role,
    pub is_active: bool,
    pub force_password_change: bool,
    pub completed_onboarding: bool,
    /// Whether the person can sign in with a password (false: identity provider or a pending
    /// invitation only).
    pub has_password: bool,
    #[serde(serialize_with = "rfc3339")]
    pub created_at: i64,
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_login_at: Option<i64>,
}

impl Person {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

fn rfc3339<S: Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time_text(*secs))
}

fn rfc3339_opt<S: Serializer>(secs: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match secs {
        Some(secs) => s.serialize_str(&time_text(*secs)),
        None => s.serialize_none(),
    }
}

/// A fresh security stamp.
pub(crate) fn new_stamp() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The columns of [`PersonRow`], for `concat!` into queries (`p` is `persons`).
macro_rules! person_columns {
    () => {
        "p.id, p.username, p.email, p.role, p.is_active, p.force_password_change, \
         p.completed_onboarding, (p.password_hash IS NOT NULL) AS has_password, p.created_at, \
         p.last_login_at"
    };
}
pub(crate) use person_columns;

/// `JOIN persons p` on the person a credential was issued to, kept only while that person is
/// active and still has the stamp the credential carries: the rule of [`load_current`], for
/// features that check a credential and its person in one indexed query (`concat!` it after the
/// credential's table; both arguments are SQL column expressions, as literals).
macro_rules! join_current_person {
    ($person_id:literal, $stamp:literal) => {
        concat!(
            " JOIN persons p ON p.id = ",
            $person_id,
            " AND p.security_stamp = ",
            $stamp,
            " AND p.is_active"
        )
    };
}
pub(crate) use join_current_person;

/// A person as stored; [`Person`] once the role is parsed.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct PersonRow {
    id: i64,
    username: String,
    email: Option<String>,
    role: String,
    is_active: bool,
    force_password_change: bool,
    completed_onboarding: bool,
    has_password: bool,
    created_at: i64,
    last_login_at: Option<i64>,
}

impl PersonRow {
    pub(crate) fn into_person(self) -> Result<Person, AppError> {
        let role = self.role.parse().map_err(|e| {
            AppError::internal(anyhow::anyhow!("person {}: stored role {e}", self.id))
        })?;
        Ok(Person {
            id: self.id,
            username: self.username,
            email: self.email,
            role,
            is_active: self.is_active,
            force_password_change: self.force_password_change,
            completed_onboarding: self.completed_onboarding,
            has_password: self.has_password,
            created_at: self.created_at,
            last_login_at: self.last_login_at,
        })
    }
}

/// The person behind a session, token or OAuth grant issued under `stamp`: `None` when the
/// person is gone, inactive, or their stamp changed since (see [`access`]). One
/// indexed query (primary key); call it on every request and keep the answer no longer.
pub async fn load_current(
    db: &Db,
    person_id: i64,
    stamp: &str,
) -> Result<Option<Person>, AppError> {
    let row: Option<PersonRow> = on_db!(db, pool => {
        sqlx::query_as(concat!(
            "SELECT ", person_columns!(),
            " FROM persons p WHERE p.id = $1 AND p.security_stamp = $2 AND p.is_active"
        ))
        .bind(person_id)
        .bind(stamp)
        .fetch_optional(pool)
        .await?
    });
    row.map(PersonRow::into_person).transpose()
}

/// A person by username (any case).
pub async fn find(db: &Db, username: &str) -> Result<Option<Person>, AppError> {
    let username = username.trim().to_ascii_lowercase();
    let row: Option<PersonRow> = on_db!(db, pool => {
        sqlx::query_as(concat!("SELECT ", person_columns!(), " FROM persons p WHERE p.username = $1"))
            .bind(&username)
            .fetch_optional(pool)
            .await?
    });
    row.map(PersonRow::into_person).transpose()
}

/// A person by username inside a transaction.
pub(crate) async fn find_in(tx: &mut Tx, username: &str) -> Result<Option<Person>, AppError> {
    let username = username.trim().to_ascii_lowercase();
    let row: Option<PersonRow> = on_tx!(tx, conn => {
        sqlx::query_as(concat!("SELECT ", person_columns!(), " FROM persons p WHERE p.username = $1"))
            .bind(&username)
            .fetch_optional(&mut *conn)
            .await?
    });
    row.map(PersonRow::into_person).transpose()
}

/// A person by id.
pub async fn get(db: &Db, id: i64) -> Result<Option<Person>, AppError> {
    let row: Option<PersonRow> = on_db!(db, pool => {
        sqlx::query_as(concat!("SELECT ", person_columns!(), " FROM persons p WHERE p.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?
    });
    row.map(PersonRow::into_person).transpose()
}

/// Everyone, by username.
pub async fn list(db: &Db) -> Result<Vec<Person>, AppError> {
    let rows: Vec<PersonRow> = on_db!(db, pool => {
        sqlx::query_as(concat!("SELECT ", person_columns!(), " FROM persons p ORDER BY p.username"))
            .fetch_all(pool)
            .await?
    });
    rows.into_iter().map(PersonRow::into_person).collect()
}

/// Whether any active admin exists (no: first-run setup is open).
pub async fn has_active_admin(db: &Db) -> Result<bool, AppError> {
    let n: i64 = on_db!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE role = 'admin' AND is_active")
            .fetch_one(pool)
            .await?
    });
    Ok(n > 0)
}

/// The active admins as a person would name them (`dana (dana@example.com)`), for messages
/// that tell someone whom to ask.
pub async fn admin_contacts(db: &Db) -> Result<Vec<String>, AppError> {
    let rows: Vec<(String, Option<String>)> = on_db!(db, pool => {
        sqlx::query_as(
            "SELECT username, email FROM persons WHERE role = 'admin' AND is_active ORDER BY username",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(name, email)| match email {
            Some(e) => format!("{name} ({e})"),
            None => name,
        })
        .collect())
}

/// Records that a person has seen the onboarding page.
pub async fn mark_onboarded(db: &Db, person_id: i64) -> Result<(), AppError> {
    on_db!(db, pool => {
        sqlx::query("UPDATE persons SET completed_onboarding = TRUE WHERE id = $1")
            .bind(person_id)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(())
}

/// Validates and normalises a username: 3–64 of `a-z 0-9 . _ -` (upper case is folded).
pub fn parse_username(raw: &str) -> Result<String, AppError> {
    let name = raw.trim().to_ascii_lowercase();
    let ok = (3..=64).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(name)
    } else {
        Err(AppError::invalid(
            "invalid_username",
            "A username is 3 to 64 characters of a-z, 0-9, dot, underscore or hyphen.",
        ))
    }
}

/// Validates and normalises an email address (lower-cased; one `@`, a dotted domain).
pub fn parse_email(raw: &str) -> Result<String, AppError> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && is_domain(domain)
                && !local.contains(char::is_whitespace)
                && !local.contains(['<', '>', '"', ',', ';'])
        });
    if valid {
        Ok(email)
    } else {
        Err(AppError::invalid(
            "invalid_email",
            "That is not an email address like name@example.com.",
        ))
    }
}

/// `example.com`: labels of letters, digits and hyphens, at least one dot.
pub(crate) fn is_domain(domain: &str) -> bool {
    domain.contains('.')
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_names() {
        assert!(Role::Viewer < Role::Bookkeeper && Role::Bookkeeper < Role::Admin);
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("Admin".parse::<Role>().is_err());
        assert_eq!(parse_role(" Admin ").unwrap(), Role::Admin);
        assert_eq!(parse_role("owner").unwrap_err().code, "invalid_role");
    }

    #[test]
    fn usernames() {
        assert_eq!(parse_username("Alice.B-1_").unwrap(), "alice.b-1_");
        for bad in ["ab", "a b", "ålice", "x@y", &"a".repeat(65), ""] {
            assert_eq!(
                parse_username(bad).unwrap_err().code,
                "invalid_username",
                "{bad}"
            );
        }
    }

    #[test]
    fn emails() {
        assert_eq!(parse_email(" Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "ann@localhost",
            "a b@x.com",
            "ann@-x.com",
        ] {
            assert_eq!(parse_email(bad).unwrap_err().code, "invalid_email", "{bad}");
        }
    }

    #[test]
    fn person_json_has_the_spec_fields() {
        let p = Person {
            id: 1,
            username: "ann".into(),
            email: None,
            role: Role::Bookkeeper,
            is_active: true,
            force_password_change: false,
            completed_onboarding: false,
            has_password: true,
            created_at: 0,
            last_login_at: None,
        };
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["role"], "bookkeeper");
        assert_eq!(v["created_at"], "1970-01-01T00:00:00Z");
        for field in [
            "username",
            "email",
            "is_active",
            "force_password_change",
            "completed_onboarding",
            "last_login_at",
        ] {
            assert!(v.get(field).is_some(), "{field}");
        }
    }
}

/// How the person asking to change their password proved who they are.
#[derive(Debug, Clone, Copy)]
pub enum Proof {
    /// A browser session, and when it started (Unix seconds).
    Session { created_at: i64 },
    /// A bearer token: never enough to set a password without the current one.
    Token,
}
