//! The PostgreSQL store: what N Palaver nodes share (`--database-url postgres://…`).
//!
//! It implements the same traits, with the same documented behaviour, as the SQLite store, and runs the same
//! test bodies (every suite in `crates/store/tests/` runs each body on both stores). What differs is concurrency: SQLite has one writer, so nothing
//! ever races there; here every node's pool writes at once, so each invariant rests on PostgreSQL's locks:
//!
//! - **Gap-free seqs across nodes.** `append_message` starts its transaction with the upsert that bumps the
//!   conversation's counter row (`INSERT … ON CONFLICT DO UPDATE SET max_seq = max_seq + 1 RETURNING`). The row
//!   lock it takes is held until commit, so every other writer of that conversation, on any node, waits; a
//!   rollback returns the number. The seq is 1, 2, 3, … with no gap and no duplicate.
//! - **Idempotent append.** With the counter row locked, the clientMsgID lookup is authoritative: under READ
//!   COMMITTED each statement sees everything committed before it, including a duplicate that committed while
//!   this transaction waited for the lock. A duplicate rolls back (giving the seq back) and returns the original.
//! - **Commit before return.** `Ok` is returned after `COMMIT` returns, which with PostgreSQL's default
//!   `synchronous_commit = on` means the WAL is flushed. [`PgStore::connect`] warns if the server says otherwise.
//! - **No deadlock by design, retry by need.** Transactions that lock several rows lock them in one order (the
//!   counter row first, then version lists sorted by owner), and a transaction that still loses a deadlock (or
//!   a serialisation conflict) is retried whole a few times, as Zed's collab does.
//!
//! PostgreSQL does group commit itself (concurrent committers share WAL flushes), so unlike SQLite there is no
//! append writer task: each append is one short transaction on the pool.
//!
//! Lists are bound as arrays (`= ANY($1)`), one statement however long the list.

#[macro_use]
mod accounts;
mod app;
mod conversations;
#[macro_use]
mod groups;
mod messages;
mod objects;
mod relations;
mod versions;
// After `accounts` and `groups`, whose column-list macros it uses.
mod directory;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::{Result, StoreError};

/// The schema, embedded at compile time from `migrations/postgres`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per node unless configured. PostgreSQL's default `max_connections` is 100, shared by every node
/// (and by `psql`, migrations, monitoring): 16 per node leaves room for five nodes and the rest.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

/// How many times a transaction that lost a deadlock or a serialisation conflict is run again.
const MAX_RETRIES: u32 = 8;

/// Palaver's storage in a PostgreSQL database. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`, with `?options[search_path]=schema` to use a schema
    /// other than `public`) and brings the schema up to date. Nodes starting at once are safe: the migrator
    /// holds an advisory lock while it migrates.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let options = PgConnectOptions::from_str(url).map_err(|e| StoreError::Backend(format!("database URL: {e}")))?;
        Self::connect_with(options, max_connections).await
    }

    /// [`PgStore::connect`] with options already parsed (tests use it to pick a schema).
    pub async fn connect_with(options: PgConnectOptions, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        create_missing_schema(&pool).await?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Backend(format!("migrating PostgreSQL: {e}")))?;
        let synchronous: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&pool).await?;
        if synchronous == "off" {
            tracing::warn!(
                "PostgreSQL runs with synchronous_commit = off: a crash of the database may lose messages that \
                 Palaver has already acknowledged"
            );
        }
        Ok(Self { pool })
    }

    /// Creates `schema` in the database at `url` if it does not exist (for tests and side-by-side installs; the
    /// name is quoted, so any text is safe).
    pub async fn create_schema(url: &str, schema: &str) -> Result<()> {
        let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
        let sql = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(schema));
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
        pool.close().await;
        Ok(())
    }

    /// Drops `schema` and everything in it.
    pub async fn drop_schema(url: &str, schema: &str) -> Result<()> {
        let pool = PgPoolOptions::new().max_connections(1).connect(url).await?;
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(schema));
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await?;
        pool.close().await;
        Ok(())
    }

    /// The pool, for `palaver admin migrate` (which copies rows table by table) and for tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A plain write transaction (for the ones that lock rows in one order, so cannot deadlock; the others use
    /// [`transaction!`], which retries).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates the first schema of the connection's `search_path` if none of them exists (`current_schema()` is
/// then NULL), so that `?options[search_path]=NAME` in the URL is all a new install (or a test) needs. Nodes
/// starting together may race here: losing is fine, as long as the schema exists afterwards.
async fn create_missing_schema(pool: &PgPool) -> Result<()> {
    let current: Option<String> = sqlx::query_scalar("SELECT current_schema()").fetch_one(pool).await?;
    if current.is_some() {
        return Ok(());
    }
    let path: String = sqlx::query_scalar("SELECT current_setting('search_path')").fetch_one(pool).await?;
    let first = path.split(',').next().unwrap_or_default().trim().trim_matches('"');
    if first.is_empty() || first == "$user" {
        return Err(StoreError::Backend(format!("no schema of search_path {path:?} exists")));
    }
    let create = format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(first));
    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(create)).execute(pool).await {
        let exists: Option<String> = sqlx::query_scalar("SELECT current_schema()").fetch_one(pool).await?;
        if exists.is_none() {
            return Err(e.into());
        }
    }
    tracing::info!(schema = first, "created the database schema");
    Ok(())
}

/// `"name"`, with embedded quotes doubled: an identifier that is safe to format into SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether `e` is worth running the transaction again for: a deadlock (40P01) or a serialisation failure
/// (40001). The codes travel in the error text (see `From<sqlx::Error> for StoreError`).
fn retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Backend(m) if m.contains("[SQLSTATE 40P01]") || m.contains("[SQLSTATE 40001]"))
}

/// A short, growing, jittered pause before retry `attempt` (1-based), so that two transactions that deadlocked
/// do not meet again in lockstep.
async fn backoff(attempt: u32) {
    let base = 2u64.saturating_pow(attempt.min(6));
    let jitter: u64 = rand::random::<u64>() % base.max(1);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// Runs `$body` in a transaction bound to `$tx` (a `Transaction` that derefs to `&mut PgConnection`), commits
/// it, and runs it again from the start if it lost a deadlock or a serialisation conflict. An error from
/// `$body` rolls back (dropping the transaction does that).
macro_rules! transaction {
    ($store:expr, |$tx:ident| $body:block) => {{
        let mut attempt = 0u32;
        loop {
            let mut $tx = $store.pool.begin().await?;
            let result: $crate::Result<_> = async { $body }.await;
            let outcome = match result {
                Ok(value) => $tx.commit().await.map(|()| value).map_err($crate::StoreError::from),
                Err(e) => Err(e),
            };
            match outcome {
                Err(e) if $crate::postgres::retryable(&e) && attempt < $crate::postgres::MAX_RETRIES => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %e, "retrying a PostgreSQL transaction");
                    $crate::postgres::backoff(attempt).await;
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use transaction;

/// Maps a unique violation to `AlreadyExists(what)` and anything else to `Backend`.
fn unique_as_exists(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::AlreadyExists(what()),
        _ => e.into(),
    }
}

/// SQL written with SQLite's placeholders (`?` in bind order, or `?N`) in PostgreSQL's (`$N`). The modules
/// ported from the SQLite store (app, objects, conversations, relations, groups) keep their SQL text as it is
/// there, dynamic `IN (?, ?, …)` lists included, and number it here; `?` inside string literals is left alone.
pub(crate) fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 0;
    let mut in_string = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_string = !in_string;
                out.push(c);
            }
            '?' if !in_string => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    out.push_str(&format!("${next}"));
                } else {
                    out.push('$');
                    out.push_str(&digits);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// `?, ?, …, ?` with `n` placeholders, numbered later by [`pg_sql`].
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Ids bound per `IN (…)` list (PostgreSQL allows 65,535 parameters).
const IN_CHUNK: usize = 500;

impl PgStore {
    /// As the SQLite store's `select_in`: the rows of `sql(placeholders)` for all of `ids`, in chunks, with
    /// `scope` bound before the ids.
    async fn select_in<T>(
        &self,
        sql: impl Fn(&str) -> String,
        scope: Option<&str>,
        ids: &[String],
        map: impl Fn(&sqlx::postgres::PgRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let text = pg_sql(&sql(&placeholders(chunk.len())));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(text));
            if let Some(scope) = scope {
                q = q.bind(scope);
            }
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push(map(&row)?);
            }
        }
        Ok(out)
    }
}

/// Now, in milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `ids` without repeats, in first-seen order (PostgreSQL refuses an upsert that touches one row twice).
fn unique(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_strings() {
        assert_eq!(pg_sql("a = ? AND b IN (?, ?) AND c = '?'"), "a = $1 AND b IN ($2, $3) AND c = '?'");
        assert_eq!(pg_sql("a = ?2 OR b = ?1"), "a = $2 OR b = $1");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a"), "\"a\"");
        assert_eq!(quote_ident("a\"; drop"), "\"a\"\"; drop\"");
    }

    #[test]
    fn only_deadlocks_and_serialisation_failures_retry() {
        assert!(retryable(&StoreError::Backend("x [SQLSTATE 40P01]".into())));
        assert!(retryable(&StoreError::Backend("x [SQLSTATE 40001]".into())));
        assert!(!retryable(&StoreError::Backend("x [SQLSTATE 23505]".into())));
        assert!(!retryable(&StoreError::NotFound("x".into())));
    }
}
