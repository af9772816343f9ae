//! The connection pool features run their statements on: sqlx's pool, plus a small set of
//! connections kept for single statements that go back without a round trip.
//!
//! sqlx pings every connection when it goes back to its pool (one more round trip to
//! PostgreSQL, or one more hand-off to SQLite's connection thread, per statement; and a task
//! spawned to do it). Most of our statements run on their own (`on_db!`), and a tool call
//! runs several, so that ping was a large part of a call's database work (docs/benchmarks.md,
//! "Statements without a ping"). A [`Pool`] therefore runs a single statement on one of its
//! own connections and takes it back at once when the statement completed — its answer read
//! to the end, or an error the database itself reported, either of which leaves the
//! connection ready for the next statement. A connection whose statement did not complete
//! (the caller gave up half-way, the socket or SQLite's thread failed) is closed instead, so
//! no half-read answer is ever seen by the next statement.
//!
//! Transactions (`Db::begin`), migrations and everything else that takes a connection from
//! sqlx's pool directly (through `Deref`) keep sqlx's own handling.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};
use sqlx::{Connection as _, Database, Describe, Either, Error, Execute, Executor, SqlStr};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// sqlx's pool with our own connections for single statements beside it.
pub struct Pool<DB: Database> {
    sqlx: sqlx::Pool<DB>,
    own: Arc<Own<DB>>,
}

/// The connections a [`Pool`] keeps for single statements: at most `permits` at once.
struct Own<DB: Database> {
    idle: Mutex<Vec<DB::Connection>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
}

impl<DB: Database> Clone for Pool<DB> {
    fn clone(&self) -> Self {
        Self {
            sqlx: self.sqlx.clone(),
            own: self.own.clone(),
        }
    }
}

impl<DB: Database> fmt::Debug for Pool<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("sqlx", &self.sqlx)
            .field(
                "statement_connections",
                &self.own.idle.lock().map(|i| i.len()).unwrap_or(0),
            )
            .finish()
    }
}

impl<DB: Database> Deref for Pool<DB> {
    type Target = sqlx::Pool<DB>;

    fn deref(&self) -> &sqlx::Pool<DB> {
        &self.sqlx
    }
}

impl<DB: Database> Pool<DB> {
    /// Wraps `sqlx`, keeping up to `statement_connections` more connections for single
    /// statements (taken from `sqlx` as they are first needed).
    pub fn new(sqlx: sqlx::Pool<DB>, statement_connections: usize) -> Self {
        let acquire_timeout = sqlx.options().get_acquire_timeout();
        Self {
            sqlx,
            own: Arc::new(Own {
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(statement_connections.max(1))),
                acquire_timeout,
            }),
        }
    }

    /// Closes every connection, ours and sqlx's.
    pub async fn close(&self) {
        self.own.permits.close();
        let idle = std::mem::take(&mut *self.own.idle.lock().unwrap_or_else(|e| e.into_inner()));
        for connection in idle {
            let _ = connection.close().await;
        }
        self.sqlx.close().await;
    }

    /// One of our connections: an idle one, or a new one detached from sqlx's pool.
    async fn statement_connection(&self) -> Result<Leased<DB>, Error> {
        let permit = tokio::time::timeout(
            self.own.acquire_timeout,
            self.own.permits.clone().acquire_owned(),
        )
        .await
        .map_err(|_| Error::PoolTimedOut)?
        .map_err(|_| Error::PoolClosed)?;
        let idle = self
            .own
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.sqlx.acquire().await?.detach(),
        };
        Ok(Leased {
            connection: Some(connection),
            own: self.own.clone(),
            _permit: permit,
        })
    }
}

/// A connection taken for one statement. [`Leased::finish`] puts it back when the statement
/// completed; dropped otherwise, it is closed.
struct Leased<DB: Database> {
    connection: Option<DB::Connection>,
    own: Arc<Own<DB>>,
    _permit: OwnedSemaphorePermit,
}

impl<DB: Database> Leased<DB> {
    fn connection(&mut self) -> &mut DB::Connection {
        self.connection
            .as_mut()
            .expect("a leased connection until finished")
    }

    /// Back to the idle set when `result` leaves the connection ready for another statement:
    /// success, or an error the database reported (a constraint, a syntax error); otherwise
    /// the connection is dropped here, which closes it.
    fn finish<T>(mut self, result: Result<T, Error>) -> Result<T, Error> {
        if matches!(result, Ok(_) | Err(Error::Database(_)))
            && let Some(connection) = self.connection.take()
            && !self.own.permits.is_closed()
        {
            self.own
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(connection);
        }
        result
    }
}

impl<'p, DB: Database> Executor<'p> for &'_ Pool<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Database = DB;

    /// Reads the whole answer before yielding it (our statements' answers are small; nothing
    /// streams a large one), so the connection goes back as soon as the statement is done.
    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, Error>>
    where
        E: 'q + Execute<'q, DB>,
    {
        let pool = self.clone();
        futures::stream::once(async move {
            let mut leased = pool.statement_connection().await?;
            let all = leased
                .connection()
                .fetch_many(query)
                .try_collect::<Vec<_>>()
                .await;
            leased.finish(all)
        })
        .map_ok(|all| futures::stream::iter(all.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
    where
        E: 'q + Execute<'q, DB>,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut leased = pool.statement_connection().await?;
            let row = leased.connection().fetch_optional(query).await;
            leased.finish(row)
        })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, Error>>
    where
        'p: 'e,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut leased = pool.statement_connection().await?;
            let statement = leased.connection().prepare_with(sql, parameters).await;
            leased.finish(statement)
        })
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<DB>, Error>>
    where
        'p: 'e,
    {
        let pool = self.clone();
        Box::pin(async move {
            let mut leased = pool.statement_connection().await?;
            let described = leased.connection().describe(sql).await;
            leased.finish(described)
        })
    }
}
