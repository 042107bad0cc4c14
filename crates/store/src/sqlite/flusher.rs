//! The flusher: a thread that moves closed journal segments into SQLite, sorted by conversation.
//!
//! The writer closes a segment about once a second ([`super::writer::SEGMENT_AGE`]) and hands its messages over.
//! Sorted by `(conversation, seq)`, each conversation's messages of that second go into the log's index leaves
//! together, in chunks of at most [`CHUNK`] per transaction. Each chunk also moves its senders' read cursors, and
//! every [`CHUNK`] messages the WAL is checkpointed into the database, here, off the path of any append. Once the
//! segment is committed and the WAL synced, its messages leave the memtable and its file is retired.
//!
//! # Why a chunk ends early, and commits without an fsync
//!
//! The append writer needs SQLite's write lock too (a new conversation's rows), with a batch of appends waiting
//! on it, so it [goes first](super::write_lock): a chunk ends as soon as the writer asks. And a chunk's commit
//! does not fsync (`synchronous = NORMAL`), which held the lock 20–80 ms a commit here: nothing needs a chunk
//! durable before the segment's end, when one fsync of the WAL covers every chunk of it, before the segment's
//! file, until then the messages' durable copy, is retired. (The WAL's frames leave it only for a checkpoint that
//! syncs the database file first.)
//!
//! # Why it runs in the background
//!
//! A flush is a burst: a second's messages take a few hundred milliseconds of CPU, all at once. On a core shared
//! with the gateway's thread at equal priority, the gateway got half the core or less for the length of the
//! burst, fell behind, and what arrived meanwhile waited: where one core carries 10,000 messages a second about
//! three quarters busy, send→deliver p99 was 56–269 ms, nearly every second of a run holding a message 50–200 ms
//! late (BENCHMARKS.md, "The third machine again: the flusher yields"). Nothing waits for a flush but the next
//! one, so the thread lowers its own priority as it starts
//! ([`run_in_the_background`](super::sched::run_in_the_background), ten nice steps): where the gateway wants
//! the core, the flusher gets about a tenth of it, and otherwise all of it. The same runs: p99 26–43 ms.
//!
//! Ten steps, not `SCHED_IDLE`: the flusher holds SQLite's write lock for a chunk and the memtable's locks for a
//! moment, and a thread that runs only when the core would otherwise idle makes whoever waits for those locks
//! wait until it does (one such run stalled a writer batch for half a second). And a thread may lower its
//! priority but not raise it again without a privilege, so the flusher keeps a share with which it catches up on
//! a core that stays busy. If it falls a segment behind all the same, the writer waits for it (the hand-over holds
//! one segment), which slows appends rather than grow the memtable.
//!
//! Every statement is idempotent (`ON CONFLICT DO NOTHING`, cursors only rise), so a segment flushed twice (a
//! retry after a failed chunk, or a replay of a segment whose file outlived its flush) stores each message once.
//! Opening the store replays what a previous run left ([`replay`]) with the same statements.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use super::journal::{self, Record};
use super::memtable::{Entry, Memtable};
use super::messages::decode;
use super::write_lock::WriteLock;
use super::writer::SEGMENT_AGE;
use crate::{Result, StoreError};

/// Most messages per SQLite transaction of a flush.
const CHUNK: usize = 4_096;

/// Attempts at flushing a segment before the flusher gives up until the next start (which replays it).
const ATTEMPTS: u32 = 30;

/// A closed segment, from the writer.
pub(super) struct Segment {
    /// `None` when nothing was closed (a flush asked for with nothing to flush).
    pub number: Option<u64>,
    pub entries: Vec<Arc<Entry>>,
    /// Answered once everything up to this segment is in SQLite.
    pub done: Vec<oneshot::Sender<()>>,
}

/// Starts the thread. It ends when the writer drops its end of `segments`, after flushing what it was sent.
/// `tick` asks the writer to hand over its segment if it is due (the writer only looks when it wakes up).
pub(super) fn start(
    db: &Path,
    busy_timeout: Duration,
    memtable: Arc<Memtable>,
    write_lock: Arc<WriteLock>,
    segments: Receiver<Segment>,
    tick: impl Fn() + Send + 'static,
) -> Result<JoinHandle<()>> {
    let conn = connect(db, busy_timeout)?;
    let db = db.to_path_buf();
    std::thread::Builder::new()
        .name("sqlite-flusher".into())
        .spawn(move || {
            super::sched::run_in_the_background();
            let mut flusher = Flusher { conn, db, memtable, write_lock, stuck: false };
            loop {
                match segments.recv_timeout(SEGMENT_AGE) {
                    Ok(segment) => flusher.flush(segment),
                    Err(RecvTimeoutError::Timeout) => tick(),
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        })
        .map_err(|e| StoreError::Backend(format!("starting the flusher: {e}")))
}

/// Writes the segments a previous run left into SQLite and retires them. Returns the number for the next segment.
/// For the journal's owner (see [`journal::lock`]) only.
pub(super) fn replay(db: &Path, busy_timeout: Duration) -> Result<u64> {
    let segments = journal::segments(db)?;
    let Some(&(last, _)) = segments.last() else { return Ok(1) };
    let conn = connect(db, busy_timeout)?;
    // Nothing else writes yet.
    let write_lock = WriteLock::default();
    for (number, path) in segments {
        let records = journal::read_segment(&path, number)?;
        let entries = records.into_iter().map(|r| entry(number, r)).collect::<Result<Vec<_>>>()?;
        tracing::info!(segment = %path.display(), messages = entries.len(), "replaying the message journal");
        write(&conn, db, &write_lock, &entries)?;
        journal::retire_segment(db, number)?;
    }
    Ok(last + 1)
}

fn connect(db: &Path, busy_timeout: Duration) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(busy_timeout)?;
    // Commits without an fsync: [`write`] syncs the WAL once, at the segment's end (see the module's docs), and
    // checkpoints it as it goes.
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;")?;
    Ok(conn)
}

/// A replayed record as the memtable would have held it.
fn entry(segment: u64, record: Record) -> Result<Arc<Entry>> {
    let data = decode(&record.blob)?;
    Ok(Arc::new(Entry {
        seq: data.seq,
        send_time: data.send_time,
        client_msg_id: (!data.client_msg_id.is_empty()).then_some(data.client_msg_id),
        server_msg_id: data.server_msg_id,
        send_id: data.send_id,
        segment,
        record,
    }))
}

struct Flusher {
    conn: rusqlite::Connection,
    db: PathBuf,
    memtable: Arc<Memtable>,
    write_lock: Arc<WriteLock>,
    /// A segment could not be flushed: later ones are not either (their messages stay in the memtable, in order,
    /// and in the journal, which the next start replays).
    stuck: bool,
}

impl Flusher {
    fn flush(&mut self, Segment { number, entries, done }: Segment) {
        if let Some(number) = number
            && !self.stuck
        {
            self.flush_segment(number, &entries);
        }
        // Dropped unanswered while stuck: the caller learns that not everything is in SQLite.
        if !self.stuck {
            for done in done {
                let _ = done.send(());
            }
        }
    }

    fn flush_segment(&mut self, number: u64, entries: &[Arc<Entry>]) {
        let mut attempt = 1;
        while let Err(e) = write(&self.conn, &self.db, &self.write_lock, entries) {
            tracing::error!(segment = number, attempt, "flushing the message journal into SQLite: {e}");
            if attempt == ATTEMPTS {
                self.stuck = true;
                return;
            }
            attempt += 1;
            std::thread::sleep(SEGMENT_AGE);
        }
        self.memtable.remove_through(number);
        if let Err(e) = journal::retire_segment(&self.db, number) {
            tracing::warn!("{e}");
        }
    }
}

/// Inserts `entries` into the log and moves their senders' cursors, in `(conversation, seq)` order, at most
/// [`CHUNK`] per transaction and each ending early when the writer wants the lock; then makes them durable.
fn write(conn: &rusqlite::Connection, db: &Path, write_lock: &WriteLock, entries: &[Arc<Entry>]) -> Result<()> {
    let mut sorted: Vec<&Entry> = entries.iter().map(|e| &**e).collect();
    sorted.sort_unstable_by(|a, b| (&a.record.conversation_id, a.seq).cmp(&(&b.record.conversation_id, b.seq)));
    let (mut rest, mut uncheckpointed) = (&sorted[..], 0);
    while !rest.is_empty() {
        let turn = write_lock.when_free();
        let result = write_chunk(conn, write_lock, rest);
        if result.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        drop(turn);
        let written = result?;
        rest = &rest[written..];
        uncheckpointed += written;
        // After every [`CHUNK`] messages (not after each chunk that ended early: a checkpoint is two fsyncs), so
        // the WAL stays about a chunk long. A passive checkpoint never waits for readers or takes the write lock;
        // one that cannot copy everything (a reader still on an old snapshot) is taken up again after the next.
        if uncheckpointed >= CHUNK || rest.is_empty() {
            uncheckpointed = 0;
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!("checkpointing the WAL: {e}");
            }
        }
    }
    sync_wal(db)
}

/// Commits the first of `entries`, up to [`CHUNK`] or until the writer wants the lock (at least one), in one
/// transaction. Returns how many it committed.
fn write_chunk(conn: &rusqlite::Connection, write_lock: &WriteLock, entries: &[&Entry]) -> Result<usize> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO messages (conversation_id, seq, client_msg_id, server_msg_id, send_id, send_time, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    )?;
    let mut cursors: HashMap<(&str, &str), i64> = HashMap::new();
    let mut written = 0;
    for e in entries.iter().take(CHUNK) {
        if written > 0 && write_lock.wanted() {
            break;
        }
        let r = &e.record;
        insert.execute((
            &r.conversation_id,
            e.seq,
            &e.client_msg_id,
            &e.server_msg_id,
            &e.send_id,
            e.send_time,
            &r.blob,
        ))?;
        written += 1;
        if let Some(reader) = &r.reader {
            let seq = cursors.entry((reader, &r.conversation_id)).or_default();
            *seq = (*seq).max(e.seq);
        }
    }
    let mut cursor = conn.prepare_cached(
        "UPDATE conversations SET has_read_seq = ?1 \
         WHERE owner_user_id = ?2 AND conversation_id = ?3 AND has_read_seq < ?1",
    )?;
    for ((owner, conversation_id), seq) in cursors {
        cursor.execute((seq, owner, conversation_id))?;
    }
    conn.execute_batch("COMMIT")?;
    Ok(written)
}

/// Makes every commit so far durable: an fsync of the WAL file, wherever its frames are. Those a checkpoint has
/// already copied out are in a database file the checkpoint synced before the WAL could be written over.
fn sync_wal(db: &Path) -> Result<()> {
    let wal = journal::sibling(db, "-wal");
    match std::fs::File::open(&wal).and_then(|f| f.sync_data()) {
        Ok(()) => Ok(()),
        // No WAL: every commit is in the database file, synced by the checkpoint that emptied it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Backend(format!("syncing {}: {e}", wal.display()))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use palaver_protocol::pb::sdkws::MsgData;
    use prost::Message as _;

    use super::super::journal::Record;
    use super::super::memtable::Entry;
    use super::super::write_lock::WriteLock;
    use super::super::{SqliteStore, sched};
    use super::{connect, entry, write_chunk};
    use crate::{MessageStore as _, NewMessage};

    /// A chunk ends after the message in progress as soon as the append writer waits for the lock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chunk_ends_when_the_writer_wants_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("palaver.db");
        let store = SqliteStore::open(&db).await.unwrap();
        let conn = connect(&db, Duration::from_secs(10)).unwrap();
        let entries: Vec<Arc<Entry>> = (1..=3)
            .map(|seq| {
                let data = MsgData { seq, client_msg_id: format!("c{seq}"), ..MsgData::default() };
                let record = Record { conversation_id: "si_a_b".into(), reader: None, blob: data.encode_to_vec() };
                entry(1, record).unwrap()
            })
            .collect();
        let entries: Vec<&Entry> = entries.iter().map(|e| &**e).collect();

        let lock = Arc::new(WriteLock::default());
        let turn = lock.when_free();
        let writer = {
            let lock = lock.clone();
            std::thread::spawn(move || drop(lock.first()))
        };
        while !lock.wanted() {
            std::thread::yield_now();
        }
        assert_eq!(write_chunk(&conn, &lock, &entries).unwrap(), 1, "the chunk went on while the writer waited");
        drop(turn);
        writer.join().unwrap();
        assert_eq!(write_chunk(&conn, &lock, &entries[1..]).unwrap(), 2);
        let stored: i64 = conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0)).unwrap();
        assert_eq!(stored, 3);
        drop(store);
    }

    /// The flusher's thread runs ten nice steps below the process (at 19 at most), under the default policy.
    /// Tests run side by side in one process, so other stores' flushers may be there too, some just started: the
    /// one that flushed this store's segment has lowered its priority, whichever it is.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_flusher_runs_in_the_background() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let data = MsgData { client_msg_id: "c1".into(), ..MsgData::default() };
        let msg = NewMessage {
            conversation_id: "si_a_b".into(),
            data,
            ensure_conversations: Vec::new(),
            reader: None,
            preconditions: Vec::new(),
        };
        store.append_message(msg).await.unwrap();
        store.flush().await.unwrap();
        let background = (sched::probe::process().nice + 10).min(19);
        let flushers = sched::probe::threads("sqlite-flusher");
        assert!(
            flushers.iter().any(|f| f.nice == background && f.policy == 0),
            "no flusher at nice {background}: {flushers:?}"
        );
    }
}
