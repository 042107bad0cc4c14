//! The embedded store: one SQLite file, the default for `palaver serve`.
//!
//! # Durability
//!
//! `append_message` returning `Ok` is what lets the server acknowledge a message, and an acknowledged message must
//! never be lost: it survives `kill -9` *and* a power cut. A message is durable once it is in the message journal
//! ([`journal`]: its bytes appended to a file and `fdatasync`ed); SQLite gets it a few seconds later, from the
//! [`flusher`], and until then the [`memtable`] holds it for every read. Opening the store replays whatever journal
//! a previous run left. Everything else is committed into SQLite directly.
//!
//! The file runs in WAL mode with `synchronous=FULL`. WAL lets readers run beside the writers (a pull never waits
//! for a send), and FULL makes every commit fsync the WAL before it returns. (`synchronous=NORMAL` would survive
//! `kill -9` only, trading the last few commits on power loss for fewer fsyncs; that trade is not ours to make
//! silently.)
//!
//! # Writers, group commits
//!
//! SQLite lets one connection write at a time; a second writer waits on `busy_timeout`. Writes therefore go
//! through few connections, each queueing its own callers fairly instead of polling the file lock:
//!
//! - messages, the one write that is hot, go through the append writer ([`writer`]): a thread that makes every
//!   append queued at the time durable in one journal write, one fsync for the batch, and answers each caller
//!   only after it. With one fsync per message, the store would be capped at 1/fsync messages per second (~100/s
//!   on a 10 ms disk) however many clients send. [`SqliteStore::commits`] counts its batches. Its connection
//!   only reads (a batch's checks); a first message's conversation rows are journaled with it;
//! - the flusher's connection writes the journal's segments into the message log, and the conversation rows
//!   their first messages create (see [`memtable`] for how a read finds them before). Its commits alone do not
//!   fsync: the messages are durable in the journal until one fsync of the WAL at the segment's end (see
//!   [`flusher`]);
//! - every other (rare) write goes through a sqlx pool of exactly **one** connection.
//!
//! Transactions open with `BEGIN IMMEDIATE`, which takes the write lock up front: a deferred `BEGIN` that reads
//! first and writes later could otherwise fail mid-way if another writer (or another *process*) wrote in between.
//!
//! # One process
//!
//! By default a store holds its file alone ([`Sharing::Exclusive`]): SQLite's `unix-excl` layer locks the file
//! against other processes once, and keeps the WAL's index in this process's memory rather than in a shared
//! `-shm` file, so that a read transaction costs no file-lock system calls. [`Sharing::Shared`] lets other
//! processes open the file while the store runs, at that cost.
//!
//! Reads go through connections of their own opened with `query_only`, so a long pull or a login sync never
//! holds the writer, and a read can never take the write lock by mistake: the hot reads (tokens, version heads,
//! conversations, seqs, pulls) on synchronous connections run inline ([`reader`]), the rest on a sqlx pool of a
//! few connections.
//!
//! # Portability
//!
//! The SQL here is meant to read the same on PostgreSQL (whose store, [`crate::postgres`], has its own
//! migrations and `$n` placeholders): `INSERT … ON CONFLICT … DO UPDATE … RETURNING` (SQLite ≥ 3.35), `COALESCE`, `CASE`, and no
//! SQLite-only functions such as two-argument `MAX()` or `json_each`. Lists are bound as `IN (?, ?, …)`.
//!
//! A bound `LIMIT` is written `LIMIT CAST(? AS INTEGER)`: SQLite re-prepares a statement whose `LIMIT` is a bare
//! parameter every time it runs (the value may change the plan), so a cached history pull was parsed and
//! planned anew on each page (~5 % of a login's CPU, `palaver bench login`).

#[macro_use]
mod accounts;
mod app;
mod conversations;
mod flusher;
#[macro_use]
mod groups;
mod journal;
mod marked;
mod memtable;
mod messages;
mod objects;
mod reader;
mod relations;
mod sched;
mod versions;
mod writer;
// After `accounts` and `groups`, whose column-list macros it uses.
mod directory;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};

use self::marked::MarkedConversations;
use self::memtable::Memtable;
use self::reader::Readers;
use self::writer::{AppendWriter, PreconditionChanges};
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

/// Whether other processes may open a store's database file while it is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// This process alone. SQLite's `unix-excl` layer takes an exclusive lock on the file once, at the first read,
    /// and keeps the WAL's index in this process's memory instead of the `-shm` file: a read transaction takes no
    /// file lock, where the shared index costs two to four `fcntl` calls per read (about a tenth of a login's CPU,
    /// `palaver bench login`; BENCHMARKS.md). Another process opening the file meanwhile fails with "database is
    /// locked".
    Exclusive,
    /// Other processes may open the file meanwhile (`palaver admin migrate` copying from a running node, the
    /// `sqlite3` shell, a backup tool): SQLite's default `unix` layer, its index of the WAL shared in `-shm`.
    Shared,
}

/// The database file and how a store's connections open it. They must all open it the same way: an exclusive
/// store's index of the WAL is memory its connections share, which a connection through another layer would not
/// see.
#[derive(Clone, Debug)]
struct DbFile {
    path: PathBuf,
    sharing: Sharing,
}

impl DbFile {
    fn new(path: &Path, sharing: Sharing) -> Self {
        Self { path: path.to_path_buf(), sharing }
    }

    /// SQLite's name for the layer between it and the file system (its "VFS").
    fn vfs(&self) -> &'static str {
        match self.sharing {
            Sharing::Exclusive => "unix-excl",
            Sharing::Shared => "unix",
        }
    }

    /// A synchronous connection, waiting up to [`BUSY_TIMEOUT`] for locks.
    fn connect(&self) -> Result<rusqlite::Connection> {
        let conn =
            rusqlite::Connection::open_with_flags_and_vfs(&self.path, rusqlite::OpenFlags::default(), self.vfs())?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }

    /// sqlx's options for a connection like [`DbFile::connect`]'s, with foreign keys on.
    fn options(&self) -> SqliteConnectOptions {
        SqliteConnectOptions::new().filename(&self.path).vfs(self.vfs()).busy_timeout(BUSY_TIMEOUT).foreign_keys(true)
    }
}

/// Palaver's storage in one SQLite file. Cheap to clone (the pools are shared).
#[derive(Clone)]
pub struct SqliteStore {
    /// Exactly one connection: the one that makes every write but appends (see the module docs).
    write: SqlitePool,
    /// `query_only` connections for the reads that are not hot.
    read: SqlitePool,
    /// Synchronous `query_only` connections for the hot reads, run on the caller's thread (see [`reader`]).
    readers: Arc<Readers>,
    /// The thread that batches appends into group commits of the message journal, on a connection of its own
    /// (see [`writer`]). Shared by the clones: dropping the last one ends the thread.
    writer: Arc<AppendWriter>,
    /// The messages journaled but not yet flushed into SQLite, which every message read merges in.
    memtable: Arc<Memtable>,
    /// The conversations that have marks (revokes, deletions), so that pulls of the others skip asking.
    marked: Arc<MarkedConversations>,
    /// Raised by every write that may change an append's precondition; the append writer remembers answers
    /// until it moves.
    precondition_changes: Arc<PreconditionChanges>,
    /// For [`SqliteStore::open_in_memory`]: removes the database's files when the last clone is dropped.
    _scratch: Option<Arc<ScratchFiles>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` for this process alone ([`Sharing::Exclusive`]) and
    /// brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, Sharing::Exclusive).await
    }

    /// [`SqliteStore::open`], saying whether other processes may open the file meanwhile.
    pub async fn open_with(path: &Path, sharing: Sharing) -> Result<Self> {
        let file = DbFile::new(path, sharing);
        let base = file.options();
        let write_options = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // The writer is the bottleneck by design; a queue of writes must wait for it, not time out early.
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(write_options)
            .await?;
        MIGRATOR.run(&write).await.map_err(|e| StoreError::Backend(format!("migrating {}: {e}", path.display())))?;
        // Readers and the append writer open after the first connection has made the file WAL (a persistent
        // setting), so they need not set it; `synchronous` only matters to connections that commit.
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(base.pragma("query_only", "ON"))
            .await?;
        let readers = Arc::new(Readers::open(file.clone())?);
        let marked = Arc::new(readers.read(MarkedConversations::load)?);
        let memtable = Arc::new(Memtable::default());
        let precondition_changes = Arc::new(PreconditionChanges::default());
        let writer = Arc::new(AppendWriter::start(&file, memtable.clone(), precondition_changes.clone())?);
        Ok(Self { write, read, readers, writer, memtable, marked, precondition_changes, _scratch: None })
    }

    /// A private, throwaway database in memory, for tests: a file on `/dev/shm` (the RAM-backed file system;
    /// the system's temporary folder where there is none), removed when the last clone of the store is dropped.
    /// It is a real file rather than SQLite's `:memory:` so that it runs exactly like [`SqliteStore::open`]:
    /// WAL, a read pool, and the append writer's own connection.
    pub async fn open_in_memory() -> Result<Self> {
        let dir = Path::new("/dev/shm");
        let dir = if dir.is_dir() { dir.to_path_buf() } else { std::env::temp_dir() };
        let name = format!("palaver-scratch-{}-{:016x}.db", std::process::id(), rand::random::<u64>());
        let scratch = ScratchFiles(dir.join(name));
        let mut store = Self::open(&scratch.0).await?;
        store._scratch = Some(Arc::new(scratch));
        Ok(store)
    }

    /// Stops the append writer (appends already queued are made durable and answered, later ones fail with
    /// `Backend`; the journal is flushed into SQLite), then closes both pools, waiting for connections in use.
    /// Closing the write pool last lets SQLite checkpoint the WAL into the main file. Dropping the store without
    /// calling this is safe too: every acknowledged append is already durable, and the writer thread ends once the
    /// last clone is gone.
    pub async fn close(&self) {
        self.writer.shut_down().await;
        self.read.close().await;
        self.write.close().await;
    }

    /// How many batches of new messages the append writer has made durable since this store was opened. Each is
    /// one fsync, so under concurrent appends this stays below the number of appends: what the group commit is
    /// for. For tests and metrics.
    pub fn commits(&self) -> u64 {
        self.writer.commits()
    }

    /// Returns once every message appended before the call is in SQLite itself, not only in the journal (which
    /// is as durable: this is for tests and tools that look at the database file).
    pub async fn flush(&self) -> Result<()> {
        self.writer.flush().await
    }

    /// Returns once `owner`'s conversation rows that journaled messages carry are in SQLite (at once if none are
    /// waiting): call before reading or changing an owner's conversation rows or conversation list, which SQLite
    /// alone answers (see [`memtable`]).
    async fn rows_flushed(&self, owner: &str) -> Result<()> {
        if self.memtable.has_unflushed_rows(owner) {
            self.writer.flush().await?;
        }
        Ok(())
    }

    /// Says that a write which may change an append's precondition has committed (see `writer`): call it before
    /// answering the caller.
    fn preconditions_changed(&self) {
        self.precondition_changes.raise();
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

/// Replays what a store that did not close (a killed server) left in the message journal of the database at `db`
/// into the file itself, as opening a store would, without opening one. `false`, and nothing done, while another
/// store (a running server) owns the journal: the file then holds what that store has flushed, a second or so
/// behind. For tools that read the file directly.
pub fn replay_journal(db: &Path) -> Result<bool> {
    let Some(_lock) = journal::lock(db)? else { return Ok(false) };
    // Shared: the tool then opens the file through SQLite's default layer, as any other program would.
    flusher::replay(&DbFile::new(db, Sharing::Shared))?;
    Ok(true)
}

/// Bytes on disk of the message journal of the database at `db` (its segments and spares).
pub fn journal_bytes(db: &Path) -> u64 {
    let files = journal::files(db).unwrap_or_default();
    files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum()
}

/// The files of a scratch database ([`SqliteStore::open_in_memory`]), removed on drop.
struct ScratchFiles(std::path::PathBuf);

impl Drop for ScratchFiles {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-log.lock"] {
            let _ = std::fs::remove_file(journal::sibling(&self.0, suffix));
        }
        for file in journal::files(&self.0).unwrap_or_default() {
            let _ = std::fs::remove_file(file);
        }
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
        // The synchronous readers: the same guarantees, on connections of their own.
        let pragma = |sql: &str| store.readers.read(|conn| Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))?));
        assert_eq!(pragma("PRAGMA query_only").unwrap(), 1);
        assert_eq!(pragma("PRAGMA busy_timeout").unwrap(), busy);
        let write = store.readers.read(|conn| Ok(conn.execute("CREATE TABLE nope (x INTEGER)", [])?));
        assert!(write.is_err(), "a synchronous reader wrote");
        store.close().await;
    }

    /// A cached history pull runs as prepared: its `LIMIT` (a different value on each page) does not make SQLite
    /// parse and plan it again, as a bare `LIMIT ?` does (see the module docs).
    #[tokio::test]
    async fn a_history_page_is_not_prepared_again_for_each_limit() {
        use crate::MessageStore as _;
        let store = SqliteStore::open_in_memory().await.unwrap();
        for limit in [20, 7, 100, 1] {
            store.messages_in_range("si_a_b", 1, 1_000, limit).await.unwrap();
        }
        let reprepared = |sql: &str| {
            store.readers.read(|conn| Ok(conn.prepare_cached(sql)?.get_status(rusqlite::StatementStatus::RePrepare)))
        };
        assert_eq!(reprepared(messages::RANGE).unwrap(), 0);
        // The check itself can fail: the same statement with a bare `LIMIT ?4` is prepared again on every run.
        let bare = messages::RANGE.replace("CAST(?4 AS INTEGER)", "?4");
        for limit in [20, 7] {
            store
                .readers
                .read(|conn| {
                    Ok(conn
                        .prepare_cached(&bare)?
                        .query_map(rusqlite::params!["si_a_b", 1, 9, limit], |_| Ok(()))?
                        .count())
                })
                .unwrap();
        }
        assert!(reprepared(&bare).unwrap() > 0);
        store.close().await;
    }

    /// A synchronous reader sees what either writer committed before the read began, with no reopening.
    #[tokio::test]
    async fn readers_see_every_commit() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let count =
            || store.readers.read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))?));
        assert_eq!(count().unwrap(), 0);
        sqlx::query("INSERT INTO users (user_id, nickname, create_time) VALUES ('u1', 'one', 0)")
            .execute(&store.write)
            .await
            .unwrap();
        assert_eq!(count().unwrap(), 1);
        store.close().await;
    }

    /// A database made before the conversation and version tables were keyed by their primary keys (migration 8)
    /// keeps every row through the rebuild, and the store reads them as before; the rebuilt tables have no rowid.
    #[tokio::test]
    async fn an_install_from_before_the_keyed_tables_keeps_its_rows() {
        use crate::{ConversationStore as _, VersionKind, VersionStore as _};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
        let old = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
        MIGRATOR.run_to(7, &old).await.unwrap();
        for sql in [
            "INSERT INTO conversations (owner_user_id, conversation_id, conversation_type, user_id, is_pinned, \
             has_read_seq, max_seq_cap) VALUES ('alice', 'si_alice_bob', 1, 'bob', 1, 4, 9)",
            "INSERT INTO version_lists (kind, owner, version_id, version, min_version) \
             VALUES ('conversations', 'alice', 'v1', 3, 1)",
            "INSERT INTO version_log (kind, owner, element_id, change, version) \
             VALUES ('conversations', 'alice', 'si_alice_bob', 1, 3)",
        ] {
            sqlx::query(sql).execute(&old).await.unwrap();
        }
        old.close().await;

        let store = SqliteStore::open(&path).await.unwrap();
        let rows = store.user_conversations("alice").await.unwrap();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!((row.conversation_id.as_str(), row.user_id.as_str()), ("si_alice_bob", "bob"));
        assert!(row.is_pinned);
        assert_eq!((row.has_read_seq, row.max_seq_cap), (4, Some(9)));
        let delta = store.version_changes(VersionKind::Conversations, "alice", 1, 10).await.unwrap();
        assert_eq!((delta.head.version_id.as_str(), delta.head.version), ("v1", 3));
        assert_eq!(delta.changes, vec![("si_alice_bob".to_string(), crate::Change::Insert)]);
        for table in ["conversations", "version_lists", "version_log"] {
            let sql: String = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?")
                .bind(table)
                .fetch_one(&store.read)
                .await
                .unwrap();
            assert!(sql.ends_with("WITHOUT ROWID"), "{table}: {sql}");
        }
        store.close().await;
    }

    #[test]
    fn placeholders_lists() {
        assert_eq!(placeholders(0), "");
        assert_eq!(placeholders(1), "?");
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
