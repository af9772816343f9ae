//! What a tool can ask of a company's books, independent of MCP: read the company, query,
//! read one entity, run a report, see changes, create, update (sparse by default; the
//! company's settings too), send an invoice or estimate, delete/void/deactivate. Arguments are checked here before anything is sent, so a
//! bad argument never costs a request against the company's rate budget.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::api::ApiRequest;
use super::checks;
use super::entities::{self, EntityType, Kind};
use super::{QboError, QuickBooks};

/// Most rows `fetch_all` will gather, so a runaway query cannot exhaust memory.
pub const FETCH_ALL_LIMIT: usize = 100_000;
/// Rows per page when paginating (QuickBooks' maximum).
const PAGE: usize = 1000;

/// A result and what identifies it at Intuit.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub value: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intuit_tid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl From<super::ApiResponse> for Answer {
    fn from(r: super::ApiResponse) -> Self {
        Answer {
            value: r.body,
            intuit_tid: r.intuit_tid,
            request_id: r.request_id,
        }
    }
}

/// How `delete_entity` removes something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeleteMode {
    Delete,
    Void,
    Deactivate,
}

fn invalid(message: impl Into<String>) -> QboError {
    QboError::InvalidArgument {
        message: message.into(),
    }
}

fn entity_type(name: &str) -> Result<&'static EntityType, QboError> {
    entities::by_name(name).ok_or_else(|| invalid(entities::unknown(name)))
}

fn writable(name: &str) -> Result<&'static EntityType, QboError> {
    let t = entity_type(name)?;
    if t.kind == Kind::ReadOnly {
        return Err(invalid(format!(
            "{name} cannot be changed through this server."
        )));
    }
    Ok(t)
}

fn entity_id(id: &str) -> Result<&str, QboError> {
    if !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        Ok(id)
    } else {
        Err(invalid(format!(
            "`{id}` is not a QuickBooks entity id (like \"42\")."
        )))
    }
}

fn date(name: &str, value: &str) -> Result<String, QboError> {
    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| invalid(format!("{name} `{value}` is not a date like 2026-01-31.")))
}

/// The types whose documents QuickBooks emails (`POST /{entity}/{id}/send`).
pub const SENDABLE: &[&str] = &["Invoice", "Estimate", "SalesReceipt", "CreditMemo"];

/// What deleting a `name` with `mode` does, as QuickBooks allows: without a mode, name lists
/// are deactivated and transactions deleted.
pub fn delete_mode(name: &str, mode: Option<DeleteMode>) -> Result<DeleteMode, QboError> {
    let t = writable(name)?;
    let mode = match (t.kind, mode) {
        (Kind::Settings, _) => {
            return Err(invalid(format!(
                "A company always has its {}; it can be updated, never deleted.",
                t.name
            )));
        }
        (Kind::NameList, None | Some(DeleteMode::Deactivate)) => DeleteMode::Deactivate,
        (Kind::NameList, Some(_)) => {
            return Err(invalid(format!(
                "QuickBooks never deletes a {}; it can only be deactivated (mode \"deactivate\").",
                t.name
            )));
        }
        (Kind::Transaction { .. }, Some(DeleteMode::Deactivate)) => {
            return Err(invalid(format!(
                "A {} is a transaction: delete or void it.",
                t.name
            )));
        }
        (Kind::Transaction { voidable: false }, Some(DeleteMode::Void)) => {
            return Err(invalid(format!(
                "QuickBooks cannot void a {}; delete it instead.",
                t.name
            )));
        }
        (_, mode) => mode.unwrap_or(DeleteMode::Delete),
    };
    Ok(mode)
}

/// Splits a trailing `STARTPOSITION n` / `MAXRESULTS n` off a query (any order, any case).
/// The rest is kept as written: whitespace inside a quoted value is part of the value.
pub fn split_paging(query: &str) -> (String, Option<usize>, Option<usize>) {
    let mut rest = query.trim_end();
    let (mut start, mut max) = (None, None);
    while let Some((before, value)) = rest.rsplit_once(char::is_whitespace) {
        let Ok(value) = value.parse::<usize>() else {
            break;
        };
        let before = before.trim_end();
        let (head, keyword) = before
            .rsplit_once(char::is_whitespace)
            .unwrap_or(("", before));
        if keyword.eq_ignore_ascii_case("STARTPOSITION") && start.is_none() {
            start = Some(value);
        } else if keyword.eq_ignore_ascii_case("MAXRESULTS") && max.is_none() {
            max = Some(value);
        } else {
            break;
        }
        rest = head.trim_end();
    }
    (rest.to_owned(), start, max)
}

/// The entity name a `SELECT … FROM Entity …` reads.
pub fn query_entity(query: &str) -> Option<&str> {
    let mut words = query.split_whitespace();
    words.find(|w| w.eq_ignore_ascii_case("FROM"))?;
    words.next()
}

impl QuickBooks {
    /// CompanyInfo and Preferences.
    pub async fn company_info(&self, realm_id: &str) -> Result<Answer, QboError> {
        let info = self
            .call(realm_id, ApiRequest::get(format!("companyinfo/{realm_id}")))
            .await?;
        let prefs = self.call(realm_id, ApiRequest::get("preferences")).await?;
        Ok(Answer {
            value: json!({
                "CompanyInfo": info.body.get("CompanyInfo").cloned().unwrap_or(Value::Null),
                "Preferences": prefs.body.get("Preferences").cloned().unwrap_or(Value::Null),
            }),
            intuit_tid: info.intuit_tid,
            request_id: None,
        })
    }

    /// A query in QuickBooks' language; with `fetch_all`, every page (up to
    /// [`FETCH_ALL_LIMIT`] rows) gathered into one answer.
    pub async fn query(
        &self,
        realm_id: &str,
        query: &str,
        fetch_all: bool,
    ) -> Result<Answer, QboError> {
        let query = query.trim().trim_end_matches(';').trim();
        if query.len() > 4000 {
            return Err(invalid("The query is longer than 4000 characters."));
        }
        if !query
            .split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("SELECT"))
        {
            return Err(invalid(
                "A query starts with SELECT, like `SELECT * FROM Customer WHERE Active = true`.",
            ));
        }
        if !fetch_all {
            let r = self
                .call(realm_id, ApiRequest::get("query").param("query", query))
                .await?;
            return Ok(r.into());
        }
        let (base, start, max) = split_paging(query);
        let entity = query_entity(&base)
            .ok_or_else(|| invalid("The query names no entity after FROM."))?
            .to_owned();
        if base.to_ascii_uppercase().contains("COUNT(*)") {
            return Err(invalid("fetch_all does not apply to COUNT(*) queries."));
        }
        let limit = max.unwrap_or(FETCH_ALL_LIMIT).min(FETCH_ALL_LIMIT);
        let mut position = start.unwrap_or(1).max(1);
        let mut rows: Vec<Value> = Vec::new();
        let mut tid = None;
        loop {
            let page = PAGE.min(limit - rows.len());
            let paged = format!("{base} STARTPOSITION {position} MAXRESULTS {page}");
            let r = self
                .call(realm_id, ApiRequest::get("query").param("query", paged))
                .await?;
            tid = tid.or(r.intuit_tid);
            let got = r.body["QueryResponse"][&entity]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let n = got.len();
            rows.extend(got);
            if n < page || rows.len() >= limit {
                break;
            }
            position += n;
        }
        let mut response = Map::new();
        response.insert("startPosition".into(), json!(start.unwrap_or(1)));
        response.insert("maxResults".into(), json!(rows.len()));
        response.insert(entity, Value::Array(rows));
        Ok(Answer {
            value: json!({ "QueryResponse": response }),
            intuit_tid: tid,
            request_id: None,
        })
    }

    /// One entity by type and id (the company's settings by type alone: there is one of each).
    pub async fn get_entity(
        &self,
        realm_id: &str,
        entity: &str,
        id: &str,
    ) -> Result<Answer, QboError> {
        let t = entity_type(entity)?;
        if t.kind == Kind::Settings {
            return Ok(self
                .call(realm_id, settings_read(t, realm_id))
                .await?
                .into());
        }
        let id = entity_id(id)?;
        let r = self
            .call(realm_id, ApiRequest::get(format!("{}/{id}", t.path())))
            .await?;
        Ok(r.into())
    }

    /// Any report by name, complete. `params` are passed through (string values only).
    pub async fn run_report(
        &self,
        realm_id: &str,
        report: &ReportArgs,
    ) -> Result<Answer, QboError> {
        if report.report.is_empty()
            || report.report.len() > 64
            || !report.report.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(invalid(format!(
                "`{}` is not a QuickBooks report name (like ProfitAndLoss or BalanceSheet).",
                report.report
            )));
        }
        let mut request = ApiRequest::get(format!("reports/{}", report.report));
        if let Some(d) = &report.start_date {
            request = request.param("start_date", date("start_date", d)?);
        }
        if let Some(d) = &report.end_date {
            request = request.param("end_date", date("end_date", d)?);
        }
        if let Some(m) = &report.accounting_method {
            if m != "Cash" && m != "Accrual" {
                return Err(invalid("accounting_method is Cash or Accrual."));
            }
            request = request.param("accounting_method", m.clone());
        }
        if let Some(s) = &report.summarize_column_by {
            request = request.param("summarize_column_by", s.clone());
        }
        if let Some(params) = &report.params {
            for (key, value) in params {
                if !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(invalid(format!("`{key}` is not a report parameter name.")));
                }
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(invalid(format!(
                            "Report parameter `{key}` must be a string, number or boolean."
                        )));
                    }
                };
                request = request.param(key, value);
            }
        }
        let r = self.call(realm_id, request).await?;
        let totals = report_totals(&r.body);
        let mut answer: Answer = r.into();
        if let Value::Object(map) = &mut answer.value {
            map.insert("totals".into(), totals);
        }
        Ok(answer)
    }

    /// Change data capture since a time, for some entity types.
    pub async fn changes_since(
        &self,
        realm_id: &str,
        entities: &[String],
        since: &str,
    ) -> Result<Answer, QboError> {
        if entities.is_empty() || entities.len() > 30 {
            return Err(invalid("Name between 1 and 30 entity types."));
        }
        for e in entities {
            entity_type(e)?;
        }
        let since = chrono::DateTime::parse_from_rfc3339(since)
            .map(|t| t.to_rfc3339())
            .or_else(|_| date("since", since).map(|d| format!("{d}T00:00:00Z")))
            .map_err(|_| {
                invalid(format!(
                    "since `{since}` is not a time like 2026-01-31T00:00:00Z."
                ))
            })?;
        let r = self
            .call(
                realm_id,
                ApiRequest::get("cdc")
                    .param("entities", entities.join(","))
                    .param("changedSince", since),
            )
            .await?;
        Ok(r.into())
    }

    /// Creates an entity; with `dry_run`, answers what would be sent instead.
    pub async fn create_entity(
        &self,
        realm_id: &str,
        entity: &str,
        fields: &Value,
        dry_run: bool,
    ) -> Result<Answer, QboError> {
        let write = Write::Create {
            entity: entity.to_owned(),
            fields: fields.clone(),
        };
        self.write(realm_id, &write, dry_run).await
    }

    /// Updates an entity. Sparse unless `fields` has `"sparse": false`: omitted fields keep
    /// their values. Reads the current SyncToken (and fields QuickBooks insists on) when
    /// not given.
    pub async fn update_entity(
        &self,
        realm_id: &str,
        entity: &str,
        id: &str,
        fields: &Value,
        sync_token: Option<&str>,
        dry_run: bool,
    ) -> Result<Answer, QboError> {
        let write = Write::Update {
            entity: entity.to_owned(),
            id: id.to_owned(),
            fields: fields.clone(),
            sync_token: sync_token.map(str::to_owned),
        };
        self.write(realm_id, &write, dry_run).await
    }

    /// Emails an invoice or estimate (to `email`, or to the address on it: its BillEmail).
    pub async fn send(
        &self,
        realm_id: &str,
        entity: &str,
        id: &str,
        email: Option<&str>,
    ) -> Result<Answer, QboError> {
        let write = Write::Send {
            entity: entity.to_owned(),
            id: id.to_owned(),
            email: email.map(str::to_owned),
        };
        self.write(realm_id, &write, false).await
    }

    /// Deletes a transaction, voids it, or deactivates a name-list entity, as QuickBooks
    /// allows. Without a mode: deactivate for name lists, delete for transactions.
    pub async fn delete_entity(
        &self,
        realm_id: &str,
        entity: &str,
        id: &str,
        mode: Option<DeleteMode>,
    ) -> Result<Answer, QboError> {
        let write = Write::Delete {
            entity: entity.to_owned(),
            id: id.to_owned(),
            mode,
        };
        self.write(realm_id, &write, false).await
    }

    /// Plans `write` and sends it, or with `dry_run` answers what would be sent.
    async fn write(
        &self,
        realm_id: &str,
        write: &Write,
        dry_run: bool,
    ) -> Result<Answer, QboError> {
        let request = self.plan(realm_id, write).await?;
        if dry_run {
            return Ok(dry(&request));
        }
        match self.call(realm_id, request).await {
            // The SyncToken this server read itself went stale before the write (someone else
            // saved the record in between): plan again, which reads it afresh, and retry once.
            Err(QboError::Fault { fault, .. })
                if fault.code == "5010"
                    && matches!(
                        write,
                        Write::Update {
                            sync_token: None,
                            ..
                        }
                    ) =>
            {
                let retry = self.plan(realm_id, write).await?;
                Ok(self.call(realm_id, retry).await?.into())
            }
            other => Ok(other?.into()),
        }
    }

    /// The exact request a write sends: arguments checked, the current SyncToken (and fields
    /// QuickBooks insists on) read when not given. Reads only; nothing is changed.
    pub async fn plan(&self, realm_id: &str, write: &Write) -> Result<ApiRequest, QboError> {
        match write {
            Write::Create { entity, fields } => {
                let t = writable(entity)?;
                if t.kind == Kind::Settings {
                    return Err(invalid(format!(
                        "A company always has its {}; update it instead of creating one.",
                        t.name
                    )));
                }
                let Value::Object(body) = fields else {
                    return Err(invalid(
                        "fields must be a JSON object with the entity's fields.",
                    ));
                };
                if body.contains_key("Id") || body.contains_key("SyncToken") {
                    return Err(invalid(
                        "A new entity has no Id or SyncToken; use update_entity to change one.",
                    ));
                }
                let mut body = Value::Object(body.clone());
                checks::check(t.name, &body, true).map_err(invalid)?;
                self.resolve_names(realm_id, t.name, &mut body).await?;
                Ok(ApiRequest::post(t.path(), body))
            }
            Write::Update {
                entity,
                id,
                fields,
                sync_token,
            } => {
                self.plan_update(realm_id, entity, id, fields, sync_token.as_deref())
                    .await
            }
            Write::Send { entity, id, email } => {
                let t = entity_type(entity)?;
                if !SENDABLE.contains(&t.name) {
                    return Err(invalid(format!(
                        "QuickBooks emails only {}; not a {}.",
                        SENDABLE.join(", "),
                        t.name
                    )));
                }
                let id = entity_id(id)?;
                let mut request = ApiRequest::post_empty(format!("{}/{id}/send", t.path()));
                if let Some(to) = email {
                    if !to.contains('@') || to.len() > 254 || to.contains(char::is_whitespace) {
                        return Err(invalid(format!("`{to}` is not an email address.")));
                    }
                    request = request.param("sendTo", to.clone());
                }
                Ok(request)
            }
            Write::Delete { entity, id, mode } => {
                self.plan_delete(realm_id, entity, id, *mode).await
            }
        }
    }

    async fn plan_update(
        &self,
        realm_id: &str,
        entity: &str,
        id: &str,
        fields: &Value,
        sync_token: Option<&str>,
    ) -> Result<ApiRequest, QboError> {
        let t = writable(entity)?;
        if t.kind == Kind::Settings {
            return self
                .plan_settings(realm_id, t, id, fields, sync_token)
                .await;
        }
        let id = entity_id(id)?;
        let Value::Object(given) = fields else {
            return Err(invalid(
                "fields must be a JSON object with the fields to change.",
            ));
        };
        checks::check(t.name, fields, false).map_err(invalid)?;
        let mut body = given.clone();
        body.insert("Id".into(), json!(id));
        let sparse = body.get("sparse").and_then(Value::as_bool).unwrap_or(true);
        body.insert("sparse".into(), json!(sparse));
        let missing: Vec<&str> = t
            .sparse_required
            .iter()
            .copied()
            .filter(|f| !body.contains_key(*f))
            .collect();
        if sync_token.is_none() || !missing.is_empty() {
            let current = self.get_entity(realm_id, t.name, id).await?;
            let current = &current.value[t.name];
            if sync_token.is_none() {
                body.insert("SyncToken".into(), current["SyncToken"].clone());
            }
            for f in missing {
                if let Some(v) = current.get(f) {
                    body.insert(f.into(), v.clone());
                }
            }
        }
        if let Some(token) = sync_token {
            body.insert("SyncToken".into(), json!(token));
        }
        let mut body = Value::Object(body);
        self.resolve_names(realm_id, t.name, &mut body).await?;
        Ok(ApiRequest::post(t.path(), body))
    }

    /// A change to the company's CompanyInfo or Preferences: sparse unless `"sparse": false`,
    /// its Id and (when not given) SyncToken read from the current one.
    async fn plan_settings(
        &self,
        realm_id: &str,
        t: &EntityType,
        id: &str,
        fields: &Value,
        sync_token: Option<&str>,
    ) -> Result<ApiRequest, QboError> {
        let Value::Object(given) = fields else {
            return Err(invalid(format!(
                "fields must be a JSON object with the {} fields to change.",
                t.name
            )));
        };
        if given.contains_key("Id") || given.contains_key("SyncToken") {
            return Err(invalid(
                "Give the SyncToken as `sync_token`, not inside `fields`; the Id is the company's own.",
            ));
        }
        if t.name == "CompanyInfo" {
            checks::check(t.name, fields, false).map_err(invalid)?;
        }
        let current = self.call(realm_id, settings_read(t, realm_id)).await?;
        let current = &current.body[t.name];
        let known = current["Id"].as_str().unwrap_or("1");
        if !id.is_empty() && id != known {
            return Err(invalid(format!(
                "The company's {} has Id {known}, not `{id}`; omit `id`.",
                t.name
            )));
        }
        let mut body = given.clone();
        body.insert("Id".into(), json!(known));
        let sparse = body.get("sparse").and_then(Value::as_bool).unwrap_or(true);
        body.insert("sparse".into(), json!(sparse));
        let token = match sync_token {
            Some(token) => json!(token),
            None => current["SyncToken"].clone(),
        };
        body.insert("SyncToken".into(), token);
        Ok(ApiRequest::post(t.path(), Value::Object(body)))
    }

    async fn plan_delete(
        &self,
        realm_id: &str,
        entity: &str,
        id: &str,
        mode: Option<DeleteMode>,
    ) -> Result<ApiRequest, QboError> {
        let t = writable(entity)?;
        let id = entity_id(id)?;
        let mode = delete_mode(entity, mode)?;
        if mode == DeleteMode::Deactivate {
            return self
                .plan_update(realm_id, t.name, id, &json!({"Active": false}), None)
                .await;
        }
        let current = self.get_entity(realm_id, t.name, id).await?;
        let sync = current.value[t.name]["SyncToken"].clone();
        let operation = if mode == DeleteMode::Void {
            "void"
        } else {
            "delete"
        };
        Ok(
            ApiRequest::post(t.path(), json!({"Id": id, "SyncToken": sync}))
                .param("operation", operation),
        )
    }
}

/// A write a tool asks for, before it is planned into a request ([`QuickBooks::plan`]).
#[derive(Debug, Clone)]
pub enum Write {
    Create {
        entity: String,
        fields: Value,
    },
    Update {
        entity: String,
        id: String,
        fields: Value,
        sync_token: Option<String>,
    },
    /// Email a document (an invoice, an estimate) to its customer.
    Send {
        entity: String,
        id: String,
        email: Option<String>,
    },
    Delete {
        entity: String,
        id: String,
        mode: Option<DeleteMode>,
    },
}

impl Write {
    /// The QuickBooks entity the write is about.
    pub fn entity(&self) -> &str {
        match self {
            Write::Create { entity, .. }
            | Write::Update { entity, .. }
            | Write::Delete { entity, .. }
            | Write::Send { entity, .. } => entity,
        }
    }

    /// The id of the entity changed (none for a create).
    pub fn id(&self) -> Option<&str> {
        match self {
            Write::Create { .. } => None,
            Write::Update { id, .. } | Write::Delete { id, .. } | Write::Send { id, .. } => {
                Some(id.as_str()).filter(|id| !id.is_empty())
            }
        }
    }
}

/// How the company's CompanyInfo or Preferences is read: `companyinfo/{realm}`, `preferences`.
fn settings_read(t: &EntityType, realm_id: &str) -> ApiRequest {
    if t.name == "CompanyInfo" {
        ApiRequest::get(format!("companyinfo/{realm_id}"))
    } else {
        ApiRequest::get(t.path())
    }
}

/// Arguments of `run_report`.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
pub struct ReportArgs {
    pub report: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub accounting_method: Option<String>,
    pub summarize_column_by: Option<String>,
    pub params: Option<Map<String, Value>>,
}

/// What a request sends, as `dry_run` and proposals show it: method, path, query, body.
pub fn would_send(request: &ApiRequest) -> Value {
    json!({
        "method": request.method.as_str(),
        "path": request.path,
        "query": request.query.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "body": request.body,
    })
}

/// The request [`would_send`] describes, back from its JSON.
pub fn request_from(shown: &Value) -> Option<ApiRequest> {
    let path = shown["path"].as_str()?.to_owned();
    let method = reqwest::Method::from_bytes(shown["method"].as_str()?.as_bytes()).ok()?;
    let mut query = Vec::new();
    for pair in shown["query"].as_array()? {
        query.push((pair[0].as_str()?.to_owned(), pair[1].as_str()?.to_owned()));
    }
    let body = match &shown["body"] {
        Value::Null => None,
        other => Some(other.clone()),
    };
    Some(ApiRequest {
        method,
        path,
        query,
        body,
        request_id: None,
        raw: None,
    })
}

fn dry(request: &ApiRequest) -> Answer {
    Answer {
        value: json!({
            "dry_run": true,
            "would_send": would_send(request),
        }),
        intuit_tid: None,
        request_id: None,
    }
}

/// Top-level section totals straight from the report's own `Summary` rows (never re-added),
/// as `[{"group", "label", "values"}]`.
pub fn report_totals(report: &Value) -> Value {
    let rows = report["Rows"]["Row"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let totals: Vec<Value> = rows
        .iter()
        .filter_map(|row| {
            let cols = row["Summary"]["ColData"].as_array()?;
            let label = cols
                .first()
                .and_then(|c| c["value"].as_str())
                .unwrap_or_default();
            Some(json!({
                "group": row.get("group").cloned().unwrap_or(Value::Null),
                "label": label,
                "values": cols.iter().skip(1).map(|c| c["value"].clone()).collect::<Vec<_>>(),
            }))
        })
        .collect();
    Value::Array(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_is_split_off() {
        assert_eq!(
            split_paging(
                "SELECT * FROM Customer WHERE Active = true startposition 5 MAXRESULTS 20"
            ),
            (
                "SELECT * FROM Customer WHERE Active = true".into(),
                Some(5),
                Some(20)
            )
        );
        assert_eq!(
            split_paging("SELECT * FROM Item"),
            ("SELECT * FROM Item".into(), None, None)
        );
        assert_eq!(
            query_entity("select * from Invoice where x = '1'"),
            Some("Invoice")
        );
    }

    #[test]
    fn entity_names_are_checked_with_a_hint() {
        let e = entity_type("customer").unwrap_err().to_string();
        assert!(e.contains("use `Customer`"), "{e}");
        assert!(entity_id("42").is_ok());
        assert!(entity_id("42/../x").is_err());
    }
}
