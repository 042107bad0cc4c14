//! The append writer: one thread that turns concurrent appends into group commits of the message journal.
//!
//! # Why a batch
//!
//! An acknowledged message must be durable, so every batch costs one `fdatasync`, about as much as the disk says
//! (from well under a millisecond on a fast SSD to ~10 ms on a VM's network disk) whatever the batch holds. One
//! message per fsync would cap the store at 1/fsync messages per second however many clients send. Making the
//! `n` queued appends durable together costs one fsync for all of them, so throughput grows with the load while
//! each message is still acknowledged only once it is durable.
//!
//! # Why the journal, not SQLite
//!
//! A batch is made durable by appending its messages to the journal ([`super::journal`], which says why), not by
//! a SQLite commit; the [flusher](super::flusher) moves them into SQLite every few seconds, and until then the
//! [memtable](super::memtable) holds them for every read.
//!
//! # Why a thread of its own
//!
//! sqlx runs each SQLite connection on a worker thread and sends it every statement over a channel: one
//! statement is one round trip between threads, two context switches, and an append's checks are several
//! statements. So the writer is a plain thread that owns its own connection (rusqlite, the same bundled SQLite)
//! and runs whole batches synchronously: one hand-over per batch, not per statement, and every statement
//! prepared once and cached. It is the only appender, so it hands out seqs from what it knows: the batch's own,
//! the memtable's counters, and SQLite's newest row for a conversation neither holds.
//!
//! # How
//!
//! Appends are queued on a bounded channel (callers wait for room when it is full: back-pressure, not memory
//! growth). The thread takes the first queued append, then drains whatever else is queued, up to [`MAX_BATCH`].
//! Each append is checked first, in one read transaction for the batch ([`check`]): a resend finds its original
//! (in the batch, the memtable or SQLite), a refused precondition is answered at once, and the others take the
//! next seq of their conversation. The conversation rows an append creates (its conversation's first, where no
//! row exists yet) go into its journal record, for the flusher to create with the message: the writer itself
//! never writes to SQLite. Then the batch's messages are written to the journal and fsynced, put in the memtable
//! (now readers see them, and a read of their rows waits for a flush), and only then is each caller answered.
//! Nothing is acknowledged that is not durable.
//!
//! A check sees what was committed when the batch began: a block (say) committed after that lets this batch's
//! message through, which is the order "message, then block", and a send that begins after the block commits is
//! refused. The writer remembers the answers to preconditions (a conversation's messages ask the same questions
//! over and over) until the store says something they read has changed ([`PreconditionChanges`], raised after
//! the commit and before the change is answered, so a send that begins after it finds the answers forgotten).
//!
//! If the journal cannot be written or synced, the batch fails, and so does every append after it: the segment
//! may hold part of a batch nobody was told is stored, and seqs handed out again after it could collide with it
//! on replay, so the writer stops rather than guess (as databases do when an fsync fails). Opening the store
//! again replays the journal.
//!
//! # Why it does not preempt when it wakes
//!
//! A batch is as big as what was queued while the one before it was written. On a core shared with the gateway,
//! Linux's default policy runs a woken thread at once, ahead of the one that woke it: every append's hand-over
//! switched to the writer, which found one append queued, wrote and synced it alone, and switched back. Under
//! `SCHED_BATCH` ([`wake_without_preempting`](super::sched::wake_without_preempting)) the writer waits for the
//! gateway's thread to pause or use up its slice (a few milliseconds at most), by which time the appends of that
//! turn are all queued: fewer, bigger batches, half the context switches, and less CPU per message
//! (BENCHMARKS.md, "A fifth machine"). Its share of the CPU and its nice value are unchanged; with a core to
//! itself nothing changes at all.
//!
//! # Lifetime
//!
//! The thread starts with the store, after replaying whatever journal a previous run left, and ends when its
//! queue's last sender is gone: when the store (all its clones) is dropped, or at
//! [`SqliteStore::close`](super::SqliteStore::close), which also waits for it. It finishes the appends already
//! queued, hands the last segment to the flusher and waits for that too. It needs no async runtime, so a store may
//! be used from several runtimes (as tests do).
//!
//! # One owner
//!
//! The journal belongs to one store: the first to open the database takes `palaver.db-log.lock`. Another store
//! opened on the same file while it is held (an admin tool, a test reading what a server stored) refuses appends
//! and reads only what is flushed; everything else works the same.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palaver_protocol::pb::sdkws::MsgData;
use prost::Message as _;
use rusqlite::OptionalExtension as _;
use tokio::sync::{mpsc, oneshot};

use super::DbFile;
use super::flusher::{self, Segment};
use super::journal::{self, Journal, Record};
use super::memtable::{Entry, Memtable};
use super::messages::{Answer, NEWEST, decode, read_precondition};
use crate::{Appended, ConversationRef, NewMessage, Precondition, Result, StoreError};

/// Most appends made durable together. Large enough that a burst is one fsync even on a slow disk (throughput
/// is at most `MAX_BATCH` per fsync); small enough that the latency of a batch's first append stays around ten
/// milliseconds.
pub(super) const MAX_BATCH: usize = 1024;

/// Appends that may wait in the queue before callers wait for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// How long a segment collects appends before it is handed to the flusher: the longer, the more messages of a
/// conversation share each index leaf written to SQLite, and the more the memtable holds. A flush writes every
/// leaf its conversations touch, about one a conversation in each of the log's B-trees once a run has spread them,
/// so the bytes written per message fall with the age: 7.1 KiB at 1 s, 4.3 at 2 s, 2.8 at 4 s in a minute of
/// 10,100 1:1 messages a second over 5,000 conversations. At 1 s that was ~100 MB/s by the minute's end, and on a
/// virtual disk whose every `fdatasync` waited behind it the appends fell behind after ~40 s (BENCHMARKS.md, "The
/// fourth machine, a third session"). Reads never wait for the age: a read that needs unflushed rows asks for a
/// flush at once.
pub(super) const SEGMENT_AGE: Duration = Duration::from_secs(4);

/// Messages after which a segment is handed over however young it is, so that a burst does not grow the memtable
/// without bound (with the segment being flushed, at most twice this many messages are held in memory).
const SEGMENT_MESSAGES: usize = 65_536;

/// Conversation rows remembered as existing (they are never deleted), and precondition answers remembered, beyond
/// which the memory is cleared.
const MAX_KNOWN: usize = 1_000_000;

/// How long a precondition's answer is remembered at most. Every change the store makes to what the answers
/// read raises [`PreconditionChanges`] and clears them at once; this bounds what a change made behind the store's
/// back (another process writing the file) could leave behind.
const ANSWERS_AGE: Duration = Duration::from_secs(10);

/// Raised after every commit that may change a precondition's answer (a user registered or updated, a
/// conversation's receive option set, a friend or a block added or removed), so that the append writer forgets
/// the answers it remembers before its next batch.
#[derive(Debug, Default)]
pub(super) struct PreconditionChanges(AtomicU64);

impl PreconditionChanges {
    /// Call after the change has committed, before answering whoever asked for it.
    pub(super) fn raise(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// What the writer thread is asked to do.
#[expect(clippy::large_enum_variant, reason = "nearly every job is an append: boxing it would only add an allocation")]
enum Job {
    Append {
        msg: NewMessage,
        reply: oneshot::Sender<Result<Appended>>,
    },
    /// The flusher's clock: hand over the segment if it is due.
    Tick,
    /// Hand over the segment now, and answer once everything appended before is in SQLite.
    Flush(oneshot::Sender<()>),
}

/// The store's handle on its writer thread. Shared by the store's clones; dropping the last one ends the thread.
pub(super) struct AppendWriter {
    /// `None` once [`AppendWriter::shut_down`] has run (or for a store that does not own the journal): appends
    /// fail with `refusal`.
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    refusal: &'static str,
    /// Answered (by dropping) when the thread ends.
    ended: Mutex<Option<oneshot::Receiver<()>>>,
    /// Batches made durable, for [`SqliteStore::commits`](super::SqliteStore::commits).
    commits: Arc<AtomicU64>,
    /// Held by tests to keep the thread from draining the queue, so that what they queue meanwhile is one batch.
    #[cfg(test)]
    pub(super) hold: Arc<Mutex<()>>,
}

/// What the thread works with.
struct Writer {
    conn: rusqlite::Connection,
    journal: Journal,
    memtable: Arc<Memtable>,
    /// The open segment's messages, for the flusher.
    segment: Vec<Arc<Entry>>,
    segment_began: Instant,
    to_flusher: std::sync::mpsc::SyncSender<Segment>,
    /// Conversation rows known to exist, in SQLite or in a journaled message: the owners of each conversation's.
    ensured: HashMap<String, Vec<String>>,
    /// Precondition answers read since `answers_seen` changes and for at most [`ANSWERS_AGE`]: a conversation's
    /// messages ask the same few questions (does the recipient exist, has it blocked the sender, does it
    /// receive) over and over.
    answers: HashMap<Precondition, Answer>,
    answers_seen: u64,
    answers_since: Instant,
    changes: Arc<PreconditionChanges>,
    /// The batch's new messages by conversation, kept (empty) from batch to batch like the batch itself.
    checked: Batch,
    /// Set when the journal could not be written: every later append fails with it.
    broken: Option<String>,
    commits: Arc<AtomicU64>,
    #[cfg(test)]
    hold: Arc<Mutex<()>>,
}

impl AppendWriter {
    /// Takes the journal of the database at `path` (already created and migrated), replays what a previous run
    /// left of it into SQLite, and starts the writer and flusher threads. If another store holds the journal,
    /// returns a writer that refuses appends.
    pub(super) fn start(file: &DbFile, memtable: Arc<Memtable>, changes: Arc<PreconditionChanges>) -> Result<Self> {
        let commits = Arc::new(AtomicU64::new(0));
        #[cfg(test)]
        let hold = Arc::new(Mutex::new(()));
        let path = file.path.as_path();
        let Some(lock) = journal::lock(path)? else {
            return Ok(Self {
                queue: Mutex::new(None),
                refusal: "another store holds this database's message journal: append through it",
                ended: Mutex::new(None),
                commits,
                #[cfg(test)]
                hold,
            });
        };

        let next = flusher::replay(file)?;
        let conn = file.connect()?;
        // The file is WAL already (a persistent setting made by the first connection). This connection only reads.
        conn.execute_batch("PRAGMA query_only = ON;")?;
        let journal = Journal::create(path, next)?;
        let (to_flusher, segments) = std::sync::mpsc::sync_channel(1);
        let (queue, jobs) = mpsc::channel(QUEUE);
        let weak = queue.downgrade();
        let tick = move || {
            if let Some(queue) = weak.upgrade() {
                // A full queue means the writer is busy, and looks at its segment after every batch anyway.
                let _ = queue.try_send(Job::Tick);
            }
        };
        let flusher = flusher::start(file, memtable.clone(), segments, tick)?;
        let mut writer = Writer {
            conn,
            journal,
            memtable,
            segment: Vec::new(),
            segment_began: Instant::now(),
            to_flusher,
            ensured: HashMap::new(),
            answers: HashMap::new(),
            answers_seen: changes.get(),
            answers_since: Instant::now(),
            changes,
            checked: Batch::new(),
            broken: None,
            commits: commits.clone(),
            #[cfg(test)]
            hold: hold.clone(),
        };
        let (ended_tx, ended) = oneshot::channel();
        std::thread::Builder::new()
            .name("sqlite-append-writer".into())
            .spawn(move || {
                super::sched::wake_without_preempting();
                writer.run(jobs);
                // The last segment goes to the flusher, which ends once it is flushed; everything the thread
                // holds (the lock last) goes before it says it has ended.
                drop(writer);
                let _ = flusher.join();
                drop(lock);
                drop(ended_tx);
            })
            .map_err(|e| StoreError::Backend(format!("starting the append writer: {e}")))?;
        Ok(Self {
            queue: Mutex::new(Some(queue)),
            refusal: "the store is closed",
            ended: Mutex::new(Some(ended)),
            commits,
            #[cfg(test)]
            hold,
        })
    }

    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn queue(&self) -> Result<mpsc::Sender<Job>> {
        let queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        queue.ok_or_else(|| StoreError::Backend(self.refusal.into()))
    }

    /// Queues `msg` for the next batch and waits until it is durable.
    pub(super) async fn append(&self, msg: NewMessage) -> Result<Appended> {
        let (reply, answer) = oneshot::channel();
        let queue = self.queue()?;
        // `try_send` first: when there is room (nearly always) the job is queued right here, without an await
        // point at which the caller could be cancelled between "queued" and "waiting for the answer".
        match queue.try_send(Job::Append { msg, reply }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(job)) => queue.send(job).await.map_err(|_| writer_gone())?,
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(writer_gone()),
        }
        drop(queue);
        answer.await.map_err(|_| writer_gone())?
    }

    /// Returns once every append answered before the call is in SQLite (not only in the journal).
    pub(super) async fn flush(&self) -> Result<()> {
        let (done, flushed) = oneshot::channel();
        let queue = self.queue()?;
        queue.send(Job::Flush(done)).await.map_err(|_| writer_gone())?;
        drop(queue);
        flushed.await.map_err(|_| StoreError::Backend("the journal could not be flushed".into()))
    }

    /// Refuses further appends and waits for the thread to answer those already queued, flush them, and end.
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
    StoreError::Backend("the append writer stopped before storing this message".into())
}

/// An append that passed its checks, waiting for the journal.
struct Accepted {
    reply: oneshot::Sender<Result<Appended>>,
    answer: Appended,
}

impl Writer {
    /// One batch per wake-up, until every sender is gone and the queue is empty; then the last segment.
    fn run(&mut self, mut jobs: mpsc::Receiver<Job>) {
        // Kept from batch to batch, as big as the biggest: a batch allocated anew grew by doubling up to
        // [`MAX_BATCH`] appends at a time, and each time into memory the allocator had handed back to the system,
        // so that the writer's thread zeroed fresh pages while a backlog waited on it (`perf`, a chat run's first
        // seconds).
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = jobs.blocking_recv() {
            let mut flushes = Vec::new();
            match first {
                Job::Append { msg, reply } => {
                    #[cfg(test)]
                    let hold = self.hold.clone();
                    #[cfg(test)]
                    drop(hold.lock());
                    batch.push((msg, reply));
                    while batch.len() < MAX_BATCH {
                        match jobs.try_recv() {
                            Ok(Job::Append { msg, reply }) => batch.push((msg, reply)),
                            Ok(Job::Tick) => {}
                            Ok(Job::Flush(done)) => flushes.push(done),
                            Err(_) => break,
                        }
                    }
                    self.write_batch(&mut batch);
                }
                Job::Tick => {}
                Job::Flush(done) => flushes.push(done),
            }
            if !flushes.is_empty() || self.segment_due() {
                self.hand_over(flushes);
            }
        }
        self.hand_over(Vec::new());
    }

    fn segment_due(&self) -> bool {
        !self.segment.is_empty()
            && (self.segment.len() >= SEGMENT_MESSAGES || self.segment_began.elapsed() >= SEGMENT_AGE)
    }

    /// Closes the open segment and gives its messages to the flusher (waiting if it is a segment behind).
    fn hand_over(&mut self, done: Vec<oneshot::Sender<()>>) {
        if self.segment.is_empty() && done.is_empty() {
            return;
        }
        let mut number = None;
        if !self.segment.is_empty() {
            match self.journal.rotate() {
                Ok(closed) => number = Some(closed),
                Err(e) => {
                    // Appending to the old segment is as safe; it is handed over at the next rotation.
                    tracing::error!("starting a new journal segment: {e}");
                    return;
                }
            }
        }
        self.segment_began = Instant::now();
        let entries = std::mem::take(&mut self.segment);
        // Only fails when the flusher has ended, which it does only after this thread.
        let _ = self.to_flusher.send(Segment { number, entries, done });
    }

    /// Checks each append of the batch, journals those that pass, and answers every caller. Leaves `batch` empty.
    fn write_batch(&mut self, batch: &mut Vec<(NewMessage, oneshot::Sender<Result<Appended>>)>) {
        if let Some(why) = &self.broken {
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(StoreError::Backend(why.clone())));
            }
            return;
        }
        let mut accepted = Vec::with_capacity(batch.len());
        let mut entries = Vec::with_capacity(batch.len());
        let mut ours = std::mem::take(&mut self.checked);
        // Before the snapshot: an answer read in it is then at least as new as the changes seen here.
        self.forget_stale_answers();
        // One read transaction for the batch's checks: one snapshot, one lock, rather than one per statement. The
        // pin keeps what is flushed after the snapshot in the memtable, where the checks find it.
        let memtable = self.memtable.clone();
        let pinned = memtable.pin();
        let snapshot = self.conn.execute_batch("BEGIN");
        for (msg, reply) in batch.drain(..) {
            // Nobody is waiting for this one any more (its caller was cancelled): leave it out.
            if reply.is_closed() {
                continue;
            }
            let result = snapshot
                .as_ref()
                .map_err(|e| StoreError::Backend(format!("reading for a batch: {e}")))
                .and_then(|()| self.check(&mut ours, msg));
            match result {
                Ok(Checked::Existing(answer)) => accepted.push(Accepted { reply, answer }),
                Ok(Checked::New { entry, data }) => {
                    entries.push(entry);
                    accepted.push(Accepted { reply, answer: Appended { data, created: true } });
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        if snapshot.is_ok() {
            let _ = self.conn.execute_batch("COMMIT");
        }
        drop(pinned);
        ours.clear();
        self.checked = ours;

        if !entries.is_empty() {
            if let Err(e) = self.journal.append(entries.iter().map(|e: &Arc<Entry>| &e.record)) {
                let why = format!("writing the message journal: {e}");
                self.broken = Some(why.clone());
                return fail(accepted, &why);
            }
            self.memtable.insert(&entries);
            self.segment.extend(entries);
            self.commits.fetch_add(1, Ordering::Relaxed);
        }
        for Accepted { reply, answer } in accepted {
            let _ = reply.send(Ok(answer));
        }
    }

    /// The checks of one append, in the batch's read transaction, in order:
    /// 1. a message with this `(conversation_id, client_msg_id)` exists (in this batch, the memtable or SQLite)
    ///    → it, `created: false`: the retried send gets the original seq and serverMsgID;
    /// 2. the preconditions, the first that fails refusing the append;
    /// 3. the seq after the conversation's newest, and a send time after its send time: strictly increasing per
    ///    conversation (OpenIM's SDKs sort and page history by sendTime, so two messages of one conversation in
    ///    the same millisecond could show out of seq order).
    ///
    /// An empty `client_msg_id` (which the server refuses before getting here) is never a duplicate of anything.
    fn check(&mut self, ours: &mut Batch, msg: NewMessage) -> Result<Checked> {
        let NewMessage { conversation_id, mut data, ensure_conversations, reader, preconditions } = msg;
        let client_msg_id = (!data.client_msg_id.is_empty()).then(|| data.client_msg_id.clone());
        if let Some(id) = &client_msg_id
            && let Some(data) = self.find(ours, &conversation_id, id)?
        {
            return Ok(Checked::Existing(Appended { data, created: false }));
        }
        for condition in preconditions {
            let answer = match self.answers.get(&condition) {
                Some(answer) => *answer,
                None => {
                    let answer = read_precondition(&self.conn, &condition)?;
                    if self.answers.len() >= MAX_KNOWN {
                        self.answers.clear();
                    }
                    self.answers.insert(condition.clone(), answer);
                    answer
                }
            };
            if !answer.admit(&mut data) {
                return Err(StoreError::Refused(condition));
            }
        }

        let newest = match ours.get(&conversation_id).and_then(|earlier| earlier.last()) {
            Some(earlier) => Some((earlier.seq, earlier.send_time)),
            None => match self.memtable.newest(&conversation_id) {
                Some(newest) => Some(newest),
                None => self
                    .conn
                    .prepare_cached(NEWEST)?
                    .query_row([&conversation_id], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?,
            },
        };
        data.seq = match newest {
            None => 1,
            Some((seq, time)) => {
                data.send_time = data.send_time.max(time + 1);
                seq + 1
            }
        };
        let rows = self.new_rows(ensure_conversations)?;
        let entry = Arc::new(Entry {
            seq: data.seq,
            send_time: data.send_time,
            client_msg_id,
            server_msg_id: data.server_msg_id.clone(),
            send_id: data.send_id.clone(),
            segment: self.journal.number(),
            record: Record { conversation_id, reader, blob: data.encode_to_vec(), rows },
        });
        match ours.get_mut(&entry.record.conversation_id) {
            Some(earlier) => earlier.push(entry.clone()),
            None => {
                ours.insert(entry.record.conversation_id.clone(), vec![entry.clone()]);
            }
        }
        Ok(Checked::New { entry, data })
    }

    /// Forgets the remembered precondition answers if the store changed what they read, or they are old.
    fn forget_stale_answers(&mut self) {
        let seen = self.changes.get();
        if seen != self.answers_seen || self.answers_since.elapsed() >= ANSWERS_AGE {
            self.answers.clear();
            self.answers_seen = seen;
            self.answers_since = Instant::now();
        }
    }

    /// The stored message of `conversation_id` with this clientMsgID, wherever it is.
    fn find(&self, ours: &Batch, conversation_id: &str, client_msg_id: &str) -> Result<Option<MsgData>> {
        let in_batch = ours
            .get(conversation_id)
            .and_then(|earlier| earlier.iter().find(|e| e.client_msg_id.as_deref() == Some(client_msg_id)).cloned());
        if let Some(entry) = in_batch.or_else(|| self.memtable.by_client_msg_id(conversation_id, client_msg_id)) {
            return decode(&entry.record.blob).map(Some);
        }
        let blob: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT data FROM messages WHERE conversation_id = ?1 AND client_msg_id = ?2")?
            .query_row((conversation_id, client_msg_id), |row| row.get(0))
            .optional()?;
        blob.map(|b| decode(&b)).transpose()
    }

    /// The rows of `refs` that neither SQLite (in the batch's snapshot) nor an earlier journaled message holds:
    /// the message carries them to the flusher. All of `refs` are remembered as existing from here on.
    fn new_rows(&mut self, refs: Vec<ConversationRef>) -> Result<Vec<ConversationRef>> {
        let (mut rows, mut stored) = (Vec::new(), Vec::new());
        for c in refs.into_iter().filter(|c| !self.is_ensured(c)) {
            let found = self
                .conn
                .prepare_cached("SELECT 1 FROM conversations WHERE owner_user_id = ?1 AND conversation_id = ?2")?
                .query_row((&c.owner_user_id, &c.conversation_id), |_| Ok(()))
                .optional()?;
            if found.is_some() { stored.push(c) } else { rows.push(c) }
        }
        // Only once nothing can fail: a row remembered but not carried would never be created.
        for c in stored.iter().chain(&rows) {
            self.remember_ensured(c);
        }
        Ok(rows)
    }

    /// Forgetting is harmless: a row found in neither place again is carried again, and creating it is a no-op.
    fn remember_ensured(&mut self, c: &ConversationRef) {
        if self.ensured.len() > MAX_KNOWN {
            self.ensured.clear();
        }
        self.ensured.entry(c.conversation_id.clone()).or_default().push(c.owner_user_id.clone());
    }

    fn is_ensured(&self, c: &ConversationRef) -> bool {
        self.ensured.get(&c.conversation_id).is_some_and(|owners| owners.contains(&c.owner_user_id))
    }
}

/// The new messages of the batch checked so far, by conversation, in seq order: what neither the memtable nor
/// SQLite holds yet (each conversation's newest seq, and the originals of resends in the same batch).
type Batch = HashMap<String, Vec<Arc<Entry>>>;

enum Checked {
    /// A resend: the original.
    Existing(Appended),
    /// A new message, with its seq.
    New { entry: Arc<Entry>, data: MsgData },
}

fn fail(accepted: Vec<Accepted>, why: &str) {
    tracing::error!(appends = accepted.len(), "append batch failed: {why}");
    for Accepted { reply, .. } in accepted {
        let _ = reply.send(Err(StoreError::Backend(why.to_string())));
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::Poll;
    use std::time::Duration;

    use palaver_protocol::pb::sdkws::MsgData;

    use super::super::SqliteStore;
    use crate::{
        Appended, Black, Change, ConversationPatch, ConversationRef, ConversationStore as _, MessageStore as _,
        NewMessage, Precondition, RelationStore as _, StoreError, User, UserStore as _, VersionKind, VersionStore as _,
    };

    fn msg(client_msg_id: &str) -> NewMessage {
        NewMessage {
            conversation_id: "si_a_b".into(),
            data: MsgData { client_msg_id: client_msg_id.into(), ..MsgData::default() },
            ensure_conversations: Vec::new(),
            reader: None,
            preconditions: Vec::new(),
        }
    }

    /// Appends `msgs` so that they all land in **one** batch, without relying on timing: the writer is held
    /// while each append is polled once, which queues it (the writer answers only once the batch is durable, so
    /// each poll returns pending); the writer, waiting with the first one, drains the rest once released.
    #[expect(clippy::await_holding_lock, reason = "the lock holds the writer's thread, not a task")]
    async fn append_in_one_batch(store: &SqliteStore, msgs: Vec<NewMessage>) -> Vec<crate::Result<Appended>> {
        let hold = store.writer.hold.clone();
        let held = hold.lock().unwrap();
        let mut pending: Vec<_> = msgs.into_iter().map(|m| Box::pin(store.append_message(m))).collect();
        for append in &mut pending {
            let first_poll = std::future::poll_fn(|cx| Poll::Ready(append.as_mut().poll(cx))).await;
            assert!(first_poll.is_pending(), "an append was answered while the writer was held");
        }
        drop(held);
        let mut results = Vec::new();
        for append in pending {
            results.push(append.await);
        }
        results
    }

    async fn seqs(store: &SqliteStore, conversation_id: &str) -> Vec<i64> {
        store.messages_in_range(conversation_id, 1, i64::MAX, 1_000).await.unwrap().iter().map(|m| m.seq).collect()
    }

    /// The writer's thread runs under `SCHED_BATCH` (policy 3, field 41 of `/proc/<tid>/stat`) with its nice value
    /// unchanged. Tests run side by side in one process, so other stores' writers may be there too, some just
    /// started: the one that answered this store's append has set its policy, whichever it is.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_writer_does_not_preempt_when_it_wakes() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        store.append_message(msg("c1")).await.unwrap();
        let process = super::super::sched::probe::process();
        let writers = super::super::sched::probe::threads("sqlite-append-w");
        assert!(writers.iter().any(|w| w.policy == 3), "no writer under SCHED_BATCH: {writers:?}");
        for writer in writers.iter().filter(|w| w.policy == 3) {
            assert_eq!(writer.nice, process.nice, "a writer's nice value");
        }
    }

    /// 64 appends queued together cost one commit (one fsync), not 64, and still get seqs 1..=64 in queue order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn queued_appends_share_one_commit() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let results = append_in_one_batch(&store, (0..64).map(|i| msg(&format!("b{i}"))).collect()).await;
        assert_eq!(store.commits(), 1, "64 queued appends, one commit");
        for (i, r) in results.into_iter().enumerate() {
            let a = r.unwrap();
            assert!(a.created);
            assert_eq!((a.data.client_msg_id, a.data.seq), (format!("b{i}"), i64::try_from(i + 1).unwrap()));
        }
        assert_eq!(seqs(&store, "si_a_b").await, (1..=64).collect::<Vec<_>>());
    }

    /// A resend queued in the same batch as its original is answered with the original.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_duplicate_in_one_batch_stores_one_message() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let results: Vec<_> = append_in_one_batch(&store, vec![msg("x"), msg("x"), msg("y"), msg("x")])
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(store.commits(), 1);
        assert_eq!(results.iter().map(|a| a.created).collect::<Vec<_>>(), [true, false, true, false]);
        assert_eq!(results[1].data, results[0].data, "the resend is answered with the original");
        assert_eq!(results[3].data, results[0].data);
        assert_eq!((results[0].data.seq, results[2].data.seq), (1, 2));
        assert_eq!(seqs(&store, "si_a_b").await, [1, 2]);
    }

    /// The writer remembers precondition answers, and forgets them when the store changes what they read: a
    /// user registered, a block added or removed, a receive option set.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_changed_precondition_is_read_again() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let checked = |id: &str, preconditions: Vec<Precondition>| NewMessage { preconditions, ..msg(id) };
        let user = |id: &str| User { user_id: id.into(), ..User::default() };
        let exists = || vec![Precondition::UserExists("b".into())];
        assert!(matches!(store.append_message(checked("1", exists())).await, Err(StoreError::Refused(_))));
        store.register_users(&[user("a"), user("b")]).await.unwrap();
        store.append_message(checked("2", exists())).await.expect("b exists now");

        let not_blocked = || vec![Precondition::NotBlocked { owner: "b".into(), other: "a".into() }];
        store.append_message(checked("3", not_blocked())).await.unwrap();
        let black = Black { owner_user_id: "b".into(), block_user_id: "a".into(), ..Black::default() };
        store.add_black(&black).await.unwrap();
        assert!(matches!(store.append_message(checked("4", not_blocked())).await, Err(StoreError::Refused(_))));
        store.remove_black("b", "a").await.unwrap();
        store.append_message(checked("5", not_blocked())).await.expect("unblocked");

        let receives =
            || vec![Precondition::Receives { user: "b".into(), conversation_id: "si_a_b".into(), read_receipt: false }];
        store.append_message(checked("6", receives())).await.unwrap();
        let not_receive = ConversationPatch {
            conversation_id: "si_a_b".into(),
            recv_msg_opt: Some(palaver_protocol::constant::recv_msg_opt::NOT_RECEIVE),
            ..ConversationPatch::default()
        };
        store.update_conversation("b", &not_receive).await.unwrap();
        assert!(matches!(store.append_message(checked("7", receives())).await, Err(StoreError::Refused(_))));
    }

    /// An append refused by its checks takes no seq, and the rest of its batch is stored without it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_refused_append_does_not_fail_its_batch() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let refused = NewMessage { preconditions: vec![Precondition::UserExists("nobody".into())], ..msg("r") };
        let results = append_in_one_batch(&store, vec![msg("a"), refused, msg("b")]).await;
        assert_eq!(store.commits(), 1);
        let mut results = results.into_iter();
        assert_eq!(results.next().unwrap().unwrap().data.seq, 1);
        let failed = results.next().unwrap();
        assert!(matches!(failed, Err(StoreError::Refused(Precondition::UserExists(_)))), "{failed:?}");
        assert_eq!(results.next().unwrap().unwrap().data.seq, 2, "the refused append burnt no seq");
        assert_eq!(seqs(&store, "si_a_b").await, [1, 2]);
    }

    /// A first message's conversation rows are journaled with it and created by the flusher, not by the writer
    /// (whose connection only reads); a read of either owner's conversations, or of their lists' changes, right
    /// after the acknowledgement finds them, and the conversation's next message carries none.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_first_messages_rows_are_read_right_after_its_ack() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let row = |owner: &str, peer: &str| ConversationRef::with_peer(owner, peer, "si_a_b", 1);
        let first = |id: &str| NewMessage { ensure_conversations: vec![row("a", "b"), row("b", "a")], ..msg(id) };
        store.append_message(first("m1")).await.unwrap();
        for (owner, peer) in [("b", "a"), ("a", "b")] {
            let rows = store.user_conversations(owner).await.unwrap();
            assert_eq!(
                rows.iter().map(|r| (r.user_id.as_str(), r.max_seq)).collect::<Vec<_>>(),
                [(peer, 1)],
                "{owner}"
            );
        }
        store.append_message(first("m2")).await.unwrap();
        let b_head = store.version_head(VersionKind::Conversations, "b").await.unwrap().version;
        let third = first("m3");
        store.append_message(third).await.unwrap();
        if let Some(last) = store.memtable.last("si_a_b") {
            assert!(last.record.rows.is_empty(), "rows known to exist are not carried again");
        }
        let delta = store.version_changes(VersionKind::Conversations, "b", 0, 10).await.unwrap();
        assert_eq!(delta.changes, vec![("si_a_b".to_string(), Change::Insert)]);
        assert_eq!(delta.head.version, b_head, "one version for the row, none for later messages");
        let written: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM conversations").fetch_one(&store.write).await.unwrap();
        assert_eq!(written, 2);
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

    /// `close` waits for the thread: when it returns, the thread is gone and everything is flushed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_waits_for_the_writer() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        store.append_message(msg("m1")).await.unwrap();
        store.close().await;
        assert_eq!(std::sync::Arc::strong_count(&store.writer.commits), 1, "only the store's handle is left");
        assert_eq!(store.memtable.pending(), 0);
    }
}
