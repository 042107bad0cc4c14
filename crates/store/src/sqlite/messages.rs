//! Messages and their per-conversation seq counters.

use std::sync::Arc;

use async_trait::async_trait;
use palaver_protocol::pb::sdkws::MsgData;
use prost::Message as _;
use rusqlite::OptionalExtension as _;

use super::memtable::{Entry, Memtable};
use super::reader::all;
use super::{IN_CHUNK, SqliteStore, placeholders};
use crate::{
    Appended, ConversationSeq, MessageMarks, MessageRevoke, MessageStore, NewMessage, Precondition, Reception, Result,
    StoreError,
};

/// Decodes a stored `MsgData` blob. A failure means a corrupt row, which is the backend's fault.
pub(super) fn decode(blob: &[u8]) -> Result<MsgData> {
    MsgData::decode(blob).map_err(|e| StoreError::Backend(format!("corrupt stored message: {e}")))
}

/// The messages of a statement whose first column is `data`.
fn decode_rows(rows: rusqlite::Rows<'_>) -> Result<Vec<MsgData>> {
    all(rows, |row| decode(row.get_ref(0)?.as_blob()?))
}

/// A conversation's counter: the seq and send time of its newest message, none before its first. The log is the
/// counter (see migration 0007): one seek at the end of the conversation's range of the `(conversation_id, seq)`
/// index.
pub(super) const NEWEST: &str =
    "SELECT seq, send_time FROM messages WHERE conversation_id = ?1 ORDER BY seq DESC LIMIT 1";

/// A conversation's max seq (0 before its first message), for the writes that start or end a view of it at the
/// current message (a group join's start, a clear, a member's cap): every message acknowledged before the call
/// is counted (the memtable first, as every read; see [`super::memtable`]). One appended meanwhile gets a higher
/// seq: it is ordered after this write.
pub(super) async fn max_seq_in_transaction(
    memtable: &Memtable,
    conn: &mut sqlx::SqliteConnection,
    conversation_id: &str,
) -> Result<i64> {
    if let Some((seq, _)) = memtable.newest(conversation_id) {
        return Ok(seq);
    }
    let newest: Option<i64> = sqlx::query_scalar(NEWEST).bind(conversation_id).fetch_optional(conn).await?;
    Ok(newest.unwrap_or(0))
}

/// The newest `?4` messages of `?1` with seqs in `?2..=?3`, newest first: a history page.
pub(super) const RANGE: &str = "SELECT data FROM messages WHERE conversation_id = ?1 AND seq >= ?2 AND seq <= ?3 \
                                ORDER BY seq DESC LIMIT CAST(?4 AS INTEGER)";

/// What the store says of one precondition of an append ([`crate::NewMessage::preconditions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    Holds(bool),
    /// [`Precondition::Receives`]: what the recipient's options make of the message.
    Receives(Reception),
}

impl Answer {
    /// Whether the append may go on; a receive option may change `data` on the way.
    pub(super) fn admit(self, data: &mut MsgData) -> bool {
        match self {
            Self::Holds(holds) => holds,
            Self::Receives(reception) => reception.admit(data),
        }
    }
}

/// Reads one precondition of an append, on the append writer's connection in its batch's read transaction (see
/// [`super::writer`], which also remembers the answers).
pub(super) fn read_precondition(conn: &rusqlite::Connection, condition: &Precondition) -> Result<Answer> {
    Ok(match condition {
        Precondition::UserExists(user_id) => Answer::Holds(
            conn.prepare_cached("SELECT 1 FROM users WHERE user_id = ?1")?
                .query_row([user_id], |_| Ok(()))
                .optional()?
                .is_some(),
        ),
        Precondition::NotBlocked { owner, other } => Answer::Holds(
            conn.prepare_cached("SELECT 1 FROM blacks WHERE owner_user_id = ?1 AND block_user_id = ?2")?
                .query_row([owner, other], |_| Ok(()))
                .optional()?
                .is_none(),
        ),
        Precondition::IsFriendOf { owner, friend } => Answer::Holds(
            conn.prepare_cached("SELECT 1 FROM friends WHERE owner_user_id = ?1 AND friend_user_id = ?2")?
                .query_row([owner, friend], |_| Ok(()))
                .optional()?
                .is_some(),
        ),
        Precondition::Receives { user, conversation_id, read_receipt } => {
            // One lookup for both options: the user's global one and its own for this conversation (none if it
            // has no row yet); `Reception` decides.
            let (global, own): (i32, Option<i32>) = conn
                .prepare_cached(
                    "SELECT u.global_recv_msg_opt, c.recv_msg_opt FROM users u LEFT JOIN conversations c \
                     ON c.owner_user_id = u.user_id AND c.conversation_id = ?2 WHERE u.user_id = ?1",
                )?
                .query_row([user, conversation_id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?
                .unwrap_or((0, None));
            Answer::Receives(Reception::decide(global, own, *read_receipt))
        }
    })
}

/// Decodes the memtable's messages.
fn decode_entries(entries: &[Arc<Entry>]) -> Result<Vec<MsgData>> {
    entries.iter().map(|e| decode(&e.record.blob)).collect()
}

/// `from_sqlite` (ascending) and `recent` (ascending, from the memtable, read first) as one ascending list: a
/// message in both (flushed between the two reads) once.
fn merge(mut from_sqlite: Vec<MsgData>, recent: Vec<MsgData>) -> Vec<MsgData> {
    if recent.is_empty() {
        return from_sqlite;
    }
    from_sqlite.extend(recent);
    from_sqlite.sort_by_key(|m| m.seq);
    from_sqlite.dedup_by_key(|m| m.seq);
    from_sqlite
}

#[async_trait]
impl MessageStore for SqliteStore {
    /// Queued to the append writer, which journals it together with whatever other appends are waiting (one
    /// fsync per batch rather than per message, see [`super::writer`]). Returns once the batch is durable.
    ///
    /// A caller cancelled before its append ran leaves nothing behind; one cancelled after may find it stored,
    /// which a resend with the same clientMsgID then finds.
    async fn append_message(&self, msg: NewMessage) -> Result<Appended> {
        self.writer.append(msg).await
    }

    /// Newest first with `LIMIT`, then reversed: the last `limit` of the range in ascending order. A `limit` of
    /// 0 or less returns nothing. The memtable holds a conversation's newest messages with no gap, so when it
    /// has `limit` of the range SQLite is not asked.
    async fn messages_in_range(&self, conversation_id: &str, begin: i64, end: i64, limit: i64) -> Result<Vec<MsgData>> {
        if limit <= 0 || begin > end {
            return Ok(Vec::new());
        }
        let recent = decode_entries(&self.memtable.range(conversation_id, begin, end))?;
        let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut msgs = if recent.len() >= wanted {
            recent
        } else {
            let mut stored = self.readers.read(|conn| {
                let mut stmt = conn.prepare_cached(RANGE)?;
                decode_rows(stmt.query(rusqlite::params![conversation_id, begin, end, limit])?)
            })?;
            stored.reverse();
            merge(stored, recent)
        };
        msgs.drain(..msgs.len().saturating_sub(wanted));
        Ok(msgs)
    }

    async fn messages_by_seqs(&self, conversation_id: &str, seqs: &[i64]) -> Result<Vec<MsgData>> {
        let recent: Vec<Arc<Entry>> = match (seqs.iter().min(), seqs.iter().max()) {
            (Some(&low), Some(&high)) => {
                self.memtable.range(conversation_id, low, high).into_iter().filter(|e| seqs.contains(&e.seq)).collect()
            }
            _ => Vec::new(),
        };
        let rest: Vec<i64> = seqs.iter().copied().filter(|s| !recent.iter().any(|e| e.seq == *s)).collect();
        let mut msgs = Vec::with_capacity(rest.len());
        self.readers.read(|conn| {
            for chunk in rest.chunks(IN_CHUNK) {
                let sql = format!(
                    "SELECT data FROM messages WHERE conversation_id = ? AND seq IN ({}) ORDER BY seq",
                    placeholders(chunk.len())
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let params = std::iter::once(rusqlite::types::Value::from(conversation_id.to_string()))
                    .chain(chunk.iter().map(|seq| rusqlite::types::Value::from(*seq)));
                msgs.extend(decode_rows(stmt.query(rusqlite::params_from_iter(params))?)?);
            }
            Ok(())
        })?;
        // Chunks are each sorted; the caller's seqs need not be, nor unique across chunks.
        msgs.sort_by_key(|m| m.seq);
        Ok(merge(msgs, decode_entries(&recent)?))
    }

    /// One seek per conversation, at the end of its range of the log's index (or none, when the memtable holds
    /// its newest). Returned in the order of `conversation_ids`, once each; a conversation without messages is
    /// left out.
    async fn last_messages(&self, conversation_ids: &[String]) -> Result<Vec<MsgData>> {
        let mut seen = std::collections::HashSet::new();
        self.readers.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT data FROM messages WHERE conversation_id = ?1 ORDER BY seq DESC LIMIT 1")?;
            let mut last = Vec::new();
            for id in conversation_ids.iter().filter(|id| seen.insert(id.as_str())) {
                if let Some(entry) = self.memtable.last(id) {
                    last.push(decode(&entry.record.blob)?);
                } else if let Some(blob) = stmt.query_row([id], |row| row.get::<_, Vec<u8>>(0)).optional()? {
                    last.push(decode(&blob)?);
                }
            }
            Ok(last)
        })
    }

    /// One entry per distinct requested id, in request order; a conversation without messages (or unknown)
    /// gets `max_seq: 0, max_seq_time: 0` rather than being left out, so callers can answer "what is the max
    /// seq of X" without a second lookup. The memtable's counter, or one seek ([`NEWEST`]).
    async fn max_seqs(&self, conversation_ids: &[String]) -> Result<Vec<ConversationSeq>> {
        let mut seen = std::collections::HashSet::new();
        self.readers.read(|conn| {
            let mut stmt = conn.prepare_cached(NEWEST)?;
            let mut seqs = Vec::new();
            for id in conversation_ids.iter().filter(|id| seen.insert(id.as_str())) {
                let newest = match self.memtable.newest(id) {
                    Some(newest) => Some(newest),
                    None => stmt.query_row([id], |row| Ok((row.get(0)?, row.get(1)?))).optional()?,
                };
                let (max_seq, max_seq_time) = newest.unwrap_or((0, 0));
                seqs.push(ConversationSeq { conversation_id: id.clone(), max_seq, max_seq_time });
            }
            Ok(seqs)
        })
    }

    /// One insert per seq in one transaction; `ON CONFLICT DO NOTHING` makes a repeat harmless. Everyone is
    /// stored as the empty owner, which no user id can be.
    async fn delete_messages(&self, owner: Option<&str>, conversation_id: &str, seqs: &[i64]) -> Result<()> {
        self.marked.mark(conversation_id);
        let mut tx = self.begin_write().await?;
        for seq in seqs {
            sqlx::query(
                "INSERT INTO message_deletions (owner_user_id, conversation_id, seq) VALUES (?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(owner.unwrap_or(""))
            .bind(conversation_id)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_message(&self, r: &MessageRevoke) -> Result<bool> {
        self.marked.mark(&r.conversation_id);
        let done = sqlx::query(
            "INSERT INTO message_revokes (conversation_id, seq, revoker_user_id, revoker_role, revoker_nickname, \
             revoke_time) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id, seq) DO NOTHING",
        )
        .bind(&r.conversation_id)
        .bind(r.seq)
        .bind(&r.revoker_user_id)
        .bind(r.revoker_role)
        .bind(&r.revoker_nickname)
        .bind(r.revoke_time)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// One query for both kinds of mark, over the span of `seqs` (marks of seqs in between that were not asked
    /// for are dropped): pulls call this once per conversation they return, so it must cost one round trip, and
    /// none for a conversation that has never had a mark ([`super::marked`]).
    async fn message_marks(&self, owner: &str, conversation_id: &str, seqs: &[i64]) -> Result<MessageMarks> {
        let mut marks = MessageMarks::default();
        let (Some(&low), Some(&high)) = (seqs.iter().min(), seqs.iter().max()) else {
            return Ok(marks);
        };
        if !self.marked.may_have_marks(conversation_id) {
            return Ok(marks);
        }
        // A deletion row reads as a mark with kind 'd' and no revoke fields.
        self.readers.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT 'r' AS kind, seq, revoker_user_id, revoker_role, revoker_nickname, revoke_time \
                 FROM message_revokes WHERE conversation_id = ?1 AND seq BETWEEN ?2 AND ?3 \
                 UNION ALL \
                 SELECT 'd' AS kind, seq, '' AS revoker_user_id, 0 AS revoker_role, '' AS revoker_nickname, \
                 0 AS revoke_time FROM message_deletions \
                 WHERE conversation_id = ?1 AND owner_user_id IN (?4, '') AND seq BETWEEN ?2 AND ?3",
            )?;
            let mut rows = stmt.query(rusqlite::params![conversation_id, low, high, owner])?;
            while let Some(row) = rows.next()? {
                let seq: i64 = row.get("seq")?;
                if !seqs.contains(&seq) {
                    continue;
                }
                if row.get_ref("kind")?.as_str()? == "d" {
                    marks.deleted.push(seq);
                } else {
                    marks.revokes.push(MessageRevoke {
                        conversation_id: conversation_id.to_string(),
                        seq,
                        revoker_user_id: row.get("revoker_user_id")?,
                        revoker_role: row.get("revoker_role")?,
                        revoker_nickname: row.get("revoker_nickname")?,
                        revoke_time: row.get("revoke_time")?,
                    });
                }
            }
            Ok(())
        })?;
        marks.deleted.sort_unstable();
        marks.deleted.dedup();
        marks.revokes.sort_by_key(|r| r.seq);
        Ok(marks)
    }
}
