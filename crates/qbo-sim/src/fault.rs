//! Intuit's error answers, in their two dialects: the Accounting API's `Fault` (capitalised,
//! `ValidationFault`, `AuthenticationFault` and friends) and the gateway's lower-case `fault`
//! used for authentication, authorization and throttling; and, for injected upstream
//! failures, the XML `IntuitResponse` Intuit sends when something goes wrong before JSON is
//! chosen. Texts follow what Intuit sends, since clients match on them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which dialect and `type` a fault is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `{"Fault":{…,"type":"ValidationFault"}}`
    Validation,
    /// `{"Fault":{…,"type":"SystemFault"}}`
    System,
    /// `{"Fault":{…,"type":"AuthorizationFault"}}` (code 120)
    Authorization,
    /// `{"Fault":{…,"type":"AuthenticationFault"}}` (401, code 100)
    AuthenticationFault,
    /// gateway dialect, `"type":"AUTHENTICATION"` (401, code 3200)
    Authentication,
    /// gateway dialect, `"type":"SERVICE"` (429 code 3001, 403 code 3100)
    Service,
}

/// An error a test asks the next API calls to answer (`POST /_sim/inject-fault`), for the
/// answers Intuit gives that the simulator's own rules never produce for a well-behaved
/// client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InjectedFault {
    /// 401, gateway `fault` 3200 (`AUTHENTICATION`).
    AuthenticationFailed,
    /// 401, `Fault` `AuthenticationFault` code 100, JSON.
    AuthenticationFault,
    /// 401, `AuthenticationFault` code 100 in XML, whatever the request accepts.
    AuthenticationFaultXml,
    /// 403, gateway `fault` `AuthorizationFailed; errorCode=003100` (`SERVICE`).
    AuthorizationFailed,
    /// 400, a `ValidationFault` in XML.
    ValidationXml,
    /// 500, a `SystemFault` in XML.
    SystemXml,
}

impl InjectedFault {
    /// The answer, at `time`.
    pub fn response(self, time: &str) -> Response {
        match self {
            InjectedFault::AuthenticationFailed => {
                Fault::authentication("Token revoked or invalid").into_response_at(time)
            }
            InjectedFault::AuthenticationFault => {
                Fault::authentication_general().into_response_at(time)
            }
            InjectedFault::AuthenticationFaultXml => {
                Fault::authentication_general().into_xml_response_at(time)
            }
            InjectedFault::AuthorizationFailed => Fault::authorization().into_response_at(time),
            InjectedFault::ValidationXml => Fault::validation(
                "2010",
                "Request has invalid or unsupported property",
                "Property Name:failed to parse json object; a property specified is unsupported or invalid",
            )
            .into_xml_response_at(time),
            InjectedFault::SystemXml => Fault {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                kind: FaultKind::System,
                code: "10000",
                message: "An application error has occurred while processing your request".into(),
                detail: "System Failure Error: An unexpected error occurred while accessing or saving your data. Please wait a few minutes and try again."
                    .into(),
                element: String::new(),
            }
            .into_xml_response_at(time),
        }
    }
}

/// One error answer of the Accounting API.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub status: StatusCode,
    pub kind: FaultKind,
    pub code: &'static str,
    pub message: String,
    pub detail: String,
    pub element: String,
}

impl Fault {
    /// A 400 `ValidationFault`.
    pub fn validation(code: &'static str, message: &str, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: FaultKind::Validation,
            code,
            message: message.to_owned(),
            detail: detail.into(),
            element: String::new(),
        }
    }

    /// Names the field the fault is about.
    pub fn at(mut self, element: &str) -> Self {
        self.element = element.to_owned();
        self
    }

    /// 610: the object does not exist, or is inactive.
    pub fn not_found(entity: &str, id: &str) -> Self {
        Self::validation(
            "610",
            "Object Not Found",
            format!(
                "Object Not Found : Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, vendors or employees. ({entity} {id})"
            ),
        )
    }

    /// 2020: a required field is missing.
    pub fn required(field: &str) -> Self {
        Self::validation(
            "2020",
            "Required param missing, need to supply the required value for the API",
            format!("Required parameter {field} is missing in the request"),
        )
        .at(field)
    }

    /// 2500: a reference points at nothing.
    pub fn invalid_reference(field: &str, id: &str) -> Self {
        Self::validation(
            "2500",
            "Invalid Reference Id",
            format!("Invalid Reference Id : {field} {id} does not exist"),
        )
        .at(field)
    }

    /// 6000: a business rule refuses the change.
    pub fn business(detail: impl Into<String>) -> Self {
        Self::validation(
            "6000",
            "A business validation error has occurred while processing your request",
            format!("Business Validation Error: {}", detail.into()),
        )
    }

    /// 5010: the SyncToken sent is not the current one.
    pub fn stale_object() -> Self {
        Self::validation(
            "5010",
            "Stale Object Error",
            "Stale Object Error : You and root were working on this at the same time. root finished before you did, so your work was not saved.",
        )
    }

    /// 6240: the name is taken.
    pub fn duplicate_name(name: &str) -> Self {
        Self::validation(
            "6240",
            "Duplicate Name Exists Error",
            format!(
                "The name supplied already exists. : Another customer, vendor or employee is already using this name ({name}). Please use a different name."
            ),
        )
    }

    /// 500: the operation does not exist for this entity (e.g. deleting a customer).
    pub fn unsupported(operation: &str) -> Self {
        Self::validation(
            "500",
            "Unsupported Operation",
            format!("Operation {operation} is not supported."),
        )
    }

    /// 401 / 3200 in the gateway dialect.
    pub fn authentication(detail: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            kind: FaultKind::Authentication,
            code: "3200",
            message: "message=AuthenticationFailed; errorCode=003200; statusCode=401".into(),
            detail: detail.to_owned(),
            element: String::new(),
        }
    }

    /// 401 / 100 in the Accounting API dialect (`AuthenticationFault`): what Intuit answers
    /// for a token it cannot use at all (revoked, or the connection moved to another admin).
    pub fn authentication_general() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            kind: FaultKind::AuthenticationFault,
            code: "100",
            message: "General Authentication Error".into(),
            detail: "AuthenticationErrorGeneral: SRV-110-Authentication Failure , statusCode: 401"
                .into(),
            element: String::new(),
        }
    }

    /// 403 / 3100 in the gateway dialect (`"type":"SERVICE"`): the token is good but not for
    /// this company (or lacks the accounting scope).
    pub fn authorization() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            kind: FaultKind::Service,
            code: "3100",
            message: "message=AuthorizationFailed; errorCode=003100; statusCode=403".into(),
            detail: "The application is not authorized for this company".into(),
            element: String::new(),
        }
    }

    /// 6140: the DocNumber is taken by another document of the type.
    pub fn duplicate_doc_number(number: &str, entity: &str, other_id: u64) -> Self {
        Self::validation(
            "6140",
            "Duplicate Document Number Error",
            format!(
                "Duplicate Document Number Error : You must specify a different number. This number has already been used. DocNumber={number} is assigned to TxnType={entity} with TxnId={other_id}"
            ),
        )
        .at("DocNumber")
    }

    /// 6070: a line's Amount is not UnitPrice × Qty.
    pub fn amount_mismatch(supplied: f64) -> Self {
        Self::validation(
            "6070",
            "A business validation error has occurred while processing your request",
            format!(
                "Business Validation Error: Amount is not equal to UnitPrice * Qty. Supplied value:{supplied}"
            ),
        )
        .at("Line.Amount")
    }

    /// 6000: a customer or vendor with an open balance cannot be made inactive.
    pub fn open_balance(entity: &str) -> Self {
        Self::validation(
            "6000",
            "Delete List Has Balance Error",
            format!(
                "The entity you are trying to delete has an open balance. : This {} cannot be made inactive because it has a non-zero balance",
                entity.to_lowercase()
            ),
        )
        .at("Active")
    }

    /// 403 / 120: the admin who connected the app is no longer a company admin.
    pub fn connecting_admin_gone() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            kind: FaultKind::Authorization,
            code: "120",
            message: "Authorization Failure".into(),
            detail: "AuthorizationFailure: The user who connected this app is no longer a company administrator, statusCode: 403"
                .into(),
            element: String::new(),
        }
    }

    /// 429 / 3001 in the gateway dialect.
    pub fn throttled() -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            kind: FaultKind::Service,
            code: "3001",
            message: "message=ThrottleExceeded; errorCode=003001; statusCode=429".into(),
            detail: "The request limit was reached.".into(),
            element: String::new(),
        }
    }

    /// 503, as an overloaded Intuit answers.
    pub fn unavailable() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: FaultKind::System,
            code: "10000",
            message: "An application error has occurred while processing your request".into(),
            detail: "System Failure Error: Service Unavailable (simulated fault)".into(),
            element: String::new(),
        }
    }

    /// 4000: the query does not parse.
    pub fn query_parse(detail: impl Into<String>) -> Self {
        Self::validation(
            "4000",
            "Error parsing query",
            format!("QueryParserError: {}", detail.into()),
        )
    }

    /// 4001: the query parses but is not allowed.
    pub fn query_invalid(detail: impl Into<String>) -> Self {
        Self::validation(
            "4001",
            "Invalid query",
            format!("QueryValidationError: {}", detail.into()),
        )
    }

    /// The JSON body Intuit sends for this fault.
    pub fn body(&self, time: &str) -> serde_json::Value {
        match self.kind {
            FaultKind::Validation
            | FaultKind::System
            | FaultKind::Authorization
            | FaultKind::AuthenticationFault => json!({
                "Fault": {
                    "Error": [{
                        "Message": self.message,
                        "Detail": self.detail,
                        "code": self.code,
                        "element": self.element,
                    }],
                    "type": match self.kind {
                        FaultKind::Validation => "ValidationFault",
                        FaultKind::Authorization => "AuthorizationFault",
                        FaultKind::AuthenticationFault => "AuthenticationFault",
                        _ => "SystemFault",
                    },
                },
                "time": time,
            }),
            FaultKind::Authentication | FaultKind::Service => json!({
                "warnings": null,
                "intuitObject": null,
                "fault": {
                    "error": [{
                        "message": self.message,
                        "detail": self.detail,
                        "code": self.code,
                        "element": null,
                    }],
                    "type": if self.kind == FaultKind::Service { "SERVICE" } else { "AUTHENTICATION" },
                },
                "report": null,
                "queryResponse": [],
                "batchItemResponse": [],
                "attachableResponse": [],
                "syncErrorResponse": null,
                "requestId": null,
                "time": chrono::Utc::now().timestamp_millis(),
                "status": null,
                "cdcresponse": [],
            }),
        }
    }

    /// The body Intuit sends in XML (`<IntuitResponse><Fault type=…>`), as it does when
    /// something goes wrong before the answer's format is chosen.
    pub fn xml_body(&self, time: &str) -> String {
        let kind = match self.kind {
            FaultKind::Validation => "ValidationFault",
            FaultKind::System => "SystemFault",
            FaultKind::Authorization => "AuthorizationFault",
            FaultKind::AuthenticationFault => "AuthenticationFault",
            FaultKind::Authentication => "AUTHENTICATION",
            FaultKind::Service => "SERVICE",
        };
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><IntuitResponse xmlns=\"http://schema.intuit.com/finance/v3\" time=\"{}\"><Fault type=\"{kind}\"><Error code=\"{}\"><Message>{}</Message><Detail>{}</Detail></Error></Fault></IntuitResponse>",
            xml_escape(time),
            xml_escape(self.code),
            xml_escape(&self.message),
            xml_escape(&self.detail)
        )
    }

    /// The whole HTTP answer, in XML.
    pub fn into_xml_response_at(self, time: &str) -> Response {
        let mut response = (self.status, self.xml_body(time)).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/xml"),
        );
        response
    }

    /// The whole HTTP answer.
    pub fn into_response_at(self, time: &str) -> Response {
        let mut response = (self.status, axum::Json(self.body(time))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(
                    "Bearer realm=\"Intuit\", error=\"invalid_token\"",
                ),
            );
        }
        response
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
