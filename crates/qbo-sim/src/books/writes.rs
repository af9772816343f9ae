//! Changing the books as QuickBooks does: create, full and sparse update with SyncToken,
//! delete, void, deactivate, and the fields QuickBooks computes itself (line amounts,
//! totals, balances, document numbers). A full update really drops omitted fields: that is
//! the trap clients fall into, so the simulator must spring it.

use super::entity_types::{self, EntityType, Family};
use super::fields::{self, amount, cents, money};
use super::schema::SCHEMA;
use super::{Books, Tombstone, ledger};
use crate::clock::{company_time, metadata_time};
use crate::fault::Fault;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

/// Fields a client may send but QuickBooks owns.
const SYSTEM_FIELDS: &[&str] = &["Id", "SyncToken", "MetaData", "domain", "sparse", "status"];

/// Fields QuickBooks computes from the rest, whatever the client sends.
const COMPUTED_FIELDS: &[&str] = &[
    "FullyQualifiedName",
    "Balance",
    "BalanceWithJobs",
    "CurrentBalance",
];

/// What a write request asks beyond its body (Intuit's `include=` options).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// `include=allowduplicatedocnum`: a DocNumber already used is accepted.
    pub allow_duplicate_doc_number: bool,
}

impl WriteOptions {
    /// The options of a request's `include` parameter (comma-separated).
    pub fn from_include(include: Option<&str>) -> Self {
        Self {
            allow_duplicate_doc_number: include.is_some_and(|i| {
                i.split(',')
                    .any(|o| o.trim().eq_ignore_ascii_case("allowduplicatedocnum"))
            }),
        }
    }
}

/// Whether `"sparse"` asks for a sparse update; Jackson reads `"true"` as `true`.
fn is_sparse(object: &Map<String, Value>) -> bool {
    match object.get("sparse") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Rounds half-up to cents, as QuickBooks checks `UnitPrice × Qty` (the small nudge keeps
/// binary fractions such as 2.675 from rounding down).
fn cents_half_up(value: f64) -> f64 {
    ((value * 100.0) + value.signum() * 1e-7).round() / 100.0
}

/// Whether the schema marks a top-level property read-only (QuickBooks owns it).
fn read_only(entity: &EntityType, key: &str) -> bool {
    entity.properties.get(key).is_some_and(|p| p.read_only)
}

/// Which entity type a reference field points at.
fn referenced_type(field: &str, holder: &Map<String, Value>) -> Option<&'static str> {
    Some(match field {
        "CustomerRef" => "Customer",
        "VendorRef" => "Vendor",
        "EmployeeRef" => "Employee",
        "ItemRef" => "Item",
        "SalesTermRef" => "Term",
        "ClassRef" => "Class",
        "DepartmentRef" => "Department",
        "PaymentMethodRef" => "PaymentMethod",
        "EntityRef" => {
            return holder
                .get("EntityRef")
                .and_then(|r| r.get("type"))
                .and_then(Value::as_str)
                .and_then(|t| match t {
                    "Customer" => Some("Customer"),
                    "Vendor" => Some("Vendor"),
                    "Employee" => Some("Employee"),
                    _ => None,
                });
        }
        f if f.ends_with("AccountRef") => "Account",
        _ => return None,
    })
}

fn has_value(object: &Map<String, Value>, field: &str) -> bool {
    match object.get(field) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    }
}

fn as_object(body: Value) -> Result<Map<String, Value>, Fault> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(Fault::validation(
            "2010",
            "Request has invalid or unsupported property",
            "The request body must be a JSON object",
        )),
    }
}

fn body_id(object: &Map<String, Value>) -> Result<u64, Fault> {
    let id = match object.get("Id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(Fault::required("Id")),
    };
    id.parse().map_err(|_| Fault::invalid_reference("Id", &id))
}

fn body_sync_token(object: &Map<String, Value>) -> Option<String> {
    match object.get("SyncToken") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn date_plus(date: &str, days: i64) -> Option<String> {
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(
        (date + chrono::Duration::days(days))
            .format("%Y-%m-%d")
            .to_string(),
    )
}

/// Raises the SyncToken and stamps the change time, as every change does.
fn touch(next: &mut Map<String, Value>, now: DateTime<Utc>) {
    let token = next
        .get("SyncToken")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(0);
    next.insert("SyncToken".into(), Value::String((token + 1).to_string()));
    let created = next
        .get("MetaData")
        .and_then(|m| m.get("CreateTime"))
        .cloned()
        .unwrap_or_else(|| Value::String(metadata_time(now)));
    next.insert(
        "MetaData".into(),
        json!({"CreateTime": created, "LastUpdatedTime": metadata_time(now)}),
    );
}

impl Books {
    /// Creates an entity; answers it as QuickBooks stored it.
    pub fn create(
        &mut self,
        entity: &'static EntityType,
        body: Value,
        now: DateTime<Utc>,
    ) -> Result<Value, Fault> {
        self.create_with(entity, body, now, WriteOptions::default())
    }

    /// [`Books::create`] with the request's options.
    pub fn create_with(
        &mut self,
        entity: &'static EntityType,
        body: Value,
        now: DateTime<Utc>,
        options: WriteOptions,
    ) -> Result<Value, Fault> {
        let mut object = as_object(body)?;
        SCHEMA.check_write(entity.schema, &object)?;
        for field in SYSTEM_FIELDS.iter().chain(COMPUTED_FIELDS) {
            object.remove(*field);
        }
        // Read-only properties are accepted and ignored, as QuickBooks does.
        object.retain(|key, _| !read_only(entity, key));
        for required in entity.required {
            if !required.split('|').any(|field| has_value(&object, field)) {
                let first = required.split('|').next().unwrap_or(required);
                return Err(Fault::required(first));
            }
        }
        self.check_references(&object)?;
        self.check_doc_number(entity, &object, None, options)?;
        let id = self.allocate_id(entity);
        object.insert("Id".into(), Value::String(id.to_string()));
        object.insert("SyncToken".into(), Value::String("0".into()));
        let stamp = metadata_time(now);
        object.insert(
            "MetaData".into(),
            json!({"CreateTime": stamp, "LastUpdatedTime": stamp}),
        );
        self.complete(entity, &mut object, now)?;
        let value = Value::Object(object);
        self.store(entity, id, value);
        self.recompute_balances();
        self.get(entity, id)
            .cloned()
            .ok_or_else(|| Fault::not_found(entity.name, &id.to_string()))
    }

    /// A full update (omitted writable fields are dropped) or, with `"sparse": true`, a
    /// sparse one (only the fields sent change; a `Line` array still replaces every line).
    pub fn update(
        &mut self,
        entity: &'static EntityType,
        body: Value,
        now: DateTime<Utc>,
    ) -> Result<Value, Fault> {
        self.update_with(entity, body, now, WriteOptions::default())
    }

    /// [`Books::update`] with the request's options.
    pub fn update_with(
        &mut self,
        entity: &'static EntityType,
        body: Value,
        now: DateTime<Utc>,
        options: WriteOptions,
    ) -> Result<Value, Fault> {
        let object = as_object(body)?;
        SCHEMA.check_write(entity.schema, &object)?;
        let sparse = is_sparse(&object);
        let (id, current) = self.current_version(entity, &object)?;
        if self.voided.contains(&(entity.name, id)) {
            return Err(Fault::business(format!(
                "{} {id} has been voided; a voided transaction cannot be changed.",
                entity.name
            )));
        }
        if sparse {
            for field in entity.sparse_required {
                if !has_value(&object, field) {
                    return Err(Fault::required(field));
                }
            }
        }
        // A full update drops the writable properties it does not send; what QuickBooks owns
        // (read-only) stays as it was, whatever the request says.
        let mut next = if sparse {
            current.clone()
        } else {
            current
                .iter()
                .filter(|(key, _)| read_only(entity, key))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        };
        for (key, value) in object {
            if !SYSTEM_FIELDS.contains(&key.as_str())
                && !COMPUTED_FIELDS.contains(&key.as_str())
                && !read_only(entity, &key)
            {
                next.insert(key, value);
            }
        }
        if !sparse {
            for required in entity.required {
                if !required.split('|').any(|field| has_value(&next, field)) {
                    let first = required.split('|').next().unwrap_or(required);
                    return Err(Fault::required(first));
                }
            }
        }
        let deactivating = fields::is_active(&Value::Object(current.clone()))
            && !fields::is_active(&Value::Object(next.clone()));
        if deactivating
            && matches!(entity.name, "Customer" | "Vendor")
            && cents(amount(&Value::Object(current.clone()), "Balance")) != 0.0
        {
            return Err(Fault::open_balance(entity.name));
        }
        // Deactivating a name may leave it pointing at other inactive names.
        if entity.family == Family::Transaction || fields::is_active(&Value::Object(next.clone())) {
            self.check_references(&next)?;
        }
        self.check_doc_number(entity, &next, Some(id), options)?;
        for kept in ["Id", "SyncToken", "MetaData"] {
            if let Some(value) = current.get(kept) {
                next.insert(kept.into(), value.clone());
            }
        }
        touch(&mut next, now);
        if entity.sales_document
            && let Some(Value::Array(lines)) = next.get_mut("Line")
        {
            lines.retain(|line| {
                line.get("DetailType").and_then(Value::as_str) != Some("SubTotalLineDetail")
            });
        }
        self.complete_update(entity, id, &mut next, now)?;
        self.save(entity, id, next)
    }

    /// The stored version a write names: refuses an unknown id (610), a missing SyncToken
    /// (2020) and a stale one (5010).
    fn current_version(
        &self,
        entity: &'static EntityType,
        object: &Map<String, Value>,
    ) -> Result<(u64, Map<String, Value>), Fault> {
        let id = body_id(object)?;
        let Some(Value::Object(current)) = self.get(entity, id).cloned() else {
            return Err(Fault::not_found(entity.name, &id.to_string()));
        };
        let Some(sync_token) = body_sync_token(object) else {
            return Err(Fault::required("SyncToken"));
        };
        if current
            .get("SyncToken")
            .and_then(Value::as_str)
            .unwrap_or("0")
            != sync_token
        {
            return Err(Fault::stale_object());
        }
        Ok((id, current))
    }

    /// Stores a changed entity, recomputes balances, answers it as stored.
    fn save(
        &mut self,
        entity: &'static EntityType,
        id: u64,
        next: Map<String, Value>,
    ) -> Result<Value, Fault> {
        self.store(entity, id, Value::Object(next));
        self.recompute_balances();
        self.get(entity, id)
            .cloned()
            .ok_or_else(|| Fault::not_found(entity.name, &id.to_string()))
    }

    fn complete_update(
        &mut self,
        entity: &'static EntityType,
        id: u64,
        next: &mut Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<(), Fault> {
        // The name checks must not see the entity's own current name as a duplicate.
        let previous = self.remove(entity, id);
        let outcome = self.complete(entity, next, now);
        if let Some(previous) = previous {
            self.store(entity, id, previous);
        }
        outcome
    }

    /// Deletes a transaction; name lists refuse (they can only be deactivated).
    pub fn delete(
        &mut self,
        entity: &'static EntityType,
        body: Value,
        now: DateTime<Utc>,
    ) -> Result<Value, Fault> {
        let object = as_object(body)?;
        if entity.family == Family::NameList {
            return Err(Fault::unsupported("Delete"));
        }
        let (id, _) = self.current_version(entity, &object)?;
        if let Some(linker) = self.linked_from(entity.name, id) {
            return Err(Fault::business(format!(
                "This transaction is linked to {linker}. Delete or void that transaction first."
            )));
        }
        self.remove(entity, id);
        if entity.name == "Attachable" {
            self.files.remove(&id);
        }
        self.voided.remove(&(entity.name, id));
        self.tombstones.push(Tombstone {
            entity: entity.name,
            id,
            at: now,
        });
        self.recompute_balances();
        Ok(json!({"status": "Deleted", "domain": "QBO", "Id": id.to_string()}))
    }

    /// Voids a transaction: it stays, with every amount zero and a note saying so.
    pub fn void(
        &mut self,
        entity: &'static EntityType,
        body: Value,
        now: DateTime<Utc>,
    ) -> Result<Value, Fault> {
        let object = as_object(body)?;
        if !entity.voidable {
            return Err(Fault::unsupported("Void"));
        }
        let (id, mut next) = self.current_version(entity, &object)?;
        if !self.voided.insert((entity.name, id)) {
            return Err(Fault::business(format!(
                "{} {id} has already been voided.",
                entity.name
            )));
        }
        for line in next
            .get_mut("Line")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(line) = line.as_object_mut() {
                line.insert("Amount".into(), money(0.0));
                if let Some(detail) = line
                    .get_mut("SalesItemLineDetail")
                    .and_then(Value::as_object_mut)
                {
                    detail.insert("Qty".into(), money(0.0));
                }
            }
        }
        for field in ["TotalAmt", "Balance", "UnappliedAmt", "HomeBalance"] {
            if next.contains_key(field) || field == "TotalAmt" {
                next.insert(field.into(), money(0.0));
            }
        }
        let note = match next.get("PrivateNote").and_then(Value::as_str) {
            Some(note) if !note.is_empty() => format!("Voided - {note}"),
            _ => "Voided".to_owned(),
        };
        next.insert("PrivateNote".into(), Value::String(note));
        touch(&mut next, now);
        self.save(entity, id, next)
    }

    /// Emails an invoice (or estimate): records the delivery as QuickBooks does.
    pub fn send(
        &mut self,
        entity: &'static EntityType,
        id: u64,
        send_to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Value, Fault> {
        let Some(Value::Object(mut next)) = self.get(entity, id).cloned() else {
            return Err(Fault::not_found(entity.name, &id.to_string()));
        };
        let address = match send_to.or_else(|| {
            next.get("BillEmail")
                .and_then(|b| b.get("Address"))
                .and_then(Value::as_str)
        }) {
            Some(address) => address.to_owned(),
            None => {
                return Err(Fault::business(
                    "Email address is missing. Please enter an email address.",
                ));
            }
        };
        if !address.contains('@') {
            return Err(Fault::business(format!(
                "Email address {address} is not valid."
            )));
        }
        next.insert("EmailStatus".into(), Value::String("EmailSent".into()));
        next.insert("BillEmail".into(), json!({"Address": address}));
        next.insert(
            "DeliveryInfo".into(),
            json!({"DeliveryType": "Email", "DeliveryTime": metadata_time(now)}),
        );
        touch(&mut next, now);
        self.save(entity, id, next)
    }

    /// The first transaction whose lines link to this one (a payment applied to an invoice…).
    fn linked_from(&self, entity: &str, id: u64) -> Option<String> {
        let id_text = id.to_string();
        for linker in ["Payment", "BillPayment", "Deposit"] {
            for txn in self.all_named(linker) {
                let links = txn
                    .get("Line")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .flat_map(|line| {
                        line.get("LinkedTxn")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                    });
                for link in links {
                    if fields::text(link, "TxnType") == Some(entity)
                        && fields::text(link, "TxnId") == Some(&id_text)
                    {
                        return Some(format!("{linker} {}", fields::id(txn)));
                    }
                }
            }
        }
        None
    }

    /// 6140: another document of the same type already carries this DocNumber, unless the
    /// request says `include=allowduplicatedocnum`.
    fn check_doc_number(
        &self,
        entity: &'static EntityType,
        object: &Map<String, Value>,
        own_id: Option<u64>,
        options: WriteOptions,
    ) -> Result<(), Fault> {
        if !entity.unique_doc_number || options.allow_duplicate_doc_number {
            return Ok(());
        }
        let Some(number) = object
            .get("DocNumber")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
        else {
            return Ok(());
        };
        let taken = self.all(entity).find(|other| {
            Some(fields::id(other)) != own_id
                && fields::text(other, "DocNumber").is_some_and(|n| n.trim() == number)
        });
        match taken {
            Some(other) => Err(Fault::duplicate_doc_number(
                number,
                entity.name,
                fields::id(other),
            )),
            None => Ok(()),
        }
    }

    /// Every `…Ref` in the object must name an existing, active entity.
    fn check_references(&self, object: &Map<String, Value>) -> Result<(), Fault> {
        for (field, value) in object {
            if field.ends_with("Ref") {
                if let (Some(target), Some(id)) = (
                    referenced_type(field, object),
                    value.get("value").and_then(Value::as_str),
                ) {
                    let Some(target_type) = entity_types::by_name(target) else {
                        continue;
                    };
                    match self.get_by_text(target_type, id) {
                        None => return Err(Fault::invalid_reference(field, id)),
                        Some(found) if !fields::is_active(found) => {
                            return Err(Fault::not_found(target, id).at(field));
                        }
                        Some(_) => {}
                    }
                }
                continue;
            }
            match value {
                Value::Object(inner) => self.check_references(inner)?,
                Value::Array(items) => {
                    for item in items {
                        if let Value::Object(inner) = item {
                            self.check_references(inner)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn name_taken(&self, types: &[&str], field: &str, name: &str) -> bool {
        types.iter().any(|t| {
            self.all_named(t).any(|other| {
                fields::is_active(other)
                    && fields::text(other, field)
                        .is_some_and(|n| n.trim().eq_ignore_ascii_case(name.trim()))
            })
        })
    }

    /// Fills what QuickBooks fills and checks what it checks, for a new or updated entity.
    fn complete(
        &mut self,
        entity: &'static EntityType,
        object: &mut Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<(), Fault> {
        object.insert("domain".into(), Value::String("QBO".into()));
        object.insert("sparse".into(), Value::Bool(false));
        let today = company_time(now)
            .date_naive()
            .format("%Y-%m-%d")
            .to_string();
        if entity.name == "Attachable" {
            return self.check_attached_entities(object);
        }
        match entity.family {
            Family::NameList => self.complete_name(entity, object)?,
            Family::Transaction => {
                if !has_value(object, "TxnDate") && entity.name != "TimeActivity" {
                    object.insert("TxnDate".into(), Value::String(today));
                }
                object
                    .entry("CurrencyRef")
                    .or_insert_with(|| json!({"value": "USD", "name": "United States Dollar"}));
                self.complete_transaction(entity, object)?;
            }
        }
        Ok(())
    }

    fn complete_name(
        &self,
        entity: &'static EntityType,
        object: &mut Map<String, Value>,
    ) -> Result<(), Fault> {
        object.entry("Active").or_insert(Value::Bool(true));
        match entity.name {
            "Customer" | "Vendor" | "Employee" => {
                if !has_value(object, "DisplayName") {
                    let parts: Vec<&str> =
                        ["Title", "GivenName", "MiddleName", "FamilyName", "Suffix"]
                            .iter()
                            .filter_map(|f| object.get(*f).and_then(Value::as_str))
                            .filter(|s| !s.is_empty())
                            .collect();
                    let name = if parts.is_empty() {
                        object
                            .get("CompanyName")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    } else {
                        parts.join(" ")
                    };
                    object.insert("DisplayName".into(), Value::String(name));
                }
                let name = object
                    .get("DisplayName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if fields::is_active(&Value::Object(object.clone()))
                    && self.name_taken(&["Customer", "Vendor", "Employee"], "DisplayName", &name)
                {
                    return Err(Fault::duplicate_name(&name));
                }
                object.insert("PrintOnCheckName".into(), Value::String(name.clone()));
                if entity.name != "Employee" {
                    object.insert("Balance".into(), money(0.0));
                }
                if entity.name == "Customer" {
                    object.insert("FullyQualifiedName".into(), Value::String(name));
                    object.insert("BalanceWithJobs".into(), money(0.0));
                    object.entry("Job").or_insert(Value::Bool(false));
                    object.entry("BillWithParent").or_insert(Value::Bool(false));
                    object.entry("Taxable").or_insert(Value::Bool(false));
                    object
                        .entry("PreferredDeliveryMethod")
                        .or_insert(Value::String("Print".into()));
                }
                if entity.name != "Employee" {
                    object
                        .entry("CurrencyRef")
                        .or_insert_with(|| json!({"value": "USD", "name": "United States Dollar"}));
                }
            }
            _ => {
                let name = object
                    .get("Name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if fields::is_active(&Value::Object(object.clone()))
                    && self.name_taken(&[entity.name], "Name", &name)
                {
                    return Err(Fault::duplicate_name(&name));
                }
                if entity.properties.contains_key("FullyQualifiedName") {
                    object.insert("FullyQualifiedName".into(), Value::String(name));
                }
                if entity.name == "Account" {
                    let account_type = object
                        .get("AccountType")
                        .and_then(Value::as_str)
                        .unwrap_or("Expense")
                        .to_owned();
                    let Some(classification) = ledger::classification(&account_type) else {
                        return Err(Fault::validation(
                            "2170",
                            "Invalid Enumeration",
                            format!("Invalid Enumeration : {account_type}"),
                        )
                        .at("AccountType"));
                    };
                    object.insert("AccountType".into(), Value::String(account_type));
                    object.insert(
                        "Classification".into(),
                        Value::String(classification.into()),
                    );
                    object.entry("SubAccount").or_insert(Value::Bool(false));
                    object.insert("CurrentBalance".into(), money(0.0));
                    object.insert("CurrentBalanceWithSubAccounts".into(), money(0.0));
                    object
                        .entry("CurrencyRef")
                        .or_insert_with(|| json!({"value": "USD", "name": "United States Dollar"}));
                }
            }
        }
        Ok(())
    }

    fn complete_transaction(
        &mut self,
        entity: &'static EntityType,
        object: &mut Map<String, Value>,
    ) -> Result<(), Fault> {
        let mut total = 0.0;
        let mut debits = 0.0;
        let mut credits = 0.0;
        if let Some(Value::Array(lines)) = object.get_mut("Line") {
            for (index, line) in lines.iter_mut().enumerate() {
                let Some(line) = line.as_object_mut() else {
                    return Err(Fault::required("Line.DetailType"));
                };
                line.entry("Id")
                    .or_insert_with(|| Value::String((index + 1).to_string()));
                line.insert("LineNum".into(), Value::from(index + 1));
                let detail_type = line
                    .get("DetailType")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                // Payment, bill payment and deposit lines link documents and carry no detail.
                let linking = matches!(entity.name, "Payment" | "BillPayment" | "Deposit");
                let detail_type = match detail_type {
                    Some(detail_type) => detail_type,
                    None if linking => String::new(),
                    None => return Err(Fault::required("Line.DetailType")),
                };
                if let Some(fault) = unit_price_mismatch(line, &detail_type) {
                    return Err(fault);
                }
                if detail_type == "SalesItemLineDetail" && !has_value(line, "Amount") {
                    let detail = line
                        .get("SalesItemLineDetail")
                        .cloned()
                        .unwrap_or(Value::Null);
                    let computed = amount(&detail, "Qty") * amount(&detail, "UnitPrice");
                    line.insert("Amount".into(), money(computed));
                }
                if !has_value(line, "Amount") && detail_type != "DescriptionOnly" {
                    return Err(Fault::required("Line.Amount"));
                }
                let line_amount = amount(&Value::Object(line.clone()), "Amount");
                line.insert("Amount".into(), money(line_amount));
                if detail_type == "JournalEntryLineDetail" {
                    match fields::text(
                        &Value::Object(line.clone()),
                        "JournalEntryLineDetail.PostingType",
                    ) {
                        Some("Debit") => debits += line_amount,
                        Some("Credit") => credits += line_amount,
                        _ => {
                            return Err(Fault::required("Line.JournalEntryLineDetail.PostingType"));
                        }
                    }
                } else {
                    total += line_amount;
                }
            }
        }
        total = cents(total);
        match entity.name {
            "JournalEntry" => {
                if cents(debits - credits) != 0.0 {
                    return Err(Fault::business(format!(
                        "You must enter equal debit and credit amounts. Debits {debits:.2}, credits {credits:.2}."
                    )));
                }
                object.insert("TotalAmt".into(), money(debits));
            }
            "Payment" | "BillPayment" => {
                let total_amount = amount(&Value::Object(object.clone()), "TotalAmt");
                object.insert("TotalAmt".into(), money(total_amount));
                if entity.name == "Payment" {
                    object.insert("UnappliedAmt".into(), money(total_amount - total));
                    if !has_value(object, "DepositToAccountRef")
                        && let Some(account) = ledger::account_named(self, "Undeposited Funds")
                    {
                        object.insert(
                            "DepositToAccountRef".into(),
                            json!({"value": account.to_string()}),
                        );
                    }
                }
                if total > total_amount + 0.005 {
                    return Err(Fault::business(
                        "The amount applied is more than the payment total.",
                    ));
                }
            }
            "Transfer" | "TimeActivity" => {}
            _ => {
                if entity.sales_document {
                    if let Some(Value::Array(lines)) = object.get_mut("Line") {
                        lines.push(json!({"Amount": money(total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}));
                    }
                    if !has_value(object, "DocNumber") {
                        object.insert(
                            "DocNumber".into(),
                            Value::String(self.allocate_doc_number()),
                        );
                    }
                }
                object.insert("TotalAmt".into(), money(total));
                if matches!(entity.name, "Invoice" | "Bill") {
                    object.insert("Balance".into(), money(total));
                    if !has_value(object, "DueDate") {
                        let days = self.term_days(object);
                        let due = object
                            .get("TxnDate")
                            .and_then(Value::as_str)
                            .and_then(|d| date_plus(d, days));
                        if let Some(due) = due {
                            object.insert("DueDate".into(), Value::String(due));
                        }
                    }
                }
                if matches!(entity.name, "Invoice" | "Estimate") {
                    object
                        .entry("EmailStatus")
                        .or_insert(Value::String("NotSet".into()));
                }
                if entity.name == "CreditMemo" {
                    object.insert("RemainingCredit".into(), money(total));
                    object.insert("Balance".into(), money(total));
                }
            }
        }
        Ok(())
    }

    fn term_days(&self, object: &Map<String, Value>) -> i64 {
        let term = object
            .get("SalesTermRef")
            .and_then(|r| r.get("value"))
            .and_then(Value::as_str);
        let Some(term_type) = entity_types::by_name("Term") else {
            return 30;
        };
        term.and_then(|id| self.get_by_text(term_type, id))
            .and_then(|t| t.get("DueDays").and_then(Value::as_i64))
            .unwrap_or(30)
    }

    /// Recomputes what QuickBooks derives from the transactions: open balances of invoices
    /// and bills, customer and vendor balances, balance-sheet account balances.
    pub(crate) fn recompute_balances(&mut self) {
        if self.bulk_loading {
            return;
        }
        let mut paid: std::collections::HashMap<(&'static str, u64), f64> = Default::default();
        for (linker, target) in [("Payment", "Invoice"), ("BillPayment", "Bill")] {
            for txn in self.all_named(linker) {
                for line in txn
                    .get("Line")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let line_amount = amount(line, "Amount");
                    for link in line
                        .get("LinkedTxn")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if fields::text(link, "TxnType") == Some(target)
                            && let Some(id) =
                                fields::text(link, "TxnId").and_then(|t| t.parse().ok())
                        {
                            *paid.entry((target, id)).or_default() += line_amount;
                        }
                    }
                }
            }
        }
        let mut customer_balances: std::collections::HashMap<u64, f64> = Default::default();
        let mut vendor_balances: std::collections::HashMap<u64, f64> = Default::default();
        for (name, party) in [("Invoice", "CustomerRef"), ("Bill", "VendorRef")] {
            if let Some(map) = self.entities.get_mut(name) {
                for (id, txn) in map.iter_mut() {
                    let open = cents(
                        amount(txn, "TotalAmt") - paid.get(&(name, *id)).copied().unwrap_or(0.0),
                    )
                    .max(0.0);
                    if let Some(obj) = txn.as_object_mut() {
                        obj.insert("Balance".into(), money(open));
                    }
                    if let Some(who) = fields::reference(txn, party) {
                        let balances = if name == "Invoice" {
                            &mut customer_balances
                        } else {
                            &mut vendor_balances
                        };
                        *balances.entry(who).or_default() += open;
                    }
                }
            }
        }
        for txn in self.all_named("Payment") {
            if let Some(who) = fields::reference(txn, "CustomerRef") {
                *customer_balances.entry(who).or_default() -= amount(txn, "UnappliedAmt");
            }
        }
        for txn in self.all_named("CreditMemo") {
            if let Some(who) = fields::reference(txn, "CustomerRef") {
                *customer_balances.entry(who).or_default() -= amount(txn, "RemainingCredit");
            }
        }
        for (name, balances) in [
            ("Customer", &customer_balances),
            ("Vendor", &vendor_balances),
        ] {
            if let Some(map) = self.entities.get_mut(name) {
                for (id, party) in map.iter_mut() {
                    let balance = money(balances.get(id).copied().unwrap_or(0.0));
                    if let Some(obj) = party.as_object_mut() {
                        obj.insert("Balance".into(), balance.clone());
                        if name == "Customer" {
                            obj.insert("BalanceWithJobs".into(), balance);
                        }
                    }
                }
            }
        }
        let account_balances = ledger::account_balances(self, None);
        if let Some(map) = self.entities.get_mut("Account") {
            for (id, account) in map.iter_mut() {
                let balance = account_balances.get(id).copied().unwrap_or(0.0);
                let shown = match fields::text(account, "Classification") {
                    Some("Asset") => balance,
                    Some("Liability" | "Equity") => -balance,
                    _ => 0.0,
                };
                if let Some(obj) = account.as_object_mut() {
                    obj.insert("CurrentBalance".into(), money(shown));
                    obj.insert("CurrentBalanceWithSubAccounts".into(), money(shown));
                }
            }
        }
    }
}

/// 6070: an item line whose `Amount` is not `UnitPrice × Qty` rounded half-up to cents.
/// Checked only when the line gives both (and they are not both zero, python-quickbooks'
/// defaults), as QuickBooks computes the missing one otherwise.
fn unit_price_mismatch(line: &Map<String, Value>, detail_type: &str) -> Option<Fault> {
    if !matches!(
        detail_type,
        "SalesItemLineDetail" | "ItemBasedExpenseLineDetail"
    ) {
        return None;
    }
    let detail = line.get(detail_type)?;
    let given = |field: &str| match detail.get(field) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let (qty, price) = (given("Qty")?, given("UnitPrice")?);
    if qty == 0.0 && price == 0.0 || !has_value(line, "Amount") {
        return None;
    }
    let supplied = amount(&Value::Object(line.clone()), "Amount");
    if (cents_half_up(qty * price) - cents(supplied)).abs() < 0.005 {
        return None;
    }
    Some(Fault::amount_mismatch(supplied))
}
