//! Company grants: which companies a non-admin may use (admins may use all). A grant names a
//! realm id and a person; there is deliberately no foreign key to a companies table, so a grant
//! can be made before a company is connected and survives a disconnect and reconnect. The
//! connections feature decides what "all companies" are; this module only answers grants.

use serde_json::json;

use crate::audit::{self, NewEntry, Outcome};
use crate::auth::Admin;
use crate::db::Db;
use crate::error::AppError;
use crate::people::{self, Person};
use crate::time::now;
use crate::{on_db, on_tx};

/// Validates a realm id: 1–64 of letters, digits, `-` and `_`.
pub fn parse_realm(raw: &str) -> Result<String, AppError> {
    let r = raw.trim();
    if r.is_empty()
        || r.len() > 64
        || !r
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(AppError::invalid(
            "invalid_realm_id",
            "A realm id is the company's QuickBooks id, e.g. 9130357992240406.",
        ));
    }
    Ok(r.to_owned())
}

/// Grants a company to a person (idempotent).
pub async fn grant(db: &Db, admin: &Admin, realm_id: &str, username: &str) -> Result<(), AppError> {
    let realm = parse_realm(realm_id)?;
    let person = people::find(db, username).await?.ok_or_else(|| {
        AppError::not_found(format!("There is no person named `{}`.", username.trim()))
    })?;
    let mut tx = db.begin_write().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query("INSERT INTO company_grants (realm_id, person_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(&realm)
            .bind(person.id)
            .bind(now())
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    audit::record(
        &mut tx,
        &NewEntry::new(Some(admin.audit_name()), "grant.add", Outcome::Ok)
            .target(person.username.clone())
            .company(realm.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Withdraws a grant; `404 not_found` when there was none.
pub async fn revoke(
    db: &Db,
    admin: &Admin,
    realm_id: &str,
    username: &str,
) -> Result<(), AppError> {
    let realm = parse_realm(realm_id)?;
    let person = people::find(db, username).await?.ok_or_else(|| {
        AppError::not_found(format!("There is no person named `{}`.", username.trim()))
    })?;
    let mut tx = db.begin_write().await?;
    let n = on_tx!(&mut tx, conn => {
        sqlx::query("DELETE FROM company_grants WHERE realm_id = $1 AND person_id = $2")
            .bind(&realm)
            .bind(person.id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    if n == 0 {
        return Err(AppError::not_found(format!(
            "`{}` has no grant for company {realm}.",
            person.username
        )));
    }
    audit::record(
        &mut tx,
        &NewEntry::new(Some(admin.audit_name()), "grant.remove", Outcome::Ok)
            .target(person.username.clone())
            .company(realm.clone())
            .details(json!({})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The realm ids granted to a person explicitly.
pub async fn granted_realms(db: &Db, person_id: i64) -> Result<Vec<String>, AppError> {
    Ok(on_db!(db, pool => {
        sqlx::query_scalar("SELECT realm_id FROM company_grants WHERE person_id = $1 ORDER BY realm_id")
            .bind(person_id)
            .fetch_all(pool)
            .await?
    }))
}

/// Whether a person may use a company: admins always; others with a grant. (The single-company
/// default (docs/reference.md, "Company grants") is the connections feature's to apply, as it knows how many exist.)
pub async fn may_use(db: &Db, person: &Person, realm_id: &str) -> Result<bool, AppError> {
    if person.is_admin() {
        return Ok(true);
    }
    let n: i64 = on_db!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM company_grants WHERE person_id = $1 AND realm_id = $2")
            .bind(person.id)
            .bind(realm_id)
            .fetch_one(pool)
            .await?
    });
    Ok(n > 0)
}
