//! Seq order of pushes on one node, whichever node sent them.
//!
//! # Why
//!
//! On one node, "commit, then push" runs under the conversation's lock (see `service`), so pushes of a
//! conversation leave in seq order. In a cluster two nodes append to the same conversation at once: PostgreSQL's
//! row lock gives them seqs 5 and 6 in commit order, but each node then publishes its own message, and a third
//! node may receive 6 before 5. So each node puts the pushes it delivers back in order, per conversation.
//!
//! # How
//!
//! Seqs are gap-free, so a node knows exactly what it is missing: it remembers, per conversation, the last seq
//! it delivered (`last`). A push with `last + 1` goes out at once (with any held pushes that now follow); one
//! with `seq <= last` was already delivered (by a fill, below) and is dropped; one further ahead is held. If the
//! gap has not closed after [`REORDER_WAIT`] (the missing push went to no one here, was lost with a NATS
//! outage or a killed node, or its sender's view of who is online here was stale), the node reads the missing
//! messages from the store and delivers them itself. That read is always possible: a node publishes seq `n`
//! only after its commit, and the row lock let `n` commit only after every lower seq had, so everything below a
//! published seq is in the store.
//!
//! A fill is for a few pushes lost on the way, not for catching up: a gap of more than [`MAX_FILL`] seqs (a
//! node that had none of a conversation's parties online for minutes, then one connects) is skipped rather than
//! read, so that one push never turns into thousands of store reads and pushes at once. The clients are not
//! short of anything: a client that connected meanwhile pulled at login, and one that sees the seq jump pulls the
//! range.
//!
//! A conversation this node has not seen recently has no `last`. Its first push is delivered at once if it is
//! seq 1; otherwise it is held for [`REORDER_WAIT`] with whatever else arrives meanwhile ("settling"), and the
//! lowest seq held then starts the order. The state is dropped after [`IDLE`] without traffic, so it stays as
//! small as the set of recently active conversations.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::hub::PushFrame;

/// How long a push waits for the pushes before it before the node reads them from the store.
pub(crate) const REORDER_WAIT: Duration = Duration::from_millis(100);

/// The largest gap a fill reads from the store; a larger one is skipped (see the module docs).
pub(crate) const MAX_FILL: i64 = 256;

/// A conversation without pushes for this long forgets its order state.
const IDLE: Duration = Duration::from_secs(600);

/// Conversations per shard above which idle ones are forgotten.
const SHARD_SOFT_CAP: usize = 4096;

const SHARDS: usize = 64;

/// A push ready to go to the hub: these local users, this frame.
pub(crate) type Ready = (Vec<String>, Arc<PushFrame>);

#[derive(Default)]
struct Conversation {
    last: i64,
    /// Pushes that arrived ahead of a gap, by seq.
    held: BTreeMap<i64, Ready>,
    /// A fill task is scheduled or running for this conversation.
    filling: bool,
    /// `last` is not known yet (the first push was not seq 1): everything is held until the fill task settles.
    settling: bool,
    touched: Option<Instant>,
}

/// Per-conversation order state, sharded by conversation id so that deliveries of different conversations do
/// not contend.
pub(crate) struct Sequencer {
    shards: Box<[Mutex<HashMap<String, Conversation>>]>,
}

/// What the caller does after offering a push.
#[derive(Default)]
pub(crate) struct Offer {
    /// Schedule a fill of this conversation after [`REORDER_WAIT`].
    pub schedule_fill: bool,
}

/// What a fill must fetch: the seqs missing below the first held push.
pub(crate) struct Gap {
    pub from: i64,
    pub to: i64,
}

impl Default for Sequencer {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }
}

impl Sequencer {
    fn shard(&self, conversation_id: &str) -> MutexGuard<'_, HashMap<String, Conversation>> {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(conversation_id);
        let shard = &self.shards[(hash as usize) % self.shards.len()];
        shard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers push `seq` of `conversation_id`; `deliver` is called, in seq order, for every push that can go out
    /// now. It runs under the conversation's shard lock, so that two threads offering consecutive seqs cannot
    /// hand their pushes to the hub in the wrong order: it must only queue (the hub never waits).
    pub(crate) fn offer(&self, conversation_id: &str, seq: i64, push: Ready, deliver: impl Fn(&Ready)) -> Offer {
        let now = Instant::now();
        let mut shard = self.shard(conversation_id);
        if shard.len() > SHARD_SOFT_CAP && !shard.contains_key(conversation_id) {
            shard.retain(|_, c| c.filling || !c.held.is_empty() || c.touched.is_some_and(|t| now - t < IDLE));
        }
        let c = shard.entry(conversation_id.to_string()).or_default();
        let fresh = c.touched.is_none_or(|t| now - t >= IDLE) && c.held.is_empty() && !c.filling;
        c.touched = Some(now);
        let mut offer = Offer::default();
        let mut ready = Vec::new();
        if fresh && seq > 1 {
            c.settling = true;
            c.filling = true;
            c.held.insert(seq, push);
            offer.schedule_fill = true;
        } else if c.settling {
            c.held.insert(seq, push);
        } else if fresh || seq == c.last + 1 {
            c.last = seq;
            ready.push(push);
            release(c, &mut ready);
        } else if seq > c.last + 1 {
            c.held.insert(seq, push);
            if !c.filling {
                c.filling = true;
                offer.schedule_fill = true;
            }
        } else {
            tracing::trace!(conversation_id, seq, last = c.last, "push already delivered by a fill");
        }
        ready.iter().for_each(deliver);
        offer
    }

    /// Called by the fill task after [`REORDER_WAIT`]: settles a new conversation's order (its lowest held seq
    /// starts it; returned as ready with what follows it), skips gaps of more than [`MAX_FILL`] seqs (delivering
    /// what follows them), then says which seqs must be read from the store: from `last + 1` to just below the
    /// first held push. `None` when there is no gap (the fill is then over).
    pub(crate) fn gap(&self, conversation_id: &str, deliver: impl Fn(&Ready)) -> Option<Gap> {
        let mut shard = self.shard(conversation_id);
        let c = shard.get_mut(conversation_id)?;
        let mut ready = Vec::new();
        if c.settling {
            c.settling = false;
            if let Some(&first) = c.held.keys().next() {
                c.last = first - 1;
                release(c, &mut ready);
            }
        }
        let gap = loop {
            match c.held.keys().next() {
                Some(&first) if first > c.last + 1 + MAX_FILL => {
                    tracing::debug!(
                        conversation_id,
                        from = c.last + 1,
                        to = first - 1,
                        "push gap too large to fill from the store: skipped (clients pull it)"
                    );
                    c.last = first - 1;
                    release(c, &mut ready);
                }
                Some(&first) if first > c.last + 1 => break Some(Gap { from: c.last + 1, to: first - 1 }),
                _ => {
                    c.filling = false;
                    break None;
                }
            }
        };
        ready.iter().for_each(deliver);
        gap
    }

    /// Applies a fill: `found` holds the missing pushes that could be read, by seq (a seq absent from it is
    /// skipped: nothing will ever fill it). Delivers what can go now (as [`Sequencer::offer`] does), and
    /// returns whether another gap remains (the caller then fills again).
    pub(crate) fn filled(
        &self,
        conversation_id: &str,
        gap: &Gap,
        found: BTreeMap<i64, Ready>,
        deliver: impl Fn(&Ready),
    ) -> bool {
        let mut shard = self.shard(conversation_id);
        let Some(c) = shard.get_mut(conversation_id) else {
            return false;
        };
        let mut ready = Vec::new();
        for (seq, push) in found {
            if seq > c.last && seq <= gap.to {
                ready.push(push);
            }
        }
        if c.last < gap.to {
            c.last = gap.to;
        }
        release(c, &mut ready);
        ready.iter().for_each(deliver);
        let again = !c.held.is_empty();
        c.filling = again;
        again
    }
}

/// Moves the held pushes that now follow `last` into `ready`.
fn release(c: &mut Conversation, ready: &mut Vec<Ready>) {
    while let Some(entry) = c.held.first_entry() {
        if *entry.key() > c.last + 1 {
            break;
        }
        let seq = *entry.key();
        let push = entry.remove();
        if seq == c.last + 1 {
            c.last = seq;
            ready.push(push);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palaver_protocol::envelope::Resp;
    use std::cell::RefCell;

    fn push(tag: &str) -> Ready {
        (vec![tag.to_string()], PushFrame::new(Resp::default()))
    }

    /// Collects what a call delivers, by tag.
    #[derive(Default)]
    struct Out(RefCell<Vec<String>>);

    impl Out {
        fn take(&self) -> Vec<String> {
            self.0.take()
        }
        fn sink(&self) -> impl Fn(&Ready) + '_ {
            |(users, _): &Ready| self.0.borrow_mut().push(users[0].clone())
        }
    }

    #[test]
    fn in_order_pushes_pass_and_late_ones_are_released_in_order() {
        let (s, out) = (Sequencer::default(), Out::default());
        let first = s.offer("c", 5, push("5"), out.sink());
        assert!(out.take().is_empty() && first.schedule_fill, "a new conversation past seq 1 settles first");
        s.offer("c", 4, push("4"), out.sink());
        assert!(out.take().is_empty(), "held while settling");
        assert!(s.gap("c", out.sink()).is_none());
        assert_eq!(out.take(), ["4", "5"], "settled: the lowest seq held starts the order");
        let held = s.offer("c", 7, push("7"), out.sink());
        assert!(out.take().is_empty());
        assert!(held.schedule_fill);
        assert!(!s.offer("c", 8, push("8"), out.sink()).schedule_fill, "one fill per conversation at a time");
        s.offer("c", 6, push("6"), out.sink());
        assert_eq!(out.take(), ["6", "7", "8"]);
        assert!(s.gap("c", out.sink()).is_none(), "the gap closed by itself: the fill has nothing to do");
        s.offer("c", 6, push("6 again"), out.sink());
        assert!(out.take().is_empty(), "a seq already delivered is dropped");
    }

    #[test]
    fn a_fill_delivers_the_missing_and_skips_what_cannot_be_found() {
        let (s, out) = (Sequencer::default(), Out::default());
        s.offer("c", 1, push("1"), out.sink());
        assert_eq!(out.take(), ["1"], "seq 1 needs no settling");
        s.offer("c", 5, push("5"), out.sink());
        let gap = s.gap("c", out.sink()).unwrap();
        assert!(out.take().is_empty());
        assert_eq!((gap.from, gap.to), (2, 4));
        // 2 and 4 are read from the store; 3 had no local recipient (nothing to push).
        let found = BTreeMap::from([(2, push("2")), (4, push("4"))]);
        assert!(!s.filled("c", &gap, found, out.sink()));
        assert_eq!(out.take(), ["2", "4", "5"]);
        s.offer("c", 3, push("3"), out.sink());
        assert!(out.take().is_empty(), "3 was filled past");
        s.offer("c", 6, push("6"), out.sink());
        assert_eq!(out.take(), ["6"]);
    }

    /// A node that missed more than `MAX_FILL` pushes (none of the parties was online here) does not read them
    /// all back from the store: it skips the gap and goes on from the push that revealed it.
    #[test]
    fn a_gap_larger_than_the_cap_is_skipped_not_read() {
        let (s, out) = (Sequencer::default(), Out::default());
        s.offer("c", 1, push("1"), out.sink());
        assert_eq!(out.take(), ["1"]);
        let far = 2 + MAX_FILL + 10;
        s.offer("c", far, push("far"), out.sink());
        s.offer("c", far + 5, push("far+5"), out.sink());
        let gap = s.gap("c", out.sink()).expect("the small gap after the skipped one is still filled");
        assert_eq!(out.take(), ["far"], "the push after the skipped gap goes out at once");
        assert_eq!((gap.from, gap.to), (far + 1, far + 4));
        assert!(!s.filled("c", &gap, BTreeMap::new(), out.sink()));
        assert_eq!(out.take(), ["far+5"]);
        s.offer("c", 5, push("5"), out.sink());
        assert!(out.take().is_empty(), "a late push from the skipped gap is not delivered out of order");

        // Exactly at the cap: still read from the store.
        s.offer("c", far + 6 + MAX_FILL, push("edge"), out.sink());
        let gap = s.gap("c", out.sink()).unwrap();
        assert_eq!(gap.to - gap.from + 1, MAX_FILL);
        assert!(out.take().is_empty());
    }
}
