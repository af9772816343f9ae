//! The JSON API for people (docs/reference.md, "JSON API"): `/api/v1/me`, `/api/v1/users`, `/api/v1/tokens`,
//! `/api/v1/allowlist`, company grants. Bodies refuse unknown fields; errors carry specific
//! codes (see docs/people.md). Admin routes take an [`Admin`](crate::auth::Admin) from the
//! caller, so they cannot forget the check.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, SignedIn};
use crate::error::AppError;
use crate::people::{self, access, admin, allowlist, grants, parse_role, password, tokens};
use crate::secret::Secret;
use crate::state::AppState;
use crate::web::openapi::ErrorBody;
use crate::web::{self, ApiJson, CsrfToken};

/// The routes with their OpenAPI description (`web::openapi`).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(sign_out_everywhere))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_allowlist, add_allowlist))
        .routes(routes!(remove_allowlist))
        .routes(routes!(grant, ungrant))
}

/// A person's role, global across companies.
#[derive(ToSchema)]
#[schema(as = Role, rename_all = "lowercase")]
#[allow(dead_code)] // Documentation of `people::Role`'s JSON form.
enum RoleDoc {
    Viewer,
    Bookkeeper,
    Admin,
}

/// The API's person object (`people::Person`).
#[derive(ToSchema)]
#[schema(as = Person)]
#[allow(dead_code)] // Documentation of `people::Person`'s JSON form.
struct PersonDoc {
    id: i64,
    username: String,
    email: Option<String>,
    role: RoleDoc,
    is_active: bool,
    force_password_change: bool,
    completed_onboarding: bool,
    /// Whether the person can sign in with a password (false: identity provider or a pending
    /// invitation only).
    has_password: bool,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_login_at: Option<String>,
    /// The realm ids of the companies the person may use (`GET /api/v1/me` and
    /// `GET /api/v1/users/{username}` only).
    companies: Option<Vec<String>>,
    /// For JSON calls from a browser session (`GET /api/v1/me` with a session only).
    csrf_token: Option<String>,
    /// The one-time invitation link (`POST /api/v1/users` with `invite` only).
    invite_url: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only.
struct UserList {
    users: Vec<PersonDoc>,
}

/// A personal access token as listed (`people::tokens::TokenInfo`; never the token itself).
#[derive(ToSchema)]
#[schema(as = Token)]
#[allow(dead_code)] // Documentation only.
struct TokenDoc {
    id: i64,
    name: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only.
struct TokenList {
    tokens: Vec<TokenDoc>,
}

/// A new personal access token: the only answer that shows `token`.
#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only.
struct CreatedToken {
    id: i64,
    name: String,
    #[schema(example = "qbo_pat_…")]
    token: String,
}

/// An allowlist entry (`people::allowlist::Entry`).
#[derive(ToSchema)]
#[schema(as = AllowlistEntry)]
#[allow(dead_code)] // Documentation only.
struct AllowlistEntryDoc {
    /// `ann@example.com` or `@example.com`.
    entry: String,
    role: RoleDoc,
    #[schema(format = DateTime)]
    created_at: String,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only.
struct Allowlist {
    entries: Vec<AllowlistEntryDoc>,
}

/// The caller's person object.
///
/// With a browser session also `csrf_token` for JSON calls; with `companies`. Works during a
/// forced password change (so a client can see why).
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    responses((status = 200, description = "The caller.", body = PersonDoc)))]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    /// Required, except for a first password from a fresh identity-provider session.
    #[schema(value_type = Option<String>)]
    current_password: Option<Secret<String>>,
    /// At least 12 characters.
    #[schema(value_type = String, min_length = 12)]
    new_password: Secret<String>,
}

/// Changes the caller's own password.
///
/// See `password::change_own`. Every other session, token and assistant grant of the caller
/// ends; a browser session is re-issued (`Set-Cookie`; read the new `csrf_token` from
/// `GET /api/v1/me`).
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = PasswordChange,
    responses((status = 204, description = "Changed.")))]
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

/// Signs the caller out everywhere.
///
/// Ends every session, personal access token (the one calling included) and assistant grant
/// of the caller. A browser session is re-issued.
#[utoipa::path(post, path = "/api/v1/me/sign-out-everywhere", tag = "me",
    responses((status = 204, description = "Signed out everywhere.")))]
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

/// Lists people (admins).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, description = "Everyone.", body = UserList)))]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, AppError> {
    caller.admin()?;
    Ok(Json(json!({"users": people::list(&state.db).await?})))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    #[schema(value_type = RoleDoc)]
    role: String,
    email: Option<String>,
    /// A password, or `invite` for a one-time link.
    #[schema(value_type = Option<String>)]
    password: Option<Secret<String>>,
    #[serde(default)]
    invite: bool,
}

/// Creates a person with a password or an invitation (admins).
///
/// With `invite`, the answer carries `invite_url`.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses(
        (status = 201, description = "Created.", body = PersonDoc),
        (status = 409, description = "The username is taken.", body = ErrorBody),
    ))]
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

/// One person (admins: anyone; others: themself).
#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, description = "The person's username.")),
    responses((status = 200, description = "The person.", body = PersonDoc)))]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    #[schema(value_type = Option<RoleDoc>)]
    role: Option<String>,
    /// `null` removes the email address.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    is_active: Option<bool>,
    force_password_change: Option<bool>,
}

/// Changes a person's role, email, activity or forced password change (admins).
///
/// Keeps the invariants: `409 last_admin`, `409 self_deactivation`.
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "users", request_body = UserPatch,
    params(("username" = String, Path, description = "The person's username.")),
    responses(
        (status = 200, description = "The person as changed.", body = PersonDoc),
        (status = 409, description = "The last admin, or yourself.", body = ErrorBody),
    ))]
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

/// Deletes a person (admins; `409 last_admin`, `409 self_deletion`).
#[utoipa::path(delete, path = "/api/v1/users/{username}", tag = "users",
    params(("username" = String, Path, description = "The person's username.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 409, description = "The last admin, or yourself.", body = ErrorBody),
    ))]
async fn delete_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<StatusCode, AppError> {
    let admin = caller.admin()?;
    admin::delete(&state.db, &admin, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's own personal access tokens.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, description = "The caller's tokens.", body = TokenList)))]
async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, AppError> {
    Ok(Json(
        json!({"tokens": tokens::list(&state.db, caller.person.id).await?}),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
}

/// Creates a personal access token for the caller.
///
/// The token is in this answer and never again.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, description = "Created.", body = CreatedToken)))]
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

/// Revokes one of the caller's tokens.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "The token's id.")),
    responses((status = 204, description = "Revoked.")))]
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

/// The identity-provider sign-in allowlist (admins).
#[utoipa::path(get, path = "/api/v1/allowlist", tag = "allowlist",
    responses((status = 200, description = "Every entry.", body = Allowlist)))]
async fn list_allowlist(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, AppError> {
    caller.admin()?;
    Ok(Json(json!({"entries": allowlist::list(&state.db).await?})))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewEntry {
    /// An email address, or a domain with a leading `@`.
    entry: String,
    /// The role of a first sign-in.
    #[schema(value_type = RoleDoc)]
    role: String,
}

/// Adds an allowlist entry (admins).
#[utoipa::path(post, path = "/api/v1/allowlist", tag = "allowlist", request_body = NewEntry,
    responses(
        (status = 201, description = "Added.", body = AllowlistEntryDoc),
        (status = 409, description = "Already there.", body = ErrorBody),
    ))]
async fn add_allowlist(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewEntry>,
) -> Result<Response, AppError> {
    let admin = caller.admin()?;
    let entry = allowlist::add(&state.db, &admin, &body.entry, parse_role(&body.role)?).await?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

/// Removes an allowlist entry (admins).
#[utoipa::path(delete, path = "/api/v1/allowlist/{entry}", tag = "allowlist",
    params(("entry" = String, Path, description = "The entry, as listed.")),
    responses((status = 204, description = "Removed.")))]
async fn remove_allowlist(
    State(state): State<AppState>,
    caller: Caller,
    Path(entry): Path<String>,
) -> Result<StatusCode, AppError> {
    let admin = caller.admin()?;
    allowlist::remove(&state.db, &admin, &entry).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Grants a company to a person (admins; idempotent).
#[utoipa::path(put, path = "/api/v1/companies/{realm_id}/grants/{username}", tag = "companies",
    params(
        ("realm_id" = String, Path, description = "The company's realm id."),
        ("username" = String, Path, description = "The person's username."),
    ),
    responses((status = 204, description = "Granted.")))]
async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    Path((realm_id, username)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let admin = caller.admin()?;
    grants::grant(&state.db, &admin, &realm_id, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Withdraws a company grant (admins).
#[utoipa::path(delete, path = "/api/v1/companies/{realm_id}/grants/{username}", tag = "companies",
    params(
        ("realm_id" = String, Path, description = "The company's realm id."),
        ("username" = String, Path, description = "The person's username."),
    ),
    responses((status = 204, description = "Withdrawn.")))]
async fn ungrant(
    State(state): State<AppState>,
    caller: Caller,
    Path((realm_id, username)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    let admin = caller.admin()?;
    grants::revoke(&state.db, &admin, &realm_id, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}
