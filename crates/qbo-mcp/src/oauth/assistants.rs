//! The assistants page and API: the MCP clients a person has authorized (OAuth grants), with
//! revoke. A person sees and revokes their own; an admin sees and revokes everyone's
//! (`?all=true`, and the page's second table). Revoking forgets the consent too, so the client
//! must ask again. Personal access tokens are the people feature's (listed on the same page,
//! managed on the account page).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::grants::{self, GrantSummary};
use crate::audit::{self, NewEntry, Outcome};
use crate::auth::{Caller, PageCaller};
use crate::error::AppError;
use crate::on_tx;
use crate::people::{self, Person, tokens};
use crate::state::AppState;
use crate::time::time_text;
use crate::web::{self, CsrfToken, Frame, PageResult};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/assistants", get(page))
        .route("/assistants/{id}/revoke", post(revoke_form))
}

/// The JSON routes with their OpenAPI description (`web::openapi`).
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_api))
        .routes(routes!(revoke_api))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Everyone's assistants (admins only).
    #[serde(default)]
    all: bool,
}

/// An authorized assistant (an OAuth grant), as `assistant_json` writes it.
#[derive(ToSchema)]
#[schema(as = Assistant)]
#[allow(dead_code)] // Documentation of `assistant_json`.
struct AssistantDoc {
    /// The grant's id, for `DELETE /api/v1/assistants/{id}`.
    id: i64,
    client_id: String,
    client_name: String,
    /// Whose assistant it is.
    username: Option<String>,
    scope: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_used_at: String,
}

#[derive(ToSchema)]
#[allow(dead_code)] // Documentation only.
struct AssistantList {
    assistants: Vec<AssistantDoc>,
}

/// Usernames by person id, for the admin's view.
async fn usernames(state: &AppState) -> Result<HashMap<i64, String>, AppError> {
    Ok(people::list(&state.db)
        .await?
        .into_iter()
        .map(|p| (p.id, p.username))
        .collect())
}

fn assistant_json(g: &GrantSummary, names: &HashMap<i64, String>) -> Value {
    json!({
        "id": g.id,
        "client_id": g.client_id,
        "client_name": g.client_name,
        "username": names.get(&g.person_id),
        "scope": g.scope,
        "created_at": time_text(g.created_at),
        "last_used_at": time_text(g.last_used_at),
    })
}

/// The caller's authorized assistants (`?all=true`: everyone's, admins only).
#[utoipa::path(get, path = "/api/v1/assistants", tag = "assistants", params(ListQuery),
    responses((status = 200, description = "The assistants.", body = AssistantList)))]
async fn list_api(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let Query(query) = query
        .map_err(|_| AppError::bad_request("invalid_query", "`all` must be true or false."))?;
    let scope = if query.all {
        caller.admin()?;
        None
    } else {
        Some(caller.person.id)
    };
    let names = usernames(&state).await?;
    let list = grants::list_grants(&state.db, scope).await?;
    Ok(Json(json!({
        "assistants": list.iter().map(|g| assistant_json(g, &names)).collect::<Vec<_>>()
    })))
}

/// Revokes grant `id` for `person` (anyone's when they are an admin), forgets the consent and
/// records it. `404` when there is no such grant the person may revoke.
async fn revoke_for(state: &AppState, person: &Person, id: i64) -> Result<(), AppError> {
    let scope = (!person.is_admin()).then_some(person.id);
    let target = grants::list_grants(&state.db, scope)
        .await?
        .into_iter()
        .find(|g| g.id == id);
    let Some(target) = target else {
        return Err(AppError::not_found("There is no such assistant of yours."));
    };
    if !grants::revoke_grant_of(&state.db, id, scope).await? {
        return Err(AppError::not_found("There is no such assistant of yours."));
    }
    let mut tx = state.db.begin_write().await?;
    on_tx!(&mut tx, conn => {
        sqlx::query("DELETE FROM oauth_consents WHERE person_id = $1 AND client_id = $2")
            .bind(target.person_id)
            .bind(&target.client_id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    audit::record(
        &mut tx,
        &NewEntry::new(Some(&person.username), "assistant.revoke", Outcome::Ok)
            .target(target.client_name.clone())
            .details(json!({"grant_id": id, "client_id": target.client_id, "person_id": target.person_id})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Revokes an assistant (a person: their own; an admin: anyone's); the client must ask again.
#[utoipa::path(delete, path = "/api/v1/assistants/{id}", tag = "assistants",
    params(("id" = i64, Path, description = "The assistant's (grant's) id.")),
    responses((status = 204, description = "Revoked.")))]
async fn revoke_api(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    revoke_for(&state, &caller.person, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /assistants/{id}/revoke` (the page's button).
async fn revoke_form(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    Path(id): Path<i64>,
) -> PageResult {
    revoke_for(&state, &caller.person, id).await?;
    Ok(Redirect::to("/assistants").into_response())
}

/// `GET /assistants`.
async fn page(
    State(state): State<AppState>,
    PageCaller(caller): PageCaller,
    csrf: CsrfToken,
) -> PageResult {
    Ok(render(&state, &caller.person, &csrf).await?)
}

async fn render(state: &AppState, person: &Person, csrf: &CsrfToken) -> Result<Response, AppError> {
    let names = usernames(state).await?;
    let mine = grants::list_grants(&state.db, Some(person.id)).await?;
    let everyone = if person.is_admin() {
        grants::list_grants(&state.db, None).await?
    } else {
        Vec::new()
    };
    let my_tokens = tokens::list(&state.db, person.id).await?;
    let table = |list: &[GrantSummary], with_person: bool| {
        html! {
            @if list.is_empty() {
                p { "None." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Assistant" }
                        @if with_person { th scope="col" { "Person" } }
                        th scope="col" { "Connected" }
                        th scope="col" { "Last used" }
                        th scope="col" { span.visually-hidden { "Action" } }
                    } }
                    tbody {
                        @for g in list {
                            tr {
                                td { (g.client_name) br; small { (g.client_id) } }
                                @if with_person { td { (names.get(&g.person_id).map(String::as_str).unwrap_or("?")) } }
                                td { (crate::time::time_display(g.created_at)) }
                                td { (crate::time::time_display(g.last_used_at)) }
                                td {
                                    form method="post" action={ "/assistants/" (g.id) "/revoke" } {
                                        (csrf.field())
                                        button.danger type="submit" aria-label={ "Disconnect " (g.client_name) } { "Disconnect" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let body = html! {
        h1 { "Assistants" }
        p { "The MCP clients you connected to qbo-mcp. Disconnecting one ends its access at once; it has to ask you again to reconnect." }
        (table(&mine, false))
        h2 { "Personal access tokens" }
        @if my_tokens.is_empty() {
            p { "None. " a href="/account" { "Create one on your account page." } }
        } @else {
            ul {
                @for t in &my_tokens {
                    li { (t.name) " — created " (crate::time::time_display(t.created_at)) }
                }
            }
            p { a href="/account" { "Manage personal access tokens" } }
        }
        @if person.is_admin() {
            h2 { "Everyone's assistants" }
            (table(&everyone, true))
        }
    };
    let frame = Frame {
        title: "Assistants",
        viewer: Some(person.into()),
        csrf: Some(csrf),
        warnings: crate::companies::admin_warnings(state, person).await,
        pending_proposals: crate::proposals::store::pending_for(&state.db, person.is_admin()).await,
    };
    Ok(web::page(StatusCode::OK, web::layout(state, &frame, body)))
}
