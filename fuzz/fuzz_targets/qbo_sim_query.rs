//! The simulator's query parser (`qbo_sim::api::query::parse`) on any text: it must never
//! panic, a query it accepts keeps Intuit's limits, and its text form parses back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qbo_sim::api::query::{MAX_RESULTS_LIMIT, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = parse(text) else {
        return;
    };
    assert!(query.start_position >= 1, "{text:?}: {query:?}");
    assert!(
        (1..=MAX_RESULTS_LIMIT).contains(&query.max_results),
        "{text:?}: {query:?}"
    );
    assert!(!query.entity.is_empty(), "{text:?}: {query:?}");
    for condition in &query.conditions {
        assert!(!condition.values.is_empty(), "{text:?}: {query:?}");
    }
    let printed = query.to_string();
    match parse(&printed) {
        Ok(again) => assert_eq!(again, query, "{text:?} printed as {printed:?}"),
        Err(fault) => panic!(
            "{text:?} printed as {printed:?}, which fails: {}",
            fault.detail
        ),
    }
});
