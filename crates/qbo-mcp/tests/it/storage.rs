//! Storage: migrations on both backends, their parity, and the cross-replica lock.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use qbo_mcp::db::Db;
use qbo_mcp::{on_db, on_tx};

use crate::harness::{Backend, TestDb, cli};
use crate::on_both_backends;

on_both_backends!(
    migrate_command_is_idempotent,
    lock_excludes_across_pools,
    single_statements_survive_errors_and_abandoned_statements
);

async fn migrate_command_is_idempotent(backend: Backend) {
    let db = TestDb::fresh(backend).await;
    for _ in 0..2 {
        let out = cli(&db, &["migrate"], None).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stderr.contains("up to date"), "{}", out.stderr);
    }
}

/// Two pools stand for two replicas. Each critical section flags itself as inside; if the
/// lock failed to exclude, one would see the other's flag. A control run without the lock
/// shows the check can fail.
async fn lock_excludes_across_pools(backend: Backend) {
    let test_db = TestDb::fresh(backend).await;
    let a = test_db.connect().await;
    let b = test_db.connect().await;

    let (overlaps, sections) = hammer(&[a.clone(), b.clone()], true).await;
    assert_eq!(sections, 20);
    assert_eq!(overlaps, 0, "the lock let two holders in at once");

    let (overlaps, _) = hammer(&[a.clone(), b.clone()], false).await;
    assert!(overlaps > 0, "control: without the lock, sections overlap");

    // with_lock commits on Ok and rolls back on Err.
    on_db!(&a, pool => sqlx::query("CREATE TABLE lock_probe (n BIGINT NOT NULL)").execute(pool).await.unwrap().rows_affected());
    let ok: Result<(), sqlx::Error> = a
        .with_lock("probe", |tx| {
            Box::pin(async move {
                on_tx!(tx, conn => sqlx::query("INSERT INTO lock_probe (n) VALUES (1)").execute(&mut *conn).await?.rows_affected());
                Ok(())
            })
        })
        .await;
    ok.unwrap();
    let failed: Result<(), sqlx::Error> = b
        .with_lock("probe", |tx| {
            Box::pin(async move {
                on_tx!(tx, conn => sqlx::query("INSERT INTO lock_probe (n) VALUES (2)").execute(&mut *conn).await?.rows_affected());
                Err(sqlx::Error::RowNotFound)
            })
        })
        .await;
    assert!(failed.is_err());
    let rows: Vec<i64> = on_db!(&a, pool => sqlx::query_scalar("SELECT n FROM lock_probe").fetch_all(pool).await.unwrap());
    assert_eq!(rows, vec![1]);
}

/// Single statements run on connections the pool takes back without a ping (`db::Pool`): a
/// statement the database refused leaves its connection usable, and one abandoned half-way
/// (its caller gave up) must never leave an answer behind for the next statement on that
/// connection. Many statements at once, more than the pool keeps, each get their own answer.
async fn single_statements_survive_errors_and_abandoned_statements(backend: Backend) {
    let test_db = TestDb::fresh(backend).await;
    let db = test_db.connect().await;
    on_db!(&db, pool => sqlx::query("CREATE TABLE probe (n BIGINT NOT NULL UNIQUE)").execute(pool).await.unwrap().rows_affected());
    on_db!(&db, pool => sqlx::query("INSERT INTO probe (n) VALUES (1)").execute(pool).await.unwrap().rows_affected());
    for _ in 0..3 {
        let duplicate = on_db!(&db, pool => sqlx::query("INSERT INTO probe (n) VALUES (1)").execute(pool).await.map(|r| r.rows_affected()));
        assert!(
            matches!(duplicate, Err(sqlx::Error::Database(_))),
            "{duplicate:?}"
        );
    }
    // Long enough that a 5 ms timeout abandons it while the database still works on it.
    let slow = match backend {
        Backend::Sqlite => {
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT COUNT(*) FROM c"
        }
        Backend::Postgres => "SELECT COUNT(*) FROM generate_series(1, 3000000)",
    };
    for _ in 0..3 {
        let abandoned = tokio::time::timeout(Duration::from_millis(5), async {
            on_db!(&db, pool => sqlx::query_scalar::<_, i64>(slow).fetch_one(pool).await)
        })
        .await;
        assert!(
            abandoned.is_err(),
            "the slow statement finished in 5 ms: {abandoned:?}"
        );
    }
    let answers = futures::future::join_all((0..40i64).map(|i| {
        let db = db.clone();
        async move {
            let row: (i64, i64) = on_db!(&db, pool => sqlx::query_as("SELECT $1 + 0, (SELECT COUNT(*) FROM probe)").bind(i).fetch_one(pool).await.unwrap());
            row
        }
    }))
    .await;
    for (i, (echo, count)) in answers.into_iter().enumerate() {
        assert_eq!(
            (echo, count),
            (i as i64, 1),
            "statement {i} got another's answer"
        );
    }
    db.close().await;
}

async fn hammer(pools: &[Db], locked: bool) -> (usize, usize) {
    let inside = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let sections = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let db = pools[worker % pools.len()].clone();
        let (inside, overlaps, sections) = (inside.clone(), overlaps.clone(), sections.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                let tx = if locked {
                    db.begin_locked("company:42").await.unwrap()
                } else {
                    db.begin().await.unwrap()
                };
                if inside.swap(true, Ordering::SeqCst) {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                // Hold the section long enough that any overlap would happen.
                tokio::time::sleep(Duration::from_millis(15)).await;
                inside.store(false, Ordering::SeqCst);
                sections.fetch_add(1, Ordering::SeqCst);
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (
        overlaps.load(Ordering::SeqCst),
        sections.load(Ordering::SeqCst),
    )
}

/// One column as both backends can describe it.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Column {
    kind: &'static str,
    not_null: bool,
    primary_key: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Schema {
    tables: BTreeMap<String, BTreeMap<String, Column>>,
    /// index name → (table, unique, columns)
    indexes: BTreeMap<String, (String, bool, Vec<String>)>,
    /// (table, column) → (referenced table, referenced column, on delete)
    foreign_keys: BTreeMap<(String, String), (String, String, String)>,
}

/// Folds each dialect's type names into one vocabulary.
fn kind(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    match t.as_str() {
        "bigint" | "integer" | "int8" | "int4" | "int" | "bigserial" | "smallint" => "integer",
        "text" | "character varying" | "varchar" => "text",
        "blob" | "bytea" => "bytes",
        "boolean" | "bool" => "boolean",
        "real" | "double precision" | "float8" | "double" => "float",
        _ => "other",
    }
}

async fn sqlite_schema(db: &Db) -> Schema {
    let Db::Sqlite(pool) = db else { unreachable!() };
    let mut schema = Schema::default();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx_%' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for table in tables {
        let cols: Vec<(String, String, bool, i64)> =
            sqlx::query_as("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1)")
                .bind(&table)
                .fetch_all(pool)
                .await
                .unwrap();
        let mut columns = BTreeMap::new();
        for (name, declared, not_null, pk) in cols {
            columns.insert(
                name,
                Column {
                    kind: kind(&declared),
                    not_null: not_null || pk > 0,
                    primary_key: pk > 0,
                },
            );
        }
        let indexes: Vec<(String, bool, String)> =
            sqlx::query_as("SELECT name, \"unique\", origin FROM pragma_index_list($1)")
                .bind(&table)
                .fetch_all(pool)
                .await
                .unwrap();
        for (name, unique, origin) in indexes {
            // Primary-key indexes are implied by the columns' primary_key flag.
            if origin == "pk" {
                continue;
            }
            let cols: Vec<String> = sqlx::query_scalar(
                "SELECT coalesce(name, '<expr>') FROM pragma_index_xinfo($1) WHERE key = 1 ORDER BY seqno",
            )
            .bind(&name)
            .fetch_all(pool)
            .await
            .unwrap();
            let name = if origin == "u" {
                format!("{table}_{}_key", cols.join("_"))
            } else {
                name
            };
            schema.indexes.insert(name, (table.clone(), unique, cols));
        }
        let fks: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list($1)",
        )
        .bind(&table)
        .fetch_all(pool)
        .await
        .unwrap();
        for (from, to_table, to_col, on_delete) in fks {
            schema.foreign_keys.insert(
                (table.clone(), from),
                (to_table, to_col, on_delete.to_ascii_uppercase()),
            );
        }
        schema.tables.insert(table, columns);
    }
    schema
}

async fn postgres_schema(db: &Db) -> Schema {
    let Db::Postgres(pool) = db else {
        unreachable!()
    };
    let mut schema = Schema::default();
    let cols: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text
         FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'
         ORDER BY table_name, ordinal_position",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let pks: Vec<(String, String)> = sqlx::query_as(
        "SELECT tc.table_name::text, kcu.column_name::text
         FROM information_schema.table_constraints tc
         JOIN information_schema.key_column_usage kcu
           ON tc.constraint_name = kcu.constraint_name AND tc.table_schema = kcu.table_schema
         WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (table, column, data_type, nullable) in cols {
        let primary_key = pks.iter().any(|(t, c)| *t == table && *c == column);
        schema.tables.entry(table).or_default().insert(
            column,
            Column {
                kind: kind(&data_type),
                not_null: nullable == "NO",
                primary_key,
            },
        );
    }
    let indexes: Vec<(String, String, bool, bool, Vec<String>)> = sqlx::query_as(
        "SELECT i.relname::text, t.relname::text, ix.indisunique, ix.indisprimary,
                array(SELECT coalesce(a.attname::text, '<expr>')
                      FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, n)
                      LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                      ORDER BY k.n)
         FROM pg_index ix
         JOIN pg_class i ON i.oid = ix.indexrelid
         JOIN pg_class t ON t.oid = ix.indrelid
         JOIN pg_namespace ns ON ns.oid = t.relnamespace
         WHERE ns.nspname = 'public' AND t.relname NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (name, table, unique, primary, cols) in indexes {
        if primary {
            continue;
        }
        schema.indexes.insert(name, (table, unique, cols));
    }
    let fks: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT kcu.table_name::text, kcu.column_name::text, ccu.table_name::text,
                ccu.column_name::text, rc.delete_rule::text
         FROM information_schema.referential_constraints rc
         JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = rc.constraint_name
         JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = rc.unique_constraint_name
         WHERE kcu.table_schema = 'public'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (table, column, to_table, to_col, rule) in fks {
        schema
            .foreign_keys
            .insert((table, column), (to_table, to_col, rule));
    }
    schema
}

/// Both backends' migrations produce the same tables, columns, types, nullability, keys,
/// indexes and foreign keys. Unique constraints are compared by their PostgreSQL default name
/// (`table_col_key`), so write them inline or name unique indexes the same on both sides.
#[tokio::test]
async fn both_backends_have_the_same_schema() {
    let sqlite = TestDb::fresh(Backend::Sqlite).await;
    let postgres = TestDb::fresh(Backend::Postgres).await;
    let s = sqlite_schema(&sqlite.connect().await).await;
    let p = postgres_schema(&postgres.connect().await).await;
    assert!(!s.tables.is_empty());
    for (table, cols) in &s.tables {
        for (name, col) in cols {
            assert_ne!(
                col.kind, "other",
                "{table}.{name}: use a type both backends share"
            );
        }
    }
    assert_eq!(s.tables, p.tables, "tables and columns differ");
    assert_eq!(s.indexes, p.indexes, "indexes differ");
    assert_eq!(s.foreign_keys, p.foreign_keys, "foreign keys differ");
}
