//! People and access over HTTP: setup, sign-in, sessions, tokens, the users API and its
//! invariants (also under concurrency, across two server processes), the CLI, pages.

mod api;
pub mod browser;
mod cli;
mod concurrency;
pub mod oidc;
mod pages;
mod signin;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestServer, client};

/// The password every test person gets unless a test says otherwise.
pub const PASSWORD: &str = "correct horse battery staple";

/// The value of the first `csrf_token` hidden field in a page.
pub fn csrf_field(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in:\n{html}"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A browser-like client signed in to one server (cookie jar), with its CSRF token.
#[derive(Debug, Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub csrf: String,
}

impl Browser {
    /// A fresh, anonymous browser.
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            client: client(),
            csrf: String::new(),
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Loads a page and returns its status and HTML.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let r = self.client.get(self.at(path)).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// Posts a form with the CSRF field of the page at `form_page`.
    pub async fn submit(
        &self,
        form_page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let (_, html) = self.page(form_page).await;
        let token = csrf_field(&html);
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.client
            .post(self.at(action))
            .form(&all)
            .send()
            .await
            .unwrap()
    }

    /// Signs in through the sign-in form; `Err` with the response when refused.
    pub async fn sign_in(
        base: &str,
        username: &str,
        password: &str,
    ) -> Result<Browser, reqwest::Response> {
        let mut b = Browser::new(base);
        let r = b
            .submit(
                "/login",
                "/login",
                &[("username", username), ("password", password)],
            )
            .await;
        if r.status() != StatusCode::SEE_OTHER {
            return Err(r);
        }
        b.refresh_csrf().await;
        Ok(b)
    }

    /// Reads the session's CSRF token for JSON calls from `/api/v1/me`.
    pub async fn refresh_csrf(&mut self) {
        let me: Value = self
            .client
            .get(self.at("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.csrf = me["csrf_token"].as_str().unwrap_or_default().to_owned();
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.at(path)).send().await.unwrap()
    }

    /// A JSON call with the CSRF header.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .request(method, self.at(path))
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }
}

/// A bearer-token client.
#[derive(Debug, Clone)]
pub struct Bearer {
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
}

impl Bearer {
    pub fn new(base: &str, token: &str) -> Bearer {
        Bearer {
            base: base.to_owned(),
            token: token.to_owned(),
            client: client(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }
}

/// Completes first-run setup through the printed link: the admin `root`, signed in.
pub async fn first_admin(server: &TestServer) -> Browser {
    let line = server.wait_for_line("one-time link").await;
    let link = line.rsplit(' ').next().unwrap().to_owned();
    let path = link
        .strip_prefix(&server.url)
        .expect("link on this server")
        .to_owned();
    complete_setup(Browser::new(&server.url), &path).await
}

/// Completes first-run setup at the link's `path` in browser `b`: the admin `root`, signed in.
pub async fn complete_setup(mut b: Browser, path: &str) -> Browser {
    let r = b
        .submit(
            path,
            path,
            &[
                ("username", "root"),
                ("email", "root@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    b.refresh_csrf().await;
    b
}

/// Creates a person with a password through the API; returns their JSON.
pub async fn add_person(admin: &Browser, username: &str, role: &str) -> Value {
    let r = admin
        .call(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({"username": username, "role": role, "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    r.json().await.unwrap()
}

/// Creates a personal access token for a signed-in browser.
pub async fn token_for(b: &Browser, name: &str) -> String {
    let r = b
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let v: Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// The `error.code` of a JSON error answer, with its status.
pub async fn error_of(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let text = r.text().await.unwrap();
    let v: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (
        status,
        v["error"]["code"].as_str().unwrap_or_default().to_owned(),
    )
}
