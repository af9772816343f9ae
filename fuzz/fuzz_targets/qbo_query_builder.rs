//! The `search_*` tools' query builder (`qbo_mcp::mcp::intuit::search_query`) on structured
//! input, and the `fetch_all` paging split (`quickbooks::operations::split_paging`) on what it
//! builds.
//!
//! The property that proves no injection: whatever the builder emits, if the simulator's
//! parser (the reference for Intuit's language) accepts it, the parsed query is exactly the
//! one that was asked for — the same entity, one condition per criterion with the same field,
//! operator and values, the asked order and page, and nothing else. A value that broke out of
//! its quotes would show up as an extra or altered condition. And when every field name is a
//! plain name, the builder's output must be accepted at all (no value can make it invalid).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use qbo_mcp::mcp::intuit::{Criterion, SearchArgs, search_query};
use qbo_mcp::quickbooks::operations::{query_entity, split_paging};
use qbo_sim::api::query::{Literal, Op, Selection, is_reserved, parse};
use serde_json::Value;

const ENTITIES: &[&str] = &["Customer", "Invoice", "JournalEntry", "TaxCode", "Class"];
const FIELDS: &[&str] = &[
    "DisplayName",
    "Id",
    "Active",
    "MetaData.LastUpdatedTime",
    "TotalAmt",
    "Balance",
    "and",
    "OR",
    "1a",
    "a..b",
];
const OPERATORS: &[&str] = &[
    "=", "<", ">", "<=", ">=", "LIKE", "like", " in ", "IN", "OR", "!=", "", " = ",
];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Free(String),
}

impl Name {
    fn text(&self) -> String {
        match self {
            Name::Known(i) => FIELDS[*i as usize % FIELDS.len()].to_owned(),
            Name::Free(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Val {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Val>),
    Null,
}

impl Val {
    fn json(&self) -> Value {
        match self {
            Val::Text(s) => Value::String(s.clone()),
            Val::Int(n) => Value::from(*n),
            Val::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Val::Bool(b) => Value::Bool(*b),
            Val::List(items) => Value::Array(items.iter().map(Val::json).collect()),
            Val::Null => Value::Null,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Operator {
    Known(u8),
    Free(String),
}

#[derive(Arbitrary, Debug)]
struct Crit {
    field: Name,
    value: Val,
    operator: Option<Operator>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    entity: u8,
    criteria: Option<Vec<Crit>>,
    limit: Option<u32>,
    offset: Option<u32>,
    asc: Option<Name>,
    desc: Option<Name>,
    fetch_all: Option<bool>,
}

/// The literal a criterion's value must parse back to: strings as they are, numbers as the
/// quoted text of the number, booleans as booleans.
fn expected_literal(value: &Value) -> Option<Literal> {
    match value {
        Value::String(s) => Some(Literal::Text(s.clone())),
        Value::Number(n) => Some(Literal::Text(n.to_string())),
        Value::Bool(b) => Some(Literal::Bool(*b)),
        _ => None,
    }
}

fn expected_op(operator: Option<&str>) -> Option<Op> {
    Some(
        match operator.unwrap_or("=").trim().to_ascii_uppercase().as_str() {
            "=" => Op::Eq,
            "<" => Op::Lt,
            ">" => Op::Gt,
            "<=" => Op::Le,
            ">=" => Op::Ge,
            "LIKE" => Op::Like,
            "IN" => Op::In,
            _ => return None,
        },
    )
}

/// A field name any QuickBooks parser must take: a letter first, then letters, digits and
/// dots, and not a keyword.
fn plain(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
        && !is_reserved(name)
}

fuzz_target!(|input: Input| {
    let entity = ENTITIES[input.entity as usize % ENTITIES.len()];
    let criteria: Option<Vec<Criterion>> = input.criteria.as_ref().map(|list| {
        list.iter()
            .map(|c| Criterion {
                field: c.field.text(),
                value: c.value.json(),
                operator: c.operator.as_ref().map(|o| match o {
                    Operator::Known(i) => OPERATORS[*i as usize % OPERATORS.len()].to_owned(),
                    Operator::Free(s) => s.clone(),
                }),
            })
            .collect()
    });
    let args = SearchArgs {
        company: None,
        criteria,
        limit: input.limit,
        offset: input.offset,
        asc: input.asc.as_ref().map(Name::text),
        desc: input.desc.as_ref().map(Name::text),
        fetch_all: input.fetch_all,
        ..Default::default()
    };
    let Ok(built) = search_query(entity, &args) else {
        return;
    };
    let criteria = args.criteria.as_deref().unwrap_or_default();
    let order_field = args.asc.as_ref().or(args.desc.as_ref());
    let expect_accepted = criteria.iter().all(|c| {
        plain(&c.field)
            && !(expected_op(c.operator.as_deref()) == Some(Op::Like) && c.value.is_boolean())
    }) && order_field.is_none_or(|f| plain(f));
    let query = match parse(&built) {
        Ok(query) => query,
        Err(fault) => {
            assert!(
                !expect_accepted,
                "the builder made a query QuickBooks' language refuses: {built:?}: {}",
                fault.detail
            );
            return;
        }
    };
    // Exactly what was asked for, and nothing more.
    assert_eq!(query.entity, entity, "{built:?}");
    assert_eq!(
        query.selection,
        Selection::All { extra: vec![] },
        "{built:?}"
    );
    assert_eq!(query.conditions.len(), criteria.len(), "{built:?}");
    for (condition, criterion) in query.conditions.iter().zip(criteria) {
        assert_eq!(condition.property, criterion.field, "{built:?}");
        let op = expected_op(criterion.operator.as_deref());
        assert_eq!(Some(condition.op), op, "{built:?}");
        let values: Vec<Option<Literal>> = match (&criterion.value, op) {
            (Value::Array(items), Some(Op::In)) => items.iter().map(expected_literal).collect(),
            (value, _) => vec![expected_literal(value)],
        };
        let parsed: Vec<Option<Literal>> = condition.values.iter().cloned().map(Some).collect();
        assert_eq!(parsed, values, "{built:?}");
    }
    let order: Vec<(String, bool)> = match (&args.asc, &args.desc) {
        (Some(f), None) => vec![(f.clone(), false)],
        (None, Some(f)) => vec![(f.clone(), true)],
        _ => vec![],
    };
    assert_eq!(query.order, order, "{built:?}");
    if args.fetch_all != Some(true) {
        let start = args.offset.map_or(1, |o| o as usize + 1);
        assert_eq!(query.start_position, start, "{built:?}");
        assert_eq!(
            query.max_results,
            args.limit.map_or(100, |l| l as usize),
            "{built:?}"
        );
    }

    // `fetch_all` cuts the page off and adds its own: the rest must stay as it was.
    let (base, start, max) = split_paging(&built);
    assert_eq!(query_entity(&base), Some(entity), "{built:?}");
    let repaged = format!("{base} STARTPOSITION 1 MAXRESULTS 1000");
    let again = parse(&repaged).unwrap_or_else(|f| panic!("{repaged:?}: {}", f.detail));
    assert_eq!(
        again.conditions, query.conditions,
        "{built:?} became {repaged:?}"
    );
    assert_eq!(again.order, query.order, "{built:?} became {repaged:?}");
    if args.fetch_all == Some(true) {
        assert_eq!((start, max), (None, None), "{built:?}");
    } else {
        assert_eq!(start, args.offset.map(|o| o as usize + 1), "{built:?}");
        assert_eq!(max, args.limit.map(|l| l as usize), "{built:?}");
    }
});
