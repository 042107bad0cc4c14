//! The flusher: a thread that moves closed journal segments into SQLite, sorted by conversation.
//!
//! The writer closes a segment every few seconds ([`super::writer::SEGMENT_AGE`]) and hands its messages over.
//! Sorted by `(conversation, seq)`, each conversation's messages of those seconds go into the log's index leaves
//! together, in chunks of at most [`CHUNK`] per transaction. Each chunk also moves its senders' read cursors, and
//! every [`CHUNK`] messages the WAL is checkpointed into the database, here, off the path of any append. Before
//! them, one transaction creates the conversation rows the segment's first messages carry, sorted by owner, so a
//! segment's new conversations write each leaf of their B-trees once (see [`super::memtable`]). Once the segment is
//! committed and the WAL synced, its messages and rows leave the memtable and its file is retired.
//!
//! # Why a commit does not fsync
//!
//! A chunk's commit does not fsync (`synchronous = NORMAL`), which held SQLite's write lock 20–80 ms a commit here:
//! nothing needs a chunk durable before the segment's end, when one fsync of the WAL covers every chunk of it, before
//! the segment's file, until then the messages' durable copy, is retired. (The WAL's frames leave it only for a
//! checkpoint that syncs the database file first.)
//!
//! # Why it runs in the background
//!
//! A flush is a burst: a segment's messages take a few hundred milliseconds of CPU, all at once. On a core shared
//! with the gateway's thread at equal priority, the gateway got half the core or less for the length of the
//! burst, fell behind, and what arrived meanwhile waited: where one core carries 10,000 messages a second about
//! three quarters busy, send→deliver p99 was 56–269 ms, nearly every second of a run holding a message 50–200 ms
//! late (BENCHMARKS.md, "The third machine again: the flusher yields"). Little waits for a flush (the next one, and
//! a read of conversation rows made in the last second), so the thread lowers its own priority as it starts
//! ([`run_in_the_background`](super::sched::run_in_the_background), ten nice steps): where the gateway wants
//! the core, the flusher gets about a tenth of it, and otherwise all of it. The same runs: p99 26–43 ms.
//!
//! Ten steps, not `SCHED_IDLE`: the flusher holds SQLite's write lock for a chunk and the memtable's locks for a
//! moment, and a thread that runs only when the core would otherwise idle makes whoever waits for those locks wait
//! until it does (one such run stalled a writer batch for half a second); a read that needs unflushed rows waits for a
//! flush too. And a thread may lower its priority but not raise it again without a privilege, so the flusher keeps a
//! share with which it catches up on a core that stays busy. If it falls a segment behind all the same, the writer
//! waits for it (the hand-over holds one segment), which slows appends rather than grow the memtable.
//!
//! Every statement is idempotent (`ON CONFLICT DO NOTHING`, a row's version bump only when it was created,
//! cursors only rise), so a segment flushed twice (a retry after a failed chunk, or a replay of a segment whose
//! file outlived its flush) stores each message and row once.
//! Opening the store replays what a previous run left ([`replay`]) with the same statements.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use super::DbFile;
use super::journal::{self, Record};
use super::memtable::{Entry, Memtable};
use super::messages::decode;
use crate::{ConversationRef, Result, StoreError};

/// Most messages per SQLite transaction of a flush.
const CHUNK: usize = 4_096;

/// Attempts at flushing a segment before the flusher gives up until the next start (which replays it).
const ATTEMPTS: u32 = 30;

/// The pause between two attempts at a segment.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// How often, with no segment coming, the flusher asks the writer whether its open one is due: a quiet writer's
/// segment is handed over at most this long past its age. (Ticked every [`super::writer::SEGMENT_AGE`], a segment
/// begun just after a tick waited nearly two ages, 8 s once the age was 4.)
const TICK: Duration = Duration::from_secs(1);

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
    file: &DbFile,
    memtable: Arc<Memtable>,
    segments: Receiver<Segment>,
    tick: impl Fn() + Send + 'static,
) -> Result<JoinHandle<()>> {
    let conn = connect(file)?;
    let db = file.path.clone();
    std::thread::Builder::new()
        .name("sqlite-flusher".into())
        .spawn(move || {
            super::sched::run_in_the_background();
            let mut flusher = Flusher { conn, db, memtable, stuck: false };
            loop {
                match segments.recv_timeout(TICK) {
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
pub(super) fn replay(file: &DbFile) -> Result<u64> {
    let db = file.path.as_path();
    let segments = journal::segments(db)?;
    let Some(&(last, _)) = segments.last() else { return Ok(1) };
    let conn = connect(file)?;
    for (number, path) in segments {
        let records = journal::read_segment(&path, number)?;
        let entries = records.into_iter().map(|r| entry(number, r)).collect::<Result<Vec<_>>>()?;
        tracing::info!(segment = %path.display(), messages = entries.len(), "replaying the message journal");
        write(&conn, db, &entries)?;
        journal::retire_segment(db, number)?;
    }
    Ok(last + 1)
}

fn connect(file: &DbFile) -> Result<rusqlite::Connection> {
    let conn = file.connect()?;
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
        while let Err(e) = write(&self.conn, &self.db, entries) {
            tracing::error!(segment = number, attempt, "flushing the message journal into SQLite: {e}");
            if attempt == ATTEMPTS {
                self.stuck = true;
                return;
            }
            attempt += 1;
            std::thread::sleep(RETRY_PAUSE);
        }
        self.memtable.remove_through(number);
        if let Err(e) = journal::retire_segment(&self.db, number) {
            tracing::warn!("{e}");
        }
    }
}

/// Creates the conversation rows `entries` carry, inserts them into the log and moves their senders' cursors, in
/// `(conversation, seq)` order, at most [`CHUNK`] per transaction; then makes them durable.
fn write(conn: &rusqlite::Connection, db: &Path, entries: &[Arc<Entry>]) -> Result<()> {
    let mut rows: Vec<&ConversationRef> = entries.iter().flat_map(|e| &e.record.rows).collect();
    // Nearly every segment has none: no transaction (and no turn at SQLite's write lock) for nothing.
    if !rows.is_empty() {
        rows.sort_unstable_by(|a, b| {
            (&a.owner_user_id, &a.conversation_id).cmp(&(&b.owner_user_id, &b.conversation_id))
        });
        in_transaction(conn, || create_rows(conn, &rows))?;
    }
    let mut sorted: Vec<&Entry> = entries.iter().map(|e| &**e).collect();
    sorted.sort_unstable_by(|a, b| (&a.record.conversation_id, a.seq).cmp(&(&b.record.conversation_id, b.seq)));
    let (mut rest, mut uncheckpointed) = (&sorted[..], 0);
    while !rest.is_empty() {
        let written = in_transaction(conn, || write_chunk(conn, rest))?;
        rest = &rest[written..];
        uncheckpointed += written;
        // After every [`CHUNK`] messages, so the WAL stays about a chunk long. A passive checkpoint never waits for
        // readers or takes the write lock; one that cannot copy everything (a reader still on an old snapshot) is
        // taken up again after the next.
        if uncheckpointed >= CHUNK || rest.is_empty() {
            uncheckpointed = 0;
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!("checkpointing the WAL: {e}");
            }
        }
    }
    sync_wal(db)
}

/// Runs `work` in a write transaction, committed if it succeeds and rolled back if not.
fn in_transaction<T>(conn: &rusqlite::Connection, work: impl FnOnce() -> Result<T>) -> Result<T> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let done = work().and_then(|t| Ok(conn.execute_batch("COMMIT").map(|()| t)?));
    if done.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    done
}

/// Creates those of `rows` (in `(owner, conversation)` order) that do not exist, and logs each in its owner's
/// conversation list. A row that exists (a replay; a group's row made meanwhile) is left as it is and not logged
/// again.
fn create_rows(conn: &rusqlite::Connection, rows: &[&ConversationRef]) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO conversations (owner_user_id, conversation_id, conversation_type, user_id, group_id) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (owner_user_id, conversation_id) DO NOTHING",
    )?;
    for c in rows {
        let created =
            insert.execute((&c.owner_user_id, &c.conversation_id, c.conversation_type, &c.user_id, &c.group_id))?;
        if created > 0 {
            let id = std::slice::from_ref(&c.conversation_id);
            super::versions::bump_sync(
                conn,
                crate::VersionKind::Conversations,
                &c.owner_user_id,
                id,
                crate::Change::Insert,
            )?;
        }
    }
    Ok(())
}

/// Writes the first of `entries`, up to [`CHUNK`], in the caller's transaction. Returns how many it wrote.
fn write_chunk(conn: &rusqlite::Connection, entries: &[&Entry]) -> Result<usize> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO messages (conversation_id, seq, client_msg_id, server_msg_id, send_id, send_time, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    )?;
    let mut cursors: HashMap<(&str, &str), i64> = HashMap::new();
    let mut written = 0;
    for e in entries.iter().take(CHUNK) {
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
    use palaver_protocol::pb::sdkws::MsgData;
    use prost::Message as _;

    use super::super::journal::{Journal, Record};
    use super::super::{SqliteStore, sched};
    use crate::{
        ConversationRef, ConversationStore as _, MessageStore as _, NewMessage, VersionKind, VersionStore as _,
    };

    /// With no segment coming, the flusher asks the writer about its open one every [`super::TICK`], a fraction of
    /// a segment's age, so that a quiet segment is not held for nearly two ages.
    #[test]
    fn a_quiet_writer_is_asked_more_often_than_a_segment_ages() {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        let dir = tempfile::tempdir().unwrap();
        let file = super::DbFile::new(&dir.path().join("palaver.db"), super::super::Sharing::Exclusive);
        let (segments, received) = std::sync::mpsc::channel();
        let ticks = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = ticks.clone();
        let flusher = super::start(&file, Default::default(), received, move || {
            counted.fetch_add(1, Relaxed);
        })
        .unwrap();
        std::thread::sleep(super::TICK * 5 / 2);
        drop(segments);
        flusher.join().unwrap();
        assert!(super::TICK * 2 < super::super::writer::SEGMENT_AGE);
        assert!(ticks.load(Relaxed) >= 2, "{} ticks in two and a half of them", ticks.load(Relaxed));
    }

    /// A journal left by a server killed before its flush creates the conversation rows its first messages carry,
    /// each logged once in its owner's list: replaying the same rows again changes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replayed_journal_creates_its_conversation_rows_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("palaver.db");
        SqliteStore::open(&db).await.unwrap().close().await;
        let row = |owner: &str, peer: &str| ConversationRef::with_peer(owner, peer, "si_a_b", 1);
        let record = |seq: i64| Record {
            conversation_id: "si_a_b".into(),
            reader: Some("a".into()),
            blob: MsgData { seq, client_msg_id: format!("c{seq}"), ..MsgData::default() }.encode_to_vec(),
            rows: vec![row("a", "b"), row("b", "a")],
        };
        let version = |store: SqliteStore| async move {
            let head = store.version_head(VersionKind::Conversations, "b").await.unwrap();
            store.close().await;
            head.version
        };

        Journal::create(&db, 100).unwrap().append(&[record(1)]).unwrap();
        let store = SqliteStore::open(&db).await.unwrap();
        for (owner, peer) in [("a", "b"), ("b", "a")] {
            let rows = store.user_conversations(owner).await.unwrap();
            assert_eq!(rows.len(), 1, "{owner}'s row");
            assert_eq!((rows[0].user_id.as_str(), rows[0].max_seq), (peer, 1));
        }
        assert_eq!(store.user_conversations("a").await.unwrap()[0].has_read_seq, 1, "the sender's cursor moved");
        let delta = store.version_changes(VersionKind::Conversations, "b", 0, 10).await.unwrap();
        assert_eq!(delta.changes, vec![("si_a_b".to_string(), crate::Change::Insert)]);
        let logged = version(store).await;

        Journal::create(&db, 200).unwrap().append(&[record(2)]).unwrap();
        let store = SqliteStore::open(&db).await.unwrap();
        assert_eq!(store.user_conversations("b").await.unwrap()[0].max_seq, 2);
        assert_eq!(version(store).await, logged, "an existing row is not logged again");
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
