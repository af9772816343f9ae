//! Administering people: create, change (role, email, active, forced password change), delete,
//! reset a password. Each operation takes an [`Admin`] proof and runs in one transaction that
//! holds the `people` lock (an advisory lock on PostgreSQL, the write lock on SQLite), where it
//! re-reads the acting admin and the target and checks the invariants of docs/people.md:
//! at least one active admin (`409 last_admin`), nobody deactivates or deletes themself
//! (`409 self_deactivation` / `409 self_deletion`). Deactivation, a lower role and a password
//! reset change the person's security stamp in the same transaction (`access::renew`: every
//! session, token and assistant grant of theirs ends). Every outcome, refusals included, is
//! written to the audit log.

use serde_json::json;

use crate::audit::{self, NewEntry, Outcome};
use crate::auth::{Actor, Admin};
use crate::db::{Db, Tx};
use crate::error::AppError;
use crate::on_tx;
use crate::people::{self, Person, Role, access, invites, new_stamp, password};
use crate::secret::Secret;
use crate::time::now;

/// The lock every invariant-bearing change of people takes.
pub(crate) const LOCK: &str = "people";

/// A person to create.
#[derive(Debug)]
pub struct NewPerson {
    pub username: String,
    pub role: Role,
    pub email: Option<String>,
    /// Set a password now…
    pub password: Option<Secret<String>>,
    /// …or send a one-time link (exactly one of the two).
    pub invite: bool,
}

/// The result of creating a person.
#[derive(Debug)]
pub struct Created {
    pub person: Person,
    /// The one-time link, for invitations.
    pub invite_url: Option<Secret<String>>,
}

/// Changes to a person; `None` leaves a field as it is. `email: Some(None)` removes it.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub role: Option<Role>,
    pub email: Option<Option<String>>,
    pub is_active: Option<bool>,
    pub force_password_change: Option<bool>,
}

/// Runs an administrative change in a locked transaction after re-checking the actor, records
/// the outcome in the audit log (with the change on success, on its own on refusal).
async fn administer<T, F>(
    db: &Db,
    admin: &Admin,
    action: &str,
    target: &str,
    work: F,
) -> Result<T, AppError>
where
    F: for<'t> FnOnce(
        &'t mut Tx,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(T, serde_json::Value), AppError>> + Send + 't>,
    >,
{
    let mut tx = db.begin_locked(LOCK).await?;
    let result = async {
        recheck_actor(&mut tx, admin).await?;
        work(&mut tx).await
    }
    .await;
    match result {
        Ok((value, details)) => {
            audit::record(
                &mut tx,
                &NewEntry::new(Some(admin.audit_name()), action, Outcome::Ok)
                    .target(target)
                    .details(details),
            )
            .await?;
            tx.commit().await?;
            Ok(value)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            if e.status.is_client_error() {
                audit::record_now(
                    db,
                    &NewEntry::new(Some(admin.audit_name()), action, Outcome::Refused)
                        .target(target)
                        .details(json!({"code": e.code})),
                )
                .await?;
            }
            Err(e)
        }
    }
}

/// The acting admin may have been demoted or deactivated since the request was authenticated
/// (by a request on another replica): check again under the lock.
async fn recheck_actor(tx: &mut Tx, admin: &Admin) -> Result<(), AppError> {
    let Actor::Person(p) = admin.actor() else {
        return Ok(());
    };
    let still: Option<bool> = on_tx!(tx, conn => {
        sqlx::query_scalar(
            "SELECT role = 'admin' AND is_active FROM persons WHERE id = $1",
        )
        .bind(p.id)
        .fetch_optional(&mut *conn)
        .await?
    });
    if still == Some(true) {
        Ok(())
    } else {
        Err(AppError::forbidden("Only an admin can do that."))
    }
}

/// Active admins other than `id`.
async fn other_active_admins(tx: &mut Tx, id: i64) -> Result<i64, AppError> {
    Ok(on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE role = 'admin' AND is_active AND id <> $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?
    }))
}

fn last_admin() -> AppError {
    AppError::conflict(
        "last_admin",
        "That would leave no active admin. Make someone else an admin first.",
    )
}

fn no_such_person(username: &str) -> AppError {
    AppError::not_found(format!("There is no person named `{username}`."))
}

async fn email_taken(tx: &mut Tx, email: &str, except: Option<i64>) -> Result<bool, AppError> {
    let n: i64 = on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE email = $1 AND id <> $2")
            .bind(email)
            .bind(except.unwrap_or(0))
            .fetch_one(&mut *conn)
            .await?
    });
    Ok(n > 0)
}

fn email_conflict() -> AppError {
    AppError::conflict("email_taken", "Someone already has that email address.")
}

/// Inserts a person (no checks beyond uniqueness); used by creation, setup and first OIDC
/// sign-in. Returns the id.
pub(crate) async fn insert(
    tx: &mut Tx,
    username: &str,
    email: Option<&str>,
    role: Role,
    password_hash: Option<&str>,
) -> Result<i64, AppError> {
    let exists: i64 = on_tx!(tx, conn => {
        sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE username = $1")
            .bind(username)
            .fetch_one(&mut *conn)
            .await?
    });
    if exists > 0 {
        return Err(AppError::conflict(
            "username_taken",
            format!("The username `{username}` is taken."),
        ));
    }
    if let Some(email) = email
        && email_taken(tx, email, None).await?
    {
        return Err(email_conflict());
    }
    Ok(on_tx!(tx, conn => {
        sqlx::query_scalar(
            "INSERT INTO persons (username, email, role, is_active, force_password_change,
                 completed_onboarding, password_hash, security_stamp, created_at)
             VALUES ($1, $2, $3, TRUE, FALSE, FALSE, $4, $5, $6) RETURNING id",
        )
        .bind(username)
        .bind(email)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(new_stamp())
        .bind(now())
        .fetch_one(&mut *conn)
        .await?
    }))
}

/// Creates a person with a password or an invitation.
pub async fn create(
    db: &Db,
    admin: &Admin,
    new: NewPerson,
    public_url: &url::Url,
) -> Result<Created, AppError> {
    let username = people::parse_username(&new.username)?;
    let email = new.email.as_deref().map(people::parse_email).transpose()?;
    let hash = match (&new.password, new.invite) {
        (Some(p), false) => Some(password::hash(p).await?),
        (None, true) => None,
        _ => {
            return Err(AppError::invalid(
                "password_or_invite",
                "Give either a `password` or `\"invite\": true`, not both and not neither.",
            ));
        }
    };
    let role = new.role;
    let base = public_url.clone();
    administer(db, admin, "user.create", &username.clone(), move |tx| {
        Box::pin(async move {
            let id = insert(tx, &username, email.as_deref(), role, hash.as_deref()).await?;
            let invite_url = if new.invite {
                Some(invites::issue(tx, Some(id), invites::Purpose::Invite, &base).await?)
            } else {
                None
            };
            let person = person_in(tx, id).await?;
            let details =
                json!({"role": role.as_str(), "invite": new.invite, "email": person.email});
            Ok((Created { person, invite_url }, details))
        })
    })
    .await
}

/// A person by id inside a transaction (who must exist).
pub(crate) async fn person_in(tx: &mut Tx, id: i64) -> Result<Person, AppError> {
    let row: people::PersonRow = on_tx!(tx, conn => {
        sqlx::query_as(concat!("SELECT ", people::person_columns!(), " FROM persons p WHERE p.id = $1"))
            .bind(id)
            .fetch_one(&mut *conn)
            .await?
    });
    row.into_person()
}

/// Applies changes to a person, keeping every invariant.
pub async fn update(
    db: &Db,
    admin: &Admin,
    username: &str,
    changes: Changes,
) -> Result<Person, AppError> {
    let email = match &changes.email {
        Some(Some(e)) => Some(Some(people::parse_email(e)?)),
        Some(None) => Some(None),
        None => None,
    };
    let target = username.trim().to_ascii_lowercase();
    let actor_id = admin.person_id();
    let action = update_action(&changes);
    let (person, _) = administer(db, admin, action, &target.clone(), move |tx| {
        Box::pin(async move {
            let before = people::find_in(tx, &target).await?.ok_or_else(|| no_such_person(&target))?;
            let role = changes.role.unwrap_or(before.role);
            let is_active = changes.is_active.unwrap_or(before.is_active);
            if actor_id == Some(before.id) && !is_active {
                return Err(AppError::conflict("self_deactivation", "You cannot deactivate your own account."));
            }
            let was_admin = before.is_active && before.role == Role::Admin;
            let stays_admin = is_active && role == Role::Admin;
            if was_admin && !stays_admin && other_active_admins(tx, before.id).await? == 0 {
                return Err(last_admin());
            }
            let email = match email {
                Some(e) => e,
                None => before.email.clone(),
            };
            if let Some(e) = &email
                && before.email.as_ref() != Some(e)
                && email_taken(tx, e, Some(before.id)).await?
            {
                return Err(email_conflict());
            }
            let force = changes.force_password_change.unwrap_or(before.force_password_change);
            let status_changed = is_active != before.is_active;
            // Deactivation and a lower role end every credential issued under the old stamp;
            // reactivation gets a new stamp too, so it revives nothing.
            let ends_access = (status_changed && !is_active) || role < before.role;
            on_tx!(tx, conn => {
                sqlx::query(
                    "UPDATE persons SET role = $2, email = $3, is_active = $4, force_password_change = $5,
                         security_stamp = CASE WHEN $6 THEN $7 ELSE security_stamp END
                     WHERE id = $1",
                )
                .bind(before.id)
                .bind(role.as_str())
                .bind(&email)
                .bind(is_active)
                .bind(force)
                .bind(status_changed)
                .bind(new_stamp())
                .execute(&mut *conn)
                .await?
                .rows_affected()
            });
            if ends_access {
                access::renew(tx, before.id).await?;
            }
            let after = person_in(tx, before.id).await?;
            let details = json!({
                "role": [before.role.as_str(), after.role.as_str()],
                "is_active": [before.is_active, after.is_active],
                "email": [before.email, after.email],
                "force_password_change": [before.force_password_change, after.force_password_change],
                "ended_access": ends_access,
            });
            Ok(((after, ends_access), details))
        })
    })
    .await?;
    Ok(person)
}

fn update_action(c: &Changes) -> &'static str {
    match (
        c.role,
        c.is_active,
        c.email.is_some(),
        c.force_password_change,
    ) {
        (Some(_), None, false, None) => "user.set_role",
        (None, Some(false), false, None) => "user.deactivate",
        (None, Some(true), false, None) => "user.activate",
        _ => "user.update",
    }
}

/// Deletes a person (and, by cascade, their sessions, tokens, grants, identities, invitations).
/// Audit entries keep their name.
pub async fn delete(db: &Db, admin: &Admin, username: &str) -> Result<(), AppError> {
    let target = username.trim().to_ascii_lowercase();
    let actor_id = admin.person_id();
    administer(db, admin, "user.delete", &target.clone(), move |tx| {
        Box::pin(async move {
            let p = people::find_in(tx, &target)
                .await?
                .ok_or_else(|| no_such_person(&target))?;
            if actor_id == Some(p.id) {
                return Err(AppError::conflict(
                    "self_deletion",
                    "You cannot delete your own account.",
                ));
            }
            if p.is_active && p.role == Role::Admin && other_active_admins(tx, p.id).await? == 0 {
                return Err(last_admin());
            }
            on_tx!(tx, conn => {
                sqlx::query("DELETE FROM persons WHERE id = $1")
                    .bind(p.id)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
            });
            Ok(((), json!({"role": p.role.as_str(), "email": p.email})))
        })
    })
    .await
}

/// Resets a person's password: with `password`, sets it (they must change it at their next
/// sign-in); without, removes their password and issues a one-time link to choose a new one.
/// Either way their security stamp changes (every session, personal access token and assistant
/// grant of theirs ends, for good: choosing the new password revives nothing) and their
/// earlier invitation and reset links are void.
pub async fn reset_password(
    db: &Db,
    admin: &Admin,
    username: &str,
    new_password: Option<Secret<String>>,
    public_url: &url::Url,
) -> Result<Option<Secret<String>>, AppError> {
    let hash = match &new_password {
        Some(p) => Some(password::hash(p).await?),
        None => None,
    };
    let target = username.trim().to_ascii_lowercase();
    let base = public_url.clone();
    let (link, _) = administer(db, admin, "user.reset_password", &target.clone(), move |tx| {
        Box::pin(async move {
            let p = people::find_in(tx, &target).await?.ok_or_else(|| no_such_person(&target))?;
            // A temporary password must be changed at the next sign-in; with a link, the old
            // password stops working now (whoever knew it is the reason for many resets).
            on_tx!(tx, conn => {
                sqlx::query("UPDATE persons SET password_hash = $2, force_password_change = $3 WHERE id = $1")
                    .bind(p.id)
                    .bind(&hash)
                    .bind(hash.is_some())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
            });
            access::void_links(tx, p.id).await?;
            access::renew(tx, p.id).await?;
            let link = match hash {
                Some(_) => None,
                None => Some(invites::issue(tx, Some(p.id), invites::Purpose::Reset, &base).await?),
            };
            Ok(((link.clone(), p.id), json!({"link": link.is_some()})))
        })
    })
    .await?;
    Ok(link)
}
