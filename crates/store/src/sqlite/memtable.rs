//! The messages journaled but not yet flushed into SQLite, by conversation: what every message read merges with
//! SQLite's rows.
//!
//! # Reading beside a flush
//!
//! The flusher commits a segment's messages into SQLite and only *then* removes them from here. A read therefore
//! looks here first and in SQLite second: a message it missed here had been removed, so was committed before the
//! SQLite read began, which sees it. It may find a message in both (removed after it looked here); callers merge
//! by seq. A reader that cannot look here first holds a [pin](Memtable::pin) or checks for a flush in between
//! ([`Memtable::overlay`]).
//!
//! # Conversation rows
//!
//! A conversation's first message carries the rows it creates (its two parties' in a 1:1 chat), journaled with it
//! and created in SQLite by the flusher with it, not by the append writer in the path of every batch: written
//! there, a run's new conversations rewrote most leaves of four B-trees once per batch (BENCHMARKS.md, "The third
//! machine, a fourth session"). Until then the memtable knows whose rows are unflushed
//! ([`Memtable::has_unflushed_rows`]), and a read of such an owner's conversations first asks for a flush, so it
//! finds them: rows and their version bumps are SQLite's alone to answer, and a flush makes them so.
//!
//! # The counter
//!
//! Each conversation seen since the store opened keeps its newest seq and send time here, also once its messages
//! are flushed, so the writer takes the next seq (and a reader the max seq) without a seek in SQLite. A
//! conversation not here has everything in SQLite. When more than [`MAX_IDLE_TAILS`] conversations are held, those
//! with nothing unflushed are forgotten.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::journal::Record;
use crate::UserConversation;

/// Conversations kept for their counter alone, beyond which those with nothing unflushed are forgotten (a few
/// dozen bytes each).
const MAX_IDLE_TAILS: usize = 100_000;

/// One message in the journal, not yet in SQLite.
#[derive(Debug)]
pub(super) struct Entry {
    pub seq: i64,
    pub send_time: i64,
    pub client_msg_id: Option<String>,
    pub server_msg_id: String,
    pub send_id: String,
    /// The journal segment that holds it.
    pub segment: u64,
    pub record: Record,
}

#[derive(Default)]
struct Tail {
    /// Seq and send time of the conversation's newest message.
    newest: (i64, i64),
    /// Its unflushed messages, in seq order: always the newest ones, with no gap.
    entries: VecDeque<Arc<Entry>>,
    /// The same by clientMsgID (a busy conversation holds a second's worth: every append looks one up).
    by_client_msg_id: HashMap<String, Arc<Entry>>,
}

#[derive(Default)]
pub(super) struct Memtable {
    state: Mutex<State>,
    /// See [`Memtable::pin`].
    pinned: Mutex<()>,
}

#[derive(Default)]
struct State {
    tails: HashMap<String, Tail>,
    /// Owners with conversation rows not yet in SQLite, and the newest segment holding one of them.
    rows: HashMap<String, u64>,
    /// Flushes removed so far: see [`Memtable::overlay`].
    flushes: u64,
}

impl Memtable {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// While the guard lives, no flushed message leaves the memtable. For a reader that holds one SQLite snapshot
    /// over many lookups (the append writer's checks of a batch): a message flushed after its snapshot was taken
    /// is then still found here.
    pub(super) fn pin(&self) -> MutexGuard<'_, ()> {
        self.pinned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Flushes removed so far, to pass to [`Memtable::overlay`].
    pub(super) fn flushes(&self) -> u64 {
        self.state().flushes
    }

    /// Brings conversation rows read from SQLite up to date with the unflushed messages: their max seq and send
    /// time, and the owner's read cursor where the owner sent one of them. For rows whose conversations are not
    /// known before the read (so the memtable cannot be read first): `false`, and nothing done, when a flush was
    /// removed since `flushes_before` (taken before the SQLite read), whose messages the read may have missed in
    /// both places; the caller reads again.
    pub(super) fn overlay(&self, rows: &mut [UserConversation], flushes_before: u64) -> bool {
        let state = self.state();
        if state.flushes != flushes_before {
            return false;
        }
        for row in rows {
            let Some(tail) = state.tails.get(&row.conversation_id) else { continue };
            if tail.newest.0 > row.max_seq {
                (row.max_seq, row.max_seq_time) = tail.newest;
            }
            let own = tail.entries.iter().rev().find(|e| e.record.reader.as_deref() == Some(&row.owner_user_id));
            if let Some(own) = own {
                row.has_read_seq = row.has_read_seq.max(own.seq);
            }
        }
        true
    }

    /// Seq and send time of the newest message of `conversation_id`, if it is held here.
    pub(super) fn newest(&self, conversation_id: &str) -> Option<(i64, i64)> {
        self.state().tails.get(conversation_id).map(|t| t.newest)
    }

    /// The unflushed message of `conversation_id` with this clientMsgID.
    pub(super) fn by_client_msg_id(&self, conversation_id: &str, client_msg_id: &str) -> Option<Arc<Entry>> {
        let state = self.state();
        state.tails.get(conversation_id)?.by_client_msg_id.get(client_msg_id).cloned()
    }

    /// Adds durable messages, each newer than any held for its conversation.
    pub(super) fn insert(&self, entries: &[Arc<Entry>]) {
        let mut guard = self.state();
        let state = &mut *guard;
        for entry in entries {
            let tail = state.tails.entry(entry.record.conversation_id.clone()).or_default();
            debug_assert!(entry.seq > tail.newest.0);
            tail.newest = (entry.seq, entry.send_time);
            tail.entries.push_back(entry.clone());
            if let Some(id) = &entry.client_msg_id {
                tail.by_client_msg_id.insert(id.clone(), entry.clone());
            }
            for row in &entry.record.rows {
                state.rows.insert(row.owner_user_id.clone(), entry.segment);
            }
        }
    }

    /// Whether `owner` has conversation rows not yet in SQLite (see the module docs).
    pub(super) fn has_unflushed_rows(&self, owner: &str) -> bool {
        self.state().rows.contains_key(owner)
    }

    /// Whether anyone has.
    pub(super) fn any_unflushed_rows(&self) -> bool {
        !self.state().rows.is_empty()
    }

    /// The unflushed messages of `conversation_id` with seqs in `begin..=end`, in seq order.
    pub(super) fn range(&self, conversation_id: &str, begin: i64, end: i64) -> Vec<Arc<Entry>> {
        let state = self.state();
        let Some(tail) = state.tails.get(conversation_id) else { return Vec::new() };
        tail.entries.iter().filter(|e| (begin..=end).contains(&e.seq)).cloned().collect()
    }

    /// The newest unflushed message of `conversation_id`.
    pub(super) fn last(&self, conversation_id: &str) -> Option<Arc<Entry>> {
        self.state().tails.get(conversation_id)?.entries.back().cloned()
    }

    /// Unflushed messages in all.
    pub(super) fn pending(&self) -> usize {
        self.state().tails.values().map(|t| t.entries.len()).sum()
    }

    /// Forgets the messages of segments up to `segment`, now committed in SQLite.
    pub(super) fn remove_through(&self, segment: u64) {
        let _pinned = self.pin();
        let mut state = self.state();
        state.flushes += 1;
        state.rows.retain(|_, newest| *newest > segment);
        for tail in state.tails.values_mut() {
            while let Some(entry) = tail.entries.pop_front_if(|e| e.segment <= segment) {
                if let Some(id) = &entry.client_msg_id {
                    tail.by_client_msg_id.remove(id);
                }
            }
        }
        if state.tails.len() > MAX_IDLE_TAILS {
            state.tails.retain(|_, t| !t.entries.is_empty());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(conversation_id: &str, seq: i64, segment: u64, reader: Option<&str>) -> Arc<Entry> {
        Arc::new(Entry {
            seq,
            send_time: seq * 10,
            client_msg_id: Some(format!("c{seq}")),
            server_msg_id: String::new(),
            send_id: String::new(),
            segment,
            record: Record {
                conversation_id: conversation_id.into(),
                reader: reader.map(Into::into),
                blob: Vec::new(),
                rows: Vec::new(),
            },
        })
    }

    #[test]
    fn holds_the_tail_until_its_segment_is_flushed_and_the_counter_after() {
        let m = Memtable::default();
        m.insert(&[entry("a", 1, 1, Some("u")), entry("b", 1, 1, None), entry("a", 2, 2, Some("v"))]);
        assert_eq!(m.newest("a"), Some((2, 20)));
        assert_eq!(m.range("a", 2, 9).iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
        assert_eq!(m.by_client_msg_id("a", "c1").unwrap().seq, 1);
        let row = |owner: &str, conversation_id: &str| UserConversation {
            owner_user_id: owner.into(),
            conversation_id: conversation_id.into(),
            ..UserConversation::default()
        };
        let mut rows = [row("u", "a"), row("v", "a"), row("u", "b")];
        assert!(m.overlay(&mut rows, m.flushes()));
        let seen: Vec<_> = rows.iter().map(|r| (r.max_seq, r.max_seq_time, r.has_read_seq)).collect();
        assert_eq!(seen, [(2, 20, 1), (2, 20, 2), (1, 10, 0)]);
        assert_eq!(m.pending(), 3);

        let before = m.flushes();
        m.remove_through(1);
        assert!(!m.overlay(&mut rows, before), "a flush in between: read again");
        assert_eq!(m.pending(), 1);
        assert!(m.by_client_msg_id("a", "c1").is_none());
        assert_eq!(m.last("a").unwrap().seq, 2);
        assert!(m.last("b").is_none());
        assert_eq!(m.newest("b"), Some((1, 10)), "the counter outlives the flush");
        assert_eq!(m.newest("c"), None);
    }

    /// An owner's rows are unflushed until the newest segment holding one of them is flushed.
    #[test]
    fn knows_whose_rows_are_unflushed() {
        let with_rows = |seq: i64, segment: u64, owners: &[&str]| {
            let mut e = Arc::into_inner(entry("si_u_v", seq, segment, None)).unwrap();
            e.record.rows =
                owners.iter().map(|owner| crate::ConversationRef::with_peer(owner, "", "si_u_v", 1)).collect();
            Arc::new(e)
        };
        let m = Memtable::default();
        assert!(!m.any_unflushed_rows());
        m.insert(&[with_rows(1, 1, &["u", "v"]), with_rows(2, 2, &["v"])]);
        assert!(m.has_unflushed_rows("u") && m.has_unflushed_rows("v") && !m.has_unflushed_rows("w"));
        m.remove_through(1);
        assert!(!m.has_unflushed_rows("u"));
        assert!(m.has_unflushed_rows("v"), "v's second row is in segment 2");
        m.remove_through(2);
        assert!(!m.any_unflushed_rows());
    }
}
