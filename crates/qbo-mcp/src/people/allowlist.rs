//! The sign-in allowlist for the identity provider: entries are an exact email
//! (`ann@example.com`) or a domain (`@example.com`), each with the role a person gets at their
//! first sign-in. Checked at every identity-provider sign-in, so removing an entry locks its
//! people out of that route at once. Changes are admin-only and audited.

use serde::Serialize;
use serde_json::json;

use crate::audit::{self, NewEntry, Outcome};
use crate::auth::Admin;
use crate::db::Db;
use crate::error::AppError;
use crate::people::{Role, is_domain, parse_email};
use crate::time::{now, time_text};
use crate::{on_db, on_tx};

/// An allowlist entry.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// `ann@example.com` or `@example.com`.
    pub entry: String,
    pub role: Role,
    pub created_at: String,
}

/// Validates and normalises an entry: an email address or `@domain`.
pub fn parse_entry(raw: &str) -> Result<String, AppError> {
    let raw = raw.trim().to_lowercase();
    if let Some(domain) = raw.strip_prefix('@') {
        if is_domain(domain) {
            return Ok(raw);
        }
    } else if let Ok(email) = parse_email(&raw) {
        return Ok(email);
    }
    Err(AppError::invalid(
        "invalid_entry",
        "An allowlist entry is an email address (ann@example.com) or a domain with a leading @ (@example.com).",
    ))
}

pub async fn list(db: &Db) -> Result<Vec<Entry>, AppError> {
    let rows: Vec<(String, String, i64)> = on_db!(db, pool => {
        sqlx::query_as("SELECT pattern, role, created_at FROM allowlist ORDER BY pattern")
            .fetch_all(pool)
            .await?
    });
    rows.into_iter()
        .map(|(entry, role, at)| {
            Ok(Entry {
                entry,
                role: role.parse().map_err(AppError::internal)?,
                created_at: time_text(at),
            })
        })
        .collect()
}

/// Adds an entry (or changes its role when it exists).
pub async fn add(db: &Db, admin: &Admin, raw: &str, role: Role) -> Result<Entry, AppError> {
    let entry = parse_entry(raw)?;
    let mut tx = db.begin_write().await?;
    let t = now();
    on_tx!(&mut tx, conn => {
        sqlx::query(
            "INSERT INTO allowlist (pattern, role, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (pattern) DO UPDATE SET role = excluded.role",
        )
        .bind(&entry)
        .bind(role.as_str())
        .bind(t)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    audit::record(
        &mut tx,
        &NewEntry::new(Some(admin.audit_name()), "allowlist.add", Outcome::Ok)
            .target(entry.clone())
            .details(json!({"role": role.as_str()})),
    )
    .await?;
    tx.commit().await?;
    Ok(Entry {
        entry,
        role,
        created_at: time_text(t),
    })
}

/// Removes an entry; `404 not_found` when there is none.
pub async fn remove(db: &Db, admin: &Admin, raw: &str) -> Result<(), AppError> {
    let entry = raw.trim().to_lowercase();
    let mut tx = db.begin_write().await?;
    let n = on_tx!(&mut tx, conn => {
        sqlx::query("DELETE FROM allowlist WHERE pattern = $1")
            .bind(&entry)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    if n == 0 {
        return Err(AppError::not_found(format!(
            "`{entry}` is not on the allowlist."
        )));
    }
    audit::record(
        &mut tx,
        &NewEntry::new(Some(admin.audit_name()), "allowlist.remove", Outcome::Ok).target(entry),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The role an email may sign in with: the exact entry first, else its domain's.
pub async fn role_for(db: &Db, email: &str) -> Result<Option<Role>, AppError> {
    let email = email.trim().to_lowercase();
    let domain = email
        .rsplit_once('@')
        .map(|(_, d)| format!("@{d}"))
        .unwrap_or_default();
    let rows: Vec<(String, String)> = on_db!(db, pool => {
        sqlx::query_as("SELECT pattern, role FROM allowlist WHERE pattern = $1 OR pattern = $2")
            .bind(&email)
            .bind(&domain)
            .fetch_all(pool)
            .await?
    });
    let pick = rows
        .iter()
        .find(|(p, _)| *p == email)
        .or_else(|| rows.iter().find(|(p, _)| *p == domain));
    pick.map(|(_, role)| role.parse().map_err(AppError::internal))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        assert_eq!(parse_entry("@Example.com").unwrap(), "@example.com");
        assert_eq!(parse_entry("Ann@Example.com").unwrap(), "ann@example.com");
        for bad in ["example.com", "@", "@localhost", "ann@", "@-x.com"] {
            assert_eq!(parse_entry(bad).unwrap_err().code, "invalid_entry", "{bad}");
        }
    }
}
