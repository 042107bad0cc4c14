//! The append writer: one thread that turns concurrent appends into group commits.
//!
//! # Why a batch
//!
//! With `synchronous=FULL` every commit waits for an fsync of the WAL, and an fsync costs about as much as the
//! disk says (from well under a millisecond on a fast SSD to ~10 ms on a VM's network disk), whatever the
//! transaction holds. With one transaction per message the store therefore acknowledges at most 1/fsync
//! messages per second (~100/s at 10 ms) however many clients send at once: the writer is busy waiting for
//! the disk, not working. Committing `n` queued appends in one transaction costs one fsync for all of them, so
//! throughput grows with the load (`n` messages per fsync) while each message is still acknowledged only once
//! it is durable.
//!
//! # Why a thread of its own
//!
//! sqlx runs each SQLite connection on a worker thread and sends it every statement over a channel: one
//! statement is one round trip between threads, two context switches. An append is five to eight statements,
//! and on a server pinned to one core those switches were half of its CPU time per message (`palaver bench
//! chat`, see BENCHMARKS.md). So the writer is a plain thread that owns its own connection (rusqlite, the same
//! bundled SQLite) and runs whole batches synchronously: one hand-over per batch, not per statement, and every
//! statement prepared once and cached.
//!
//! # How
//!
//! Appends are queued on a bounded channel (callers wait for room when it is full: back-pressure, not memory
//! growth). The thread takes the first queued append, opens a `BEGIN IMMEDIATE` transaction and only *then*
//! drains whatever else is queued, up to [`MAX_BATCH`]: everything that arrived while it waited for the lock
//! or the previous fsync joins this batch. Each append checks before it writes (see
//! [`append_in_transaction`]), so one that is refused (a resend, a block, a missing user) has written nothing
//! and its caller gets its answer while the others go on. After `COMMIT` returns, each caller is answered
//! through its oneshot; if the commit fails, or a write fails part-way through an append, the whole batch is
//! rolled back and every caller of the batch gets an error, so nothing is acknowledged that is not durable.
//!
//! The appends of a batch run one after the other in queue order on one connection, so they see each other:
//! a second append with the same `(conversation_id, client_msg_id)` in the same batch finds the first one's row
//! and returns it with `created: false`, exactly as across batches.
//!
//! # Beside the other writes
//!
//! The store's other (rare) writes (users, tokens, groups, read cursors) still go through sqlx's single write
//! connection. SQLite lets one of the two write at a time: `BEGIN IMMEDIATE` takes the write lock, and the
//! other waits for it on `busy_timeout`. A batch is capped so such a wait stays short, and neither side ever
//! waits for the other while holding the lock, so they cannot deadlock.
//!
//! # Lifetime
//!
//! The thread starts with the store and ends when its queue's last sender is gone: when the store (all its
//! clones) is dropped, or at [`SqliteStore::close`](super::SqliteStore::close), which also waits for it. It
//! finishes the appends already queued before it ends. It needs no async runtime, so a store may be used from
//! several runtimes (as tests do).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::messages::append_in_transaction;
use crate::{Appended, NewMessage, Result, StoreError};

/// Most appends committed together. Large enough that a burst is one fsync even on a slow disk (throughput is
/// at most `MAX_BATCH` per fsync: with 256, a disk busy enough for 50 ms fsyncs capped `palaver bench chat` at
/// ~5,000 messages/s); small enough that a batch (and so the wait of another write for the lock, and the
/// latency of the batch's first append) stays around ten milliseconds: an append is a handful of indexed
/// statements, a few microseconds each.
pub(super) const MAX_BATCH: usize = 1024;

/// Appends that may wait in the queue before callers wait for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// One caller's append and where to send its answer.
struct Job {
    msg: NewMessage,
    reply: oneshot::Sender<Result<Appended>>,
}

/// The store's handle on its writer thread. Shared by the store's clones; dropping the last one ends the thread.
pub(super) struct AppendWriter {
    /// `None` once [`AppendWriter::shut_down`] has run: appends fail.
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    /// Answered (by dropping) when the thread ends.
    ended: Mutex<Option<oneshot::Receiver<()>>>,
    /// Successful batch commits, for [`SqliteStore::commits`](super::SqliteStore::commits).
    commits: Arc<AtomicU64>,
}

impl AppendWriter {
    /// Opens the writer's connection to the database at `path` (already created and migrated) and starts the
    /// thread.
    pub(super) fn start(path: &Path, busy_timeout: std::time::Duration) -> Result<Self> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        // The file is WAL already (a persistent setting made by the first connection); `synchronous` and
        // `foreign_keys` are per connection.
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        // Replaces SQLite's automatic checkpoint on this connection (see `checkpoint_if_due`).
        conn.wal_hook(Some(note_wal_frames));
        let (queue, jobs) = mpsc::channel(QUEUE);
        let (ended_tx, ended) = oneshot::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
        std::thread::Builder::new()
            .name("sqlite-append-writer".into())
            .spawn(move || {
                run(&conn, jobs, &counter);
                // Everything the thread holds goes before it says it has ended.
                drop((conn, counter));
                drop(ended_tx);
            })
            .map_err(|e| StoreError::Backend(format!("starting the append writer: {e}")))?;
        Ok(Self { queue: Mutex::new(Some(queue)), ended: Mutex::new(Some(ended)), commits })
    }

    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Queues `msg` for the next batch and waits for its commit.
    pub(super) async fn append(&self, msg: NewMessage) -> Result<Appended> {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let queue = queue.ok_or_else(|| StoreError::Backend("the store is closed".into()))?;
        // `try_send` first: when there is room (nearly always) the job is queued right here, without an await
        // point at which the caller could be cancelled between "queued" and "waiting for the answer".
        match queue.try_send(Job { msg, reply }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job)) => queue.send(job).await.map_err(|_| writer_gone())?,
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(writer_gone()),
        }
        drop(queue);
        answer.await.map_err(|_| writer_gone())?
    }

    /// Refuses further appends and waits for the thread to answer those already queued and end.
    pub(super) async fn shut_down(&self) {
        drop(self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
        let ended = self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(ended) = ended {
            // Only ever answered by the thread dropping its end.
            let _ = ended.await;
        }
    }
}

fn writer_gone() -> StoreError {
    StoreError::Backend("the append writer stopped before committing this message".into())
}

/// The thread: one batch per wake-up, until every sender is gone and the queue is empty.
fn run(conn: &rusqlite::Connection, mut jobs: mpsc::Receiver<Job>, commits: &AtomicU64) {
    while let Some(first) = jobs.blocking_recv() {
        write_batch(conn, first, &mut jobs, commits);
        checkpoint_if_due(conn);
    }
}

/// Commits `first` and whatever else is queued once the transaction is open, then answers every caller.
fn write_batch(conn: &rusqlite::Connection, first: Job, jobs: &mut mpsc::Receiver<Job>, commits: &AtomicU64) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return fail(vec![first.reply], &format!("beginning a batch: {e}"));
    }

    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }

    let mut done: Vec<(oneshot::Sender<Result<Appended>>, Result<Appended>)> = Vec::with_capacity(batch.len());
    let mut failure = None;
    let mut batch = batch.into_iter();
    for Job { msg, reply } in batch.by_ref() {
        // Nobody is waiting for this one any more (its caller was cancelled): leave it out, as a cancelled
        // single-message transaction would have been rolled back.
        if reply.is_closed() {
            continue;
        }
        match append_in_transaction(conn, msg) {
            Ok(result) => done.push((reply, result)),
            Err(e) => {
                let why = format!("storing an append: {e}");
                done.push((reply, Err(StoreError::Backend(why.clone()))));
                failure = Some(why);
                break;
            }
        }
    }

    if failure.is_none() {
        match conn.execute_batch("COMMIT") {
            Ok(()) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for (reply, result) in done {
                    let _ = reply.send(result);
                }
                return;
            }
            Err(e) => failure = Some(format!("committing a batch: {e}")),
        }
    }
    // Nothing of the batch is durable. Roll back whatever is left (after a failed COMMIT or an I/O error SQLite
    // may have done so already; then this fails harmlessly and says nothing new).
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let why = failure.unwrap_or_default();
    tracing::error!(appends = done.len() + batch.len(), "append batch failed: {why}");
    // An append that had failed on its own keeps its own error; the others get the batch's.
    let replies = done.into_iter().map(|(reply, result)| (reply, result.err())).chain(batch.map(|j| (j.reply, None)));
    for (reply, own_error) in replies {
        let _ = reply.send(Err(own_error.unwrap_or_else(|| StoreError::Backend(why.clone()))));
    }
}

/// WAL frames after which the writer copies the log back into the database: SQLite's own default for its
/// automatic checkpoint.
const CHECKPOINT_FRAMES: i32 = 1000;

thread_local! {
    /// Frames in the WAL after this thread's last commit, as SQLite's WAL hook reports them.
    static WAL_FRAMES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// The writer connection's WAL hook: runs inside each `COMMIT`, on the thread that commits.
fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.set(frames);
    Ok(())
}

/// Checkpoints once the WAL holds [`CHECKPOINT_FRAMES`], *after* the batch's callers have been answered.
///
/// SQLite's automatic checkpoint runs inside the `COMMIT` that crosses the threshold, so the callers of that batch
/// (about one in five under `palaver bench chat`) waited for the copy of a thousand pages and an fsync of the
/// database before their acknowledgement. Here the same checkpoint runs on the same thread between two batches:
/// the appends that arrive meanwhile wait for it, in a queue that the next batch then drains at once. A passive
/// checkpoint never waits for readers; one that cannot copy everything (a reader still on an old snapshot) is
/// taken up again after the next commit. Nothing about durability changes: every frame copied is committed
/// already.
fn checkpoint_if_due(conn: &rusqlite::Connection) {
    if WAL_FRAMES.get() < CHECKPOINT_FRAMES {
        return;
    }
    WAL_FRAMES.set(0);
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!("checkpointing the WAL: {e}");
    }
}

fn fail(replies: Vec<oneshot::Sender<Result<Appended>>>, why: &str) {
    tracing::error!(appends = replies.len(), "append batch failed: {why}");
    for reply in replies {
        let _ = reply.send(Err(StoreError::Backend(why.to_string())));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use palaver_protocol::pb::sdkws::MsgData;

    use super::super::SqliteStore;
    use crate::{MessageStore as _, NewMessage};

    fn msg(client_msg_id: &str) -> NewMessage {
        NewMessage {
            conversation_id: "si_a_b".into(),
            data: MsgData { client_msg_id: client_msg_id.into(), ..MsgData::default() },
            ensure_conversations: Vec::new(),
            reader: None,
            preconditions: Vec::new(),
        }
    }

    /// Dropping the store (without `close`) ends the writer thread: the thread holds the only other reference to
    /// the commit counter, so that reference going away means the thread is gone, not parked forever.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_ends_when_the_store_is_dropped() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let copy = store.clone();
        store.append_message(msg("m1")).await.unwrap();
        let counter = std::sync::Arc::downgrade(&store.writer.commits);
        drop(store);
        // A clone keeps it running.
        assert_eq!(copy.append_message(msg("m2")).await.unwrap().data.seq, 2);
        assert_eq!(counter.strong_count(), 2, "the store's handle and the thread's");
        drop(copy);
        // Only a guard against hanging the test run if the task never ends; not a performance bound.
        tokio::time::timeout(Duration::from_secs(60), async {
            while counter.strong_count() > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the writer thread outlived its store");
    }

    /// `close` waits for the thread: when it returns, the thread is gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_waits_for_the_writer() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        store.append_message(msg("m1")).await.unwrap();
        store.close().await;
        assert_eq!(std::sync::Arc::strong_count(&store.writer.commits), 1, "only the store's handle is left");
    }

    /// The writer checkpoints the WAL itself (SQLite's automatic checkpoint is off on its connection): thousands of
    /// frames of appends later, the log has been copied back and restarted rather than grown with every commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_keeps_the_wal_short() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("p.db")).await.unwrap();
        let before = store.commits();
        for i in 0..1_500 {
            // A conversation each: every commit dirties fresh pages (and writes them as new frames).
            let mut m = msg(&format!("m{i}"));
            m.conversation_id = format!("si_a_{i:05}");
            store.append_message(m).await.unwrap();
        }
        let commits = store.commits() - before;
        assert_eq!(commits, 1_500, "one commit each: appended one after the other");
        let frame = 24 + 4096;
        let wal = std::fs::metadata(dir.path().join("p.db-wal")).unwrap().len();
        // Each commit writes at least two frames (the message's pages), so 3,000+ frames went through the log.
        assert!(wal < 2 * u64::try_from(super::CHECKPOINT_FRAMES).unwrap() * frame, "the WAL grew to {wal} bytes");
        store.close().await;
    }
}
