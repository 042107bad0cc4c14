//! Which conversations have ever had a message revoked or deleted.
//!
//! Every pull asks for the marks of the messages it returns ([`crate::MessageStore::message_marks`]), and most
//! conversations never have any: a login's pull and every history page paid a read transaction of their own
//! (two file locks and a seek in each of two indexes) to learn that there were none. This set answers "none"
//! from memory instead. It is a mirror of the two tables, not a cache: loaded whole when the store opens, and
//! written by the only two statements that add marks, before they run, so any read that begins after a mark's
//! commit finds its conversation here. Nothing removes marks, so nothing leaves the set.
//!
//! It holds 64-bit hashes of the ids, 8 bytes a conversation (plus the table's slack): two ids that collide cost
//! a query, never a wrong answer.

use std::collections::HashSet;
use std::hash::{BuildHasher as _, BuildHasherDefault, DefaultHasher};
use std::sync::RwLock;

use crate::Result;

#[derive(Default)]
pub(super) struct MarkedConversations {
    ids: RwLock<HashSet<u64>>,
}

impl MarkedConversations {
    /// Every conversation with a revoke or a deletion in the database `conn` reads.
    pub(super) fn load(conn: &rusqlite::Connection) -> Result<Self> {
        let mut stmt = conn.prepare(
            "SELECT DISTINCT conversation_id FROM message_revokes \
             UNION SELECT DISTINCT conversation_id FROM message_deletions",
        )?;
        let mut ids = HashSet::new();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            ids.insert(key(row.get_ref(0)?.as_str()?));
        }
        Ok(Self { ids: RwLock::new(ids) })
    }

    /// Records that `conversation_id` is about to get a mark: call it before the statement that writes it.
    pub(super) fn mark(&self, conversation_id: &str) {
        self.ids.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key(conversation_id));
    }

    /// False only if no message of `conversation_id` has ever been revoked or deleted.
    pub(super) fn may_have_marks(&self, conversation_id: &str) -> bool {
        self.ids.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&key(conversation_id))
    }
}

/// SipHash with fixed keys. Any hash would do (the set is rebuilt at every open); a fixed one needs no state.
fn key(conversation_id: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(conversation_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_is_marked_once_told_and_others_are_not() {
        let marked = MarkedConversations::default();
        assert!(!marked.may_have_marks("si_a_b"));
        marked.mark("si_a_b");
        assert!(marked.may_have_marks("si_a_b"));
        assert!(!marked.may_have_marks("si_a_c"));
    }
}
