//! The JSON API for people (docs/reference.md, "JSON API"): `/api/v1/me`, `/api/v1/users`, `/api/v1/tokens`,
//! `/api/v1/allowlist`, company grants. Bodies refuse unknown fields; errors carry specific
//! codes (see docs/people.md). Admin routes take an [`Admin`](crate::auth::Admin) from the
//! caller, so they cannot forget the check.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::auth::{Caller, SignedIn};
use crate::error::AppError;
use crate::people::{self, access, admin, allowlist, grants, parse_role, password, tokens};
use crate::secret::Secret;
use crate::state::AppState;
use crate::web::{self, ApiJson, CsrfToken};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/password", post(change_password))
        .route("/api/v1/me/sign-out-everywhere", post(sign_out_everywhere))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route(
            "/api/v1/users/{username}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/api/v1/allowlist", get(list_allowlist).post(add_allowlist))
        .route("/api/v1/allowlist/{entry}", delete(remove_allowlist))
        .route(
            "/api/v1/companies/{realm_id}/grants/{username}",
            put(grant).delete(ungrant),
        )
}

/// `GET /api/v1/me`: the caller's person object; with a browser session also `csrf_token`
/// for JSON calls. Works during a forced password change (so a client can see why).
async fn me(
    State(state): State<AppState>,
    who: SignedIn,
    csrf: CsrfToken,
) -> Result<Json<Value>, AppError> {
    let mut v = serde_json::to_value(&who.person).map_err(AppError::internal)?;
    if matches!(who.credential, crate::auth::Credential::Session { .. }) {
        v["csrf_token"] = json!(csrf.value());
    }
    v["companies"] = json!(grants::granted_realms(&state.db, who.person.id).await?);
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: Option<Secret<String>>,
    new_password: Secret<String>,
}

/// `POST /api/v1/me/password`: see `password::change_own`. Every other session, token and
/// assistant grant of the caller ends; a browser session is re-issued (`Set-Cookie`; read the
/// new `csrf_token` from `GET /api/v1/me`).
async fn change_password(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    who: SignedIn,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, AppError> {
    let cookie = password::change_own(
        &state.db,
        who.person.id,
        who.credential.password_proof(),
        body.current_password.as_ref(),
        &body.new_password,
        web::client_ip(&state, Some(peer), &headers),
    )
    .await?;
    Ok(no_content_with_session(&state, cookie))
}

/// `POST /api/v1/me/sign-out-everywhere`: ends every session, personal access token (the one
/// calling included) and assistant grant of the caller. A browser session is re-issued.
async fn sign_out_everywhere(
    State(state): State<AppState>,
    who: SignedIn,
) -> Result<Response, AppError> {
    let from_browser = matches!(who.credential, crate::auth::Credential::Session { .. });
    let cookie = access::sign_out_everywhere(&state.db, &who.person, from_browser).await?;
    Ok(no_content_with_session(&state, cookie))
}

/// `204`, with the re-issued session cookie if there is one.
fn no_content_with_session(state: &AppState, cookie: Option<Secret<String>>) -> Response {
    let response = StatusCode::NO_CONTENT.into_response();
    match cookie {
        Some(cookie) => web::with_session_cookie(state, response, &cookie),
        None => response,
    }
}

async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, AppError> {
    caller.admin()?;
    Ok(Json(json!({"users": people::list(&state.db).await?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    role: String,
    email: Option<String>,
    password: Option<Secret<String>>,
    #[serde(default)]
    invite: bool,
}

async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<Response, AppError> {
    let admin = caller.admin()?;
    let created = admin::create(
        &state.db,
        &admin,
        admin::NewPerson {
            username: body.username,
            role: parse_role(&body.role)?,
            email: body.email.filter(|e| !e.trim().is_empty()),
            password: body.password,
            invite: body.invite,
        },
        &state.public_url,
    )
    .await?;
    let mut v = serde_json::to_value(&created.person).map_err(AppError::internal)?;
    if let Some(url) = created.invite_url {
        v["invite_url"] = json!(url.expose());
    }
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Json<Value>, AppError> {
    if caller.person.username != username.to_ascii_lowercase() {
        caller.admin()?;
    }
    let person = people::find(&state.db, &username)
        .await?
        .ok_or_else(|| AppError::not_found(format!("There is no person named `{username}`.")))?;
    let mut v = serde_json::to_value(&person).map_err(AppError::internal)?;
    v["companies"] = json!(grants::granted_realms(&state.db, person.id).await?);
    Ok(Json(v))
}

/// `null` and absent differ for PATCH: `Some(None)` clears the field.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    role: Option<String>,
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
    is_active: Option<bool>,
    force_password_change: Option<bool>,
}

async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<UserPatch>,
) -> Result<Json<Value>, AppError> {
    let admin = caller.admin()?;
    let changes = admin::Changes {
        role: body.role.as_deref().map(parse_role).transpose()?,
        email: body.email.map(|e| e.filter(|e| !e.trim().is_empty())),
        is_active: body.is_active,
        force_password_change: body.force_password_change,
    };
    let person = admin::update(&state.db, &admin, &username, changes).await?;
    Ok(Json(
        serde_json::to_value(&person).map_err(AppError::internal)?,
    ))
}

async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<StatusCode, AppError> {
    let admin = caller.admin()?;
    admin::delete(&state.db, &admin, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, AppError> {
    Ok(Json(
        json!({"tokens": tokens::list(&state.db, caller.person.id).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
}

/// `POST /api/v1/tokens`: the token is in this answer and never again.
async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<Response, AppError> {
    let (id, token) = create_token_for(&state, &caller.person, &body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "name": body.name.trim(), "token": token.expose()})),
    )
        .into_response())
}

/// Creates a personal access token for a person, audited (shared with the account page).
pub async fn create_token_for(
    state: &AppState,
    person: &people::Person,
    name: &str,
) -> Result<(i64, Secret<String>), AppError> {
    let mut tx = state.db.begin_write().await?;
    let (id, token) = tokens::create(&mut tx, person.id, name).await?;
    crate::audit::record(
        &mut tx,
        &crate::audit::NewEntry::new(
            Some(&person.username),
            "token.create",
            crate::audit::Outcome::Ok,
        )
        .target(id.to_string())
        .details(json!({"name": name.trim()})),
    )
    .await?;
    tx.commit().await?;
    Ok((id, token))
}

/// Revokes one of the person's own tokens, audited (shared with the account page).
pub async fn revoke_token_of(
    state: &AppState,
    person: &people::Person,
    id: i64,
) -> Result<(), AppError> {
    let mut tx = state.db.begin_write().await?;
    if !tokens::revoke(&mut tx, person.id, id).await? {
        return Err(AppError::not_found("You have no token with that id."));
    }
    crate::audit::record(
        &mut tx,
        &crate::audit::NewEntry::new(
            Some(&person.username),
            "token.revoke",
            crate::audit::Outcome::Ok,
        )
        .target(id.to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::not_found("You have no token with that id."))?;
    revoke_token_of(&state, &caller.person, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_allowlist(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, AppError> {
    caller.admin()?;
    Ok(Json(json!({"entries": allowlist::list(&state.db).await?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewEntry {
    entry: String,
    role: String,
}

async fn add_allowlist(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewEntry>,
) -> Result<Response, AppError> {
    let admin = caller.admin()?;
    let entry = allowlist::add(&state.db, &admin, &body.entry, parse_role(&body.role)?).await?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

async fn remove_allowlist(
    State(state): State<AppState>,
    caller: Caller,
    Path(entry): Path<String>,
) -> Result<StatusCode, AppError> {
    let admin = caller.admin()?;
    allowlist::remove(&state.db, &admin, &entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Path((realm_id, username)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let admin = caller.admin()?;
    grants::grant(&state.db, &admin, &realm_id, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn ungrant(
    State(state): State<AppState>,
    caller: Caller,
    Path((realm_id, username)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let admin = caller.admin()?;
    grants::revoke(&state.db, &admin, &realm_id, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}
