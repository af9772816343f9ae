//! One-time links to set a password: invitations (a new person), password resets (an admin or
//! the console sends one), and first-run setup (no admin yet: `serve` prints the link). The
//! link carries 256 random bits; only their SHA-256 is stored. A link works once, before it
//! expires; using it signs the person in. Setting a password by any path (a link, a change, an
//! admin's reset) voids the person's other unused links (`access::void_links`), so an old link
//! can never overwrite a newer password. Errors: `404 invite_not_found`, `410 invite_used`,
//! `410 invite_expired`, `409 setup_done`.

use axum::http::StatusCode;
use serde_json::json;

use crate::audit::{self, NewEntry, Outcome};
use crate::db::{Db, Tx};
use crate::error::AppError;
use crate::on_tx;
use crate::people::{self, Person, Role, access, admin, password, session};
use crate::secret::{Secret, new_token, token_hash};
use crate::time::now;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Invite,
    Reset,
    Setup,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Invite => "invite",
            Purpose::Reset => "reset",
            Purpose::Setup => "setup",
        }
    }

    fn lifetime_secs(self) -> i64 {
        match self {
            Purpose::Invite => 7 * 24 * 3600,
            Purpose::Reset | Purpose::Setup => 24 * 3600,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Purpose::Invite | Purpose::Reset => "invite",
            Purpose::Setup => "setup",
        }
    }
}

/// Issues a link; returns its full URL (shown once).
pub async fn issue(
    tx: &mut Tx,
    person_id: Option<i64>,
    purpose: Purpose,
    base: &url::Url,
) -> Result<Secret<String>, AppError> {
    let token = new_token("");
    let t = now();
    on_tx!(tx, conn => {
        sqlx::query(
            "INSERT INTO invitations (token_hash, person_id, purpose, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash(token.expose()))
        .bind(person_id)
        .bind(purpose.as_str())
        .bind(t)
        .bind(t + purpose.lifetime_secs())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    let base = base.as_str().trim_end_matches('/');
    Ok(Secret::new(format!(
        "{base}/{}/{}",
        purpose.path(),
        token.expose()
    )))
}

/// Issues a first-run setup link when no active admin exists (else `None`).
pub async fn setup_link(db: &Db, base: &url::Url) -> Result<Option<Secret<String>>, AppError> {
    let mut tx = db.begin_locked(admin::LOCK).await?;
    if active_admins(&mut tx).await? > 0 {
        return Ok(None);
    }
    let link = issue(&mut tx, None, Purpose::Setup, base).await?;
    tx.commit().await?;
    Ok(Some(link))
}

async fn active_admins(tx: &mut Tx) -> Result<i64, AppError> {
    Ok(on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE role = 'admin' AND is_active")
            .fetch_one(&mut *conn)
            .await?
    }))
}

/// A valid link, as found.
#[derive(Debug, Clone)]
pub struct Link {
    pub purpose: Purpose,
    /// The person it sets a password for (none for setup).
    pub person: Option<Person>,
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    person_id: Option<i64>,
    purpose: String,
    expires_at: i64,
    used_at: Option<i64>,
}

async fn load(tx: &mut Tx, token: &str) -> Result<LinkRow, AppError> {
    let row: Option<LinkRow> = on_tx!(tx, conn => {
        sqlx::query_as("SELECT person_id, purpose, expires_at, used_at FROM invitations WHERE token_hash = $1")
            .bind(token_hash(token))
            .fetch_optional(&mut *conn)
            .await?
    });
    let row = row.ok_or_else(|| {
        AppError::not_found("This link is not valid. Ask an admin for a new one.")
            .with_code("invite_not_found")
    })?;
    if row.used_at.is_some() {
        return Err(AppError::new(
            StatusCode::GONE,
            "invite_used",
            "This link has been used already. Ask an admin for a new one.",
        ));
    }
    if row.expires_at <= now() {
        return Err(AppError::new(
            StatusCode::GONE,
            "invite_expired",
            "This link has expired. Ask an admin for a new one.",
        ));
    }
    Ok(row)
}

fn purpose_of(s: &str) -> Purpose {
    match s {
        "setup" => Purpose::Setup,
        "reset" => Purpose::Reset,
        _ => Purpose::Invite,
    }
}

/// Checks a link without using it (to show its form).
pub async fn check(db: &Db, token: &str) -> Result<Link, AppError> {
    let mut tx = db.begin().await?;
    let row = load(&mut tx, token).await?;
    let person = match row.person_id {
        Some(id) => Some(admin::person_in(&mut tx, id).await?),
        None => None,
    };
    Ok(Link {
        purpose: purpose_of(&row.purpose),
        person,
    })
}

/// Uses an invitation or reset link: sets the password, voids the person's other links,
/// changes their security stamp (every other session, token and assistant grant ends) and signs
/// them in. Returns the person and the new session cookie value.
pub async fn accept(
    db: &Db,
    token: &str,
    new_password: &Secret<String>,
) -> Result<(Person, Secret<String>), AppError> {
    let hash = password::hash(new_password).await?;
    let mut tx = db.begin_locked(admin::LOCK).await?;
    let row = load(&mut tx, token).await?;
    let Some(person_id) = row.person_id else {
        return Err(
            AppError::not_found("This link is not valid. Ask an admin for a new one.")
                .with_code("invite_not_found"),
        );
    };
    let t = now();
    let updated = on_tx!(&mut tx, conn => {
        sqlx::query(
            "UPDATE persons SET password_hash = $2, force_password_change = FALSE, last_login_at = $3
             WHERE id = $1 AND is_active",
        )
        .bind(person_id)
        .bind(&hash)
        .bind(t)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if updated == 0 {
        return Err(
            AppError::forbidden("This account is deactivated. Ask an admin.").with_code("inactive"),
        );
    }
    // This link included.
    access::void_links(&mut tx, person_id).await?;
    let stamp = access::renew(&mut tx, person_id).await?;
    let cookie = session::start(&mut tx, person_id, &stamp).await?;
    let person = admin::person_in(&mut tx, person_id).await?;
    audit::record(
        &mut tx,
        &NewEntry::new(
            Some(&person.username),
            &format!("user.{}_accepted", row.purpose),
            Outcome::Ok,
        )
        .target(person.username.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok((person, cookie))
}

/// Uses a setup link: creates the first admin and signs them in. Refused (`409 setup_done`)
/// once an active admin exists, whichever replica created them.
pub async fn complete_setup(
    db: &Db,
    token: &str,
    username: &str,
    email: Option<&str>,
    new_password: &Secret<String>,
) -> Result<(Person, Secret<String>), AppError> {
    let username = people::parse_username(username)?;
    let email = email
        .filter(|e| !e.trim().is_empty())
        .map(people::parse_email)
        .transpose()?;
    let hash = password::hash(new_password).await?;
    let mut tx = db.begin_locked(admin::LOCK).await?;
    let row = load(&mut tx, token).await?;
    if purpose_of(&row.purpose) != Purpose::Setup {
        return Err(
            AppError::not_found("This link is not valid. Ask an admin for a new one.")
                .with_code("invite_not_found"),
        );
    }
    let admins = active_admins(&mut tx).await?;
    if admins > 0 {
        return Err(AppError::conflict(
            "setup_done",
            "Setup is done already: an admin exists. Sign in instead.",
        ));
    }
    let id = admin::insert(
        &mut tx,
        &username,
        email.as_deref(),
        Role::Admin,
        Some(&hash),
    )
    .await?;
    on_tx!(&mut tx, conn => {
        sqlx::query("UPDATE invitations SET used_at = $1 WHERE purpose = 'setup' AND used_at IS NULL")
            .bind(now())
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    let stamp: String = on_tx!(&mut tx, conn => {
        sqlx::query_scalar("UPDATE persons SET last_login_at = $2 WHERE id = $1 RETURNING security_stamp")
            .bind(id)
            .bind(now())
            .fetch_one(&mut *conn)
            .await?
    });
    let cookie = session::start(&mut tx, id, &stamp).await?;
    let person = admin::person_in(&mut tx, id).await?;
    audit::record(
        &mut tx,
        &NewEntry::new(Some(&username), "setup.first_admin", Outcome::Ok)
            .target(username.clone())
            .details(json!({"email": email})),
    )
    .await?;
    tx.commit().await?;
    Ok((person, cookie))
}
