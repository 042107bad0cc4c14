//! The embedded store: one SQLite file, the default for `palaver serve`.
//!
//! # Durability
//!
//! The file runs in WAL mode with `synchronous=FULL`. WAL lets readers run beside the writer (a pull never waits
//! for a send), and FULL makes every commit fsync the WAL before it returns. `append_message` returning `Ok` is
//! what lets the server acknowledge a message, and an acknowledged message must never be lost: with FULL it
//! survives `kill -9` *and* a power cut. (`synchronous=NORMAL` would survive `kill -9` only, trading the last few
//! commits on power loss for fewer fsyncs; that trade is not ours to make silently.)
//!
//! # One writer, group commits
//!
//! SQLite lets one connection write at a time; a second writer gets `SQLITE_BUSY` and spins on `busy_timeout`.
//! So all writes go through a pool of exactly **one** connection: writers queue fairly on the pool instead of
//! polling the file lock, and within this process nothing can interleave with a write transaction.
//!
//! With one writer and an fsync per commit, one transaction per message would cap the store at 1/fsync
//! messages per second (~100/s on a 10 ms disk) however many clients send. So messages, the one write that is
//! hot, go through the append writer ([`writer`]): a task that commits every append queued at the time in one
//! transaction, one fsync for the batch, and answers each caller only after that commit. It checks the single
//! connection out of the write pool per batch, so the other (rare) writes simply take their turn between
//! batches. [`SqliteStore::commits`] counts its batches. Transactions
//! still open with `BEGIN IMMEDIATE`, which takes the write lock up front: a deferred `BEGIN` that reads first
//! (the clientMsgID lookup) and writes later could otherwise fail mid-way if another *process* wrote in between,
//! and with the lock taken first the "look up, then allocate" of an append is atomic against any writer.
//!
//! Reads go through a separate pool of a few connections opened with `query_only`, so a long pull or a login
//! sync never holds the writer, and a read can never take the write lock by mistake.
//!
//! # Portability
//!
//! The SQL here is meant to read the same on PostgreSQL (whose store will have its own migrations and `$n`
//! placeholders): `INSERT … ON CONFLICT … DO UPDATE … RETURNING` (SQLite ≥ 3.35), `COALESCE`, `CASE`, and no
//! SQLite-only functions such as two-argument `MAX()` or `json_each`. Lists are bound as `IN (?, ?, …)`.

#[macro_use]
mod accounts;
mod conversations;
#[macro_use]
mod groups;
mod messages;
mod relations;
mod versions;
mod writer;
// After `accounts` and `groups`, whose column-list macros it uses.
mod directory;

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Sqlite, Transaction};

use self::writer::AppendWriter;
use crate::{Result, StoreError};

/// The schema, embedded at compile time from `migrations/sqlite`.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Read connections. Reads are short index lookups; a few connections keep a slow one (a big pull) from
/// blocking the rest without holding many file handles (each process is capped at 20,000).
const READ_CONNECTIONS: u32 = 4;

/// How long a connection waits for a lock held by someone else (another process, or a WAL checkpoint) before
/// failing with `SQLITE_BUSY`. Within this process the single writer connection makes write-write waits moot.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Ids bound per `IN (…)` list. SQLite allows 32,766 variables per statement; smaller chunks keep statements
/// (and their cached plans) small, and PostgreSQL's limit (65,535) is never near.
const IN_CHUNK: usize = 500;

/// Palaver's storage in one SQLite file. Cheap to clone (the pools are shared).
#[derive(Clone)]
pub struct SqliteStore {
    /// Exactly one connection: the only one that writes (see the module docs).
    write: SqlitePool,
    /// `query_only` connections for everything that does not write. For an in-memory store this is the writer
    /// pool itself (see [`SqliteStore::open_in_memory`]).
    read: SqlitePool,
    /// The task that batches appends into group commits, on `write`'s connection (see [`writer`]). Shared by the
    /// clones: dropping the last one ends the task.
    writer: Arc<AppendWriter>,
    /// For an in-memory store: a second connection to the same (shared-cache) database that is never used, only
    /// held. An in-memory database vanishes when its last connection closes, and the pool may close its
    /// connection behind our back (an error, a dropped runtime); without this, the next query would silently
    /// open a fresh, empty database.
    _memory_keeper: Option<Arc<Mutex<SqliteConnection>>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let base = SqliteConnectOptions::new().filename(path).busy_timeout(BUSY_TIMEOUT).foreign_keys(true);
        let write_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // The writer is the bottleneck by design; a queue of sends must wait for it, not time out early.
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(write_options)
            .await?;
        MIGRATOR.run(&write).await.map_err(|e| StoreError::Backend(format!("migrating {}: {e}", path.display())))?;
        // Readers open after the writer has made the file WAL (a persistent setting), so they need not set it;
        // `synchronous` only matters to connections that commit.
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(base.pragma("query_only", "ON"))
            .await?;
        Ok(Self { writer: Arc::new(AppendWriter::new(write.clone())), write, read, _memory_keeper: None })
    }

    /// A private in-memory database, for tests. One pooled connection serves reads and writes: shared-cache
    /// connections lock whole tables against each other, so a read pool would only add `SQLITE_LOCKED` waits.
    /// That connection is never recycled (no idle timeout, no max lifetime), and a second, idle connection keeps
    /// the database alive whatever happens to it.
    pub async fn open_in_memory() -> Result<Self> {
        // `sqlite::memory:` names a fresh shared-cache database per call (`file:sqlx-in-memory-<n>`).
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.busy_timeout(BUSY_TIMEOUT).foreign_keys(true);
        let keeper = options.connect().await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Backend(format!("migrating in-memory db: {e}")))?;
        Ok(Self {
            writer: Arc::new(AppendWriter::new(pool.clone())),
            write: pool.clone(),
            read: pool,
            _memory_keeper: Some(Arc::new(Mutex::new(keeper))),
        })
    }

    /// Stops the append writer (appends already queued are committed and answered, later ones fail with
    /// `Backend`), then closes both pools, waiting for connections in use. Closing the writer last lets SQLite
    /// checkpoint the WAL into the main file. Dropping the store without calling this is safe too: every
    /// acknowledged append is already durable, and the writer task ends once the last clone is gone.
    pub async fn close(&self) {
        self.writer.shut_down().await;
        self.read.close().await;
        self.write.close().await;
    }

    /// How many batches the append writer has committed since this store was opened. Each is one fsync, so
    /// under concurrent appends this stays below the number of appends: what the group commit is for. For
    /// tests and metrics.
    pub fn commits(&self) -> u64 {
        self.writer.commits()
    }

    /// Starts a write transaction on the writer connection, taking SQLite's write lock at once.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl SqliteStore {
    /// The rows of `sql(placeholders)` for all of `ids`, [`IN_CHUNK`] ids per query (SQLite caps bound
    /// parameters). `scope`, if given, is bound before the ids (the owner or group the ids belong to).
    async fn select_in<T>(
        &self,
        sql: impl Fn(&str) -> String,
        scope: Option<&str>,
        ids: &[String],
        map: impl Fn(&sqlx::sqlite::SqliteRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql(&placeholders(chunk.len()))));
            if let Some(scope) = scope {
                q = q.bind(scope);
            }
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(&self.read).await? {
                out.push(map(&row)?);
            }
        }
        Ok(out)
    }
}

/// `?, ?, …, ?` with `n` placeholders, for `IN (…)` lists. The only text ever formatted into SQL here.
fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// Maps a unique violation to `AlreadyExists(what)` and anything else to `Backend`.
fn unique_as_exists(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::AlreadyExists(what()),
        _ => e.into(),
    }
}

/// Now, in milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The durability and safety settings the module docs promise are the ones the connections really run with.
    #[tokio::test]
    async fn connections_run_with_the_documented_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
        async fn text(pool: &SqlitePool, sql: &'static str) -> String {
            sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
        }
        async fn int(pool: &SqlitePool, sql: &'static str) -> i64 {
            sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
        }
        assert_eq!(text(&store.write, "PRAGMA journal_mode").await, "wal");
        assert_eq!(int(&store.write, "PRAGMA synchronous").await, 2, "FULL");
        assert_eq!(int(&store.write, "PRAGMA foreign_keys").await, 1);
        let busy = i64::try_from(BUSY_TIMEOUT.as_millis()).unwrap();
        assert_eq!(int(&store.write, "PRAGMA busy_timeout").await, busy);
        assert_eq!(int(&store.read, "PRAGMA query_only").await, 1);
        assert_eq!(text(&store.read, "PRAGMA journal_mode").await, "wal");
        let write = sqlx::query("CREATE TABLE nope (x INTEGER)").execute(&store.read).await;
        assert!(write.is_err(), "a read connection wrote");
        store.close().await;
    }

    #[test]
    fn placeholders_lists() {
        assert_eq!(placeholders(0), "");
        assert_eq!(placeholders(1), "?");
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
