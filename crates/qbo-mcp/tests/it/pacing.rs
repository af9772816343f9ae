//! Pacing (quickbooks/pacing.rs): the limits hold on both backends, across two pacers sharing
//! one PostgreSQL database, and PostgreSQL's `qbo_pacing_acquire` (migrations 0402, 0403) follows
//! the same bucket rule as the Rust `refilled` / `refill_wait` the SQLite path uses.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use qbo_mcp::quickbooks::pacing::{
    Budget, Class, Pacer, PacingConfig, PacingError, refill_wait, refilled,
};

use crate::harness::{Backend, Db, TestDb};
use crate::on_both_backends;

on_both_backends!(pacer_keeps_to_the_limits);

/// Ten in flight, then a wait that gives up; another company unaffected; released and dropped
/// leases free their slots; an empty bucket makes callers wait even with slots free.
async fn pacer_keeps_to_the_limits(backend: Backend) {
    let test = TestDb::fresh(backend).await;
    let config = PacingConfig {
        api: Budget {
            per_minute: 60.0,
            capacity: 12.0,
        },
        max_wait: Duration::from_millis(50),
        ..PacingConfig::default()
    };
    let pacer = Pacer::new(test.connect().await, config);
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(pacer.acquire("1", Class::Api).await.expect("a turn"));
    }
    assert!(matches!(
        pacer.acquire("1", Class::Api).await,
        Err(PacingError::TimedOut)
    ));
    held.push(pacer.acquire("2", Class::Api).await.expect("a turn"));
    held.remove(0).release().await;
    // A dropped lease is released by a task of its own.
    drop(held.remove(0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut freed = 0;
    while freed < 2 {
        match pacer.acquire("1", Class::Api).await {
            Ok(lease) => {
                held.push(lease);
                freed += 1;
            }
            Err(PacingError::TimedOut) if tokio::time::Instant::now() < deadline => {}
            Err(e) => panic!("a freed slot: {e}"),
        }
    }
    // Twelve spent: the bucket is empty (one a second comes back), even with slots free.
    for lease in held.drain(..) {
        lease.release().await;
    }
    assert!(matches!(
        pacer.acquire("1", Class::Api).await,
        Err(PacingError::TimedOut)
    ));
}

/// Two pacers on two pools stand for two replicas: together they never have more than
/// `max_in_flight` requests in flight for one company, and they do fill it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pacers_share_the_in_flight_limit_on_postgres() {
    let test = TestDb::fresh(Backend::Postgres).await;
    let roomy = Budget {
        per_minute: 600_000.0,
        capacity: 10_000.0,
    };
    let config = PacingConfig {
        api: roomy,
        report: roomy,
        max_in_flight: 4,
        ..PacingConfig::default()
    };
    let pacers = [
        Arc::new(Pacer::new(test.connect().await, config.clone())),
        Arc::new(Pacer::new(test.connect().await, config.clone())),
    ];
    let inside = Arc::new(AtomicI64::new(0));
    let most = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let pacer = pacers[worker % 2].clone();
        let (inside, most) = (inside.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                let class = if worker % 3 == 0 {
                    Class::Report
                } else {
                    Class::Api
                };
                let lease = pacer.acquire("shared", class).await.expect("a turn");
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                lease.release().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let most = most.load(Ordering::SeqCst);
    assert!(most <= 4, "{most} in flight at once, over the limit of 4");
    assert!(most >= 2, "the two pacers never overlapped ({most})");
}

/// What `qbo_pacing_acquire` answered.
#[derive(Debug, PartialEq)]
enum Outcome {
    Granted,
    /// Every slot taken.
    Busy,
    /// This class's bucket holds these tokens (bits, to compare exactly).
    Empty(String, u64),
}

struct Call {
    now: i64,
    class: Class,
}

/// The SQL functions and the Rust ones agree: `qbo_pacing_refilled` gives the very same float as
/// `refilled` (including a bucket never used, a clock behind the bucket's, a long idle spell),
/// and a scripted run of `qbo_pacing_acquire` matches a model built on `refilled` and
/// `refill_wait`: outcome, tokens, the stored buckets, the in-flight limit and expired leases;
/// a company's lease rows are reused, never more than it had in flight at once, and a release
/// frees only the row its request still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_function_agrees_with_rust() {
    let test = TestDb::fresh(Backend::Postgres).await;
    let db = test.connect().await;
    let Db::Postgres(pool) = &db else {
        unreachable!()
    };
    let defaults = PacingConfig::default();
    let odd = Budget {
        per_minute: 7.0,
        capacity: 3.5,
    };
    let now = 1_764_590_000_123_i64;
    for budget in [defaults.api, defaults.report, odd] {
        for stored in [
            None,
            Some((0.0, now)),
            Some((0.3, now - 100)),
            Some((5.5, now - 3)),
            Some((0.999_999, now - 1)),
            Some((2.0, now + 500)),
            Some((0.0, now - 10_000_000)),
            Some((-0.25, now - 77)),
        ] {
            let sql: f64 = sqlx::query_scalar("SELECT qbo_pacing_refilled($1, $2, $3, $4, $5)")
                .bind(stored.map(|(t, _)| t))
                .bind(stored.map(|(_, at)| at))
                .bind(budget.capacity)
                .bind(budget.per_minute)
                .bind(now)
                .fetch_one(pool)
                .await
                .unwrap();
            let rust = refilled(&budget, stored, now);
            assert_eq!(
                sql.to_bits(),
                rust.to_bits(),
                "{budget:?} {stored:?}: SQL {sql}, Rust {rust}"
            );
        }
    }

    // A small company: 3 in flight, leases of 5 s; api 3 tokens at 30 a minute, report 1 at 3.
    let api = Budget {
        per_minute: 30.0,
        capacity: 3.0,
    };
    let report = Budget {
        per_minute: 3.0,
        capacity: 1.0,
    };
    let (max_in_flight, lease_ms) = (3_i64, 5_000_i64);
    let calls = [
        (1_000, Class::Report),
        (1_000, Class::Report), // report bucket empty
        (1_001, Class::Api),
        (1_002, Class::Api),
        (1_003, Class::Api), // three in flight: busy
        (6_001, Class::Api), // the first lease expired
        (6_002, Class::Api),
        (6_003, Class::Api),  // api bucket half full: empty
        (5_990, Class::Api),  // a clock behind the bucket's: no refill
        (12_000, Class::Api), // every lease expired
        (11_900, Class::Api), // a clock behind: granted, the bucket's time kept
        (12_100, Class::Api), // refilled from 12 000, not from 11 900
        (12_200, Class::Api),
        (20_000, Class::Report),
        (30_000, Class::Report),
        (40_000, Class::Report),
        (40_001, Class::Api),
    ]
    .map(|(now, class)| Call { now, class });

    // The model: the company's lease rows as (id of the request that made it, expiry), each
    // live while its expiry is not past by the caller's clock (so a clock behind sees a lease
    // another caller's clock saw expire: skew between replicas only makes pacing stricter);
    // buckets as (tokens, time).
    let mut rows: Vec<(String, i64)> = Vec::new();
    let mut buckets: [Option<(f64, i64)>; 2] = [None, None];
    let mut saw = (0, 0, 0);
    for (n, call) in calls.iter().enumerate() {
        let classes: Vec<(&str, Budget)> = match call.class {
            Class::Api => vec![("api", api)],
            Class::Report => vec![("api", api), ("report", report)],
        };
        let live = rows.iter().filter(|(_, e)| *e >= call.now).count() as i64;
        let expected = if live >= max_in_flight {
            Outcome::Busy
        } else {
            let mut spent = buckets;
            let mut empty = None;
            for (i, (name, budget)) in classes.iter().enumerate() {
                let tokens = refilled(budget, spent[i], call.now);
                if tokens < 1.0 {
                    empty = Some(Outcome::Empty((*name).to_owned(), tokens.to_bits()));
                    break;
                }
                let at = spent[i].map_or(call.now, |(_, t)| t.max(call.now));
                spent[i] = Some((tokens - 1.0, at));
            }
            empty.unwrap_or_else(|| {
                buckets = spent;
                // A free row (the first by id) is taken; a new one only when none is free.
                let expires = call.now + lease_ms;
                match rows
                    .iter_mut()
                    .filter(|(_, e)| *e < call.now)
                    .min_by(|a, b| a.0.cmp(&b.0))
                {
                    Some(free) => free.1 = expires,
                    None => rows.push((format!("lease-{n}"), expires)),
                }
                Outcome::Granted
            })
        };

        let (granted, empty_class, empty_tokens): (bool, Option<String>, Option<f64>) =
            sqlx::query_as(
                "SELECT granted, empty_class, empty_tokens
                 FROM qbo_pacing_acquire($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind("9130")
            .bind(42_i64)
            .bind(call.now)
            .bind(max_in_flight)
            .bind(format!("lease-{n}"))
            .bind(call.now + lease_ms)
            .bind(classes.iter().map(|(c, _)| *c).collect::<Vec<_>>())
            .bind(classes.iter().map(|(_, b)| b.capacity).collect::<Vec<_>>())
            .bind(
                classes
                    .iter()
                    .map(|(_, b)| b.per_minute)
                    .collect::<Vec<_>>(),
            )
            .fetch_one(pool)
            .await
            .unwrap();
        let got = match (granted, empty_class, empty_tokens) {
            (true, None, None) => Outcome::Granted,
            (false, None, None) => Outcome::Busy,
            (false, Some(class), Some(tokens)) => {
                let budget = if class == "api" { api } else { report };
                if let Outcome::Empty(_, bits) = &expected {
                    assert_eq!(
                        refill_wait(&budget, tokens),
                        refill_wait(&budget, f64::from_bits(*bits)),
                        "call {n}"
                    );
                }
                Outcome::Empty(class, tokens.to_bits())
            }
            other => panic!("call {n}: an answer with no meaning: {other:?}"),
        };
        assert_eq!(got, expected, "call {n} at {}", call.now);
        match got {
            Outcome::Granted => saw.0 += 1,
            Outcome::Busy => saw.1 += 1,
            Outcome::Empty(..) => saw.2 += 1,
        }

        let stored: Vec<(String, f64, i64)> = sqlx::query_as(
            "SELECT class, tokens, updated_ms FROM quickbooks_budgets WHERE realm_id = '9130' ORDER BY class",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let model: Vec<(String, f64, i64)> = [("api", buckets[0]), ("report", buckets[1])]
            .into_iter()
            .filter_map(|(c, b)| b.map(|(t, at)| (c.to_owned(), t, at)))
            .collect();
        assert_eq!(stored, model, "buckets after call {n}");
        let (live, stored_rows): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE expires_ms >= $1), count(*)
             FROM quickbooks_leases WHERE realm_id = '9130'",
        )
        .bind(call.now)
        .fetch_one(pool)
        .await
        .unwrap();
        let model_live = rows.iter().filter(|(_, e)| *e >= call.now).count() as i64;
        assert_eq!(live, model_live, "leases after call {n}");
        assert_eq!(
            stored_rows,
            rows.len() as i64,
            "rows are reused: after call {n}"
        );
    }
    assert!(
        saw.0 >= 8 && saw.1 >= 2 && saw.2 >= 4,
        "the script covers each outcome: {saw:?}"
    );

    // A release frees the row its request holds, and only while it holds it: `late` expires,
    // `next` takes its row, and `late`'s release comes after that.
    let acquire = |now: i64, id: &'static str| {
        sqlx::query_scalar::<_, bool>(
            "SELECT granted FROM qbo_pacing_acquire('9130', 42, $1, 3, $2, $1 + 5000,
                 ARRAY['api'], ARRAY[1e9::float8], ARRAY[1e9::float8])",
        )
        .bind(now)
        .bind(id)
        .fetch_one(pool)
    };
    let release = |id: &'static str| {
        sqlx::query("SELECT qbo_pacing_release('9130', $1)")
            .bind(id)
            .execute(pool)
    };
    let live = |now: i64| {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM quickbooks_leases WHERE realm_id = '9130' AND expires_ms >= $1",
        )
        .bind(now)
        .fetch_one(pool)
    };
    let t = 100_000;
    assert!(acquire(t, "late").await.unwrap());
    assert!(acquire(t + 6_000, "next").await.unwrap());
    release("late").await.unwrap();
    assert_eq!(
        live(t + 6_000).await.unwrap(),
        1,
        "a late release freed another's row"
    );
    release("next").await.unwrap();
    assert_eq!(
        live(t + 6_000).await.unwrap(),
        0,
        "the release did not free its row"
    );
    let stored_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM quickbooks_leases WHERE realm_id = '9130'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(
        stored_rows,
        rows.len() as i64,
        "no row was added while one was free"
    );
}
