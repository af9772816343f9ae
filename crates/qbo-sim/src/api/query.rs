//! QuickBooks' query language: a real tokenizer and parser for
//! `SELECT * | COUNT(*) | props FROM Entity [WHERE p op v [AND …]] [ORDERBY p [ASC|DESC]]
//! [STARTPOSITION n] [MAXRESULTS n]`, Intuit's limits (1000 rows at most, 100 by default) and
//! its refusals (no OR, no JOIN, no GROUP BY, case-sensitive entity names, only the
//! properties the schema marks filterable or sortable, only the operators their type allows),
//! and the evaluation against a company's books. It must never panic, whatever it is given.

use crate::books::entity_types::{self, EntityType, Family};
use crate::books::schema::SCHEMA;
use crate::books::{Books, fields};
use crate::clock::parse_time;
use crate::fault::Fault;
use serde_json::{Map, Value, json};
use std::cmp::Ordering;

/// Rows when `MAXRESULTS` is absent.
pub const DEFAULT_MAX_RESULTS: usize = 100;
/// The most rows one query may ask for.
pub const MAX_RESULTS_LIMIT: usize = 1000;

/// What a query selects.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    All { extra: Vec<String> },
    Count,
    Properties(Vec<String>),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Lt,
    Gt,
    Le,
    Ge,
    Like,
    In,
}

/// A literal in a condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Number(f64),
    Bool(bool),
}

/// `property op value(s)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub property: String,
    pub op: Op,
    pub values: Vec<Literal>,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub selection: Selection,
    pub entity: String,
    pub conditions: Vec<Condition>,
    pub order: Vec<(String, bool)>,
    pub start_position: usize,
    pub max_results: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Number(String),
    Symbol(&'static str),
}

#[derive(Debug, Clone)]
struct Located {
    token: Token,
    column: usize,
}

fn tokenize(text: &str) -> Result<Vec<Located>, Fault> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push(Located {
                token: Token::Word(chars[start..i].iter().collect()),
                column,
            });
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Located {
                token: Token::Number(chars[start..i].iter().collect()),
                column,
            });
            continue;
        }
        if c == '\'' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(Fault::query_parse(format!(
                            "Lexical error at line 1, column {}.  Encountered: <EOF> after : \"'{value}\"",
                            chars.len() + 1
                        )));
                    }
                    // A backslash escapes a quote or a backslash (Intuit: "use backslash to
                    // escape special characters"); before anything else it is itself.
                    Some('\\') if matches!(chars.get(i + 1), Some('\'' | '\\')) => {
                        value.push(chars[i + 1]);
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        value.push(*other);
                        i += 1;
                    }
                }
            }
            out.push(Located {
                token: Token::Text(value),
                column,
            });
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let symbol = match (two.as_str(), c) {
            ("<=", _) => Some("<="),
            (">=", _) => Some(">="),
            ("!=", _) => Some("!="),
            ("<>", _) => Some("<>"),
            (_, '=') => Some("="),
            (_, '<') => Some("<"),
            (_, '>') => Some(">"),
            (_, '*') => Some("*"),
            (_, ',') => Some(","),
            (_, '(') => Some("("),
            (_, ')') => Some(")"),
            _ => None,
        };
        let Some(symbol) = symbol else {
            return Err(Fault::query_parse(format!(
                "Lexical error at line 1, column {column}.  Encountered: \"{c}\" ({}), after : \"\"",
                c as u32
            )));
        };
        i += symbol.len();
        out.push(Located {
            token: Token::Symbol(symbol),
            column,
        });
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Located>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|t| &t.token)
    }

    fn unexpected(&self, expecting: &str) -> Fault {
        match self.tokens.get(self.at) {
            Some(located) => {
                let shown = match &located.token {
                    Token::Word(w) => w.clone(),
                    Token::Text(t) => format!("'{t}'"),
                    Token::Number(n) => n.clone(),
                    Token::Symbol(s) => (*s).to_owned(),
                };
                Fault::query_parse(format!(
                    "Encountered \" \"{shown} \"\" at line 1, column {}.\nWas expecting {expecting}",
                    located.column
                ))
            }
            None => Fault::query_parse(format!(
                "Encountered \"<EOF>\" at end of query.\nWas expecting {expecting}"
            )),
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), Fault> {
        if self.keyword(word) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("\"{word}\"")))
        }
    }

    fn symbol(&mut self, symbol: &str) -> bool {
        if matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), Fault> {
        if self.symbol(symbol) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("\"{symbol}\"")))
        }
    }

    fn identifier(&mut self) -> Result<String, Fault> {
        match self.peek() {
            Some(Token::Word(w)) if !is_reserved(w) => {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            _ => Err(self.unexpected("<IDENTIFIER>")),
        }
    }

    fn number(&mut self, what: &str) -> Result<i64, Fault> {
        match self.peek() {
            Some(Token::Number(n)) => {
                let parsed = n.parse::<i64>().map_err(|_| {
                    Fault::query_invalid(format!("{what} must be a whole number, not {n}"))
                });
                self.at += 1;
                parsed
            }
            _ => Err(self.unexpected("<INTEGER>")),
        }
    }

    fn literal(&mut self) -> Result<Literal, Fault> {
        let literal = match self.peek() {
            Some(Token::Text(t)) => Literal::Text(t.clone()),
            Some(Token::Number(n)) => match n.parse::<f64>() {
                Ok(value) if value.is_finite() => Literal::Number(value),
                _ => return Err(self.unexpected("<NUMBER>")),
            },
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            _ => return Err(self.unexpected("<STRING_LITERAL> | <NUMBER> | true | false")),
        };
        self.at += 1;
        Ok(literal)
    }
}

const RESERVED: &[&str] = &[
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "orderby",
    "order",
    "by",
    "asc",
    "desc",
    "startposition",
    "maxresults",
    "in",
    "like",
    "count",
    "join",
    "group",
    "having",
    "limit",
    "offset",
    "union",
    "true",
    "false",
];

/// Whether `word` is a keyword of the language (any case), never a property or entity name.
pub fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

/// Parses a query, with Intuit's limits.
pub fn parse(text: &str) -> Result<Query, Fault> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        at: 0,
    };
    parser.expect_keyword("select")?;
    let selection = if parser.keyword("count") {
        parser.expect_symbol("(")?;
        parser.expect_symbol("*")?;
        parser.expect_symbol(")")?;
        Selection::Count
    } else if parser.symbol("*") {
        let mut extra = Vec::new();
        while parser.symbol(",") {
            extra.push(parser.identifier()?);
        }
        Selection::All { extra }
    } else {
        let mut properties = vec![parser.identifier()?];
        while parser.symbol(",") {
            properties.push(parser.identifier()?);
        }
        Selection::Properties(properties)
    };
    parser.expect_keyword("from")?;
    let entity = parser.identifier()?;
    let mut query = Query {
        selection,
        entity,
        conditions: Vec::new(),
        order: Vec::new(),
        start_position: 1,
        max_results: DEFAULT_MAX_RESULTS,
    };
    if parser.keyword("where") {
        loop {
            let property = parser.identifier()?;
            let op = if parser.keyword("like") {
                Op::Like
            } else if parser.keyword("in") {
                Op::In
            } else {
                match parser.peek() {
                    Some(Token::Symbol("=")) => Op::Eq,
                    Some(Token::Symbol("<")) => Op::Lt,
                    Some(Token::Symbol(">")) => Op::Gt,
                    Some(Token::Symbol("<=")) => Op::Le,
                    Some(Token::Symbol(">=")) => Op::Ge,
                    _ => {
                        return Err(parser.unexpected(
                            "\"=\" | \"<\" | \">\" | \"<=\" | \">=\" | \"IN\" | \"LIKE\"",
                        ));
                    }
                }
            };
            if !matches!(op, Op::Like | Op::In) {
                parser.at += 1;
            }
            let values = if op == Op::In {
                parser.expect_symbol("(")?;
                let mut values = vec![parser.literal()?];
                while parser.symbol(",") {
                    values.push(parser.literal()?);
                }
                parser.expect_symbol(")")?;
                values
            } else {
                vec![parser.literal()?]
            };
            if op == Op::Like && !matches!(values.first(), Some(Literal::Text(_))) {
                return Err(Fault::query_invalid("LIKE needs a string pattern"));
            }
            query.conditions.push(Condition {
                property,
                op,
                values,
            });
            if !parser.keyword("and") {
                break;
            }
        }
    }
    let ordered = if parser.keyword("orderby") {
        true
    } else if parser.keyword("order") {
        parser.expect_keyword("by")?;
        true
    } else {
        false
    };
    if ordered {
        loop {
            let property = parser.identifier()?;
            let descending = if parser.keyword("desc") {
                true
            } else {
                parser.keyword("asc");
                false
            };
            query.order.push((property, descending));
            if !parser.symbol(",") {
                break;
            }
        }
    }
    if parser.keyword("startposition") {
        let start = parser.number("STARTPOSITION")?;
        if start < 0 {
            return Err(Fault::query_invalid(format!(
                "value {start} is too small. Min allowed value is 0"
            )));
        }
        // Intuit reads STARTPOSITION 0 as the first row, like 1.
        query.start_position = usize::try_from(start.max(1)).unwrap_or(usize::MAX);
    }
    if parser.keyword("maxresults") {
        let max = parser.number("MAXRESULTS")?;
        if max > MAX_RESULTS_LIMIT as i64 {
            return Err(Fault::query_invalid(format!(
                "value {max} is too large. Max allowed value is {MAX_RESULTS_LIMIT}"
            )));
        }
        if max < 1 {
            return Err(Fault::query_invalid(format!(
                "value {max} is too small. Min allowed value is 1"
            )));
        }
        query.max_results = usize::try_from(max).unwrap_or(MAX_RESULTS_LIMIT);
    }
    if parser.peek().is_some() {
        return Err(parser.unexpected("<EOF>"));
    }
    Ok(query)
}

/// The query in the language `parse` reads: `parse(&query.to_string())` gives `query` back.
/// Strings escape `\` and `'` with a backslash, as Intuit's language does.
impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SELECT ")?;
        match &self.selection {
            Selection::Count => f.write_str("COUNT(*)")?,
            Selection::All { extra } => {
                f.write_str("*")?;
                for property in extra {
                    write!(f, ", {property}")?;
                }
            }
            Selection::Properties(properties) => f.write_str(&properties.join(", "))?,
        }
        write!(f, " FROM {}", self.entity)?;
        for (index, condition) in self.conditions.iter().enumerate() {
            f.write_str(if index == 0 { " WHERE " } else { " AND " })?;
            let op = match condition.op {
                Op::Eq => "=",
                Op::Lt => "<",
                Op::Gt => ">",
                Op::Le => "<=",
                Op::Ge => ">=",
                Op::Like => "LIKE",
                Op::In => "IN",
            };
            write!(f, "{} {op} ", condition.property)?;
            let values: Vec<String> = condition.values.iter().map(Literal::to_string).collect();
            if condition.op == Op::In {
                write!(f, "({})", values.join(", "))?;
            } else {
                f.write_str(&values.join(", "))?;
            }
        }
        for (index, (property, descending)) in self.order.iter().enumerate() {
            f.write_str(if index == 0 { " ORDERBY " } else { ", " })?;
            write!(f, "{property} {}", if *descending { "DESC" } else { "ASC" })?;
        }
        write!(
            f,
            " STARTPOSITION {} MAXRESULTS {}",
            self.start_position, self.max_results
        )
    }
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Text(text) => {
                write!(f, "'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
            }
            Literal::Number(number) => write!(f, "{number}"),
            Literal::Bool(value) => write!(f, "{value}"),
        }
    }
}

/// The comparable form of a stored value: a reference's `value`, an email's `Address`.
fn stored<'a>(entity: &'a Value, property: &str) -> Option<&'a Value> {
    let found = fields::at(entity, property)?;
    Some(match found {
        Value::Object(map) => map
            .get("value")
            .or_else(|| map.get("Address"))
            .unwrap_or(found),
        other => other,
    })
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Lt => "<",
        Op::Gt => ">",
        Op::Le => "<=",
        Op::Ge => ">=",
        Op::Like => "LIKE",
        Op::In => "IN",
    }
}

/// The query with every property spelled as the schema spells it, after checking that
/// conditions name filterable properties with an operator their type allows and that
/// ORDERBY names sortable ones (4001 otherwise, whatever the books contain).
fn checked(query: &Query, entity: &EntityType) -> Result<Query, Fault> {
    let schema = entity.schema;
    let mut query = query.clone();
    for condition in &mut query.conditions {
        let not_queryable = || {
            Fault::query_invalid(format!(
                "property '{}' is not queryable",
                condition.property
            ))
        };
        let (name, prop) = SCHEMA
            .resolve(schema, &condition.property)
            .ok_or_else(not_queryable)?;
        if !prop.filter {
            return Err(not_queryable());
        }
        let op = op_text(condition.op);
        if !SCHEMA.operators(prop).iter().any(|allowed| allowed == op) {
            return Err(Fault::query_invalid(format!(
                "operator '{op}' is not supported for property '{}'",
                condition.property
            )));
        }
        condition.property = name;
    }
    for (property, _) in &mut query.order {
        match SCHEMA.resolve(schema, property) {
            Some((name, prop)) if prop.sort => *property = name,
            _ => {
                return Err(Fault::query_invalid(format!(
                    "property '{property}' is not sortable"
                )));
            }
        }
    }
    let mut selected = Vec::new();
    let properties = match &mut query.selection {
        Selection::Properties(properties) => properties,
        Selection::All { extra } => extra,
        Selection::Count => &mut selected,
    };
    for property in properties {
        match SCHEMA.resolve(schema, property) {
            Some((name, _)) => *property = name,
            None => {
                return Err(Fault::query_invalid(format!(
                    "property '{property}' is not queryable"
                )));
            }
        }
    }
    Ok(query)
}

fn compare(left: &Value, right: &Literal) -> Option<Ordering> {
    match (left, right) {
        (Value::Bool(l), Literal::Bool(r)) => Some(l.cmp(r)),
        (Value::Bool(l), Literal::Text(r)) => Some(l.to_string().cmp(&r.to_ascii_lowercase())),
        (Value::Number(l), Literal::Number(r)) => l.as_f64()?.partial_cmp(r),
        (Value::Number(l), Literal::Text(r)) => l.as_f64()?.partial_cmp(&r.parse::<f64>().ok()?),
        (Value::String(l), Literal::Number(r)) => l.parse::<f64>().ok()?.partial_cmp(r),
        (Value::String(l), Literal::Bool(r)) => Some(l.to_ascii_lowercase().cmp(&r.to_string())),
        (Value::String(l), Literal::Text(r)) => {
            if let (Ok(a), Ok(b)) = (l.parse::<f64>(), r.parse::<f64>()) {
                return a.partial_cmp(&b);
            }
            if (l.len() > 10 || r.len() > 10)
                && let (Some(a), Some(b)) = (parse_time(l), parse_time(r))
            {
                return Some(a.cmp(&b));
            }
            Some(l.to_lowercase().cmp(&r.to_lowercase()))
        }
        _ => None,
    }
}

fn like(value: &Value, pattern: &str) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let text = text.to_lowercase();
    let pattern = pattern.to_lowercase();
    let parts: Vec<&str> = pattern.split('%').collect();
    let mut rest = text.as_str();
    for (index, part) in parts.iter().enumerate() {
        if index == 0 {
            match rest.strip_prefix(part) {
                Some(after) => rest = after,
                None => return false,
            }
        } else if index == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(position) => rest = &rest[position + part.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

/// Every value a path reaches through lists (`AttachableRef.EntityRef.type` in each
/// `AttachableRef`), in comparable form.
fn reachable<'a>(value: &'a Value, steps: &[&str], out: &mut Vec<&'a Value>) {
    match (value, steps.split_first()) {
        (Value::Array(items), _) => {
            for item in items {
                reachable(item, steps, out);
            }
        }
        (Value::Object(map), None) => out.push(
            map.get("value")
                .or_else(|| map.get("Address"))
                .unwrap_or(value),
        ),
        (_, None) => out.push(value),
        (_, Some((first, rest))) => {
            if let Some(next) = value.get(*first) {
                reachable(next, rest, out);
            }
        }
    }
}

fn matches(entity: &Value, condition: &Condition) -> bool {
    if let Some(value) = stored(entity, &condition.property) {
        return value_matches(value, condition);
    }
    let steps: Vec<&str> = condition.property.split('.').collect();
    let mut found = Vec::new();
    reachable(entity, &steps, &mut found);
    found.into_iter().any(|v| value_matches(v, condition))
}

fn value_matches(value: &Value, condition: &Condition) -> bool {
    let first = condition.values.first();
    match condition.op {
        Op::In => condition
            .values
            .iter()
            .any(|v| compare(value, v) == Some(Ordering::Equal)),
        Op::Like => matches!(first, Some(Literal::Text(p)) if like(value, p)),
        op => {
            let Some(ordering) = first.and_then(|v| compare(value, v)) else {
                return false;
            };
            match op {
                Op::Eq => ordering == Ordering::Equal,
                Op::Lt => ordering == Ordering::Less,
                Op::Gt => ordering == Ordering::Greater,
                Op::Le => ordering != Ordering::Greater,
                Op::Ge => ordering != Ordering::Less,
                Op::Like | Op::In => false,
            }
        }
    }
}

fn order_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(p), Ok(q)) => p.partial_cmp(&q).unwrap_or(Ordering::Equal),
            _ => x.to_lowercase().cmp(&y.to_lowercase()),
        },
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => Ordering::Equal,
    }
}

/// Properties every entity may be queried on.
const UNIVERSAL: &[&str] = &["Id", "SyncToken", "MetaData", "domain", "sparse"];

/// Runs a query against the books; answers the `QueryResponse` object.
pub fn run(query: &Query, books: &Books) -> Result<Value, Fault> {
    let singletons = match query.entity.as_str() {
        "CompanyInfo" => Some(&books.company_info),
        "Preferences" => Some(&books.preferences),
        _ => None,
    };
    let entity_type = entity_types::by_name(&query.entity);
    if entity_type.is_none() && singletons.is_none() {
        return Err(Fault::query_parse(format!(
            "Invalid entity name {}",
            query.entity
        )));
    }
    let resolved;
    let query = match entity_type {
        Some(t) => {
            resolved = checked(query, t)?;
            &resolved
        }
        None => query,
    };
    let candidates: Vec<&Value> = match (singletons, entity_type) {
        (Some(single), _) => vec![single],
        (None, Some(t)) => books.all(t).collect(),
        (None, None) => Vec::new(),
    };
    let properties = query
        .conditions
        .iter()
        .map(|c| &c.property)
        .chain(query.order.iter().map(|(p, _)| p))
        .chain(match &query.selection {
            Selection::Properties(p) => p.iter().collect::<Vec<_>>(),
            _ => Vec::new(),
        });
    // CompanyInfo and Preferences have no schema: what they carry may be queried.
    for property in properties.filter(|_| entity_type.is_none()) {
        let head = property.split('.').next().unwrap_or(property);
        let known = UNIVERSAL.contains(&head) || candidates.iter().any(|e| e.get(head).is_some());
        if !known && !candidates.is_empty() {
            return Err(Fault::query_invalid(format!(
                "property '{property}' is not queryable"
            )));
        }
    }
    let filters_active = query.conditions.iter().any(|c| c.property == "Active");
    let name_list = entity_type.is_some_and(|t| t.family == Family::NameList);
    let mut rows: Vec<&Value> = candidates
        .into_iter()
        .filter(|e| !name_list || filters_active || fields::is_active(e))
        .filter(|e| query.conditions.iter().all(|c| matches(e, c)))
        .collect();
    if query.selection == Selection::Count {
        return Ok(json!({"totalCount": rows.len()}));
    }
    if !query.order.is_empty() {
        rows.sort_by(|a, b| {
            for (property, descending) in &query.order {
                let left = stored(a, property).unwrap_or(&Value::Null);
                let right = stored(b, property).unwrap_or(&Value::Null);
                let ordering = order_values(left, right);
                let ordering = if *descending {
                    ordering.reverse()
                } else {
                    ordering
                };
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            Ordering::Equal
        });
    }
    let page: Vec<Value> = rows
        .into_iter()
        .skip(query.start_position.saturating_sub(1))
        .take(query.max_results)
        .map(|e| match &query.selection {
            Selection::Properties(properties) => {
                let mut sparse = Map::new();
                for property in properties.iter().chain(std::iter::once(&"Id".to_owned())) {
                    let head = property.split('.').next().unwrap_or(property);
                    if let Some(v) = e.get(head) {
                        sparse.insert(head.to_owned(), v.clone());
                    }
                }
                sparse.insert("domain".into(), json!("QBO"));
                sparse.insert("sparse".into(), json!(true));
                Value::Object(sparse)
            }
            _ => e.clone(),
        })
        .collect();
    if page.is_empty() {
        return Ok(json!({}));
    }
    let count = page.len();
    let mut response = Map::new();
    response.insert(query.entity.clone(), Value::Array(page));
    response.insert("startPosition".into(), json!(query.start_position));
    response.insert("maxResults".into(), json!(count));
    Ok(Value::Object(response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_whole_grammar() {
        let q = parse(
            "select * from Customer where DisplayName LIKE 'A%' and Balance >= 10 AND Id in ('1', '2') orderby DisplayName desc startposition 2 maxresults 5",
        )
        .expect("parses");
        assert_eq!(q.entity, "Customer");
        assert_eq!(q.conditions.len(), 3);
        assert_eq!(q.order, vec![("DisplayName".to_owned(), true)]);
        assert_eq!((q.start_position, q.max_results), (2, 5));
        assert_eq!(
            parse("SELECT COUNT(*) FROM Invoice")
                .expect("count")
                .selection,
            Selection::Count
        );
        assert_eq!(
            parse("SELECT *, Sku FROM Item ORDER BY Name")
                .expect("python-quickbooks' form")
                .order
                .len(),
            1
        );
        let escaped = parse("SELECT * FROM Customer WHERE DisplayName = 'Amy\\'s Bird Sanctuary'")
            .expect("escape");
        assert_eq!(
            escaped.conditions[0].values,
            vec![Literal::Text("Amy's Bird Sanctuary".into())]
        );
        assert_eq!(
            parse("select * from Bill").expect("default").max_results,
            100
        );
    }

    #[test]
    fn rejects_what_intuit_rejects() {
        let too_many = parse("SELECT * FROM Customer MAXRESULTS 1500").expect_err("limit");
        assert_eq!(too_many.code, "4001");
        assert!(
            too_many
                .detail
                .contains("value 1500 is too large. Max allowed value is 1000")
        );
        for bad in [
            "SELECT * FROM Customer WHERE Id = '1' OR Id = '2'",
            "SELECT * FROM Customer WHERE Id != '1'",
            "SELECT * FROM Customer c JOIN Invoice i",
            "SELECT * FROM Customer GROUP BY Id",
            "SELECT * FROM Customer;",
            "SELECT * FROM Customer WHERE DisplayName = 'open",
            "DELETE FROM Customer",
            "SELECT FROM Customer",
            "",
        ] {
            assert_eq!(parse(bad).map(|_| ()).expect_err(bad).code, "4000", "{bad}");
        }
        assert_eq!(
            parse("SELECT * FROM Customer STARTPOSITION -1")
                .expect_err("start")
                .code,
            "4001"
        );
        assert_eq!(
            parse("SELECT * FROM Customer STARTPOSITION 0")
                .expect("Intuit reads 0 as 1")
                .start_position,
            1
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(text in "\\PC{0,120}") {
            let _ = parse(&text);
        }

        #[test]
        fn never_panics_on_query_like_text(
            words in proptest::collection::vec(
                prop_oneof![
                    Just("SELECT"), Just("*"), Just("FROM"), Just("Customer"), Just("WHERE"), Just("Id"),
                    Just("="), Just("'1'"), Just("AND"), Just("IN"), Just("("), Just(")"), Just(","),
                    Just("ORDERBY"), Just("MAXRESULTS"), Just("99999999999999999999"), Just("-5"),
                    Just("LIKE"), Just("'%a%'"), Just("COUNT(*)"), Just("STARTPOSITION"), Just("'"),
                ],
                0..16,
            )
        ) {
            let _ = parse(&words.join(" "));
        }

        #[test]
        fn max_results_over_1000_is_always_refused(n in 1001u32..1_000_000) {
            let fault = parse(&format!("SELECT * FROM Customer MAXRESULTS {n}")).expect_err("over the limit");
            prop_assert_eq!(fault.code, "4001");
        }

        #[test]
        fn or_is_always_refused(a in "[A-Za-z]{1,8}", b in "[A-Za-z]{1,8}") {
            let query = format!("SELECT * FROM Customer WHERE DisplayName = '{a}' OR DisplayName = '{b}'");
            prop_assert!(parse(&query).is_err());
        }

        #[test]
        fn valid_pages_parse(start in 1u32..10_000, max in 1u32..=1000) {
            let query = parse(&format!("SELECT * FROM Invoice STARTPOSITION {start} MAXRESULTS {max}")).expect("valid");
            prop_assert_eq!((query.start_position, query.max_results), (start as usize, max as usize));
        }
    }
}
