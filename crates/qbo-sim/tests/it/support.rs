//! The test harness: a simulator per test, an HTTP client that does not follow redirects,
//! and the OAuth dance in one call.

use qbo_sim::{SimConfig, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const CRAIG: &str = "craig@craigsdesign.example";
pub const DANA: &str = "dana@craigsdesign.example";
pub const SAM: &str = "sam@craigsdesign.example";
pub const HANA: &str = "hana@harborbicycle.example";
pub const REALM: &str = "9341453050298464";
pub const OTHER_REALM: &str = "9341453050298465";
pub const REDIRECT: &str = "http://localhost:8080/callback";
pub const SCOPES: &str = "com.intuit.quickbooks.accounting openid email profile";

/// Tokens of one connection.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub realm: String,
    pub body: Value,
}

pub struct Sim {
    pub sim: Simulator,
    pub http: reqwest::Client,
    pub base: String,
}

impl Sim {
    pub async fn start() -> Self {
        Self::with(SimConfig::default()).await
    }

    pub async fn with(config: SimConfig) -> Self {
        let sim = Simulator::start(config, "127.0.0.1:0".parse().expect("address"))
            .await
            .expect("simulator starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let base = sim.base_url();
        Self { sim, http, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn config(&self, patch: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/_sim/config"))
            .json(&patch)
            .send()
            .await
            .expect("config");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn stats(&self) -> Value {
        self.http
            .get(self.url("/_sim/stats"))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json")
    }

    pub fn authorize_url(&self, client_id: &str, state: &str) -> String {
        let mut url = reqwest::Url::parse(&self.url("/connect/oauth2")).expect("url");
        url.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("response_type", "code")
            .append_pair("scope", SCOPES)
            .append_pair("state", state);
        url.to_string()
    }

    /// Approves as `email` through the consent form; answers the redirect's query pairs.
    pub async fn consent(
        &self,
        client_id: &str,
        email: &str,
        realm: &str,
    ) -> (StatusCode, Vec<(String, String)>) {
        let response = self
            .http
            .post(self.url("/connect/oauth2"))
            .form(&[
                ("client_id", client_id),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("scope", SCOPES),
                ("state", "st8"),
                ("account", &format!("{realm}|{email}")),
                ("decision", "allow"),
            ])
            .send()
            .await
            .expect("consent");
        let status = response.status();
        (status, redirect_pairs(&response))
    }

    pub async fn exchange(&self, client_id: &str, code: &str) -> reqwest::Response {
        self.http
            .post(self.url("/oauth2/v1/tokens/bearer"))
            .basic_auth(client_id, Some("secret"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
            ])
            .send()
            .await
            .expect("token")
    }

    pub async fn refresh(&self, client_id: &str, refresh: &str) -> reqwest::Response {
        self.http
            .post(self.url("/oauth2/v1/tokens/bearer"))
            .basic_auth(client_id, Some("secret"))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh)])
            .send()
            .await
            .expect("refresh")
    }

    /// The whole flow: consent as `email` for `realm`, exchange the code.
    pub async fn connect_to(&self, client_id: &str, email: &str, realm: &str) -> Tokens {
        let (status, pairs) = self.consent(client_id, email, realm).await;
        assert_eq!(status, StatusCode::FOUND, "consent redirects");
        let code = pair(&pairs, "code").expect("code");
        let response = self.exchange(client_id, &code).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        Tokens {
            access: body["access_token"].as_str().expect("access").to_owned(),
            refresh: body["refresh_token"].as_str().expect("refresh").to_owned(),
            realm: pair(&pairs, "realmId").expect("realmId"),
            body,
        }
    }

    pub async fn connect(&self) -> Tokens {
        self.connect_to("app", CRAIG, REALM).await
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("get");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("post");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn query(&self, token: &str, query: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(&format!("/v3/company/{REALM}/query")))
            .query(&[("query", query), ("minorversion", "75")])
            .bearer_auth(token)
            .send()
            .await
            .expect("query");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

pub fn redirect_pairs(response: &reqwest::Response) -> Vec<(String, String)> {
    let Some(location) = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
    else {
        return Vec::new();
    };
    let url = reqwest::Url::parse(location).expect("location is a URL");
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn pair(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// The `code` of the first error in an Accounting API fault body.
pub fn fault_code(body: &Value) -> &str {
    body["Fault"]["Error"][0]["code"].as_str().unwrap_or("")
}

pub fn customer(name: &str) -> Value {
    json!({"DisplayName": name, "PrimaryPhone": {"FreeFormNumber": "(555) 010-0000"}, "Notes": "keep me"})
}
