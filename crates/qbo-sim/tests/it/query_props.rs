//! Properties of the query language (docs/security.md, "Fuzzing"): the parser never panics,
//! and what it accepts round-trips through the query's text form, strings with quotes and
//! backslashes included. The fuzz target `qbo_sim_query` checks the same on mutated input.

use proptest::prelude::*;
use qbo_sim::api::query::{Condition, Literal, MAX_RESULTS_LIMIT, Op, Query, Selection, parse};

/// A property name: never a reserved word (none of those has a digit).
fn property() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_.]{0,10}[0-9]"
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{0,16}", "[\\\\' %a]{0,12}"]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        text().prop_map(Literal::Text),
        any::<f64>()
            .prop_filter("finite", |n| n.is_finite())
            .prop_map(Literal::Number),
        any::<bool>().prop_map(Literal::Bool),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        (
            property(),
            prop_oneof![
                Just(Op::Eq),
                Just(Op::Lt),
                Just(Op::Gt),
                Just(Op::Le),
                Just(Op::Ge)
            ],
            literal()
        )
            .prop_map(|(property, op, value)| Condition {
                property,
                op,
                values: vec![value],
            }),
        (property(), text()).prop_map(|(property, pattern)| Condition {
            property,
            op: Op::Like,
            values: vec![Literal::Text(pattern)],
        }),
        (property(), prop::collection::vec(literal(), 1..4)).prop_map(|(property, values)| {
            Condition {
                property,
                op: Op::In,
                values,
            }
        }),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    (
        prop_oneof![
            Just(Selection::Count),
            prop::collection::vec(property(), 0..3).prop_map(|extra| Selection::All { extra }),
            prop::collection::vec(property(), 1..3).prop_map(Selection::Properties),
        ],
        property(),
        prop::collection::vec(condition(), 0..4),
        prop::collection::vec((property(), any::<bool>()), 0..3),
        1usize..1_000_000_000,
        1usize..=MAX_RESULTS_LIMIT,
    )
        .prop_map(
            |(selection, entity, conditions, order, start_position, max_results)| Query {
                selection,
                entity,
                conditions,
                order,
                start_position,
                max_results,
            },
        )
}

proptest! {
    #[test]
    fn every_query_round_trips_through_its_text(query in query()) {
        let text = query.to_string();
        let parsed = parse(&text).map_err(|f| TestCaseError::fail(format!("{text}: {}", f.detail)))?;
        prop_assert_eq!(parsed, query, "{}", text);
    }

    #[test]
    fn accepted_text_round_trips(text in "(SELECT|select) (\\*|COUNT\\(\\*\\)|Id) FROM Customer( WHERE DisplayName (=|LIKE|<) '([\\\\']{0,3}[a %]{0,3}){0,4}')?( AND Id IN \\('1', 2, true\\))?") {
        if let Ok(query) = parse(&text) {
            prop_assert_eq!(parse(&query.to_string()).ok(), Some(query), "{}", text);
        }
    }

    #[test]
    fn never_panics_on_quotes_and_backslashes(text in "SELECT \\* FROM Customer WHERE Id = [\\\\' a]{0,12}") {
        let _ = parse(&text);
    }
}

#[test]
fn a_backslash_escapes_a_backslash() {
    // The escaping the product's search tools use: `\` as `\\`, `'` as `\'`.
    let query = parse(r"SELECT * FROM Customer WHERE DisplayName = 'C:\\dir\\' AND Id = '\\\''")
        .expect("parses");
    assert_eq!(
        query.conditions[0].values,
        vec![Literal::Text(r"C:\dir\".into())]
    );
    assert_eq!(
        query.conditions[1].values,
        vec![Literal::Text(r"\'".into())]
    );
    // Any other backslash stays as written, as before.
    let query = parse(r"SELECT * FROM Customer WHERE DisplayName LIKE 'a\%b'").expect("parses");
    assert_eq!(
        query.conditions[0].values,
        vec![Literal::Text(r"a\%b".into())]
    );
}
