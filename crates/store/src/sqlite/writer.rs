//! The append writer: one task that turns concurrent appends into group commits.
//!
//! # Why
//!
//! With `synchronous=FULL` every commit waits for an fsync of the WAL, and an fsync costs about as much as the
//! disk says (from well under a millisecond on a fast SSD to ~10 ms on a VM's network disk), whatever the
//! transaction holds. With one transaction per message the store therefore acknowledges at most 1/fsync
//! messages per second (~100/s at 10 ms) however many clients send at once: the single writer connection is
//! busy waiting for the disk, not working. Committing `n` queued appends in one transaction costs one fsync for
//! all of them, so throughput grows with the load (`n` messages per fsync) while each message is still
//! acknowledged only once it is durable.
//!
//! # How
//!
//! Appends are queued on a bounded channel (callers wait for room when it is full: back-pressure, not memory
//! growth). The writer task takes the first queued append, checks the single write connection out of the write
//! pool, opens a `BEGIN IMMEDIATE` transaction and only *then* drains whatever else is queued, up to
//! [`MAX_BATCH`]: everything that arrived while it waited for the connection or the lock joins this batch. Each
//! append runs inside its own `SAVEPOINT`, so one that fails is rolled back alone (`ROLLBACK TO`) and its
//! caller gets its error while the others go on. After `COMMIT` returns, each caller is answered through its
//! oneshot; if the commit (or the savepoint machinery) fails, every caller of the batch gets an error, so
//! nothing is acknowledged that is not durable.
//!
//! The appends of a batch run one after the other in queue order on one connection, so they see each other:
//! a second append with the same `(conversation_id, client_msg_id)` in the same batch finds the first one's row
//! and returns it with `created: false`, exactly as across batches.
//!
//! # Sharing the write connection
//!
//! The task holds the write pool's only connection for one batch at a time and returns it in between, so the
//! other write methods (registering users, tokens, groups, read cursors) keep using the pool as they did and
//! interleave between batches; nothing ever holds the connection while waiting for the writer, so the two
//! cannot deadlock. Routing those rare writes through the task too would batch nothing worth batching and
//! would need a job type per method. A batch is capped so such a write waits for at most one batch.
//!
//! # Lifetime
//!
//! The task is started by the first append (on the caller's runtime) and ends when its queue's last sender is
//! gone: when the store (all its clones) is dropped, or at [`SqliteStore::close`](super::SqliteStore::close),
//! which also waits for it. It finishes the appends already queued before it ends. If it dies with its runtime
//! (a store used from several runtimes, as tests do), the next append starts a new one on the current runtime;
//! a caller whose writer goes away before answering gets a `Backend` error, never a hang.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::messages::append_in_transaction;
use crate::{Appended, NewMessage, Result, StoreError};

/// Most appends committed together. Large enough that a burst is one fsync; small enough that a batch (and so
/// the wait of another write method for the connection, and the latency of the batch's first append) stays in
/// the milliseconds: an append is a handful of indexed statements, tens of microseconds.
pub(super) const MAX_BATCH: usize = 256;

/// Appends that may wait in the queue before callers wait for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// One caller's append and where to send its answer.
struct Job {
    msg: NewMessage,
    reply: oneshot::Sender<Result<Appended>>,
}

/// The store's handle on its writer task. Shared by the store's clones; dropping the last one ends the task.
pub(super) struct AppendWriter {
    /// The write pool (of one connection), for the task to check its connection out of per batch.
    pool: SqlitePool,
    state: Mutex<State>,
    /// Successful batch commits, for [`SqliteStore::commits`](super::SqliteStore::commits).
    commits: Arc<AtomicU64>,
}

enum State {
    /// No task yet, or its runtime is gone: the next append starts one.
    Idle,
    Running {
        queue: mpsc::Sender<Job>,
        task: JoinHandle<()>,
    },
    /// [`AppendWriter::shut_down`] was called: appends fail.
    Closed,
}

impl AppendWriter {
    pub(super) fn new(pool: SqlitePool) -> Self {
        Self { pool, state: Mutex::new(State::Idle), commits: Arc::new(AtomicU64::new(0)) }
    }

    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Queues `msg` for the next batch and waits for its commit.
    pub(super) async fn append(&self, msg: NewMessage) -> Result<Appended> {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue()?;
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

    /// A sender to the running task, starting one if there is none (or it died with its runtime).
    fn queue(&self) -> Result<mpsc::Sender<Job>> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*state {
            State::Running { queue, .. } if !queue.is_closed() => return Ok(queue.clone()),
            State::Closed => return Err(StoreError::Backend("the store is closed".into())),
            State::Running { .. } | State::Idle => {}
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| StoreError::Backend(format!("appending outside a Tokio runtime: {e}")))?;
        let (queue, jobs) = mpsc::channel(QUEUE);
        let task = runtime.spawn(run(self.pool.clone(), jobs, self.commits.clone()));
        *state = State::Running { queue: queue.clone(), task };
        Ok(queue)
    }

    /// Refuses further appends and waits for the task to answer those already queued and end.
    pub(super) async fn shut_down(&self) {
        let state = std::mem::replace(
            &mut *self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
            State::Closed,
        );
        if let State::Running { queue, task } = state {
            drop(queue);
            // An error only means the task died with its runtime; there is nothing left to wait for then.
            let _ = task.await;
        }
    }
}

fn writer_gone() -> StoreError {
    StoreError::Backend("the append writer stopped before committing this message".into())
}

/// The task: one batch per wake-up, until every sender is gone and the queue is empty.
async fn run(pool: SqlitePool, mut jobs: mpsc::Receiver<Job>, commits: Arc<AtomicU64>) {
    while let Some(first) = jobs.recv().await {
        write_batch(&pool, first, &mut jobs, &commits).await;
    }
}

/// Commits `first` and whatever else is queued once the transaction is open, then answers every caller.
async fn write_batch(pool: &SqlitePool, first: Job, jobs: &mut mpsc::Receiver<Job>, commits: &AtomicU64) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => return fail(vec![first.reply], &format!("acquiring the write connection: {e}")),
    };
    let mut tx = match sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => return fail(vec![first.reply], &format!("beginning a batch: {e}")),
    };

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
        match in_savepoint(&mut tx, msg).await {
            Ok(result) => done.push((reply, result)),
            Err(e) => {
                let why = format!("isolating an append in its batch: {e}");
                done.push((reply, Err(StoreError::Backend(why.clone()))));
                failure = Some(why);
                break;
            }
        }
    }

    if failure.is_none() {
        match tx.commit().await {
            Ok(()) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for (reply, result) in done {
                    let _ = reply.send(result);
                }
                return;
            }
            Err(e) => failure = Some(format!("committing a batch: {e}")),
        }
    } else {
        // The savepoint machinery failing means SQLite rolled the whole transaction back (an I/O error, a full
        // disk); this only tidies up, and its own error says nothing new.
        let _ = tx.rollback().await;
    }

    // Nothing of the batch is durable. The connection's transaction state is no longer trustworthy (sqlx counts
    // transaction depth on its side, and a failed COMMIT or ROLLBACK leaves that count behind): close it rather
    // than hand it back, SQLite rolls back whatever is left, and the pool opens a fresh one.
    conn.close_on_drop();
    let why = failure.unwrap_or_default();
    tracing::error!(appends = done.len() + batch.len(), "append batch failed: {why}");
    // An append that had failed on its own keeps its own error; the others get the batch's.
    let replies = done.into_iter().map(|(reply, result)| (reply, result.err())).chain(batch.map(|j| (j.reply, None)));
    for (reply, own_error) in replies {
        let _ = reply.send(Err(own_error.unwrap_or_else(|| StoreError::Backend(why.clone()))));
    }
}

/// Runs one append inside `SAVEPOINT append`. The inner result is the append's own (rolled back alone if it
/// failed); an outer error means the savepoint itself could not be taken, released or rolled back to, which
/// only happens when SQLite has already rolled back the whole transaction.
async fn in_savepoint(conn: &mut SqliteConnection, msg: NewMessage) -> Result<Result<Appended>, sqlx::Error> {
    sqlx::query("SAVEPOINT append").execute(&mut *conn).await?;
    let result = append_in_transaction(conn, msg).await;
    if result.is_err() {
        sqlx::query("ROLLBACK TO append").execute(&mut *conn).await?;
    }
    sqlx::query("RELEASE append").execute(&mut *conn).await?;
    Ok(result)
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
        }
    }

    /// Dropping the store (without `close`) ends the writer task: the task holds the only other reference to
    /// the commit counter, so that reference going away means the task is gone, not parked forever.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_ends_when_the_store_is_dropped() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let copy = store.clone();
        store.append_message(msg("m1")).await.unwrap();
        let counter = std::sync::Arc::downgrade(&store.writer.commits);
        drop(store);
        // A clone keeps it running.
        assert_eq!(copy.append_message(msg("m2")).await.unwrap().data.seq, 2);
        assert_eq!(counter.strong_count(), 2, "the store's handle and the task's");
        drop(copy);
        // Only a guard against hanging the test run if the task never ends; not a performance bound.
        tokio::time::timeout(Duration::from_secs(60), async {
            while counter.strong_count() > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the writer task outlived its store");
    }

    /// `close` waits for the task: when it returns, the task is gone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_waits_for_the_writer() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        store.append_message(msg("m1")).await.unwrap();
        store.close().await;
        assert_eq!(std::sync::Arc::strong_count(&store.writer.commits), 1, "only the store's handle is left");
    }
}
