//! The people directory, for admins: the list, adding a person (by invitation or with a
//! temporary password), a person's page (role, company grants) and the destructive actions
//! behind a confirmation page (deactivate, activate, delete, send a password link).

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use crate::auth::{AdminPage, Caller};
use crate::error::AppError;
use crate::people::{self, Person, Role, admin, grants, parse_role};
use crate::quickbooks::Company;
use crate::secret::Secret;
use crate::state::AppState;
use crate::time::time_display;
use crate::web::{self, CsrfToken, PageResult, field_error};

use super::{render, role_select, see_other};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/people", get(people_page).post(add_person))
        .route("/people/new", get(new_person_page))
        .route("/people/{username}", get(person_page))
        .route("/people/{username}/role", post(set_role))
        .route("/people/{username}/grants", post(add_grant))
        .route(
            "/people/{username}/grants/{realm}/remove",
            post(remove_grant),
        )
        .route(
            "/people/{username}/confirm/{action}",
            get(confirm_page).post(confirmed),
        )
}

async fn people_page(
    State(state): State<AppState>,
    AdminPage { caller, .. }: AdminPage,
    csrf: CsrfToken,
) -> PageResult<Markup> {
    let list = people::list(&state.db).await?;
    let body = html! {
        h1 { "People" }
        p { a.button href="/people/new" { "Add a person" } }
        table.people {
            thead { tr { th { "Username" } th { "Email" } th { "Role" } th { "Status" } th { "Last sign-in" } } }
            tbody {
                @for p in &list {
                    tr {
                        td { a href={ "/people/" (p.username) } { (p.username) } }
                        td { (p.email.as_deref().unwrap_or("—")) }
                        td { (p.role) }
                        td { @if p.is_active { "active" } @else { span.muted { "deactivated" } } }
                        td { (p.last_login_at.map(time_display).unwrap_or_else(|| "never".into())) }
                    }
                }
            }
        }
    };
    Ok(render(&state, Some(&caller.person), &csrf, "People", body).await)
}

fn new_person_form(csrf: &CsrfToken, form: &NewPersonForm, error: Option<&AppError>) -> Markup {
    let on = |codes: &[&str]| {
        error
            .filter(|e| codes.contains(&e.code))
            .map(|e| e.message.as_str())
    };
    let known = [
        "invalid_username",
        "username_taken",
        "invalid_email",
        "email_taken",
        "password_too_short",
        "password_too_long",
        "invalid_role",
    ];
    let invite = form.method.as_deref() != Some("password");
    html! {
        h1 { "Add a person" }
        @if let Some(e) = error.filter(|e| !known.contains(&e.code)) { p.error role="alert" { (e.message) } }
        form method="post" action="/people" {
            (csrf.field())
            label for="username" { "Username" }
            input #username name="username" type="text" required value=(form.username);
            (field_error(on(&["invalid_username", "username_taken"])))
            label for="email" { "Email (optional)" }
            input #email name="email" type="email" value=(form.email.as_deref().unwrap_or(""));
            (field_error(on(&["invalid_email", "email_taken"])))
            label for="role" { "Role" }
            (role_select("role", form.role.as_deref().and_then(|r| r.parse().ok()).unwrap_or(Role::Viewer)))
            (field_error(on(&["invalid_role"])))
            fieldset {
                legend { "How they get in" }
                label.choice { input type="radio" name="method" value="invite" checked[invite]; " Send an invitation link (they choose their password)" }
                label.choice { input type="radio" name="method" value="password" checked[!invite]; " Set a password now (they must change it at first sign-in)" }
            }
            label for="password" { "Password (only when setting one now)" }
            input #password name="password" type="password" autocomplete="new-password";
            (field_error(on(&["password_too_short", "password_too_long", "password_link_required", "password_changed"])))
            button type="submit" { "Add person" }
        }
    }
}

async fn new_person_page(
    State(state): State<AppState>,
    AdminPage { caller, .. }: AdminPage,
    csrf: CsrfToken,
) -> Markup {
    let body = new_person_form(&csrf, &NewPersonForm::default(), None);
    render(&state, Some(&caller.person), &csrf, "Add a person", body).await
}

#[derive(Deserialize, Default)]
struct NewPersonForm {
    username: String,
    email: Option<String>,
    role: Option<String>,
    method: Option<String>,
    password: Option<String>,
}

async fn add_person(
    State(state): State<AppState>,
    AdminPage { caller, admin }: AdminPage,
    csrf: CsrfToken,
    Form(form): Form<NewPersonForm>,
) -> PageResult {
    let invite = form.method.as_deref() != Some("password");
    let result = async {
        let role = parse_role(form.role.as_deref().unwrap_or("viewer"))?;
        let created = admin::create(
            &state.db,
            &admin,
            admin::NewPerson {
                username: form.username.clone(),
                role,
                email: form.email.clone().filter(|e| !e.trim().is_empty()),
                password: if invite {
                    None
                } else {
                    Some(Secret::new(form.password.clone().unwrap_or_default()))
                },
                invite,
            },
            &state.public_url,
        )
        .await?;
        if !invite {
            // A password set by an admin is a temporary one.
            admin::update(
                &state.db,
                &admin,
                &created.person.username,
                admin::Changes {
                    force_password_change: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        }
        Ok::<_, AppError>(created)
    }
    .await;
    match result {
        Ok(created) => {
            let body = html! {
                h1 { "Added " (created.person.username) }
                @if let Some(link) = &created.invite_url {
                    p { "Send this one-time link to " strong { (created.person.username) } ". It works once and expires in 7 days:" }
                    p { code.token #invite-link { (link.expose()) } }
                } @else {
                    p { "They can sign in with the password you set, and must change it at their first sign-in." }
                }
                p { a href={ "/people/" (created.person.username) } { "Manage " (created.person.username) } " · " a href="/people" { "Back to people" } }
            };
            Ok((
                StatusCode::CREATED,
                render(&state, Some(&caller.person), &csrf, "Person added", body).await,
            )
                .into_response())
        }
        Err(e) if e.status.is_client_error() => {
            let body = new_person_form(&csrf, &form, Some(&e));
            Ok((
                e.status,
                render(&state, Some(&caller.person), &csrf, "Add a person", body).await,
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn person_body(
    state: &AppState,
    viewer: &Person,
    csrf: &CsrfToken,
    p: &Person,
    notice: Option<&AppError>,
) -> Result<Markup, AppError> {
    let realms = grants::granted_realms(&state.db, p.id).await?;
    // The companies an admin may grant: every connected one.
    let connected: Vec<Company> = crate::companies::visible_companies(state, viewer).await?;
    let name_of = |realm: &str| {
        connected
            .iter()
            .find(|c| c.realm_id == realm)
            .map(|c| c.name.clone())
    };
    let grantable: Vec<&Company> = connected
        .iter()
        .filter(|c| !realms.contains(&c.realm_id))
        .collect();
    Ok(html! {
        h1 { (p.username) }
        @if let Some(e) = notice { p.error role="alert" { (e.message) } }
        dl.facts {
            dt { "Email" } dd { (p.email.as_deref().unwrap_or("—")) }
            dt { "Status" } dd { @if p.is_active { "active" } @else { "deactivated" } }
            dt { "Created" } dd { (time_display(p.created_at)) }
            dt { "Last sign-in" } dd { (p.last_login_at.map(time_display).unwrap_or_else(|| "never".into())) }
        }
        p { a href={ "/audit?user=" (web::encode(&p.username)) } { "Recent activity of " (p.username) } }
        h2 { "Role" }
        form method="post" action={ "/people/" (p.username) "/role" } {
            (csrf.field())
            label for="role" { "Role" }
            (role_select("role", p.role))
            button type="submit" { "Change role" }
        }
        h2 { "Companies" }
        @if p.is_admin() {
            p { "Admins may use every company." }
        } @else if realms.is_empty() {
            p { "No companies granted yet." }
        } @else {
            ul.grants {
                @for realm in &realms {
                    li {
                        @if let Some(name) = name_of(realm) { (name) " " }
                        code { (realm) }
                        form.inline method="post" action={ "/people/" (p.username) "/grants/" (realm) "/remove" } {
                            (csrf.field())
                            button.link type="submit" aria-label={ "Remove company " (realm) } { "remove" }
                        }
                    }
                }
            }
        }
        @if p.is_admin() {
        } @else if !grantable.is_empty() {
            form method="post" action={ "/people/" (p.username) "/grants" } {
                (csrf.field())
                label for="realm_id" { "Grant a company" }
                select #realm_id name="realm_id" required {
                    @for c in &grantable {
                        option value=(c.realm_id) { (c.name) " (" (c.realm_id) ")" }
                    }
                }
                button type="submit" { "Grant" }
            }
        } @else if connected.is_empty() {
            p.hint { "No company is connected yet: connect one on the " a href="/companies" { "Companies" } " page, then grant it here." }
        } @else {
            p.hint { "Every connected company is granted." }
        }
        h2 { "Access" }
        p.actions {
            @if p.is_active {
                a.button.danger href={ "/people/" (p.username) "/confirm/deactivate" } { "Deactivate…" }
            } @else {
                a.button href={ "/people/" (p.username) "/confirm/activate" } { "Activate…" }
            }
            " "
            a.button href={ "/people/" (p.username) "/confirm/reset-password" } { "Send a password link…" }
            " "
            a.button.danger href={ "/people/" (p.username) "/confirm/delete" } { "Delete…" }
        }
    })
}

/// The person named `username`, or `404` with a sentence naming them.
async fn find_person(state: &AppState, username: &str) -> Result<Person, AppError> {
    people::find(&state.db, username)
        .await?
        .ok_or_else(|| AppError::not_found(format!("There is no person named `{username}`.")))
}

async fn show_person(
    state: &AppState,
    caller: &Caller,
    csrf: &CsrfToken,
    username: &str,
    notice: Option<AppError>,
) -> PageResult {
    let person = find_person(state, username).await?;
    let status = notice.as_ref().map_or(StatusCode::OK, |e| e.status);
    let body = person_body(state, &caller.person, csrf, &person, notice.as_ref()).await?;
    Ok((
        status,
        render(state, Some(&caller.person), csrf, &person.username, body).await,
    )
        .into_response())
}

async fn person_page(
    State(state): State<AppState>,
    AdminPage { caller, .. }: AdminPage,
    csrf: CsrfToken,
    Path(username): Path<String>,
) -> PageResult {
    show_person(&state, &caller, &csrf, &username, None).await
}

#[derive(Deserialize)]
struct RoleForm {
    role: String,
}

/// After a change: back to the person's page, or the page again with the refusal on it.
async fn after_change(
    state: &AppState,
    caller: &Caller,
    csrf: &CsrfToken,
    username: &str,
    result: Result<(), AppError>,
) -> PageResult {
    match result {
        Ok(()) => Ok(see_other(&format!("/people/{}", web::encode(username)))),
        Err(e) if e.status.is_client_error() => {
            show_person(state, caller, csrf, username, Some(e)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn set_role(
    State(state): State<AppState>,
    AdminPage { caller, admin }: AdminPage,
    csrf: CsrfToken,
    Path(username): Path<String>,
    Form(form): Form<RoleForm>,
) -> PageResult {
    let result = async {
        let role = parse_role(&form.role)?;
        admin::update(
            &state.db,
            &admin,
            &username,
            admin::Changes {
                role: Some(role),
                ..Default::default()
            },
        )
        .await
        .map(drop)
    }
    .await;
    after_change(&state, &caller, &csrf, &username, result).await
}

#[derive(Deserialize)]
struct GrantForm {
    realm_id: String,
}

async fn add_grant(
    State(state): State<AppState>,
    AdminPage { caller, admin }: AdminPage,
    csrf: CsrfToken,
    Path(username): Path<String>,
    Form(form): Form<GrantForm>,
) -> PageResult {
    let result = grants::grant(&state.db, &admin, &form.realm_id, &username).await;
    after_change(&state, &caller, &csrf, &username, result).await
}

async fn remove_grant(
    State(state): State<AppState>,
    AdminPage { caller, admin }: AdminPage,
    csrf: CsrfToken,
    Path((username, realm)): Path<(String, String)>,
) -> PageResult {
    let result = grants::revoke(&state.db, &admin, &realm, &username).await;
    after_change(&state, &caller, &csrf, &username, result).await
}

/// The destructive actions that ask first, with their wording.
fn action_text(action: &str) -> Option<(&'static str, &'static str, bool)> {
    match action {
        "deactivate" => Some((
            "Deactivate",
            "They are signed out everywhere at once, and their tokens and assistants stop working. You can activate them again later, but they will need to sign in and reconnect their assistants.",
            true,
        )),
        "activate" => Some((
            "Activate",
            "They can sign in again. Their old sessions and tokens stay ended.",
            false,
        )),
        "delete" => Some((
            "Delete",
            "Their account, sessions, tokens and company grants are removed for good. The audit log keeps their name.",
            true,
        )),
        "reset-password" => Some((
            "Send a password link to",
            "Their password stops working, they are signed out everywhere (sessions, personal access tokens and assistants end for good), and they get a one-time link to choose a new password.",
            false,
        )),
        _ => None,
    }
}

/// An address under `/people/{username}/confirm/` that names no action.
fn no_such_action() -> AppError {
    AppError::not_found("There is nothing at this address.")
}

async fn confirm_page(
    State(state): State<AppState>,
    AdminPage { caller, .. }: AdminPage,
    csrf: CsrfToken,
    Path((username, action)): Path<(String, String)>,
) -> PageResult<Markup> {
    let (verb, consequence, danger) = action_text(&action).ok_or_else(no_such_action)?;
    let person = find_person(&state, &username).await?;
    let body = html! {
        h1 { (verb) " " (person.username) "?" }
        p { (consequence) }
        form method="post" action={ "/people/" (person.username) "/confirm/" (action) } {
            (csrf.field())
            button class=(if danger { "danger" } else { "" }) type="submit" { "Yes, " (verb.to_lowercase()) " " (person.username) }
            " "
            a href={ "/people/" (person.username) } { "Cancel" }
        }
    };
    Ok(render(&state, Some(&caller.person), &csrf, "Confirm", body).await)
}

async fn confirmed(
    State(state): State<AppState>,
    AdminPage { caller, admin }: AdminPage,
    csrf: CsrfToken,
    Path((username, action)): Path<(String, String)>,
) -> PageResult {
    let active = |on: bool| admin::Changes {
        is_active: Some(on),
        ..Default::default()
    };
    let result = match action.as_str() {
        "deactivate" => admin::update(&state.db, &admin, &username, active(false))
            .await
            .map(drop),
        "activate" => admin::update(&state.db, &admin, &username, active(true))
            .await
            .map(drop),
        "delete" => match admin::delete(&state.db, &admin, &username).await {
            Ok(()) => return Ok(see_other("/people")),
            Err(e) => Err(e),
        },
        "reset-password" => {
            match admin::reset_password(&state.db, &admin, &username, None, &state.public_url).await
            {
                Ok(link) => {
                    let body = html! {
                        h1 { "Password link for " (username) }
                        p { "Send this one-time link. It works once and expires in 24 hours:" }
                        p { code.token { (link.as_ref().map(|l| l.expose().as_str()).unwrap_or("")) } }
                        p { a href={ "/people/" (username) } { "Back" } }
                    };
                    return Ok(
                        render(&state, Some(&caller.person), &csrf, "Password link", body)
                            .await
                            .into_response(),
                    );
                }
                Err(e) => Err(e),
            }
        }
        _ => return Err(no_such_action().into()),
    };
    after_change(&state, &caller, &csrf, &username, result).await
}
