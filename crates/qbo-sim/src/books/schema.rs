//! The entity schema (`schema.toml`, data loaded once): every property QuickBooks accepts per
//! entity, its type, read-only, filterable and sortable marks, enums and the operators each
//! type allows. Writes are checked against it the way Intuit's deserializer checks them
//! (error 2010, naming the property), and query properties are resolved through it (4001 for
//! what is not queryable). Property names in queries are case-insensitive, as at Intuit.

use crate::fault::Fault;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

const SOURCE: &str = include_str!("schema.toml");

/// The type of one property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropType {
    Id,
    Text,
    Decimal,
    Integer,
    Boolean,
    Date,
    DateTime,
    Ref,
    Any,
    Enum(String),
    Complex(String),
}

impl PropType {
    /// The key of `[operators]` for a filterable property of this type.
    fn operator_key(&self) -> &str {
        match self {
            PropType::Id => "id",
            PropType::Text => "string",
            PropType::Decimal => "decimal",
            PropType::Integer => "integer",
            PropType::Boolean => "boolean",
            PropType::Date => "date",
            PropType::DateTime => "datetime",
            PropType::Ref => "ref",
            PropType::Enum(_) => "enum",
            PropType::Any | PropType::Complex(_) => "",
        }
    }
}

/// One property of an entity or complex type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prop {
    pub ty: PropType,
    pub list: bool,
    pub read_only: bool,
    pub filter: bool,
    pub sort: bool,
}

fn parse_prop(spec: &str) -> Result<Prop, String> {
    let mut words = spec.split_whitespace();
    let ty = words.next().ok_or_else(|| "empty property".to_owned())?;
    let (ty, list) = match ty.strip_suffix("[]") {
        Some(inner) => (inner, true),
        None => (ty, false),
    };
    let ty = match ty {
        "id" => PropType::Id,
        "string" => PropType::Text,
        "decimal" => PropType::Decimal,
        "integer" => PropType::Integer,
        "boolean" => PropType::Boolean,
        "date" => PropType::Date,
        "datetime" => PropType::DateTime,
        "ref" => PropType::Ref,
        "any" => PropType::Any,
        other => match other.strip_prefix("enum:") {
            Some(name) => PropType::Enum(name.to_owned()),
            None => PropType::Complex(other.to_owned()),
        },
    };
    let mut prop = Prop {
        ty,
        list,
        read_only: false,
        filter: false,
        sort: false,
    };
    for flag in words {
        match flag {
            "ro" => prop.read_only = true,
            "f" => prop.filter = true,
            "s" => prop.sort = true,
            other => return Err(format!("unknown flag {other} in {spec:?}")),
        }
    }
    Ok(prop)
}

#[derive(Deserialize)]
struct RawEntity {
    family: String,
    #[serde(default)]
    voidable: bool,
    #[serde(default)]
    sales_document: bool,
    #[serde(default)]
    duplicate_doc_number: bool,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    sparse_required: Vec<String>,
    #[serde(default)]
    lines: Vec<String>,
    properties: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawSchema {
    operators: HashMap<String, Vec<String>>,
    enums: HashMap<String, Vec<String>>,
    common: BTreeMap<String, String>,
    transaction: BTreeMap<String, String>,
    complex: HashMap<String, BTreeMap<String, String>>,
    entity: BTreeMap<String, RawEntity>,
}

/// One entity as the schema describes it.
#[derive(Debug)]
pub struct EntitySchema {
    pub name: String,
    pub transaction: bool,
    pub voidable: bool,
    pub sales_document: bool,
    pub duplicate_doc_number: bool,
    pub required: Vec<String>,
    pub sparse_required: Vec<String>,
    /// The `DetailType`s its lines may take (empty: lines carry no detail).
    pub lines: Vec<String>,
    pub properties: BTreeMap<String, Prop>,
}

/// The whole schema.
#[derive(Debug)]
pub struct Schema {
    operators: HashMap<String, Vec<String>>,
    enums: HashMap<String, Vec<String>>,
    complex: HashMap<String, BTreeMap<String, Prop>>,
    pub entities: Vec<EntitySchema>,
}

fn props(raw: &BTreeMap<String, String>) -> Result<BTreeMap<String, Prop>, String> {
    raw.iter()
        .map(|(name, spec)| Ok((name.clone(), parse_prop(spec)?)))
        .collect()
}

impl Schema {
    fn parse(text: &str) -> Result<Schema, String> {
        let raw: RawSchema = toml::from_str(text).map_err(|e| e.to_string())?;
        let common = props(&raw.common)?;
        let transaction = props(&raw.transaction)?;
        let complex = raw
            .complex
            .iter()
            .map(|(name, p)| Ok((name.clone(), props(p)?)))
            .collect::<Result<HashMap<_, _>, String>>()?;
        let mut entities = Vec::new();
        for (name, entity) in raw.entity {
            // An attachment is deleted like a transaction but has none of a transaction's
            // shared properties (no TxnDate, no currency).
            let (is_transaction, shared) = match entity.family.as_str() {
                "transaction" => (true, true),
                "attachment" => (true, false),
                "names" => (false, false),
                other => return Err(format!("{name}: unknown family {other}")),
            };
            let mut properties = common.clone();
            if shared {
                properties.extend(transaction.clone());
            }
            properties.extend(props(&entity.properties)?);
            entities.push(EntitySchema {
                name,
                transaction: is_transaction,
                voidable: entity.voidable,
                sales_document: entity.sales_document,
                duplicate_doc_number: entity.duplicate_doc_number,
                required: entity.required,
                sparse_required: entity.sparse_required,
                lines: entity.lines,
                properties,
            });
        }
        let schema = Schema {
            operators: raw.operators,
            enums: raw.enums,
            complex,
            entities,
        };
        schema.check()?;
        Ok(schema)
    }

    /// Every type and enum a property names exists.
    fn check(&self) -> Result<(), String> {
        let all = self
            .entities
            .iter()
            .flat_map(|e| e.properties.iter())
            .chain(self.complex.values().flat_map(|p| p.iter()));
        for (name, prop) in all {
            match &prop.ty {
                PropType::Enum(e) if !self.enums.contains_key(e) => {
                    return Err(format!("{name}: no enum {e}"));
                }
                PropType::Complex(c) if !self.complex.contains_key(c) => {
                    return Err(format!("{name}: no complex type {c}"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The operators a filterable property of this type allows.
    pub fn operators(&self, prop: &Prop) -> &[String] {
        self.operators
            .get(prop.ty.operator_key())
            .map_or(&[], Vec::as_slice)
    }

    /// Resolves a dotted query property (`metadata.lastupdatedtime`) in any letter case to
    /// its spelling in the schema and its definition.
    pub fn resolve<'a>(
        &'a self,
        entity: &'a EntitySchema,
        path: &str,
    ) -> Option<(String, &'a Prop)> {
        let mut steps = path.split('.');
        let first = steps.next()?;
        let (mut name, mut prop) = find(&entity.properties, first)?;
        let mut canonical = name.to_owned();
        for step in steps {
            match &prop.ty {
                PropType::Complex(c) => {
                    (name, prop) = find(self.complex.get(c)?, step)?;
                }
                // `CustomerRef.value` is the reference itself; `EntityRef.Type` its type.
                PropType::Ref if step.eq_ignore_ascii_case("value") => {
                    name = "value";
                }
                PropType::Ref if step.eq_ignore_ascii_case("type") => {
                    name = "type";
                }
                _ => return None,
            }
            canonical.push('.');
            canonical.push_str(name);
        }
        Some((canonical, prop))
    }

    /// Checks a write body as Intuit's deserializer does: unknown properties and values of
    /// the wrong type are refused with 2010, naming the property.
    pub fn check_write(
        &self,
        entity: &EntitySchema,
        body: &Map<String, Value>,
    ) -> Result<(), Fault> {
        self.check_object(&entity.name, &entity.properties, body, "")?;
        if let Some(Value::Array(lines)) = body.get("Line") {
            for line in lines {
                let detail = line.get("DetailType").and_then(Value::as_str);
                if let Some(detail) = detail.filter(|d| !d.is_empty())
                    && !entity.lines.iter().any(|l| l == detail)
                {
                    return Err(invalid(
                        "Line.DetailType",
                        format!(
                            "Property Name:DetailType {detail} is not supported for {} lines; specified is unsupported or invalid",
                            entity.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_object(
        &self,
        class: &str,
        properties: &BTreeMap<String, Prop>,
        object: &Map<String, Value>,
        path: &str,
    ) -> Result<(), Fault> {
        for (key, value) in object {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let Some(prop) = properties.get(key) else {
                return Err(invalid(
                    &at,
                    format!(
                        "Property Name:Unrecognized field \"{key}\" (class com.intuit.schema.finance.v3.{class}), not marked as ignorable specified is unsupported or invalid"
                    ),
                ));
            };
            if prop.list {
                match value {
                    Value::Null => {}
                    Value::Array(items) => {
                        for item in items {
                            self.check_value(prop, item, &at)?;
                        }
                    }
                    _ => {
                        return Err(invalid(
                            &at,
                            format!(
                                "Property Name:Can not deserialize instance of java.util.ArrayList out of {} token specified is unsupported or invalid",
                                token(value)
                            ),
                        ));
                    }
                }
            } else {
                self.check_value(prop, value, &at)?;
            }
        }
        Ok(())
    }

    fn check_value(&self, prop: &Prop, value: &Value, at: &str) -> Result<(), Fault> {
        // Jackson reads null, and an empty string for anything but a string, as "not set".
        if value.is_null() || (value.as_str() == Some("") && prop.ty != PropType::Text) {
            return Ok(());
        }
        let construct = |java: &str| {
            let shown = match value {
                Value::String(s) => format!("String value '{s}'"),
                other => format!("{} token", token(other)),
            };
            invalid(
                at,
                format!(
                    "Property Name:Can not construct instance of {java} from {shown}: not a valid representation specified is unsupported or invalid"
                ),
            )
        };
        let ok = match &prop.ty {
            PropType::Any => true,
            PropType::Id | PropType::Text => !value.is_object() && !value.is_array(),
            PropType::Decimal => match value {
                Value::Number(_) => true,
                Value::String(s) => s.trim().parse::<f64>().is_ok_and(f64::is_finite),
                _ => false,
            },
            PropType::Integer => match value {
                Value::Number(n) => n.is_i64() || n.is_u64(),
                Value::String(s) => s.trim().parse::<i64>().is_ok(),
                _ => false,
            },
            PropType::Boolean => match value {
                Value::Bool(_) => true,
                Value::String(s) => s == "true" || s == "false",
                _ => false,
            },
            PropType::Date => value.as_str().is_some_and(is_date),
            PropType::DateTime => value.as_str().is_some_and(is_date_time),
            PropType::Ref => return self.check_ref(value, at),
            PropType::Enum(name) => {
                let allowed = self.enums.get(name).map_or(&[][..], Vec::as_slice);
                if value
                    .as_str()
                    .is_some_and(|v| allowed.iter().any(|a| a == v))
                {
                    true
                } else {
                    return Err(invalid(
                        at,
                        format!(
                            "Property Name:Can not deserialize value of type com.intuit.schema.finance.v3.{name}Enum from {}: value not one of declared Enum instance names: [{}] specified is unsupported or invalid",
                            match value {
                                Value::String(s) => format!("String \"{s}\""),
                                other => format!("{} token", token(other)),
                            },
                            allowed.join(", ")
                        ),
                    ));
                }
            }
            PropType::Complex(name) => {
                let Some(object) = value.as_object() else {
                    return Err(invalid(
                        at,
                        format!(
                            "Property Name:Can not deserialize instance of com.intuit.schema.finance.v3.{name} out of {} token specified is unsupported or invalid",
                            token(value)
                        ),
                    ));
                };
                let fields = self.complex.get(name).cloned().unwrap_or_default();
                return self.check_object(name, &fields, object, at);
            }
        };
        if ok {
            return Ok(());
        }
        Err(construct(match prop.ty {
            PropType::Decimal => "java.math.BigDecimal",
            PropType::Integer => "java.math.BigInteger",
            PropType::Boolean => "java.lang.Boolean",
            PropType::Date => "java.util.Date",
            PropType::DateTime => "java.util.Date",
            _ => "java.lang.String",
        }))
    }

    fn check_ref(&self, value: &Value, at: &str) -> Result<(), Fault> {
        let Some(object) = value.as_object() else {
            return Err(invalid(
                at,
                format!(
                    "Property Name:Can not deserialize instance of com.intuit.schema.finance.v3.ReferenceType out of {} token specified is unsupported or invalid",
                    token(value)
                ),
            ));
        };
        for (key, inner) in object {
            if !matches!(key.as_str(), "value" | "name" | "type") {
                return Err(invalid(
                    &format!("{at}.{key}"),
                    format!(
                        "Property Name:Unrecognized field \"{key}\" (class com.intuit.schema.finance.v3.ReferenceType), not marked as ignorable specified is unsupported or invalid"
                    ),
                ));
            }
            if inner.is_object() || inner.is_array() {
                return Err(invalid(
                    &format!("{at}.{key}"),
                    format!(
                        "Property Name:Can not deserialize instance of java.lang.String out of {} token specified is unsupported or invalid",
                        token(inner)
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn find<'a>(properties: &'a BTreeMap<String, Prop>, name: &str) -> Option<(&'a str, &'a Prop)> {
    properties
        .get_key_value(name)
        .or_else(|| {
            properties
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
        })
        .map(|(key, prop)| (key.as_str(), prop))
}

fn token(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "START_OBJECT",
        Value::Array(_) => "START_ARRAY",
        Value::String(_) => "VALUE_STRING",
        Value::Number(_) => "VALUE_NUMBER",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Null => "VALUE_NULL",
    }
}

fn invalid(element: &str, detail: String) -> Fault {
    Fault::validation(
        "2010",
        "Request has invalid or unsupported property",
        detail,
    )
    .at(element)
}

/// `YYYY-MM-DD`, optionally followed by a time (`T…`) or a zone, as xs:date allows.
fn is_date(text: &str) -> bool {
    let (date, rest) = text.split_at(text.len().min(10));
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok()
        && (rest.is_empty() || rest.starts_with(['T', '+', '-', 'Z']))
}

fn is_date_time(text: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(text).is_ok()
        || chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").is_ok()
        || (text.len() == 10 && is_date(text))
}

/// The schema, parsed once.
pub static SCHEMA: LazyLock<Schema> = LazyLock::new(|| match Schema::parse(SOURCE) {
    Ok(schema) => schema,
    // The file ships inside the binary and a unit test parses it: this cannot happen.
    Err(error) => panic!("qbo-sim's schema.toml is invalid: {error}"),
});

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entity(name: &str) -> &'static EntitySchema {
        SCHEMA
            .entities
            .iter()
            .find(|e| e.name == name)
            .expect("entity")
    }

    #[test]
    fn the_schema_parses_and_names_every_type_it_uses() {
        let schema = Schema::parse(SOURCE).expect("valid schema");
        assert_eq!(schema.entities.len(), 26);
    }

    #[test]
    fn writes_are_checked_like_intuits_deserializer() {
        let invoice = entity("Invoice");
        let check = |body: Value| SCHEMA.check_write(invoice, body.as_object().expect("object"));
        let fine = json!({"CustomerRef": {"value": "1", "name": "x"}, "TxnDate": "2025-12-31", "TotalAmt": "",
            "Line": [{"Amount": "10.5", "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"Qty": 1, "UnitPrice": 10.5, "ItemRef": {"value": 1}}}]});
        assert!(check(fine).is_ok());
        for (body, element) in [
            (json!({"Bogus": 1}), "Bogus"),
            (json!({"Line": [{"Amount": "abc"}]}), "Line.Amount"),
            (json!({"TxnDate": "31/12/2025"}), "TxnDate"),
            (
                json!({"Line": [{"DetailType": "BogusDetail"}]}),
                "Line.DetailType",
            ),
            (
                json!({"Line": [{"DetailType": "JournalEntryLineDetail"}]}),
                "Line.DetailType",
            ),
            (json!({"CustomerRef": "1"}), "CustomerRef"),
            (json!({"BillAddr": {"Town": "x"}}), "BillAddr.Town"),
        ] {
            let fault = check(body).expect_err(element);
            assert_eq!((fault.code, fault.element.as_str()), ("2010", element));
        }
    }

    #[test]
    fn query_properties_resolve_in_any_case() {
        let customer = entity("Customer");
        let (name, prop) = SCHEMA
            .resolve(customer, "metadata.lastupdatedtime")
            .expect("resolves");
        assert_eq!(name, "MetaData.LastUpdatedTime");
        assert!(prop.filter && prop.sort);
        assert!(
            !SCHEMA
                .resolve(customer, "SyncToken")
                .expect("known")
                .1
                .filter
        );
        assert!(SCHEMA.resolve(customer, "Nonsense").is_none());
        let balance = SCHEMA.resolve(customer, "Balance").expect("known").1;
        assert!(!SCHEMA.operators(balance).iter().any(|o| o == "LIKE"));
    }
}
