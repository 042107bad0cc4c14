//! Synchronous read connections, used inline on the caller's thread, for the reads on the hot paths.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands it every statement over a channel: one
//! statement costs two context switches. A login is about two dozen reads (its token on every request, version
//! heads, the conversation list, seqs, the pull), and on a server pinned to one core those switches were ~40 %
//! of a login's CPU (`palaver bench login`, see BENCHMARKS.md). An indexed read of pages the OS has cached takes
//! a few microseconds, less than the switches it would cost to hand it off, so the hot reads run here instead:
//! plain rusqlite connections (the same bundled SQLite), `query_only`, statements prepared once and cached,
//! borrowed from a small idle list and run right where the caller is. Blocking an async worker for that long
//! is cheaper than not. Reads that may scan a lot (searches, admin listings, big paged lists) stay on the sqlx
//! pool, off the runtime's threads.
//!
//! Each statement is its own read transaction, exactly as on the sqlx pool: a read sees every commit made
//! before it started (WAL), never a part of one.

use std::sync::Mutex;

use rusqlite::Connection;

use super::DbFile;
use crate::Result;

/// Idle connections kept. One is in use per thread reading at the moment (the runtime's workers and blocking
/// threads), so a few cover a server; more are opened when needed and closed when not kept.
const MAX_IDLE: usize = 8;

/// Prepared statements cached per connection: the hot reads, and their `IN (…)` shapes.
const STATEMENT_CACHE: usize = 64;

pub(super) struct Readers {
    file: DbFile,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Opens one connection at once, so that a database that cannot be read fails the store's opening.
    pub(super) fn open(file: DbFile) -> Result<Self> {
        let readers = Self { file, idle: Mutex::new(Vec::new()) };
        let first = readers.connect()?;
        readers.idle().push(first);
        Ok(readers)
    }

    /// Runs `f` on an idle connection (opening one if none is idle) on this thread.
    pub(super) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.idle().pop();
        let conn = match conn {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let result = f(&conn);
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        result
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn connect(&self) -> Result<Connection> {
        let conn = self.file.connect()?;
        conn.execute_batch("PRAGMA query_only = ON;")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

/// The rows `map` makes of `sql(placeholders)` run for all of `ids`, [`super::IN_CHUNK`] ids per statement.
/// `scope`, if given, is bound before the ids (the owner the ids belong to).
pub(super) fn select_in<T>(
    conn: &Connection,
    sql: impl Fn(&str) -> String,
    scope: Option<&str>,
    ids: &[String],
    mut map: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(super::IN_CHUNK) {
        let mut stmt = conn.prepare_cached(&sql(&super::placeholders(chunk.len())))?;
        let params = scope.into_iter().chain(chunk.iter().map(String::as_str));
        out.extend(all(stmt.query(rusqlite::params_from_iter(params))?, &mut map)?);
    }
    Ok(out)
}

/// Every row of `rows`, made into a `T` by `map` (which, unlike rusqlite's `query_map`, may fail with any
/// store error: a stored message that does not decode, say).
pub(super) fn all<T>(
    mut rows: rusqlite::Rows<'_>,
    mut map: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}
