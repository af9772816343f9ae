//! The Accounting API client every tool uses: paced per company (see `pacing`), authenticated
//! with the shared connection's token (see `tokens`), `minorversion` pinned, a `requestid` on
//! every write so a retry never duplicates it, retries with backoff and jitter on 429, 502,
//! 503, 504 and transport failures (honouring `Retry-After`), one forced refresh on a 401
//! (whichever of Intuit's two 401 shapes it comes in), and QuickBooks faults turned into typed
//! errors, whether Intuit wrote them in JSON (either spelling) or in XML.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::pacing::{Class, PacingError};
use super::{QboError, QuickBooks};

/// The minor version every request pins (Intuit ignores values under 75).
pub const MINOR_VERSION: &str = "75";
/// Attempts per call, the first included.
const MAX_ATTEMPTS: u32 = 4;
/// Longest pause we honour from a `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);

/// One call to the Accounting API, relative to `/v3/company/{realm}/`.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// E.g. `query`, `customer/42`, `invoice`, `reports/ProfitAndLoss`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    /// The `requestid` of a write, when the caller fixed it (a proposal keeps one for life);
    /// otherwise each call of a write makes its own.
    pub request_id: Option<String>,
    /// A body that is not JSON (an upload's multipart form), sent instead of `body`.
    pub raw: Option<RawBody>,
}

/// A request body sent as it is, with its content type.
#[derive(Debug, Clone)]
pub struct RawBody {
    pub content_type: String,
    pub bytes: axum::body::Bytes,
}

impl ApiRequest {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            request_id: None,
            raw: None,
        }
    }

    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self {
            method: Method::POST,
            path: path.into(),
            query: Vec::new(),
            body: Some(body),
            request_id: None,
            raw: None,
        }
    }

    /// A POST without a body (e.g. sending an invoice).
    pub fn post_empty(path: impl Into<String>) -> Self {
        Self {
            method: Method::POST,
            path: path.into(),
            query: Vec::new(),
            body: None,
            request_id: None,
            raw: None,
        }
    }

    /// A POST of a body that is not JSON (`upload`'s multipart form).
    pub fn post_raw(path: impl Into<String>, raw: RawBody) -> Self {
        Self {
            raw: Some(raw),
            ..Self::post_empty(path)
        }
    }

    /// Sends a write with this `requestid` (QuickBooks applies a write once per requestid).
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    pub fn param(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_owned(), value.into()));
        self
    }

    fn is_write(&self) -> bool {
        self.method != Method::GET
    }

    fn class(&self) -> Class {
        if self.path.starts_with("reports/") {
            Class::Report
        } else {
            Class::Api
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub body: Value,
    /// Intuit's request id (`intuit_tid`), for the audit log and support.
    pub intuit_tid: Option<String>,
    /// Our `requestid` for writes.
    pub request_id: Option<String>,
    pub attempts: u32,
    /// The answer as sent (a `download` link is text, not JSON).
    pub raw: axum::body::Bytes,
}

/// A QuickBooks fault, as Intuit reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    pub kind: String,
    pub code: String,
    pub message: String,
    pub detail: String,
    pub element: String,
}

/// Reads `{"Fault":{"Error":[…],"type"}}` or the gateway's lower-case `{"fault":{"error":[…]}}`.
pub fn parse_fault(status: u16, body: &Value) -> Option<Fault> {
    let (fault, errors, msg, det) = if let Some(f) = body.get("Fault") {
        (f, f.get("Error"), "Message", "Detail")
    } else if let Some(f) = body.get("fault") {
        (f, f.get("error"), "message", "detail")
    } else {
        return None;
    };
    let first = errors.and_then(|e| e.get(0));
    let text = |key: &str| {
        first
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Some(Fault {
        status,
        kind: fault
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        code: text("code"),
        message: text(msg),
        detail: text(det),
        element: text("element"),
    })
}

/// Reads Intuit's XML fault, `<IntuitResponse><Fault type="…"><Error code="…" element="…">
/// <Message>…</Message><Detail>…</Detail>`, which it sends when something fails before the
/// answer's format is chosen, whatever the request accepted.
pub fn parse_xml_fault(status: u16, text: &str) -> Option<Fault> {
    let fault_tag = tag(text, "Fault")?;
    let error_tag = tag(text, "Error")?;
    Some(Fault {
        status,
        kind: attribute(fault_tag, "type").unwrap_or_default(),
        code: attribute(error_tag, "code").unwrap_or_default(),
        message: element_text(text, "Message").unwrap_or_default(),
        detail: element_text(text, "Detail").unwrap_or_default(),
        element: attribute(error_tag, "element").unwrap_or_default(),
    })
}

/// The opening tag `<name …>` (its text up to `>`).
fn tag<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}");
    let mut from = 0;
    while let Some(found) = text[from..].find(&open) {
        let start = from + found;
        let after = &text[start + open.len()..];
        // `<Fault` must not match `<FaultDetail`: the name ends at a space, `/` or `>`.
        if after.starts_with([' ', '>', '/', '\t', '\n', '\r']) {
            let end = after.find('>')?;
            return Some(&after[..end]);
        }
        from = start + open.len();
    }
    None
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + end]))
}

fn element_text(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{name}>"))?;
    Some(unescape(&text[start..start + end]))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Whether a fault is Intuit's 403 "AuthorizationFailed; errorCode=003100" (the app is not
/// authorized for this company, or lacks the accounting scope), in whichever spelling.
fn is_authorization_failed(status: StatusCode, fault: &Fault) -> bool {
    status == StatusCode::FORBIDDEN
        && (fault.code == "3100" || fault.code == "003100" || fault.message.contains("003100"))
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// Exponential backoff with full jitter: 200 ms, 400 ms, 800 ms … capped at 5 s.
fn backoff(attempt: u32) -> Duration {
    let cap = 200u64.saturating_mul(1 << attempt.min(5)).min(5_000);
    Duration::from_millis(rand::random_range(cap / 2..=cap))
}

impl QuickBooks {
    /// Sends one request for the company, paced, authenticated and retried as needed.
    pub async fn call(&self, realm_id: &str, request: ApiRequest) -> Result<ApiResponse, QboError> {
        let request_id = request.is_write().then(|| {
            request
                .request_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
        });
        let url = format!(
            "{}/v3/company/{}/{}",
            self.oauth.endpoints.api_base.as_str().trim_end_matches('/'),
            realm_id,
            request.path
        );
        let mut forced_refresh = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let lease = self
                .pacer
                .acquire(realm_id, request.class())
                .await
                .map_err(|e| match e {
                    PacingError::Db(e) => QboError::from(e),
                    other => QboError::Busy {
                        detail: other.to_string(),
                    },
                })?;
            // The token is read once it is our turn, not before the wait: a refresh made
            // while we queued (after another caller's 401) is used at once, instead of
            // spending a request of the company's budget on a 401 of our own.
            let access = self.access(realm_id).await?;
            let mut builder = self
                .http
                .request(request.method.clone(), &url)
                .bearer_auth(access.token.expose())
                .header(reqwest::header::ACCEPT, "application/json")
                .query(&request.query)
                .query(&[("minorversion", MINOR_VERSION)]);
            if let Some(id) = &request_id {
                builder = builder.query(&[("requestid", id)]);
            }
            if let Some(raw) = &request.raw {
                builder = builder
                    .header(reqwest::header::CONTENT_TYPE, &raw.content_type)
                    .body(raw.bytes.clone());
            } else if let Some(body) = &request.body {
                builder = builder.json(body);
            }
            let started = std::time::Instant::now();
            let sent = builder.send().await;
            let answer = match sent {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(bytes) => Ok((status, headers, bytes)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            lease.release().await;
            metrics::histogram!("quickbooks_request_duration_seconds")
                .record(started.elapsed().as_secs_f64());

            let (status, headers, bytes) = match answer {
                Ok(a) => a,
                Err(e) => {
                    let detail = super::intuit::without_url(e);
                    metrics::counter!("quickbooks_requests_total", "outcome" => "transport_error")
                        .increment(1);
                    if attempt < MAX_ATTEMPTS {
                        tokio::time::sleep(backoff(attempt)).await;
                        continue;
                    }
                    return Err(QboError::Unavailable { detail });
                }
            };
            let intuit_tid = headers
                .get("intuit_tid")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            // Parsed once; an error answer that is not JSON may be Intuit's XML fault.
            let fault = parse_fault(status.as_u16(), &body).or_else(|| {
                (body.is_null() && !status.is_success())
                    .then(|| parse_xml_fault(status.as_u16(), &String::from_utf8_lossy(&bytes)))
                    .flatten()
            });

            if status == StatusCode::UNAUTHORIZED && !forced_refresh {
                // 3200 (gateway) or AuthenticationFault 100, JSON or XML: the token expired
                // early or was revoked; refresh once and retry.
                forced_refresh = true;
                metrics::counter!("quickbooks_requests_total", "outcome" => "unauthorized")
                    .increment(1);
                self.refresh(realm_id, access.generation).await?;
                continue;
            }
            if matches!(status.as_u16(), 429 | 502 | 503 | 504) {
                metrics::counter!("quickbooks_requests_total", "outcome" => status.as_str().to_owned())
                    .increment(1);
                if attempt < MAX_ATTEMPTS {
                    let pause = retry_after(&headers).unwrap_or_else(|| backoff(attempt));
                    tokio::time::sleep(pause).await;
                    continue;
                }
                return Err(QboError::Unavailable {
                    detail: format!(
                        "QuickBooks answered HTTP {} {attempt} times",
                        status.as_u16()
                    ),
                });
            }
            if status == StatusCode::UNAUTHORIZED {
                // Still refused with a freshly refreshed token, in either shape: only an
                // admin reconnecting can help.
                metrics::counter!("quickbooks_requests_total", "outcome" => "unauthorized")
                    .increment(1);
                return Err(QboError::NeedsReconnect {
                    realm_id: realm_id.to_owned(),
                });
            }
            if let Some(fault) = fault {
                metrics::counter!("quickbooks_requests_total", "outcome" => "fault").increment(1);
                let reconnect = if fault.code == "120" {
                    // The admin who connected the app is no longer an admin at QuickBooks.
                    Some((
                        "error_120",
                        "The QuickBooks user who connected this company is no longer one of its admins (error 120). An admin must reconnect it.",
                    ))
                } else if is_authorization_failed(status, &fault) {
                    Some((
                        "error_3100",
                        "QuickBooks refused this app access to the company (AuthorizationFailed, error 003100). An admin must reconnect it.",
                    ))
                } else {
                    None
                };
                if let Some((cause, detail)) = reconnect {
                    self.needs_reconnect(realm_id, access.generation, cause, detail)
                        .await?;
                    return Err(QboError::NeedsReconnect {
                        realm_id: realm_id.to_owned(),
                    });
                }
                return Err(QboError::Fault {
                    fault: Box::new(fault),
                    intuit_tid,
                });
            }
            if !status.is_success() {
                return Err(QboError::Fault {
                    fault: Box::new(Fault {
                        status: status.as_u16(),
                        kind: "HTTP".into(),
                        code: status.as_u16().to_string(),
                        message: format!("QuickBooks answered HTTP {}", status.as_u16()),
                        detail: String::new(),
                        element: String::new(),
                    }),
                    intuit_tid,
                });
            }
            metrics::counter!("quickbooks_requests_total", "outcome" => "ok").increment(1);
            return Ok(ApiResponse {
                body,
                intuit_tid,
                request_id,
                attempts: attempt,
                raw: bytes,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_fault_spellings_parse() {
        let f = parse_fault(
            400,
            &json!({"Fault":{"Error":[{"Message":"Stale Object Error","Detail":"…","code":"5010","element":""}],"type":"ValidationFault"},"time":"x"}),
        )
        .unwrap();
        assert_eq!(f.code, "5010");
        assert_eq!(f.kind, "ValidationFault");
        let f = parse_fault(
            429,
            &json!({"fault":{"error":[{"message":"message=ThrottleExceeded; errorCode=003001; statusCode=429","detail":"d","code":"3001"}],"type":"SERVICE"}}),
        )
        .unwrap();
        assert_eq!(f.code, "3001");
        assert!(parse_fault(200, &json!({"QueryResponse":{}})).is_none());
    }

    #[test]
    fn xml_faults_parse() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="2018-08-20T02:23:36.095-07:00"><Fault type="AuthenticationFault"><Error code="100"><Message>General Authentication Error</Message><Detail>AuthenticationErrorGeneral: SRV-110-Authentication Failure , statusCode: 401</Detail></Error></Fault></IntuitResponse>"#;
        let f = parse_xml_fault(401, xml).unwrap();
        assert_eq!(
            (f.kind.as_str(), f.code.as_str()),
            ("AuthenticationFault", "100")
        );
        assert_eq!(f.message, "General Authentication Error");
        let xml = r#"<IntuitResponse><Fault type="ValidationFault"><Error code="2500" element="CustomerRef"><Message>Invalid Reference Id</Message><Detail>a &amp; b &lt;c&gt;</Detail></Error></Fault></IntuitResponse>"#;
        let f = parse_xml_fault(400, xml).unwrap();
        assert_eq!(
            (f.code.as_str(), f.element.as_str()),
            ("2500", "CustomerRef")
        );
        assert_eq!(f.detail, "a & b <c>");
        assert!(parse_xml_fault(502, "<html>Bad Gateway</html>").is_none());
        let gateway = parse_fault(
            403,
            &json!({"fault":{"error":[{"message":"message=AuthorizationFailed; errorCode=003100; statusCode=403","detail":null,"code":"3100","element":null}],"type":"SERVICE"}}),
        )
        .unwrap();
        assert!(is_authorization_failed(StatusCode::FORBIDDEN, &gateway));
        assert!(!is_authorization_failed(StatusCode::BAD_REQUEST, &gateway));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..10 {
            let d = backoff(attempt);
            assert!(d <= Duration::from_secs(5));
            assert!(d >= Duration::from_millis(100));
        }
    }
}
